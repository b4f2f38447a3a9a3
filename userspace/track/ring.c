// SPDX-License-Identifier: GPL-2.0
/*
 * The ring tracker: the userspace reaper of KVM's per-vCPU dirty rings, the
 * way QEMU does it.  A harvest reaps every vCPU's ring (load-acquire of each
 * entry's flags, store-release of RESET: vcpu_ring_reap()) into the live
 * bitmap set, calls KVM_RESET_DIRTY_RINGS, then swaps the live set with the
 * snapshot the log points to.  A vCPU that takes KVM_EXIT_DIRTY_RING_FULL
 * reaps every ring into the live set and resets (QEMU's default), under the
 * tracker's lock, so nothing logged is lost and it keeps running.
 *
 * ring-sorted is the same reaper rewriting each batch in gfn order before
 * marking it collected (ring_sort.c), as vmdirty.ko does: the fair baseline
 * for the module's ordered resets.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "track/backend.h"

struct ring_set {
	uint64_t *bits[VM_MAX_SLOTS];
	uint64_t *summary[VM_MAX_SLOTS];
	uint64_t count;			/* bits set */
};

struct ring_tracker {
	struct ring_set set[2];
	unsigned int live;		/* set[live] collects, set[!live] is the snapshot */
	uint32_t fetch[VM_MAX_VCPUS];	/* reap cursor per vCPU */
	bool synced[VM_MAX_VCPUS];	/* fetch is known to follow KVM's index */
	uint64_t entries[VM_MAX_VCPUS];	/* collected, all time */
	uint64_t mark[VM_MAX_VCPUS];	/* entries[] at the last harvest */
	uint64_t last[VM_MAX_VCPUS];	/* collected between the last two harvests */
	uint64_t last_ns;
	bool sorted;			/* ring-sorted */
	struct ring_sort sort;
};

/* What the reap callback needs. */
struct reap_ctx {
	const struct vm *vm;
	struct ring_set *set;
	int slot;			/* index of the last slot seen, -1 */
	uint64_t dropped;
};

static int ring_vm_config(struct vm_config *cfg)
{
	if (!cfg->ring_entries)
		cfg->ring_entries = TRACK_RING_DEFAULT;
	if (cfg->ring_entries & (cfg->ring_entries - 1))
		return -EINVAL;	/* KVM wants a power of two */
	cfg->manual_protect = false;
	cfg->log_dirty = false;
	return 0;
}

static void ring_destroy(struct tracker *t)
{
	struct ring_tracker *r = t->priv;

	if (!r)
		return;
	for (unsigned int s = 0; s < 2; s++) {
		for (unsigned int i = 0; i < VM_MAX_SLOTS; i++) {
			free(r->set[s].bits[i]);
			free(r->set[s].summary[i]);
		}
	}
	ring_sort_free(&r->sort);
	free(r);
	t->priv = NULL;
}

static int ring_create(struct tracker *t)
{
	struct ring_tracker *r;

	if (!t->vm->ring_entries || t->vm->nr_vcpus > VM_MAX_VCPUS)
		return -EINVAL;
	r = calloc(1, sizeof(*r));
	if (!r)
		return -ENOMEM;
	t->priv = r;
	for (unsigned int s = 0; s < 2; s++) {
		for (unsigned int i = 0; i < t->vm->nr_slots; i++) {
			uint64_t np = t->vm->slots[i].size >> TRACK_PAGE_SHIFT;

			r->set[s].bits[i] = calloc(track_words(np), 8);
			r->set[s].summary[i] = calloc(track_summary_words(np), 8);
			if (!r->set[s].bits[i] || !r->set[s].summary[i])
				return -ENOMEM;
		}
	}
	return 0;
}

