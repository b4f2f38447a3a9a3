// SPDX-License-Identifier: GPL-2.0
/*
 * The migration source: connect and negotiate every channel, send all RAM
 * in round 0, then the pages each harvest reports until the rest fits in
 * the downtime limit (throttling the vCPUs if the guest outruns the link),
 * then pause, send the last pages and the vCPU and VM state, and wait for
 * the destination to confirm that the guest runs there.
 *
 * Every failure before that confirmation resumes the vCPUs here: the VM
 * keeps running on the source (see migrate.h).
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <unistd.h>

#include "migrate/source_int.h"
#include "wire/apply.h"

#define NSEC_PER_MSEC 1000000ull

void migrate_source_opts_init(struct migrate_source_opts *o)
{
	memset(o, 0, sizeof(*o));
	o->channels = 1;
	o->codec = WIRE_CODEC_RAW;
	o->adaptive = true;
	transport_opts_init(&o->net);
	converge_params_default(&o->conv);
	o->verify = true;
	o->confirm_timeout_ms = 30000;
}

void migrate_report_free(struct migrate_report *r)
{
	free(r->rounds);
	r->rounds = NULL;
	r->nr_rounds = 0;
}

/* The first failure's text wins; later ones only find abort set. */
static void source_abort(struct source *src, const char *text)
{
	pthread_mutex_lock(&src->lock);
	if (!src->abort) {
		snprintf(src->abort_text, sizeof(src->abort_text), "%s", text);
		src->abort = 1;
	}
	pthread_mutex_unlock(&src->lock);
}

/* Wake every blocked send, wait and receive. */
static void source_wake(struct source *src)
{
	for (unsigned int i = 0; i < src->n; i++)
		if (src->snd[i].ch)
			transport_cancel(src->snd[i].ch);
}

void source_fail(struct source *src, const char *fmt, ...)
{
	char text[sizeof(src->abort_text)];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(text, sizeof(text), fmt, ap);
	va_end(ap);
	source_abort(src, text);
	source_wake(src);
}

/* Our half of HELLO: this VM, and what we offer. */
static void local_hello(struct source *src, struct wire_hello *h, uint64_t session,
			unsigned int idx)
{
	const struct migrate_source_opts *o = src->o;

	migrate_hello_vm(src->vm, h);
	h->session_id = session;
	h->nr_channels = src->n;
	h->channel_idx = idx;
	h->features = o->verify ? WIRE_FEAT_RAM_HASH : 0;
	/* Raw pages by reference can change after the checksum: the RAM hash covers them. */
	if (o->verify && o->net.backend != TRANSPORT_PLAIN)
		h->features |= WIRE_FEAT_RAW_UNCHECKED;
	h->codecs = WIRE_CODEC_BIT(WIRE_CODEC_RAW) | WIRE_CODEC_BIT(o->codec);
}

static int handshake(struct source *src, struct sender *s, uint64_t session, struct msgbuf *mb)
{
	struct wire_hello hello;
	struct wire_hello_ack ack;
	struct wire_error err;
	uint8_t buf[WIRE_HDR_SIZE + 8192];
	int ret;

	wire_stream_init(&s->st, WIRE_ROLE_SOURCE, 4096);
	local_hello(src, &hello, session, s->idx);
	ret = msg_send(s->ch, buf, wire_enc_hello(&s->st, buf, sizeof(buf), &hello));
	if (ret) {
		source_fail(src, "channel %u: sending HELLO to %s: %s", s->idx,
			    transport_peer(s->ch), transport_error());
		return ret;
	}
	ret = msg_recv(s->ch, &s->st, mb, src->o->net.timeout_ms, &err);
	if (ret == -ECONNABORTED) {
		source_fail(src, "destination %s refused: %s (%s)", transport_peer(s->ch),
			    err.text, wire_err_name(err.code));
		return ret;
	}
	if (!ret)
		ret = wire_dec_hello_ack(&mb->hdr, mb->payload, &ack);
	if (ret) {
		source_fail(src, "channel %u: no valid HELLO_ACK from %s: %s", s->idx,
			    transport_peer(s->ch), strerror(-ret));
		return ret;
	}
	ret = wire_check_ack(&hello, &ack, &err);
	if (ret) {
		msg_send_error(s->ch, &s->st, &err);
		source_fail(src, "destination %s: %s", transport_peer(s->ch), err.text);
		return ret;
	}
	wire_stream_establish(&s->st, &ack);
	return 0;
}

