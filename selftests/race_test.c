// SPDX-License-Identifier: GPL-2.0
/*
 * Races around a running guest: two harvesters, background draining against
 * harvests, a session closed while it drains, and a VMM killed while its
 * session drains.  Two vCPUs keep writing stamped pages; every swap is
 * checked against the stamps (a page whose stamp changed is in that
 * snapshot or the next: no write lost), and the rings must stay usable by
 * whoever collects next.  Under single-threaded TCG these interleave only at
 * the emulator's turns; `make test-mttcg` runs them with a host thread per
 * guest CPU (selftests/vm/run-suite.sh, scripts/test-mttcg.sh).
 */
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "ksft_compat.h"
#include "vmdirty_guest.h"
#include "vmdirty_nl.h"

#define MEM_SIZE	(32ULL << 20)
#define NPAGES		(MEM_SIZE / GUEST_PAGE_SIZE)
#define WORK_PFN	(GUEST_WORK_BASE / GUEST_PAGE_SIZE)
#define NR_VCPUS	2
#define STAMP_PAGES	2048
/* A vCPU stuck on a full ring this long means its ring is broken. */
#define STALL_MS	20000

struct race;

struct writer {
	struct race *r;
	struct vcpu *v;
	pthread_t th;
	unsigned int commands, ring_full;
	int err;
};

/* The fixture's state, shared with the writer threads. */
struct race {
	struct vm *vm;
	int session;		/* the fd ring-full exits collect through, or -1 */
	volatile bool stop;
	struct writer w[NR_VCPUS];
};

static uint64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000ULL + ts.tv_nsec / 1000000;
}

/*
 * A full ring on a vCPU thread: collect into the live set through whatever
 * session is current.  Between sessions (or with the fd being closed under
 * us) there is none: wait for the next one, up to STALL_MS.
 */
static int writer_ring_full(struct vcpu *v, void *arg)
{
	struct writer *w = arg;
	uint64_t start = now_ms();

	w->ring_full++;
	while (now_ms() - start < STALL_MS) {
		int fd = __atomic_load_n(&w->r->session, __ATOMIC_ACQUIRE);

		if (fd >= 0 && !vmdirty_harvest(fd, VMDIRTY_HARVEST_NO_SWAP, NULL))
			return 0;
		if (w->r->stop && fd < 0)
			return 0;
		usleep(500);
	}
	return -ETIMEDOUT;
}

static void *writer_fn(void *arg)
{
	struct writer *w = arg;

	while (!w->r->stop && !w->err) {
		uint64_t args[GUEST_CMD_ARGS] = {
			GUEST_WORK_BASE, STAMP_PAGES, 400, 7919 * w->v->idx + w->commands,
		};

		w->err = vcpu_post(w->v, GUEST_CMD_WRITE_RANDOM, args);
		if (!w->err)
			w->err = vcpu_run_cmd(w->v, writer_ring_full, w);
		w->commands++;
	}
	return NULL;
}

static int writers_start(struct race *r)
{
	unsigned int i;

	r->stop = false;
	for (i = 0; i < NR_VCPUS; i++) {
		r->w[i] = (struct writer){ .r = r, .v = r->vm->vcpus[i] };
		if (pthread_create(&r->w[i].th, NULL, writer_fn, &r->w[i]))
			return -errno;
	}
	return 0;
}

/* Stop and join; the first writer error, or 0. */
static int writers_stop(struct race *r, unsigned int *commands)
{
	unsigned int i;
	int err = 0;

	r->stop = true;
	*commands = 0;
	for (i = 0; i < NR_VCPUS; i++) {
		pthread_join(r->w[i].th, NULL);
		*commands += r->w[i].commands;
		if (!err)
			err = r->w[i].err;
	}
	return err;
}

static void read_stamps(struct vm *vm, uint64_t *stamps)
{
	uint64_t p;

	for (p = 0; p < STAMP_PAGES; p++)
		stamps[p] = __atomic_load_n((uint64_t *)(vm->mem + GUEST_WORK_BASE +
							 p * GUEST_PAGE_SIZE), __ATOMIC_RELAXED);
}

/* The stamp oracle of harvest_test's no_lost_writes, for one session. */
struct oracle {
	uint64_t *stamps[2];
	uint8_t pending[STAMP_PAGES];
	struct gfn_set bits;
	unsigned int cur;
	uint64_t lost, changed;
};

static int oracle_init(struct oracle *o, struct vm *vm)
{
	memset(o, 0, sizeof(*o));
	o->stamps[0] = calloc(STAMP_PAGES, sizeof(uint64_t));
	o->stamps[1] = calloc(STAMP_PAGES, sizeof(uint64_t));
	if (!o->stamps[0] || !o->stamps[1] || gfn_set_init(&o->bits, NPAGES))
		return -ENOMEM;
	read_stamps(vm, o->stamps[0]);
	return 0;
}

