// SPDX-License-Identifier: GPL-2.0
/*
 * The migration destination: accept the source's channels, build a VM with
 * the layout its HELLO describes, apply pages by round from one receiver
 * thread per channel (acknowledging each round once every channel ended
 * it), and at COMPLETE hand over to the switchover (switch_dst.c).
 *
 * Threads: the main thread accepts and negotiates, then waits on d->cond for
 * the receivers.  Receiver i owns channel i's receive side and its wire
 * stream's rx fields; receiver 0 also takes the state and COMPLETE, and
 * ends there: after it, the main thread alone uses channel 0.  The main
 * thread is the only one that sends after the handshake (ROUND_ACK, ERROR,
 * READY, STARTED on channel 0).  The answerer thread (answer.c) serves
 * QUERY on the listening addresses once the session is known.
 */
#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "migrate/dest_int.h"
#include "migrate/failpoint.h"

void dest_fail(struct dest *d, uint32_t code, int err, const char *fmt, ...)
{
	va_list ap;

	pthread_mutex_lock(&d->lock);
	if (!d->abort) {
		va_start(ap, fmt);
		vsnprintf(d->abort_text, sizeof(d->abort_text), fmt, ap);
		va_end(ap);
		wire_error_set(&d->err, code, err, "%s", d->abort_text);
		d->abort = 1;
		pthread_cond_broadcast(&d->cond);
	}
	pthread_mutex_unlock(&d->lock);
}

void dest_log(struct dest *d, const char *fmt, ...)
{
	char line[512];
	va_list ap;

	if (!d->o->log)
		return;
	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	d->o->log(d->o->log_ctx, line);
}

void migrate_dest_opts_init(struct migrate_dest_opts *o)
{
	memset(o, 0, sizeof(*o));
	transport_opts_init(&o->net);
	o->backend = TRACK_AUTO;
	o->hold_ms = MIGRATE_DEFAULT_HOLD_MS;
	o->debugcon_fd = -1;
}

uint32_t dest_idle_ms(const struct dest *d)
{
	/* Three network timeouts: a slow round is not a dead source. */
	return d->o->net.timeout_ms * 3;
}

/* Receiver 0's share: the state and COMPLETE. */
static int take_control(struct receiver *r)
{
	struct dest *d = r->d;
	const struct wire_hdr *h = &r->mb.hdr;
	int ret;

	switch (h->type) {
	case WIRE_VCPU_STATE: {
		struct vcpu_state st;

		ret = wire_dec_vcpu_state(h, r->mb.payload, &st);
		if (ret)
			return ret;
		if (st.idx >= d->vm->nr_vcpus || d->have_vcpu[st.idx]) {
			vcpu_state_release(&st);
			return -EPROTO;
		}
		d->have_vcpu[st.idx] = true;
		d->vcpu_st[st.idx] = st;
		return 0;
	}
	case WIRE_VM_STATE:
		if (d->have_vm_state)
			return -EPROTO;
		ret = wire_dec_vm_state(h, r->mb.payload, &d->vm_st);
		if (!ret)
			d->have_vm_state = true;
		return ret;
	case WIRE_COMPLETE:
		ret = wire_dec_complete(h, r->mb.payload, &d->complete);
		if (ret)
			return ret;
		pthread_mutex_lock(&d->lock);
		d->have_complete = true;
		d->complete_at = vmm_now_ns();
		pthread_cond_broadcast(&d->cond);
		pthread_mutex_unlock(&d->lock);
		return 1;	/* the main thread takes channel 0 from here */
	}
	return -EPROTO;
}

static int take(struct receiver *r)
{
	struct dest *d = r->d;
	const struct wire_hdr *h = &r->mb.hdr;
	struct wire_round_end re;
	int ret;

	switch (h->type) {
	case WIRE_PAGES:
		ret = wire_rx_pages(r->rx, &r->st, h, r->mb.payload, &d->batches[r->idx]);
		if (ret)
			return ret;
		return wire_apply_batch(d->apply, &d->batches[r->idx]);
	case WIRE_ROUND_END:
		ret = wire_dec_round_end(&r->st, h, r->mb.payload, &re);
		if (ret)
			return ret;
		pthread_mutex_lock(&d->lock);
		r->rounds_ended = re.round + 1;
		pthread_cond_broadcast(&d->cond);
		pthread_mutex_unlock(&d->lock);
		return 0;
	}
	if (r->idx == 0)
		return take_control(r);
	return -EPROTO;
}

