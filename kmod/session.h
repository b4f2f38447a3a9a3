/* SPDX-License-Identifier: GPL-2.0 */
/*
 * vmdirty: the session, one per open /dev/vmdirty file, and what it is made
 * of.  Which lock protects which field is written in locking.rst.
 */
#ifndef _VMDIRTY_SESSION_H
#define _VMDIRTY_SESSION_H

#include <linux/cred.h>
#include <linux/kthread.h>
#include <linux/kvm_host.h>
#include <linux/mutex.h>
#include <linux/types.h>

#include "compat.h"

/**
 * struct vmdirty_slot - a memslot as recorded at ATTACH
 * @key: (as_id << 16) | id, as KVM writes it into ring entries
 * @flags: VMDIRTY_SLOT_* at ATTACH
 * @kvm_flags: KVM_MEM_* at ATTACH
 * @changed: KVM's slot is not this one any more (deleted, moved, resized,
 *	re-created, its flags or memory changed): its entries are dropped
 * @kvm_slot: the identity of KVM's slot object, never dereferenced: KVM
 *	allocates a new one for every change but a delete
 * @base_gfn: first guest frame
 * @npages: pages in the slot
 * @userspace_addr: the VMM's address of the slot's first page
 * @first_bit: the slot's page 0 in the flat bit space of a set, a multiple
 *	of 64 * 64 so that each slot owns whole summary words
 * @nr_bits: bits of the slot in each set: 0 unless it logs dirty pages
 */
struct vmdirty_slot {
	u32 key;
	u32 flags;
	u32 kvm_flags;
	bool changed;
	const void *kvm_slot;
	u64 base_gfn;
	u64 npages;
	u64 userspace_addr;
	u64 first_bit;
	u64 nr_bits;
};

/**
 * struct vmdirty_bits - one bit per page of every recorded slot
 * @bitmap: the bits, slots one after another (see &vmdirty_slot.first_bit)
 * @summary: bit w set => @bitmap word w may be non-zero
 * @lo: first summary word that may be non-zero
 * @hi: one past the last summary word that may be non-zero (@lo >= @hi:
 *	all clear), so that clearing and walking follow what was set
 */
struct vmdirty_bits {
	u64 *bitmap;
	u64 *summary;
	u64 lo;
	u64 hi;
};

/**
 * struct vmdirty_vcpu - the session's view of one vCPU's ring
 * @seen: @fetch is valid
 * @fetch: free-running index of the next entry to collect; every entry
 *	from KVM's reset_index up to it is marked collected and waits for
 *	KVM's reset (none, once a reset was verified)
 * @batch: entries claimed by the current walk, from @fetch on
 * @since_swap: entries collected since the last swap
 */
struct vmdirty_vcpu {
	bool seen;
	u32 fetch;
	u32 batch;
	u64 since_swap;
};

/**
 * struct vmdirty_drain_state - background draining parameters
 * @enabled: the drain work requeues itself
 * @min_us: shortest interval
 * @max_us: longest interval
 * @high_pct: ring fill, percent of the soft limit, above which the interval
 *	halves; below a quarter of it, it doubles
 * @interval_us: the current interval, read locklessly by netlink
 */
struct vmdirty_drain_state {
	bool enabled;
	u32 min_us;
	u32 max_us;
	u32 high_pct;
	u32 interval_us;
};

/**
 * struct vmdirty_collect - what one walk over every ring found
 * @entries: ring entries collected
 * @dropped: entries naming no recorded slot, a changed one, or a page
 *	outside it
 * @new_pages: bits that were clear in the live set
 * @skipped: entries a previous collector had marked collected, found at
 *	the head of a ring the session walks for the first time
 * @nr_vcpus: vCPUs walked
 * @max_fill_pct: highest ring fill seen, percent of the soft limit
 * @stale: the walk found the layout newly changed
 */
struct vmdirty_collect {
	u64 entries;
	u64 dropped;
	u64 new_pages;
	u64 skipped;
	u32 nr_vcpus;
	u32 max_fill_pct;
	bool stale;
};

