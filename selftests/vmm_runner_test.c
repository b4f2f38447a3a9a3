// SPDX-License-Identifier: GPL-2.0
/*
 * The runner: one thread per vCPU running workloads.
 * - pause returns promptly (kick, not polling), and a paused guest neither
 *   progresses nor changes its memory; resume goes on;
 * - the longest gap between progress reports covers a pause;
 * - throttling cuts the guest's progress rate (generous ratio: TCG);
 * - ring-full exits go to the hook, and the guest keeps running;
 * - stop ends workloads with DONE; a paused runner stops without running
 *   the guest again;
 * - a pause finishes a half-done I/O exit on the vCPU's own thread, and
 *   vcpu_complete_io() finishes one (RIP moves past the OUT) or does nothing;
 * - a kick-and-wait returns only once every vCPU came out of KVM_RUN, and
 *   the guest goes on;
 * - a runner started paused runs nothing until resumed (and a kick-and-wait
 *   there times nothing);
 * - a kick-and-wait reads the vCPUs' own times, not the waiter's.
 */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <time.h>
#include <unistd.h>

#include "vmm/vmm.h"
#include "ksft_compat.h"

#define WAIT_S		60
#define TIMEOUT_S	300

static uint64_t ops_of(struct vm *vm)
{
	uint64_t ops = 0;
	unsigned int i;

	for (i = 0; i < vm->nr_vcpus; i++)
		ops += __atomic_load_n(&vm->vcpus[i]->mb->ops, __ATOMIC_RELAXED);
	return ops;
}

static bool wait_reports(struct vm_runner *r, uint64_t n)
{
	time_t end = time(NULL) + WAIT_S;
	struct vm_runner_stats st;

	do {
		vm_runner_stats(r, &st);
		if (st.reports >= n)
			return true;
		usleep(10000);
	} while (time(NULL) < end);
	return false;
}

/* What the progress hook saw: reports must come with rising ops and times. */
struct hook_log {
	pthread_mutex_t lock;
	uint64_t calls, last_ops[VM_MAX_VCPUS], last_ns[VM_MAX_VCPUS];
	uint64_t backwards;
	uint64_t hold_us;	/* the next report stays in its exit this long */
	unsigned int holding;	/* 1 + the vCPU held there, 0 when none */
	bool released;		/* and the hold is over */
	bool poke;		/* then SIGUSR2 to poked: its handler sleeps */
	pthread_t poked;
};

static void on_progress(void *ctx, struct vcpu *v, uint64_t ops, uint64_t now_ns)
{
	struct hook_log *h = ctx;

	pthread_mutex_lock(&h->lock);
	h->calls++;
	if (ops < h->last_ops[v->idx] || now_ns < h->last_ns[v->idx])
		h->backwards++;
	h->last_ops[v->idx] = ops;
	h->last_ns[v->idx] = now_ns;
	if (h->hold_us) {
		uint64_t us = h->hold_us;

		h->hold_us = 0;
		__atomic_store_n(&h->holding, v->idx + 1, __ATOMIC_RELEASE);
		pthread_mutex_unlock(&h->lock);
		/* Still inside the I/O exit: KVM_RUN not re-entered.  A kick cuts one sleep short. */
		for (uint64_t until = vmm_now_ns() + us * 1000; vmm_now_ns() < until;)
			usleep(1000);
		__atomic_store_n(&h->released, true, __ATOMIC_RELEASE);
		if (h->poke) {
			/* Once the kick is in (the waiter's clock started): never before. */
			for (int i = 0; i < WAIT_S * 1000 &&
			     !__atomic_load_n(&v->run->immediate_exit, __ATOMIC_ACQUIRE); i++)
				usleep(1000);
			pthread_kill(h->poked, SIGUSR2);
		}
		return;
	}
	pthread_mutex_unlock(&h->lock);
}

