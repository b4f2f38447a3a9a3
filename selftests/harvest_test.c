// SPDX-License-Identifier: GPL-2.0
/*
 * vmdirty.ko harvesting real guests (the VMM library's payload):
 * - exact set: every bit of the snapshot checked against what the guest
 *   wrote and what KVM logged (a userspace reaper's peek of the same rings);
 * - cross-check: random writes on several vCPUs, the module's bitmap equals
 *   the reaper's and the host's replay of guest_rand;
 * - sorted and unsorted harvests agree on the bitmap and the reset count;
 * - no lost writes: a guest writing all along, stamps compared between
 *   harvests, every page written after a harvest returned in a later one;
 * - memslots deleted or moved after ATTACH: their entries dropped, no bit
 *   outside its bitmap.
 */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

#include "ksft_compat.h"
#include "vmdirty_guest.h"

#define MEM_SIZE	(32ULL << 20)
#define NPAGES		(MEM_SIZE / GUEST_PAGE_SIZE)
#define WORK_PFN	(GUEST_WORK_BASE / GUEST_PAGE_SIZE)
#define NR_VCPUS	3

FIXTURE(guest) {
	struct guest_session gs;
	uint32_t cursor[VM_MAX_VCPUS];
	struct gfn_set logged, bits, want;
	struct gfn_set per_vcpu[NR_VCPUS];
};

FIXTURE_VARIANT(guest) {
	uint64_t slot_size;
};

FIXTURE_VARIANT_ADD(guest, one_slot) {
	.slot_size = 0,
};

/* RAM in 4 slots of 8 MiB: slots 0..3 (as 0). */
FIXTURE_VARIANT_ADD(guest, four_slots) {
	.slot_size = 8ULL << 20,
};

FIXTURE_SETUP(guest)
{
	struct vm_config cfg = {
		.nr_vcpus = NR_VCPUS, .mem_size = MEM_SIZE, .slot_size = variant->slot_size,
		.ring_entries = 4096, .log_dirty = true,
	};
	const char *what;
	unsigned int i;
	int r;

	r = guest_session_setup(&self->gs, &cfg, true, &what);
	if (r == GUEST_SESSION_SKIP)
		SETUP_SKIP("%s", what);
	ASSERT_EQ(0, r) TH_LOG("%s: %s", what, strerror(-r));
	ASSERT_EQ(0, gfn_set_init(&self->logged, NPAGES));
	ASSERT_EQ(0, gfn_set_init(&self->bits, NPAGES));
	ASSERT_EQ(0, gfn_set_init(&self->want, NPAGES));
	for (i = 0; i < NR_VCPUS; i++)
		ASSERT_EQ(0, gfn_set_init(&self->per_vcpu[i], NPAGES));
}

FIXTURE_TEARDOWN(guest)
{
	unsigned int i;

	guest_session_teardown(&self->gs);
	gfn_set_free(&self->logged);
	gfn_set_free(&self->bits);
	gfn_set_free(&self->want);
	for (i = 0; i < NR_VCPUS; i++)
		gfn_set_free(&self->per_vcpu[i]);
}

static void clear_sets(FIXTURE_DATA(guest) *self)
{
	unsigned int i;

	gfn_set_clear(&self->logged);
	gfn_set_clear(&self->bits);
	gfn_set_clear(&self->want);
	for (i = 0; i < NR_VCPUS; i++)
		gfn_set_clear(&self->per_vcpu[i]);
}

/*
 * The vCPUs are stopped: peek what KVM logged, harvest with @flags, read
 * the snapshot.  Returns the harvest.
 */
static struct vmdirty_harvest peek_and_harvest(struct __test_metadata *_metadata,
					       FIXTURE_DATA(guest) *self, uint32_t flags)
{
	struct vmdirty_harvest h = { 0 };
	int n;

	n = vm_peek_rings(self->gs.vm, self->cursor, &self->logged, self->per_vcpu);
	EXPECT_LE(0, n);
	EXPECT_EQ(0, self->logged.bad);
	EXPECT_EQ(0, vmdirty_harvest(self->gs.fd, flags, &h));
	shm_to_gfn_set(self->gs.hdr, h.snapshot, &self->bits);
	return h;
}

