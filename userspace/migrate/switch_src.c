// SPDX-License-Identifier: GPL-2.0
/*
 * The source's switchover, a two-phase handover (Documentation/migration.rst):
 *
 *   pause, final harvest, final round, vCPU and VM state, COMPLETE
 *   -> the destination checks and loads everything, runs nothing: READY
 *   -> the source commits (COMMIT): from here on it never resumes on its own
 *   -> the destination runs the guest: STARTED
 *
 * Before the commit every failure, and a cancel, resumes the VM here and
 * tells the destination to discard (ERROR CANCELLED).  After it, only the
 * destination's answer decides: STARTED (migrated), or ERROR DISCARDED
 * (it never ran it: resume here).  With neither, the source is in doubt:
 * it stays paused and asks the destination (QUERY, on a new connection)
 * until it learns the outcome, or the operator decides.
 *
 * Nothing in the pause is O(RAM): the final round is the pages left, the
 * check is the page digest (O(1)); only --verify-ram adds a pass over all
 * guest memory on both sides, reported as its own downtime part.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "migrate/failpoint.h"
#include "migrate/source_int.h"

#define NSEC_PER_MSEC	1000000ull

static uint64_t timeout_ms(const struct source *src, uint32_t ms)
{
	return ms ? ms : 3ull * src->o->net.timeout_ms;
}

/* VCPU_STATE for every vCPU and VM_STATE, on channel 0. */
static int send_state(struct source *src)
{
	struct sender *s0 = &src->snd[0];
	struct vm_state vs;
	uint64_t t;
	uint8_t *buf;
	int ret;

	/*
	 * A buffer of its own: the senders' message buffers may still be held
	 * by the kernel for a zero-copy send (their completions are waited
	 * for only once the guest runs there, release_pages()), and writing
	 * one would change bytes not yet on the wire.
	 */
	buf = malloc(WIRE_MAX_MSG);
	if (!buf) {
		source_fail(src, "no memory for the vCPU state");
		return -ENOMEM;
	}
	for (unsigned int i = 0; i < src->vm->nr_vcpus; i++) {
		struct vcpu_state st;

		t = vmm_now_ns();
		ret = vcpu_save_state(src->vm->vcpus[i], &st);
		src->rep->state_save_ns += vmm_now_ns() - t;
		if (ret) {
			source_fail(src, "saving vCPU %u state: %s", i, strerror(-ret));
			goto out;
		}
		ret = msg_send(s0->ch, buf, wire_enc_vcpu_state(&s0->st, buf, WIRE_MAX_MSG, &st));
		vcpu_state_release(&st);
		if (ret) {
			source_fail(src, "sending vCPU %u state: %s", i, strerror(-ret));
			goto out;
		}
	}
	t = vmm_now_ns();
	ret = vm_save_state(src->vm, &vs);
	src->rep->state_save_ns += vmm_now_ns() - t;
	if (ret) {
		source_fail(src, "saving VM state: %s", strerror(-ret));
		goto out;
	}

	ret = msg_send(s0->ch, buf, wire_enc_vm_state(&s0->st, buf, WIRE_MAX_MSG, &vs));
	if (ret)
		source_fail(src, "sending VM state: %s", strerror(-ret));
out:
	free(buf);
	return ret;
}

/* a[0..na) and the pages of log, both ascending, merged without duplicates into *out. */
static int merge_final(struct source *src, const uint64_t *a, uint64_t na,
		       const struct dirty_log *log, uint64_t **out, uint64_t *nout)
{
	struct dirty_log_iter it;
	uint64_t page, i = 0, n = 0;
	bool more;
	uint64_t *m = malloc((na + log->count + 1) * sizeof(*m));

	if (!m) {
		source_fail(src, "out of memory for the final round");
		return -ENOMEM;
	}
	dirty_log_iter_init(&it, log);
	more = dirty_log_next(&it, &page);
	while (i < na || more) {
		uint64_t v;

		if (more && (i == na || page <= a[i])) {
			v = page;
			if (i < na && a[i] == page)
				i++;
			more = dirty_log_next(&it, &page);
		} else {
			v = a[i++];
		}
		if (n == na + log->count) {
			free(m);
			source_fail(src, "dirty log: more set bits than its count");
			return -EOVERFLOW;
		}
		m[n++] = v;
	}
	*out = m;
	*nout = n;
	return 0;
}

