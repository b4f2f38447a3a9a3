/* SPDX-License-Identifier: GPL-2.0 WITH Linux-syscall-note */
/*
 * vmdirty: batched harvesting of KVM dirty rings into a shared bitmap.
 *
 * This header is the whole contract between vmdirty.ko and userspace: the
 * ioctls of /dev/vmdirty, the layout of the shared region a session maps,
 * the memory-ordering rules for reading it, and the generic netlink family.
 *
 * Life of a session
 * -----------------
 *   fd = open("/dev/vmdirty", O_RDWR | O_CLOEXEC);
 *   ioctl(fd, VMDIRTY_IOC_ATTACH, &attach);   // one VM per fd, once
 *   hdr = mmap(NULL, attach.region_size, PROT_READ, MAP_SHARED, fd, 0);
 *   ioctl(fd, VMDIRTY_IOC_HARVEST, &harvest);  // as often as needed
 *   close(fd);                                  // detaches, drops the VM
 *
 * The session holds a reference on the VM file from ATTACH until the last
 * reference to the session file goes away: closing the VM fd, or the VMM
 * exiting, does not free the VM under an attached session.  The VM must have
 * the dirty ring enabled (KVM_CAP_DIRTY_LOG_RING or _ACQ_REL) before ATTACH.
 *
 * Who may attach: a task holding the VM's fd that belongs to the VM's own
 * process (the one KVM accepts VM ioctls from), or has CAP_SYS_ADMIN.  The
 * session's fd may then be handed to anyone (SCM_RIGHTS): holding it is
 * what allows HARVEST and SET_DRAIN.  The rings are reset through the VM
 * file's ioctl path, so LSM policy on the VM file applies: with the
 * credentials of the HARVEST caller, or of the attacher for draining.
 *
 * The hand-over: a VMM that reaped the rings itself stops before ATTACH.
 * Entries it marked collected and had not reset yet are KVM's to reset with
 * the session's first harvest.  From ATTACH on, the session owns every ring
 * entry from KVM's push until its reset, and nobody else may collect or
 * reset the rings.  If someone does (a ring-full handler of the VMM that
 * still reaps, another tool), the session notices at its next walk or
 * reset, never lets the rings go inconsistent, and fails for good:
 * VMDIRTY_STATUS_RING_CONFLICT, HARVEST and SET_DRAIN then fail with EPIPE.
 * Its bits may lack pages: treat every page as dirty, close it, and attach
 * again once the other collector is gone.
 *
 * While the session orders a batch it owns (never longer than one walk),
 * those entries' flags hold a value with neither KVM_DIRTY_GFN_F_DIRTY nor
 * KVM_DIRTY_GFN_F_RESET set: a reader peeking at the ring sees them as not
 * pushed yet.
 *
 * Growth
 * ------
 * Every ioctl argument starts with __u32 size, which must equal the size
 * encoded in the ioctl number.  A later ABI may grow a struct at its end (a
 * new ioctl number with the same nr); the kernel then accepts the older,
 * shorter struct, and rejects a longer one whose unknown tail is not zero
 * with -E2BIG.  Every flag not defined here, every pad and reserved field
 * must be zero on input, or the ioctl fails with -EINVAL and changes
 * nothing.  VMDIRTY_IOC_GET_INFO works before ATTACH and tells the ABI
 * version and features.
 */
#ifndef _UAPI_LINUX_VMDIRTY_H
#define _UAPI_LINUX_VMDIRTY_H

#include <linux/types.h>
#include <linux/ioctl.h>

#define VMDIRTY_DEVICE_NAME	"vmdirty"
#define VMDIRTY_ABI_VERSION	2

/* Features reported by VMDIRTY_IOC_GET_INFO. */
#define VMDIRTY_FEAT_SORTED_RESET	(1U << 0) /* resets coalesce per 64 pages */
#define VMDIRTY_FEAT_DRAIN		(1U << 1) /* background draining */
#define VMDIRTY_FEAT_FOREIGN_MM		(1U << 2) /* harvest from another process */