/* The next progress report stays in its exit for us: 1 + its vCPU, 0 if none came. */
static unsigned int hold_a_vcpu(struct hook_log *h, uint64_t us)
{
	time_t end = time(NULL) + WAIT_S;
	unsigned int held;

	pthread_mutex_lock(&h->lock);
	h->hold_us = us;
	pthread_mutex_unlock(&h->lock);
	while (!(held = __atomic_load_n(&h->holding, __ATOMIC_ACQUIRE)) && time(NULL) < end)
		usleep(1000);
	return held;
}

FIXTURE(run) {
	struct vm *vm;
	struct vm_runner *r;
	struct hook_log log;
};

FIXTURE_SETUP(run)
{
	struct vm_config cfg = { .nr_vcpus = 2, .mem_size = 32ULL << 20 };
	struct vm_runner_hooks h = { .progress = on_progress, .ctx = &self->log };
	unsigned int i;
	int r;

	self->vm = NULL;
	self->r = NULL;
	memset(&self->log, 0, sizeof(self->log));
	pthread_mutex_init(&self->log.lock, NULL);
	if (access("/dev/kvm", R_OK | W_OK))
		SETUP_SKIP("no /dev/kvm");
	r = vm_create(&cfg, &self->vm);
	ASSERT_EQ(0, r) TH_LOG("vm_create: %s", strerror(-r));
	ASSERT_EQ(0, vm_load_guest(self->vm));
	/*
	 * Touch the whole work area first: a first write to a page costs a
	 * nested page fault, which would make the early rates incomparable.
	 */
	for (i = 0; i < cfg.nr_vcpus; i++) {
		uint64_t half = vm_work_pages(self->vm) / cfg.nr_vcpus;
		uint64_t args[GUEST_CMD_ARGS] = {
			GUEST_WORK_BASE + i * half * GUEST_PAGE_SIZE, half, 1, 1,
		};

		ASSERT_EQ(0, vcpu_post(self->vm->vcpus[i], GUEST_CMD_WRITE_RANGE, args));
		ASSERT_EQ(0, vcpu_run_cmd(self->vm->vcpus[i], NULL, NULL));
	}
	for (i = 0; i < cfg.nr_vcpus; i++) {
		uint64_t args[GUEST_CMD_ARGS] = { GUEST_WL_RANDOM, 0, 0, i };

		ASSERT_EQ(0, vcpu_post(self->vm->vcpus[i], GUEST_CMD_WORKLOAD, args));
	}
	ASSERT_EQ(0, vm_runner_start(self->vm, &h, &self->r));
	ASSERT_TRUE(wait_reports(self->r, 4));
}

FIXTURE_TEARDOWN(run)
{
	vm_runner_free(self->r);
	vm_destroy(self->vm);
}

TEST_F_TIMEOUT(run, pause_is_prompt_and_holds, TIMEOUT_S)
{
	uint64_t worst = 0, ops, hash;
	struct vm_runner_stats st;
	int k;

	for (k = 0; k < 5; k++) {
		uint64_t t0 = vmm_now_ns(), before;

		ASSERT_EQ(0, vm_runner_pause(self->r));
		if (vmm_now_ns() - t0 > worst)
			worst = vmm_now_ns() - t0;
		ops = ops_of(self->vm);
		hash = vm_mem_hash(self->vm, 0, self->vm->mem_size);
		usleep(300000);
		EXPECT_EQ(ops, ops_of(self->vm));
		EXPECT_EQ(hash, vm_mem_hash(self->vm, 0, self->vm->mem_size));
		vm_runner_stats(self->r, &st);
		before = st.reports;
		ASSERT_EQ(0, vm_runner_resume(self->r));
		ASSERT_TRUE(wait_reports(self->r, before + 4));
		EXPECT_LT(ops, ops_of(self->vm));
	}
	vm_runner_stats(self->r, &st);
	/* A kick takes microseconds; a polling loop would show its period. */
	EXPECT_GT(2000000000ULL, worst);
	EXPECT_LE(5, st.kicks);
	/* Each pause was 300 ms at least: the longest gap shows it. */
	EXPECT_LE(300000000ULL, st.max_gap_ns);
	EXPECT_EQ(0, self->log.backwards);
	EXPECT_EQ(st.reports, self->log.calls);
	TH_LOG("longest pause latency %.3f ms, longest report gap %.1f ms, %llu kicks",
	       worst / 1e6, st.max_gap_ns / 1e6, (unsigned long long)st.kicks);
	ASSERT_EQ(0, vm_runner_stop(self->r));
	vm_runner_stats(self->r, &st);
	EXPECT_EQ(2, st.finished);
	EXPECT_EQ(0, st.vcpu[0].status);
	EXPECT_EQ(0, st.vcpu[1].status);
	EXPECT_EQ(0, st.guest_errors);
}

