// SPDX-License-Identifier: GPL-2.0
/*
 * Pre-copy convergence, the way QEMU decides it: stop when the pages left
 * would take less than the downtime limit at the rate the link has been
 * carrying pages, no faster than the cap, plus the switchover's fixed
 * costs (which QEMU leaves out); throttle the vCPUs when the guest dirtied
 * more than half of what a round could send, two rounds running (senders
 * that yield to the guest stop yielding first); give up past the bounds.
 * The final round itself goes without the cap.
 */
#include <stdio.h>
#include <string.h>

#include "migrate/converge.h"

#define NSEC_PER_SEC 1000000000ull

void converge_params_default(struct converge_params *p)
{
	*p = (struct converge_params){
		.downtime_ns = CONVERGE_DOWNTIME_MS * 1000000ull,
		.max_rounds = CONVERGE_MAX_ROUNDS,
		.max_ns = CONVERGE_MAX_SECONDS * NSEC_PER_SEC,
		.auto_converge = true,
		.throttle_initial = CONVERGE_THROTTLE_INITIAL,
		.throttle_increment = CONVERGE_THROTTLE_INCREMENT,
		.throttle_max = CONVERGE_THROTTLE_MAX,
		.trigger_pct = CONVERGE_TRIGGER_PCT,
		.shrink_rounds = CONVERGE_SHRINK_ROUNDS,
	};
}

void converge_init(struct converge_state *s)
{
	memset(s, 0, sizeof(*s));
}

static uint64_t div_round_up(uint64_t a, uint64_t b)
{
	return b ? (a + b - 1) / b : 0;
}

/*
 * A round's sending time as it would be with the guest paused.  Where the
 * senders waited for a CPU, part of the wait was for the guest's vCPUs,
 * which in the pause run no more: the guest's share of the CPU time the
 * host gave to anything but the senders.  The rest (the destination
 * decrypting on the same host, other work) stays.  A host with CPUs to
 * spare has no waits: nothing changes.  Without this, where the guest and
 * both agents share one CPU, the final round was expected at 1.25-1.45
 * times what it took; with all of the waits taken off (at most the guest's
 * CPU time), `make demo` (kTLS, the destination decrypting beside the
 * source) expected 236 ms for a final round of 451.
 */
static uint64_t busy_paused(const struct converge_round *r, uint64_t busy)
{
	uint64_t guest = r->guest_cpu_ns, freed;

	if (!r->others_cpu_ns || !r->cpu_wait_ns)
		return busy;
	if (guest > r->others_cpu_ns)
		guest = r->others_cpu_ns;
	freed = (uint64_t)((unsigned __int128)r->cpu_wait_ns * guest / r->others_cpu_ns);
	return busy > freed ? busy - freed : 0;
}

/*
 * Of a round's time, the share its pages with content took: finding the
 * zero pages (reading all of each) is the rest, and a final round has few.
 * Round 0 is mostly zero pages (0.95 of them in the test host, RAM the
 * guest never wrote but backed by a huge page it touched): timed at round
 * 0's time per page with content, a final round right after it was
 * expected at 3.5-7 times what it took.  What the guest's CPU waits gave
 * back is taken in the same share.
 */
static uint64_t with_content_ns(const struct converge_round *r, uint64_t busy, uint64_t uncapped)
{
	uint64_t scan = r->scan_ns < uncapped ? r->scan_ns : uncapped;

	if (!scan)
		return busy;
	return (uint64_t)((unsigned __int128)busy * (uncapped - scan) / uncapped);
}

/*
 * The final round of n pages goes without the cap (switch_src.c), as fast
 * as the senders went last round when they did not wait for the cap.
 * (Timed at the last round's wall rate instead, a final round inside the
 * cap's bucket was estimated at 2-6 times what it took.)
 */
static uint64_t final_round_ns(const struct converge_state *s, uint64_t n)
{
	return div_round_up(n * s->page_ps, 1000);
}

/*
 * The same were the link no faster than the cap: the bucket lets its
 * tokens out at once and the rest goes at the cap.  Pre-copy ends on this
 * bound, as QEMU's does (its threshold is max-bandwidth times the limit),
 * so that the pause stays inside the limit on a link that carries only
 * what the operator allowed.
 */
static uint64_t final_round_bound_ns(const struct converge_state *s,
				     const struct converge_round *r, uint64_t n)
{
	uint64_t work = final_round_ns(s, n), bytes = n * s->page_bytes, capped = 0;

	if (r->cap_bps && bytes > r->cap_tokens)
		capped = div_round_up((bytes - r->cap_tokens) * NSEC_PER_SEC, r->cap_bps);
	return work > capped ? work : capped;
}

/*
 * Of the pages left, those with content, at the share of the last round:
 * a page found zero goes as a 16-byte marker and costs next to nothing,
 * while the time per page is of pages with content (23% of the random
 * writer's dirty pages were zero: the final round was expected that much
 * too long).  Not after round 0, whose zero pages are all the memory the
 * guest never wrote: nothing like what it dirties.
 */
