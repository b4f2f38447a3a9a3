// SPDX-License-Identifier: GPL-2.0
/*
 * The runner: one thread per vCPU, each running whatever command its vCPU
 * has posted (or was in the middle of, on a migration destination).
 *
 * Kicks: a thread is taken out of KVM_RUN by VM_RUNNER_KICK_SIGNAL plus
 * kvm_run->immediate_exit, never by polling.  The kicker sets
 * immediate_exit under r->lock after raising the request; the thread
 * clears it under r->lock before it checks the requests, so a kick that
 * lands between the check and KVM_RUN makes KVM_RUN return -EINTR at
 * once, and one that lands inside KVM_RUN interrupts it (signal).
 *
 * Lock: r->lock protects the requests (pause, exit, throttle), each
 * vCPU's park/finish state and the statistics.  Threads never hold it in
 * KVM_RUN or in a hook.
 */
#include <errno.h>
#include <stdio.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "vmm/vmm.h"
#include "vmm/vmm_int.h"

#define THROTTLE_SLICE_NS	10000000ULL	/* run at least this long between throttle sleeps */
#define STOP_TIMEOUT_S		60

struct runner_vcpu {
	struct vm_runner *r;
	struct vcpu *v;
	pthread_t thread;
	bool started;
	bool parked;		/* waiting in park(): not in KVM_RUN */
	bool finished;		/* its command is done (status) or failed */
	bool completing;	/* its next KVM_RUN only finishes an exit (park()) */
	int status;
	uint64_t out_gen;	/* r->kick_gen when it last came out of KVM_RUN */
	uint64_t ran_gen;	/* r->resume_gen when it last left park() */
	/*
	 * When, on its own clock reading, it came out (out_gen) and left its
	 * park (ran_gen): what a kick or a resume took, whenever the waiter
	 * gets the CPU back.  The thread it woke can hold the waiter's CPU
	 * running the guest for a scheduler period (7-12 ms in the test host).
	 */
	uint64_t out_ns, ran_ns;
	uint64_t run_ns;	/* run time since the last throttle sleep */
	struct vm_runner_vcpu_stats st;
};

struct vm_runner {
	struct vm *vm;
	struct vm_runner_hooks hooks;
	pthread_mutex_t lock;
	pthread_cond_t cond;	/* any change of request or park state */
	bool pause_req, exit_req;
	unsigned int throttle_pct;
	unsigned int nr_parked;
	uint64_t throttle_ns;
	/* vm_runner_kick_wait()'s rounds, every resume, and how many wait. */
	uint64_t kick_gen, resume_gen;
	unsigned int waiters;
	struct runner_vcpu rv[VM_MAX_VCPUS];
};

uint64_t vmm_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + ts.tv_nsec;
}

struct timespec vmm_deadline_ms(uint64_t ms)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_sec += ms / 1000;
	ts.tv_nsec += (ms % 1000) * 1000000;
	if (ts.tv_nsec >= 1000000000) {
		ts.tv_sec++;
		ts.tv_nsec -= 1000000000;
	}
	return ts;
}

static void kick_handler(int sig)
{
	(void)sig;	/* only there to interrupt KVM_RUN */
}

static int install_kick_handler(void)
{
	static pthread_mutex_t once = PTHREAD_MUTEX_INITIALIZER;
	static bool done;
	struct sigaction sa = { .sa_handler = kick_handler, .sa_flags = SA_RESTART };
	int r = 0;

	pthread_mutex_lock(&once);
	/*
	 * KVM_RUN returns -EINTR itself (not -ERESTARTSYS), so SA_RESTART
	 * does not restart it; it only spares other system calls, e.g. in a
	 * ring-full hook, from failing with EINTR on a kick.
	 */
	if (!done && sigaction(VM_RUNNER_KICK_SIGNAL, &sa, NULL) < 0)
		r = -errno;
	done = !r;
	pthread_mutex_unlock(&once);
	return r;
}

/* Called with r->lock held. */
static void kick(struct runner_vcpu *rv)
{
	if (!rv->started || rv->parked)
		return;
	__atomic_store_n(&rv->v->run->immediate_exit, 1, __ATOMIC_RELEASE);
	pthread_kill(rv->thread, VM_RUNNER_KICK_SIGNAL);
}

static void kick_all(struct vm_runner *r)
{
	unsigned int i;

	for (i = 0; i < r->vm->nr_vcpus; i++)
		kick(&r->rv[i]);
}