/* Roughly the bytes of VCPU_STATE and VM_STATE (wire/state.c). */
static uint64_t state_bytes(const struct vm *vm)
{
	return vm->nr_vcpus * (2400ull + vm->xsave_size + 12 * VCPU_MAX_MSRS) + 400;
}

/*
 * The downtime's parts as they would be now, for pages left whose final
 * round takes pages_ns (converge.c; both 0: only the fixed parts, for the
 * convergence test).  What the
 * switchover does that pre-copy never does (pause the vCPUs, save their
 * state) was timed after round 0 (source_probe()); the rest comes
 * from the rounds and their ROUND_ACKs:
 *  - pause and final harvest: the mean kick after pre-copy's harvests
 *    (precopy()) and the quickest of those harvests;
 *  - pages: as converge.c expects the final round to go (the cap's
 *    bucket, the senders' speed without the cap's waits);
 *  - state: the probe's save, and its size at the link's rate;
 *  - RAM hash (--verify-ram): guest RAM at the hash speed, twice (both sides);
 *  - apply: loading the state there (as long as reading it here), and the
 *    destination's backlog for these pages: the last acknowledged round's
 *    ROUND_ACK came late by its round trip plus a backlog per page;
 *  - commit: COMPLETE, READY and COMMIT: one and a half round trips (the
 *    quickest round after round 0 to ROUND_ACK, at most TCP's smoothed
 *    round trip) and the thread handovers (the probe's pause).  Not the
 *    median of the small rounds': those ran beside the guest, which
 *    competes with both agents for the CPU, and the pause has no guest (on
 *    the test host the median made this part 5-15 times what it took);
 *  - resume: waking the parked vCPU threads there (the probe's resume).
 */
void source_estimate(struct source *src, uint64_t pages_ns, uint64_t pages,
		     struct migrate_downtime *e)
{
	const struct migrate_report *rep = src->rep;
	const struct migrate_round *last = rep->nr_rounds ? &rep->rounds[rep->nr_rounds - 1] : NULL;
	uint64_t bps = 0, drain = 0, ack_rtt, acked_pages = 0;
	struct transport_link lk;

