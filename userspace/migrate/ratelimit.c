// SPDX-License-Identifier: GPL-2.0
/*
 * Token bucket for the migration bandwidth limit.  A sender takes the bytes
 * of a message before sending it and sleeps while the bucket is in debt, in
 * slices short enough to notice a cancel.
 */
#include <errno.h>
#include <time.h>

#include "migrate/ratelimit.h"
#include "vmm/vmm.h"

#define SLICE_NS	10000000ull	/* longest single sleep: 10 ms */

void ratelimit_init(struct ratelimit *rl, uint64_t bytes_per_sec)
{
	pthread_mutex_init(&rl->lock, NULL);
	rl->rate = bytes_per_sec;
	/* 20 ms worth, and at least one full message, so a burst never stalls. */
	rl->burst = bytes_per_sec / 50;
	if (rl->burst < (4u << 20))
		rl->burst = 4u << 20;
	rl->tokens = 0;
	rl->last_ns = vmm_now_ns();
	rl->waited_ns = 0;
}

void ratelimit_destroy(struct ratelimit *rl)
{
	pthread_mutex_destroy(&rl->lock);
}

static void refill(struct ratelimit *rl, uint64_t now)
{
	uint64_t dt = now - rl->last_ns;

	rl->last_ns = now;
	rl->tokens += (int64_t)(dt * rl->rate / 1000000000ull);
	if (rl->tokens > (int64_t)rl->burst)
		rl->tokens = rl->burst;
}

uint64_t ratelimit_tokens(struct ratelimit *rl)
{
	int64_t t = 0;

	pthread_mutex_lock(&rl->lock);
	if (rl->rate) {
		refill(rl, vmm_now_ns());
		t = rl->tokens;
	}
	pthread_mutex_unlock(&rl->lock);
	return t > 0 ? (uint64_t)t : 0;
}

void ratelimit_lift(struct ratelimit *rl)
{
	pthread_mutex_lock(&rl->lock);
	rl->rate = 0;
	rl->tokens = 0;
	pthread_mutex_unlock(&rl->lock);
}

/* The rate is read under the lock: ratelimit_lift() may clear it meanwhile. */
int ratelimit_take(struct ratelimit *rl, uint64_t len, const volatile int *cancel)
{
	uint64_t rate;

	pthread_mutex_lock(&rl->lock);
	rate = rl->rate;
	if (rate) {
		refill(rl, vmm_now_ns());
		rl->tokens -= (int64_t)len;
	}
	pthread_mutex_unlock(&rl->lock);

	while (rate) {
		int64_t debt = 0;
		uint64_t ns, t0;
		struct timespec ts;

		pthread_mutex_lock(&rl->lock);
		rate = rl->rate;
		if (rate) {
			refill(rl, vmm_now_ns());
			debt = rl->tokens < 0 ? -rl->tokens : 0;
		}
		pthread_mutex_unlock(&rl->lock);
		/* Our bytes are paid for once the bucket is out of debt, or the limit gone. */
		if (!debt)
			return 0;
		if (cancel && *cancel)
			return -ECANCELED;
		ns = (uint64_t)debt * 1000000000ull / rate;
		if (ns > SLICE_NS)
			ns = SLICE_NS;
		ts.tv_sec = 0;
		ts.tv_nsec = ns;
		t0 = vmm_now_ns();
		nanosleep(&ts, NULL);
		__atomic_add_fetch(&rl->waited_ns, vmm_now_ns() - t0, __ATOMIC_RELAXED);
	}
	return 0;
}
