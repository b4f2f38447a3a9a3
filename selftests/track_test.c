// SPDX-License-Identifier: GPL-2.0
/*
 * The agent's dirty-page trackers (userspace/track/), the way KVM's
 * dirty_log_test checks its log modes: one verifier over a table of
 * backends.  Real guests write known pages on several vCPUs; each harvest
 * must name exactly those pages of the work area (the VMM's low area, where
 * the guest keeps its stacks and mailbox, may show up too).
 *
 * Every VM has three memslots of odd sizes (3077, 3077 and 2038 pages), so
 * part boundaries and partial bitmap words are in every test.
 *
 * The kmod variants skip, with the reason, while vmdirty.ko cannot attach.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <linux/kvm.h>
#include <linux/vmdirty.h>

#include "nl.h"
#include "track/backend.h"	/* track_ring_discard(): a second collector */
#include "track/track.h"
#include "vmm/vmm.h"

#include "ksft_compat.h"

#define MEM_SIZE	(32ULL << 20)
#define SLOT_SIZE	(12ULL << 20 | 20 << 10)	/* 3077 pages: odd on purpose */
#define NR_VCPUS	2
#define LIST_MAX	(GUEST_SCRATCH_SIZE / 8)
#define MEM_PAGES	(MEM_SIZE >> 12)
#define WORK_FIRST	(GUEST_WORK_BASE >> 12)
/* The agent, from the installed suite (build/kselftest/vmdirty). */
#define AGENT		"../../vmdirty"

FIXTURE(track) {
	struct vm *vm;
	struct tracker *t;
	struct vm_runner *r;
	uint8_t expect[MEM_PAGES];	/* pages the guest wrote since the last harvest */
	uint64_t rng;
};

/* Backends, as dirty_log_test's log modes. */
FIXTURE_VARIANT(track) {
	enum track_backend backend;
	bool unsorted;		/* kmod: VMDIRTY_HARVEST_UNSORTED */
	bool drain;		/* kmod: background draining */
};

FIXTURE_VARIANT_ADD(track, bitmap) { .backend = TRACK_BITMAP };
FIXTURE_VARIANT_ADD(track, ring) { .backend = TRACK_RING };
FIXTURE_VARIANT_ADD(track, ring_sorted) { .backend = TRACK_RING_SORTED };
FIXTURE_VARIANT_ADD(track, kmod) { .backend = TRACK_KMOD };
FIXTURE_VARIANT_ADD(track, kmod_unsorted) { .backend = TRACK_KMOD, .unsorted = true };
FIXTURE_VARIANT_ADD(track, kmod_drain) { .backend = TRACK_KMOD, .drain = true };

/* Why this host cannot run the variant, or NULL. */
static const char *variant_unsupported(const FIXTURE_VARIANT(track) *variant, char *why, size_t len)
{
	uint32_t features = 0;

	if (access("/dev/kvm", R_OK | W_OK))
		return "no /dev/kvm";
	if (variant->backend == TRACK_BITMAP)
		return NULL;
	if (vm_check_cap(NULL, KVM_CAP_DIRTY_LOG_RING_ACQ_REL) <= 0 &&
	    vm_check_cap(NULL, KVM_CAP_DIRTY_LOG_RING) <= 0)
		return "KVM has no dirty ring";
	if (variant->backend == TRACK_RING || variant->backend == TRACK_RING_SORTED)
		return NULL;
	if (!track_kmod_usable(why, len, &features))
		return why;
	if (variant->drain && !(features & VMDIRTY_FEAT_DRAIN))
		return "vmdirty.ko does not drain in the background";
	return NULL;
}

FIXTURE_SETUP(track)
{
	char why[256];
	const char *no = variant_unsupported(variant, why, sizeof(why));

	self->vm = NULL;
	self->t = NULL;
	self->r = NULL;
	self->rng = 0x1234567 + variant->backend;
	if (no)
		SETUP_SKIP("%s", no);
}

FIXTURE_TEARDOWN(track)
{
	vm_runner_free(self->r);
	tracker_destroy(self->t);
	vm_destroy(self->vm);
}

/* A VM for the variant with ring_entries (0: the default) and a tracker. */
static int make_vm(FIXTURE_DATA(track) *self, const FIXTURE_VARIANT(track) *variant,
		   uint32_t ring_entries)
{
	struct vm_config cfg = {
		.nr_vcpus = NR_VCPUS, .mem_size = MEM_SIZE, .slot_size = SLOT_SIZE,
		.ring_entries = ring_entries,
	};
	struct track_opts o = { .kmod_unsorted = variant->unsorted, .kmod_drain = variant->drain };
	int ret;

	ret = track_vm_config(variant->backend, &cfg);
	if (!ret)
		ret = vm_create(&cfg, &self->vm);
	if (!ret)
		ret = vm_load_guest(self->vm);
	if (!ret)
		ret = tracker_create_opts(variant->backend, self->vm, &o, &self->t);
	return ret;
}

static uint64_t rnd(FIXTURE_DATA(track) *self, uint64_t n)
{
	return guest_rand_below(&self->rng, n);
}

/* One vCPU's share of a round: its list of pages, written by WRITE_LIST. */
struct job {
	struct vcpu *v;
	struct tracker *t;
	const uint64_t *pages;
	size_t n;
	int ret;
};