	memset(e, 0, sizeof(*e));
	if (last && last->ns && last->wire_bytes > (1u << 20))
		bps = last->wire_bytes * 1000000000ull / last->ns;
	/*
	 * The final harvest collects only what the guest dirtied since the
	 * last one, moments before: the quickest harvest of pre-copy stands
	 * for it (run 16: the final collect took 0.1-0.9 ms, the last
	 * pre-copy harvest 0.1-17).  The pause takes what kicking the vCPUs
	 * took after each harvest, under the same load (precopy()), on
	 * average: one sample is as noisy as the pause itself (run 17: the
	 * last kick missed the pause by 3.0 ms on average, their mean by 2.5).
	 */
	e->harvest_ns = src->harvest_min_ns ? src->harvest_min_ns : last ? last->harvest_ns : 0;
	e->harvest_ns += src->kicks ? src->kick_sum_ns / src->kicks : rep->probe_pause_ns;
	if (src->o->bandwidth && (!bps || src->o->bandwidth < bps))
		bps = src->o->bandwidth;
	e->pages_ns = pages_ns;
	e->state_ns = rep->probe_save_ns;
	if (bps)
		e->state_ns += state_bytes(src->vm) * 1000000000ull / bps;
	if (src->o->verify_ram && src->hash_bps)
		e->ram_hash_ns = 2 * src->vm->mem_size * 1000000000ull / src->hash_bps;
	pthread_mutex_lock(&src->lock);
	ack_rtt = src->rtt_ns;
	/*
	 * A round's ack also waits for the destination's backlog, which with
	 * few rounds is in every sample (81-113 ms for a 6-9 ms commit): a
	 * round trip is never more than TCP's own smoothed measure of it.
	 * (TCP's least round trip, the link with nothing queued, was tried:
	 * 0.1-0.3 ms for commits of 5-18 ms, and the state part's wait for
	 * the destination's backlog, which a round's ack does see, went
	 * unestimated: `make demo` paused 405 ms against a 300 ms limit.)
	 */
	if (!transport_link(src->snd[0].ch, &lk) && lk.rtt_us &&
	    (!ack_rtt || lk.rtt_us * 1000ull < ack_rtt))
		ack_rtt = lk.rtt_us * 1000ull;
	if (src->news.acked) {
		unsigned int r = (src->news.acked - 1) & 1;

		if (src->round_sent_at[r] && src->news.ack_ns[r] > src->round_sent_at[r])
			drain = src->news.ack_ns[r] - src->round_sent_at[r];
		if (src->news.acked - 1 < rep->nr_rounds)
			acked_pages = rep->rounds[src->news.acked - 1].pages;
	}
	pthread_mutex_unlock(&src->lock);
	e->apply_ns = rep->probe_load_ns;
	if (drain > ack_rtt && acked_pages)
		e->apply_ns += (drain - ack_rtt) * pages / acked_pages;
	/* And a thread handing over to another at each end, as a pause does. */
	e->commit_ns = 3 * ack_rtt / 2 + rep->probe_pause_ns;
	/* The destination's threads wait parked, as the probe's resume finds them. */
	e->resume_ns = rep->probe_resume_ns;
	e->total_ns = e->harvest_ns + e->pages_ns + e->state_ns + e->ram_hash_ns + e->apply_ns +
		      e->commit_ns + e->resume_ns;
}

/* One probe's timings: pausing, saving, of the save the reads, resuming. */
struct probe_times {
	uint64_t pause_ns, save_ns, reads_ns, resume_ns;
};

static int probe_once(struct source *src, struct probe_times *pt);

/* Long enough for the vCPU threads to be back in KVM_RUN. */
#define PROBE_GAP_US	20000

/*
 * Time what only the switchover does, before round 0: pause the vCPUs,
 * save every vCPU's and the VM's state (and encode it), resume.  The guest
 * stalls that long (rep->probe_ns, reported).
 */
int source_probe(struct source *src)
{
	struct migrate_report *rep = src->rep;
	struct probe_times best = { UINT64_MAX, UINT64_MAX, UINT64_MAX, UINT64_MAX }, pt;
	uint64_t stall = 0;
	int ret = 0;

	/*
	 * Twice, keeping the quicker of each: the first pause of a VM pays
	 * once-only costs that the switchover's will not.  The guest runs in
	 * between, as it does before the switchover.  (The save once ran the
	 * vCPU from this thread to finish its I/O, an RCU grace period in
	 * KVM, 8-16 ms in the test host; the vCPU's thread does it now, as
	 * it parks: runner.c.)
	 */
	for (int i = 0; i < 2 && !ret; i++) {
		if (i)
			usleep(PROBE_GAP_US);
		ret = probe_once(src, &pt);
		if (pt.pause_ns < best.pause_ns)
			best.pause_ns = pt.pause_ns;
		if (pt.save_ns < best.save_ns)
			best.save_ns = pt.save_ns;
		if (pt.reads_ns < best.reads_ns)
			best.reads_ns = pt.reads_ns;
		/* No once-only cost in waking parked threads: the mean of both. */
		best.resume_ns = i ? (best.resume_ns + pt.resume_ns) / 2 : pt.resume_ns;
		stall += rep->probe_ns;
	}
	rep->probe_pause_ns = best.pause_ns;
	rep->probe_save_ns = best.save_ns;
	rep->probe_load_ns = best.reads_ns;
	rep->probe_resume_ns = best.resume_ns;
	rep->probe_ns = stall;
	return ret;
}

