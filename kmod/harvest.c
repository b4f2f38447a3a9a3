// SPDX-License-Identifier: GPL-2.0
/*
 * vmdirty: the walk over every vCPU's dirty ring, the ordering of each
 * ring's batch before KVM resets it, and VMDIRTY_IOC_HARVEST.
 *
 * A ring entry goes 00 (free) -> 01 (DIRTY, pushed by KVM) -> 1X (RESET,
 * marked collected by us) -> 00 (KVM_RESET_DIRTY_RINGS re-protected it).
 * Entries in the DIRTY state belong to the collector: KVM only writes at
 * its dirty_index, past them.  So a batch may be rewritten in place, in
 * ascending (slot, offset) order, before it is marked collected; KVM's
 * reset then merges neighbours into 64-page masks, one MMU-lock round per
 * mask instead of one per entry.
 */
#include <linux/kvm_host.h>
#include <linux/ktime.h>

#include "session.h"
#include "vmdirty.h"

/*
 * Count the DIRTY entries from *fetch on.  Entries already marked collected
 * at *fetch were collected by someone else before ATTACH: step over them,
 * KVM resets them with ours.
 */
static u32 vmdirty_ring_scan(struct kvm_dirty_gfn *gfns, u32 size, u32 *fetch,
			     u64 *skipped)
{
	u32 mask = size - 1, n = 0, flags;

	while (n + *skipped < size) {
		/*
		 * DIRTY is set after slot and offset: pairs with the smp_wmb()
		 * in kvm_dirty_ring_push().
		 */
		flags = smp_load_acquire(&gfns[(*fetch + n) & mask].flags);
		if (flags & KVM_DIRTY_GFN_F_RESET) {
			if (n)
				break;
			(*fetch)++;
			(*skipped)++;
			continue;
		}
		if (!(flags & KVM_DIRTY_GFN_F_DIRTY))
			break;
		n++;
	}
	return n;
}

/* Hand a batch back to KVM: every entry is marked collected, in order. */
static void vmdirty_ring_publish(struct kvm_dirty_gfn *gfns, u32 mask,
				 u32 start, u32 n)
{
	u32 i;

	for (i = 0; i < n; i++)
		/*
		 * The (rewritten) slot and offset are visible before RESET:
		 * pairs with smp_load_acquire() in kvm_dirty_gfn_harvested().
		 */
		smp_store_release(&gfns[(start + i) & mask].flags,
				  KVM_DIRTY_GFN_F_RESET);
}

static void vmdirty_gfn_write(struct kvm_dirty_gfn *e, u32 slot, u64 offset)
{
	WRITE_ONCE(e->slot, slot);
	WRITE_ONCE(e->offset, offset);
}

/* As logged: each entry sets its bit in the live set, nothing moves. */
static void vmdirty_batch_unsorted(struct vmdirty_session *s,
				   struct kvm_dirty_gfn *gfns, u32 mask,
				   u32 start, u32 n, struct vmdirty_collect *c)
{
	struct vmdirty_bits *live = &s->sets[s->live];
	u32 i;

	for (i = 0; i < n; i++) {
		struct kvm_dirty_gfn *e = &gfns[(start + i) & mask];
		u64 offset = READ_ONCE(e->offset);
		int idx = vmdirty_slots_find(s, READ_ONCE(e->slot), offset);

		if (idx < 0)
			c->dropped++;
		else
			c->new_pages += vmdirty_bits_set(live, s->slots[idx].first_bit + offset);
	}
	c->entries += n;
}

