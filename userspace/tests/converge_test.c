// SPDX-License-Identifier: GPL-2.0
/*
 * Pre-copy convergence decisions: stop-and-copy, auto-converge steps,
 * cancellation bounds; the final round's time under the --bandwidth bucket.
 */
#include "migrate/converge.h"

#include "kselftest_harness.h"

#define MS 1000000ull
#define SEC 1000000000ull

FIXTURE(conv) {
	struct converge_params p;
	struct converge_state s;
};

FIXTURE_SETUP(conv)
{
	converge_params_default(&self->p);
	converge_init(&self->s);
}

FIXTURE_TEARDOWN(conv)
{
}

TEST_F(conv, defaults_match_qemu)
{
	EXPECT_EQ(300 * MS, self->p.downtime_ns);
	EXPECT_EQ(20, self->p.throttle_initial);
	EXPECT_EQ(10, self->p.throttle_increment);
	EXPECT_EQ(99, self->p.throttle_max);
	EXPECT_TRUE(self->p.auto_converge);
}

TEST_F(conv, stops_when_rest_fits)
{
	/* 10000 pages/s; 2000 pages left = 200 ms < 300 ms. */
	struct converge_round r = { .pages = 10000, .ns = SEC, .dirty_pages = 2000 };

	/* QEMU's rule: no round once the rest fits. */
	self->p.shrink_rounds = 0;
	EXPECT_EQ(CONVERGE_STOP_AND_COPY, converge_next(&self->s, &self->p, &r));
	EXPECT_EQ(10000, self->s.page_rate);
	EXPECT_EQ(200 * MS, self->s.expected_downtime_ns);
	EXPECT_EQ(0, self->s.shrink_rounds);
}

/*
 * The rest fits, and each round leaves a fifth of what it sent: two more
 * rounds (the default), then stop, at 8 ms of pages instead of 200.
 * Catches the count of shrink rounds unchecked or off by one.
 */
TEST_F(conv, fits_and_shrinking_goes_on_twice)
{
	struct converge_round r[] = {
		{ .pages = 10000, .ns = SEC, .dirty_pages = 2000 },
		{ .pages = 2000, .ns = 200 * MS, .dirty_pages = 400 },
		{ .pages = 400, .ns = 40 * MS, .dirty_pages = 80 },
	};

	EXPECT_EQ(CONVERGE_CONTINUE, converge_next(&self->s, &self->p, &r[0]));
	EXPECT_EQ(1, self->s.shrink_rounds);
	EXPECT_TRUE(self->s.shrinking);
	EXPECT_EQ(CONVERGE_CONTINUE, converge_next(&self->s, &self->p, &r[1]));
	EXPECT_TRUE(self->s.shrinking);
	EXPECT_EQ(CONVERGE_STOP_AND_COPY, converge_next(&self->s, &self->p, &r[2]));
	EXPECT_EQ(2, self->s.shrink_rounds);
	EXPECT_FALSE(self->s.shrinking);
	EXPECT_EQ(8 * MS, self->s.expected_downtime_ns);
	EXPECT_EQ(0, self->s.throttle);
}

/*
 * A shrink round after which the rest no longer fits (a burst of writes):
 * another round, but not a shrinking one, so the source pads it to its
 * minimum again (source.c's settle()).  Catches `shrinking` left set from
 * the round before: short rounds that do not fit would then spin through
 * --max-rounds unpadded.
 */
TEST_F(conv, shrinking_ends_when_the_rest_stops_fitting)
{
	struct converge_round r[] = {
		{ .pages = 10000, .ns = SEC, .dirty_pages = 2000 },
		{ .pages = 2000, .ns = 200 * MS, .dirty_pages = 5000 },
	};

	EXPECT_EQ(CONVERGE_CONTINUE, converge_next(&self->s, &self->p, &r[0]));
	EXPECT_TRUE(self->s.shrinking);
	EXPECT_EQ(CONVERGE_CONTINUE, converge_next(&self->s, &self->p, &r[1]));
	EXPECT_FALSE(self->s.shrinking);
	EXPECT_EQ(1, self->s.shrink_rounds);
}

/*
 * Fits, but the guest dirtied more than half of what the round sent: one
 * more round would not shrink the pause by half.  Catches the comparison
 * turned around.
 */
TEST_F(conv, fits_but_not_halving_stops)
{
	struct converge_round r = { .pages = 4000, .ns = 400 * MS, .dirty_pages = 2500 };

	EXPECT_EQ(CONVERGE_STOP_AND_COPY, converge_next(&self->s, &self->p, &r));
	EXPECT_EQ(250 * MS, self->s.expected_downtime_ns);
	EXPECT_EQ(0, self->s.shrink_rounds);
}

