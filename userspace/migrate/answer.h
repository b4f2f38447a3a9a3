/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The destination's answer about a session (answer.c): its phase, shared
 * between the destination's main thread, which moves it, and the answerer
 * thread, which serves QUERY on the listening addresses for as long as the
 * agent lives (migrate.h: struct migrate_answerer).
 *
 * The phase only moves forward: RECEIVING -> READY -> COMMITTED, or to
 * DISCARDED from RECEIVING or READY.  COMMITTED and DISCARDED are final,
 * so every answer given stays true.
 */
#ifndef VMDIRTY_ANSWER_H
#define VMDIRTY_ANSWER_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "wire/transport.h"

enum answer_phase {
	ANSWER_RECEIVING,	/* pages and state arriving: nothing to commit yet */
	ANSWER_READY,		/* loaded and checked, not running: waiting for COMMIT */
	ANSWER_COMMITTED,	/* the guest runs here (or is about to) */
	ANSWER_DISCARDED,	/* never ran here, never will */
};

struct answer_state {
	pthread_mutex_t lock;
	pthread_cond_t cond;
	uint64_t session;
	enum answer_phase phase;
	bool commit_request;	/* READY: a QUERY asked to commit */
	bool asked;		/* the session's source asked at least once */
};

struct answer_state *answer_state_new(uint64_t session);
/* Move to phase (forward only), wake the answerer; false if already final. */
bool answer_set(struct answer_state *s, enum answer_phase phase);
enum answer_phase answer_get(struct answer_state *s);
/* READY: did a QUERY ask to commit?  Consumes the request. */
bool answer_take_commit_request(struct answer_state *s);

/*
 * Serve QUERY on ls[0..n) (taken over: closed with the answerer) from s
 * (shared, freed with the answerer).  Connections that are not a QUERY
 * (another source's HELLO) get an ERROR saying this destination is busy.
 */
struct migrate_answerer;
int answerer_start(struct transport_listener **ls, unsigned int n,
		   const struct transport_opts *net, struct answer_state *s,
		   struct migrate_answerer **out);

#endif