static void add_ns(struct timespec *ts, uint64_t ns)
{
	ns += ts->tv_nsec;
	ts->tv_sec += ns / 1000000000ULL;
	ts->tv_nsec = ns % 1000000000ULL;
}

/*
 * Waits (r->lock held) while the vCPU must not run: paused, finished, or
 * sleeping for the throttle.  Returns false when the thread must exit.
 */
static bool park(struct runner_vcpu *rv)
{
	struct vm_runner *r = rv->r;
	bool sleep_due = r->throttle_pct && rv->run_ns >= THROTTLE_SLICE_NS;
	uint64_t sleep_ns = 0;
	struct timespec until;

	/*
	 * Never wait with an exit's I/O half done: one more KVM_RUN, here,
	 * with immediate_exit finishes it (vcpu_complete_io()), so that a
	 * saver on another thread need not run the vCPU (a grace period).
	 * Not once its command finished: an exit then would have no command
	 * to go to (the saver completes it, slowly but correctly).
	 */
	if (rv->v->exit_pending && !r->exit_req && !rv->finished &&
	    (r->pause_req || sleep_due)) {
		__atomic_store_n(&rv->v->run->immediate_exit, 1, __ATOMIC_RELAXED);
		rv->completing = true;
		return true;
	}
	if (!r->throttle_pct) {
		rv->run_ns = 0;
	} else if (sleep_due) {
		/* Sleep pct% of wall time: sleep/(run+sleep) == pct/100. */
		sleep_ns = rv->run_ns * r->throttle_pct / (100 - r->throttle_pct);
		rv->run_ns = 0;
		clock_gettime(CLOCK_MONOTONIC, &until);
		add_ns(&until, sleep_ns);
	}
	rv->parked = true;
	r->nr_parked++;
	pthread_cond_broadcast(&r->cond);
	while (!r->exit_req) {
		if (r->pause_req || rv->finished) {
			pthread_cond_wait(&r->cond, &r->lock);
			continue;
		}
		if (!sleep_ns)
			break;
		if (pthread_cond_timedwait(&r->cond, &r->lock, &until) == ETIMEDOUT) {
			r->throttle_ns += sleep_ns;
			sleep_ns = 0;
		}
	}
	r->nr_parked--;
	rv->parked = false;
	/* The first time out after a resume: park() runs between all its exits. */
	if (rv->ran_gen != r->resume_gen) {
		rv->ran_gen = r->resume_gen;
		rv->ran_ns = vmm_now_ns();
	}
	/* Parked, not kicked, through any kick meanwhile: out all along. */
	if (rv->out_gen != r->kick_gen) {
		rv->out_gen = r->kick_gen;
		rv->out_ns = 0;
	}
	if (r->waiters)
		pthread_cond_broadcast(&r->cond);
	/* Under the lock, before KVM_RUN: see the comment at the top. */
	__atomic_store_n(&rv->v->run->immediate_exit, 0, __ATOMIC_RELAXED);
	return !r->exit_req;
}

static int ring_full_hook(struct vcpu *v, void *ctx)
{
	struct vm_runner *r = ctx;

	if (!r->hooks.ring_full)
		return -ENOSPC;
	return r->hooks.ring_full(r->hooks.ctx, v);
}

static void progress(struct runner_vcpu *rv, uint64_t now)
{
	struct vm_runner_vcpu_stats *st = &rv->st;

	if (st->reports) {
		uint64_t gap = now - st->last_report_ns;

		if (gap > st->max_gap_ns)
			st->max_gap_ns = gap;
	} else {
		st->first_report_ns = now;
	}
	st->last_report_ns = now;
	st->reports++;
}

static void finish(struct runner_vcpu *rv, int status)
{
	rv->finished = true;
	rv->status = status;
	pthread_cond_broadcast(&rv->r->cond);
}