/*
 * Fits and halves, but the pages are 20 of a 120 ms pause: another round
 * would take little off it.  Catches the pages' share left unchecked.
 */
TEST_F(conv, fits_with_fixed_costs_most_of_the_pause_stops)
{
	struct converge_round r = {
		.pages = 10000, .ns = SEC, .dirty_pages = 200, .fixed_ns = 100 * MS,
	};

	EXPECT_EQ(CONVERGE_STOP_AND_COPY, converge_next(&self->s, &self->p, &r));
	EXPECT_EQ(120 * MS, self->s.expected_downtime_ns);
}

/*
 * The zero markers count as sent: round 0 sent all of RAM, and 3000 dirty
 * pages (240 ms, fits) are 2% of it, though 60% of its pages with content.
 * Catches shrinking judged on the pages with content alone.
 */
TEST_F(conv, fits_after_round0_counts_its_zero_pages)
{
	struct converge_round r = {
		.pages = 5000, .zero_pages = 126072, .ns = 400 * MS, .dirty_pages = 3000,
	};

	EXPECT_EQ(CONVERGE_CONTINUE, converge_next(&self->s, &self->p, &r));
	EXPECT_EQ(240 * MS, self->s.expected_downtime_ns);
	EXPECT_EQ(1, self->s.shrink_rounds);
}

TEST_F(conv, continues_when_rest_does_not_fit)
{
	/* 4000 pages left = 400 ms > 300 ms. */
	struct converge_round r = { .pages = 10000, .ns = SEC, .dirty_pages = 4000 };

	EXPECT_EQ(CONVERGE_CONTINUE, converge_next(&self->s, &self->p, &r));
	EXPECT_EQ(400 * MS, self->s.expected_downtime_ns);
	EXPECT_EQ(0, self->s.throttle);
}

TEST_F(conv, nothing_left_stops_even_without_rate)
{
	struct converge_round r = { .pages = 0, .ns = 0, .dirty_pages = 0 };

	EXPECT_EQ(CONVERGE_STOP_AND_COPY, converge_next(&self->s, &self->p, &r));
}

TEST_F(conv, unknown_rate_never_stops)
{
	struct converge_round r = { .pages = 0, .ns = SEC, .dirty_pages = 1 };

	EXPECT_EQ(CONVERGE_CONTINUE, converge_next(&self->s, &self->p, &r));
	EXPECT_EQ(UINT64_MAX, self->s.expected_downtime_ns);
}

TEST_F(conv, throttles_after_two_high_rounds_then_steps)
{
	/* Dirtying 9000 of 10000 sent: 90% > 50%, far from fitting. */
	struct converge_round r = { .pages = 10000, .ns = SEC, .dirty_pages = 9000 };
	unsigned int expect[] = { 0, 20, 20, 30, 30, 40 };

	for (unsigned int i = 0; i < 6; i++) {
		ASSERT_EQ(CONVERGE_CONTINUE, converge_next(&self->s, &self->p, &r));
		EXPECT_EQ(expect[i], self->s.throttle) TH_LOG("round %u", i + 1);
	}
}

/*
 * Senders that yield to the guest (--nice): auto-converge's first step
 * ends the yielding, the throttle comes two high rounds later.  Catches
 * the vCPUs throttled while the migration still leaves them the CPU, and
 * the yielding ended without a trigger (or again, taking a step each time).
 */
TEST_F(conv, yielding_senders_stop_yielding_before_any_throttle)
{
	struct converge_round r = { .pages = 10000, .ns = SEC, .dirty_pages = 9000 };
	unsigned int expect[] = { 0, 0, 0, 20, 20, 30 };
	bool over[] = { false, true, true, true, true, true };

	self->p.yielding = true;
	for (unsigned int i = 0; i < 6; i++) {
		ASSERT_EQ(CONVERGE_CONTINUE, converge_next(&self->s, &self->p, &r));
		EXPECT_EQ(expect[i], self->s.throttle) TH_LOG("round %u", i + 1);
		EXPECT_EQ(over[i], self->s.yield_over) TH_LOG("round %u", i + 1);
	}
}

/* Without auto-converge nothing is done to converge: the senders keep yielding. */
TEST_F(conv, yielding_kept_without_auto_converge)
{
	struct converge_round r = { .pages = 10000, .ns = SEC, .dirty_pages = 9000 };

	self->p.yielding = true;
	self->p.auto_converge = false;
	for (unsigned int i = 0; i < 5; i++)
		converge_next(&self->s, &self->p, &r);
	EXPECT_FALSE(self->s.yield_over);
	EXPECT_EQ(0, self->s.throttle);
}