/**
 * struct vmdirty_info - VMDIRTY_IOC_GET_INFO: what this module offers
 * @size: in: sizeof(struct vmdirty_info)
 * @flags: in: must be 0
 * @abi_version: out: VMDIRTY_ABI_VERSION of the module
 * @features: out: VMDIRTY_FEAT_* bits
 * @region_size: out: bytes to mmap once attached, 0 before
 * @layout_gen: out: current layout generation, 0 before attach
 * @attached: out: 1 once ATTACH succeeded on this file
 * @session_id: out: the session's VMDIRTY_A_SESSION_ID in the netlink
 *	family once attached, 0 before
 * @pad: must be 0 on input; 0 on output
 * @reserved: must be 0 on input; 0 on output
 */
struct vmdirty_info {
	__u32 size;
	__u32 flags;
	__u32 abi_version;
	__u32 features;
	__u64 region_size;
	__u32 layout_gen;
	__u32 attached;
	__u32 session_id;
	__u32 pad;
	__u64 reserved[3];
};

/**
 * struct vmdirty_attach - VMDIRTY_IOC_ATTACH: bind this file to one VM
 * @size: in: sizeof(struct vmdirty_attach)
 * @flags: in: must be 0 (no flags are defined yet)
 * @vm_fd: in: a KVM VM file descriptor with the dirty ring enabled
 * @pad: must be 0
 * @region_size: out: bytes of the shared region (mmap length)
 * @layout_gen: out: layout generation recorded in the region
 * @nr_slots: out: memslots recorded (all address spaces)
 * @session_id: out: the session's VMDIRTY_A_SESSION_ID in the netlink family
 * @pad2: must be 0 on input
 * @reserved: must be 0 on input
 *
 * Out fields are not checked on input.  Errors: EBADF (vm_fd not open),
 * EINVAL (not a KVM VM, non-zero flags, pad or reserved, wrong size), EPERM
 * (not the VM's process, and no CAP_SYS_ADMIN), ENXIO (the VM has no dirty
 * ring), EBUSY (this file is already attached, or another session is
 * attached to the VM: two collectors would each see a part of the rings),
 * EFBIG (the session would need more memory than the module parameter
 * max_session_mb allows, MiB), ENOMEM, ESRCH (the VM is dead), EINTR.  All
 * the session allocates is charged to the caller's memory cgroup.
 */
struct vmdirty_attach {
	__u32 size;
	__u32 flags;
	__s32 vm_fd;
	__u32 pad;
	__u64 region_size;
	__u32 layout_gen;
	__u32 nr_slots;
	__u32 session_id;
	__u32 pad2;
	__u64 reserved[3];
};

/* struct vmdirty_harvest.flags (in) */
/*
 * Collect and reset into the live bitmap set without swapping: the bits keep
 * accumulating for a later harvest.  What a vCPU thread calls on
 * KVM_EXIT_DIRTY_RING_FULL when background draining is off.
 */
#define VMDIRTY_HARVEST_NO_SWAP		(1U << 0)
/* Hand entries back to KVM in the order they were logged (benchmarks). */
#define VMDIRTY_HARVEST_UNSORTED	(1U << 1)
#define VMDIRTY_HARVEST_FLAGS_ALL	(VMDIRTY_HARVEST_NO_SWAP | \
					 VMDIRTY_HARVEST_UNSORTED)

/* struct vmdirty_harvest.status and vmdirty_shm_header.flags (out) */
/* KVM's memslots no longer match the recorded layout: re-attach. */
#define VMDIRTY_STATUS_LAYOUT_STALE	(1U << 0)
/*
 * Someone else collected or reset entries of the VM's rings, or rewrote
 * entries the session had collected, while it was attached: the bit sets
 * may lack pages.  The session stops collecting; HARVEST and SET_DRAIN fail
 * with EPIPE from then on.  Close it and treat every page as dirty.
 */