static void oracle_free(struct oracle *o)
{
	free(o->stamps[0]);
	free(o->stamps[1]);
	gfn_set_free(&o->bits);
}

/*
 * One swap: a page whose stamp changed since the last one was written after
 * that harvest returned, so it is in this snapshot or (written after this
 * walk) in the next.
 */
static int oracle_round(struct oracle *o, struct vm *vm, int fd,
			struct vmdirty_shm_header *hdr)
{
	struct vmdirty_harvest h;
	uint64_t p, *prev, *cur;
	int ret;

	ret = vmdirty_harvest(fd, 0, &h);
	if (ret)
		return ret;
	o->cur ^= 1;
	prev = o->stamps[o->cur ^ 1];
	cur = o->stamps[o->cur];
	read_stamps(vm, cur);
	gfn_set_clear(&o->bits);
	shm_to_gfn_set(hdr, h.snapshot, &o->bits);
	for (p = 0; p < STAMP_PAGES; p++) {
		bool in = o->bits.in[WORK_PFN + p];

		if (o->pending[p] && !in)
			o->lost++;
		o->pending[p] = 0;
		if (prev[p] != cur[p]) {
			o->changed++;
			o->pending[p] = !in;
		}
	}
	return 0;
}

FIXTURE(race) {
	struct race r;
	int fd;
	struct vmdirty_attach attach;
	struct vmdirty_shm_header *hdr;
};

static int race_vm(struct vm **vm)
{
	/*
	 * memfd RAM: under multi-threaded TCG the emulated CPU now and then
	 * page-faults on the guest's static page tables (a triple fault, or a
	 * #PF KVM re-injects without end), in 2 of 5 runs with anonymous
	 * huge-page RAM, less often with memfd.  Not vmdirty's: a control
	 * without the module does it too (README, bench/ring_stress_bench.c),
	 * and make test-mttcg runs such a run again.
	 */
	struct vm_config cfg = {
		.nr_vcpus = NR_VCPUS, .mem_size = MEM_SIZE, .ring_entries = 4096,
		.log_dirty = true, .ram_memfd = true,
	};
	int ret = vm_create(&cfg, vm);

	return ret ? ret : vm_load_guest(*vm);
}

FIXTURE_SETUP(race)
{
	int ret;

	self->r.vm = NULL;
	self->r.session = -1;
	self->hdr = NULL;
	self->fd = vmdirty_open();
	if (self->fd == -ENOENT)
		SETUP_SKIP("vmdirty.ko is not loaded");
	ASSERT_LE(0, self->fd);
	if (access("/dev/kvm", R_OK | W_OK) ||
	    vm_check_cap(NULL, KVM_CAP_DIRTY_LOG_RING_ACQ_REL) <= 0)
		SETUP_SKIP("no /dev/kvm with KVM_CAP_DIRTY_LOG_RING_ACQ_REL");
	ret = race_vm(&self->r.vm);
	ASSERT_EQ(0, ret) TH_LOG("vm: %s", strerror(-ret));
	ASSERT_EQ(0, vmdirty_attach(self->fd, self->r.vm->fd, &self->attach));
	self->hdr = vmdirty_map(self->fd, self->attach.region_size);
	ASSERT_NE(NULL, self->hdr);
	self->r.session = self->fd;
}

FIXTURE_TEARDOWN(race)
{
	if (self->hdr)
		munmap(self->hdr, self->attach.region_size);
	if (self->fd >= 0)
		close(self->fd);
	vm_destroy(self->r.vm);
}

/*
 * At least @rounds swaps against the stamps, more (up to ten times as many)
 * until the guest changed @min_changes pages: a loaded machine slows the
 * guest, never makes the check vacuous.  Then the writers stop, two more.
 */
static void run_rounds(struct __test_metadata *_metadata, FIXTURE_DATA(race) *self,
		       unsigned int rounds, uint64_t min_changes, const char *what)
{
	unsigned int round, commands;
	struct oracle o;

	ASSERT_EQ(0, oracle_init(&o, self->r.vm));
	ASSERT_EQ(0, vmdirty_harvest(self->fd, 0, NULL));
	read_stamps(self->r.vm, o.stamps[o.cur]);
	ASSERT_EQ(0, writers_start(&self->r));
	for (round = 0; round < rounds || (o.changed < min_changes && round < 10 * rounds);
	     round++) {
		usleep(2000 + 1000 * (round % 5));
		ASSERT_EQ(0, oracle_round(&o, self->r.vm, self->fd, self->hdr));
	}
	EXPECT_EQ(0, writers_stop(&self->r, &commands));
	for (round = 0; round < 2; round++)
		ASSERT_EQ(0, oracle_round(&o, self->r.vm, self->fd, self->hdr));
	TH_LOG("%s: %u commands, %llu page changes, %llu lost, %llu drains, %llu harvests",
	       what, commands, (unsigned long long)o.changed, (unsigned long long)o.lost,
	       (unsigned long long)self->hdr->drains, (unsigned long long)self->hdr->harvests);
	EXPECT_EQ(0, o.lost);
	/* Not vacuous: the guest wrote throughout. */
	EXPECT_LE(min_changes, o.changed);
	/* Every entry collected was handed back to KVM. */
	EXPECT_EQ(self->hdr->entries, self->hdr->resets);
	oracle_free(&o);
}

