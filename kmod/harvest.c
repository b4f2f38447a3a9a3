// SPDX-License-Identifier: GPL-2.0
/*
 * vmdirty: the walk over every vCPU's dirty ring, the ordering of each
 * ring's batch before KVM resets it, and VMDIRTY_IOC_HARVEST.
 *
 * A batch the walk claimed (ring.c) is the session's alone: KVM only writes
 * at its dirty_index, past it, and cannot free it while the walk holds
 * kvm->slots_lock.  So it may be rewritten in place, in ascending (slot,
 * offset) order, before it is marked collected; KVM's reset then merges
 * neighbours into 64-page masks, one MMU-lock round per mask instead of one
 * per entry.  The batch's pages go to the private pending set; only once
 * KVM reset every collected entry are they moved to the live set, as the
 * UAPI promises (a live bit's page is write-protected again).
 */
#include <linux/kvm_host.h>
#include <linux/ktime.h>
#include <linux/sched.h>

#include "session.h"
#include "vmdirty.h"

static void vmdirty_gfn_write(struct kvm_dirty_gfn *e, u32 slot, u64 offset)
{
	WRITE_ONCE(e->slot, slot);
	WRITE_ONCE(e->offset, offset);
}

/* As logged: each entry sets its pending bit, nothing moves. */
static void vmdirty_batch_unsorted(struct vmdirty_session *s,
				   struct kvm_dirty_gfn *gfns, u32 mask,
				   u32 start, u32 n, struct vmdirty_collect *c)
{
	u32 i;

	for (i = 0; i < n; i++) {
		struct kvm_dirty_gfn *e = &gfns[(start + i) & mask];
		u64 offset = READ_ONCE(e->offset);
		int idx = vmdirty_slots_find(s, READ_ONCE(e->slot), offset);

		if (idx < 0)
			c->dropped++;
		else
			vmdirty_bits_set(&s->pending, s->slots[idx].first_bit + offset);
	}
	c->entries += n;
}

/**
 * vmdirty_batch_order - set a batch's bits and rewrite it in order
 * @s: the session (its scratch set is clear on entry and on return)
 * @gfns: the ring
 * @mask: ring size - 1
 * @start: free-running index of the batch's first entry
 * @n: entries in the batch, all claimed by us
 * @c: counts of the walk, added to
 *
 * The batch's pages go through the scratch bitmap, whose summary keeps the
 * walk proportional to the batch: that both removes duplicates and orders
 * them, cheaper than a comparison sort.  They end in the pending set.  The
 * batch is then rewritten as: the entries to drop, unchanged (KVM still
 * resets what it knows), the
 * distinct pages in ascending (slot, offset) order, and, in the positions
 * duplicates left over, copies of the last page (offset delta 0, which
 * KVM's reset merges).  The entry count, hence KVM's reset count, stays @n.
 */