static const char *why(int ret)
{
	switch (ret) {
	case -EBADMSG: return "corrupted message (checksum, length or count)";
	case -EILSEQ: return "page data failed to decompress";
	case -ERANGE: return "page outside the memory layout";
	case -EPROTO: return "message not allowed here";
	case -EPROTONOSUPPORT: return "protocol version";
	case -EMSGSIZE: return "message too long";
	}
	return strerror(-ret);
}

static uint32_t err_code(int ret)
{
	switch (ret) {
	case -EBADMSG: return WIRE_ERR_CHECKSUM;
	case -EILSEQ: return WIRE_ERR_CODEC;
	case -ERANGE: return WIRE_ERR_LAYOUT;
	}
	return WIRE_ERR_PROTOCOL;
}

static void *receiver_main(void *arg)
{
	struct receiver *r = arg;
	struct dest *d = r->d;
	struct wire_error err;
	bool between = false;
	char name[16];

	snprintf(name, sizeof(name), "dst-recv%u", r->idx);
	pthread_setname_np(pthread_self(), name);

	r->last_ns = vmm_now_ns();
	while (!d->stop && !d->abort) {
		/*
		 * After a ROUND_END the source may have paused: that round may be
		 * the last, and the switchover joins this thread once COMPLETE
		 * comes on channel 0.  Look at d->stop often until the next
		 * message, or the join waits out a 200 ms slice inside the
		 * downtime (it did: 175-205 ms of every two-channel pause).
		 */
		int ret = msg_recv(r->ch, &r->st, &r->mb, between ? 5 : 200, &err);

		if (ret == -ETIMEDOUT) {
			if (vmm_now_ns() - r->last_ns > dest_idle_ms(d) * NSEC_PER_MSEC) {
				dest_fail(d, WIRE_ERR_PROTOCOL, ETIMEDOUT,
					  "channel %u: nothing from the source for %u ms", r->idx,
					  dest_idle_ms(d));
				break;
			}
			continue;
		}
		r->last_ns = vmm_now_ns();
		if (ret == -ECONNABORTED) {
			dest_fail(d, WIRE_ERR_CANCELLED, ECONNABORTED, "the source gave up: %s (%s)",
				  err.text, wire_err_name(err.code));
			break;
		}
		if (ret == -ENODATA || ret == -ECONNRESET || ret == -ECANCELED) {
			if (!d->stop)
				dest_fail(d, WIRE_ERR_PROTOCOL, -ret, "channel %u: %s", r->idx,
					  transport_error());
			break;
		}
		if (!ret) {
			ret = take(r);
			between = r->mb.hdr.type == WIRE_ROUND_END;
		}
		if (ret == 1)
			break;
		if (ret) {
			dest_fail(d, err_code(ret), -ret, "channel %u, message %u (type %u): %s",
				  r->idx, r->mb.hdr.seq, r->mb.hdr.type, why(ret));
			break;
		}
	}
	return NULL;
}

/* MemAvailable from /proc/meminfo, in bytes; 0 if unknown. */
static uint64_t mem_available(void)
{
	unsigned long long kib = 0;
	char line[128];
	FILE *f = fopen("/proc/meminfo", "r");

	if (!f)
		return 0;
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "MemAvailable: %llu kB", &kib) == 1)
			break;
	fclose(f);
	return (uint64_t)kib << 10;
}

/*
 * This destination's own limits, before anything is sized: a source (even
 * one holding the key) gets no more RAM or vCPUs than we allow.
 */
static int check_limits(struct dest *d, const struct wire_hello *h, struct wire_error *e)
{
	const struct migrate_dest_opts *o = d->o;
	uint64_t mem = 0, max_mem = o->max_mem;
	long cpus = sysconf(_SC_NPROCESSORS_ONLN);
	unsigned int max_vcpus = o->max_vcpus ? o->max_vcpus : cpus > 0 ? (unsigned int)cpus : 1;

	for (unsigned int i = 0; i < h->nr_regions; i++)
		mem += h->regions[i].size;
	if (h->nr_vcpus > max_vcpus) {
		wire_error_set(e, WIRE_ERR_VCPUS, EFBIG,
			       "%u vCPUs: this destination takes at most %u (%s)", h->nr_vcpus,
			       max_vcpus, o->max_vcpus ? "--max-vcpus" : "its CPUs; see --max-vcpus");
		return -EFBIG;
	}
	if (!max_mem)
		max_mem = mem_available();
	if (mem > max_mem) {
		wire_error_set(e, WIRE_ERR_LAYOUT, EFBIG,
			       "a guest of %llu MiB: this destination takes at most %llu MiB (%s)",
			       (unsigned long long)(mem >> 20), (unsigned long long)(max_mem >> 20),
			       o->max_mem ? "--max-mem" : "its available memory; see --max-mem");
		return -EFBIG;
	}
	return 0;
}

