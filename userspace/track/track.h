/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Dirty-page trackers: three interchangeable backends behind one interface,
 * the shape of KVM selftests' dirty_log_test log modes.
 *
 *   bitmap  KVM_GET_DIRTY_LOG + KVM_CLEAR_DIRTY_LOG (manual protect); the VM
 *           has no dirty ring (KVM makes the two exclusive).
 *   ring    the userspace reaper of the per-vCPU dirty rings, as QEMU does it
 *           (vcpu_ring_reap + KVM_RESET_DIRTY_RINGS).
 *   ring-sorted  the same reaper, rewriting each batch in gfn order before
 *           KVM_RESET_DIRTY_RINGS as vmdirty.ko does (KVM's reset then
 *           coalesces it into 64-page masks): the fair baseline for kmod.
 *           Never picked by auto.
 *   kmod    vmdirty.ko: ATTACH, mmap, HARVEST; the snapshot is read straight
 *           from the shared region.
 *
 * Life of a tracker:
 *
 *   track_vm_config(b, &cfg);          // before vm_create(): ring or not
 *   vm_create(&cfg, &vm);
 *   tracker_create(b, vm, &t);
 *   tracker_start(t);                  // dirty logging on (and attach)
 *   loop: run vCPUs with tracker_ring_full_cb / tracker_runner_ring_full,
 *         tracker_harvest(t, &log), read the pages the log names
 *   tracker_stop(t); tracker_destroy(t);
 *
 * What start and harvest mean, on every backend:
 * - The first harvest after tracker_start() reports EVERY page of every
 *   memslot (log->everything is set), which is what round 0 of a migration
 *   sends anyway.  On the bitmap backend with KVM_DIRTY_LOG_INITIALLY_SET
 *   this is KVM's own all-ones bitmap; elsewhere it is synthesized, after
 *   the backend's real harvest re-protected whatever was logged.
 * - Every harvest collects and re-protects before it returns: a page the
 *   caller reads after tracker_harvest() returns and the guest writes later
 *   is in a later harvest.  A page written before the harvest (since the
 *   previous one) is in this log.
 * - The log is valid until the next harvest or tracker_stop().  Its bitmaps
 *   are read-only: the tracker's own (bitmap, ring) or the module's shared
 *   region itself (kmod).
 * - tracker_stop() turns logging off and leaves the rings empty; a later
 *   tracker_start() begins again with a first harvest of everything.
 * - A harvest may report everything again later (log->everything), when
 *   the backend cannot vouch for what it missed: kmod after the layout
 *   changed (a memslot added, removed, moved, re-created or its dirty
 *   logging toggled), or after vmdirty.ko found someone else collecting
 *   the VM's rings (its session failed with EPIPE; counted in
 *   stats.conflicts).  The caller sends every page, as in round 0: a full
 *   round.
 * - tracker_harvest() fails with -EPIPE (tracker_error() says why) when
 *   kmod's fresh session fails the same way at once: another collector
 *   keeps reaping the rings.  Nothing this tracker reports can be trusted
 *   then: stop using it (the migration fails, the VM stays), or fall back
 *   to a backend that is the rings' only collector.
 *
 * Threads: start, harvest, stop and the ring-full handlers (called from
 * vCPU threads, through the two adapters below) serialise on the tracker's
 * mutex; vCPUs keep running during a harvest (the ring and the module
 * collect concurrently with KVM's pushes).  Stop the vCPUs before
 * tracker_destroy().
 *
 * Deviations from brief/TRACK-API.md (refinements):
 * - track_vm_config(b, cfg) is the public entry to ops->vm_config (needed
 *   before the VM, hence before the tracker, exists).
 * - tracker_create_opts() takes struct track_opts (kmod reset order,
 *   background draining); tracker_create() uses the defaults.
 * - tracker_error(), tracker_stats(), tracker_vcpu_stats(), track_kmod_usable()
 *   and track_backend_parse() are additions.
 * - track_pick_auto() fills a reason string for the agent to print.
 * - struct dirty_log carries ring-full statistics (exits handled since the
 *   previous harvest, their time and entries), a summary per part, and
 *   ->everything; struct tracker is opaque (ops in track/backend.h).
 */
#ifndef VMDIRTY_TRACK_H
#define VMDIRTY_TRACK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "vmm/vmm.h"

#define TRACK_PAGE_SHIFT	12
#define TRACK_RING_DEFAULT	4096	/* entries per vCPU ring (QEMU's usual) */
/*
 * With vmdirty.ko, KVM's largest ring (1 MiB per vCPU): the module orders
 * each batch so that KVM's resets coalesce, and a bigger batch coalesces
 * more.  Measured in the test host (harvest_bench, 1 GiB, random writes):
 * at 25% and 99.6% of RAM dirty, 479 and 404 ns/page with 65536 entries
 * against 1402 and 1107 with 4096; the ring reaper stays near 1000-1200.
 */
#define TRACK_RING_KMOD_DEFAULT	65536

enum track_backend { TRACK_AUTO, TRACK_BITMAP, TRACK_RING, TRACK_KMOD, TRACK_RING_SORTED,
		     TRACK_NR };

/*
 * Page p (a RAM page number, gpa = p << 12) of [first_page, first_page +
 * npages) is dirty iff bit (p - first_page) of bits is set (bit b of word w
 * is page 64 * w + b).  Bit b of summary word w set means bits word 64 * w
 * + b may be non-zero; clear means it is zero.  summary may be NULL.
 */
struct dirty_log_part {
	uint64_t first_page;
	uint64_t npages;
	const uint64_t *bits;
	const uint64_t *summary;
};

struct dirty_log {
	unsigned int nr_parts;		/* one per memslot, ascending gpa */
	struct dirty_log_part part[VM_MAX_SLOTS];
	uint64_t count;			/* dirty pages in this log */
	bool everything;		/* first harvest: every page reported */
	/* This harvest: */
	uint64_t entries;		/* ring entries (bitmap: dirty bits) collected */
	uint64_t resets;		/* entries (bitmap: pages) re-protected */
	uint64_t collect_ns;		/* collecting (GET / reaping; kmod: the ioctl) */
	uint64_t reset_ns;		/* re-protecting (CLEAR / RESET); kmod: 0, see kernel_ns */
	uint64_t kernel_ns;		/* kmod: the module's duration_ns (collect + reset) */
	uint64_t total_ns;		/* the whole tracker_harvest() */
	/* Ring-full exits handled since the previous harvest (ring, kmod): */
	uint64_t ring_full;		/* exits */
	uint64_t ring_full_ns;		/* time their handlers took */
	uint64_t ring_full_entries;	/* entries those handlers collected */
	uint64_t dropped;		/* entries naming no known slot (should be 0) */
};

/* Options; zero means the default.  (The ring size is the VM's.) */
struct track_opts {
	bool kmod_unsorted;		/* kmod: VMDIRTY_HARVEST_UNSORTED (benchmarks) */
	bool kmod_drain;		/* kmod: background draining (VMDIRTY_IOC_SET_DRAIN) */
	uint32_t drain_min_us, drain_max_us, drain_high_pct; /* 0: the module's defaults */
};

/* Per-vCPU counters, where the backend knows them (ring, kmod). */
struct track_vcpu_stat {
	uint64_t entries;		/* ring entries collected, all time */
	uint64_t last_entries;		/* between the last two harvests */
	uint64_t last_ns;		/* CLOCK_MONOTONIC of the last harvest */
	uint32_t ring_size, ring_used;	/* ring_used: kmod only, at its last walk */
};

/* Cumulative statistics of a tracker. */
struct track_stats {
	uint64_t harvests, pages, entries, resets;
	uint64_t ring_full, ring_full_ns, ring_full_entries;
	uint64_t reattaches;		/* kmod: sessions reopened (stale layout, conflict) */
	uint64_t conflicts;		/* kmod: sessions failed: someone else collected */
	uint64_t dropped;
};

struct tracker;

const char *track_backend_name(enum track_backend b);
/* "auto", "bitmap", "ring", "kmod", "ring-sorted" -> backend; -EINVAL otherwise. */
int track_backend_parse(const char *name, enum track_backend *b);

/*
 * kmod when /dev/vmdirty answers GET_INFO with our ABI and knows ATTACH,
 * else ring when KVM has KVM_CAP_DIRTY_LOG_RING_ACQ_REL, else bitmap.
 * why (may be NULL) receives one line saying which and why.
 */
enum track_backend track_pick_auto(char *why, size_t len);
/* The kmod half of that: why receives the reason either way; features may be NULL. */
bool track_kmod_usable(char *why, size_t len, uint32_t *features);

/*
 * Fill what backend b needs in cfg before vm_create(): the dirty ring (and
 * its size, cfg->ring_entries or the backend's default if 0) or manual protect;
 * dirty logging stays off until tracker_start().  b must not be TRACK_AUTO.
 */
int track_vm_config(enum track_backend b, struct vm_config *cfg);

/*
 * TRACK_AUTO picks from the VM: bitmap without a ring, else kmod when the
 * module is usable, else ring.  (Pick first with track_pick_auto() and
 * configure the VM for it: track_vm_config() refuses TRACK_AUTO.)
 */
int tracker_create(enum track_backend b, struct vm *vm, struct tracker **out);
int tracker_create_opts(enum track_backend b, struct vm *vm, const struct track_opts *o,
			struct tracker **out);
enum track_backend tracker_backend(const struct tracker *t);
const char *tracker_name(const struct tracker *t);

int tracker_start(struct tracker *t);
/* Collect and re-protect; fill log (valid until the next harvest). */
int tracker_harvest(struct tracker *t, struct dirty_log *log);
/* KVM_EXIT_DIRTY_RING_FULL on v, from v's thread. */
int tracker_ring_full(struct tracker *t, struct vcpu *v);
/* Adapters: vcpu_run_cmd()'s callback and the runner's hook (ctx = tracker). */
int tracker_ring_full_cb(struct vcpu *v, void *tracker);
int tracker_runner_ring_full(void *tracker, struct vcpu *v);
/* Fill up to n entries indexed by vCPU idx; count or -EOPNOTSUPP (bitmap). */
int tracker_vcpu_stats(struct tracker *t, struct track_vcpu_stat *st, unsigned int n);
void tracker_stats(struct tracker *t, struct track_stats *st);
/* The last failure of start or harvest in words ("" if none). */
const char *tracker_error(const struct tracker *t);
/* Dirty logging off (session closed), rings left empty; may start again. */
void tracker_stop(struct tracker *t);
void tracker_destroy(struct tracker *t);

/* Walking a log (dirty_log.c): set bits in ascending page order. */
bool dirty_log_test(const struct dirty_log *log, uint64_t page);
/* fn returns 0 to go on; anything else stops the walk and is returned. */
int dirty_log_for_each(const struct dirty_log *log,
		       int (*fn)(void *ctx, uint64_t page), void *ctx);
/* Count the set bits (dirty pages) of a log, from its bitmaps. */
uint64_t dirty_log_popcount(const struct dirty_log *log);

struct dirty_log_iter {
	const struct dirty_log *log;
	unsigned int part;
	uint64_t word;			/* index of the word in bits */
	uint64_t bits;			/* bits of that word not yet returned */
};
void dirty_log_iter_init(struct dirty_log_iter *it, const struct dirty_log *log);
/* Next dirty page in *page; false at the end. */
bool dirty_log_next(struct dirty_log_iter *it, uint64_t *page);

#endif
