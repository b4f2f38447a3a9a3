// SPDX-License-Identifier: GPL-2.0
/*
 * vmdirty: one vCPU's dirty ring, as the session sees it.  An entry goes
 *
 *   00 (free) -> 01 (DIRTY, pushed by KVM) -> CLAIMED (ours, being read and
 *   ordered) -> 1X (RESET, collected) -> 00 (KVM_RESET_DIRTY_RINGS)
 *
 * All under kvm->slots_lock, which KVM_RESET_DIRTY_RINGS takes too: while a
 * walk holds it, KVM's reset_index stands still, so no entry from it to
 * dirty_index can be freed and pushed again under the walk.  KVM pushes only
 * at dirty_index.  What else may write the entries is userspace, through the
 * ring's mapping: another collector.  The session detects it, never lets it
 * make the ring inconsistent, and reports it (the caller fails the session):
 *
 * - at each walk, every cursor must be where the session left it: KVM's
 *   reset_index past it means someone else collected and reset entries
 *   (those pages are lost to the session);
 * - an entry is claimed only if it is DIRTY, so one someone else marked
 *   collected is never taken, and a claimed entry looks not pushed yet to
 *   every other reader (its flags carry neither DIRTY nor RESET): the
 *   ordering rewrite happens out of their sight;
 * - handing a claimed entry back checks it is still claimed: if not, it is
 *   marked collected anyway (it lies between reset_index and dirty_index,
 *   so KVM's reset may take it: never a free entry) and the walk fails.
 *
 * Claim and hand-back are a load then a store, not atomic exchanges: a
 * collector writing the same entry in between goes unseen there (both then
 * hold its page, and the flags end RESET either way).  What it collects
 * after that is seen at the next walk.  Two locked operations per entry
 * would cost about as much as KVM's ordered reset of it.
 */
#include <linux/kvm_host.h>

#include "session.h"
#include "vmdirty.h"

/*
 * A claimed entry.  KVM only tests KVM_DIRTY_GFN_F_RESET (reset stops at
 * it) and writes whole flags when it pushes (never here: the entry is
 * pushed); userspace reapers test for DIRTY (QEMU: flags == DIRTY; ours:
 * (flags & KVM_DIRTY_GFN_F_MASK) == DIRTY) and stop at it.
 */
#define VMDIRTY_GFN_F_CLAIMED	BIT(31)

/* Walks cond_resched() every this many entries. */
#define VMDIRTY_RESCHED_ENTRIES	1024

static struct kvm_dirty_gfn *vmdirty_gfn(struct kvm_dirty_ring *ring, u32 index)
{
	return &ring->dirty_gfns[index & (ring->size - 1)];
}

/* 01 -> CLAIMED if it is 01; returns the flags it found. */
static u32 vmdirty_gfn_claim(struct kvm_dirty_gfn *e)
{
	/*
	 * The slot and offset read after DIRTY is seen are the ones KVM wrote
	 * before it: pairs with the smp_wmb() in kvm_dirty_ring_push().
	 */
	u32 flags = smp_load_acquire(&e->flags);

	if (flags == KVM_DIRTY_GFN_F_DIRTY)
		WRITE_ONCE(e->flags, VMDIRTY_GFN_F_CLAIMED);
	return flags;
}

/* CLAIMED -> 1X; false if someone else wrote the flags meanwhile. */
static bool vmdirty_gfn_collected(struct kvm_dirty_gfn *e)
{
	bool ours = READ_ONCE(e->flags) == VMDIRTY_GFN_F_CLAIMED;

	/*
	 * The (rewritten) slot and offset are visible before RESET: pairs
	 * with the smp_load_acquire() in kvm_dirty_gfn_harvested()
	 * (KVM_RESET_DIRTY_RINGS).
	 */
	smp_store_release(&e->flags, KVM_DIRTY_GFN_F_RESET);
	return ours;
}

static bool vmdirty_gfn_is_collected(struct kvm_dirty_gfn *e)
{
	/* Pairs with the store of RESET by whoever collected it. */
	return smp_load_acquire(&e->flags) == KVM_DIRTY_GFN_F_RESET;
}

static u32 vmdirty_ring_used(struct kvm_dirty_ring *ring)
{
	return READ_ONCE(ring->dirty_index) - READ_ONCE(ring->reset_index);
}

/**
 * vmdirty_ring_sync - check a vCPU's cursor before the walk touches a ring
 * @s: the session
 * @idx: the vCPU's index
 * @vcpu: the vCPU
 * @c: counts of the walk, added to
 *
 * The first time, the cursor starts at KVM's reset_index, and steps over
 * entries a previous collector (the VMM's own reaper, before ATTACH) marked
 * collected without having KVM reset them yet: KVM resets them with ours.
 * After that, the entries from reset_index to the cursor are the session's,
 * marked collected (a reset that failed left them there): anything else
 * means someone else collected from this ring.
 * Return: 0, or -EPIPE if someone else did (the cursor then follows
 * reset_index, so that nothing more is read from entries already freed).
 */
int vmdirty_ring_sync(struct vmdirty_session *s, u32 idx, struct kvm_vcpu *vcpu,
		      struct vmdirty_collect *c)
{
	struct kvm_dirty_ring *ring = &vcpu->dirty_ring;
	struct vmdirty_vcpu *v = &s->vcpus[idx];
	u32 reset = READ_ONCE(ring->reset_index), used, i;
	s32 behind;