/*
 * A pause that lands while a vCPU's thread handles an I/O exit: the
 * thread finishes the exit itself (one KVM_RUN with immediate_exit) before
 * it parks, so the saver never runs the vCPU from its own thread (which
 * costs an RCU grace period in KVM).  Catches park() going back to
 * waiting without that KVM_RUN (exit_pending stays set).
 */
TEST_F_TIMEOUT(run, pause_finishes_the_exit_on_the_vcpu_thread, TIMEOUT_S)
{
	struct vm_runner_stats rs;
	struct vcpu_state st;
	unsigned int held, i;

	held = hold_a_vcpu(&self->log, 200000);
	ASSERT_NE(0, held);
	EXPECT_TRUE(self->vm->vcpus[held - 1]->exit_pending);
	ASSERT_EQ(0, vm_runner_pause(self->r));
	for (i = 0; i < self->vm->nr_vcpus; i++) {
		EXPECT_FALSE(self->vm->vcpus[i]->exit_pending) TH_LOG("vCPU %u", i);
		ASSERT_EQ(0, vcpu_save_state(self->vm->vcpus[i], &st));
		vcpu_state_release(&st);
	}
	vm_runner_stats(self->r, &rs);
	ASSERT_EQ(0, vm_runner_resume(self->r));
	ASSERT_TRUE(wait_reports(self->r, rs.reports + 4));
	ASSERT_EQ(0, vm_runner_stop(self->r));
	vm_runner_stats(self->r, &rs);
	EXPECT_EQ(0, rs.guest_errors);
}

/*
 * A vCPU's thread held in its progress hook: the wait lasts until it is
 * back where a pause would park it, as a pause does.  Catches a wait that
 * returns on the kick alone (or on a vCPU merely out of KVM_RUN).
 */
TEST_F_TIMEOUT(run, kick_wait_waits_for_every_vcpu, TIMEOUT_S)
{
	struct vm_runner_stats after;
	unsigned int held;
	uint64_t ns;

	held = hold_a_vcpu(&self->log, 200000);
	ASSERT_NE(0, held);
	ASSERT_EQ(0, vm_runner_kick_wait(self->r, 10000, &ns));
	EXPECT_TRUE(__atomic_load_n(&self->log.released, __ATOMIC_ACQUIRE));
	vm_runner_stats(self->r, &after);
	TH_LOG("kick and wait: %.3f ms", ns / 1e6);
	ASSERT_TRUE(wait_reports(self->r, after.reports + 4));
	ASSERT_EQ(0, vm_runner_stop(self->r));
	vm_runner_stats(self->r, &after);
	EXPECT_EQ(0, after.guest_errors);
}

#define LATE_WAITER_MS	300

static void late_waiter(int sig)
{
	struct timespec ts = { 0, LATE_WAITER_MS * 1000000L };
	int saved = errno;

	while (nanosleep(&ts, &ts) && errno == EINTR)
		;
	errno = saved;
}

/* Progress rate over about a second of wall time. */
static double rate(struct vm *vm)
{
	uint64_t t0 = vmm_now_ns(), o0 = ops_of(vm), t1, o1;

	usleep(1200000);
	t1 = vmm_now_ns();
	o1 = ops_of(vm);
	return (o1 - o0) * 1e9 / (t1 - t0);
}