/*
 * The VM the source's HELLO describes: RAM from gpa 0 in contiguous slots,
 * within this destination's limits and checked against what the operator
 * said here (--mem, --vcpus).
 */
static int hello_config(struct dest *d, const struct wire_hello *h, struct vm_config *cfg,
			struct wire_error *e)
{
	const struct migrate_dest_opts *o = d->o;
	uint64_t end = 0;
	int ret;

	ret = check_limits(d, h, e);
	if (ret)
		return ret;

	*cfg = (struct vm_config){ .nr_vcpus = h->nr_vcpus, .ram_memfd = o->ram_memfd,
				   .ram_incoming = true };
	for (unsigned int i = 0; i < h->nr_regions; i++) {
		if (h->regions[i].gpa != end) {
			wire_error_set(e, WIRE_ERR_LAYOUT, EINVAL,
				       "memory region %u starts at %#llx, expected %#llx: only RAM from gpa 0 in contiguous slots is supported",
				       i, (unsigned long long)h->regions[i].gpa,
				       (unsigned long long)end);
			return -EINVAL;
		}
		end += h->regions[i].size;
	}
	cfg->mem_size = end;
	if (h->nr_regions > 1)
		cfg->slot_size = h->regions[0].size;
	if (o->mem_size && o->mem_size != cfg->mem_size) {
		wire_error_set(e, WIRE_ERR_LAYOUT, EINVAL, "guest RAM: %llu MiB here, %llu MiB from the source",
			       (unsigned long long)(o->mem_size >> 20), (unsigned long long)(end >> 20));
		return -EINVAL;
	}
	if (o->nr_vcpus && o->nr_vcpus != h->nr_vcpus) {
		wire_error_set(e, WIRE_ERR_VCPUS, EINVAL, "vCPUs: %u here, %u from the source",
			       o->nr_vcpus, h->nr_vcpus);
		return -EINVAL;
	}
	return 0;
}

static int create_vm(struct dest *d, struct vm_config *cfg, struct wire_error *e)
{
	enum track_backend b = d->o->backend;
	int ret;

	/* Ready to be tracked here too, for a migration onwards. */
	if (b == TRACK_AUTO)
		b = track_pick_auto(NULL, 0);
	ret = track_vm_config(b, cfg);
	if (!ret)
		ret = vm_create(cfg, &d->vm);
	if (ret) {
		wire_error_set(e, ret == -EINVAL ? WIRE_ERR_LAYOUT : WIRE_ERR_INTERNAL, -ret,
			       "cannot create a VM of %u vCPUs and %llu MiB: %s", cfg->nr_vcpus,
			       (unsigned long long)(cfg->mem_size >> 20), strerror(-ret));
		return ret;
	}
	/* Before it can run: its first records after the switch mark the resume. */
	vm_set_debugcon(d->vm, d->o->debugcon_fd);
	snprintf(d->rep->backend, sizeof(d->rep->backend), "%s", track_backend_name(b));
	d->rep->mem_bytes = d->vm->mem_size;
	d->rep->nr_vcpus = d->vm->nr_vcpus;
	return 0;
}

/*
 * Told the guest's size (--mem and --vcpus), make its VM before anyone
 * connects, as QEMU's -incoming does: made on the first HELLO instead, its
 * making (KVM's VM, the memory, the tracker's setup) is time the source
 * waits for in its connect.  It stays untouched until a session takes it;
 * one whose RAM comes in other slots gets its own.
 */