/*
 * Every bit: set exactly for what KVM logged; in the work area, exactly for
 * @want; below it, only the guest's own pages.  No bit outside a slot.
 */
static void check_bits(struct __test_metadata *_metadata, FIXTURE_DATA(guest) *self,
		       const struct vmdirty_harvest *h)
{
	struct vmdirty_shm_slot *slot = vmdirty_shm_slots(self->gs.hdr);
	uint64_t gfn, diffs = 0;
	uint32_t i;

	for (gfn = 0; gfn < NPAGES; gfn++) {
		bool bit = self->bits.in[gfn], ok;

		if (gfn >= WORK_PFN)
			ok = bit == !!self->want.in[gfn] && bit == !!self->logged.in[gfn];
		else
			ok = bit == !!self->logged.in[gfn] &&
			     (!bit || guest_bookkeeping_page(gfn, MEM_SIZE, NR_VCPUS));
		if (!ok && diffs++ < 8)
			TH_LOG("gfn %#llx: bit %d, logged %d, written %d",
			       (unsigned long long)gfn, bit, self->logged.in[gfn],
			       self->want.in[gfn]);
	}
	EXPECT_EQ(0, diffs);
	EXPECT_EQ(0, self->bits.bad);
	EXPECT_EQ(self->logged.entries, h->entries);
	EXPECT_EQ(h->entries, h->reset);
	EXPECT_EQ(self->bits.count, h->pages);
	EXPECT_EQ(0, h->dropped);
	for (i = 0; i < self->gs.hdr->nr_slots; i++) {
		EXPECT_TRUE(vmdirty_shm_consistent(self->gs.hdr, &slot[i], h->snapshot));
		/* The new live set starts empty. */
		EXPECT_EQ(0, vmdirty_shm_count(self->gs.hdr, &slot[i], !h->snapshot));
	}
}

static void want_gpa(FIXTURE_DATA(guest) *self, uint64_t gpa)
{
	self->want.in[gpa / GUEST_PAGE_SIZE] = 1;
}

TEST_F(guest, exact_set)
{
	uint64_t gpas[NR_VCPUS][128], work = vm_work_pages(self->gs.vm);
	struct vmdirty_shm_vcpu *sv = vmdirty_shm_vcpus(self->gs.hdr);
	struct vmdirty_harvest h;
	uint64_t entries = 0;
	unsigned int i, k;

	clear_sets(self);
	for (i = 0; i < NR_VCPUS; i++) {
		for (k = 0; k < 128; k++) {
			/* The first 16 pages are every vCPU's. */
			uint64_t page = k < 16 ? 5 + 64 * k : (i * 977 + k * (13 + 2 * i)) % work;

			gpas[i][k] = GUEST_WORK_BASE + page * GUEST_PAGE_SIZE;
			want_gpa(self, gpas[i][k]);
		}
		ASSERT_EQ(0, vcpu_post_list(self->gs.vm->vcpus[i], gpas[i], 128));
	}
	ASSERT_EQ(0, vm_run_posted(self->gs.vm, NULL, NULL));
	h = peek_and_harvest(_metadata, self, 0);
	check_bits(_metadata, self, &h);
	EXPECT_EQ(h.pages, h.new_pages);
	EXPECT_EQ(NR_VCPUS, h.nr_vcpus);
	/* Per-vCPU counters: what each ring held. */
	for (i = 0; i < NR_VCPUS; i++) {
		EXPECT_EQ(self->per_vcpu[i].entries, sv[i].entries);
		EXPECT_EQ(self->per_vcpu[i].entries, sv[i].last_entries);
		EXPECT_EQ(self->per_vcpu[i].entries, sv[i].ring_used);
		entries += sv[i].entries;
	}
	EXPECT_EQ(h.entries, entries);

	/* Re-protected: one more write brings back that page, in the work area. */
	clear_sets(self);
	ASSERT_EQ(0, vcpu_post_list(self->gs.vm->vcpus[1], &gpas[1][40], 1));
	want_gpa(self, gpas[1][40]);
	ASSERT_EQ(0, vm_run_posted(self->gs.vm, NULL, NULL));
	h = peek_and_harvest(_metadata, self, 0);
	check_bits(_metadata, self, &h);
	EXPECT_EQ(0, sv[0].last_entries);
	EXPECT_LE(1, sv[1].last_entries);

	/* Nothing since: an empty snapshot. */
	clear_sets(self);
	h = peek_and_harvest(_metadata, self, 0);
	check_bits(_metadata, self, &h);
	EXPECT_EQ(0, h.entries);
}