TEST_F(conv, throttle_capped)
{
	struct converge_round r = { .pages = 10000, .ns = SEC, .dirty_pages = 9000 };

	self->p.max_rounds = 1000;
	self->p.max_ns = UINT64_MAX;
	for (unsigned int i = 0; i < 100; i++)
		ASSERT_EQ(CONVERGE_CONTINUE, converge_next(&self->s, &self->p, &r));
	EXPECT_EQ(99, self->s.throttle);
}

TEST_F(conv, low_round_resets_trigger)
{
	struct converge_round hi = { .pages = 10000, .ns = SEC, .dirty_pages = 9000 };
	struct converge_round lo = { .pages = 10000, .ns = SEC, .dirty_pages = 4000 };

	converge_next(&self->s, &self->p, &hi);
	converge_next(&self->s, &self->p, &lo);
	converge_next(&self->s, &self->p, &hi);
	EXPECT_EQ(0, self->s.throttle);
}

TEST_F(conv, no_throttle_when_disabled)
{
	struct converge_round r = { .pages = 10000, .ns = SEC, .dirty_pages = 9000 };

	self->p.auto_converge = false;
	for (unsigned int i = 0; i < 5; i++)
		converge_next(&self->s, &self->p, &r);
	EXPECT_EQ(0, self->s.throttle);
}

TEST_F(conv, cancels_after_max_rounds)
{
	struct converge_round r = { .pages = 10000, .ns = SEC, .dirty_pages = 9000 };
	enum converge_action a = CONVERGE_CONTINUE;
	unsigned int n = 0;

	self->p.max_rounds = 5;
	while (a == CONVERGE_CONTINUE && n < 100) {
		a = converge_next(&self->s, &self->p, &r);
		n++;
	}
	EXPECT_EQ(CONVERGE_CANCEL, a);
	EXPECT_EQ(5, n);
	EXPECT_NE(NULL, strstr(self->s.why, "did not converge after 5 rounds"));
}

TEST_F(conv, cancels_after_max_time)
{
	struct converge_round r = { .pages = 10000, .ns = 40 * SEC, .dirty_pages = 9000 };
	enum converge_action a = CONVERGE_CONTINUE;
	unsigned int n = 0;

	self->p.max_ns = 100 * SEC;
	while (a == CONVERGE_CONTINUE && n < 100) {
		a = converge_next(&self->s, &self->p, &r);
		n++;
	}
	EXPECT_EQ(CONVERGE_CANCEL, a);
	EXPECT_EQ(3, n);
}

TEST_F(conv, stop_wins_over_bounds)
{
	struct converge_round r = { .pages = 10000, .ns = SEC, .dirty_pages = 100 };

	self->p.max_rounds = 1;
	EXPECT_EQ(CONVERGE_STOP_AND_COPY, converge_next(&self->s, &self->p, &r));
}

/*
 * A round that spent most of its time waiting for the cap: the final round
 * inside the bucket goes at the senders' own speed.  Catches using the
 * round's wall rate (1000 pages/s here: 2000 ms for 2000 pages).
 */
TEST_F(conv, final_round_inside_the_bucket_goes_at_sender_speed)
{
	/* 1000 pages of 4 KiB in 1 s, 900 ms of it the cap's waits; 4 MiB in the bucket. */
	struct converge_round r = { .pages = 1000, .ns = SEC, .uncapped_ns = 100 * MS,
				    .wire_bytes = 1000 * 4096, .cap_bps = 4096 * 1000,
				    .cap_tokens = 4 << 20, .dirty_pages = 1000 };

	EXPECT_EQ(CONVERGE_STOP_AND_COPY, converge_next(&self->s, &self->p, &r));
	EXPECT_EQ(1000, self->s.page_rate);
	EXPECT_EQ(100 * MS, self->s.expected_pages_ns);
	EXPECT_EQ(100 * MS, self->s.expected_downtime_ns);
}

/*
 * Past the bucket: 2000 pages, 1024 of them in the bucket, 976 at 1000
 * pages/s were the link no faster than the cap: 976 ms, over the limit, so
 * pre-copy goes on, although the final round (without the cap) would take
 * 200 ms.  Catches ending pre-copy on the uncapped figure (a pause past the
 * limit on a link that carries only the cap) and ignoring the bucket
 * (2000 ms).
 */
