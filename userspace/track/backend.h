/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Inside the trackers: struct tracker and the table of backend hooks.  Only
 * the files of track/ include this; everyone else uses track.h.
 */
#ifndef VMDIRTY_TRACK_BACKEND_H
#define VMDIRTY_TRACK_BACKEND_H

#include <pthread.h>

#include <linux/vmdirty.h>

#include "track/track.h"

struct tracker;

/*
 * One backend.  track.c holds the lock around start, harvest and stop and
 * does what is common (the first harvest's everything, timing, ring-full
 * accounting); the hooks do only their backend's work.
 */
struct tracker_ops {
	const char *name;
	int  (*vm_config)(struct vm_config *cfg);
	int  (*create)(struct tracker *t);		/* allocate t->priv */
	int  (*start)(struct tracker *t);		/* logging on, attach, ... */
	/* Collect + re-protect; fill parts, count, entries, resets, *_ns. */
	int  (*harvest)(struct tracker *t, struct dirty_log *log);
	/* From a vCPU thread; returns entries collected or -errno. */
	int  (*ring_full)(struct tracker *t, struct vcpu *v);
	int  (*vcpu_stats)(struct tracker *t, struct track_vcpu_stat *st, unsigned int n);
	void (*stop)(struct tracker *t);
	void (*destroy)(struct tracker *t);
};

/* Atomics: updated by vCPU threads without the lock. */
struct track_counters {
	uint64_t ring_full, ring_full_ns, ring_full_entries;
};

struct tracker {
	const struct tracker_ops *ops;
	enum track_backend backend;
	struct vm *vm;
	struct track_opts opts;
	pthread_mutex_t lock;		/* start, harvest, stop, ring reaping */
	bool started;
	bool first;			/* the next harvest reports everything */
	uint64_t *ones[VM_MAX_SLOTS];	/* all-ones bitmap (exact length) per slot */
	uint64_t *ones_summary[VM_MAX_SLOTS];
	struct track_counters pending;	/* since the previous harvest */
	struct track_stats stats;	/* under lock, except ring_full* (atomics) */
	char error[192];		/* the last failure, in words */
	void *priv;
};

extern const struct tracker_ops track_bitmap_ops;
extern const struct tracker_ops track_ring_ops;
extern const struct tracker_ops track_ring_sorted_ops;
extern const struct tracker_ops track_kmod_ops;

/*
 * ring_sort.c: the sorted reaper's batch.  Scratch bits per VM slot, clear
 * between batches; lo/hi bound the summary words a batch touched.
 */
struct ring_sort {
	uint64_t *bits[VM_MAX_SLOTS];
	uint64_t *summary[VM_MAX_SLOTS];
	uint64_t lo[VM_MAX_SLOTS], hi[VM_MAX_SLOTS];
};

int ring_sort_init(struct ring_sort *rs, const struct vm *vm);
void ring_sort_free(struct ring_sort *rs);
/*
 * vcpu_ring_reap(v, fetch, true, fn, ctx), but the batch is rewritten in
 * ascending (slot, offset) order before it is marked collected; fn sees
 * each distinct page once (and each entry naming no page).  The count of
 * entries collected, or -ENODEV.
 */
int ring_sort_reap(struct ring_sort *rs, struct vcpu *v, uint32_t *fetch,
		   void (*fn)(void *ctx, uint32_t slot, uint64_t offset), void *ctx);

/* Helpers shared by the backends (track.c). */
/* Record why something failed (tracker_error()); returns err. */
int track_error(struct tracker *t, int err, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
uint64_t track_now_ns(void);
uint64_t track_words(uint64_t npages);		/* bitmap words for npages */
uint64_t track_summary_words(uint64_t npages);	/* summary words for npages */
/* Fill log->part[] with one part per VM slot, bits/summary left NULL. */
void track_log_parts(struct tracker *t, struct dirty_log *log);
/* Slot index in vm->slots of a KVM slot number ((as_id << 16) | id), or -1. */
int track_slot_index(const struct vm *vm, uint32_t slot);
/*
 * Point *fetch at the oldest DIRTY entry of v's ring (KVM's reset index)
 * and return true, or return false if the ring holds none (*fetch is left
 * alone: where KVM pushes next cannot be told from an empty ring).
 */
bool track_ring_resync(struct vcpu *v, uint32_t *fetch);
/* Collect and reset every ring in userspace, dropping the entries (no one
 * tracks them any more); what the kmod backend does after its session. */
int track_ring_discard(struct vm *vm, uint32_t *fetch);
/*
 * kmod.c: check a mapped region (size bytes) against ATTACH's answer and a
 * VM of nr_vcpus: magic, ABI, sizes, every table and bitmap in bounds and
 * aligned.  -EPROTO with the reason in why.
 */
int track_kmod_check_region(const void *region, uint64_t size, const struct vmdirty_attach *at,
			    unsigned int nr_vcpus, char *why, size_t len);
/* Ring-full bookkeeping for a handler that took ns and collected n. */
void track_account_ring_full(struct tracker *t, uint64_t ns, uint64_t n);

#endif