struct second_harvester {
	int fd;
	unsigned int pause_us;
	volatile bool stop;
	unsigned int harvests;
	int err;
};

static void *second_harvester_fn(void *arg)
{
	struct second_harvester *s = arg;

	while (!s->stop && !s->err) {
		s->err = vmdirty_harvest(s->fd, VMDIRTY_HARVEST_NO_SWAP, NULL);
		s->harvests++;
		if (s->pause_us)
			usleep(s->pause_us);
	}
	return NULL;
}

/*
 * A second thread collects into the live set while the first swaps: a
 * harvest that let the other's walk in between its scan and its publish
 * would lose entries, or hand KVM some twice.
 */
TEST_F(race, two_harvesters)
{
	struct second_harvester s = { .fd = self->fd, .pause_us = 300 };
	pthread_t th;

	ASSERT_EQ(0, pthread_create(&th, NULL, second_harvester_fn, &s));
	run_rounds(_metadata, self, 30, 1000, "two harvesters");
	s.stop = true;
	pthread_join(th, NULL);
	EXPECT_EQ(0, s.err);
	EXPECT_LT(0, s.harvests);
}

/*
 * The drain worker collects at its shortest interval while we swap and a
 * second thread collects back to back: the worker's walk meets a harvest's
 * as often as it can.
 */
TEST_F(race, drain_against_harvest)
{
	struct second_harvester s = { .fd = self->fd };
	pthread_t th;

	ASSERT_EQ(0, vmdirty_set_drain(self->fd, VMDIRTY_DRAIN_ENABLE,
				       VMDIRTY_DRAIN_MIN_US, VMDIRTY_DRAIN_MIN_US, 0));
	ASSERT_EQ(0, pthread_create(&th, NULL, second_harvester_fn, &s));
	run_rounds(_metadata, self, 60, 1000, "drain against harvest");
	s.stop = true;
	pthread_join(th, NULL);
	EXPECT_EQ(0, s.err);
	EXPECT_LT(0, self->hdr->drains);
}

static unsigned int rand_ms(unsigned int *seed, unsigned int lo, unsigned int hi)
{
	return lo + rand_r(seed) % (hi - lo + 1);
}

/*
 * Sessions come and go on the running VM, each draining at its shortest
 * interval when it is closed (half of them still mapped: then the last
 * munmap detaches).  The guest keeps running throughout, and a session
 * attached afterwards loses nothing: the rings were left consistent.
 */
TEST_F(race, detach_against_drain)
{
	unsigned int i, seed = 1, commands, stalls = 0;
	struct vmdirty_attach a;
	uint64_t deadline;

	/* The fixture's session goes first, draining. */
	ASSERT_EQ(0, vmdirty_set_drain(self->fd, VMDIRTY_DRAIN_ENABLE,
				       VMDIRTY_DRAIN_MIN_US, VMDIRTY_DRAIN_MIN_US, 0));
	ASSERT_EQ(0, writers_start(&self->r));
	for (i = 0; i < 16; i++) {
		struct vmdirty_shm_header *hdr = NULL;
		int fd;

		usleep(1000 * rand_ms(&seed, 5, 60));
		if (i % 2) {
			/* Mapped: closing the fd leaves the session to munmap. */
			hdr = self->hdr;
			self->hdr = NULL;
		}
		__atomic_store_n(&self->r.session, -1, __ATOMIC_RELEASE);
		close(self->fd);
		if (hdr) {
			usleep(1000 * rand_ms(&seed, 1, 20));
			munmap(hdr, self->attach.region_size);
		} else if (self->hdr) {
			munmap(self->hdr, self->attach.region_size);
		}
		self->hdr = NULL;
		self->fd = -1;
		/* A while without any collector: the rings may fill. */
		usleep(1000 * rand_ms(&seed, 0, 20));

		fd = vmdirty_open();
		ASSERT_LE(0, fd);
		ASSERT_EQ(0, vmdirty_attach(fd, self->r.vm->fd, &a));
		self->fd = fd;
		self->attach = a;
		self->hdr = vmdirty_map(fd, a.region_size);
		ASSERT_NE(NULL, self->hdr);
		ASSERT_EQ(0, vmdirty_set_drain(fd, VMDIRTY_DRAIN_ENABLE, VMDIRTY_DRAIN_MIN_US,
					       VMDIRTY_DRAIN_MIN_US, 0));
		__atomic_store_n(&self->r.session, fd, __ATOMIC_RELEASE);
	}
	/*
	 * A slow kernel (KASAN under TCG) gets through fewer commands in the
	 * loop: the guest is still owed its 16, within STALL_MS, by the last
	 * session.  A ring left broken never gets there.
	 */
	for (deadline = now_ms() + STALL_MS; now_ms() < deadline; usleep(10000)) {
		for (commands = 0, i = 0; i < NR_VCPUS; i++)
			commands += __atomic_load_n(&self->r.w[i].commands, __ATOMIC_RELAXED);
		if (commands >= 16)
			break;
	}
	EXPECT_EQ(0, writers_stop(&self->r, &commands));
	for (i = 0; i < NR_VCPUS; i++)
		stalls += self->r.w[i].ring_full;
	TH_LOG("16 sessions: %u commands, %u ring-full exits", commands, stalls);
	EXPECT_LE(16, commands);
	/* The last session, still draining, sees every write from now on. */
	run_rounds(_metadata, self, 10, 1000, "after 16 detaches");
}