TEST_F_TIMEOUT(run, throttle_reduces_progress_rate, TIMEOUT_S)
{
	double full, throttled, again;
	struct vm_runner_stats st;

	EXPECT_EQ(-EINVAL, vm_runner_throttle(self->r, 100));
	full = rate(self->vm);
	ASSERT_EQ(0, vm_runner_throttle(self->r, 80));
	usleep(100000);
	throttled = rate(self->vm);
	ASSERT_EQ(0, vm_runner_throttle(self->r, 0));
	usleep(100000);
	again = rate(self->vm);
	vm_runner_stats(self->r, &st);
	TH_LOG("ops/s: %.0f unthrottled, %.0f at 80%%, %.0f after; %.0f ms slept",
	       full, throttled, again, st.throttle_ns / 1e6);
	/* 80% should leave a fifth; accept up to 60% of the full rate. */
	EXPECT_GT(full * 0.6, throttled);
	EXPECT_LT(throttled, again);
	EXPECT_LT(500000000ULL, st.throttle_ns);
	ASSERT_EQ(0, vm_runner_stop(self->r));
}

TEST_F_TIMEOUT(run, stop_while_paused_does_not_run_the_guest, TIMEOUT_S)
{
	struct vm_runner_stats st;
	uint64_t ops;

	ASSERT_EQ(0, vm_runner_pause(self->r));
	ops = ops_of(self->vm);
	ASSERT_EQ(0, vm_runner_stop(self->r));
	EXPECT_EQ(ops, ops_of(self->vm));
	vm_runner_stats(self->r, &st);
	EXPECT_EQ(0, st.finished);	/* the workloads were never told to stop */
	EXPECT_EQ(0, self->vm->vcpus[0]->mb->stop);
}

/*
 * Started paused (a migration destination before the commit): the threads
 * exist and never enter KVM_RUN; resuming runs the guest.  Catches the
 * pause request set only after the threads started.
 */
FIXTURE(bare) {
	int unused;
};

FIXTURE_SETUP(bare)
{
	if (access("/dev/kvm", R_OK | W_OK))
		SETUP_SKIP("no /dev/kvm");
}

FIXTURE_TEARDOWN(bare)
{
}

TEST_F_TIMEOUT(bare, start_paused_runs_nothing_until_resumed, TIMEOUT_S)
{
	struct vm_config cfg = { .nr_vcpus = 2, .mem_size = 32ULL << 20 };
	struct vm_runner_stats st;
	struct vm_runner *r;
	struct vm *vm;
	uint64_t ns;
	unsigned int i;

	ASSERT_EQ(0, vm_create(&cfg, &vm));
	ASSERT_EQ(0, vm_load_guest(vm));
	for (i = 0; i < cfg.nr_vcpus; i++) {
		uint64_t args[GUEST_CMD_ARGS] = { GUEST_WL_RANDOM, 0, 0, i };

		ASSERT_EQ(0, vcpu_post(vm->vcpus[i], GUEST_CMD_WORKLOAD, args));
	}
	ASSERT_EQ(0, vm_runner_start_paused(vm, NULL, &r));
	usleep(300000);
	/* Every vCPU parked (once its new thread got there): nothing to time. */
	for (i = 0; i < 100 && vm_runner_kick_wait(r, 1000, &ns) != -EAGAIN; i++)
		usleep(100000);
	EXPECT_GT(100, i);
	vm_runner_stats(r, &st);
	EXPECT_EQ(0, ops_of(vm));
	EXPECT_EQ(0, st.kicks);
	EXPECT_EQ(0, st.exits[KVM_EXIT_IO]);
	ASSERT_EQ(0, vm_runner_resume_wait(r, 10000, &ns));
	TH_LOG("resume until every thread left its park: %.3f ms", ns / 1e6);
	ASSERT_TRUE(wait_reports(r, 4));
	EXPECT_LT(0, ops_of(vm));
	ASSERT_EQ(0, vm_runner_stop(r));
	vm_runner_stats(r, &st);
	EXPECT_EQ(0, st.guest_errors);
	vm_runner_free(r);
	vm_destroy(vm);
}

/* Ring-full exits in the runner: the hook harvests and resets. */
struct ring_ctx {
	pthread_mutex_t lock;
	uint64_t calls, entries;
	uint32_t fetch[VM_MAX_VCPUS];
	int err;
};