/**
 * vmdirty_batch_order - set a batch's bits and rewrite it in order
 * @s: the session (its scratch set is clear on entry and on return)
 * @gfns: the ring
 * @mask: ring size - 1
 * @start: free-running index of the batch's first entry
 * @n: entries in the batch, all DIRTY and owned by us
 * @c: counts of the walk, added to
 *
 * The batch's pages go through the scratch bitmap, whose summary keeps the
 * walk proportional to the batch: that both removes duplicates and orders
 * them, cheaper than a comparison sort.  The batch is then rewritten as:
 * the entries to drop, unchanged (KVM still resets what it knows), the
 * distinct pages in ascending (slot, offset) order, and, in the positions
 * duplicates left over, copies of the last page (offset delta 0, which
 * KVM's reset merges).  The entry count, hence KVM's reset count, stays @n.
 */
void vmdirty_batch_order(struct vmdirty_session *s, struct kvm_dirty_gfn *gfns,
			 u32 mask, u32 start, u32 n, struct vmdirty_collect *c)
{
	struct vmdirty_bits *scratch = &s->scratch, *live = &s->sets[s->live];
	struct kvm_dirty_gfn *e, *last = NULL;
	u32 i, pos = 0, si = 0;
	u64 sw, w, bits, bit;

	lockdep_assert_held(&s->lock);
	for (i = 0; i < n; i++) {
		u32 slot;
		u64 offset;
		int idx;

		e = &gfns[(start + i) & mask];
		slot = READ_ONCE(e->slot);
		offset = READ_ONCE(e->offset);
		idx = vmdirty_slots_find(s, slot, offset);
		if (idx >= 0) {
			vmdirty_bits_set(scratch, s->slots[idx].first_bit + offset);
			continue;
		}
		/* Entries before i are read already: compact to the front. */
		if (pos != i)
			vmdirty_gfn_write(&gfns[(start + pos) & mask], slot, offset);
		pos++;
	}
	c->dropped += pos;
	c->entries += n;

	for (sw = scratch->lo; sw < scratch->hi; sw++) {
		u64 sum = scratch->summary[sw];

		scratch->summary[sw] = 0;
		for (; sum; sum &= sum - 1) {
			w = sw * 64 + __ffs64(sum);
			bits = scratch->bitmap[w];
			scratch->bitmap[w] = 0;
			c->new_pages += vmdirty_bits_or(live, w, bits);
			for (; bits; bits &= bits - 1) {
				bit = w * 64 + __ffs64(bits);
				while (si + 1 < s->nr_slots &&
				       bit >= s->slots[si + 1].first_bit)
					si++;
				last = &gfns[(start + pos++) & mask];
				vmdirty_gfn_write(last, s->slots[si].key,
						  bit - s->slots[si].first_bit);
			}
		}
	}
	scratch->lo = U64_MAX;
	scratch->hi = 0;

	for (; pos < n; pos++)
		vmdirty_gfn_write(&gfns[(start + pos) & mask], last->slot,
				  last->offset);
}

/* Phase 1: how much each ring holds; new vCPUs get their table entry. */
static void vmdirty_collect_scan(struct vmdirty_session *s,
				 struct vmdirty_collect *c)
{
	struct kvm_vcpu *vcpu;
	unsigned long i;

	kvm_for_each_vcpu(i, vcpu, s->kvm) {
		struct kvm_dirty_ring *ring = &vcpu->dirty_ring;
		struct vmdirty_vcpu *v;
		u32 used;

		if (WARN_ON_ONCE(i >= s->max_vcpus))
			break;
		v = &s->vcpus[i];
		if (!v->seen) {
			/*
			 * Only our resets move reset_index once we are
			 * attached, and they run under s->lock, as we do.
			 */
			v->fetch = READ_ONCE(ring->reset_index);
			v->seen = true;
			s->nr_vcpus = max_t(u32, s->nr_vcpus, i + 1);
			vmdirty_shm_vcpu_seen(s, i, vcpu->vcpu_id, ring->size);
		}
		used = READ_ONCE(ring->dirty_index) - READ_ONCE(ring->reset_index);
		WRITE_ONCE(s->shm_vcpus[i].ring_used, used);
		c->max_fill_pct = max_t(u32, c->max_fill_pct,
					div_u64((u64)used * 100, ring->soft_limit));
		v->batch = vmdirty_ring_scan(ring->dirty_gfns, ring->size,
					     &v->fetch, &c->skipped);
		c->nr_vcpus++;
	}
}