static int connect_channels(struct source *src)
{
	const struct migrate_source_opts *o = src->o;
	struct msgbuf mb;
	uint64_t session = 0;
	int ret;

	ret = msgbuf_init(&mb);
	if (ret)
		return ret;
	while (!session)
		if (getrandom(&session, sizeof(session), 0) != sizeof(session))
			session = vmm_now_ns();

	for (unsigned int i = 0; i < src->n; i++) {
		struct sender *s = &src->snd[i];
		const char *to = o->to[i % o->nr_to];
		struct wire_tx_config cfg = {
			.page_size = 4096,
			.codec = o->codec,
			.level = o->level,
			.adaptive = o->adaptive,
		};

		s->src = src;
		s->idx = i;
		ret = transport_connect(to, &o->net, &s->ch);
		if (ret) {
			source_fail(src, "cannot connect channel %u to %s: %s", i, to,
				    transport_error());
			goto out;
		}
		snprintf(src->rep->peers[i], sizeof(src->rep->peers[i]), "%s",
			 transport_peer(s->ch));
		ret = handshake(src, s, session, &mb);
		if (ret)
			goto out;
		/* The codec and zero copy as negotiated, not as asked. */
		if (!(s->st.codecs & WIRE_CODEC_BIT(cfg.codec)))
			cfg.codec = WIRE_CODEC_RAW;
		cfg.zerocopy = s->st.features & WIRE_FEAT_RAW_UNCHECKED;
		if (o->bandwidth)
			cfg.link_bps = o->bandwidth / src->n;
		ret = wire_tx_create(&cfg, &s->tx);
		if (ret) {
			source_fail(src, "channel %u: codec setup: %s", i, strerror(-ret));
			goto out;
		}
		for (unsigned int j = 0; j < SENDER_INFLIGHT; j++) {
			ret = wire_txmsg_init(&s->msg[j]);
			if (ret) {
				source_fail(src, "out of memory");
				goto out;
			}
		}
	}
out:
	msgbuf_release(&mb);
	return ret;
}

/*
 * The control receiver: channel 0 is where the destination says ERROR (at
 * any time) or CONFIRM (at the end).  Reading it all along means a refusal
 * in round 3 stops us at once, not after the last round.
 */
static void *control_main(void *arg)
{
	struct source *src = arg;
	struct sender *s0 = &src->snd[0];
	struct wire_error err;
	struct msgbuf mb;
	int ret;

	if (msgbuf_init(&mb)) {
		source_fail(src, "out of memory");
		return NULL;
	}
	while (!src->ctl_stop) {
		ret = msg_recv(s0->ch, &s0->st, &mb, 200, &err);
		if (ret == -ETIMEDOUT)
			continue;
		if (ret == -ECONNABORTED) {
			source_fail(src, "destination: %s (%s)", err.text, wire_err_name(err.code));
			break;
		}
		if (!ret && mb.hdr.type == WIRE_CONFIRM) {
			struct wire_confirm c;

			ret = wire_dec_confirm(&mb.hdr, mb.payload, &c);
			if (!ret && c.status)
				ret = -EREMOTEIO;
			if (ret) {
				source_fail(src, "destination did not resume the guest (status %u)",
					    c.status);
				break;
			}
			pthread_mutex_lock(&src->lock);
			src->confirm = c;
			src->confirmed = true;
			pthread_cond_broadcast(&src->cond_confirm);
			pthread_mutex_unlock(&src->lock);
			break;
		}
		if (src->ctl_stop || src->abort)
			break;
		if (ret == -ENODATA)
			source_fail(src, "destination %s closed the connection",
				    transport_peer(s0->ch));
		else if (!ret)
			source_fail(src, "destination sent an unexpected message (type %u)",
				    mb.hdr.type);
		else
			source_fail(src, "control channel: %s", ret == -ECANCELED ? "cancelled" :
				    strerror(-ret));
		break;
	}
	/* Anyone waiting for CONFIRM learns it will not come. */
	pthread_mutex_lock(&src->lock);
	pthread_cond_broadcast(&src->cond_confirm);
	pthread_mutex_unlock(&src->lock);
	msgbuf_release(&mb);
	return NULL;
}