static void *job_run(void *arg)
{
	struct job *j = arg;
	uint64_t gpa, args[GUEST_CMD_ARGS] = { 0 };
	uint64_t *list = vcpu_scratch(j->v, &gpa);

	j->ret = 0;
	for (size_t done = 0; done < j->n && !j->ret; ) {
		size_t k = j->n - done < LIST_MAX ? j->n - done : LIST_MAX;

		for (size_t i = 0; i < k; i++)
			list[i] = j->pages[done + i] << 12;
		args[0] = gpa;
		args[1] = k;
		j->ret = vcpu_post(j->v, GUEST_CMD_WRITE_LIST, args);
		if (!j->ret)
			j->ret = vcpu_run_cmd(j->v, tracker_ring_full_cb, j->t);
		done += k;
	}
	return NULL;
}

/* Every vCPU writes its list, all at once; the pages go into expect. */
static int write_pages(FIXTURE_DATA(track) *self, uint64_t *const lists[], const size_t n[])
{
	struct job jobs[NR_VCPUS];
	pthread_t th[NR_VCPUS];
	int ret = 0;

	for (unsigned int i = 0; i < NR_VCPUS; i++) {
		jobs[i] = (struct job){ .v = self->vm->vcpus[i], .t = self->t,
					.pages = lists[i], .n = n[i] };
		for (size_t k = 0; k < n[i]; k++)
			self->expect[lists[i][k]] = 1;
		if (pthread_create(&th[i], NULL, job_run, &jobs[i]))
			return -EAGAIN;
	}
	for (unsigned int i = 0; i < NR_VCPUS; i++) {
		pthread_join(th[i], NULL);
		if (jobs[i].ret && !ret)
			ret = jobs[i].ret;
	}
	return ret;
}

/* n random work pages per vCPU, plus the edges of every slot. */
static void random_lists(FIXTURE_DATA(track) *self, uint64_t *lists[], size_t n[], size_t count)
{
	for (unsigned int i = 0; i < NR_VCPUS; i++) {
		n[i] = 0;
		for (size_t k = 0; k < count; k++)
			lists[i][n[i]++] = WORK_FIRST + rnd(self, MEM_PAGES - WORK_FIRST);
	}
	/* Slot edges (first and last page of each slot in the work area). */
	for (unsigned int s = 0; s < self->vm->nr_slots; s++) {
		uint64_t first = self->vm->slots[s].gpa >> 12;
		uint64_t last = first + (self->vm->slots[s].size >> 12) - 1;

		if (first >= WORK_FIRST)
			lists[s % NR_VCPUS][n[s % NR_VCPUS]++] = first;
		lists[(s + 1) % NR_VCPUS][n[(s + 1) % NR_VCPUS]++] = last;
	}
}

struct walk {
	uint64_t n, prev;
	bool ordered;
};

static int walk_one(void *ctx, uint64_t page)
{
	struct walk *w = ctx;

	if (w->n && page <= w->prev)
		w->ordered = false;
	w->prev = page;
	w->n++;
	return 0;
}

/*
 * The verifier: the log is well formed, and in the work area it names
 * exactly the pages in expect (which it then clears for the next round).
 */
static void check_log(struct __test_metadata *_metadata, FIXTURE_DATA(track) *self,
		      const struct dirty_log *log)
{
	struct walk w = { .ordered = true };
	struct dirty_log_iter it;
	uint64_t page, missing = 0, extra = 0, first_bad = 0;

	ASSERT_EQ(self->vm->nr_slots, log->nr_parts);
	for (unsigned int i = 0; i < log->nr_parts; i++) {
		EXPECT_EQ(self->vm->slots[i].gpa >> 12, log->part[i].first_page);
		EXPECT_EQ(self->vm->slots[i].size >> 12, log->part[i].npages);
	}
	EXPECT_EQ(0, log->dropped);
	/* Iterator, for_each and popcount agree with count. */
	ASSERT_EQ(0, dirty_log_for_each(log, walk_one, &w));
	EXPECT_TRUE(w.ordered);
	EXPECT_EQ(log->count, w.n);
	EXPECT_EQ(log->count, dirty_log_popcount(log));
	dirty_log_iter_init(&it, log);
	while (dirty_log_next(&it, &page)) {
		ASSERT_LT(page, MEM_PAGES);
		if (page >= WORK_FIRST && !self->expect[page] && !extra++)
			first_bad = page;
	}
	for (page = WORK_FIRST; page < MEM_PAGES; page++) {
		if (self->expect[page] && !dirty_log_test(log, page) && !missing++ && !extra)
			first_bad = page;
	}
	EXPECT_EQ(0, missing) TH_LOG("%llu written pages not in the log (first 0x%llx)",
				     (unsigned long long)missing, (unsigned long long)first_bad);
	EXPECT_EQ(0, extra) TH_LOG("%llu pages in the log never written (first 0x%llx)",
				   (unsigned long long)extra, (unsigned long long)first_bad);
	memset(self->expect, 0, sizeof(self->expect));
}

static void check_everything(struct __test_metadata *_metadata, FIXTURE_DATA(track) *self,
			     const struct dirty_log *log)
{
	EXPECT_TRUE(log->everything);
	EXPECT_EQ(MEM_PAGES, log->count);
	EXPECT_EQ(MEM_PAGES, dirty_log_popcount(log));
	for (uint64_t p = 0; p < MEM_PAGES; p += 97)
		EXPECT_TRUE(dirty_log_test(log, p));
	EXPECT_TRUE(dirty_log_test(log, MEM_PAGES - 1));
	EXPECT_FALSE(dirty_log_test(log, MEM_PAGES));
	memset(self->expect, 0, sizeof(self->expect));
}

#define HARVEST(log) \
	ASSERT_EQ(0, tracker_harvest(self->t, (log))) TH_LOG("%s", tracker_error(self->t))