/* Clear a set through its summary: cost follows what was set. */
static void set_clear(const struct vm *vm, struct ring_set *set)
{
	for (unsigned int i = 0; i < vm->nr_slots; i++) {
		uint64_t sw = track_summary_words(vm->slots[i].size >> TRACK_PAGE_SHIFT);

		for (uint64_t j = 0; j < sw; j++) {
			for (uint64_t s = set->summary[i][j]; s; s &= s - 1)
				set->bits[i][j * 64 + (uint64_t)__builtin_ctzll(s)] = 0;
			set->summary[i][j] = 0;
		}
	}
	set->count = 0;
}

static void reap_one(void *ctx, uint32_t slot, uint64_t offset)
{
	struct reap_ctx *c = ctx;
	struct ring_set *set = c->set;
	uint64_t w = offset / 64, m = 1ull << (offset % 64);
	int i = c->slot;

	if (i < 0 || c->vm->slots[i].id != slot) {
		i = track_slot_index(c->vm, slot);
		if (i < 0) {
			c->dropped++;
			return;
		}
		c->slot = i;
	}
	if (offset >= c->vm->slots[i].size >> TRACK_PAGE_SHIFT) {
		c->dropped++;
		return;
	}
	if (set->bits[i][w] & m)
		return;
	set->bits[i][w] |= m;
	set->summary[i][w / 64] |= 1ull << (w % 64);
	set->count++;
}

static int reap(struct ring_tracker *r, struct vcpu *v, uint32_t *fetch, struct reap_ctx *c)
{
	if (r->sorted)
		return ring_sort_reap(&r->sort, v, fetch, reap_one, c);
	return vcpu_ring_reap(v, fetch, true, reap_one, c);
}

/*
 * Reap v's ring into the live set; the caller holds the lock.  Our cursor
 * follows KVM's index only if we collected every entry since KVM's last
 * reset; after another collector (the module) it may point anywhere, even
 * into the middle of the run of DIRTY entries, where reaping would leave the
 * run's head behind and KVM's reset would stop at it.  So while not known to
 * be in step, start from the run's first entry; once in step, look only
 * when a ring-full exit finds nothing at the cursor.  Idle vCPUs cost
 * nothing once in step.
 */
static int reap_vcpu(struct tracker *t, struct vcpu *v, struct reap_ctx *c, bool full)
{
	struct ring_tracker *r = t->priv;
	uint32_t *fetch = &r->fetch[v->idx];
	bool synced = r->synced[v->idx];
	int n;

	if (!synced)
		synced = track_ring_resync(v, fetch);
	n = reap(r, v, fetch, c);
	if (n == 0 && full && track_ring_resync(v, fetch))
		n = reap(r, v, fetch, c);
	if (n > 0)
		r->entries[v->idx] += (uint64_t)n;
	r->synced[v->idx] = synced;
	return n;
}

static int ring_start(struct tracker *t)
{
	struct ring_tracker *r = t->priv;

	set_clear(t->vm, &r->set[0]);
	set_clear(t->vm, &r->set[1]);
	/* What the rings still hold is reaped by the first harvest. */
	for (unsigned int i = 0; i < t->vm->nr_vcpus; i++)
		r->synced[i] = false;
	return vm_set_dirty_logging(t->vm, true);
}

