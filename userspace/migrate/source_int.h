/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The source side's shared state: the migration (source.c) and its channel
 * senders (sender.c).
 *
 * Threads: the main thread runs the rounds; one sender thread per channel
 * encodes and sends the pages of the current round; one control receiver
 * reads channel 0 for the destination's ERROR or CONFIRM.  A round is
 * handed to the senders under src->lock (job_gen bumps, cond_work wakes
 * them), they claim batches of its page list with an atomic cursor, end the
 * round on their channel with ROUND_END and report back (busy drops to 0,
 * cond_done).  Between rounds the senders sleep, and only then does the main
 * thread send on channel 0 itself (state, COMPLETE) or flush the channels.
 */
#ifndef VMDIRTY_SOURCE_INT_H
#define VMDIRTY_SOURCE_INT_H

#include <pthread.h>
#include <stdatomic.h>

#include "migrate/migrate.h"
#include "migrate/msgio.h"
#include "migrate/ratelimit.h"

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
	/* This round, read by the main thread after the round. */
	uint64_t pages, zero_pages, wire_bytes;
	struct migrate_round_time time;
};

struct source {
	struct vm *vm;
	struct vm_runner *runner;
	struct tracker *trk;
	const struct migrate_source_opts *o;
	struct migrate_report *rep;

	unsigned int n;
	struct sender *snd;		/* n senders, channel i = snd[i] */
	struct ratelimit rl;

	pthread_mutex_t lock;
	pthread_cond_t cond_work, cond_done;
	uint64_t job_gen;
	uint32_t job_round;
	const uint64_t *gfns;
	uint64_t nr_gfns;
	atomic_uint_fast64_t cursor;
	unsigned int busy;
	uint64_t *populated;		/* round 0: vm_mem_populated() */
	bool quit;

	/* Set once by whoever fails first; every thread checks it. */
	volatile int abort;
	char abort_text[sizeof(((struct migrate_report *)0)->error)];

	/* Control receiver on channel 0. */
	pthread_t ctl_thread;
	bool ctl_started;
	bool confirmed;
	struct wire_confirm confirm;
	pthread_cond_t cond_confirm;
	volatile int ctl_stop;
};

void source_fail(struct source *src, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

int senders_start(struct source *src);
/* Send round's pages gfns[0..n) over every channel; 0 or the first error. */
int senders_run_round(struct source *src, uint32_t round, const uint64_t *gfns, uint64_t n);
void senders_stop(struct source *src);

#endif
