// SPDX-License-Identifier: GPL-2.0
/*
 * Resolving a handover in doubt: the destination's answerer, which serves
 * QUERY (answer.h), and the source's client for it (migrate_query()).
 * A QUERY travels on a connection of its own, instead of a handshake, so
 * that it works whatever became of the migration's channels.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "migrate/answer.h"
#include "migrate/migrate.h"
#include "migrate/msgio.h"

/* How long one connection may take to say what it wants. */
#define ANSWER_READ_MS		2000
/* A QUERY that asks to commit waits this long for the main thread to do it. */
#define ANSWER_COMMIT_MS	5000

struct migrate_answerer {
	pthread_t thread;
	struct transport_listener *ls[MIGRATE_MAX_DESTS];
	unsigned int n;
	struct transport_opts net;
	struct answer_state *st;
	volatile int stop;
};

struct answer_state *answer_state_new(uint64_t session)
{
	struct answer_state *s = calloc(1, sizeof(*s));

	if (!s)
		return NULL;
	pthread_mutex_init(&s->lock, NULL);
	pthread_cond_init(&s->cond, NULL);
	s->session = session;
	s->phase = ANSWER_RECEIVING;
	return s;
}

static void answer_state_free(struct answer_state *s)
{
	if (!s)
		return;
	pthread_cond_destroy(&s->cond);
	pthread_mutex_destroy(&s->lock);
	free(s);
}

static bool final(enum answer_phase p)
{
	return p == ANSWER_COMMITTED || p == ANSWER_DISCARDED;
}

bool answer_set(struct answer_state *s, enum answer_phase phase)
{
	bool ok;

	pthread_mutex_lock(&s->lock);
	ok = !final(s->phase) && phase > s->phase;
	if (ok)
		s->phase = phase;
	pthread_cond_broadcast(&s->cond);
	pthread_mutex_unlock(&s->lock);
	return ok;
}

enum answer_phase answer_get(struct answer_state *s)
{
	enum answer_phase p;

	pthread_mutex_lock(&s->lock);
	p = s->phase;
	pthread_mutex_unlock(&s->lock);
	return p;
}

bool answer_take_commit_request(struct answer_state *s)
{
	bool r;

	pthread_mutex_lock(&s->lock);
	r = s->commit_request && s->phase == ANSWER_READY;
	s->commit_request = false;
	pthread_mutex_unlock(&s->lock);
	return r;
}

/* What to tell a QUERY; with commit, a READY copy is committed first. */
static uint32_t decide(struct answer_state *s, const struct wire_query *q)
{
	struct timespec ts;
	uint32_t out;

	if (q->session_id != s->session)
		return WIRE_OUTCOME_UNKNOWN;
	pthread_mutex_lock(&s->lock);
	s->asked = true;
	pthread_cond_broadcast(&s->cond);
	if (s->phase == ANSWER_READY && (q->flags & WIRE_QUERY_COMMIT)) {
		/* The main thread commits (or has just discarded): wait for its word. */
		s->commit_request = true;
		pthread_cond_broadcast(&s->cond);
		ts = vmm_deadline_ms(ANSWER_COMMIT_MS);
		while (s->phase == ANSWER_READY)
			if (pthread_cond_timedwait(&s->cond, &s->lock, &ts))
				break;
	}
	switch (s->phase) {
	case ANSWER_COMMITTED:
		out = WIRE_OUTCOME_RUNNING;
		break;
	case ANSWER_DISCARDED:
		out = WIRE_OUTCOME_DISCARDED;
		break;
	default:
		out = WIRE_OUTCOME_HOLDING;
	}
	pthread_mutex_unlock(&s->lock);
	return out;
}

