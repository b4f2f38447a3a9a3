/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The source side's shared state: the migration (source.c), its channel
 * senders (sender.c) and the switchover (switch_src.c).
 *
 * Threads: the main thread runs the rounds and the switchover; one sender
 * thread per channel encodes and sends the pages of the current round; one
 * control receiver reads channel 0 for what the destination says (ERROR,
 * ROUND_ACK, READY, STARTED) and records it under src->lock.  A round is
 * handed to the senders under src->lock (job_gen bumps, cond_work wakes
 * them), they claim batches of its page list with an atomic cursor, end the
 * round on their channel with ROUND_END and report back (busy drops to 0,
 * cond_done).  Between rounds the senders sleep, and only then does the main
 * thread send on channel 0 itself (state, COMPLETE, COMMIT) or flush the
 * channels.
 *
 * Lock order: ctl->lock (the operator's) before src->lock; neither is held
 * across a send or a receive.
 */
#ifndef VMDIRTY_SOURCE_INT_H
#define VMDIRTY_SOURCE_INT_H

#include <pthread.h>
#include <stdatomic.h>

#include "migrate/migrate.h"
#include "migrate/msgio.h"
#include "migrate/ratelimit.h"
#include "wire/digest.h"

/* Messages a sender keeps in flight (zero copy holds them until completion). */
#define SENDER_INFLIGHT	8

struct source;

struct sender {
	struct source *src;
	unsigned int idx;
	pthread_t thread;
	bool started;
	struct transport_chan *ch;
	struct wire_stream st;
	struct wire_tx *tx;
	struct wire_txmsg msg[SENDER_INFLIGHT];
	transport_ticket_t ticket[SENDER_INFLIGHT];
	unsigned int next;
	uint8_t ctl[256];		/* ROUND_END */
	uint64_t gen;			/* last job taken */
	unsigned int asked;		/* the nice value it last asked for */
	int nice;			/* what it runs at (getpriority) */
	uint32_t link_delivered;	/* TCP's delivered at the last link sample */
	/* This round, read by the main thread after the round. */
	uint64_t pages, zero_pages, wire_bytes;
	struct migrate_round_time time;
};

/* What the destination said on channel 0, as the control receiver saw it. */
struct dest_news {
	uint32_t acked;			/* rounds acknowledged (ROUND_ACK round + 1) */
	uint64_t ack_ns[2];		/* when the last two ROUND_ACKs arrived */
	bool ready, started, discarded;
	struct wire_ready rd;
	struct wire_started sd;
	uint64_t ready_at, started_at;	/* CLOCK_MONOTONIC */
	bool gone;			/* channel 0 failed or the peer sent ERROR */
	char gone_why[WIRE_MAX_TEXT + 128];
};

struct source {
	struct vm *vm;
	struct vm_runner *runner;
	struct tracker *trk;
	const struct migrate_source_opts *o;
	struct migrate_report *rep;
	struct migrate_ctl *ctl;	/* o->ctl, or own_ctl */
	struct migrate_ctl own_ctl;
	uint64_t session;

	unsigned int n;
	struct sender *snd;		/* n senders, channel i = snd[i] */
	struct ratelimit rl;
	struct wire_digest digest;	/* every page as last sent */
	uint64_t rtt_ns;		/* the quickest round trip seen: round sent to ROUND_ACK */
	uint64_t harvest_min_ns;	/* the quickest harvest after the first (0: none yet) */
	uint64_t kick_sum_ns;		/* the kicks after pre-copy's harvests (precopy()) */
	unsigned int kicks;
	uint64_t hash_bps;		/* --verify-ram: measured RAM hash speed */
	struct wire_stream probe_st;	/* channel 0's stream after HELLO: the probe encodes on a copy */

	pthread_mutex_t lock;
	pthread_cond_t cond_work, cond_done;
	uint64_t job_gen;
	uint32_t job_round;
	/*
	 * The nice value the senders take the job at: --nice, then 0 once
	 * auto-converge says so or the vCPUs are paused (no guest to yield to).
	 */
	unsigned int job_nice;
	const uint64_t *gfns;
	uint64_t nr_gfns;
	atomic_uint_fast64_t cursor;
	unsigned int busy;
	bool quit;
	uint64_t *populated;		/* round 0: vm_mem_populated() */

	/* Set once by whoever fails first; every thread checks it. */
	volatile int abort;
	char abort_text[sizeof(((struct migrate_report *)0)->error)];

	/* Control receiver on channel 0, under lock; cond_news on every change. */
	pthread_t ctl_thread;
	bool ctl_started;
	volatile int ctl_stop;
	pthread_cond_t cond_news;
	struct dest_news news;
	uint64_t round_sent_at[2];	/* when the last sender ended each of the last two rounds */
};

void source_fail(struct source *src, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Record why it stops (the first reason wins) without waking anyone. */
void source_abort(struct source *src, const char *text);
/* Give up before the commit with why: recorded first, then told to the destination. */
void source_cancel(struct source *src, const char *why);
bool source_cancelled(struct source *src);
void source_log(struct source *src, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void source_set_phase(struct source *src, enum migrate_phase p);
int source_harvest(struct source *src, struct dirty_log *log);
int source_round(struct source *src, uint32_t round, const uint64_t *gfns, uint64_t n,
		 struct migrate_round *r);
int source_add_round(struct migrate_report *rep, const struct migrate_round *r);

int senders_start(struct source *src);
/* Send round's pages gfns[0..n) over every channel; 0 or the first error. */
int senders_run_round(struct source *src, uint32_t round, const uint64_t *gfns, uint64_t n);
void senders_stop(struct source *src);

/*
 * The switchover (switch_src.c): pause, final round, state, COMPLETE, READY,
 * commit, STARTED, or in doubt until the destination answers.  left[0..n)
 * are the pages harvested after the last pre-copy round.
 */
int source_switchover(struct source *src, const uint64_t *left, uint64_t nleft, uint32_t round);
/*
 * Wait up to ms for the destination to acknowledge round (ROUND_ACK):
 * 0, -ETIMEDOUT, -ENOTCONN or -ECANCELED.
 */
int source_wait_acked(struct source *src, uint32_t round, uint64_t ms);
/* Time the pause and the state save (a short stall of the guest), after round 0. */
int source_probe(struct source *src);
/* The estimate of every downtime part for n pages left, into *e. */
void source_estimate(struct source *src, uint64_t pages_ns, uint64_t pages,
		     struct migrate_downtime *e);

#endif
