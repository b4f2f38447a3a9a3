// SPDX-License-Identifier: GPL-2.0
/*
 * KVM's dirty ring, reaped in userspace (vcpu_ring_reap + KVM_RESET_DIRTY_RINGS)
 * while the 64-bit guest payload writes known pages:
 * - exactly the written work-area gfns come out of each vCPU's ring, and
 *   outside the work area only the guest's own mailbox and stack pages;
 * - after the reset, a second write to one page brings back that page only;
 * - WRITE_RANDOM's pages are what the host's replay of guest_rand says;
 * - peeking leaves entries for the collector;
 * - a guest that dirties more than the ring holds exits with
 *   KVM_EXIT_DIRTY_RING_FULL, reaping and resetting lets it go on, and the
 *   union of what was reaped is the written set.
 */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "vmm/vmm.h"
#include "ksft_compat.h"

#define MEM_SIZE	(32ULL << 20)
#define RING_ENTRIES	4096
#define NR_VCPUS	2
#define NPAGES		(MEM_SIZE / GUEST_PAGE_SIZE)
#define WORK_PFN	(GUEST_WORK_BASE / GUEST_PAGE_SIZE)

/* What came out of the rings: how often each gfn, and entries naming no page. */
struct reaped {
	struct vm *vm;
	uint16_t count[NPAGES];
	uint64_t entries, bad;
	int64_t last_gfn;
};

static void on_entry(void *ctx, uint32_t slot, uint64_t offset)
{
	struct reaped *r = ctx;
	int64_t gfn = vm_slot_gfn(r->vm, slot, offset);

	r->entries++;
	r->last_gfn = gfn;
	if (gfn < 0 || (uint64_t)gfn >= NPAGES)
		r->bad++;
	else
		r->count[gfn]++;
}

static int reap(struct vcpu *v, uint32_t *fetch, struct reaped *r)
{
	return vcpu_ring_reap(v, fetch, true, on_entry, r);
}

/*
 * Outside the work area, the guest touches its own pages: KVM logs a page
 * on its first access even by a read (it maps it writable then), and AMD
 * nested paging treats every guest page-table walk as a write.  So the
 * tables, the payload, the mailbox, and vCPU idx's own stack and scratch
 * may show up in idx's ring; another vCPU's stack or scratch, or an unused
 * low page, may not.
 */
static bool guest_own_page(unsigned int idx, uint64_t gfn)
{
	uint64_t gpa = gfn * GUEST_PAGE_SIZE;
	uint64_t stack = GUEST_STACK_BASE + idx * GUEST_STACK_SIZE;
	uint64_t scratch = GUEST_SCRATCH_BASE + idx * GUEST_SCRATCH_SIZE;
	uint64_t pt_end = GUEST_PD_GPA + ((MEM_SIZE + (1ULL << 30) - 1) >> 30) * GUEST_PAGE_SIZE;

	return (gpa >= GUEST_GDT_GPA && gpa <= GUEST_IDT_GPA) ||
	       (gpa >= GUEST_MAILBOX_GPA && gpa < GUEST_MAILBOX_GPA + GUEST_MAILBOX_SIZE) ||
	       (gpa >= GUEST_PML4_GPA && gpa < pt_end) ||
	       (gpa >= GUEST_CODE_BASE && gpa < GUEST_CODE_BASE + GUEST_CODE_MAX) ||
	       (gpa >= stack && gpa < stack + GUEST_STACK_SIZE) ||
	       (gpa >= scratch && gpa < scratch + GUEST_SCRATCH_SIZE);
}

/*
 * Compares r with the expected work-area set (want[gfn] != 0) for vCPU idx:
 * returns the number of differences, logging the first few.
 */
static int diff_reaped(struct __test_metadata *_metadata, unsigned int idx,
		       const struct reaped *r, const uint8_t *want)
{
	int diffs = 0;
	uint64_t gfn;

	for (gfn = 0; gfn < NPAGES; gfn++) {
		bool ok;

		if (gfn < WORK_PFN)
			ok = !r->count[gfn] || (r->count[gfn] == 1 && guest_own_page(idx, gfn));
		else
			ok = r->count[gfn] == (want[gfn] ? 1 : 0);
		if (!ok && diffs++ < 8)
			TH_LOG("vcpu %u: gfn %#llx reaped %u times, expected %s", idx,
			       (unsigned long long)gfn, r->count[gfn],
			       gfn < WORK_PFN ? "0 (not guest bookkeeping)" :
			       want[gfn] ? "1" : "0");
	}
	if (r->bad && diffs++ < 8)
		TH_LOG("vcpu %u: %llu entries name no page", idx, (unsigned long long)r->bad);
	return diffs;
}