static void serve(struct migrate_answerer *a, struct transport_chan *ch)
{
	struct wire_stream st;
	struct wire_query q;
	struct wire_error e;
	struct msgbuf mb;
	uint8_t buf[128];
	int ret;

	if (msgbuf_init(&mb))
		return;
	wire_stream_init(&st, WIRE_ROLE_DEST, 4096);
	ret = msg_recv(ch, &st, &mb, ANSWER_READ_MS, NULL);
	if (!ret && mb.hdr.type == WIRE_QUERY && !wire_dec_query(&mb.hdr, mb.payload, &q)) {
		struct wire_outcome_msg o = { .session_id = q.session_id, .outcome = decide(a->st, &q) };

		msg_send(ch, buf, wire_enc_outcome(&st, buf, sizeof(buf), &o));
		transport_drain(ch, 1000);
	} else if (!ret && mb.hdr.type == WIRE_HELLO) {
		wire_error_set(&e, WIRE_ERR_SESSION, EBUSY,
			       "this destination is busy with session %016llx",
			       (unsigned long long)a->st->session);
		msg_send_error(ch, &st, &e);
		transport_drain(ch, 1000);
	}
	msgbuf_release(&mb);
}

static void *answerer_main(void *arg)
{
	struct migrate_answerer *a = arg;

	pthread_setname_np(pthread_self(), "dst-answer");

	while (!a->stop) {
		struct transport_chan *ch;
		unsigned int which;
		int ret = transport_accept_any(a->ls, a->n, 200, &ch, &which);

		if (ret == -ETIMEDOUT)
			continue;
		if (ret)
			break;
		serve(a, ch);
		transport_close(ch);
	}
	return NULL;
}

int answerer_start(struct transport_listener **ls, unsigned int n,
		   const struct transport_opts *net, struct answer_state *s,
		   struct migrate_answerer **out)
{
	struct migrate_answerer *a = calloc(1, sizeof(*a));
	int ret;

	if (!a)
		return -ENOMEM;
	for (unsigned int i = 0; i < n; i++)
		a->ls[i] = ls[i];
	a->n = n;
	a->net = *net;
	a->st = s;
	ret = -pthread_create(&a->thread, NULL, answerer_main, a);
	if (ret) {
		free(a);
		return ret;
	}
	*out = a;
	return 0;
}

bool migrate_answerer_wait(struct migrate_answerer *a, uint64_t ms)
{
	struct answer_state *s = a->st;
	struct timespec ts;
	bool asked;

	ts = vmm_deadline_ms(ms);
	pthread_mutex_lock(&s->lock);
	while (!s->asked)
		if (ms ? pthread_cond_timedwait(&s->cond, &s->lock, &ts) :
			 pthread_cond_wait(&s->cond, &s->lock))
			break;
	asked = s->asked;
	pthread_mutex_unlock(&s->lock);
	return asked;
}

void migrate_answerer_close(struct migrate_answerer *a)
{
	if (!a)
		return;
	a->stop = 1;
	for (unsigned int i = 0; i < a->n; i++)
		transport_listener_cancel(a->ls[i]);
	pthread_join(a->thread, NULL);
	for (unsigned int i = 0; i < a->n; i++)
		transport_listener_close(a->ls[i]);
	answer_state_free(a->st);
	free(a);
}

int migrate_query(const char *addr, const struct transport_opts *net, uint64_t session,
		  bool commit, uint32_t *outcome)
{
	struct wire_query q = { .session_id = session, .flags = commit ? WIRE_QUERY_COMMIT : 0 };
	struct transport_opts o = *net;
	struct transport_chan *ch;
	struct wire_outcome_msg out;
	struct wire_stream st;
	struct msgbuf mb;
	uint8_t buf[128];
	int ret;

	/* One attempt: the caller asks again later. */
	o.connect_attempts = 1;
	o.backend = TRANSPORT_PLAIN;
	ret = msgbuf_init(&mb);
	if (ret)
		return ret;
	ret = transport_connect(addr, &o, &ch);
	if (ret)
		goto out;
	wire_stream_init(&st, WIRE_ROLE_SOURCE, 4096);
	ret = msg_send(ch, buf, wire_enc_query(&st, buf, sizeof(buf), &q));
	if (!ret)
		ret = msg_recv(ch, &st, &mb, ANSWER_READ_MS + ANSWER_COMMIT_MS, NULL);
	if (!ret && mb.hdr.type != WIRE_OUTCOME)
		ret = -EPROTO;
	if (!ret)
		ret = wire_dec_outcome(&mb.hdr, mb.payload, &out);
	if (!ret && out.session_id != session)
		ret = -EPROTO;
	if (!ret)
		*outcome = out.outcome;
	transport_close(ch);
out:
	msgbuf_release(&mb);
	return ret;
}