#define VMDIRTY_STATUS_RING_CONFLICT	(1U << 1)

/**
 * struct vmdirty_harvest - VMDIRTY_IOC_HARVEST: collect every vCPU's ring
 * @size: in: sizeof(struct vmdirty_harvest)
 * @flags: in: VMDIRTY_HARVEST_* bits
 * @entries: out: ring entries collected by this call, all vCPUs
 * @new_pages: out: bits this call set that were clear in the live set
 * @pages: out: bits set in the snapshot this call published (includes what
 *	background draining collected since the previous swap); with
 *	VMDIRTY_HARVEST_NO_SWAP, bits set in the live set
 * @reset: out: entries KVM_RESET_DIRTY_RINGS reset for this call; may
 *	differ from @entries: it includes entries a previous collector had
 *	marked (the first harvest), and a reset by the VMM may have taken
 *	some of the session's (harmless: the session checks KVM's reset index,
 *	not this count)
 * @dropped: out: entries that named no recorded memslot or lay outside it
 * @duration_ns: out: time spent in this call, collect to reset
 * @seq: out: the region's header seq after this call (even)
 * @snapshot: out: index (0 or 1) of the bitmap set holding the snapshot
 * @layout_gen: out: layout generation
 * @status: out: VMDIRTY_STATUS_* bits
 * @nr_vcpus: out: vCPUs walked
 * @reserved: must be 0 on input
 *
 * On return every collected entry has been reset, which the session
 * verifies on KVM's reset index of every ring (a short reset is retried on
 * the session's worker, which no signal interrupts): a guest write that
 * happens after the call returns is in a later harvest.  Out fields are not
 * checked on input (a struct may be reused).  Errors: ENOTCONN (not
 * attached), EINVAL (bad size, flags, reserved), EINTR (a fatal signal while
 * waiting for the session or KVM's slots_lock), EPIPE (the session failed,
 * VMDIRTY_STATUS_RING_CONFLICT: see "the hand-over" above), ESRCH (the VM's
 * process is gone, so KVM cannot be asked to reset), EPERM or another LSM
 * error (policy refused KVM_RESET_DIRTY_RINGS on the VM file), or KVM's own
 * error for KVM_RESET_DIRTY_RINGS (EIO: the VM is dead).  On ESRCH and
 * EPERM nothing is swapped and nothing is lost: the collected entries stay
 * marked, and the next harvest resets and publishes them.
 */
struct vmdirty_harvest {
	__u32 size;
	__u32 flags;
	__u64 entries;
	__u64 new_pages;
	__u64 pages;
	__u64 reset;
	__u64 dropped;
	__u64 duration_ns;
	__u64 seq;
	__u32 snapshot;
	__u32 layout_gen;
	__u32 status;
	__u32 nr_vcpus;
	__u64 reserved[4];
};

/* struct vmdirty_drain.flags (in) */
#define VMDIRTY_DRAIN_ENABLE		(1U << 0)
#define VMDIRTY_DRAIN_FLAGS_ALL		VMDIRTY_DRAIN_ENABLE

/* Limits for struct vmdirty_drain intervals, in microseconds. */
#define VMDIRTY_DRAIN_MIN_US		50
#define VMDIRTY_DRAIN_MAX_US		1000000