/*
 * First harvest = everything, the next only what was written since; the
 * same after stop and start.
 */
TEST_F_TIMEOUT(track, first_harvest, 300)
{
	uint64_t a[NR_VCPUS][512], *lists[NR_VCPUS] = { a[0], a[1] };
	size_t n[NR_VCPUS];
	struct dirty_log log;

	ASSERT_EQ(0, make_vm(self, variant, 0));
	ASSERT_EQ(0, tracker_start(self->t)) TH_LOG("%s", tracker_error(self->t));
	EXPECT_EQ(-EALREADY, tracker_start(self->t));
	random_lists(self, lists, n, 200);
	ASSERT_EQ(0, write_pages(self, lists, n));
	HARVEST(&log);
	check_everything(_metadata, self, &log);
	/* Nothing written since: the work area is clean. */
	HARVEST(&log);
	EXPECT_FALSE(log.everything);
	check_log(_metadata, self, &log);
	random_lists(self, lists, n, 200);
	ASSERT_EQ(0, write_pages(self, lists, n));
	HARVEST(&log);
	check_log(_metadata, self, &log);

	tracker_stop(self->t);
	EXPECT_EQ(-ENOTCONN, tracker_harvest(self->t, &log));
	ASSERT_EQ(0, tracker_start(self->t)) TH_LOG("%s", tracker_error(self->t));
	HARVEST(&log);
	check_everything(_metadata, self, &log);
	random_lists(self, lists, n, 100);
	ASSERT_EQ(0, write_pages(self, lists, n));
	HARVEST(&log);
	check_log(_metadata, self, &log);
}

/* Random lists (duplicates, slot edges) on every vCPU, several rounds. */
TEST_F_TIMEOUT(track, exact_set, 300)
{
	uint64_t a[NR_VCPUS][1100], *lists[NR_VCPUS] = { a[0], a[1] };
	size_t n[NR_VCPUS];
	struct dirty_log log;

	ASSERT_EQ(0, make_vm(self, variant, 0));
	ASSERT_EQ(0, tracker_start(self->t)) TH_LOG("%s", tracker_error(self->t));
	HARVEST(&log);
	check_everything(_metadata, self, &log);
	for (int round = 0; round < 4; round++) {
		random_lists(self, lists, n, 300 + 200 * round);
		ASSERT_EQ(0, write_pages(self, lists, n));
		HARVEST(&log);
		check_log(_metadata, self, &log);
		/* Everything collected was re-protected. */
		EXPECT_EQ(log.entries, log.resets);
	}
}

/*
 * Re-protection: a page harvested is reported again only if written again
 * after the harvest; a round without writes leaves the work area clean.
 */
TEST_F_TIMEOUT(track, reprotect, 300)
{
	uint64_t a[NR_VCPUS][600], b[NR_VCPUS][600], *la[NR_VCPUS] = { a[0], a[1] };
	uint64_t *lb[NR_VCPUS] = { b[0], b[1] };
	size_t na[NR_VCPUS], nb[NR_VCPUS];
	struct dirty_log log;

	ASSERT_EQ(0, make_vm(self, variant, 0));
	ASSERT_EQ(0, tracker_start(self->t)) TH_LOG("%s", tracker_error(self->t));
	HARVEST(&log);
	random_lists(self, la, na, 500);
	ASSERT_EQ(0, write_pages(self, la, na));
	HARVEST(&log);
	check_log(_metadata, self, &log);
	HARVEST(&log);
	check_log(_metadata, self, &log);
	/* B: every other page of A again, and as many new ones. */
	for (unsigned int i = 0; i < NR_VCPUS; i++) {
		nb[i] = 0;
		for (size_t k = 0; k < na[i]; k += 2) {
			lb[i][nb[i]++] = la[i][k];
			lb[i][nb[i]++] = WORK_FIRST + rnd(self, MEM_PAGES - WORK_FIRST);
		}
	}
	ASSERT_EQ(0, write_pages(self, lb, nb));
	HARVEST(&log);
	check_log(_metadata, self, &log);
	/* The same pages once more: they were re-protected by that harvest. */
	ASSERT_EQ(0, write_pages(self, lb, nb));
	HARVEST(&log);
	check_log(_metadata, self, &log);
}

/*
 * Each vCPU dirties far more than its ring's soft limit (256 entries, the
 * smallest the VMM allows): the guest must keep running and nothing may be
 * lost.  The bitmap backend has no ring and runs the same writes.
 */
TEST_F_TIMEOUT(track, ring_full, 300)
{
	static uint64_t a[NR_VCPUS][3000];
	uint64_t *lists[NR_VCPUS] = { a[0], a[1] };
	uint64_t work = MEM_PAGES - WORK_FIRST;
	size_t n[NR_VCPUS];
	struct dirty_log log;
	struct track_stats st;

	ASSERT_EQ(0, make_vm(self, variant, 256));
	ASSERT_EQ(0, tracker_start(self->t)) TH_LOG("%s", tracker_error(self->t));
	HARVEST(&log);
	for (int round = 0; round < 2; round++) {
		/* Distinct pages, in an order that jumps across the slots. */
		for (unsigned int i = 0; i < NR_VCPUS; i++) {
			n[i] = 3000;
			for (size_t k = 0; k < n[i]; k++)
				a[i][k] = WORK_FIRST + (k * 2 + i + round * 7) * 1031 % work;
		}
		ASSERT_EQ(0, write_pages(self, lists, n));
		HARVEST(&log);
		check_log(_metadata, self, &log);
		if (variant->backend != TRACK_BITMAP && !variant->drain)
			EXPECT_LT(0, log.ring_full) TH_LOG("no ring-full exit: the test did not test");
		/* Without draining, this harvest and the ring-full handlers collected all. */
		if (variant->backend != TRACK_BITMAP && !variant->drain)
			EXPECT_LE(6000, log.entries + log.ring_full_entries);
	}
	tracker_stats(self->t, &st);
	EXPECT_EQ(0, st.dropped);
	if (variant->backend == TRACK_BITMAP)
		EXPECT_EQ(0, st.ring_full);
}