/*
 * A page logged by two collections before a swap (vCPU 0, a NO_SWAP
 * harvest, then vCPU 1 on the same pages and new ones) is one bit: the
 * second collection finds only the new pages new.
 */
TEST_F(guest, duplicates_collapse)
{
	uint64_t a[64], b[96], gfn, work_bits = 0;
	struct vmdirty_harvest h1, h2;
	unsigned int k;

	clear_sets(self);
	for (k = 0; k < 96; k++) {
		b[k] = GUEST_WORK_BASE + (1000 + 5 * k) * GUEST_PAGE_SIZE;
		if (k < 64)
			a[k] = b[k];
		want_gpa(self, b[k]);
	}
	ASSERT_EQ(0, vcpu_post_list(self->gs.vm->vcpus[0], a, 64));
	ASSERT_EQ(0, vm_run_posted(self->gs.vm, NULL, NULL));
	h1 = peek_and_harvest(_metadata, self, VMDIRTY_HARVEST_NO_SWAP);
	EXPECT_EQ(h1.entries, h1.reset);
	EXPECT_EQ(h1.new_pages, h1.pages);	/* the live set: all new */

	ASSERT_EQ(0, vcpu_post_list(self->gs.vm->vcpus[1], b, 96));
	ASSERT_EQ(0, vm_run_posted(self->gs.vm, NULL, NULL));
	gfn_set_clear(&self->bits);
	h2 = peek_and_harvest(_metadata, self, 0);
	EXPECT_EQ(h2.entries, h2.reset);
	/* Both passes' entries, one bit per page. */
	EXPECT_EQ(self->logged.entries, h1.entries + h2.entries);
	EXPECT_EQ(self->logged.count, h2.pages);
	EXPECT_EQ(self->bits.count, h2.pages);
	EXPECT_EQ(h2.pages, h1.new_pages + h2.new_pages);
	EXPECT_LE(h2.new_pages + 64, h2.entries);
	for (gfn = WORK_PFN; gfn < NPAGES; gfn++) {
		EXPECT_EQ(!!self->want.in[gfn], !!self->bits.in[gfn]);
		work_bits += self->bits.in[gfn] != 0;
	}
	EXPECT_EQ(96, work_bits);
}

/* WRITE_RANDOM on every vCPU, replayed on the host; a few rounds. */
static void post_random(FIXTURE_DATA(guest) *self, uint64_t first, uint64_t npages,
			uint64_t writes, uint64_t seed)
{
	unsigned int i;
	uint64_t w;

	for (i = 0; i < NR_VCPUS; i++) {
		uint64_t args[GUEST_CMD_ARGS] = {
			GUEST_WORK_BASE + first * GUEST_PAGE_SIZE, npages, writes, seed + i,
		};
		uint64_t state = seed + i;

		for (w = 0; w < writes; w++)
			self->want.in[WORK_PFN + first + guest_rand_below(&state, npages)] = 1;
		vcpu_post(self->gs.vm->vcpus[i], GUEST_CMD_WRITE_RANDOM, args);
	}
}

