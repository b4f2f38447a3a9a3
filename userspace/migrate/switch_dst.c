// SPDX-License-Identifier: GPL-2.0
/*
 * The destination's switchover (Documentation/migration.rst): check what
 * arrived (totals, rounds, page digest; the RAM hash only if asked), load
 * the vCPU and VM state, say READY, and run nothing until the source
 * commits.  Then COMMIT runs the guest and STARTED says so.
 *
 * Holding: when the source goes silent after READY, the copy stays loaded
 * for the rest of the hold time, because the source may have committed
 * (its COMMIT lost) and will ask (QUERY) once it can reach us; a QUERY that
 * asks to commit, or the operator's start, runs it.  When the hold ends the
 * copy is discarded, and the answer stays "discarded" for whoever asks.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "migrate/dest_int.h"
#include "migrate/failpoint.h"

static int restore(struct dest *d)
{
	int ret;

	for (unsigned int i = 0; i < d->vm->nr_vcpus; i++)
		if (!d->have_vcpu[i]) {
			dest_fail(d, WIRE_ERR_INCOMPLETE, EPROTO, "no state for vCPU %u", i);
			return -EPROTO;
		}
	if (!d->have_vm_state) {
		dest_fail(d, WIRE_ERR_INCOMPLETE, EPROTO, "no VM state");
		return -EPROTO;
	}
	ret = vm_restore_state(d->vm, &d->vm_st);
	if (ret) {
		dest_fail(d, WIRE_ERR_STATE, -ret, "VM state rejected: %s", strerror(-ret));
		return ret;
	}
	for (unsigned int i = 0; i < d->vm->nr_vcpus; i++) {
		ret = vcpu_restore_state(d->vm->vcpus[i], &d->vcpu_st[i]);
		if (ret) {
			dest_fail(d, WIRE_ERR_STATE, -ret, "vCPU %u state rejected: %s", i,
				  strerror(-ret));
			return ret;
		}
	}
	return 0;
}

/* Tell the source on channel 0 (best effort) and let it arrive before we close. */
static void tell_source(struct dest *d)
{
	struct receiver *r0 = &d->rcv[0];

	msg_send_error(r0->ch, &r0->st, &d->err);
	transport_drain(r0->ch, 2000);
}

/* Never ran here, never will: final, and the answer to any later QUERY. */
static int discard(struct dest *d, bool chan_ok, bool told, const char *why)
{
	answer_set(d->ans, ANSWER_DISCARDED);
	dest_fail(d, WIRE_ERR_DISCARDED, ECANCELED, "discarded: %s; the guest never ran here", why);
	d->rep->answer_pending = !told;
	dest_log(d, "%s", d->abort_text);
	if (chan_ok && !told)
		tell_source(d);
	return -ECANCELED;
}

/* Run it: the only way out of READY into the guest running here. */
static int commit(struct dest *d, struct vm_runner **runner, bool chan_ok, const char *by)
{
	struct receiver *r0 = &d->rcv[0];
	struct wire_started sd;
	uint8_t buf[128];
	uint64_t t0 = vmm_now_ns(), t_wake, woke;
	int ret;

	d->rep->at_ns[MIGRATE_AT_COMMIT] = t0;
	migrate_failpoint("dst-commit");
	/* Nothing left that can fail: the threads exist, parked (start_vcpus()). */
	answer_set(d->ans, ANSWER_COMMITTED);
	/* Up to the wait's own start: taking the runner's lock (threads parked) is all between. */
	t_wake = vmm_now_ns();
	ret = vm_runner_resume_wait(d->runner, 1000, &woke);
	*runner = d->runner;
	d->runner = NULL;
	/* The guest runs; this thread may get its CPU back late (the test holds it here). */
	migrate_failpoint("dst-resumed");
	/* So: until the last vCPU thread left its park, by that thread's clock. */
	sd.resume_ns = t_wake - t0 + woke;
	d->rep->down.resume_ns = sd.resume_ns;
	d->rep->at_ns[MIGRATE_AT_STARTED] = t0 + sd.resume_ns;
	dest_log(d, "committed (%s): the guest runs here%s", by,
		 ret ? " (a vCPU thread not yet scheduled after 1 s)" : "");
	migrate_failpoint("dst-started");
	/* Best effort: a source that misses it asks (QUERY) and hears "running". */
	if (chan_ok) {
		sd.hold_ns = vmm_now_ns() - t0;
		msg_send(r0->ch, buf, wire_enc_started(&r0->st, buf, sizeof(buf), &sd));
	}
	/* The pages are in: huge pages for what the guest touches from here on. */
	ret = vm_ram_hugepages(d->vm);
	if (ret)
		dest_log(d, "guest RAM stays on small pages: %s", strerror(-ret));
	return 0;
}

static bool operator_says(struct dest *d, bool *start, bool *drop)
{
	struct migrate_dest_ctl *c = d->o->ctl;

	if (!c)
		return false;
	pthread_mutex_lock(&c->lock);
	*start = c->start;
	*drop = c->discard;
	c->start = c->discard = false;
	pthread_mutex_unlock(&c->lock);
	return *start || *drop;
}

