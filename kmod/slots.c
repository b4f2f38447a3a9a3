// SPDX-License-Identifier: GPL-2.0
/*
 * vmdirty: the memslot layout a session records at ATTACH, the lookup of a
 * ring entry's slot in it, and the check that KVM's memslots still match.
 * KVM's memslots are read under kvm->slots_lock, which every memslot
 * update holds: the layout cannot change while a walk looks at it.
 */
#include <linux/hash.h>
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

/*
 * KVM's own memslots of an address space (x86: the APIC access page, TSS
 * and identity map), hashed with the identity of each object.
 */
static u64 vmdirty_slots_private(struct kvm_memslots *slots)
{
	struct kvm_memory_slot *m;
	u64 hash = 0;
	int bkt;

	kvm_for_each_memslot(m, bkt, slots)
		if (m->id >= KVM_USER_MEM_SLOTS)
			hash = hash_64(hash ^ m->id ^ m->base_gfn ^ m->npages ^
				       (unsigned long)m, 64);
	return hash;
}

static void vmdirty_slot_fill(struct vmdirty_slot *slot, const struct kvm_memory_slot *m)
{
	slot->key = vmdirty_slot_key(m);
	slot->flags = vmdirty_slot_flags(m);
	slot->kvm_flags = m->flags;
	slot->kvm_slot = m;
	slot->base_gfn = m->base_gfn;
	slot->npages = m->npages;
	slot->userspace_addr = m->userspace_addr;
}

/**
 * vmdirty_slots_record - copy KVM's user memslots, all address spaces
 * @s: the attaching session
 *
 * Sorted by key, so that a walk of the bit space in order is a walk in
 * ascending (slot, offset) order.
 * Return: 0, -ENOMEM or -EINTR.
 */
int vmdirty_slots_record(struct vmdirty_session *s)
{
	struct kvm *kvm = s->kvm;
	struct kvm_memory_slot *m;
	int as, bkt, ret = 0;
	u32 n = 0;

	if (mutex_lock_killable(&kvm->slots_lock))
		return -EINTR;
	for (as = 0; as < vmdirty_kvm_nr_as(kvm); as++)
		kvm_for_each_memslot(m, bkt, __kvm_memslots(kvm, as))
			n += m->id < KVM_USER_MEM_SLOTS;

	s->slots = kvcalloc(n, sizeof(*s->slots), GFP_KERNEL_ACCOUNT);
	if (!s->slots) {
		ret = -ENOMEM;
		goto out;
	}
	for (as = 0; as < vmdirty_kvm_nr_as(kvm); as++) {
		struct kvm_memslots *slots = __kvm_memslots(kvm, as);

		s->memslots_gen[as] = slots->generation;
		s->private_slots[as] = vmdirty_slots_private(slots);
		kvm_for_each_memslot(m, bkt, slots)
			if (m->id < KVM_USER_MEM_SLOTS)
				vmdirty_slot_fill(&s->slots[s->nr_slots++], m);
	}
out:
	mutex_unlock(&kvm->slots_lock);
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
 * such slot at ATTACH, the slot changed since, @offset lies outside it, or
 * it has no bits (it did not log dirty pages at ATTACH).
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
	if (s->slots[i].changed || offset >= s->slots[i].nr_bits)
		return -1;
	return i;
}

/*
 * The recorded slot is still KVM's: the same object (KVM allocates a new
 * one for every change but a delete) with the same place, size, memory and
 * flags.  Flags matter: writes while dirty logging was off went nowhere.
 */
static bool vmdirty_slot_same(const struct vmdirty_slot *slot,
			      const struct kvm_memory_slot *m)
{
	return m && m == slot->kvm_slot && m->base_gfn == slot->base_gfn &&
	       m->npages == slot->npages && m->flags == slot->kvm_flags &&
	       m->userspace_addr == slot->userspace_addr;
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
		if (vmdirty_slot_same(slot, id_to_memslot(slots, (u16)slot->key)))
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

/*
 * KVM's memslots generation moved and no slot looks different: either one
 * of KVM's own slots changed (explained), or a user slot changed and came
 * back as it was, e.g. dirty logging off and on again, with KVM's new slot
 * object at the address of the old one.  That must count as a change:
 * writes while logging was off went nowhere.  KVM 6.1 and 6.12 create their
 * own slots once and delete them only with the VM (or for good), so a
 * change there always shows in the hash.
 */
static bool vmdirty_slots_unexplained(struct vmdirty_session *s, int as,
				      struct kvm_memslots *slots)
{
	u64 private = vmdirty_slots_private(slots);
	bool same = private == s->private_slots[as];

	s->private_slots[as] = private;
	return same;
}

/**
 * vmdirty_slots_check - does KVM's layout still match the recorded one?
 * @s: the session, with @s->kvm->slots_lock held
 *
 * Cheap while KVM's memslots generation does not move.  A newly seen
 * difference (a recorded slot deleted, moved, resized, re-created, its
 * memory or flags changed, a change in the number of slots that were not
 * recorded, or a change that left no trace but the generation) marks the
 * session stale and bumps the layout generation.
 * Return: true if this call found the layout newly changed.
 */
bool vmdirty_slots_check(struct vmdirty_session *s)
{
	struct kvm *kvm = s->kvm;
	struct kvm_memslots *slots;
	bool news = false;
	int as;

	lockdep_assert_held(&s->lock);
	lockdep_assert_held(&kvm->slots_lock);
	for (as = 0; as < vmdirty_kvm_nr_as(kvm); as++) {
		slots = __kvm_memslots(kvm, as);
		if (slots->generation == s->memslots_gen[as])
			continue;
		s->memslots_gen[as] = slots->generation;
		if (vmdirty_slots_check_as(s, as, slots))
			news = true;
		else
			news |= vmdirty_slots_unexplained(s, as, slots);
	}

	if (news) {
		s->stale = true;
		WRITE_ONCE(s->hdr->flags, s->hdr->flags | VMDIRTY_STATUS_LAYOUT_STALE);
		WRITE_ONCE(s->hdr->layout_gen, s->hdr->layout_gen + 1);
	}
	return news;
}