static int make_ahead(struct dest *d)
{
	const struct migrate_dest_opts *o = d->o;
	struct wire_hello h = { .nr_vcpus = o->nr_vcpus, .nr_regions = 1,
				.regions[0] = { .gpa = 0, .size = o->mem_size } };
	struct vm_config cfg;
	struct wire_error e;
	uint64_t t = vmm_now_ns();
	int ret;

	if (!o->mem_size || !o->nr_vcpus)
		return 0;
	ret = hello_config(d, &h, &cfg, &e);
	if (!ret)
		ret = create_vm(d, &cfg, &e);
	if (ret) {
		dest_fail(d, e.code, e.err, "%s", e.text);
		return ret;
	}
	d->made_ahead = true;
	dest_log(d, "made a VM of %u vCPUs and %llu MiB ahead, in %.1f ms", d->vm->nr_vcpus,
		 (unsigned long long)(d->vm->mem_size >> 20), (vmm_now_ns() - t) / 1e6);
	return 0;
}

/* Can the VM made ahead take this source's RAM as it is laid out? */
static bool fits_ahead(const struct dest *d, const struct vm_config *cfg)
{
	return d->made_ahead && d->vm->mem_size == cfg->mem_size &&
	       d->vm->nr_vcpus == cfg->nr_vcpus && d->vm->cfg.slot_size == cfg->slot_size;
}

/* The VM for the session the first HELLO opens: the one made ahead, or a new one. */
static int session_vm(struct dest *d, struct transport_chan *ch, const struct wire_hello *peer,
		      struct wire_error *e)
{
	struct vm_config cfg;
	int ret;

	ret = hello_config(d, peer, &cfg, e);
	if (ret)
		return ret;
	if (fits_ahead(d, &cfg)) {
		dest_log(d, "%s: session %016llx takes the VM made ahead", transport_peer(ch),
			 (unsigned long long)peer->session_id);
		return 0;
	}
	/* vmdirty's own source sends one slot: rare enough not to hold two VMs. */
	if (d->made_ahead) {
		dest_log(d, "%s: its RAM comes in %u slots: the VM made ahead goes",
			 transport_peer(ch), peer->nr_regions);
		vm_destroy(d->vm);
		d->vm = NULL;
		d->made_ahead = false;
	}
	ret = create_vm(d, &cfg, e);
	if (ret)
		return ret;
	dest_log(d, "%s: a VM of %u vCPUs and %llu MiB for session %016llx", transport_peer(ch),
		 d->vm->nr_vcpus, (unsigned long long)(d->vm->mem_size >> 20),
		 (unsigned long long)peer->session_id);
	return 0;
}

/*
 * Before the first channel's HELLO is accepted nothing exists here but a
 * VM made ahead, untouched: a connection refused then is told why, logged
 * and closed, and the destination goes on waiting for the source it
 * expects.
 */
static int turn_away(struct dest *d, struct transport_chan *ch, struct wire_stream *st,
		     const struct wire_error *e)
{
	dest_log(d, "refused %s: %s (%s; still waiting for a source)", transport_peer(ch), e->text,
		 d->made_ahead ? "the VM made ahead is untouched" : "nothing created");
	msg_send_error(ch, st, e);
	transport_drain(ch, 1000);
	return -EAGAIN;
}

/* Has any channel of the session been accepted yet? */
static bool got_channels(const struct dest *d)
{
	for (unsigned int i = 0; i < d->n; i++)
		if (d->rcv[i].ch)
			return true;
	return false;
}

/* The first bytes of a channel that were no message of ours, in words. */
static const char *not_hello(int ret, const struct msgbuf *mb)
{
	/* 0x16 0x03: a TLS handshake record, from a source that has a key. */
	if (ret == -EBADMSG && mb->buf[0] == 0x16 && mb->buf[1] == 0x03)
		return "a TLS handshake: the source has a key, and this destination runs --insecure";
	return why(ret);
}