struct run_arg {
	struct vcpu *v;
	int (*ring_full)(struct vcpu *v, void *ctx);
	void *ctx;
	int ret;
};

static void *run_thread(void *p)
{
	struct run_arg *a = p;

	a->ret = vcpu_run_cmd(a->v, a->ring_full, a->ctx);
	return NULL;
}

/* Runs the vCPUs that have a command posted, each on its own thread, concurrently. */
static void run_all(struct __test_metadata *_metadata, struct vm *vm)
{
	struct run_arg arg[VM_MAX_VCPUS] = {};
	pthread_t th[VM_MAX_VCPUS];
	bool posted[VM_MAX_VCPUS] = {};
	unsigned int i;

	for (i = 0; i < vm->nr_vcpus; i++) {
		struct vcpu *v = vm->vcpus[i];

		posted[i] = v->mb->cmd_seq != v->mb->done_seq;
		if (!posted[i])
			continue;
		arg[i].v = v;
		ASSERT_EQ(0, pthread_create(&th[i], NULL, run_thread, &arg[i]));
	}
	for (i = 0; i < vm->nr_vcpus; i++) {
		if (!posted[i])
			continue;
		pthread_join(th[i], NULL);
		EXPECT_EQ(0, arg[i].ret) {
			TH_LOG("vcpu %u: %s", i, strerror(-arg[i].ret));
		}
	}
}

static void post_list(struct __test_metadata *_metadata, struct vcpu *v,
		      const uint64_t *gpas, uint64_t n)
{
	uint64_t list_gpa, args[GUEST_CMD_ARGS] = {};
	uint64_t *list = vcpu_scratch(v, &list_gpa);

	ASSERT_LE(n * 8, GUEST_SCRATCH_SIZE);
	memcpy(list, gpas, n * 8);
	args[0] = list_gpa;
	args[1] = n;
	ASSERT_EQ(0, vcpu_post(v, GUEST_CMD_WRITE_LIST, args));
}

static uint64_t read_qword(struct vm *vm, uint64_t gpa)
{
	uint64_t q;

	memcpy(&q, vm->mem + gpa, 8);
	return q;
}

FIXTURE(ring) {
	struct vm *vm;
	uint32_t fetch[NR_VCPUS];
	struct reaped r[NR_VCPUS];
	uint8_t want[VM_MAX_VCPUS][NPAGES];
};

FIXTURE_SETUP(ring)
{
	struct vm_config cfg = {
		.nr_vcpus = NR_VCPUS, .mem_size = MEM_SIZE,
		.ring_entries = RING_ENTRIES, .log_dirty = true,
	};
	unsigned int i;
	int r;

	self->vm = NULL;
	if (access("/dev/kvm", R_OK | W_OK))
		SETUP_SKIP("no /dev/kvm");
	if (vm_check_cap(NULL, KVM_CAP_DIRTY_LOG_RING_ACQ_REL) <= 0)
		SETUP_SKIP("KVM has no KVM_CAP_DIRTY_LOG_RING_ACQ_REL");
	r = vm_create(&cfg, &self->vm);
	ASSERT_EQ(0, r) TH_LOG("vm_create: %s", strerror(-r));
	ASSERT_TRUE(self->vm->ring_acq_rel);
	ASSERT_EQ(0, vm_load_guest(self->vm));
	for (i = 0; i < NR_VCPUS; i++)
		self->r[i].vm = self->vm;
}

FIXTURE_TEARDOWN(ring)
{
	vm_destroy(self->vm);
}

static void clear_reaped(FIXTURE_DATA(ring) *self)
{
	unsigned int i;

	for (i = 0; i < NR_VCPUS; i++) {
		memset(self->r[i].count, 0, sizeof(self->r[i].count));
		self->r[i].entries = self->r[i].bad = 0;
		memset(self->want[i], 0, sizeof(self->want[i]));
	}
}

/* Reaps every ring, resets, and checks each against its expected set. */
static void reap_and_check(struct __test_metadata *_metadata, FIXTURE_DATA(ring) *self)
{
	uint64_t total = 0;
	unsigned int i;

	for (i = 0; i < NR_VCPUS; i++) {
		int n = reap(self->vm->vcpus[i], &self->fetch[i], &self->r[i]);

		ASSERT_LE(0, n);
		total += n;
		EXPECT_EQ(0, diff_reaped(_metadata, i, &self->r[i], self->want[i]));
	}
	/* KVM resets exactly what was harvested. */
	EXPECT_EQ(total, vm_reset_dirty_rings(self->vm));
}