/* The pages of a log, ascending; *gfns grows as needed. */
static int log_pages(struct source *src, const struct dirty_log *log, uint64_t **gfns,
		     uint64_t *cap, uint64_t *n)
{
	struct dirty_log_iter it;
	uint64_t page;

	if (log->count > *cap) {
		uint64_t *p = realloc(*gfns, log->count * sizeof(*p));

		if (!p) {
			source_fail(src, "out of memory for %llu dirty pages",
				    (unsigned long long)log->count);
			return -ENOMEM;
		}
		*gfns = p;
		*cap = log->count;
	}
	*n = 0;
	dirty_log_iter_init(&it, log);
	while (dirty_log_next(&it, &page)) {
		if (*n == *cap) {
			source_fail(src, "dirty log: more set bits than its count %llu",
				    (unsigned long long)log->count);
			return -EOVERFLOW;
		}
		(*gfns)[(*n)++] = page;
	}
	return 0;
}

static int add_round(struct migrate_report *rep, const struct migrate_round *r)
{
	struct migrate_round *p = realloc(rep->rounds, (rep->nr_rounds + 1) * sizeof(*p));

	if (!p)
		return -ENOMEM;
	rep->rounds = p;
	rep->rounds[rep->nr_rounds++] = *r;
	return 0;
}

static int do_round(struct source *src, uint32_t round, const uint64_t *gfns, uint64_t n,
		    struct migrate_round *r)
{
	uint64_t t0 = vmm_now_ns();
	int ret;

	ret = senders_run_round(src, round, gfns, n);
	r->round = round;
	r->ns = vmm_now_ns() - t0;
	r->pages = r->zero_pages = r->wire_bytes = 0;
	memset(&r->time, 0, sizeof(r->time));
	for (unsigned int i = 0; i < src->n; i++) {
		const struct migrate_round_time *t = &src->snd[i].time;

		r->pages += src->snd[i].pages;
		r->zero_pages += src->snd[i].zero_pages;
		r->wire_bytes += src->snd[i].wire_bytes;
		r->time.read_ns += t->read_ns;
		r->time.comp_ns += t->comp_ns;
		r->time.send_ns += t->send_ns;
		r->time.link_ns += t->link_ns;
	}
	return ret;
}