/**
 * struct vmdirty_drain - VMDIRTY_IOC_SET_DRAIN: background draining
 * @size: in: sizeof(struct vmdirty_drain)
 * @flags: in: VMDIRTY_DRAIN_ENABLE to start (or retune), 0 to stop
 * @min_interval_us: in: shortest interval between drains, 0 for the
 *	default; within [VMDIRTY_DRAIN_MIN_US, VMDIRTY_DRAIN_MAX_US]
 * @max_interval_us: in: longest interval, 0 for the default; >= min
 * @high_pct: in: ring fill (percent of the soft limit) at a drain above
 *	which the interval halves, 0 for the default (25); 1..90.  Below a
 *	quarter of it the interval doubles.
 * @pad: must be 0
 * @reserved: must be 0
 *
 * The worker collects into the live bitmap set and resets, so that vCPUs
 * do not reach KVM_EXIT_DIRTY_RING_FULL; bits wait there for the next
 * harvest.  It runs with the VM process's mm and the attacher's
 * credentials; it stops by itself if that process is gone or the session
 * fails.  Enabling again retunes a running drain.  To stop, every other
 * field is 0.  Errors: ENOTCONN, EINVAL (also: parameters given to stop),
 * ESRCH (the VM's process is gone), EPIPE (the session failed), EINTR.
 */
struct vmdirty_drain {
	__u32 size;
	__u32 flags;
	__u32 min_interval_us;
	__u32 max_interval_us;
	__u32 high_pct;
	__u32 pad;
	__u64 reserved[4];
};

#define VMDIRTY_IOC_MAGIC	0xD7
#define VMDIRTY_IOC_GET_INFO	_IOWR(VMDIRTY_IOC_MAGIC, 0x00, struct vmdirty_info)
#define VMDIRTY_IOC_ATTACH	_IOWR(VMDIRTY_IOC_MAGIC, 0x01, struct vmdirty_attach)
#define VMDIRTY_IOC_HARVEST	_IOWR(VMDIRTY_IOC_MAGIC, 0x02, struct vmdirty_harvest)
#define VMDIRTY_IOC_SET_DRAIN	_IOW(VMDIRTY_IOC_MAGIC, 0x03, struct vmdirty_drain)

/*
 * The shared region
 * -----------------
 * mmap(fd, offset 0, PROT_READ, MAP_SHARED) of at most region_size bytes,
 * page aligned.  Writable or executable mappings fail with -EPERM (and so
 * does a later mprotect() to write or execute, with -EACCES), private ones
 * and ones past the region with -EINVAL, any before ATTACH with -ENOTCONN.
 * Layout, all offsets from the start
 * of the region and all fields little-endian as the host is:
 *
 *   0                      struct vmdirty_shm_header
 *   slots_offset           nr_slots x struct vmdirty_shm_slot
 *   vcpus_offset           max_vcpus x struct vmdirty_shm_vcpu
 *   (page aligned)         per slot that logs dirty pages (flags has
 *                          VMDIRTY_SLOT_LOG_DIRTY), per set s in {0, 1}:
 *     bitmap_offset[s]       DIV_ROUND_UP(npages, 64) x __u64: bit b of
 *                            word w set <=> page base_gfn + 64*w + b dirty
 *     summary_offset[s]      DIV_ROUND_UP(words, 64) x __u64: bit b of
 *                            word w set => bitmap word 64*w + b may be
 *                            non-zero (clear => it is zero)
 *   A slot that does not log dirty pages has no bits: its offsets are 0.
 *
 * Two bitmap sets, live and snapshot.  The kernel only ever sets bits in
 * the live set (harvest, background drain).  A harvest without
 * VMDIRTY_HARVEST_NO_SWAP then swaps: the live set becomes the snapshot,
 * and the old snapshot is cleared and becomes live.
 *
 * Who writes what: only the kernel writes the region, always under the
 * session's mutex.  Userspace only reads.
 *
 * Reading the snapshot: after VMDIRTY_IOC_HARVEST returns with .snapshot =
 * s, set s is frozen until the next harvest on this session swaps again.
 * A single harvesting thread needs no further synchronisation: the ioctl's
 * return orders it.  A reader racing another harvester uses the seqcount:
 *
 *   do {
 *           seq = __atomic_load_n(&hdr->seq, __ATOMIC_ACQUIRE);
 *           if (seq & 1) continue;       // swap in progress
 *           s = __atomic_load_n(&hdr->snapshot, __ATOMIC_RELAXED);
 *           ... copy what is needed from set s ...
 *           __atomic_thread_fence(__ATOMIC_ACQUIRE);
 *   } while (__atomic_load_n(&hdr->seq, __ATOMIC_RELAXED) != seq);
 *
 * The kernel makes seq odd (WRITE_ONCE, then smp_wmb()) before it clears
 * the old snapshot and stores .snapshot, and even again (smp_wmb(), then
 * WRITE_ONCE) after; those two barriers pair with the reader's acquire load
 * and acquire fence above.
 *
 * Reading the live set (a peek between harvests): bits only go from 0 to 1
 * there until the next swap, each word is stored whole (64-bit, aligned), a
 * summary bit is set (smp_wmb() after the word store) only after its word
 * is non-zero: a reader that loads a summary word with acquire and then
 * the words it names sees at least the bits the summary announced.  A set
 * bit means: dirtied since the last swap and already re-protected.  The
 * session keeps what a walk collects in a private set until KVM's reset of
 * every collected entry is verified, and only then sets the live bits: a
 * reader that copies a page on seeing its bit has a copy that any later
 * guest write makes stale through a new ring entry, hence a later bit.
 *
 * Layout changes: the slot table describes KVM's memslots at ATTACH.  If
 * memslots are later added, removed, moved, resized, re-created (on other
 * memory or not), or their flags change (dirty logging turned off, even if
 * turned on again before the next harvest: writes in between were logged
 * nowhere), the next harvest or drain sets VMDIRTY_STATUS_LAYOUT_STALE in
 * header.flags and in the harvest's status and bumps layout_gen; entries
 * for changed slots are counted as dropped, never written elsewhere.  Open
 * a new session to get the new layout, and treat every page as dirty.
 */