void vmdirty_batch_order(struct vmdirty_session *s, struct kvm_dirty_gfn *gfns,
			 u32 mask, u32 start, u32 n, struct vmdirty_collect *c)
{
	struct vmdirty_bits *scratch = &s->scratch;
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
			vmdirty_bits_or(&s->pending, w, bits);
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

/* The session failed: say it once, loudly, and collect nothing more. */
static void vmdirty_conflict(struct vmdirty_session *s)
{
	lockdep_assert_held(&s->lock);
	if (s->conflict)
		return;
	s->conflict = true;
	WRITE_ONCE(s->hdr->flags, s->hdr->flags | VMDIRTY_STATUS_RING_CONFLICT);
	pr_warn_ratelimited("session %u: someone else collected or rewrote the dirty rings of VM pid %d; the session stops\n",
			    s->id, s->kvm->userspace_pid);
	vmdirty_genl_notify(s, VMDIRTY_CMD_RING_CONFLICT);
}

/* Claim, order and mark collected one vCPU's new entries. */
static int vmdirty_collect_vcpu(struct vmdirty_session *s, struct kvm_vcpu *vcpu,
				struct vmdirty_vcpu *v, u32 idx, bool sorted,
				struct vmdirty_collect *c)
{
	struct kvm_dirty_ring *ring = &vcpu->dirty_ring;
	u32 mask = ring->size - 1;
	int ret, err;

	ret = vmdirty_ring_claim(vcpu, v);
	if (v->batch) {
		if (sorted)
			vmdirty_batch_order(s, ring->dirty_gfns, mask, v->fetch,
					    v->batch, c);
		else
			vmdirty_batch_unsorted(s, ring->dirty_gfns, mask,
					       v->fetch, v->batch, c);
	}
	err = vmdirty_ring_publish(vcpu, v);
	v->since_swap += v->batch;
	WRITE_ONCE(s->shm_vcpus[idx].entries, s->shm_vcpus[idx].entries + v->batch);
	v->batch = 0;
	return ret ?: err;
}

/**
 * vmdirty_collect - collect every vCPU's ring into the pending set
 * @s: the session
 * @sorted: rewrite each batch in order (else keep the logged order)
 * @c: zeroed by the caller; what was found
 *
 * Under kvm->slots_lock: the layout cannot change, nor can anyone have KVM
 * reset entries, during the walk.  Every cursor is checked before any ring
 * is touched, so a walk that finds a foreign collector collects nothing.
 * The caller has KVM reset what was collected, and moves the pending set
 * to the live set once that reset is verified.
 * Return: 0, -EINTR, or -EPIPE if someone else collected from the rings
 * (the session is failed; what this walk claimed is marked collected).
 */
int vmdirty_collect(struct vmdirty_session *s, bool sorted, struct vmdirty_collect *c)
{
	struct kvm *kvm = s->kvm;
	struct kvm_vcpu *vcpu;
	unsigned long i;
	int ret = 0;

	lockdep_assert_held(&s->lock);
	if (mutex_lock_killable(&kvm->slots_lock))
		return -EINTR;
	c->stale = vmdirty_slots_check(s);
	kvm_for_each_vcpu(i, vcpu, kvm) {
		if (WARN_ON_ONCE(i >= s->max_vcpus))
			break;
		if (vmdirty_ring_sync(s, i, vcpu, c))
			ret = -EPIPE;
		c->nr_vcpus++;
	}
	kvm_for_each_vcpu(i, vcpu, kvm) {
		if (ret || i >= s->max_vcpus)
			break;
		/* Created after the first pass (vCPUs need no slots_lock): next walk. */
		if (!s->vcpus[i].seen)
			continue;
		ret = vmdirty_collect_vcpu(s, vcpu, &s->vcpus[i], i, sorted, c);
		cond_resched();
	}
	mutex_unlock(&kvm->slots_lock);

	vmdirty_shm_account(s, c);
	if (c->stale)
		vmdirty_genl_notify(s, VMDIRTY_CMD_LAYOUT_STALE);
	if (ret)
		vmdirty_conflict(s);
	return ret;
}

/*
 * Entries the session collected that KVM has not reset yet, all vCPUs;
 * those someone rewrote meanwhile are marked collected again and counted
 * in *rewritten.  -EPIPE: a reset went past a cursor (ring.c).
 */
static long vmdirty_unreset(struct vmdirty_session *s, u32 *rewritten)
{
	struct kvm_vcpu *vcpu;
	unsigned long i;
	long n = 0;
	int ret;

	mutex_lock(&s->kvm->slots_lock);
	kvm_for_each_vcpu(i, vcpu, s->kvm) {
		if (i >= s->max_vcpus)
			break;
		ret = vmdirty_ring_unreset(s, i, vcpu, rewritten);
		if (ret < 0) {
			n = ret;
			break;
		}
		n += ret;
	}
	mutex_unlock(&s->kvm->slots_lock);
	return n;
}

/**
 * vmdirty_reset_verified - have KVM reset everything collected, and check
 * @s: the session, locked
 *
 * KVM's count does not tell (a reset by the VMM may take some of ours, and
 * KVM since 6.17 stops early on a signal): the reset index of every ring
 * must have reached the session's cursor.  Short, the reset is tried once
 * more, on the worker, which no signal stops, after marking collected again
 * any entry someone rewrote (then the session fails: entries it held were
 * written by someone else).
 * Return: entries KVM reset, or the reset's error (-ESRCH, -EPERM from an
 * LSM, -EIO, ...; the entries stay collected for the next call), or -EPIPE
 * (the session failed; the rings are left consistent).
 */
static long vmdirty_reset_verified(struct vmdirty_session *s)
{
	u32 rewritten = 0;
	long ret, left;

	lockdep_assert_held(&s->lock);
	ret = vmdirty_reset_rings(s, false);
	if (ret < 0 && ret != -EINTR)
		goto err;
	left = vmdirty_unreset(s, &rewritten);
	if (left > 0) {
		long again = vmdirty_reset_rings(s, true);

		if (again < 0) {
			ret = again;
			goto err;
		}
		ret = max(ret, 0L) + again;
		left = vmdirty_unreset(s, &rewritten);
	}
	if (left || rewritten)
		vmdirty_conflict(s);
	s->unreset = left > 0;
	return s->conflict ? -EPIPE : ret;

err:
	s->unreset = true;
	return ret;
}

/**
 * vmdirty_harvest_locked - collect, reset, verify, publish
 * @s: the session, locked
 * @sorted: order each batch before its reset
 * @idle_reset: ask KVM to reset even if nothing waits for it (HARVEST: it
 *	tells whether KVM can still be asked, e.g. -ESRCH)
 * @c: zeroed by the caller; what the walk found
 *
 * The pending bits reach the live set only after their pages are
 * write-protected again; on an error they stay pending for the next call.
 * Return: entries KVM reset, -EINTR, -EPIPE (the session failed), or the
 * reset's error.
 */
long vmdirty_harvest_locked(struct vmdirty_session *s, bool sorted, bool idle_reset,
			    struct vmdirty_collect *c)
{
	long ret;

	lockdep_assert_held(&s->lock);
	if (s->conflict)
		return -EPIPE;
	ret = vmdirty_collect(s, sorted, c);
	if (ret == -EINTR)
		return ret;
	if (!ret && !idle_reset && !c->entries && !c->skipped && !s->unreset)
		return 0;
	/*
	 * Failed or not, what was collected is reset, verified and, once
	 * every entry is reset, published.
	 */
	ret = vmdirty_reset_verified(s);
	if (!s->unreset && (ret >= 0 || ret == -EPIPE))
		c->new_pages = vmdirty_shm_publish(s);
	if (ret >= 0 && s->conflict)
		ret = -EPIPE;
	return ret;
}

/**
 * vmdirty_harvest - VMDIRTY_IOC_HARVEST
 * @s: an attached session
 * @h: the validated argument; its out fields are filled
 *
 * Collect, have KVM reset what was collected, then swap unless NO_SWAP.
 * Return: 0, -EINTR, -EPIPE (the session failed) or the reset's error
 * (-ESRCH: the VM's process is gone; -EPERM: an LSM refused; the collected
 * bits stay pending).
 */
int vmdirty_harvest(struct vmdirty_session *s, struct vmdirty_harvest *h)
{
	struct vmdirty_shm_header *hdr = s->hdr;
	struct vmdirty_collect c = {};
	bool swap = !(h->flags & VMDIRTY_HARVEST_NO_SWAP);
	long reset;
	u64 t0;
	int ret;

	if (mutex_lock_killable(&s->lock))
		return -EINTR;
	t0 = ktime_get_ns();
	reset = vmdirty_harvest_locked(s, !(h->flags & VMDIRTY_HARVEST_UNSORTED), true, &c);
	if (reset < 0) {
		ret = reset;
		goto out_unlock;
	}
	h->duration_ns = ktime_get_ns() - t0;
	h->reset = reset;
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