/* Receive one channel's HELLO and answer it; -EAGAIN: turned away, go on waiting. */
static int handshake(struct dest *d, struct transport_chan *ch, struct msgbuf *mb)
{
	struct wire_stream st;
	struct wire_hello peer, local;
	struct wire_hello_ack ack;
	struct wire_error e;
	struct receiver *r;
	uint8_t buf[512];
	int ret;

	wire_stream_init(&st, WIRE_ROLE_DEST, 4096);
	mb->buf[0] = 0;
	ret = msg_recv(ch, &st, mb, d->o->net.timeout_ms, NULL);
	if (!ret && mb->hdr.type == WIRE_QUERY) {
		struct wire_query q;

		/* A source in doubt about another session: not ours, and not a failure. */
		if (!wire_dec_query(&mb->hdr, mb->payload, &q)) {
			struct wire_outcome_msg o = { q.session_id, WIRE_OUTCOME_UNKNOWN };

			msg_send(ch, buf, wire_enc_outcome(&st, buf, sizeof(buf), &o));
			transport_drain(ch, 1000);
		}
		return -EAGAIN;
	}
	if (!ret)
		ret = wire_dec_hello(&mb->hdr, mb->payload, &peer);
	if (ret) {
		wire_error_set(&e, WIRE_ERR_PROTOCOL, -ret, "no valid HELLO from %s: %s",
			       transport_peer(ch), not_hello(ret, mb));
		if (!d->n)
			return turn_away(d, ch, &st, &e);
		dest_fail(d, WIRE_ERR_PROTOCOL, -ret, "%s", e.text);
		goto refuse;
	}
	if (!d->n) {
		if (!peer.nr_channels || peer.nr_channels > MIGRATE_MAX_CHANNELS) {
			wire_error_set(&e, WIRE_ERR_SESSION, EINVAL, "%u channels: we take 1..%d",
				       peer.nr_channels, MIGRATE_MAX_CHANNELS);
			return turn_away(d, ch, &st, &e);
		}
		if (session_vm(d, ch, &peer, &e))
			return turn_away(d, ch, &st, &e);
		d->peer = peer;
		d->n = peer.nr_channels;
	} else if (peer.session_id != d->peer.session_id ||
		   peer.nr_channels != d->peer.nr_channels) {
		dest_fail(d, WIRE_ERR_SESSION, EPROTO,
			  "channel from %s belongs to another migration (session %#llx, %u channels)",
			  transport_peer(ch), (unsigned long long)peer.session_id, peer.nr_channels);
		goto refuse;
	}
	if (peer.channel_idx >= d->n || d->rcv[peer.channel_idx].ch) {
		dest_fail(d, WIRE_ERR_SESSION, EPROTO, "channel index %u of %u twice or out of range",
			  peer.channel_idx, d->n);
		goto refuse;
	}

	migrate_hello_vm(d->vm, &local);
	local.session_id = peer.session_id;
	local.nr_channels = peer.nr_channels;
	local.channel_idx = peer.channel_idx;
	local.features = WIRE_FEAT_ALL;
	local.codecs = WIRE_CODECS_ALL;
	ret = wire_negotiate(&local, &peer, &ack, &e);
	if (ret && !got_channels(d)) {
		/* The first channel: the VM made for it goes (not one made ahead), and we wait on. */
		if (!d->made_ahead) {
			vm_destroy(d->vm);
			d->vm = NULL;
		}
		d->n = 0;
		return turn_away(d, ch, &st, &e);
	}
	if (ret) {
		pthread_mutex_lock(&d->lock);
		d->err = e;
		snprintf(d->abort_text, sizeof(d->abort_text), "refused the source: %s", e.text);
		d->abort = 1;
		pthread_mutex_unlock(&d->lock);
		msg_send_error(ch, &st, &e);
		transport_drain(ch, 1000);
		return ret;
	}
	ret = msg_send(ch, buf, wire_enc_hello_ack(&st, buf, sizeof(buf), &ack));
	if (ret) {
		dest_fail(d, WIRE_ERR_PROTOCOL, -ret, "sending HELLO_ACK: %s", transport_error());
		return ret;
	}
	wire_stream_establish(&st, &ack);
	r = &d->rcv[peer.channel_idx];
	r->d = d;
	r->idx = peer.channel_idx;
	r->ch = ch;
	r->st = st;
	snprintf(d->rep->peers[r->idx], sizeof(d->rep->peers[r->idx]), "%s", transport_peer(ch));
	if (r->idx == 0) {
		snprintf(d->rep->security, sizeof(d->rep->security), "%s",
			 transport_chan_security(ch));
		d->rep->crypto = transport_chan_crypto(ch);
	}
	return 0;
refuse:
	msg_send_error(ch, &st, &d->err);
	transport_drain(ch, 1000);
	return ret ? ret : -EPROTO;
}