static void *vcpu_thread(void *arg)
{
	struct runner_vcpu *rv = arg;
	struct vm_runner *r = rv->r;
	struct vcpu *v = rv->v;
	sigset_t kick_set;
	char name[16];

	snprintf(name, sizeof(name), "vcpu%u", v->idx);
	pthread_setname_np(pthread_self(), name);
	/* The creator may block it (signalfd etc.); the kick must get through. */
	sigemptyset(&kick_set);
	sigaddset(&kick_set, VM_RUNNER_KICK_SIGNAL);
	pthread_sigmask(SIG_UNBLOCK, &kick_set, NULL);
	pthread_mutex_lock(&r->lock);
	while (park(rv)) {
		uint64_t t0, now;
		int ret;

		pthread_mutex_unlock(&r->lock);
		t0 = vmm_now_ns();
		ret = vcpu_run(v);
		now = vmm_now_ns();
		if (ret == 0)
			ret = vcpu_handle_exit(v, ring_full_hook, r);
		if (ret == VCPU_EXIT_PROGRESS && r->hooks.progress)
			r->hooks.progress(r->hooks.ctx, v, v->mb->ops, now);

		pthread_mutex_lock(&r->lock);
		rv->run_ns += now - t0;
		/* Out once the exit is handled and the lock taken, as a pause finds it. */
		if (rv->out_gen != r->kick_gen) {
			rv->out_gen = r->kick_gen;
			rv->out_ns = vmm_now_ns();
		}
		if (r->waiters)
			pthread_cond_broadcast(&r->cond);
		if (ret == -EINTR) {
			if (!rv->completing)
				rv->st.kicks++;
			rv->completing = false;
			continue;
		}
		rv->completing = false;
		/*
		 * An AP waiting for INIT/SIPI (multiboot boot) blocks in
		 * KVM_RUN and returns -EAGAIN when its state changed: again.
		 */
		if (ret == -EAGAIN)
			continue;
		if (v->run->exit_reason < VM_RUNNER_EXIT_REASONS)
			rv->st.exits[v->run->exit_reason]++;
		switch (ret) {
		case VCPU_EXIT_PROGRESS:
			progress(rv, now);
			break;
		case VCPU_EXIT_DONE:
			finish(rv, v->mb->status < -4095 ? -EIO :
				   v->mb->status > 0x7fffffff ? 0x7fffffff : (int)v->mb->status);
			break;
		case VCPU_EXIT_ERROR:
		case VCPU_EXIT_RING_FULL:
		case VCPU_EXIT_DEBUGCON:
			break;
		default:
			finish(rv, ret);	/* -errno, incl. -ENOMSG: nothing posted */
		}
	}
	pthread_mutex_unlock(&r->lock);
	return NULL;
}

static int runner_start(struct vm *vm, const struct vm_runner_hooks *h, bool paused,
			struct vm_runner **out)
{
	struct vm_runner *r;
	pthread_condattr_t ca;
	unsigned int i;
	int ret;

	*out = NULL;
	ret = install_kick_handler();
	if (ret)
		return ret;
	r = calloc(1, sizeof(*r));
	if (!r)
		return -ENOMEM;
	r->vm = vm;
	if (h)
		r->hooks = *h;
	pthread_mutex_init(&r->lock, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&r->cond, &ca);
	pthread_condattr_destroy(&ca);
	r->pause_req = paused;

	pthread_mutex_lock(&r->lock);
	for (i = 0; i < vm->nr_vcpus; i++) {
		struct runner_vcpu *rv = &r->rv[i];

		rv->r = r;
		rv->v = vm->vcpus[i];
		ret = -pthread_create(&rv->thread, NULL, vcpu_thread, rv);
		if (ret)
			break;
		rv->started = true;
	}
	pthread_mutex_unlock(&r->lock);
	if (ret) {
		vm_runner_free(r);
		return ret;
	}
	*out = r;
	return 0;
}

int vm_runner_start(struct vm *vm, const struct vm_runner_hooks *h, struct vm_runner **out)
{
	return runner_start(vm, h, false, out);
}

int vm_runner_start_paused(struct vm *vm, const struct vm_runner_hooks *h,
			   struct vm_runner **out)
{
	return runner_start(vm, h, true, out);
}

/* Every vCPU whose thread runs, not counting those that ok() says are done. */
static int wait_all(struct vm_runner *r, bool (*ok)(const struct vm_runner *,
						      const struct runner_vcpu *),
		    uint64_t timeout_ms)
{
	struct timespec until;
	unsigned int i;
	int ret = 0;

	clock_gettime(CLOCK_MONOTONIC, &until);
	add_ns(&until, timeout_ms * 1000000ULL);
	r->waiters++;
	for (;;) {
		for (i = 0; i < r->vm->nr_vcpus; i++) {
			const struct runner_vcpu *rv = &r->rv[i];

			if (rv->started && !rv->finished && !ok(r, rv))
				break;
		}
		if (i == r->vm->nr_vcpus || r->exit_req || ret)
			break;
		ret = -pthread_cond_timedwait(&r->cond, &r->lock, &until);
	}
	r->waiters--;
	return i == r->vm->nr_vcpus || r->exit_req ? 0 : ret;
}