/**
 * struct vmdirty_session - one open /dev/vmdirty file
 * @lock: serialises harvests, drains and SET_DRAIN; the only writer of the
 *	region holds it
 * @attached: ATTACH completed; stored with release once everything below is
 *	set, so that lockless readers (mmap, netlink) see a whole session
 * @id: netlink session id
 * @vm_file: the VM's file, held from ATTACH to the session's release: it
 *	pins @kvm
 * @kvm: the VM
 * @owner_pid: tgid that attached
 * @cred: credentials of the task that attached, for the resets the drain
 *	work asks for
 * @region: the shared region, @pages mapped contiguously, @region_size bytes
 * @region_size: bytes of @region, page aligned
 * @pages: the region's pages, charged to the memory cgroup of the task
 *	that attached, as every allocation of the session is
 * @nr_pages: entries of @pages
 * @hdr: start of @region
 * @shm_vcpus: the region's vCPU table
 * @nr_slots: recorded memslots
 * @slots: recorded memslots, sorted by key
 * @last_slot: index into @slots of the last lookup's hit
 * @nr_bits: bits in each set (all slots)
 * @tracked_pages: pages in slots that log dirty pages
 * @sets: the two shared bit sets
 * @live: index of the live set in @sets
 * @scratch: private bits of one ring batch, for ordering it
 * @pending: private bits of what was collected and is not known to be
 *	write-protected again yet: they go to the live set once KVM's reset
 *	of every collected entry is verified
 * @unreset: some collected entries may not have been reset by KVM yet (a
 *	reset failed): the next harvest resets them before it swaps
 * @conflict: someone else collected or reset the VM's rings, or rewrote
 *	what the session collected: the session collects nothing more
 * @max_vcpus: entries in @vcpus and the vCPU table
 * @nr_vcpus: vCPUs seen so far
 * @vcpus: per vCPU index
 * @memslots_gen: KVM's memslots generation per address space, last check
 * @unrecorded: user memslots of KVM not in @slots, per address space
 * @private_slots: hash of KVM's own memslots, per address space
 * @stale: the layout changed since ATTACH
 * @worker: runs @reset_work and @drain_work with the VM's mm
 * @reset_work: KVM_RESET_DIRTY_RINGS for a caller that is not the VM's
 *	process, or on any caller's behalf where KVM's reset stops on a
 *	signal (compat.h)
 * @reset_cred: the credentials @reset_work acts with: its caller's
 * @reset_ret: @reset_work's result
 * @drain_work: background draining
 * @drain: background draining parameters
 */
struct vmdirty_session {
	struct mutex lock; /* see locking.rst */
	bool attached;
	u32 id;
	struct file *vm_file;
	struct kvm *kvm;
	pid_t owner_pid;
	const struct cred *cred;

	void *region;
	size_t region_size;
	struct page **pages;
	unsigned long nr_pages;
	struct vmdirty_shm_header *hdr;
	struct vmdirty_shm_vcpu *shm_vcpus;

	u32 nr_slots;
	struct vmdirty_slot *slots;
	u32 last_slot;
	u64 nr_bits;
	u64 tracked_pages;
	struct vmdirty_bits sets[2];
	u32 live;
	struct vmdirty_bits scratch;
	struct vmdirty_bits pending;
	bool unreset;
	bool conflict;

	u32 max_vcpus;
	u32 nr_vcpus;
	struct vmdirty_vcpu *vcpus;

	u64 memslots_gen[VMDIRTY_MAX_AS];
	u32 unrecorded[VMDIRTY_MAX_AS];
	u64 private_slots[VMDIRTY_MAX_AS];
	bool stale;

	struct kthread_worker *worker;
	struct kthread_work reset_work;
	const struct cred *reset_cred;
	int reset_ret;
	struct kthread_delayed_work drain_work;
	struct vmdirty_drain_state drain;
};

#endif /* _VMDIRTY_SESSION_H */
