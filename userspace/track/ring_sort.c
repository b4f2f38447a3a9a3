// SPDX-License-Identifier: GPL-2.0
/*
 * The sorted userspace reaper's batch: what vmdirty.ko does to a ring's
 * batch before KVM resets it, done by the VMM itself.  The DIRTY entries
 * from the cursor on belong to their collector (KVM writes only past them
 * until they are reset), and the ring is mapped writable: so the batch can
 * be rewritten in place in ascending (slot, offset) order before it is
 * marked collected, and KVM_RESET_DIRTY_RINGS then re-protects it in masks
 * of 64 neighbouring pages instead of page by page.
 *
 * As the module does: the batch's pages go through a scratch bitmap (with
 * a summary, so that the cost follows the batch, not the memory), which
 * removes duplicates and orders them; entries naming no known slot stay
 * first, unchanged (KVM resets what it knows); the positions duplicates
 * leave are filled with copies of the last page (offset delta 0, merged by
 * KVM's reset).  The entry count, hence KVM's reset count, is unchanged.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "track/backend.h"

int ring_sort_init(struct ring_sort *rs, const struct vm *vm)
{
	memset(rs, 0, sizeof(*rs));
	for (unsigned int i = 0; i < VM_MAX_SLOTS; i++)
		rs->lo[i] = UINT64_MAX;
	for (unsigned int i = 0; i < vm->nr_slots; i++) {
		uint64_t np = vm->slots[i].size >> TRACK_PAGE_SHIFT;

		rs->bits[i] = calloc(track_words(np), 8);
		rs->summary[i] = calloc(track_summary_words(np), 8);
		if (!rs->bits[i] || !rs->summary[i]) {
			ring_sort_free(rs);
			return -ENOMEM;
		}
	}
	return 0;
}

void ring_sort_free(struct ring_sort *rs)
{
	for (unsigned int i = 0; i < VM_MAX_SLOTS; i++) {
		free(rs->bits[i]);
		free(rs->summary[i]);
		rs->bits[i] = rs->summary[i] = NULL;
	}
}

static void entry_write(struct kvm_dirty_gfn *e, uint32_t slot, uint64_t offset)
{
	e->slot = slot;
	e->offset = offset;
}

/* Slot index and page of an entry, or -1 if it names no page of the VM. */
static int entry_page(const struct vm *vm, const struct kvm_dirty_gfn *e, uint64_t *offset)
{
	int i = track_slot_index(vm, e->slot);

	*offset = e->offset;
	if (i < 0 || *offset >= vm->slots[i].size >> TRACK_PAGE_SHIFT)
		return -1;
	return i;
}

int ring_sort_reap(struct ring_sort *rs, struct vcpu *v, uint32_t *fetch,
		   void (*fn)(void *ctx, uint32_t slot, uint64_t offset), void *ctx)
{
	const struct vm *vm = v->vm;
	uint32_t mask = v->ring_entries - 1, n, i, pos = 0;
	struct kvm_dirty_gfn *last = NULL;

	if (!v->ring)
		return -ENODEV;
	/* The run of DIRTY entries: ours until marked collected. */
	for (n = 0; n < v->ring_entries; n++) {
		/* Acquire pairs with the smp_wmb() in kvm_dirty_ring_push(). */
		uint32_t f = __atomic_load_n(&v->ring[(*fetch + n) & mask].flags, __ATOMIC_ACQUIRE);

		if ((f & KVM_DIRTY_GFN_F_MASK) != KVM_DIRTY_GFN_F_DIRTY)
			break;
	}
	for (i = 0; i < n; i++) {
		struct kvm_dirty_gfn *e = &v->ring[(*fetch + i) & mask];
		uint64_t offset, w;
		int s = entry_page(vm, e, &offset);

		if (s >= 0) {
			w = offset / 64;
			rs->bits[s][w] |= 1ull << (offset % 64);
			rs->summary[s][w / 64] |= 1ull << (w % 64);
			if (w / 64 < rs->lo[s])
				rs->lo[s] = w / 64;
			if (w / 64 >= rs->hi[s])
				rs->hi[s] = w / 64 + 1;
			continue;
		}
		/* Entries before i are read already: compact to the front. */
		if (fn)
			fn(ctx, e->slot, e->offset);
		if (pos != i)
			entry_write(&v->ring[(*fetch + pos) & mask], e->slot, e->offset);
		pos++;
	}
	for (unsigned int s = 0; s < vm->nr_slots; s++) {
		/* Only the summary words this batch touched. */
		for (uint64_t j = rs->lo[s]; j < rs->hi[s]; j++) {
			for (uint64_t sum = rs->summary[s][j]; sum; sum &= sum - 1) {
				uint64_t w = j * 64 + (uint64_t)__builtin_ctzll(sum);

				for (uint64_t b = rs->bits[s][w]; b; b &= b - 1) {
					uint64_t offset = w * 64 + (uint64_t)__builtin_ctzll(b);

					if (fn)
						fn(ctx, vm->slots[s].id, offset);
					last = &v->ring[(*fetch + pos++) & mask];
					entry_write(last, vm->slots[s].id, offset);
				}
				rs->bits[s][w] = 0;
			}
			rs->summary[s][j] = 0;
		}
		rs->lo[s] = UINT64_MAX;
		rs->hi[s] = 0;
	}
	for (; pos < n; pos++)
		entry_write(&v->ring[(*fetch + pos) & mask], last->slot, last->offset);
	for (i = 0; i < n; i++)
		/*
		 * Release pairs with the smp_load_acquire() in
		 * kvm_dirty_gfn_harvested(): the rewritten slot and offset are
		 * visible before KVM may reset the entry.
		 */
		__atomic_store_n(&v->ring[(*fetch + i) & mask].flags, KVM_DIRTY_GFN_F_RESET,
				 __ATOMIC_RELEASE);
	*fetch += n;
	return (int)n;
}