/*
 * Once wait_all() saw every vCPU out (came_out()) or away (left_park()):
 * the last of their own times, from t0.  One already parked at t0 was out
 * then; one that finished was waited for by nobody.
 */
static uint64_t last_of(const struct vm_runner *r, uint64_t t0, bool resumed)
{
	uint64_t last = t0;

	for (unsigned int i = 0; i < r->vm->nr_vcpus; i++) {
		const struct runner_vcpu *rv = &r->rv[i];
		uint64_t t;

		if (!rv->started || rv->finished)
			continue;
		if (resumed)
			t = rv->ran_gen == r->resume_gen ? rv->ran_ns : 0;
		else
			t = rv->out_gen == r->kick_gen ? rv->out_ns : 0;
		if (t > last)
			last = t;
	}
	return last - t0;
}

static bool came_out(const struct vm_runner *r, const struct runner_vcpu *rv)
{
	return rv->parked || rv->out_gen == r->kick_gen;
}

int vm_runner_kick_wait(struct vm_runner *r, uint64_t timeout_ms, uint64_t *ns)
{
	unsigned int i, running = 0;
	uint64_t t0;
	int ret;

	*ns = 0;
	pthread_mutex_lock(&r->lock);
	for (i = 0; i < r->vm->nr_vcpus; i++)
		running += r->rv[i].started && !r->rv[i].finished && !r->rv[i].parked;
	if (!running) {
		pthread_mutex_unlock(&r->lock);
		return -EAGAIN;
	}
	t0 = vmm_now_ns();
	r->kick_gen++;
	kick_all(r);
	ret = wait_all(r, came_out, timeout_ms);
	*ns = ret ? vmm_now_ns() - t0 : last_of(r, t0, false);
	pthread_mutex_unlock(&r->lock);
	return ret;
}

int vm_runner_pause(struct vm_runner *r)
{
	pthread_mutex_lock(&r->lock);
	r->pause_req = true;
	kick_all(r);
	while (r->nr_parked < r->vm->nr_vcpus && !r->exit_req)
		pthread_cond_wait(&r->cond, &r->lock);
	pthread_mutex_unlock(&r->lock);
	return 0;
}

/* Under r->lock: a new resume, which each thread stamps the first time it leaves its park. */
static void resume_locked(struct vm_runner *r)
{
	r->pause_req = false;
	r->resume_gen++;
	pthread_cond_broadcast(&r->cond);
}

int vm_runner_resume(struct vm_runner *r)
{
	pthread_mutex_lock(&r->lock);
	resume_locked(r);
	pthread_mutex_unlock(&r->lock);
	return 0;
}

static bool left_park(const struct vm_runner *r, const struct runner_vcpu *rv)
{
	return rv->ran_gen == r->resume_gen;
}

int vm_runner_resume_wait(struct vm_runner *r, uint64_t timeout_ms, uint64_t *ns)
{
	uint64_t t0;
	int ret;

	pthread_mutex_lock(&r->lock);
	t0 = vmm_now_ns();
	resume_locked(r);
	ret = wait_all(r, left_park, timeout_ms);
	*ns = ret ? vmm_now_ns() - t0 : last_of(r, t0, true);
	pthread_mutex_unlock(&r->lock);
	return ret;
}

int vm_runner_throttle(struct vm_runner *r, unsigned int pct)
{
	if (pct > 99)
		return -EINVAL;
	pthread_mutex_lock(&r->lock);
	r->throttle_pct = pct;
	pthread_cond_broadcast(&r->cond);	/* a lower throttle ends sleeps early */
	pthread_mutex_unlock(&r->lock);
	return 0;
}

static bool all_finished(struct vm_runner *r)
{
	unsigned int i;

	for (i = 0; i < r->vm->nr_vcpus; i++)
		if (r->rv[i].started && !r->rv[i].finished)
			return false;
	return true;
}