static int accept_channels(struct dest *d)
{
	uint64_t first_by = d->o->accept_timeout_ms ?
			    vmm_now_ns() + d->o->accept_timeout_ms * NSEC_PER_MSEC : 0;
	struct msgbuf mb;
	unsigned int got = 0;
	int ret;

	ret = msgbuf_init(&mb);
	if (ret)
		return ret;
	do {
		struct transport_chan *ch;
		unsigned int which;
		/*
		 * The first channel may take forever (or --wait in all, however
		 * many connections were turned away); the others come right
		 * after it.
		 */
		uint32_t t = got ? d->o->net.timeout_ms : 0;

		if (!got && first_by) {
			uint64_t now = vmm_now_ns();

			t = now < first_by ? (first_by - now + NSEC_PER_MSEC - 1) / NSEC_PER_MSEC : 0;
			if (!t) {
				dest_fail(d, WIRE_ERR_SESSION, ETIMEDOUT,
					  "waiting for a source: nobody connected within %u ms",
					  d->o->accept_timeout_ms);
				ret = -ETIMEDOUT;
				break;
			}
		}
		ret = transport_accept_any(d->ls, d->nls, t, &ch, &which);
		if (ret) {
			dest_fail(d, WIRE_ERR_SESSION, -ret, "%s: %s",
				  got ? "waiting for the other channels" : "waiting for a source",
				  transport_error());
			break;
		}
		ret = handshake(d, ch, &mb);
		if (ret == -EAGAIN) {
			transport_close(ch);
			ret = 0;
			continue;
		}
		if (ret) {
			transport_close(ch);
			break;
		}
		got++;
	/* Until a HELLO made the session (d->n), every refusal waits on. */
	} while (!d->n || got < d->n);
	msgbuf_release(&mb);
	return ret;
}

/* Wait until cond(d) or abort, for at most ms; under d->lock. */
bool dest_wait_for(struct dest *d, bool (*cond)(struct dest *), uint64_t ms)
{
	uint64_t deadline = vmm_now_ns() + ms * NSEC_PER_MSEC;
	bool ok;

	pthread_mutex_lock(&d->lock);
	while (!(ok = cond(d)) && !d->abort && vmm_now_ns() < deadline) {
		struct timespec ts;

		ts = vmm_deadline_ms(100);
		pthread_cond_timedwait(&d->cond, &d->lock, &ts);
	}
	pthread_mutex_unlock(&d->lock);
	return ok;
}

static bool all_rounds_ended(struct dest *d)
{
	for (unsigned int i = 0; i < d->n; i++)
		if (d->rcv[i].rounds_ended <= d->complete.last_round)
			return false;
	return true;
}

void dest_stop_receivers(struct dest *d)
{
	d->stop = 1;
	for (unsigned int i = 0; i < d->n; i++) {
		if (d->rcv[i].started)
			pthread_join(d->rcv[i].thread, NULL);
		d->rcv[i].started = false;
	}
}

/* What the new VM's memory already holds: zero pages elsewhere cost no write. */
static int mark_backed(struct dest *d)
{
	uint64_t *bits = calloc((d->vm->mem_size / 4096 + 63) / 64, sizeof(*bits));
	int64_t n;

	if (!bits)
		return -ENOMEM;
	n = vm_mem_populated(d->vm, bits);
	if (n >= 0)
		wire_apply_mark_backed(d->apply, bits);
	free(bits);
	return n < 0 ? (int)n : 0;
}

/* The smallest round count every channel ended, under d->lock. */
static uint32_t rounds_ended(struct dest *d)
{
	uint32_t ended = UINT32_MAX;

	for (unsigned int i = 0; i < d->n; i++)
		if (d->rcv[i].rounds_ended < ended)
			ended = d->rcv[i].rounds_ended;
	return ended;
}

/* COMPLETE arrived, or a round to acknowledge: wake the main thread at once. */
static bool complete_or_round_ended(struct dest *d)
{
	return d->have_complete || rounds_ended(d) > d->acked;
}

