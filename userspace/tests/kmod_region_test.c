// SPDX-License-Identifier: GPL-2.0
/*
 * The kmod tracker's check of vmdirty.ko's shared region (no module
 * needed): a well-formed region in memory passes, and each field that could
 * send a reader out of bounds or misread the layout, when wrong, fails with
 * -EPROTO and a reason.  One variant per corrupted field.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "kselftest_harness.h"

#include "track/backend.h"

#define SIZE		65536
#define NR_SLOTS	2
#define MAX_VCPUS	4
#define SLOT_PAGES	3077	/* odd: partial last word */

struct layout {
	union {
		struct vmdirty_shm_header h;
		uint8_t bytes[SIZE];
	};
};

/* A region as the module lays it out: header, slots, vCPUs, then bitmaps. */
static void build(struct layout *l, struct vmdirty_attach *at)
{
	struct vmdirty_shm_header *h = &l->h;
	uint64_t off;

	memset(l, 0, sizeof(*l));
	h->magic = VMDIRTY_SHM_MAGIC;
	h->abi_version = VMDIRTY_ABI_VERSION;
	h->header_size = sizeof(*h);
	h->region_size = SIZE;
	h->slots_offset = sizeof(*h);
	h->nr_slots = NR_SLOTS;
	h->slot_size = sizeof(struct vmdirty_shm_slot);
	h->vcpus_offset = h->slots_offset + NR_SLOTS * sizeof(struct vmdirty_shm_slot);
	h->max_vcpus = MAX_VCPUS;
	h->vcpu_size = sizeof(struct vmdirty_shm_vcpu);
	h->layout_gen = 3;
	off = 4096;
	for (int i = 0; i < NR_SLOTS; i++) {
		struct vmdirty_shm_slot *s = (void *)(l->bytes + h->slots_offset +
						      i * sizeof(*s));

		s->id = i;
		s->base_gfn = i * SLOT_PAGES;
		s->npages = SLOT_PAGES;
		s->flags = VMDIRTY_SLOT_LOG_DIRTY;
		for (int set = 0; set < 2; set++) {
			s->bitmap_offset[set] = off;
			off += (SLOT_PAGES + 63) / 64 * 8;
			s->summary_offset[set] = off;
			off += 8;
		}
	}
	*at = (struct vmdirty_attach){ .size = sizeof(*at), .region_size = SIZE,
				       .layout_gen = 3, .nr_slots = NR_SLOTS };
}

static struct vmdirty_shm_slot *slot(struct layout *l, int i)
{
	return (void *)(l->bytes + l->h.slots_offset + i * sizeof(struct vmdirty_shm_slot));
}

FIXTURE(region) {
	struct layout *l;
	struct vmdirty_attach at;
	char why[256];
};

FIXTURE_VARIANT(region) {
	void (*corrupt)(struct layout *l, struct vmdirty_attach *at);
	uint64_t size;		/* 0: SIZE */
	unsigned int nr_vcpus;
};

FIXTURE_SETUP(region)
{
	self->l = malloc(sizeof(*self->l));
	ASSERT_NE(NULL, self->l);
	build(self->l, &self->at);
}

FIXTURE_TEARDOWN(region)
{
	free(self->l);
}

#define CORRUPT(name, stmt) \
	static void corrupt_##name(struct layout *l, struct vmdirty_attach *at) { stmt; } \
	FIXTURE_VARIANT_ADD(region, name) { .corrupt = corrupt_##name }

CORRUPT(magic, l->h.magic ^= 1);
CORRUPT(abi, l->h.abi_version = VMDIRTY_ABI_VERSION + 1);
CORRUPT(header_size, l->h.header_size = sizeof(l->h) - 8);
CORRUPT(slot_size, l->h.slot_size = sizeof(struct vmdirty_shm_slot) - 8);
CORRUPT(slot_size_unaligned, l->h.slot_size = sizeof(struct vmdirty_shm_slot) + 4);
CORRUPT(vcpu_size, l->h.vcpu_size = 8);
CORRUPT(region_size_field, l->h.region_size = SIZE * 2);
CORRUPT(nr_slots_vs_attach, at->nr_slots = NR_SLOTS + 1);
CORRUPT(layout_gen_vs_attach, at->layout_gen = 4);
CORRUPT(snapshot_index, l->h.snapshot = 2);
CORRUPT(slots_inside_header, l->h.slots_offset = 8);
CORRUPT(slots_past_end, l->h.slots_offset = SIZE - 8);
CORRUPT(slots_unaligned, l->h.slots_offset += 4);
CORRUPT(too_many_slots, l->h.nr_slots = at->nr_slots = 1u << 30);
CORRUPT(vcpus_past_end, l->h.max_vcpus = 1u << 30);
CORRUPT(vcpus_offset_huge, l->h.vcpus_offset = ~0ull - 7);
CORRUPT(bitmap_past_end, slot(l, 1)->bitmap_offset[1] = SIZE - 8);
CORRUPT(bitmap_unaligned, slot(l, 0)->bitmap_offset[0] += 1);
CORRUPT(summary_past_end, slot(l, 0)->summary_offset[1] = SIZE);
CORRUPT(summary_offset_huge, slot(l, 1)->summary_offset[0] = ~0ull & ~7ull);
CORRUPT(npages_wraps, slot(l, 0)->npages = ~0ull);
CORRUPT(npages_too_big, slot(l, 1)->npages = (uint64_t)SIZE * 8 + 1);

static void corrupt_none(struct layout *l, struct vmdirty_attach *at) { }
FIXTURE_VARIANT_ADD(region, mapped_size_vs_attach) { .corrupt = corrupt_none, .size = SIZE - 4096 };
FIXTURE_VARIANT_ADD(region, too_few_vcpus) { .corrupt = corrupt_none, .nr_vcpus = MAX_VCPUS + 1 };

TEST(well_formed_region_passes)
{
	struct layout *l = malloc(sizeof(*l));
	struct vmdirty_attach at;
	char why[256] = "";

	ASSERT_NE(NULL, l);
	build(l, &at);
	EXPECT_EQ(0, track_kmod_check_region(l, SIZE, &at, MAX_VCPUS, why, sizeof(why)))
		TH_LOG("%s", why);
	/* Larger tables than this ABI knows (a later ABI) are fine. */
	l->h.slot_size += 8;
	l->h.vcpus_offset += NR_SLOTS * 8;
	for (int i = NR_SLOTS - 1; i >= 0; i--)
		memmove(l->bytes + l->h.slots_offset + i * l->h.slot_size,
			l->bytes + l->h.slots_offset + i * (l->h.slot_size - 8), l->h.slot_size - 8);
	EXPECT_EQ(0, track_kmod_check_region(l, SIZE, &at, MAX_VCPUS, why, sizeof(why)))
		TH_LOG("%s", why);
	free(l);
}

TEST_F(region, corrupted_fails)
{
	uint64_t size = variant->size ? variant->size : SIZE;

	variant->corrupt(self->l, &self->at);
	self->why[0] = 0;
	EXPECT_EQ(-EPROTO, track_kmod_check_region(self->l, size, &self->at,
						   variant->nr_vcpus ? variant->nr_vcpus : 1,
						   self->why, sizeof(self->why)));
	EXPECT_NE(0, self->why[0]);
	TH_LOG("%s", self->why);
}

TEST_HARNESS_MAIN