#define VMDIRTY_SHM_MAGIC	0x54524944	/* "DIRT" */

/**
 * struct vmdirty_shm_header - start of the shared region
 * @magic: VMDIRTY_SHM_MAGIC
 * @abi_version: VMDIRTY_ABI_VERSION
 * @header_size: sizeof(struct vmdirty_shm_header)
 * @flags: VMDIRTY_STATUS_* bits
 * @region_size: bytes in the region
 * @slots_offset: offset of the slot table
 * @nr_slots: entries in the slot table
 * @slot_size: sizeof(struct vmdirty_shm_slot)
 * @vcpus_offset: offset of the vCPU table
 * @max_vcpus: entries in the vCPU table (the VM's max_vcpus)
 * @vcpu_size: sizeof(struct vmdirty_shm_vcpu)
 * @seq: seqcount of swaps; odd while a swap is in progress
 * @snapshot: index of the set that holds the last snapshot
 * @layout_gen: bumped when the layout goes stale
 * @harvests: completed harvests that swapped
 * @drains: completed background drains and NO_SWAP harvests
 * @entries: ring entries collected, all time
 * @dropped: entries dropped (outside the recorded layout), all time
 * @resets: entries reset by KVM, all time
 * @live_pages: bits set in the live set
 * @snapshot_pages: bits set in the snapshot set
 * @reserved: zero
 */
struct vmdirty_shm_header {
	__u32 magic;
	__u32 abi_version;
	__u32 header_size;
	__u32 flags;
	__u64 region_size;
	__u64 slots_offset;
	__u32 nr_slots;
	__u32 slot_size;
	__u64 vcpus_offset;
	__u32 max_vcpus;
	__u32 vcpu_size;
	__u64 seq;
	__u32 snapshot;
	__u32 layout_gen;
	__u64 harvests;
	__u64 drains;
	__u64 entries;
	__u64 dropped;
	__u64 resets;
	__u64 live_pages;
	__u64 snapshot_pages;
	__u64 reserved[8];
};