static uint64_t with_content(const struct converge_state *s, const struct converge_round *r)
{
	uint64_t all = r->pages + r->zero_pages;

	if (s->round < 2 || !all)
		return r->dirty_pages;
	return div_round_up(r->dirty_pages * r->pages, all);
}

/*
 * The rest fits: one more round, when it is cheap and the pause shrinks
 * with it.  QEMU stops here; a round in which the guest dirtied at most
 * half of what it sent leaves the next at most about half as many pages,
 * so the pause loses most of its pages part for one short round more
 * (stopping at the first fit, the test host's pauses were 1.1-2 times
 * QEMU's best, their pages part 40-80% of them).  Not when the fixed
 * costs make most of the pause, nor past the bounds.
 */
static bool shrink_more(const struct converge_state *s, const struct converge_params *p,
			const struct converge_round *r)
{
	uint64_t sent = r->pages + r->zero_pages;

	if (s->shrink_rounds >= p->shrink_rounds || s->round + 1 >= p->max_rounds ||
	    s->elapsed_ns >= p->max_ns || !sent || !r->dirty_pages)
		return false;
	if (r->dirty_pages * 100 > sent * CONVERGE_SHRINK_PCT)
		return false;
	return s->expected_pages_ns * CONVERGE_PAGES_SHARE >= s->expected_downtime_ns;
}

enum converge_action converge_next(struct converge_state *s, const struct converge_params *p,
				   const struct converge_round *r)
{
	s->round++;
	s->elapsed_ns += r->ns;

	/* A round too short to time says nothing new about the link. */
	if (r->pages && r->ns >= 1000) {
		uint64_t uncapped = r->uncapped_ns && r->uncapped_ns < r->ns ? r->uncapped_ns : r->ns;
		uint64_t busy = with_content_ns(r, busy_paused(r, uncapped), uncapped);

		s->page_rate = r->pages * NSEC_PER_SEC / r->ns;
		s->page_ps = div_round_up(busy * 1000, r->pages);
		s->page_bytes = div_round_up(r->wire_bytes, r->pages);
	}
	if (s->page_rate) {
		uint64_t n = with_content(s, r);

		s->expected_pages_ns = final_round_ns(s, n);
		s->expected_downtime_ns = r->fixed_ns + s->expected_pages_ns;
		s->bound_downtime_ns = r->fixed_ns + final_round_bound_ns(s, r, n);
	} else {
		s->expected_pages_ns = 0;
		s->expected_downtime_ns = r->dirty_pages ? UINT64_MAX : r->fixed_ns;
		s->bound_downtime_ns = s->expected_downtime_ns;
	}

	s->shrinking = false;
	if (s->bound_downtime_ns <= p->downtime_ns) {
		if (!shrink_more(s, p, r))
			return CONVERGE_STOP_AND_COPY;
		s->shrink_rounds++;
		s->shrinking = true;
		return CONVERGE_CONTINUE;
	}
	/*
	 * The fixed costs alone exceed the limit: no number of rounds meets
	 * it.  Stop once the pages add little to them, and say so.
	 */
	if (r->fixed_ns >= p->downtime_ns &&
	    s->bound_downtime_ns - r->fixed_ns <= p->downtime_ns / 10) {
		s->fixed_over = true;
		return CONVERGE_STOP_AND_COPY;
	}

	if (s->round >= p->max_rounds || s->elapsed_ns >= p->max_ns) {
		snprintf(s->why, sizeof(s->why),
			 "did not converge after %u rounds in %.1f s: %llu pages left would take %llu ms at %llu pages/s, limit %llu ms",
			 s->round, s->elapsed_ns / 1e9, (unsigned long long)r->dirty_pages,
			 (unsigned long long)(s->bound_downtime_ns / 1000000),
			 (unsigned long long)s->page_rate,
			 (unsigned long long)(p->downtime_ns / 1000000));
		return CONVERGE_CANCEL;
	}

	/*
	 * The guest dirtied more than trigger_pct of what the round sent.
	 * Senders that leave the CPU to the guest (--nice) stop doing so
	 * first: slowing the guest while the migration yields to it works
	 * against itself (in the test host, where the guest and both agents
	 * share two CPUs, --nice 10 at "near" ended pre-copy throttled by 20%).
	 */
	if (p->auto_converge && r->dirty_pages * 100 > r->pages * p->trigger_pct) {
		if (++s->high_rounds >= 2) {
			s->high_rounds = 0;
			if (p->yielding && !s->yield_over)
				s->yield_over = true;
			else if (!s->throttle)
				s->throttle = p->throttle_initial;
			else
				s->throttle += p->throttle_increment;
			if (s->throttle > p->throttle_max)
				s->throttle = p->throttle_max;
		}
	} else {
		s->high_rounds = 0;
	}
	return CONVERGE_CONTINUE;
}