	lockdep_assert_held(&s->kvm->slots_lock);
	used = vmdirty_ring_used(ring);
	WRITE_ONCE(s->shm_vcpus[idx].ring_used, used);
	c->max_fill_pct = max_t(u32, c->max_fill_pct,
				div_u64((u64)used * 100, ring->soft_limit));
	if (!v->seen) {
		v->fetch = reset;
		while (v->fetch - reset < used &&
		       vmdirty_gfn_is_collected(vmdirty_gfn(ring, v->fetch))) {
			v->fetch++;
			c->skipped++;
		}
		v->seen = true;
		s->nr_vcpus = max_t(u32, s->nr_vcpus, idx + 1);
		vmdirty_shm_vcpu_seen(s, idx, vcpu->vcpu_id, ring->size);
		return 0;
	}
	behind = (s32)(v->fetch - reset);
	if (behind < 0 || behind > used) {
		/* Reset past our cursor, or garbage: follow KVM. */
		v->fetch = reset;
		return -EPIPE;
	}
	for (i = reset; i != v->fetch; i++)
		if (!vmdirty_gfn_is_collected(vmdirty_gfn(ring, i)))
			return -EPIPE;
	return 0;
}

/**
 * vmdirty_ring_claim - claim the entries KVM pushed past the cursor
 * @vcpu: the vCPU
 * @v: the session's view of it; @v->batch is set
 *
 * Claims from @v->fetch while entries are DIRTY, at most up to KVM's
 * dirty_index: a DIRTY flag past it was written by someone else, on an
 * entry that is free.
 * Return: 0, or -EPIPE if an entry was marked collected (or worse) by
 * someone else; @v->batch entries are claimed either way.
 */
int vmdirty_ring_claim(struct kvm_vcpu *vcpu, struct vmdirty_vcpu *v)
{
	struct kvm_dirty_ring *ring = &vcpu->dirty_ring;
	u32 avail = READ_ONCE(ring->dirty_index) - v->fetch, n, old;
	int ret = 0;

	for (n = 0; n < avail; n++) {
		old = vmdirty_gfn_claim(vmdirty_gfn(ring, v->fetch + n));
		if (old == KVM_DIRTY_GFN_F_DIRTY) {
			if (!((n + 1) % VMDIRTY_RESCHED_ENTRIES))
				cond_resched();
			continue;
		}
		/* 0: pushed, DIRTY not visible yet: the next walk takes it. */
		if (old)
			ret = -EPIPE;
		break;
	}
	v->batch = n;
	return ret;
}

/**
 * vmdirty_ring_publish - mark a claimed batch collected
 * @vcpu: the vCPU
 * @v: the session's view of it, with its batch
 *
 * Every entry of the batch ends marked collected, whoever wrote it
 * meanwhile, so that KVM's reset index reaches the new cursor.
 * Return: 0, or -EPIPE if someone else wrote an entry the session held.
 */
int vmdirty_ring_publish(struct kvm_vcpu *vcpu, struct vmdirty_vcpu *v)
{
	struct kvm_dirty_ring *ring = &vcpu->dirty_ring;
	int ret = 0;
	u32 i;

	for (i = 0; i < v->batch; i++)
		if (!vmdirty_gfn_collected(vmdirty_gfn(ring, v->fetch + i)))
			ret = -EPIPE;
	v->fetch += v->batch;
	return ret;
}

/**
 * vmdirty_ring_unreset - entries the session collected and KVM did not reset
 * @s: the session
 * @idx: the vCPU's index
 * @vcpu: the vCPU
 * @rewritten: added to: entries someone rewrote, marked collected again
 *
 * Called with @s->kvm->slots_lock held, after KVM_RESET_DIRTY_RINGS.  The
 * entries from KVM's reset_index to the cursor are the session's: whatever
 * else wrote them, they are marked collected again, so that a reset reaches
 * the cursor.
 * Return: how many there are, or -EPIPE if the reset went past the cursor
 * (it reset entries someone else had marked).
 */
int vmdirty_ring_unreset(struct vmdirty_session *s, u32 idx, struct kvm_vcpu *vcpu,
			 u32 *rewritten)
{
	struct kvm_dirty_ring *ring = &vcpu->dirty_ring;
	struct vmdirty_vcpu *v = &s->vcpus[idx];
	u32 reset = READ_ONCE(ring->reset_index), i;
	s32 behind = v->fetch - reset;

	lockdep_assert_held(&s->kvm->slots_lock);
	if (!v->seen || !behind)
		return 0;
	if (behind < 0 || behind > vmdirty_ring_used(ring))
		return -EPIPE;
	for (i = reset; i != v->fetch; i++) {
		struct kvm_dirty_gfn *e = vmdirty_gfn(ring, i);

		if (vmdirty_gfn_is_collected(e))
			continue;
		/*
		 * Between reset_index and dirty_index: never a free entry.
		 * Its slot and offset are whatever they are now; visible
		 * before RESET (pairs with kvm_dirty_gfn_harvested()).
		 */
		smp_store_release(&e->flags, KVM_DIRTY_GFN_F_RESET);
		(*rewritten)++;
	}
	return behind;
}