/* Per-vCPU counters follow what each vCPU wrote (ring, kmod). */
TEST_F_TIMEOUT(track, vcpu_stats, 300)
{
	uint64_t a[NR_VCPUS][700], *lists[NR_VCPUS] = { a[0], a[1] };
	struct track_vcpu_stat st[NR_VCPUS];
	size_t n[NR_VCPUS] = { 600, 150 };
	struct dirty_log log;
	int ret;

	ASSERT_EQ(0, make_vm(self, variant, 0));
	ASSERT_EQ(0, tracker_start(self->t)) TH_LOG("%s", tracker_error(self->t));
	HARVEST(&log);
	HARVEST(&log);
	for (unsigned int i = 0; i < NR_VCPUS; i++)
		for (size_t k = 0; k < n[i]; k++)	/* distinct pages */
			a[i][k] = WORK_FIRST + 1 + k * NR_VCPUS + i;
	ASSERT_EQ(0, write_pages(self, lists, n));
	HARVEST(&log);
	check_log(_metadata, self, &log);
	ret = tracker_vcpu_stats(self->t, st, NR_VCPUS);
	if (variant->backend == TRACK_BITMAP) {
		EXPECT_EQ(-EOPNOTSUPP, ret);
		return;
	}
	ASSERT_EQ(NR_VCPUS, ret);
	for (unsigned int i = 0; i < NR_VCPUS; i++) {
		/* Its pages, plus a few of its own stack and mailbox. */
		EXPECT_LE(n[i], st[i].last_entries) TH_LOG("vCPU %u", i);
		EXPECT_GE(n[i] + 32, st[i].last_entries) TH_LOG("vCPU %u", i);
		EXPECT_LE(st[i].last_entries, st[i].entries);
		EXPECT_EQ(self->vm->vcpus[i]->ring_entries, st[i].ring_size);
		EXPECT_NE(0, st[i].last_ns);
	}
}

/* Copy every page the log names, as a pre-copy round would send it. */
static uint64_t copy_dirty(const struct vm *vm, const struct dirty_log *log, uint8_t *copy)
{
	struct dirty_log_iter it;
	uint64_t page, n = 0;

	dirty_log_iter_init(&it, log);
	while (dirty_log_next(&it, &page)) {
		memcpy(copy + (page << 12), vm->mem + (page << 12), 4096);
		n++;
	}
	return n;
}

/*
 * Live pre-copy: the random-write workload runs on every vCPU (runner
 * threads, a 256-entry ring so that ring-full exits happen while we
 * harvest) and each round copies what its log names.  After a pause and a
 * last harvest the copy of the work area must equal guest memory: no write
 * fell between two harvests.
 */
TEST_F_TIMEOUT(track, live_copy, 300)
{
	struct vm_runner_hooks h = { .ring_full = tracker_runner_ring_full };
	uint64_t work = MEM_SIZE - GUEST_WORK_BASE, bad = 0, first_bad = 0;
	struct vm_runner_stats rs;
	struct dirty_log log;
	uint8_t *copy;

	ASSERT_EQ(0, make_vm(self, variant, 256));
	copy = malloc(MEM_SIZE);
	ASSERT_NE(NULL, copy);
	h.ctx = self->t;
	ASSERT_EQ(0, tracker_start(self->t)) TH_LOG("%s", tracker_error(self->t));
	for (unsigned int i = 0; i < NR_VCPUS; i++) {
		uint64_t args[GUEST_CMD_ARGS] = { GUEST_WL_RANDOM, 0, 0, 77 + i };

		ASSERT_EQ(0, vcpu_post(self->vm->vcpus[i], GUEST_CMD_WORKLOAD, args));
	}
	ASSERT_EQ(0, vm_runner_start(self->vm, &h, &self->r));
	/*
	 * Eight rounds 150 ms apart, then, for a ring backend that has not
	 * filled a ring yet (a slow or busy test host), rounds further apart
	 * until one fills: the check below stays a check, not a coin toss
	 * (CI once saw none in eight rounds).
	 */
	for (int round = 0; round < 40; round++) {
		HARVEST(&log);
		EXPECT_EQ(round == 0, log.everything);
		copy_dirty(self->vm, &log, copy);
		vm_runner_stats(self->r, &rs);
		if (round >= 7 && (rs.ring_full || variant->backend == TRACK_BITMAP ||
				   variant->drain))
			break;
		usleep(round < 7 ? 150000 : 600000);
	}
	ASSERT_EQ(0, vm_runner_pause(self->r));
	HARVEST(&log);
	copy_dirty(self->vm, &log, copy);
	vm_runner_stats(self->r, &rs);
	for (uint64_t off = 0; off < work; off += 4096) {
		if (memcmp(copy + GUEST_WORK_BASE + off, self->vm->mem + GUEST_WORK_BASE + off, 4096) &&
		    !bad++)
			first_bad = (GUEST_WORK_BASE + off) >> 12;
	}
	EXPECT_EQ(0, bad) TH_LOG("%llu work pages differ from the copy (first 0x%llx)",
				 (unsigned long long)bad, (unsigned long long)first_bad);
	EXPECT_LT(1000, rs.ops) TH_LOG("the workload barely ran");
	EXPECT_EQ(0, rs.guest_errors);
	if (variant->backend != TRACK_BITMAP && !variant->drain)
		EXPECT_LT(0, rs.ring_full) TH_LOG("no ring-full exit: the test did not test");
	free(copy);
}