/* ROUND_ACK for every round that every channel ended since the last one. */
static void ack_rounds(struct dest *d)
{
	struct receiver *r0 = &d->rcv[0];
	struct wire_round_ack a;
	struct wire_apply_stats as;
	uint32_t ended;
	uint8_t buf[128];

	pthread_mutex_lock(&d->lock);
	ended = rounds_ended(d);
	pthread_mutex_unlock(&d->lock);
	if (ended == UINT32_MAX || ended <= d->acked)
		return;
	/*
	 * Test only: say this destination failed and go on reading, as a
	 * dead peer does whose death the source's writes never show.
	 */
	if (migrate_failpoint("dst-round-ack") == -EIO) {
		struct wire_error e;

		wire_error_set(&e, WIRE_ERR_INTERNAL, EIO, "failpoint dst-round-ack");
		msg_send_error(r0->ch, &r0->st, &e);
		d->acked = ended;
		return;
	}
	wire_apply_stats(d->apply, &as);
	a.round = ended - 1;
	a.pages = as.data + as.zero + as.zero_clean;
	/* Receiver 0 only reads channel 0; the main thread alone writes it. */
	/* A failed send: the channel is gone, and the receivers will say so. */
	msg_send(r0->ch, buf, wire_enc_round_ack(&r0->st, buf, sizeof(buf), &a));
	d->acked = ended;
}

static int receive(struct dest *d)
{
	int ret;

	ret = wire_apply_create(d->vm->mem, 4096, d->peer.regions, d->peer.nr_regions, &d->apply);
	if (!ret)
		ret = mark_backed(d);
	if (!ret) {
		d->batches = calloc(d->n, sizeof(*d->batches));
		d->vcpu_st = calloc(d->vm->nr_vcpus, sizeof(*d->vcpu_st));
		d->have_vcpu = calloc(d->vm->nr_vcpus, sizeof(*d->have_vcpu));
		if (!d->batches || !d->vcpu_st || !d->have_vcpu)
			ret = -ENOMEM;
	}
	for (unsigned int i = 0; !ret && i < d->n; i++) {
		struct receiver *r = &d->rcv[i];

		ret = wire_rx_create(4096, &r->rx);
		if (!ret)
			ret = msgbuf_init(&r->mb);
		if (!ret)
			ret = -pthread_create(&r->thread, NULL, receiver_main, r);
		if (!ret)
			r->started = true;
	}
	if (ret) {
		dest_fail(d, WIRE_ERR_INTERNAL, -ret, "setting up the receivers: %s", strerror(-ret));
		return ret;
	}
	/*
	 * COMPLETE comes after the state, on channel 0, once the source
	 * paused.  No bound of our own: a silent source trips the receivers'
	 * idle limit.  Meanwhile, acknowledge every round all channels ended.
	 */
	while (!dest_wait_for(d, complete_or_round_ended, 1000) || !d->have_complete) {
		if (d->abort)
			break;
		ack_rounds(d);
	}
	d->t_complete = d->complete_at;
	if (!d->abort && !dest_wait_for(d, all_rounds_ended, dest_idle_ms(d)))
		dest_fail(d, WIRE_ERR_INCOMPLETE, ETIMEDOUT,
			  "COMPLETE for round %u, but not every channel ended it",
			  d->complete.last_round);
	dest_stop_receivers(d);
	return d->abort ? -EPROTO : 0;
}

/*
 * The vCPU threads, parked until the commit: made now, a failure to make
 * them ends the migration before round 0, not after the source committed.
 * The hooks are the caller's own (copied), for a guest that outlives us.
 */
static int start_vcpus(struct dest *d)
{
	int ret = vm_runner_start_paused(d->vm, d->o->hooks, &d->runner);

	if (ret)
		dest_fail(d, WIRE_ERR_INTERNAL, -ret, "cannot start the vCPU threads: %s",
			  strerror(-ret));
	return ret;
}

static void dest_teardown(struct dest *d, bool keep_vm)
{
	/* Not handed over by the commit: joined, the guest never ran here. */
	vm_runner_free(d->runner);
	d->runner = NULL;
	dest_stop_receivers(d);
	for (unsigned int i = 0; i < d->n; i++) {
		struct receiver *r = &d->rcv[i];

		if (r->ch) {
			transport_get_stats(r->ch, &d->rep->net[i]);
			transport_stats_add(&d->rep->net_total, &d->rep->net[i]);
			snprintf(d->rep->transport, sizeof(d->rep->transport), "%s",
				 transport_backend_name(transport_chan_backend(r->ch)));
		}
		transport_close(r->ch);
		wire_rx_destroy(r->rx);
		msgbuf_release(&r->mb);
	}
	for (unsigned int i = 0; d->vcpu_st && i < d->vm->nr_vcpus; i++)
		if (d->have_vcpu[i])
			vcpu_state_release(&d->vcpu_st[i]);
	free(d->vcpu_st);
	free(d->have_vcpu);
	free(d->batches);
	if (d->apply) {
		struct wire_apply_stats as;

		wire_apply_stats(d->apply, &as);
		d->rep->pages = as.data + as.zero + as.zero_clean + as.stale;
		d->rep->zero_pages = as.zero + as.zero_clean;
		d->rep->apply_data = as.data;
		d->rep->apply_zero = as.zero + as.zero_clean;
		d->rep->apply_stale = as.stale;
		d->rep->pages_changed = as.changed;
		/* What the receivers took off the wire, headers included. */
		d->rep->wire_bytes = d->rep->net_total.bytes_received;
		wire_apply_destroy(d->apply);
	}
	for (unsigned int i = 0; i < d->nls; i++)
		transport_listener_close(d->ls[i]);
	if (!keep_vm && d->vm) {
		vm_destroy(d->vm);
		d->vm = NULL;
	}
	pthread_cond_destroy(&d->cond);
	pthread_mutex_destroy(&d->lock);
}