/* struct vmdirty_shm_slot.flags */
#define VMDIRTY_SLOT_LOG_DIRTY		(1U << 0) /* KVM_MEM_LOG_DIRTY_PAGES */
#define VMDIRTY_SLOT_READONLY		(1U << 1) /* KVM_MEM_READONLY */

/**
 * struct vmdirty_shm_slot - one memslot as recorded at ATTACH
 * @as_id: KVM address space (x86: 1 is SMM)
 * @id: KVM slot id; with @as_id, the ring entry's slot is (as_id << 16) | id
 * @flags: VMDIRTY_SLOT_* at ATTACH
 * @base_gfn: first guest frame
 * @npages: pages in the slot
 * @userspace_addr: the VMM's address of the slot's first page
 * @bitmap_offset: region offsets of the bitmap of each set
 * @summary_offset: region offsets of the summary of each set
 */
struct vmdirty_shm_slot {
	__u16 as_id;
	__u16 id;
	__u32 flags;
	__u64 base_gfn;
	__u64 npages;
	__u64 userspace_addr;
	__u64 bitmap_offset[2];
	__u64 summary_offset[2];
};

/**
 * struct vmdirty_shm_vcpu - per-vCPU counters, indexed by KVM vcpu_idx
 * @vcpu_id: the vCPU's KVM id (APIC id on x86); valid if @present
 * @present: 1 once the vCPU has been seen by a harvest or drain
 * @ring_size: entries in its dirty ring
 * @ring_used: entries pushed and not yet reset, at the last walk
 * @entries: entries collected from its ring, all time
 * @last_entries: entries collected between the last two swaps
 * @last_ns: CLOCK_MONOTONIC time of the last swap that saw it
 *
 * A dirty rate for vCPU i is the difference of @entries over the
 * difference of @last_ns between two reads.
 */
struct vmdirty_shm_vcpu {
	__u32 vcpu_id;
	__u32 present;
	__u32 ring_size;
	__u32 ring_used;
	__u64 entries;
	__u64 last_entries;
	__u64 last_ns;
};

/*
 * Generic netlink family VMDIRTY_GENL_NAME, version VMDIRTY_GENL_VERSION:
 * read-only reporting, for operators and monitoring.
 *
 * VMDIRTY_CMD_GET_SESSION (CAP_NET_ADMIN)
 *   do:   request VMDIRTY_A_SESSION_ID (u32), optional VMDIRTY_A_DUMP_FLAGS;
 *         reply one session
 *   dump: optional VMDIRTY_A_DUMP_FLAGS; one message per session, or, with
 *         VMDIRTY_DUMP_F_VCPUS, as many as its vCPUs need: each repeats
 *         the session's attributes and carries the next vCPUs in index
 *         order; the dump is marked NLM_F_DUMP_INTR if sessions came or
 *         went during it
 * vCPUs come in VMDIRTY_A_VCPUS nests of at most VMDIRTY_A_VCPUS_MAX
 * entries (a nest's length is 16 bits), as many nests as a message needs:
 * read every VMDIRTY_A_VCPUS attribute, not only the last.  Unknown
 * attributes and unknown VMDIRTY_DUMP_F_* bits are rejected.
 *
 * Multicast group VMDIRTY_GENL_MCGRP ("events", joining it needs
 * CAP_NET_ADMIN): VMDIRTY_CMD_SESSION_NEW, VMDIRTY_CMD_SESSION_DEL,
 * VMDIRTY_CMD_LAYOUT_STALE and VMDIRTY_CMD_RING_CONFLICT, each carrying the
 * session's attributes without vCPUs.
 */
#define VMDIRTY_GENL_NAME	"vmdirty"
#define VMDIRTY_GENL_VERSION	1
#define VMDIRTY_GENL_MCGRP	"events"