/*
 * The kmod backend alone: what only the module has (sessions, layout
 * generations, netlink reporting).
 */
FIXTURE(kmod) {
	struct vm *vm;
	struct tracker *t;
	void *extra;
};

FIXTURE_SETUP(kmod)
{
	/* QEMU's usual ring, not the kmod default: ring_after_kmod fills it. */
	struct vm_config cfg = { .nr_vcpus = NR_VCPUS, .mem_size = MEM_SIZE,
				 .slot_size = SLOT_SIZE, .ring_entries = TRACK_RING_DEFAULT };
	char why[256];

	self->vm = NULL;
	self->t = NULL;
	self->extra = MAP_FAILED;
	if (access("/dev/kvm", R_OK | W_OK))
		SETUP_SKIP("no /dev/kvm");
	if (!track_kmod_usable(why, sizeof(why), NULL))
		SETUP_SKIP("%s", why);
	ASSERT_EQ(0, track_vm_config(TRACK_KMOD, &cfg));
	ASSERT_EQ(0, vm_create(&cfg, &self->vm));
	ASSERT_EQ(0, vm_load_guest(self->vm));
	ASSERT_EQ(0, tracker_create(TRACK_KMOD, self->vm, &self->t));
}

FIXTURE_TEARDOWN(kmod)
{
	tracker_destroy(self->t);
	vm_destroy(self->vm);
	if (self->extra != MAP_FAILED)
		munmap(self->extra, 2 << 20);
}

static int kmod_write(struct vm *vm, struct tracker *t, unsigned int vcpu, uint64_t first,
		      uint64_t npages)
{
	uint64_t args[GUEST_CMD_ARGS] = { first << 12, npages, 1, 1 };
	int ret = vcpu_post(vm->vcpus[vcpu], GUEST_CMD_WRITE_RANGE, args);

	return ret ? ret : vcpu_run_cmd(vm->vcpus[vcpu], tracker_ring_full_cb, t);
}

static uint64_t work_area_count(const struct dirty_log *log)
{
	struct dirty_log_iter it;
	uint64_t page, n = 0;

	dirty_log_iter_init(&it, log);
	while (dirty_log_next(&it, &page))
		n += page >= WORK_FIRST;
	return n;
}

TEST(auto_pick_names_a_backend)
{
	char why[256] = "";
	enum track_backend b = track_pick_auto(why, sizeof(why));

	ASSERT_NE(TRACK_AUTO, b);
	ASSERT_EQ(0, strncmp(why, track_backend_name(b), strlen(track_backend_name(b))))
		TH_LOG("%s", why);
	TH_LOG("auto: %s", why);
}

/* A tracker on a VM configured for another backend fails clearly. */
TEST(backend_vm_mismatch)
{
	struct vm_config ring = { .nr_vcpus = 1, .mem_size = 8 << 20 };
	struct vm_config bitmap = ring;
	struct tracker *t = NULL;
	struct vm *vm = NULL;

	if (access("/dev/kvm", R_OK | W_OK))
		SKIP(return, "no /dev/kvm");
	ASSERT_EQ(0, track_vm_config(TRACK_RING, &ring));
	ASSERT_EQ(0, track_vm_config(TRACK_BITMAP, &bitmap));
	/* Bitmap on a ring VM: KVM would refuse GET_DIRTY_LOG; start says why. */
	ASSERT_EQ(0, vm_create(&ring, &vm));
	ASSERT_EQ(0, tracker_create(TRACK_BITMAP, vm, &t));
	EXPECT_EQ(-EINVAL, tracker_start(t));
	EXPECT_NE(NULL, strstr(tracker_error(t), "dirty ring")) TH_LOG("%s", tracker_error(t));
	tracker_destroy(t);
	t = NULL;
	/* Auto on a ring VM is ring or kmod, never bitmap. */
	ASSERT_EQ(0, tracker_create(TRACK_AUTO, vm, &t));
	EXPECT_NE(TRACK_BITMAP, tracker_backend(t));
	tracker_destroy(t);
	t = NULL;
	vm_destroy(vm);
	vm = NULL;
	/* Ring or kmod on a VM without a ring: refused at create. */
	ASSERT_EQ(0, vm_create(&bitmap, &vm));
	EXPECT_EQ(-EINVAL, tracker_create(TRACK_RING, vm, &t));
	EXPECT_EQ(-EINVAL, tracker_create(TRACK_KMOD, vm, &t));
	EXPECT_EQ(NULL, t);
	ASSERT_EQ(0, tracker_create(TRACK_AUTO, vm, &t));
	EXPECT_EQ(TRACK_BITMAP, tracker_backend(t));
	tracker_destroy(t);
	vm_destroy(vm);
}