/* --- A VMM killed while draining ------------------------------------------ */

/*
 * The child: a VM, a session draining at its shortest interval, two vCPUs
 * writing; it says so on @ready and runs until killed.
 */
static void vmm_child(int ready)
{
	struct race r = { .session = -1 };
	int fd = vmdirty_open();

	if (fd < 0 || race_vm(&r.vm) || vmdirty_attach(fd, r.vm->fd, NULL) ||
	    vmdirty_set_drain(fd, VMDIRTY_DRAIN_ENABLE, VMDIRTY_DRAIN_MIN_US,
			      VMDIRTY_DRAIN_MIN_US, 0))
		_exit(1);
	r.session = fd;
	if (writers_start(&r) || write(ready, "r", 1) != 1)
		_exit(2);
	for (;;)
		pause();
}

/* Sessions owned by @pid in the netlink dump; -errno on failure. */
static int sessions_of(pid_t pid)
{
	static struct vmdirty_nl_session all[64];
	struct vmdirty_nl nl;
	unsigned int i, n;
	int ret, found = 0;

	ret = vmdirty_nl_open(&nl);
	if (ret)
		return ret;
	ret = vmdirty_nl_dump(&nl, -1, all, 64, &n, NULL);
	vmdirty_nl_close(&nl);
	if (ret)
		return ret;
	for (i = 0; i < n && i < 64; i++)
		found += all[i].owner_pid == (uint32_t)pid;
	return found;
}

/*
 * SIGKILL lands while the drain worker runs against the dying VMM's mm:
 * the session must go with the process (the worker stopped, the VM freed),
 * never hang its exit, never warn.  The kill comes at a different point of
 * the drain cycle each time.
 */
TEST(vm_exit_during_drain)
{
	unsigned int i, seed = 7;
	pid_t pids[8];
	int fd = vmdirty_open();

	if (fd == -ENOENT)
		SKIP(return, "vmdirty.ko is not loaded");
	ASSERT_LE(0, fd);
	close(fd);
	if (access("/dev/kvm", R_OK | W_OK) ||
	    vm_check_cap(NULL, KVM_CAP_DIRTY_LOG_RING_ACQ_REL) <= 0)
		SKIP(return, "no /dev/kvm with KVM_CAP_DIRTY_LOG_RING_ACQ_REL");

	for (i = 0; i < 8; i++) {
		struct pollfd p;
		int sv[2], status;
		char c;

		ASSERT_EQ(0, pipe(sv));
		pids[i] = fork();
		ASSERT_LE(0, pids[i]);
		if (!pids[i]) {
			close(sv[0]);
			vmm_child(sv[1]);
		}
		close(sv[1]);
		p = (struct pollfd){ .fd = sv[0], .events = POLLIN };
		ASSERT_EQ(1, poll(&p, 1, 60000)) TH_LOG("child %d never started", i);
		ASSERT_EQ(1, read(sv[0], &c, 1)) TH_LOG("child %d failed to start", i);
		close(sv[0]);
		EXPECT_EQ(1, sessions_of(pids[i]));
		usleep(1000 * rand_ms(&seed, 1, 80));
		ASSERT_EQ(0, kill(pids[i], SIGKILL));
		ASSERT_EQ(pids[i], waitpid(pids[i], &status, 0));
		EXPECT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL)
			TH_LOG("child %d: status 0x%x", i, status);
	}
	/* A dead process's files are released as it exits. */
	for (i = 0; i < 8; i++)
		EXPECT_EQ(0, sessions_of(pids[i])) TH_LOG("child %d's session outlived it", i);
}

TEST_HARNESS_MAIN