/* From here on the listeners serve QUERY about this session (answer.c). */
static int start_answerer(struct dest *d)
{
	int ret;

	d->ans = answer_state_new(d->peer.session_id);
	if (!d->ans)
		return -ENOMEM;
	ret = answerer_start(d->ls, d->nls, &d->o->net, d->ans, &d->answerer);
	if (ret) {
		free(d->ans);
		d->ans = NULL;
		dest_fail(d, WIRE_ERR_INTERNAL, -ret, "cannot start the answerer: %s",
			  strerror(-ret));
		return ret;
	}
	/* The answerer owns them now. */
	d->nls = 0;
	return 0;
}

int migrate_dest(const struct migrate_dest_opts *o, struct vm **vmp, struct vm_runner **runner,
		 struct migrate_answerer **ans, struct migrate_report *rep)
{
	struct dest *d = calloc(1, sizeof(*d));
	uint64_t t0 = 0;
	int ret = 0;

	memset(rep, 0, sizeof(*rep));
	rep->role = "destination";
	rep->yield_over_round = -1;
	rep->guest_bad_pages = -1;
	*vmp = NULL;
	*runner = NULL;
	if (ans)
		*ans = NULL;
	if (!d) {
		snprintf(rep->error, sizeof(rep->error), "out of memory");
		return -ENOMEM;
	}
	d->o = o;
	d->rep = rep;
	pthread_mutex_init(&d->lock, NULL);
	pthread_cond_init(&d->cond, NULL);

	ret = make_ahead(d);
	for (unsigned int i = 0; i < o->nr_listen && !ret; i++) {
		ret = transport_listen(o->listen[i], &o->net, &d->ls[i]);
		if (ret) {
			dest_fail(d, WIRE_ERR_INTERNAL, -ret, "cannot listen on %s: %s", o->listen[i],
				  transport_error());
			break;
		}
		d->nls++;
		if (o->listening)
			o->listening(o->listening_ctx, o->listen[i],
				     transport_listener_port(d->ls[i]));
	}
	if (!ret && !d->nls) {
		dest_fail(d, WIRE_ERR_INTERNAL, EINVAL, "no address to listen on");
		ret = -EINVAL;
	}
	if (!ret)
		ret = accept_channels(d);
	t0 = vmm_now_ns();
	if (!ret)
		ret = start_vcpus(d);
	rep->channels = d->n;
	rep->session_id = d->peer.session_id;
	if (!ret)
		ret = start_answerer(d);
	if (!ret)
		ret = receive(d);
	if (!ret) {
		ret = dest_switchover(d, runner);
	} else if (d->rcv[0].ch) {
		msg_send_error(d->rcv[0].ch, &d->rcv[0].st, &d->err);
		/* Let the error reach the source before our close resets the connection. */
		transport_drain(d->rcv[0].ch, 2000);
	}
	if (ret) {
		if (d->ans)
			answer_set(d->ans, ANSWER_DISCARDED);
		snprintf(rep->error, sizeof(rep->error), "%s",
			 d->abort_text[0] ? d->abort_text : strerror(-ret));
	}
	rep->total_ns = t0 ? vmm_now_ns() - t0 : 0;
	rep->clock_start_ns = t0;
	rep->ok = !ret;
	*vmp = ret ? NULL : d->vm;
	if (ans)
		*ans = d->answerer;
	else
		migrate_answerer_close(d->answerer);
	dest_teardown(d, !ret);
	free(d);
	return ret;
}