static int on_ring_full(void *p, struct vcpu *v)
{
	struct ring_ctx *c = p;
	int n, reset;

	pthread_mutex_lock(&c->lock);
	c->calls++;
	n = vcpu_ring_reap(v, &c->fetch[v->idx], true, NULL, NULL);
	reset = vm_reset_dirty_rings(v->vm);
	if (n > 0)
		c->entries += n;
	if (n <= 0 || reset < n)
		c->err = n <= 0 ? -ENODATA : -EPROTO;
	pthread_mutex_unlock(&c->lock);
	return c->err;
}

/*
 * The I/O of an exit is finished by the next KVM_RUN, and only then does
 * RIP pass the instruction: vcpu_complete_io() must run it when the last
 * KVM_RUN ended in an exit.  Catches vcpu_run() not setting exit_pending
 * (the save would read RIP at the OUT, and the destination repeat it).
 */
TEST(complete_io_moves_rip_past_the_out)
{
	struct vm_config cfg = { .nr_vcpus = 1, .mem_size = 32ULL << 20 };
	uint64_t args[GUEST_CMD_ARGS] = { GUEST_WL_RANDOM, 0, 0, 3 };
	struct kvm_regs before, after;
	struct vcpu *v;
	struct vm *vm;
	int i, r;

	if (access("/dev/kvm", R_OK | W_OK))
		SKIP(return, "no /dev/kvm");
	ASSERT_EQ(0, vm_create(&cfg, &vm));
	ASSERT_EQ(0, vm_load_guest(vm));
	v = vm->vcpus[0];
	EXPECT_FALSE(v->exit_pending);
	ASSERT_EQ(0, vcpu_post(v, GUEST_CMD_WORKLOAD, args));
	for (i = 0; i < 100000; i++) {
		r = vcpu_run(v);
		if (r == -EINTR || r == -EAGAIN)
			continue;
		ASSERT_EQ(0, r);
		if (v->run->exit_reason == KVM_EXIT_IO &&
		    v->run->io.direction == KVM_EXIT_IO_OUT)
			break;
	}
	ASSERT_EQ(KVM_EXIT_IO, v->run->exit_reason);
	EXPECT_TRUE(v->exit_pending);
	ASSERT_EQ(0, ioctl(v->fd, KVM_GET_REGS, &before));
	ASSERT_EQ(0, vcpu_complete_io(v));
	EXPECT_FALSE(v->exit_pending);
	ASSERT_EQ(0, ioctl(v->fd, KVM_GET_REGS, &after));
	/* OUT imm8 is 2 bytes, OUT dx 1; with operand-size prefix one more. */
	EXPECT_LE(before.rip + 1, after.rip);
	EXPECT_GE(before.rip + 3, after.rip);
	/* Nothing pending now: no KVM_RUN, RIP stays. */
	ASSERT_EQ(0, vcpu_complete_io(v));
	ASSERT_EQ(0, ioctl(v->fd, KVM_GET_REGS, &before));
	EXPECT_EQ(after.rip, before.rip);
	vm_destroy(vm);
}

FIXTURE(ring) {};
FIXTURE_SETUP(ring) {}
FIXTURE_TEARDOWN(ring) {}