TEST_F(ring, write_list_exact_then_rewrite_one)
{
	uint64_t gpas[NR_VCPUS][64];
	uint64_t half = vm_work_pages(self->vm) / NR_VCPUS;
	unsigned int i, k;

	clear_reaped(self);
	/* Disjoint sets per vCPU, spread with odd strides. */
	for (i = 0; i < NR_VCPUS; i++) {
		for (k = 0; k < 64; k++) {
			uint64_t page = i * half + 3 + k * (7 + 2 * i);

			gpas[i][k] = GUEST_WORK_BASE + page * GUEST_PAGE_SIZE;
			self->want[i][gpas[i][k] / GUEST_PAGE_SIZE] = 1;
		}
		post_list(_metadata, self->vm->vcpus[i], gpas[i], 64);
	}
	run_all(_metadata, self->vm);
	reap_and_check(_metadata, self);
	for (i = 0; i < NR_VCPUS; i++)
		for (k = 0; k < 64; k++)
			EXPECT_EQ(GUEST_WRITE_VALUE(self->vm->vcpus[i]->mb->cmd_seq, k),
				  read_qword(self->vm, gpas[i][k]));

	/* Reset re-protected them: one more write shows that page alone. */
	clear_reaped(self);
	post_list(_metadata, self->vm->vcpus[1], &gpas[1][17], 1);
	self->want[1][gpas[1][17] / GUEST_PAGE_SIZE] = 1;
	run_all(_metadata, self->vm);
	reap_and_check(_metadata, self);

	/* And with nothing written since, the work area stays clean. */
	clear_reaped(self);
	reap_and_check(_metadata, self);
}

TEST_F(ring, write_random_matches_host_replay)
{
	const uint64_t region = GUEST_WORK_BASE + 100 * GUEST_PAGE_SIZE, npages = 1000;
	const uint64_t writes = 300, seed = 0x1234abcdULL;
	uint64_t args[GUEST_CMD_ARGS] = { region, npages, writes, seed };
	uint64_t last[1000], state = seed, i, distinct = 0;
	struct vcpu *v = self->vm->vcpus[0];

	clear_reaped(self);
	memset(last, 0, sizeof(last));
	for (i = 0; i < writes; i++) {
		uint64_t p = guest_rand_below(&state, npages);

		if (!last[p])
			distinct++;
		last[p] = i + 1;
		self->want[0][(region / GUEST_PAGE_SIZE) + p] = 1;
	}
	ASSERT_LT(distinct, writes);	/* some pages written twice */
	ASSERT_EQ(0, vcpu_post(v, GUEST_CMD_WRITE_RANDOM, args));
	ASSERT_EQ(0, vcpu_run_cmd(v, NULL, NULL));
	for (i = 0; i < npages; i++)
		if (last[i])
			ASSERT_EQ(GUEST_WRITE_VALUE(v->mb->cmd_seq, last[i] - 1),
				  read_qword(self->vm, region + i * GUEST_PAGE_SIZE));
	reap_and_check(_metadata, self);
}

TEST_F(ring, peek_leaves_entries_for_the_collector)
{
	struct vcpu *v = self->vm->vcpus[0];
	uint64_t gpas[16];
	struct reaped *peeked;
	uint32_t cursor;
	int n, k;

	peeked = calloc(1, sizeof(*peeked));
	ASSERT_NE(NULL, peeked);
	peeked->vm = self->vm;
	clear_reaped(self);
	for (k = 0; k < 16; k++) {
		gpas[k] = GUEST_WORK_BASE + (500 + 3 * k) * GUEST_PAGE_SIZE;
		self->want[0][gpas[k] / GUEST_PAGE_SIZE] = 1;
	}
	post_list(_metadata, v, gpas, 16);
	ASSERT_EQ(0, vcpu_run_cmd(v, NULL, NULL));

	cursor = self->fetch[0];
	n = vcpu_ring_reap(v, &cursor, false, on_entry, peeked);
	ASSERT_LE(16, n);
	EXPECT_EQ(0, diff_reaped(_metadata, 0, peeked, self->want[0]));
	/* Nothing was harvested: KVM has nothing to reset. */
	EXPECT_EQ(0, vm_reset_dirty_rings(self->vm));
	/* A second peek from where the first stopped sees nothing new. */
	EXPECT_EQ(0, vcpu_ring_reap(v, &cursor, false, on_entry, peeked));
	/* The collector still finds them all, from its own cursor. */
	reap_and_check(_metadata, self);
	EXPECT_EQ(n, self->r[0].entries);
	EXPECT_EQ(cursor, self->fetch[0]);
	free(peeked);
}

TEST_F(ring, rejected_list_writes_nothing)
{
	struct vcpu *v = self->vm->vcpus[0];
	uint64_t gpas[3] = {
		GUEST_WORK_BASE + 10 * GUEST_PAGE_SIZE,
		GUEST_WORK_BASE + 11 * GUEST_PAGE_SIZE,
		GUEST_CODE_BASE,	/* the payload itself: refused */
	};

	clear_reaped(self);
	post_list(_metadata, v, gpas, 3);
	EXPECT_EQ(GUEST_ERANGE, vcpu_run_cmd(v, NULL, NULL));
	EXPECT_EQ(0, read_qword(self->vm, gpas[0]));
	reap_and_check(_metadata, self);	/* no work page at all */
}

