// SPDX-License-Identifier: GPL-2.0
/*
 * The --bandwidth bucket, and its lifting for the final round (the guest
 * is paused then: QEMU too sends its stop-and-copy without max-bandwidth).
 */
#include <errno.h>
#include <pthread.h>
#include <unistd.h>

#include "migrate/ratelimit.h"
#include "vmm/vmm.h"

#include "kselftest_harness.h"

#define MS 1000000ull

struct taker {
	struct ratelimit *rl;
	uint64_t len;
	volatile int cancel;
	int ret;
	uint64_t ns;
};

static void *take(void *arg)
{
	struct taker *t = arg;
	uint64_t t0 = vmm_now_ns();

	t->ret = ratelimit_take(t->rl, t->len, &t->cancel);
	t->ns = vmm_now_ns() - t0;
	return NULL;
}

/* 4 KiB/s: taking 8 MiB waits past its bucket for about half an hour. */
FIXTURE(rl) {
	struct ratelimit rl;
};

FIXTURE_SETUP(rl)
{
	ratelimit_init(&self->rl, 4096);
}

FIXTURE_TEARDOWN(rl)
{
	ratelimit_destroy(&self->rl);
}

TEST_F(rl, debt_waits)
{
	struct taker t = { .rl = &self->rl, .len = 8u << 20 };
	pthread_t th;

	ASSERT_EQ(0, pthread_create(&th, NULL, take, &t));
	usleep(100 * 1000);
	t.cancel = 1;
	ASSERT_EQ(0, pthread_join(th, NULL));
	EXPECT_EQ(-ECANCELED, t.ret);
	EXPECT_GE(t.ns, 90 * MS);
}

/*
 * A sender asleep on the bucket when the final round starts goes on at
 * once.  Catches a lift the waiting loop never looks at (the sender sleeps
 * on, past the join's 5 s) and a loop that divides by the lifted rate.
 */
TEST_F(rl, lift_frees_a_waiting_sender)
{
	struct taker t = { .rl = &self->rl, .len = 8u << 20 };
	pthread_t th;

	ASSERT_EQ(0, pthread_create(&th, NULL, take, &t));
	usleep(50 * 1000);
	ratelimit_lift(&self->rl);
	for (int i = 0; i < 500 && !t.ns; i++)
		usleep(10 * 1000);
	if (!t.ns)
		t.cancel = 1;
	ASSERT_EQ(0, pthread_join(th, NULL));
	EXPECT_EQ(0, t.ret);
	EXPECT_LT(t.ns, 5000 * MS);
}

/* Lifted, nothing waits and no bucket is reported.  Catches a lift that keeps the rate. */
TEST_F(rl, lifted_never_waits)
{
	struct taker t = { .rl = &self->rl, .len = 1ull << 30, .cancel = 1 };

	ratelimit_lift(&self->rl);
	take(&t);
	EXPECT_EQ(0, t.ret);
	EXPECT_EQ(0, ratelimit_tokens(&self->rl));
}

TEST_HARNESS_MAIN