static int ring_harvest(struct tracker *t, struct dirty_log *log)
{
	struct ring_tracker *r = t->priv;
	struct reap_ctx c = { .vm = t->vm, .set = &r->set[r->live], .slot = -1 };
	struct ring_set *snap;
	uint64_t t0, t1, t2;
	int n, ret;

	t0 = track_now_ns();
	for (unsigned int i = 0; i < t->vm->nr_vcpus; i++) {
		n = reap_vcpu(t, t->vm->vcpus[i], &c, false);
		if (n < 0)
			return n;
		log->entries += (uint64_t)n;
	}
	t1 = track_now_ns();
	ret = vm_reset_dirty_rings(t->vm);
	if (ret < 0)
		return ret;
	t2 = track_now_ns();
	log->resets = (uint64_t)ret;

	/* Swap: the live set becomes the log, the old snapshot is cleared. */
	snap = &r->set[r->live];
	r->live ^= 1;
	set_clear(t->vm, &r->set[r->live]);
	track_log_parts(t, log);
	for (unsigned int i = 0; i < t->vm->nr_slots; i++) {
		log->part[i].bits = snap->bits[i];
		log->part[i].summary = snap->summary[i];
	}
	log->count = snap->count;
	log->dropped = c.dropped;
	for (unsigned int i = 0; i < t->vm->nr_vcpus; i++) {
		r->last[i] = r->entries[i] - r->mark[i];
		r->mark[i] = r->entries[i];
	}
	r->last_ns = t2;
	log->collect_ns = (t1 - t0) + (track_now_ns() - t2);
	log->reset_ns = t2 - t1;
	return 0;
}

/*
 * Like QEMU (kvm_dirty_ring_reap(s, NULL) unless a dirty limit is in
 * service): reap every vCPU, not only the one that exited, so that one reset
 * serves all rings and the others exit less often.  v's own ring first.
 */
static int ring_ring_full(struct tracker *t, struct vcpu *v)
{
	struct ring_tracker *r = t->priv;
	struct reap_ctx c = { .vm = t->vm, .slot = -1 };
	int n, total, ret;

	pthread_mutex_lock(&t->lock);
	c.set = &r->set[r->live];
	total = reap_vcpu(t, v, &c, true);
	for (unsigned int i = 0; i < t->vm->nr_vcpus && total >= 0; i++) {
		if (t->vm->vcpus[i] == v)
			continue;
		n = reap_vcpu(t, t->vm->vcpus[i], &c, false);
		total = n < 0 ? n : total + n;
	}
	if (total >= 0) {
		ret = vm_reset_dirty_rings(t->vm);
		if (ret < 0)
			total = ret;
	}
	t->stats.dropped += c.dropped;
	pthread_mutex_unlock(&t->lock);
	return total;
}

static int ring_vcpu_stats(struct tracker *t, struct track_vcpu_stat *st, unsigned int n)
{
	struct ring_tracker *r = t->priv;
	unsigned int i;

	for (i = 0; i < n && i < t->vm->nr_vcpus; i++) {
		st[i] = (struct track_vcpu_stat){
			.entries = r->entries[i],
			.last_entries = r->last[i],
			.last_ns = r->last_ns,
			.ring_size = t->vm->vcpus[i]->ring_entries,
		};
	}
	return (int)i;
}

static void ring_stop(struct tracker *t)
{
	struct ring_tracker *r = t->priv;

	/* Logging off first: no new pushes; then leave the rings empty. */
	vm_set_dirty_logging(t->vm, false);
	track_ring_discard(t->vm, r->fetch);
}

static int ring_sorted_create(struct tracker *t)
{
	struct ring_tracker *r;
	int ret = ring_create(t);

	if (ret < 0)
		return ret;
	r = t->priv;
	r->sorted = true;
	return ring_sort_init(&r->sort, t->vm);
}

const struct tracker_ops track_ring_sorted_ops = {
	.name		= "ring-sorted",
	.vm_config	= ring_vm_config,
	.create		= ring_sorted_create,
	.start		= ring_start,
	.harvest	= ring_harvest,
	.ring_full	= ring_ring_full,
	.vcpu_stats	= ring_vcpu_stats,
	.stop		= ring_stop,
	.destroy	= ring_destroy,
};

const struct tracker_ops track_ring_ops = {
	.name		= "ring",
	.vm_config	= ring_vm_config,
	.create		= ring_create,
	.start		= ring_start,
	.harvest	= ring_harvest,
	.ring_full	= ring_ring_full,
	.vcpu_stats	= ring_vcpu_stats,
	.stop		= ring_stop,
	.destroy	= ring_destroy,
};