TEST_F(guest, cross_check_random)
{
	uint64_t work = vm_work_pages(self->gs.vm);
	struct vmdirty_harvest h;
	unsigned int round;

	for (round = 0; round < 4; round++) {
		clear_sets(self);
		post_random(self, 0, work, 1500, 1000 * round + 7);
		ASSERT_EQ(0, vm_run_posted(self->gs.vm, NULL, NULL));
		h = peek_and_harvest(_metadata, self, round == 3 ? VMDIRTY_HARVEST_NO_SWAP : 0);
		if (round == 3) {
			/* NO_SWAP: the bits wait in the live set; a swap shows them. */
			EXPECT_EQ(h.new_pages, h.pages);
			gfn_set_clear(&self->bits);
			ASSERT_EQ(0, vmdirty_harvest(self->gs.fd, 0, &h));
			EXPECT_EQ(0, h.entries);
			EXPECT_EQ(0, h.reset);
			shm_to_gfn_set(self->gs.hdr, h.snapshot, &self->bits);
			EXPECT_EQ(self->bits.count, h.pages);
			EXPECT_EQ(self->logged.count, self->bits.count);
			continue;
		}
		check_bits(_metadata, self, &h);
		TH_LOG("round %u: %llu entries, %llu pages, %llu ns", round,
		       (unsigned long long)h.entries, (unsigned long long)h.pages,
		       (unsigned long long)h.duration_ns);
	}
}

/*
 * The same writes, harvested in order and as logged: each bitmap is exactly
 * what its rings held, KVM resets exactly what each collected, and the work
 * areas are identical (below them the guest's own pages may differ between
 * two runs).
 */
TEST_F(guest, sorted_vs_unsorted)
{
	uint64_t work = vm_work_pages(self->gs.vm);
	struct vmdirty_harvest hs, hu;
	uint8_t *sorted_bits = malloc(NPAGES);

	ASSERT_NE(NULL, sorted_bits);
	clear_sets(self);
	post_random(self, 0, work, 2000, 4242);
	ASSERT_EQ(0, vm_run_posted(self->gs.vm, NULL, NULL));
	hs = peek_and_harvest(_metadata, self, 0);
	check_bits(_metadata, self, &hs);
	memcpy(sorted_bits, self->bits.in, NPAGES);

	clear_sets(self);
	post_random(self, 0, work, 2000, 4242);
	ASSERT_EQ(0, vm_run_posted(self->gs.vm, NULL, NULL));
	hu = peek_and_harvest(_metadata, self, VMDIRTY_HARVEST_UNSORTED);
	check_bits(_metadata, self, &hu);

	EXPECT_EQ(0, memcmp(sorted_bits + WORK_PFN, self->bits.in + WORK_PFN, NPAGES - WORK_PFN));
	EXPECT_EQ(hs.entries, hs.reset);
	EXPECT_EQ(hu.entries, hu.reset);
	TH_LOG("sorted: %llu entries, %llu pages in %llu ns; unsorted: %llu, %llu in %llu ns",
	       (unsigned long long)hs.entries, (unsigned long long)hs.pages,
	       (unsigned long long)hs.duration_ns, (unsigned long long)hu.entries,
	       (unsigned long long)hu.pages, (unsigned long long)hu.duration_ns);
	free(sorted_bits);
}

/* --- No lost writes ------------------------------------------------------ */

#define STAMP_PAGES	2048

struct writer {
	struct vm *vm;
	int fd;
	volatile bool stop;
	unsigned int commands, ring_full;
	int err;
};

/* A full ring on the vCPU thread: collect into the live set, no swap. */
static int writer_ring_full(struct vcpu *v, void *arg)
{
	struct writer *w = arg;

	w->ring_full++;
	return vmdirty_harvest(w->fd, VMDIRTY_HARVEST_NO_SWAP, NULL);
}

