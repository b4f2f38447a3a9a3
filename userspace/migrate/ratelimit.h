/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The --bandwidth limit: one token bucket shared by every channel sender,
 * so that the limit holds for the migration as a whole, as QEMU's
 * max-bandwidth and virsh migrate-setspeed do.
 */
#ifndef VMDIRTY_RATELIMIT_H
#define VMDIRTY_RATELIMIT_H

#include <pthread.h>
#include <stdint.h>

struct ratelimit {
	pthread_mutex_t lock;
	uint64_t rate;		/* bytes/s, 0 = unlimited */
	uint64_t burst;		/* bytes that may go out at once */
	int64_t tokens;
	uint64_t last_ns;
	uint64_t waited_ns;	/* time senders slept for the limit */
};

void ratelimit_init(struct ratelimit *rl, uint64_t bytes_per_sec);
void ratelimit_destroy(struct ratelimit *rl);
/* Account len bytes; sleep first if the bucket is in debt.  -ECANCELED if *cancel. */
int ratelimit_take(struct ratelimit *rl, uint64_t len, const volatile int *cancel);
/* Bytes that could go out now without a wait (the bucket, refilled); 0 if unlimited. */
uint64_t ratelimit_tokens(struct ratelimit *rl);
/* No limit from now on, debts forgiven: senders waiting in ratelimit_take() go on. */
void ratelimit_lift(struct ratelimit *rl);

#endif