static void operator_state(struct dest *d, const char *state)
{
	struct migrate_dest_ctl *c = d->o->ctl;

	if (!c)
		return;
	pthread_mutex_lock(&c->lock);
	snprintf(c->state, sizeof(c->state), "%s", state);
	pthread_mutex_unlock(&c->lock);
}

/* READY: wait for COMMIT (or a QUERY, or the operator) until the hold ends. */
static int hold(struct dest *d, struct vm_runner **runner)
{
	struct receiver *r0 = &d->rcv[0];
	uint64_t deadline = vmm_now_ns() + d->o->hold_ms * NSEC_PER_MSEC;
	bool chan_ok = true, start, drop;
	struct wire_error err;
	char why[WIRE_MAX_TEXT + 64];

	operator_state(d, "ready");
	for (;;) {
		if (answer_take_commit_request(d->ans))
			return commit(d, runner, chan_ok, "asked to by the source's QUERY");
		if (operator_says(d, &start, &drop)) {
			if (start)
				return commit(d, runner, chan_ok, "started by the operator");
			return discard(d, chan_ok, false, "by the operator");
		}
		if (vmm_now_ns() >= deadline) {
			snprintf(why, sizeof(why), "no COMMIT within the hold time of %u ms",
				 d->o->hold_ms);
			return discard(d, chan_ok, false, why);
		}
		if (!chan_ok) {
			usleep(50000);
			continue;
		}
		int ret = msg_recv(r0->ch, &r0->st, &r0->mb, 100, &err);

		if (ret == -ETIMEDOUT)
			continue;
		if (!ret && r0->mb.hdr.type == WIRE_COMMIT) {
			struct wire_commit cm;

			ret = wire_dec_commit(&r0->mb.hdr, r0->mb.payload, &cm);
			if (!ret && cm.session_id == d->peer.session_id)
				return commit(d, runner, true, "COMMIT from the source");
		}
		if (ret == -ECONNABORTED) {
			/* The source gave up before committing: it runs the guest. */
			snprintf(why, sizeof(why), "the source cancelled (%s)", err.text);
			return discard(d, false, true, why);
		}
		/* Silent, closed or garbled: the source may have committed all the same. */
		chan_ok = false;
		operator_state(d, "holding");
		dest_log(d, "the source went silent after READY (%s): holding the loaded copy for up to %llu ms more; the source's QUERY, or the operator's start or discard, decides",
			 ret == -ENODATA ? "connection closed" :
			 ret ? strerror(-ret) : "unexpected message",
			 (unsigned long long)((deadline - vmm_now_ns()) / NSEC_PER_MSEC));
	}
}

int dest_switchover(struct dest *d, struct vm_runner **runner)
{
	struct wire_stream *streams[MIGRATE_MAX_CHANNELS];
	struct receiver *r0 = &d->rcv[0];
	struct wire_ready rd = { 0 };
	uint8_t buf[256];
	uint64_t t, t_ended = vmm_now_ns();
	int ret;

	rd.wait_ns = t_ended - d->t_complete;
	d->rep->at_ns[MIGRATE_AT_COMPLETE] = d->t_complete;
	d->rep->at_ns[MIGRATE_AT_APPLIED] = t_ended;
	for (unsigned int i = 0; i < d->n; i++)
		streams[i] = &d->rcv[i].st;
	t = vmm_now_ns();
	ret = wire_verify_complete(&d->complete, streams, d->n, d->apply, d->n, &rd.ram_hash,
				   &d->err);
	rd.check_ns = vmm_now_ns() - t;
	if (d->complete.flags & WIRE_COMPLETE_HASH)
		d->rep->down.ram_hash_ns = rd.check_ns;
	d->rep->ram_hash = rd.ram_hash;
	d->rep->digest = wire_apply_digest(d->apply);
	if (ret) {
		pthread_mutex_lock(&d->lock);
		snprintf(d->abort_text, sizeof(d->abort_text), "%s", d->err.text);
		d->abort = 1;
		pthread_mutex_unlock(&d->lock);
		tell_source(d);
		return ret;
	}
	if (d->complete.flags & WIRE_COMPLETE_HASH) {
		rd.flags |= WIRE_READY_HASH_CHECKED;
		d->rep->hash_checked = true;
	}
	t = vmm_now_ns();
	ret = restore(d);
	rd.restore_ns = vmm_now_ns() - t;
	if (ret) {
		tell_source(d);
		return ret;
	}
	rd.digest = d->rep->digest;
	migrate_report_apply(d->rep, rd.wait_ns, rd.check_ns, rd.restore_ns);

	/* Phase one done: everything here, checked and loaded, nothing running. */
	answer_set(d->ans, ANSWER_READY);
	migrate_failpoint("dst-ready");
	d->rep->at_ns[MIGRATE_AT_READY] = vmm_now_ns();
	/* Logged once READY is out: the source waits for it, not for the log. */
	if (msg_send(r0->ch, buf, wire_enc_ready(&r0->st, buf, sizeof(buf), &rd)))
		dest_log(d, "sending READY: %s", transport_error());
	dest_log(d, "ready: every page, the page digest and the state check out; waiting for the source's COMMIT");
	ret = hold(d, runner);
	operator_state(d, ret ? "discarded" : "running");
	return ret;
}