static int probe_once(struct source *src, struct probe_times *pt)
{
	uint64_t t0 = vmm_now_ns(), t1, t2, t, reads = 0;
	struct wire_stream scratch = src->probe_st;
	struct vm_state vs;
	uint8_t *buf;
	int ret;

	memset(pt, 0, sizeof(*pt));
	buf = malloc(WIRE_MAX_MSG);
	if (!buf)
		return -ENOMEM;
	ret = vm_runner_pause(src->runner);
	t1 = vmm_now_ns();
	/* A save that fails with the vCPUs paused: they must run again. */
	if (!ret)
		ret = migrate_failpoint("src-probe");
	for (unsigned int i = 0; !ret && i < src->vm->nr_vcpus; i++) {
		struct vcpu_state st;

		/* The reads (not the encoding) stand for the loads there. */
		t = vmm_now_ns();
		ret = vcpu_save_state(src->vm->vcpus[i], &st);
		reads += vmm_now_ns() - t;
		if (!ret) {
			/* Encoded on a copy of the stream: nothing is sent. */
			ssize_t len = wire_enc_vcpu_state(&scratch, buf, WIRE_MAX_MSG, &st);

			ret = len < 0 ? (int)len : 0;
			vcpu_state_release(&st);
		}
	}
	t = vmm_now_ns();
	if (!ret)
		ret = vm_save_state(src->vm, &vs);
	t2 = vmm_now_ns();
	reads += t2 - t;
	/* As the destination's commit resumes its parked threads (switch_dst.c). */
	vm_runner_resume_wait(src->runner, 1000, &pt->resume_ns);
	free(buf);
	pt->pause_ns = t1 - t0;
	pt->save_ns = t2 - t1;
	pt->reads_ns = reads;
	src->rep->probe_ns = vmm_now_ns() - t0;
	return ret;
}

/*
 * Wait until done(news, arg), the destination is gone, ms passed, or (cancellable)
 * the operator cancelled.  0, -ENOTCONN, -ETIMEDOUT or -ECANCELED.
 */
static int wait_news(struct source *src, bool (*done)(const struct dest_news *, uint32_t),
		     uint32_t arg, uint64_t ms, bool cancellable)
{
	uint64_t deadline = vmm_now_ns() + ms * NSEC_PER_MSEC;
	int ret = -ETIMEDOUT;

	pthread_mutex_lock(&src->lock);
	for (;;) {
		struct timespec ts;

		if (done(&src->news, arg)) {
			ret = 0;
			break;
		}
		if (src->news.gone) {
			ret = -ENOTCONN;
			break;
		}
		if (vmm_now_ns() >= deadline)
			break;
		if (cancellable) {
			pthread_mutex_unlock(&src->lock);
			if (source_cancelled(src))
				return -ECANCELED;
			pthread_mutex_lock(&src->lock);
		}
		ts = vmm_deadline_ms(100);
		pthread_cond_timedwait(&src->cond_news, &src->lock, &ts);
	}
	pthread_mutex_unlock(&src->lock);
	return ret;
}

static bool round_acked(const struct dest_news *n, uint32_t round)
{
	return n->acked > round;
}

int source_wait_acked(struct source *src, uint32_t round, uint64_t ms)
{
	return wait_news(src, round_acked, round, ms, true);
}

static bool is_ready(const struct dest_news *n, uint32_t unused)
{
	return n->ready;
}

static bool is_started(const struct dest_news *n, uint32_t unused)
{
	return n->started;
}

