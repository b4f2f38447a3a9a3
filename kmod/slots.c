// SPDX-License-Identifier: GPL-2.0
/*
 * vmdirty: the memslot layout a session records at ATTACH, the lookup of a
 * ring entry's slot in it, and the check that KVM's memslots still match.
 * KVM's memslots are only read under kvm->srcu, never under slots_lock.
 */
#include <linux/kvm_host.h>
#include <linux/slab.h>
#include <linux/sort.h>

#include "session.h"
#include "vmdirty.h"

static u32 vmdirty_slot_key(const struct kvm_memory_slot *m)
{
	return (u32)m->as_id << 16 | (u16)m->id;
}

static u32 vmdirty_slot_flags(const struct kvm_memory_slot *m)
{
	u32 flags = 0;

	if (m->flags & KVM_MEM_LOG_DIRTY_PAGES)
		flags |= VMDIRTY_SLOT_LOG_DIRTY;
	if (m->flags & KVM_MEM_READONLY)
		flags |= VMDIRTY_SLOT_READONLY;
	return flags;
}

static int vmdirty_slot_cmp(const void *a, const void *b)
{
	const struct vmdirty_slot *x = a, *y = b;

	return x->key < y->key ? -1 : x->key > y->key;
}

/**
 * vmdirty_slots_record - copy KVM's user memslots, all address spaces
 * @s: the attaching session
 *
 * Sorted by key, so that a walk of the bit space in order is a walk in
 * ascending (slot, offset) order.  SRCU readers may sleep: allocating
 * under kvm->srcu only delays a memslot update.
 * Return: 0 or -ENOMEM.
 */
int vmdirty_slots_record(struct vmdirty_session *s)
{
	struct kvm_memslots *slots[VMDIRTY_MAX_AS];
	struct kvm *kvm = s->kvm;
	struct kvm_memory_slot *m;
	int as, bkt, idx, ret = 0;
	u32 n = 0;

	/*
	 * Each address space's memslots are dereferenced once: the set a
	 * pointer names stays as it is until this SRCU section ends, while
	 * kvm->memslots may already point elsewhere.
	 */
	idx = srcu_read_lock(&kvm->srcu);
	for (as = 0; as < vmdirty_kvm_nr_as(kvm); as++) {
		slots[as] = __kvm_memslots(kvm, as);
		kvm_for_each_memslot(m, bkt, slots[as])
			n += m->id < KVM_USER_MEM_SLOTS;
	}

	s->slots = kvcalloc(n, sizeof(*s->slots), GFP_KERNEL_ACCOUNT);
	if (!s->slots) {
		ret = -ENOMEM;
		goto out;
	}
	for (as = 0; as < vmdirty_kvm_nr_as(kvm); as++) {
		s->memslots_gen[as] = slots[as]->generation;
		kvm_for_each_memslot(m, bkt, slots[as]) {
			struct vmdirty_slot *slot = &s->slots[s->nr_slots];

			if (m->id >= KVM_USER_MEM_SLOTS)
				continue;
			slot->key = vmdirty_slot_key(m);
			slot->flags = vmdirty_slot_flags(m);
			slot->base_gfn = m->base_gfn;
			slot->npages = m->npages;
			slot->userspace_addr = m->userspace_addr;
			s->nr_slots++;
		}
	}
out:
	srcu_read_unlock(&kvm->srcu, idx);
	if (!ret)
		sort(s->slots, s->nr_slots, sizeof(*s->slots), vmdirty_slot_cmp,
		     NULL);
	return ret;
}

static int vmdirty_slots_bsearch(struct vmdirty_session *s, u32 key)
{
	u32 lo = 0, hi = s->nr_slots;

	while (lo < hi) {
		u32 mid = lo + (hi - lo) / 2;

		if (s->slots[mid].key == key)
			return mid;
		if (s->slots[mid].key < key)
			lo = mid + 1;
		else
			hi = mid;
	}
	return -1;
}

/**
 * vmdirty_slots_find - the recorded slot a ring entry names
 * @s: the session
 * @key: the entry's slot, (as_id << 16) | id
 * @offset: the entry's page offset in the slot
 *
 * Return: the index in @s->slots, or -1 if the entry must be dropped: no
 * such slot at ATTACH, the slot changed since, or @offset lies outside it.
 */
int vmdirty_slots_find(struct vmdirty_session *s, u32 key, u64 offset)
{
	int i = s->last_slot;

	if (i >= s->nr_slots || s->slots[i].key != key) {
		i = vmdirty_slots_bsearch(s, key);
		if (i < 0)
			return -1;
		s->last_slot = i;
	}
	if (s->slots[i].changed || offset >= s->slots[i].npages)
		return -1;
	return i;
}

/* Compare one address space; true if something changed that was not seen. */
static bool vmdirty_slots_check_as(struct vmdirty_session *s, int as,
				   struct kvm_memslots *slots)
{
	struct kvm_memory_slot *m;
	bool news = false;
	u32 i, unrecorded = 0;
	int bkt;

	for (i = 0; i < s->nr_slots; i++) {
		struct vmdirty_slot *slot = &s->slots[i];

		if (slot->key >> 16 != as || slot->changed)
			continue;
		m = id_to_memslot(slots, (u16)slot->key);
		if (m && m->base_gfn == slot->base_gfn && m->npages == slot->npages)
			continue;
		slot->changed = true;
		news = true;
	}
	kvm_for_each_memslot(m, bkt, slots)
		if (m->id < KVM_USER_MEM_SLOTS &&
		    vmdirty_slots_bsearch(s, vmdirty_slot_key(m)) < 0)
			unrecorded++;
	if (unrecorded != s->unrecorded[as])
		news = true;
	s->unrecorded[as] = unrecorded;
	return news;
}

/**
 * vmdirty_slots_check - does KVM's layout still match the recorded one?
 * @s: the session
 *
 * Cheap while KVM's memslots generation does not move.  A newly seen
 * difference (a recorded slot moved, resized or deleted, or a change in the
 * number of slots that were not recorded) marks the session stale and bumps
 * the layout generation.
 * Return: true if this call found the layout newly changed.
 */
bool vmdirty_slots_check(struct vmdirty_session *s)
{
	struct kvm *kvm = s->kvm;
	struct kvm_memslots *slots;
	bool news = false;
	int as, idx;

	lockdep_assert_held(&s->lock);
	idx = srcu_read_lock(&kvm->srcu);
	for (as = 0; as < vmdirty_kvm_nr_as(kvm); as++) {
		slots = __kvm_memslots(kvm, as);
		if (slots->generation == s->memslots_gen[as])
			continue;
		s->memslots_gen[as] = slots->generation;
		news |= vmdirty_slots_check_as(s, as, slots);
	}
	srcu_read_unlock(&kvm->srcu, idx);

	if (news) {
		s->stale = true;
		WRITE_ONCE(s->hdr->flags, s->hdr->flags | VMDIRTY_STATUS_LAYOUT_STALE);
		WRITE_ONCE(s->hdr->layout_gen, s->hdr->layout_gen + 1);
	}
	return news;
}