TEST_F_TIMEOUT(ring, full_exits_go_to_the_hook, TIMEOUT_S)
{
	struct vm_config cfg = {
		.nr_vcpus = 1, .mem_size = 32ULL << 20, .ring_entries = 1024, .log_dirty = true,
	};
	uint64_t args[GUEST_CMD_ARGS] = { GUEST_WL_RANDOM, 0, 0, 7 };
	struct ring_ctx c = { .lock = PTHREAD_MUTEX_INITIALIZER };
	struct vm_runner_hooks h = { .ring_full = on_ring_full, .ctx = &c };
	struct vm_runner_stats st;
	struct vm_runner *r;
	time_t end = time(NULL) + WAIT_S;
	struct vm *vm;

	if (access("/dev/kvm", R_OK | W_OK))
		SKIP(return, "no /dev/kvm");
	if (vm_check_cap(NULL, KVM_CAP_DIRTY_LOG_RING_ACQ_REL) <= 0 &&
	    vm_check_cap(NULL, KVM_CAP_DIRTY_LOG_RING) <= 0)
		SKIP(return, "no dirty ring");
	ASSERT_EQ(0, vm_create(&cfg, &vm));
	ASSERT_EQ(0, vm_load_guest(vm));
	ASSERT_EQ(0, vcpu_post(vm->vcpus[0], GUEST_CMD_WORKLOAD, args));
	ASSERT_EQ(0, vm_runner_start(vm, &h, &r));
	/* About 5700 data pages: the first pass alone fills the ring 5 times. */
	do {
		usleep(20000);
		vm_runner_stats(r, &st);
	} while (!c.err && st.ring_full < 3 && !st.finished && time(NULL) < end);
	ASSERT_TRUE(wait_reports(r, st.reports + 3));
	ASSERT_EQ(0, vm_runner_stop(r));
	vm_runner_stats(r, &st);
	EXPECT_EQ(0, c.err);
	EXPECT_LE(3, st.ring_full);
	EXPECT_EQ(st.ring_full, c.calls);
	EXPECT_EQ(0, st.vcpu[0].status);
	EXPECT_EQ(0, st.guest_errors);
	TH_LOG("%llu ring-full exits, %llu entries harvested by the hook",
	       (unsigned long long)st.ring_full, (unsigned long long)c.entries);
	vm_runner_free(r);
	vm_destroy(vm);
}

/*
 * The waiter gets its CPU back late (here: a signal handler that sleeps
 * 300 ms, sent once the kick is in and the held vCPU comes back; on a busy
 * host, the vCPU thread it woke running the guest on its CPU): the kick's
 * latency is still the vCPU's, about the 200 ms hold.  Catches a wait
 * timed by the waiter's clock, as it was (the pause estimate then took
 * the host's scheduling of the migration thread for the vCPUs').  One
 * vCPU: another one's exits would have the waiter take the runner's lock
 * now and then, and a handler that sleeps holding it would hold the
 * vCPU's own reading back.
 */
TEST_F_TIMEOUT(bare, kick_wait_times_the_vcpus_not_the_waiter, TIMEOUT_S)
{
	struct vm_config cfg = { .nr_vcpus = 1, .mem_size = 32ULL << 20 };
	uint64_t args[GUEST_CMD_ARGS] = { GUEST_WL_RANDOM, 0, 0, 0 };
	struct sigaction sa = { .sa_handler = late_waiter }, old;
	struct vm_runner_hooks h = { .progress = on_progress };
	struct hook_log log = { .lock = PTHREAD_MUTEX_INITIALIZER };
	struct vm_runner *r;
	uint64_t ns, t0, seen;
	struct vm *vm;

	h.ctx = &log;
	ASSERT_EQ(0, vm_create(&cfg, &vm));
	ASSERT_EQ(0, vm_load_guest(vm));
	ASSERT_EQ(0, vcpu_post(vm->vcpus[0], GUEST_CMD_WORKLOAD, args));
	ASSERT_EQ(0, vm_runner_start(vm, &h, &r));
	ASSERT_TRUE(wait_reports(r, 4));
	ASSERT_EQ(0, sigaction(SIGUSR2, &sa, &old));
	log.poked = pthread_self();
	log.poke = true;
	ASSERT_NE(0, hold_a_vcpu(&log, 200000));
	t0 = vmm_now_ns();
	ASSERT_EQ(0, vm_runner_kick_wait(r, 10000, &ns));
	seen = vmm_now_ns() - t0;
	sigaction(SIGUSR2, &old, NULL);
	TH_LOG("kick and wait: %.1f ms by the vCPU, %.1f ms by the waiter", ns / 1e6, seen / 1e6);
	EXPECT_LE(LATE_WAITER_MS * 1000000ull, seen);
	EXPECT_GT(LATE_WAITER_MS * 1000000ull, ns);
	ASSERT_EQ(0, vm_runner_stop(r));
	vm_runner_free(r);
	vm_destroy(vm);
}

TEST_HARNESS_MAIN