/* Before the commit: nothing runs there, so the guest goes on here. */
static int give_back(struct source *src, int ret, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static int give_back(struct source *src, int ret, const char *fmt, ...)
{
	char why[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(why, sizeof(why), fmt, ap);
	va_end(ap);
	src->rep->outcome = MIGRATE_NOT_MIGRATED;
	if (!src->abort)
		source_cancel(src, why);
	snprintf(src->rep->outcome_why, sizeof(src->rep->outcome_why),
		 "not committed: the VM resumes here");
	source_log(src, "%s; the VM resumes here (nothing was committed)", src->abort_text);
	return ret ? ret : -ECANCELED;
}

/*
 * The guest runs there: wait, outside the downtime, for the kernel to let
 * go of every page it was lent (zero copy).  Not inside the pause: the
 * pages cannot change until the commit (the source resumes only when
 * nothing was committed, and then the destination discards), and the
 * kernel holds its own reference to each page it was lent, so the VM may
 * go away whenever.  A completion arrives once TCP has the peer's ACK for
 * the page's bytes: in the pause, that wait held COMPLETE back by about a
 * round trip (and the receiver's delayed ACK) on a link where zero copy
 * works.  (Loopback and veth copy instead, and a channel whose sends all
 * came back copied stops asking: there it was already nothing.)
 * Reported, never fatal: the guest is no longer ours.
 */
static void release_pages(struct source *src)
{
	uint64_t t = vmm_now_ns();

	for (unsigned int i = 0; i < src->n; i++)
		if (transport_flush(src->snd[i].ch))
			source_log(src, "channel %u: waiting for zero-copy completions: %s", i,
				   transport_error());
	src->rep->release_ns = vmm_now_ns() - t;
}

/* STARTED arrived: the downtime, pause to the destination's resume. */
static void account_started(struct source *src, uint64_t t_pause, uint64_t t_complete,
			    uint64_t t_commit)
{
	struct migrate_downtime *d = &src->rep->down;
	const struct dest_news *n = &src->news;
	uint64_t rt, owd = 0, flights;
	struct transport_link lk;

	migrate_report_apply(src->rep, n->rd.wait_ns, n->rd.check_ns, n->rd.restore_ns);
	d->resume_ns = n->sd.resume_ns;
	/*
	 * COMMIT's one-way delay: half of what its round trip did not spend
	 * there.  STARTED can leave well after the resume: the vCPU thread
	 * woken there may hold the sending thread's CPU, running the guest
	 * (7 ms in the test host, traced), and the destination says how long
	 * it held COMMIT (hold_ns).  A destination that does not: half of
	 * what the round trip did not spend resuming, at most half of TCP's
	 * smoothed round trip.
	 */
	rt = n->started_at - t_commit;
	if (n->sd.hold_ns) {
		if (rt > n->sd.hold_ns)
			owd = (rt - n->sd.hold_ns) / 2;
	} else {
		if (rt > d->resume_ns)
			owd = (rt - d->resume_ns) / 2;
		if (!transport_link(src->snd[0].ch, &lk) && lk.rtt_us &&
		    lk.rtt_us * 500ull < owd)
			owd = lk.rtt_us * 500ull;
	}
	/* COMPLETE and READY in flight, the decision, and COMMIT in flight. */
	/* Stamped before COMPLETE went out, READY comes later: the clamp is a guard. */
	flights = n->ready_at > t_complete ? n->ready_at - t_complete : 0;
	flights = flights > d->apply_ns ? flights - d->apply_ns : 0;
	d->commit_ns = flights + (t_commit - n->ready_at) + owd;
	src->rep->commit_flights_ns = flights;
	src->rep->commit_decide_ns = t_commit - n->ready_at;
	src->rep->commit_owd_ns = owd;
	src->rep->commit_hold_ns = n->sd.hold_ns;
	d->total_ns = (t_commit - t_pause) + owd + d->resume_ns;
	src->rep->downtime_ns = d->total_ns;
	src->rep->at_ns[MIGRATE_AT_READY] = n->ready_at;
	src->rep->at_ns[MIGRATE_AT_STARTED] = n->started_at;
	src->rep->digest = n->rd.digest;
}

/*
 * In doubt: COMMIT went out and no answer came.  The guest may be running
 * there or may never run there; only the destination knows, and it keeps
 * the answer.  Stay paused; ask every resolve_every_ms, or when the
 * operator says so; take the operator's word if they know better.
 */
static int in_doubt(struct source *src, const char *why)
{
	struct migrate_ctl *c = src->ctl;
	const struct migrate_source_opts *o = src->o;
	struct migrate_report *rep = src->rep;
	unsigned int asked = 0;

	rep->outcome = MIGRATE_UNCERTAIN;
	snprintf(rep->outcome_why, sizeof(rep->outcome_why), "committed, then %.200s", why);
	source_set_phase(src, MIGRATE_IN_DOUBT);
	source_log(src, "IN DOUBT: committed, then %s. The VM stays paused here; asking the destination (session %016llx) every %u ms. Operator: `vmdirty migrate SOCKET resolve` asks now, `force-resume` resumes here (only if the destination is known never to have run it), `give-up` stops asking",
		   why, (unsigned long long)src->session, o->resolve_every_ms);
	for (;;) {
		bool now, force, give_up;
		struct timespec ts;

		pthread_mutex_lock(&c->lock);
		ts = vmm_deadline_ms(o->resolve_every_ms);
		while (asked && !c->resolve_now && !c->force_resume && !c->give_up)
			if (pthread_cond_timedwait(&c->cond, &c->lock, &ts))
				break;
		now = c->resolve_now;
		force = c->force_resume;
		give_up = c->give_up;
		c->resolve_now = false;
		pthread_mutex_unlock(&c->lock);
		asked++;

		/* A late answer on the old connection settles it too. */
		pthread_mutex_lock(&src->lock);
		if (src->news.started || src->news.discarded) {
			bool started = src->news.started;

			pthread_mutex_unlock(&src->lock);
			rep->outcome = started ? MIGRATE_MIGRATED : MIGRATE_NOT_MIGRATED;
			snprintf(rep->outcome_why, sizeof(rep->outcome_why),
				 "in doubt, then the destination's late %s", started ? "STARTED" :
				 "DISCARDED");
			source_log(src, "resolved: %s", rep->outcome_why);
			return started ? 0 : -ECANCELED;
		}
		pthread_mutex_unlock(&src->lock);
		if (give_up) {
			snprintf(rep->outcome_why, sizeof(rep->outcome_why),
				 "in doubt, and the operator stopped asking: the VM is paused here, and may run there");
			source_log(src, "%s", rep->outcome_why);
			return -EINPROGRESS;
		}
		if (force) {
			rep->outcome = MIGRATE_NOT_MIGRATED;
			snprintf(rep->outcome_why, sizeof(rep->outcome_why),
				 "in doubt, resumed here on the operator's word that the destination never ran it");
			source_log(src, "%s", rep->outcome_why);
			return -ECANCELED;
		}
		for (unsigned int i = 0; i < o->nr_to; i++) {
			uint32_t out = 0;
			int ret = migrate_query(o->to[i], &o->net, src->session, true, &out);

			if (ret) {
				source_log(src, "in doubt: asking %s: %s", o->to[i], strerror(-ret));
				continue;
			}
			source_log(src, "in doubt: %s says the session is %s%s", o->to[i],
				   wire_outcome_name(out), now ? " (asked by the operator)" : "");
			if (out == WIRE_OUTCOME_RUNNING) {
				rep->outcome = MIGRATE_MIGRATED;
				snprintf(rep->outcome_why, sizeof(rep->outcome_why),
					 "in doubt, then the destination answered: running there");
				return 0;
			}
			if (out == WIRE_OUTCOME_DISCARDED) {
				rep->outcome = MIGRATE_NOT_MIGRATED;
				snprintf(rep->outcome_why, sizeof(rep->outcome_why),
					 "in doubt, then the destination answered: discarded, never ran there");
				return -ECANCELED;
			}
		}
	}
}

int source_switchover(struct source *src, const uint64_t *left, uint64_t nleft, uint32_t round)
{
	struct migrate_report *rep = src->rep;
	struct migrate_downtime *d = &rep->down;
	struct sender *s0 = &src->snd[0];
	struct migrate_round r = { .final = true };
	struct wire_complete c = { .last_round = round, .nr_vcpus = src->vm->nr_vcpus };
	struct wire_commit cm = { .session_id = src->session };
	struct vm_runner_stats rs;
	struct dirty_log log;
	uint64_t *final = NULL, nfinal, t_pause, t, t_complete, t_commit;
	uint8_t buf[256];
	bool cancel, gone;
	int ret;

	/* Said before the pause: the guest still runs meanwhile. */
	source_set_phase(src, MIGRATE_SWITCHING);
	source_log(src, "switchover: pausing the vCPUs, %llu pages left (expected downtime %.0f ms)",
		   (unsigned long long)nleft, rep->expected.total_ns / 1e6);
	t_pause = vmm_now_ns();
	rep->at_ns[MIGRATE_AT_PAUSE] = t_pause;
	ret = vm_runner_pause(src->runner);
	if (ret)
		return give_back(src, ret, "pausing the vCPUs: %s", strerror(-ret));
	rep->pause_ns = vmm_now_ns() - t_pause;

	vm_runner_stats(src->runner, &rs);
	rep->guest_ops_end = rs.ops;

	ret = source_harvest(src, &log);
	if (ret)
		return give_back(src, ret, "%s", src->abort_text);
	r.harvest_ns = log.total_ns;
	rep->collect_ns = log.total_ns;
	d->harvest_ns = vmm_now_ns() - t_pause;
	ret = merge_final(src, left, nleft, &log, &final, &nfinal);
	if (ret)
		return give_back(src, ret, "%s", src->abort_text);

	migrate_failpoint("src-final-round");
	/*
	 * --bandwidth paces pre-copy beside a running guest; in the pause every
	 * millisecond is downtime, so the final round goes as fast as the link
	 * takes it, as QEMU's stop-and-copy does (migration_completion() lifts
	 * max-bandwidth).  Pre-copy ended only once the pages left fit in the
	 * limit even at the cap (converge.c).
	 */
	ratelimit_lift(&src->rl);
	/*
	 * The final round: no guest runs to leave the CPU to, and every
	 * millisecond is downtime.
	 */
	pthread_mutex_lock(&src->lock);
	src->job_nice = 0;
	pthread_mutex_unlock(&src->lock);
	/*
	 * The vCPUs are paused: every batch is exactly what was hashed.  The
	 * codecs keep the choice the estimate was made with (codec.h): with
	 * zstd on two channels, a compression probe in the pause turned a
	 * final round expected at 46-75 ms of raw pages into 115-232 ms.
	 */
	for (unsigned int i = 0; i < src->n; i++) {
		wire_tx_set_stable(src->snd[i].tx, true);
		wire_tx_hold_choice(src->snd[i].tx, true);
	}
	t = vmm_now_ns();
	ret = source_round(src, round, final, nfinal, &r);
	free(final);
	d->pages_ns = vmm_now_ns() - t;
	/* As each sender read it in its own thread (sender_nice()). */
	for (unsigned int i = 0; i < src->n; i++)
		rep->nice_final[i] = src->snd[i].nice;
	if (!ret)
		ret = source_add_round(rep, &r);
	if (ret)
		return give_back(src, ret, "%s", src->abort_text);
	if (source_cancelled(src))
		return give_back(src, -ECANCELED, "%s", src->ctl->why[0] ? src->ctl->why :
				 "cancelled on request");

	migrate_failpoint("src-state");
	t = vmm_now_ns();
	ret = send_state(src);
	d->state_ns = vmm_now_ns() - t;
	if (ret)
		return give_back(src, ret, "%s", src->abort_text);

	t = vmm_now_ns();
	if (s0->st.features & WIRE_FEAT_RAM_HASH) {
		struct wire_region reg[VM_MAX_SLOTS];
		long cpus = sysconf(_SC_NPROCESSORS_ONLN);

		migrate_vm_regions(src->vm, reg);
		/* Opt-in, and O(RAM): every CPU helps. */
		ret = wire_ram_hash(src->vm->mem, reg, src->vm->nr_slots, cpus > 0 ? cpus : 1,
				    &c.ram_hash);
		if (ret)
			return give_back(src, ret, "hashing guest RAM: %s", strerror(-ret));
		c.flags |= WIRE_COMPLETE_HASH;
		rep->ram_hash = c.ram_hash;
	}
	d->ram_hash_ns = vmm_now_ns() - t;
	for (unsigned int i = 0; i < src->n; i++) {
		c.total_pages += src->snd[i].st.tx_pages;
		c.total_bytes += src->snd[i].st.tx_bytes;
	}
	c.digest = wire_digest_sum(&src->digest);
	rep->digest = c.digest;
	/*
	 * Before the send: READY can arrive (the control thread stamps it)
	 * before this thread runs again after it.  In the test host it did,
	 * and the commit part came out 2^64 ns less a little.
	 */
	t_complete = vmm_now_ns();
	rep->at_ns[MIGRATE_AT_COMPLETE] = t_complete;
	ret = msg_send(s0->ch, buf, wire_enc_complete(&s0->st, buf, sizeof(buf), &c));
	if (ret)
		return give_back(src, ret, "sending COMPLETE: %s", transport_error());
	migrate_failpoint("src-complete");

	/* Phase one: the destination loads everything and runs nothing. */
	ret = wait_news(src, is_ready, 0, timeout_ms(src, src->o->ready_timeout_ms), true);
	if (ret == -ECANCELED)
		return give_back(src, ret, "%s", src->ctl->why[0] ? src->ctl->why :
				 "cancelled on request");
	if (ret == -ENOTCONN)
		return give_back(src, ret, "before READY: %s", src->news.gone_why);
	if (ret)
		return give_back(src, ret, "no READY from the destination within %llu ms",
				 (unsigned long long)timeout_ms(src, src->o->ready_timeout_ms));
	rep->hash_checked = src->news.rd.flags & WIRE_READY_HASH_CHECKED;
	migrate_failpoint("src-ready");

	/*
	 * Phase two: commit.  Under the operator's lock, so that a cancel
	 * either wins before this point or finds it done.
	 */
	pthread_mutex_lock(&src->ctl->lock);
	cancel = src->ctl->cancel;
	pthread_mutex_lock(&src->lock);
	gone = src->news.gone;
	pthread_mutex_unlock(&src->lock);
	if (!cancel && !gone)
		src->ctl->phase = MIGRATE_COMMITTED;
	pthread_cond_broadcast(&src->ctl->cond);
	pthread_mutex_unlock(&src->ctl->lock);
	if (cancel)
		return give_back(src, -ECANCELED, "%s", src->ctl->why[0] ? src->ctl->why :
				 "cancelled on request");
	if (gone)
		return give_back(src, -ENOTCONN, "after READY: %s", src->news.gone_why);
	t_commit = vmm_now_ns();
	rep->at_ns[MIGRATE_AT_COMMIT] = t_commit;
	ret = msg_send(s0->ch, buf, wire_enc_commit(&s0->st, buf, sizeof(buf), &cm));
	/* Said once COMMIT is out: the guest waits for it, not for the log. */
	source_log(src, "committed: the guest is the destination's to run (session %016llx)",
		   (unsigned long long)src->session);
	migrate_failpoint("src-commit");
	if (ret)
		return in_doubt(src, "sending COMMIT failed");

	ret = wait_news(src, is_started, 0, timeout_ms(src, src->o->commit_timeout_ms), false);
	if (!ret) {
		account_started(src, t_pause, t_complete, t_commit);
		release_pages(src);
		rep->outcome = MIGRATE_MIGRATED;
		snprintf(rep->outcome_why, sizeof(rep->outcome_why),
			 "committed; the destination resumed the guest");
		return 0;
	}
	if (src->news.discarded) {
		rep->outcome = MIGRATE_NOT_MIGRATED;
		snprintf(rep->outcome_why, sizeof(rep->outcome_why),
			 "committed, but the destination had discarded its copy: %.180s",
			 src->news.gone_why);
		source_log(src, "%s; the VM resumes here", rep->outcome_why);
		return -ECANCELED;
	}
	if (ret == -ENOTCONN)
		return in_doubt(src, src->news.gone_why);
	return in_doubt(src, "no STARTED within the timeout");
}