/* A memslot added behind the session's back: re-attach, report everything. */
TEST_F_TIMEOUT(kmod, stale_layout_reattaches, 300)
{
	struct kvm_userspace_memory_region r = {
		.slot = 60, .guest_phys_addr = 1ULL << 32, .memory_size = 2 << 20,
	};
	struct track_stats st;
	struct dirty_log log;

	ASSERT_EQ(0, tracker_start(self->t)) TH_LOG("%s", tracker_error(self->t));
	ASSERT_EQ(0, tracker_harvest(self->t, &log));
	ASSERT_EQ(0, kmod_write(self->vm, self->t, 0, WORK_FIRST + 10, 20));
	ASSERT_EQ(0, tracker_harvest(self->t, &log));
	EXPECT_FALSE(log.everything);
	EXPECT_EQ(20, work_area_count(&log));

	self->extra = mmap(NULL, 2 << 20, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	ASSERT_NE(MAP_FAILED, self->extra);
	r.userspace_addr = (uintptr_t)self->extra;
	ASSERT_EQ(0, ioctl(self->vm->fd, KVM_SET_USER_MEMORY_REGION, &r));
	ASSERT_EQ(0, kmod_write(self->vm, self->t, 1, WORK_FIRST + 100, 30));
	ASSERT_EQ(0, tracker_harvest(self->t, &log)) TH_LOG("%s", tracker_error(self->t));
	EXPECT_TRUE(log.everything);
	EXPECT_EQ(MEM_PAGES, log.count);
	tracker_stats(self->t, &st);
	EXPECT_EQ(1, st.reattaches);
	/* The new session tracks exactly again. */
	ASSERT_EQ(0, kmod_write(self->vm, self->t, 0, WORK_FIRST + 200, 40));
	ASSERT_EQ(0, tracker_harvest(self->t, &log)) TH_LOG("%s", tracker_error(self->t));
	EXPECT_FALSE(log.everything);
	EXPECT_EQ(40, work_area_count(&log));
	for (uint64_t p = WORK_FIRST + 200; p < WORK_FIRST + 240; p++)
		EXPECT_TRUE(dirty_log_test(&log, p));
}

/* After the module collected the rings, the userspace reaper finds its way. */
TEST_F_TIMEOUT(kmod, ring_after_kmod, 300)
{
	struct tracker *ring = NULL;
	struct dirty_log log;

	ASSERT_EQ(0, tracker_start(self->t)) TH_LOG("%s", tracker_error(self->t));
	ASSERT_EQ(0, tracker_harvest(self->t, &log));
	ASSERT_EQ(0, kmod_write(self->vm, self->t, 0, WORK_FIRST, 1000));
	ASSERT_EQ(0, kmod_write(self->vm, self->t, 1, WORK_FIRST + 3000, 777));
	ASSERT_EQ(0, tracker_harvest(self->t, &log));
	EXPECT_EQ(1777, work_area_count(&log));
	tracker_destroy(self->t);
	self->t = NULL;

	ASSERT_EQ(0, tracker_create(TRACK_RING, self->vm, &ring));
	self->t = ring;
	ASSERT_EQ(0, tracker_start(ring)) TH_LOG("%s", tracker_error(ring));
	ASSERT_EQ(0, tracker_harvest(ring, &log));
	EXPECT_TRUE(log.everything);
	/* More than the ring holds: ring-full exits must be handled too. */
	ASSERT_EQ(0, kmod_write(self->vm, ring, 0, WORK_FIRST + 10, 5000));
	ASSERT_EQ(0, kmod_write(self->vm, ring, 1, WORK_FIRST + 6000, 100));
	ASSERT_EQ(0, tracker_harvest(ring, &log));
	EXPECT_EQ(5100, work_area_count(&log));
	EXPECT_LT(0, log.ring_full);
}

/*
 * Someone else collects the rings behind the module (a second reaper, as a
 * VMM's own ring-full handler would): the session fails with EPIPE, and the
 * tracker re-attaches and reports everything, which the caller sends as a
 * full round.  If the other collector goes on, the new session fails as
 * soon as it can tell, and that harvest fails with EPIPE and says why,
 * instead of reporting what it cannot vouch for.
 */
TEST_F_TIMEOUT(kmod, conflict_reports_everything, 300)
{
	uint32_t fetch[NR_VCPUS] = { 0 };
	struct track_stats st;
	struct dirty_log log;
	int ret;

	ASSERT_EQ(0, tracker_start(self->t)) TH_LOG("%s", tracker_error(self->t));
	ASSERT_EQ(0, tracker_harvest(self->t, &log));
	ASSERT_EQ(0, kmod_write(self->vm, self->t, 0, WORK_FIRST + 10, 50));
	/* The other collector: reap every ring from its head, reset. */
	ASSERT_LE(50, track_ring_discard(self->vm, fetch));

	ASSERT_EQ(0, tracker_harvest(self->t, &log)) TH_LOG("%s", tracker_error(self->t));
	EXPECT_TRUE(log.everything);
	EXPECT_EQ(MEM_PAGES, log.count);
	tracker_stats(self->t, &st);
	EXPECT_EQ(1, st.conflicts);
	EXPECT_EQ(1, st.reattaches);
	/* The new session tracks exactly while nobody else collects. */
	ASSERT_EQ(0, kmod_write(self->vm, self->t, 1, WORK_FIRST + 300, 40));
	ASSERT_EQ(0, tracker_harvest(self->t, &log)) TH_LOG("%s", tracker_error(self->t));
	EXPECT_FALSE(log.everything);
	EXPECT_EQ(40, work_area_count(&log));

	ASSERT_EQ(0, kmod_write(self->vm, self->t, 1, WORK_FIRST + 400, 20));
	ASSERT_EQ(0, tracker_harvest(self->t, &log)) TH_LOG("%s", tracker_error(self->t));
	EXPECT_EQ(20, work_area_count(&log));

	/* Once more, after two good harvests: re-attached again. */
	ASSERT_EQ(0, kmod_write(self->vm, self->t, 0, WORK_FIRST + 500, 30));
	ASSERT_LE(30, track_ring_discard(self->vm, fetch));
	ASSERT_EQ(0, tracker_harvest(self->t, &log)) TH_LOG("%s", tracker_error(self->t));
	EXPECT_TRUE(log.everything);
	/*
	 * It goes on: the new session adopts the rings at its first harvest
	 * and fails at the second, as soon as it can tell: the tracker gives
	 * up and says why.
	 */
	ASSERT_EQ(0, kmod_write(self->vm, self->t, 1, WORK_FIRST + 700, 10));
	ASSERT_EQ(0, tracker_harvest(self->t, &log));
	EXPECT_FALSE(log.everything);
	ASSERT_EQ(0, kmod_write(self->vm, self->t, 0, WORK_FIRST + 600, 30));
	ASSERT_LE(30, track_ring_discard(self->vm, fetch));
	ret = tracker_harvest(self->t, &log);
	EXPECT_EQ(-EPIPE, ret);
	EXPECT_NE(NULL, strstr(tracker_error(self->t), "keeps collecting")) {
		TH_LOG("%s", tracker_error(self->t));
	}
	tracker_stats(self->t, &st);
	EXPECT_EQ(3, st.conflicts);
}

struct ev_count {
	uint32_t pid;
	int n[3];
};

static void count_event(void *ctx, enum vmdirty_genl_event ev, const struct vmdirty_genl_session *s)
{
	struct ev_count *c = ctx;

	if (s->owner_pid == c->pid && ev <= VMDIRTY_GENL_EV_STALE)
		c->n[ev]++;
}

/* Wait up to a second for an event of ours of kind ev. */
static int wait_event(struct vmdirty_genl *nl, struct ev_count *c, enum vmdirty_genl_event ev)
{
	for (int i = 0; i < 100 && !c->n[ev]; i++) {
		struct pollfd p = { .fd = vmdirty_genl_event_fd(nl), .events = POLLIN };
		int ret;

		if (poll(&p, 1, 10) > 0) {
			ret = vmdirty_genl_read_events(nl, count_event, c);
			if (ret < 0)
				return ret;
		}
	}
	return c->n[ev];
}

/* Generic netlink shows our session, with the counters the region has. */
TEST_F_TIMEOUT(kmod, netlink_reports_session, 300)
{
	struct ev_count ev = { .pid = (uint32_t)getpid() };
	struct vmdirty_genl_session *s = NULL, one;
	struct track_vcpu_stat st[NR_VCPUS];
	struct vmdirty_genl *nl = NULL;
	struct dirty_log log;
	size_t n = 0, i;
	int ret;

	ASSERT_EQ(0, vmdirty_genl_open(&nl));
	ASSERT_EQ(0, vmdirty_genl_subscribe(nl));
	ASSERT_EQ(0, tracker_start(self->t)) TH_LOG("%s", tracker_error(self->t));
	EXPECT_EQ(1, wait_event(nl, &ev, VMDIRTY_GENL_EV_NEW));
	ASSERT_EQ(0, tracker_harvest(self->t, &log));
	ASSERT_EQ(0, kmod_write(self->vm, self->t, 0, WORK_FIRST + 5, 300));
	ASSERT_EQ(0, kmod_write(self->vm, self->t, 1, WORK_FIRST + 500, 100));
	ASSERT_EQ(0, tracker_harvest(self->t, &log));
	ASSERT_EQ(NR_VCPUS, tracker_vcpu_stats(self->t, st, NR_VCPUS));

	ret = vmdirty_genl_list(nl, true, &s, &n);
	ASSERT_EQ(0, ret) TH_LOG("%s", strerror(-ret));
	for (i = 0; i < n; i++)
		if (s[i].owner_pid == (uint32_t)getpid())
			break;
	ASSERT_LT(i, n) TH_LOG("no session of pid %d among %zu", getpid(), n);
	EXPECT_EQ((uint32_t)getpid(), s[i].vm_pid);
	EXPECT_EQ(2, s[i].harvests);
	EXPECT_EQ(self->vm->nr_slots, s[i].nr_slots);
	EXPECT_EQ(NR_VCPUS, s[i].nr_vcpus);
	EXPECT_EQ(MEM_PAGES, s[i].tracked_pages);
	ASSERT_TRUE(s[i].has_vcpus);
	ASSERT_LE(NR_VCPUS, s[i].nr_vcpu_entries);
	for (unsigned int v = 0; v < NR_VCPUS; v++) {
		EXPECT_EQ(v, s[i].vcpus[v].idx);
		EXPECT_EQ(st[v].entries, s[i].vcpus[v].entries);
		EXPECT_EQ(st[v].last_entries, s[i].vcpus[v].last_entries);
		EXPECT_EQ(self->vm->vcpus[v]->ring_entries, s[i].vcpus[v].ring_size);
	}
	/* The same session by id, without vCPUs; an unknown id is refused. */
	ASSERT_EQ(0, vmdirty_genl_get(nl, s[i].id, false, &one));
	EXPECT_EQ(s[i].id, one.id);
	EXPECT_FALSE(one.has_vcpus);
	vmdirty_genl_session_release(&one);
	EXPECT_GT(0, vmdirty_genl_get(nl, 0xfffffff0u, false, &one));
	vmdirty_genl_free(s, n);

	tracker_stop(self->t);
	EXPECT_EQ(1, wait_event(nl, &ev, VMDIRTY_GENL_EV_DEL));
	vmdirty_genl_close(nl);
}

/* The status subcommand prints our session as JSON. */
TEST_F_TIMEOUT(kmod, status_command, 120)
{
	char cmd[512], buf[65536], needle[64];
	struct dirty_log log;
	size_t len;
	FILE *f;

	if (access(AGENT, X_OK))
		SKIP(return, "%s not built", AGENT);
	ASSERT_EQ(0, tracker_start(self->t)) TH_LOG("%s", tracker_error(self->t));
	ASSERT_EQ(0, tracker_harvest(self->t, &log));
	snprintf(cmd, sizeof(cmd), "%s status --json", AGENT);
	f = popen(cmd, "r");
	ASSERT_NE(NULL, f);
	len = fread(buf, 1, sizeof(buf) - 1, f);
	buf[len] = 0;
	EXPECT_EQ(0, pclose(f));
	snprintf(needle, sizeof(needle), "\"owner_pid\":%d,", getpid());
	EXPECT_NE(NULL, strstr(buf, needle)) TH_LOG("%s", buf);
	EXPECT_NE(NULL, strstr(buf, "\"vcpus\":[")) TH_LOG("%s", buf);
	snprintf(cmd, sizeof(cmd), "%s status --watch --interval 50 --count 2", AGENT);
	f = popen(cmd, "r");
	ASSERT_NE(NULL, f);
	len = fread(buf, 1, sizeof(buf) - 1, f);
	buf[len] = 0;
	EXPECT_EQ(0, pclose(f));
	EXPECT_NE(NULL, strstr(buf, "entries/s")) TH_LOG("%s", buf);
}

/*
 * The sorted reaper hands each batch back to KVM in ascending (slot,
 * offset) order, duplicates as repeats of the last page, and KVM resets
 * every entry it collected (KVM leaves slot and offset alone when it
 * resets: they can be read afterwards).  The bug this catches: a batch
 * collected as logged, or an entry lost or doubled by the rewrite.
 */
TEST(ring_sorted_batch_in_order)
{
	struct vm_config cfg = { .nr_vcpus = 1, .mem_size = MEM_SIZE, .slot_size = SLOT_SIZE };
	uint64_t gpas[LIST_MAX], rng = 42, args[GUEST_CMD_ARGS] = { 0 }, gpa;
	uint64_t prev_slot = 0, prev_off = 0, written = 0;
	struct tracker *t = NULL;
	struct dirty_log log;
	uint32_t head = 0, n, i, mask;
	struct vm *vm = NULL;
	struct vcpu *v;
	uint64_t *list;

	if (access("/dev/kvm", R_OK | W_OK))
		SKIP(return, "no /dev/kvm");
	if (vm_check_cap(NULL, KVM_CAP_DIRTY_LOG_RING_ACQ_REL) <= 0)
		SKIP(return, "KVM has no ACQ_REL dirty ring");
	ASSERT_EQ(0, track_vm_config(TRACK_RING_SORTED, &cfg));
	ASSERT_EQ(0, vm_create(&cfg, &vm));
	ASSERT_EQ(0, vm_load_guest(vm));
	ASSERT_EQ(0, tracker_create(TRACK_RING_SORTED, vm, &t));
	ASSERT_EQ(0, tracker_start(t));
	ASSERT_EQ(0, tracker_harvest(t, &log));
	v = vm->vcpus[0];
	mask = v->ring_entries - 1;
	/* Random pages over all three slots, some twice. */
	list = vcpu_scratch(v, &gpa);
	for (i = 0; i < 2000; i++) {
		gpas[i] = GUEST_WORK_BASE + guest_rand_below(&rng, (MEM_SIZE - GUEST_WORK_BASE) >> 12) * 4096;
		if (i % 7 == 0 && i)
			gpas[i] = gpas[i / 2];
	}
	memcpy(list, gpas, 2000 * 8);
	args[0] = gpa;
	args[1] = 2000;
	ASSERT_EQ(0, vcpu_post(v, GUEST_CMD_WRITE_LIST, args));
	ASSERT_EQ(0, vcpu_run_cmd(v, NULL, NULL));
	/* Where the batch starts: the first pushed entry after a free one. */
	for (i = 0; i < v->ring_entries; i++)
		if (v->ring[i].flags == KVM_DIRTY_GFN_F_DIRTY &&
		    !v->ring[(i + mask) & mask].flags)
			head = i;
	ASSERT_EQ(0, tracker_harvest(t, &log));
	n = (uint32_t)log.entries;
	EXPECT_EQ(log.entries, log.resets);
	ASSERT_LE(1500, n);
	for (i = 0; i < n; i++) {
		struct kvm_dirty_gfn *e = &v->ring[(head + i) & mask];

		EXPECT_EQ(0, e->flags);
		EXPECT_TRUE(e->slot > prev_slot || (e->slot == prev_slot && e->offset >= prev_off))
			TH_LOG("entry %u: slot %u offset %llu after slot %llu offset %llu", i,
			       e->slot, (unsigned long long)e->offset,
			       (unsigned long long)prev_slot, (unsigned long long)prev_off);
		written += i && e->slot == prev_slot && e->offset == prev_off ? 0 : 1;
		prev_slot = e->slot;
		prev_off = e->offset;
	}
	/* One entry per distinct page (the rest repeat the last one). */
	EXPECT_EQ(log.count, written);
	tracker_destroy(t);
	vm_destroy(vm);
}

TEST_HARNESS_MAIN