/* Ring-full: a small ring, one vCPU, more pages than the ring holds. */
struct full_ctx {
	struct reaped r;
	uint32_t fetch;
	unsigned int exits;
	int64_t last_gfn[64];	/* the last entry reaped at each exit */
	int err;
};

static int on_ring_full(struct vcpu *v, void *p)
{
	struct full_ctx *c = p;
	int n, reset;

	n = vcpu_ring_reap(v, &c->fetch, true, on_entry, &c->r);
	if (c->exits < 64)
		c->last_gfn[c->exits] = c->r.last_gfn;
	c->exits++;
	reset = vm_reset_dirty_rings(v->vm);
	if (n <= 0 || reset != n) {
		c->err = n <= 0 ? -ENODATA : -EPROTO;
		return c->err;
	}
	return 0;
}

TEST(ring_full_exit_reap_reset_continue)
{
	struct vm_config cfg = {
		.nr_vcpus = 1, .mem_size = 16ULL << 20,
		.ring_entries = 1024, .log_dirty = true,
	};
	const uint64_t npages = 2500;
	uint64_t args[GUEST_CMD_ARGS] = { GUEST_WORK_BASE, npages, 1, 1 };
	struct full_ctx *c;
	struct vm *vm;
	uint64_t gfn, missing = 0, wrong = 0;
	int r;

	if (access("/dev/kvm", R_OK | W_OK))
		SKIP(return, "no /dev/kvm");
	if (vm_check_cap(NULL, KVM_CAP_DIRTY_LOG_RING_ACQ_REL) <= 0)
		SKIP(return, "KVM has no KVM_CAP_DIRTY_LOG_RING_ACQ_REL");
	c = calloc(1, sizeof(*c));
	ASSERT_NE(NULL, c);
	r = vm_create(&cfg, &vm);
	ASSERT_EQ(0, r) TH_LOG("vm_create: %s", strerror(-r));
	c->r.vm = vm;
	ASSERT_EQ(0, vm_load_guest(vm));

	/* Without a handler the full ring ends the run. */
	ASSERT_EQ(0, vcpu_post(vm->vcpus[0], GUEST_CMD_WRITE_RANGE, args));
	EXPECT_EQ(-ENOSPC, vcpu_run_cmd(vm->vcpus[0], NULL, NULL));
	EXPECT_EQ(KVM_EXIT_DIRTY_RING_FULL, vm->vcpus[0]->run->exit_reason);
	/* With one it goes on to the end. */
	r = vcpu_run_cmd(vm->vcpus[0], on_ring_full, c);
	EXPECT_EQ(0, r) TH_LOG("run: %s (handler %d)", strerror(-r), c->err);
	EXPECT_LE(2, c->exits) TH_LOG("%u ring-full exits for %llu pages in a %u-entry ring",
				      c->exits, (unsigned long long)npages, cfg.ring_entries);
	/* What is left after the last exit. */
	ASSERT_LE(0, vcpu_ring_reap(vm->vcpus[0], &c->fetch, true, on_entry, &c->r));
	ASSERT_LE(0, vm_reset_dirty_rings(vm));

	/*
	 * A page comes out twice only if it is the one whose write filled the
	 * ring: KVM logs it and exits before the write retires, the reset
	 * write-protects it again, and the retried write logs it once more.
	 */
	for (gfn = 0; gfn < vm->mem_size / GUEST_PAGE_SIZE; gfn++) {
		bool in = gfn >= WORK_PFN && gfn < WORK_PFN + npages;
		bool filled = false;
		unsigned int i;

		for (i = 0; i < c->exits && i < 64; i++)
			filled |= c->last_gfn[i] == (int64_t)gfn;
		if (in && !c->r.count[gfn])
			missing++;
		else if (in ? c->r.count[gfn] > 1 + filled :
			      c->r.count[gfn] && !guest_own_page(0, gfn))
			wrong++;
		else
			continue;
		TH_LOG("gfn %#llx reaped %u times", (unsigned long long)gfn, c->r.count[gfn]);
	}
	EXPECT_EQ(0, missing);
	EXPECT_EQ(0, wrong);
	EXPECT_EQ(0, c->r.bad);
	TH_LOG("%u ring-full exits, %llu entries reaped for %llu pages", c->exits,
	       (unsigned long long)c->r.entries, (unsigned long long)npages);
	vm_destroy(vm);
	free(c);
}

TEST_HARNESS_MAIN