static void *writer_fn(void *arg)
{
	struct writer *w = arg;
	struct vcpu *v = w->vm->vcpus[0];

	while (!w->stop && !w->err) {
		uint64_t args[GUEST_CMD_ARGS] = {
			GUEST_WORK_BASE, STAMP_PAGES, 400, 99 + w->commands,
		};

		w->err = vcpu_post(v, GUEST_CMD_WRITE_RANDOM, args);
		if (!w->err)
			w->err = vcpu_run_cmd(v, writer_ring_full, w);
		w->commands++;
	}
	return NULL;
}

static void read_stamps(struct vm *vm, uint64_t *stamps)
{
	uint64_t p;

	for (p = 0; p < STAMP_PAGES; p++)
		stamps[p] = __atomic_load_n((uint64_t *)(vm->mem + GUEST_WORK_BASE +
							 p * GUEST_PAGE_SIZE), __ATOMIC_RELAXED);
}

/*
 * A page whose stamp changed between the reads after harvests j-1 and j was
 * written after harvest j-1 returned: it is in snapshot j, or in j+1 if the
 * write came after harvest j's walk.  Returns pages that were in neither.
 */
static uint64_t settle(FIXTURE_DATA(guest) *self, const struct vmdirty_harvest *h,
		       const uint64_t *prev, const uint64_t *cur, uint8_t *pending,
		       uint64_t *changed)
{
	uint64_t p, lost = 0;

	gfn_set_clear(&self->bits);
	shm_to_gfn_set(self->gs.hdr, h->snapshot, &self->bits);
	for (p = 0; p < STAMP_PAGES; p++) {
		bool in = self->bits.in[WORK_PFN + p];

		if (pending[p] && !in)
			lost++;
		pending[p] = 0;
		if (prev[p] != cur[p]) {
			(*changed)++;
			pending[p] = !in;
		}
	}
	return lost;
}

TEST_F(guest, no_lost_writes)
{
	uint64_t *stamps[2], lost = 0, changed = 0;
	struct writer w = { .vm = self->gs.vm, .fd = self->gs.fd };
	struct vmdirty_harvest h;
	uint8_t pending[STAMP_PAGES] = { 0 };
	unsigned int round, cur = 0;
	pthread_t th;

	stamps[0] = calloc(STAMP_PAGES, sizeof(uint64_t));
	stamps[1] = calloc(STAMP_PAGES, sizeof(uint64_t));
	ASSERT_TRUE(stamps[0] && stamps[1]);
	ASSERT_EQ(0, vmdirty_harvest(self->gs.fd, 0, &h));
	read_stamps(self->gs.vm, stamps[cur]);
	ASSERT_EQ(0, pthread_create(&th, NULL, writer_fn, &w));

	/*
	 * 40 rounds, and more on a slow kernel (KASAN under TCG) until the
	 * guest wrote enough for the checks below to mean something: at most
	 * 2000 rounds (about 10 s of sleeps).
	 */
	for (round = 0; round < 40 || (round < 2000 &&
				       (changed < 1000 || w.commands < 3)); round++) {
		usleep(2000 + 1000 * (round % 5));
		ASSERT_EQ(0, vmdirty_harvest(self->gs.fd, 0, &h));
		cur ^= 1;
		read_stamps(self->gs.vm, stamps[cur]);
		lost += settle(self, &h, stamps[cur ^ 1], stamps[cur], pending, &changed);
	}
	w.stop = true;
	pthread_join(th, NULL);
	EXPECT_EQ(0, w.err);
	/* Two more: the last writes were before the first of them. */
	for (round = 0; round < 2; round++) {
		ASSERT_EQ(0, vmdirty_harvest(self->gs.fd, 0, &h));
		cur ^= 1;
		read_stamps(self->gs.vm, stamps[cur]);
		lost += settle(self, &h, stamps[cur ^ 1], stamps[cur], pending, &changed);
	}
	TH_LOG("%u commands, %llu page changes seen, %u ring-full exits, %llu lost",
	       w.commands, (unsigned long long)changed, w.ring_full, (unsigned long long)lost);
	EXPECT_EQ(0, lost);
	/* Not vacuous: the guest wrote throughout. */
	EXPECT_LE(1000, changed);
	EXPECT_LE(3, w.commands);
	free(stamps[0]);
	free(stamps[1]);
}