/**
 * vmdirty_collect - collect every vCPU's ring into the live set
 * @s: the session
 * @sorted: rewrite each batch in order (else keep the logged order)
 * @c: zeroed by the caller; what was found
 *
 * Every collected entry is marked for KVM's reset; the caller has KVM reset
 * them.  The layout is checked between the scan and the reading of entries:
 * an entry pushed under a new layout is seen DIRTY only after that layout
 * was installed, so the check sees it too and the entry is dropped.
 */
void vmdirty_collect(struct vmdirty_session *s, bool sorted,
		     struct vmdirty_collect *c)
{
	struct kvm_vcpu *vcpu;
	unsigned long i;

	lockdep_assert_held(&s->lock);
	vmdirty_collect_scan(s, c);
	c->stale = vmdirty_slots_check(s);

	kvm_for_each_vcpu(i, vcpu, s->kvm) {
		struct kvm_dirty_ring *ring = &vcpu->dirty_ring;
		struct vmdirty_vcpu *v;
		u32 mask = ring->size - 1;

		if (i >= s->max_vcpus)
			break;
		v = &s->vcpus[i];
		/* Created after the scan: next walk. */
		if (!v->seen || !v->batch)
			continue;
		if (sorted)
			vmdirty_batch_order(s, ring->dirty_gfns, mask, v->fetch,
					    v->batch, c);
		else
			vmdirty_batch_unsorted(s, ring->dirty_gfns, mask,
					       v->fetch, v->batch, c);
		vmdirty_ring_publish(ring->dirty_gfns, mask, v->fetch, v->batch);
		v->fetch += v->batch;
		v->since_swap += v->batch;
		WRITE_ONCE(s->shm_vcpus[i].entries,
			   s->shm_vcpus[i].entries + v->batch);
		v->batch = 0;
	}
	vmdirty_shm_account(s, c);
	if (c->stale)
		vmdirty_genl_notify(s, VMDIRTY_CMD_LAYOUT_STALE);
}

/**
 * vmdirty_harvest - VMDIRTY_IOC_HARVEST
 * @s: an attached session
 * @h: the validated argument; its out fields are filled
 *
 * Collect, have KVM reset what was collected, then swap unless NO_SWAP.
 * Return: 0, -EINTR, or the reset's error (-ESRCH: the VM's process is
 * gone; the collected bits stay in the live set).
 */
int vmdirty_harvest(struct vmdirty_session *s, struct vmdirty_harvest *h)
{
	struct vmdirty_shm_header *hdr = s->hdr;
	struct vmdirty_collect c = {};
	bool swap = !(h->flags & VMDIRTY_HARVEST_NO_SWAP);
	u64 t0;
	int ret;

	if (mutex_lock_killable(&s->lock))
		return -EINTR;
	t0 = ktime_get_ns();
	vmdirty_collect(s, !(h->flags & VMDIRTY_HARVEST_UNSORTED), &c);
	ret = vmdirty_reset_rings(s);
	if (ret < 0)
		goto out_unlock;
	h->duration_ns = ktime_get_ns() - t0;
	h->reset = ret;
	if (swap)
		vmdirty_shm_swap(s);
	else
		vmdirty_shm_drained(s);

	h->entries = c.entries;
	h->new_pages = c.new_pages;
	h->dropped = c.dropped;
	h->pages = swap ? hdr->snapshot_pages : hdr->live_pages;
	h->seq = hdr->seq;
	h->snapshot = hdr->snapshot;
	h->layout_gen = hdr->layout_gen;
	h->status = hdr->flags;
	h->nr_vcpus = c.nr_vcpus;
	ret = 0;
out_unlock:
	mutex_unlock(&s->lock);
	return ret;
}