/* Between rounds (senders idle): say why we give up, before hanging up. */
static void tell_dest(struct source *src, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void tell_dest(struct source *src, const char *fmt, ...)
{
	struct sender *s0 = &src->snd[0];
	struct wire_error e;
	char text[WIRE_MAX_TEXT];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(text, sizeof(text), fmt, ap);
	va_end(ap);
	wire_error_set(&e, WIRE_ERR_CANCELLED, ECANCELED, "%s", text);
	msg_send_error(s0->ch, &s0->st, &e);
}

/*
 * Give up with @why: record it first, so that the destination closing on
 * our message cannot put its own error in its place; then tell the
 * destination; then wake every blocked call.
 */
static void source_cancel(struct source *src, const char *why)
{
	source_abort(src, why);
	tell_dest(src, "%s", why);
	source_wake(src);
}

static bool cancelled(const struct source *src)
{
	return src->abort || (src->o->cancel && *src->o->cancel);
}

static int harvest(struct source *src, struct dirty_log *log)
{
	int ret = tracker_harvest(src->trk, log);

	if (ret)
		source_fail(src, "dirty tracking (%s): %s", tracker_name(src->trk),
			    tracker_error(src->trk)[0] ? tracker_error(src->trk) : strerror(-ret));
	return ret;
}

/* Between rounds only: the senders read it while they send. */
static void set_populated(struct source *src, const uint64_t *bits)
{
	for (unsigned int i = 0; i < src->n; i++)
		wire_tx_set_populated(src->snd[i].tx, bits);
	if (!bits) {
		free(src->populated);
		src->populated = NULL;
	}
}

static int round0_populated(struct source *src)
{
	int64_t n;

	src->populated = calloc((src->vm->mem_size / 4096 + 63) / 64, sizeof(uint64_t));
	if (!src->populated) {
		source_fail(src, "out of memory for the populated-page map");
		return -ENOMEM;
	}
	n = vm_mem_populated(src->vm, src->populated);
	if (n < 0) {
		/* Not fatal: round 0 then reads every page. */
		free(src->populated);
		src->populated = NULL;
		return 0;
	}
	set_populated(src, src->populated);
	return 0;
}

/*
 * Pre-copy rounds until the rest fits in the downtime.  On success the pages
 * harvested after the last round (still to be sent) are in gfns[0..*n) and
 * *next is the round that will carry them.
 */
static int precopy(struct source *src, uint64_t **gfns, uint64_t *cap, uint64_t *n,
		   uint32_t *next)
{
	const struct migrate_source_opts *o = src->o;
	struct converge_state cs;
	struct dirty_log log;
	unsigned int throttle = 0;
	uint32_t round = 0;
	uint64_t t0;
	int ret;

	converge_init(&cs);
	t0 = vmm_now_ns();
	/* The first harvest after start reports every page: round 0 is all RAM. */
	ret = harvest(src, &log);
	/* Pages never written go as zero markers unread (after the harvest: a later write is logged). */
	if (!ret)
		ret = round0_populated(src);
	for (; !ret; round++) {
		struct migrate_round r = { .throttle = throttle, .harvest_ns = log.total_ns };
		struct converge_round cr;
		enum converge_action act;

		ret = log_pages(src, &log, gfns, cap, n);
		if (ret)
			break;
		ret = do_round(src, round, *gfns, *n, &r);
		if (!round)
			set_populated(src, NULL);
		if (ret)
			break;
		ret = harvest(src, &log);
		if (ret)
			break;
		r.dirty_after = log.count;
		cr.pages = r.pages - r.zero_pages;
		cr.ns = r.ns;
		cr.dirty_pages = log.count;
		act = converge_next(&cs, &o->conv, &cr);
		r.expected_downtime_ns = cs.expected_downtime_ns;
		ret = add_round(src->rep, &r);
		if (ret)
			break;
		if (o->progress) {
			struct migrate_progress p = {
				.round = round, .dirty_pages = *n, .next_dirty = log.count,
				.pages_sent = r.pages, .wire_bytes = r.wire_bytes,
				.mibps = r.ns ? (r.pages * 4096.0 / (1 << 20)) / (r.ns / 1e9) : 0,
				.expected_downtime_ns = cs.expected_downtime_ns,
				.throttle = cs.throttle,
			};
			o->progress(o->progress_ctx, &p);
		}
		if (act == CONVERGE_STOP_AND_COPY) {
			src->rep->precopy_ns = vmm_now_ns() - t0;
			*next = round + 1;
			return log_pages(src, &log, gfns, cap, n);
		}
		if (act == CONVERGE_CANCEL) {
			src->rep->cancelled = true;
			source_cancel(src, cs.why);
			return -ETIMEDOUT;
		}
		if (cancelled(src)) {
			src->rep->cancelled = true;
			source_cancel(src, "cancelled on request");
			return -ECANCELED;
		}
		if (cs.throttle != throttle) {
			throttle = cs.throttle;
			vm_runner_throttle(src->runner, throttle);
			if (throttle > src->rep->max_throttle)
				src->rep->max_throttle = throttle;
		}
	}
	return ret;
}

/* VCPU_STATE for every vCPU and VM_STATE, on channel 0. */
static int send_state(struct source *src)
{
	struct sender *s0 = &src->snd[0];
	struct vm_state vs;
	uint8_t *buf;
	int ret;

	/*
	 * A buffer of its own: the senders' message buffers may still be held
	 * by the kernel for a zero-copy send (completions come only at the
	 * flush below), and writing one would change bytes not yet on the wire.
	 */
	buf = malloc(WIRE_MAX_MSG);
	if (!buf) {
		source_fail(src, "no memory for the vCPU state");
		return -ENOMEM;
	}
	for (unsigned int i = 0; i < src->vm->nr_vcpus; i++) {
		struct vcpu_state st;

		ret = vcpu_save_state(src->vm->vcpus[i], &st);
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
	ret = vm_save_state(src->vm, &vs);
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

/*
 * Stop-and-copy: pause, take the last harvest, send what is left and the
 * state, wait for every zero-copy completion, hash, COMPLETE, and wait for
 * the destination's CONFIRM.
 */
static int stop_and_copy(struct source *src, const uint64_t *left, uint64_t nleft,
			 uint32_t round)
{
	struct migrate_report *rep = src->rep;
	struct sender *s0 = &src->snd[0];
	struct migrate_round r = { .final = true };
	struct wire_complete c = { .last_round = round, .nr_vcpus = src->vm->nr_vcpus };
	struct vm_runner_stats rs;
	struct dirty_log log;
	uint64_t *final = NULL, nfinal, t_pause, t;
	uint8_t buf[256];
	int ret;

	t_pause = vmm_now_ns();
	ret = vm_runner_pause(src->runner);
	if (ret) {
		source_fail(src, "pausing the vCPUs: %s", strerror(-ret));
		return ret;
	}
	vm_runner_stats(src->runner, &rs);
	rep->guest_ops_end = rs.ops;

	ret = harvest(src, &log);
	if (ret)
		return ret;
	r.harvest_ns = log.total_ns;
	ret = merge_final(src, left, nleft, &log, &final, &nfinal);
	if (ret)
		return ret;
	ret = do_round(src, round, final, nfinal, &r);
	free(final);
	if (ret)
		return ret;
	ret = add_round(rep, &r);
	if (ret)
		return ret;

	ret = send_state(src);
	if (ret)
		return ret;
	/* The switch waits for the kernel to let go of every page it was given. */
	for (unsigned int i = 0; i < src->n; i++) {
		ret = transport_flush(src->snd[i].ch);
		if (ret) {
			source_fail(src, "channel %u: waiting for zero-copy completions: %s", i,
				    transport_error());
			return ret;
		}
	}
	rep->final_send_ns = vmm_now_ns() - t_pause;

	t = vmm_now_ns();
	if (s0->st.features & WIRE_FEAT_RAM_HASH) {
		struct wire_region reg[VM_MAX_SLOTS];

		migrate_vm_regions(src->vm, reg);
		long cpus = sysconf(_SC_NPROCESSORS_ONLN);

		/* Inside the downtime: every CPU helps. */
		ret = wire_ram_hash(src->vm->mem, reg, src->vm->nr_slots, cpus > 0 ? cpus : 1,
				    &c.ram_hash);
		if (ret) {
			source_fail(src, "hashing guest RAM: %s", strerror(-ret));
			return ret;
		}
		c.flags |= WIRE_COMPLETE_HASH;
		rep->ram_hash = c.ram_hash;
	}
	rep->hash_ns = vmm_now_ns() - t;
	for (unsigned int i = 0; i < src->n; i++) {
		c.total_pages += src->snd[i].st.tx_pages;
		c.total_bytes += src->snd[i].st.tx_bytes;
	}
	ret = msg_send(s0->ch, buf, wire_enc_complete(&s0->st, buf, sizeof(buf), &c));
	if (ret) {
		source_fail(src, "sending COMPLETE: %s", transport_error());
		return ret;
	}

	/* Now only the destination can say whether the guest moved. */
	t = vmm_now_ns();
	pthread_mutex_lock(&src->lock);
	while (!src->confirmed && !src->abort) {
		struct timespec ts;

		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_sec += 1;
		pthread_cond_timedwait(&src->cond_confirm, &src->lock, &ts);
		if (vmm_now_ns() - t > src->o->confirm_timeout_ms * NSEC_PER_MSEC)
			break;
	}
	pthread_mutex_unlock(&src->lock);
	rep->confirm_wait_ns = vmm_now_ns() - t;
	if (!src->confirmed) {
		source_fail(src, "no confirmation from the destination within %u ms",
			    src->o->confirm_timeout_ms);
		return -ETIMEDOUT;
	}
	rep->hash_checked = src->confirm.flags & WIRE_CONFIRM_HASH_CHECKED;
	rep->downtime_ns = vmm_now_ns() - t_pause;
	return 0;
}

static void codec_stats_add(struct wire_tx_stats *sum, const struct wire_tx_stats *st)
{
	double w = sum->raw_bytes + st->raw_bytes;

	/* Running estimates: weighted by the data each channel compressed. */
	if (w > 0) {
		sum->ratio = (sum->ratio * sum->raw_bytes + st->ratio * st->raw_bytes) / w;
		sum->speed = (sum->speed * sum->raw_bytes + st->speed * st->raw_bytes) / w;
	}
	sum->batches += st->batches;
	sum->pages += st->pages;
	sum->zero_pages += st->zero_pages;
	sum->data_pages += st->data_pages;
	sum->raw_bytes += st->raw_bytes;
	sum->wire_bytes += st->wire_bytes;
	for (unsigned int i = 0; i < WIRE_NR_CODECS; i++)
		sum->by_codec[i] += st->by_codec[i];
	sum->fallbacks += st->fallbacks;
	sum->skipped += st->skipped;
	sum->link_probes += st->link_probes;
	sum->comp_ns += st->comp_ns;
	sum->comp_bytes += st->comp_bytes;
	/* Each channel's share of the link: together, the whole. */
	sum->link_bps += st->link_bps;
	sum->link_measured |= st->link_measured;
}

static void collect_stats(struct source *src)
{
	struct migrate_report *rep = src->rep;

	memset(&rep->codec, 0, sizeof(rep->codec));
	memset(&rep->net_total, 0, sizeof(rep->net_total));
	rep->pages = rep->zero_pages = rep->wire_bytes = 0;
	for (unsigned int i = 0; i < rep->nr_rounds; i++) {
		rep->pages += rep->rounds[i].pages;
		rep->zero_pages += rep->rounds[i].zero_pages;
		rep->wire_bytes += rep->rounds[i].wire_bytes;
	}
	for (unsigned int i = 0; i < src->n; i++) {
		struct sender *s = &src->snd[i];
		struct wire_tx_stats ts;

		if (s->tx) {
			wire_tx_stats(s->tx, &ts);
			codec_stats_add(&rep->codec, &ts);
		}
		if (s->ch) {
			transport_get_stats(s->ch, &rep->net[i]);
			transport_stats_add(&rep->net_total, &rep->net[i]);
		}
	}
	rep->raw_bytes = rep->codec.raw_bytes;
}

static void teardown(struct source *src)
{
	if (src->ctl_started) {
		src->ctl_stop = 1;
		pthread_join(src->ctl_thread, NULL);
	}
	senders_stop(src);
	collect_stats(src);
	for (unsigned int i = 0; i < src->n; i++) {
		struct sender *s = &src->snd[i];

		transport_close(s->ch);
		for (unsigned int j = 0; j < SENDER_INFLIGHT; j++)
			wire_txmsg_release(&s->msg[j]);
		wire_tx_destroy(s->tx);
	}
	free(src->snd);
	free(src->populated);
	ratelimit_destroy(&src->rl);
	pthread_cond_destroy(&src->cond_confirm);
	pthread_cond_destroy(&src->cond_done);
	pthread_cond_destroy(&src->cond_work);
	pthread_mutex_destroy(&src->lock);
}

int migrate_source(struct vm *vm, struct vm_runner *runner, struct tracker *trk,
		   const struct migrate_source_opts *o, struct migrate_report *rep)
{
	struct source src = {
		.vm = vm, .runner = runner, .trk = trk, .o = o, .rep = rep,
		.n = o->channels,
	};
	struct vm_runner_stats rs;
	uint64_t *gfns = NULL, cap = 0, n = 0, t0 = vmm_now_ns();
	uint32_t round = 0;
	bool started = false;
	int ret;

	memset(rep, 0, sizeof(*rep));
	rep->role = "source";
	rep->channels = src.n;
	rep->mem_bytes = vm->mem_size;
	rep->nr_vcpus = vm->nr_vcpus;
	snprintf(rep->backend, sizeof(rep->backend), "%s", tracker_name(trk));
	snprintf(rep->codec_name, sizeof(rep->codec_name), "%s", wire_codec_name(o->codec));
	snprintf(rep->transport, sizeof(rep->transport), "%s",
		 transport_backend_name(o->net.backend));
	vm_runner_stats(runner, &rs);
	rep->guest_ops_start = rs.ops;
	rep->guest_bad_pages = -1;

	if (!o->nr_to || !src.n || src.n > MIGRATE_MAX_CHANNELS) {
		snprintf(rep->error, sizeof(rep->error), "need 1..%d channels and a destination",
			 MIGRATE_MAX_CHANNELS);
		return -EINVAL;
	}
	pthread_mutex_init(&src.lock, NULL);
	pthread_cond_init(&src.cond_work, NULL);
	pthread_cond_init(&src.cond_done, NULL);
	pthread_cond_init(&src.cond_confirm, NULL);
	ratelimit_init(&src.rl, o->bandwidth);
	src.snd = calloc(src.n, sizeof(*src.snd));
	if (!src.snd) {
		source_fail(&src, "out of memory");
		ret = -ENOMEM;
		goto out;
	}

	ret = connect_channels(&src);
	if (ret)
		goto out;
	ret = senders_start(&src);
	if (ret)
		goto out;
	ret = -pthread_create(&src.ctl_thread, NULL, control_main, &src);
	if (ret) {
		source_fail(&src, "cannot start the control thread");
		goto out;
	}
	src.ctl_started = true;

	ret = tracker_start(trk);
	if (ret) {
		source_fail(&src, "starting dirty tracking (%s): %s", tracker_name(trk),
			    tracker_error(trk)[0] ? tracker_error(trk) : strerror(-ret));
		goto out;
	}
	started = true;
	ret = precopy(&src, &gfns, &cap, &n, &round);
	if (ret)
		goto out;
	ret = stop_and_copy(&src, gfns, n, round);
out:
	free(gfns);
	if (ret && src.abort)
		snprintf(rep->error, sizeof(rep->error), "%s", src.abort_text);
	else if (ret && !rep->error[0])
		snprintf(rep->error, sizeof(rep->error), "%s", strerror(-ret));
	if (started)
		tracker_stop(trk);
	if (ret) {
		/* Not confirmed: the guest goes on here, at full speed. */
		vm_runner_throttle(runner, 0);
		vm_runner_resume(runner);
	} else {
		vm_runner_stop(runner);
	}
	if (src.snd)
		teardown(&src);
	vm_runner_stats(runner, &rs);
	rep->guest_errors = rs.guest_errors;
	rep->guest_max_gap_ns = rs.max_gap_ns;
	rep->total_ns = vmm_now_ns() - t0;
	rep->ok = !ret;
	return ret;
}