/* Ends the threads (r->lock not held); the guest does not run again. */
static void join_all(struct vm_runner *r)
{
	unsigned int i;

	pthread_mutex_lock(&r->lock);
	r->exit_req = true;
	kick_all(r);
	pthread_cond_broadcast(&r->cond);
	pthread_mutex_unlock(&r->lock);
	for (i = 0; i < r->vm->nr_vcpus; i++) {
		bool started;

		/* Cleared before the join: vm_runner_cpu_ns() reads a started thread's clock. */
		pthread_mutex_lock(&r->lock);
		started = r->rv[i].started;
		r->rv[i].started = false;
		pthread_mutex_unlock(&r->lock);
		if (started)
			pthread_join(r->rv[i].thread, NULL);
	}
}

int vm_runner_stop(struct vm_runner *r)
{
	struct timespec until, nudge;
	bool nudged = false;
	unsigned int i;
	int ret = 0;

	pthread_mutex_lock(&r->lock);
	if (!r->pause_req) {
		/* Workloads end at their next loop; other commands run out. */
		for (i = 0; i < r->vm->nr_vcpus; i++)
			__atomic_store_n(&r->vm->vcpus[i]->mb->stop, 1, __ATOMIC_RELEASE);
		clock_gettime(CLOCK_MONOTONIC, &until);
		nudge = until;
		nudge.tv_sec += 1;
		until.tv_sec += STOP_TIMEOUT_S;
		while (!all_finished(r) && !ret) {
			ret = -pthread_cond_timedwait(&r->cond, &r->lock, nudged ? &until : &nudge);
			if (ret != -ETIMEDOUT || nudged)
				continue;
			/*
			 * A vCPU still asleep after a second: wake it.  Under
			 * nested TCG a TSC-deadline wakeup has been seen to go
			 * missing, leaving a vCPU halted with its deadline past;
			 * any interrupt ends that sleep.
			 */
			for (i = 0; i < r->vm->nr_vcpus; i++)
				if (r->rv[i].started && !r->rv[i].finished)
					vcpu_nudge(r->vm->vcpus[i]);
			nudged = true;
			ret = 0;
		}
	}
	pthread_mutex_unlock(&r->lock);
	join_all(r);
	return ret;
}

void vm_runner_free(struct vm_runner *r)
{
	if (!r)
		return;
	join_all(r);
	pthread_cond_destroy(&r->cond);
	pthread_mutex_destroy(&r->lock);
	free(r);
}

/* A started vCPU thread is joined only at vm_runner_stop(): its clock is valid until then. */
static uint64_t thread_cpu_ns(const struct runner_vcpu *rv)
{
	struct timespec ts;
	clockid_t clk;

	if (!rv->started || pthread_getcpuclockid(rv->thread, &clk) ||
	    clock_gettime(clk, &ts))
		return 0;
	return (uint64_t)ts.tv_sec * 1000000000ULL + ts.tv_nsec;
}

uint64_t vm_runner_cpu_ns(struct vm_runner *r)
{
	uint64_t ns = 0;

	pthread_mutex_lock(&r->lock);
	for (unsigned int i = 0; i < r->vm->nr_vcpus; i++)
		ns += thread_cpu_ns(&r->rv[i]);
	pthread_mutex_unlock(&r->lock);
	return ns;
}

void vm_runner_stats(struct vm_runner *r, struct vm_runner_stats *st)
{
	unsigned int i, k;

	memset(st, 0, sizeof(*st));
	pthread_mutex_lock(&r->lock);
	st->nr_vcpus = r->vm->nr_vcpus;
	st->throttle_ns = r->throttle_ns;
	st->throttle_pct = r->throttle_pct;
	for (i = 0; i < r->vm->nr_vcpus; i++) {
		struct runner_vcpu *rv = &r->rv[i];
		struct vm_runner_vcpu_stats *vs = &st->vcpu[i];

		*vs = rv->st;
		vs->ops = __atomic_load_n(&rv->v->mb->ops, __ATOMIC_RELAXED);
		vs->guest_errors = __atomic_load_n(&rv->v->mb->errors, __ATOMIC_RELAXED);
		vs->finished = rv->finished;
		vs->status = rv->status;
		for (k = 0; k < VM_RUNNER_EXIT_REASONS; k++)
			st->exits[k] += vs->exits[k];
		st->kicks += vs->kicks;
		st->reports += vs->reports;
		st->ops += vs->ops;
		st->guest_errors += vs->guest_errors;
		if (vs->max_gap_ns > st->max_gap_ns)
			st->max_gap_ns = vs->max_gap_ns;
		st->finished += vs->finished;
	}
	st->ring_full = st->exits[KVM_EXIT_DIRTY_RING_FULL];
	pthread_mutex_unlock(&r->lock);
}