enum vmdirty_cmd {
	VMDIRTY_CMD_UNSPEC,
	VMDIRTY_CMD_GET_SESSION,
	VMDIRTY_CMD_SESSION_NEW,
	VMDIRTY_CMD_SESSION_DEL,
	VMDIRTY_CMD_LAYOUT_STALE,
	VMDIRTY_CMD_RING_CONFLICT,
	__VMDIRTY_CMD_MAX
};

#define VMDIRTY_CMD_MAX (__VMDIRTY_CMD_MAX - 1)

/* VMDIRTY_A_DUMP_FLAGS */
#define VMDIRTY_DUMP_F_VCPUS		(1U << 0) /* include VMDIRTY_A_VCPUS */
#define VMDIRTY_DUMP_F_ALL		VMDIRTY_DUMP_F_VCPUS

/* VMDIRTY_A_SESSION_FLAGS */
#define VMDIRTY_SESSION_F_DRAINING	(1U << 0)
#define VMDIRTY_SESSION_F_STALE		(1U << 1)
#define VMDIRTY_SESSION_F_CONFLICT	(1U << 2) /* VMDIRTY_STATUS_RING_CONFLICT */

enum vmdirty_attr {
	VMDIRTY_A_UNSPEC,
	VMDIRTY_A_PAD,
	VMDIRTY_A_SESSION_ID,		/* u32 */
	VMDIRTY_A_DUMP_FLAGS,		/* u32, VMDIRTY_DUMP_F_* */
	VMDIRTY_A_SESSION_FLAGS,	/* u32, VMDIRTY_SESSION_F_* */
	VMDIRTY_A_OWNER_PID,		/* u32, tgid that attached */
	VMDIRTY_A_VM_PID,		/* u32, thread that created the VM */
	VMDIRTY_A_LAYOUT_GEN,		/* u32 */
	VMDIRTY_A_NR_SLOTS,		/* u32 */
	VMDIRTY_A_NR_VCPUS,		/* u32, vCPUs seen */
	VMDIRTY_A_TRACKED_PAGES,	/* u64, pages in dirty-logged slots */
	VMDIRTY_A_HARVESTS,		/* u64 */
	VMDIRTY_A_DRAINS,		/* u64 */
	VMDIRTY_A_ENTRIES,		/* u64 */
	VMDIRTY_A_RESETS,		/* u64 */
	VMDIRTY_A_DROPPED,		/* u64 */
	VMDIRTY_A_LIVE_PAGES,		/* u64 */
	VMDIRTY_A_DRAIN_INTERVAL_US,	/* u32, current adaptive interval */
	VMDIRTY_A_VCPUS,		/* nest of VMDIRTY_A_VCPUS_ENTRY */
	__VMDIRTY_A_MAX
};

#define VMDIRTY_A_MAX (__VMDIRTY_A_MAX - 1)

/* Each entry of VMDIRTY_A_VCPUS: a nest of enum vmdirty_vcpu_attr. */
#define VMDIRTY_A_VCPUS_ENTRY	1
/* Entries in one VMDIRTY_A_VCPUS nest at most (its length is 16 bits). */
#define VMDIRTY_A_VCPUS_MAX	512

enum vmdirty_vcpu_attr {
	VMDIRTY_A_VCPU_UNSPEC,
	VMDIRTY_A_VCPU_PAD,
	VMDIRTY_A_VCPU_IDX,		/* u32 */
	VMDIRTY_A_VCPU_ID,		/* u32 */
	VMDIRTY_A_VCPU_RING_SIZE,	/* u32 */
	VMDIRTY_A_VCPU_RING_USED,	/* u32 */
	VMDIRTY_A_VCPU_ENTRIES,		/* u64 */
	VMDIRTY_A_VCPU_LAST_ENTRIES,	/* u64 */
	__VMDIRTY_A_VCPU_MAX
};

#define VMDIRTY_A_VCPU_MAX (__VMDIRTY_A_VCPU_MAX - 1)

#endif /* _UAPI_LINUX_VMDIRTY_H */