TEST_F(conv, precopy_ends_on_the_cap_though_the_final_round_goes_without)
{
	struct converge_round r = { .pages = 1000, .ns = SEC, .uncapped_ns = 100 * MS,
				    .wire_bytes = 1000 * 4096, .cap_bps = 4096 * 1000,
				    .cap_tokens = 1024 * 4096, .dirty_pages = 2000 };

	EXPECT_EQ(CONVERGE_CONTINUE, converge_next(&self->s, &self->p, &r));
	EXPECT_EQ(200 * MS, self->s.expected_pages_ns);
	EXPECT_EQ(976 * MS, self->s.bound_downtime_ns);
}

/*
 * The senders waited 60 ms for a CPU; the host gave 80 ms to other work,
 * 40 of it the guest's: half the waits were the guest's, and the pause
 * gives back 30 ms.  Catches taking off every wait (40 ms), none (100 ms),
 * or as much as the guest ran (60 ms: `make demo`'s destination decrypting
 * on the same CPU kept its share in the pause).
 */
TEST_F(conv, final_round_without_the_guest_gives_back_its_share_of_cpu_waits)
{
	struct converge_round r = { .pages = 1000, .ns = 100 * MS, .cpu_wait_ns = 60 * MS,
				    .guest_cpu_ns = 40 * MS, .others_cpu_ns = 80 * MS,
				    .dirty_pages = 1000 };

	converge_next(&self->s, &self->p, &r);
	EXPECT_EQ(70 * MS, self->s.expected_pages_ns);
}

/*
 * No waits for a CPU (a host with CPUs to spare), or no figure for the
 * host's CPU: the guest's CPU time changes nothing.  Catches taking off
 * the guest's time unconditionally.
 */
TEST_F(conv, final_round_without_cpu_waits_keeps_its_time)
{
	struct converge_round r = { .pages = 1000, .ns = 100 * MS, .guest_cpu_ns = 90 * MS,
				    .others_cpu_ns = 90 * MS, .dirty_pages = 1000 };

	converge_next(&self->s, &self->p, &r);
	EXPECT_EQ(100 * MS, self->s.expected_pages_ns);
	r.cpu_wait_ns = 50 * MS;
	r.others_cpu_ns = 0;
	converge_init(&self->s);
	converge_next(&self->s, &self->p, &r);
	EXPECT_EQ(100 * MS, self->s.expected_pages_ns);
}

/*
 * /proc/stat counts in ticks: a guest seen running more than everything
 * else together is everything else.  Catches a share above one (more
 * given back than waited: 0 ms).
 */
TEST_F(conv, final_round_guest_share_at_most_all)
{
	struct converge_round r = { .pages = 1000, .ns = 100 * MS, .cpu_wait_ns = 40 * MS,
				    .guest_cpu_ns = 95 * MS, .others_cpu_ns = 50 * MS,
				    .dirty_pages = 1000 };

	converge_next(&self->s, &self->p, &r);
	EXPECT_EQ(60 * MS, self->s.expected_pages_ns);
}

/*
 * A quarter of the last round's pages were zero markers: of 1000 pages
 * left, 750 are expected to carry content, at 100 us each.  Not after
 * round 0 (its zero pages are never-written RAM).  Catches counting zero
 * pages at a content page's cost (100 ms) and discounting after round 0.
 */
TEST_F(conv, final_round_counts_pages_with_content)
{
	struct converge_round r = { .pages = 750, .zero_pages = 250, .ns = 75 * MS,
				    .dirty_pages = 1000 };

	converge_next(&self->s, &self->p, &r);
	EXPECT_EQ(100 * MS, self->s.expected_pages_ns);
	converge_next(&self->s, &self->p, &r);
	EXPECT_EQ(75 * MS, self->s.expected_pages_ns);
}

/*
 * 60 of a round's 100 ms went finding its zero pages: the 1000 pages with
 * content took 40 us each, and so will the 1000 left.  With 50 ms of it
 * given back for the guest's CPU waits, the same 0.4 of what is left.
 * Catches the scan left in (100 ms; 50 with the waits) and the scan taken
 * off whole after the give-back (0 ms: nothing left to time).
 */
TEST_F(conv, final_round_leaves_out_finding_zero_pages)
{
	struct converge_round r = { .pages = 1000, .zero_pages = 9000, .ns = 100 * MS,
				    .scan_ns = 60 * MS, .dirty_pages = 1000 };

	converge_next(&self->s, &self->p, &r);
	EXPECT_EQ(40 * MS, self->s.expected_pages_ns);
	r.cpu_wait_ns = 50 * MS;
	r.guest_cpu_ns = r.others_cpu_ns = 50 * MS;
	converge_init(&self->s);
	converge_next(&self->s, &self->p, &r);
	EXPECT_EQ(20 * MS, self->s.expected_pages_ns);
}

TEST_HARNESS_MAIN