/* --- Memslots changed after ATTACH -------------------------------------- */

static int set_region(struct vm *vm, uint32_t slot, uint64_t gpa, uint64_t size, void *hva)
{
	struct kvm_userspace_memory_region r = {
		.slot = slot, .flags = size ? KVM_MEM_LOG_DIRTY_PAGES : 0,
		.guest_phys_addr = gpa, .memory_size = size, .userspace_addr = (uintptr_t)hva,
	};

	return ioctl(vm->fd, KVM_SET_USER_MEMORY_REGION, &r) ? -errno : 0;
}

/*
 * One vCPU writes 50 pages in the last slot and, with several slots, 50 in
 * slot 1; then the last slot is deleted or moved.  Its entries are dropped
 * (all of them: a page is logged once per write here), slot 1's are not.
 */
static void slot_changed(struct __test_metadata *_metadata, FIXTURE_DATA(guest) *self,
			 bool move)
{
	struct vm_slot *last = &self->gs.vm->slots[self->gs.vm->nr_slots - 1];
	struct vm_slot *kept = self->gs.vm->nr_slots > 1 ? &self->gs.vm->slots[1] : NULL;
	struct vmdirty_shm_slot *slot = vmdirty_shm_slots(self->gs.hdr);
	uint64_t gpas[100], n = 0, in_last = 0, gfn;
	uint64_t first = last->gpa / GUEST_PAGE_SIZE, end = first + last->size / GUEST_PAGE_SIZE;
	struct vmdirty_harvest h;
	unsigned int k, i;

	clear_sets(self);
	for (k = 0; k < 50; k++) {
		gpas[n++] = last->gpa + last->size / 2 + 11 * k * GUEST_PAGE_SIZE;
		if (kept)
			gpas[n++] = kept->gpa + (10 + 7 * k) * GUEST_PAGE_SIZE;
	}
	ASSERT_EQ(0, vcpu_post_list(self->gs.vm->vcpus[0], gpas, n));
	ASSERT_EQ(0, vm_run_posted(self->gs.vm, NULL, NULL));
	ASSERT_LE(0, vm_peek_rings(self->gs.vm, self->cursor, &self->logged, NULL));
	for (gfn = first; gfn < end; gfn++)
		in_last += self->logged.in[gfn];
	ASSERT_LE(50, in_last);

	ASSERT_EQ(0, set_region(self->gs.vm, last->id, move ? 1ULL << 32 : last->gpa,
				move ? last->size : 0, last->hva));
	ASSERT_EQ(0, vmdirty_harvest(self->gs.fd, 0, &h));
	EXPECT_EQ(VMDIRTY_STATUS_LAYOUT_STALE, h.status);
	EXPECT_EQ(2, h.layout_gen);
	EXPECT_EQ(in_last, h.dropped);
	EXPECT_EQ(self->logged.entries, h.entries);
	EXPECT_EQ(h.entries, h.reset);
	EXPECT_EQ(h.dropped, self->gs.hdr->dropped);
	EXPECT_EQ(0, vmdirty_shm_count(self->gs.hdr, &slot[self->gs.hdr->nr_slots - 1], h.snapshot));
	for (k = 0; kept && k < 50; k++)
		EXPECT_TRUE(vmdirty_test_bit(vmdirty_shm_bitmap(self->gs.hdr, &slot[1], h.snapshot),
					     gpas[2 * k + 1] / GUEST_PAGE_SIZE - slot[1].base_gfn));
	for (i = 0; i < self->gs.hdr->nr_slots; i++)
		EXPECT_TRUE(vmdirty_shm_consistent(self->gs.hdr, &slot[i], h.snapshot));
}

TEST_F(guest, memslot_deleted_entries_dropped)
{
	slot_changed(_metadata, self, false);
}

TEST_F(guest, memslot_moved_entries_dropped)
{
	slot_changed(_metadata, self, true);
}

TEST_HARNESS_MAIN
