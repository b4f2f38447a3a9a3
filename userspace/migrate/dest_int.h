/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The destination side's shared state: receiving (dest.c) and the
 * switchover (switch_dst.c).  Locking: d->lock protects the receivers'
 * round counts, the state and COMPLETE as they arrive, and the abort text;
 * the answer state has its own lock (answer.h), never taken under d->lock.
 */
#ifndef VMDIRTY_DEST_INT_H
#define VMDIRTY_DEST_INT_H

#include <pthread.h>

#include "migrate/answer.h"
#include "migrate/migrate.h"
#include "migrate/msgio.h"
#include "wire/apply.h"

#define NSEC_PER_MSEC	1000000ull

struct dest;

struct receiver {
	struct dest *d;
	unsigned int idx;
	pthread_t thread;
	bool started;
	struct transport_chan *ch;
	struct wire_stream st;
	struct wire_rx *rx;
	struct msgbuf mb;
	uint32_t rounds_ended;		/* under d->lock */
	uint64_t last_ns;		/* last message, CLOCK_MONOTONIC */
};

struct dest {
	const struct migrate_dest_opts *o;
	struct migrate_report *rep;
	struct transport_listener *ls[MIGRATE_MAX_DESTS];
	unsigned int nls;
	struct wire_hello peer;		/* channel 0's HELLO */
	unsigned int n;
	struct receiver rcv[MIGRATE_MAX_CHANNELS];
	struct vm *vm;
	bool made_ahead;		/* vm: made from --mem/--vcpus before any HELLO */
	struct wire_apply *apply;
	struct wire_batch *batches;	/* one per receiver */

	pthread_mutex_t lock;
	pthread_cond_t cond;
	volatile int stop;		/* receivers: return now */
	volatile int abort;
	char abort_text[sizeof(((struct migrate_report *)0)->error)];
	struct wire_error err;		/* what to tell the source */

	struct vcpu_state *vcpu_st;	/* nr_vcpus, from receiver 0 */
	bool *have_vcpu;
	struct vm_state vm_st;
	bool have_vm_state;
	struct wire_complete complete;
	bool have_complete;

	/*
	 * The vCPU threads, made parked once the VM exists (start_vcpus()) so
	 * that the commit only wakes them; handed to the caller once the
	 * guest runs here, else joined without running it (dest_teardown()).
	 */
	struct vm_runner *runner;

	/* The switchover (switch_dst.c). */
	uint32_t acked;			/* rounds acknowledged (ROUND_ACK) */
	uint64_t complete_at;		/* COMPLETE arrived (under lock) */
	uint64_t t_complete;
	struct answer_state *ans;	/* shared with the answerer */
	struct migrate_answerer *answerer;
	bool source_told;		/* the source said how it ended: no answer pending */
};

void dest_fail(struct dest *d, uint32_t code, int err, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
void dest_log(struct dest *d, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
uint32_t dest_idle_ms(const struct dest *d);
/* Wait until cond(d) or abort, for at most ms. */
bool dest_wait_for(struct dest *d, bool (*cond)(struct dest *), uint64_t ms);
void dest_stop_receivers(struct dest *d);
/*
 * Everything arrived (receivers stopped): check it, load it, READY, then
 * COMMIT (or a QUERY that commits, or the operator's start) runs the guest
 * under *runner; anything else discards it.  0: the guest runs here.
 */
int dest_switchover(struct dest *d, struct vm_runner **runner);

#endif
