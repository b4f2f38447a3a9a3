// SPDX-License-Identifier: GPL-2.0
/*
 * The migration source: connect and negotiate every channel, send all RAM
 * in round 0, then the pages each harvest reports until the rest, and the
 * switchover's fixed costs, fit in the downtime limit (throttling the vCPUs
 * if the guest outruns the link); then the switchover (switch_src.c).
 *
 * Every failure before the commit resumes the vCPUs here: the VM keeps
 * running on the source (see migrate.h).
 */
#include <errno.h>
#include <linux/capability.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "migrate/failpoint.h"
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
	o->resolve_every_ms = MIGRATE_RESOLVE_EVERY_MS;
}

void migrate_report_free(struct migrate_report *r)
{
	free(r->rounds);
	r->rounds = NULL;
	r->nr_rounds = 0;
}

void migrate_report_apply(struct migrate_report *r, uint64_t wait_ns, uint64_t check_ns,
			  uint64_t restore_ns)
{
	r->apply_wait_ns = wait_ns;
	r->apply_check_ns = check_ns;
	r->apply_restore_ns = restore_ns;
	r->down.apply_ns = wait_ns + check_ns + restore_ns;
}

/* The first failure's text wins; later ones only find abort set. */
void source_abort(struct source *src, const char *text)
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

void source_log(struct source *src, const char *fmt, ...)
{
	char line[512];
	va_list ap;

	if (!src->o->log)
		return;
	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	src->o->log(src->o->log_ctx, line);
}

void source_set_phase(struct source *src, enum migrate_phase p)
{
	pthread_mutex_lock(&src->ctl->lock);
	src->ctl->phase = p;
	pthread_cond_broadcast(&src->ctl->cond);
	pthread_mutex_unlock(&src->ctl->lock);
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
	/* Pages read in place may change while sent: the page digest covers them. */
	h->features = WIRE_FEAT_RAW_UNCHECKED | WIRE_FEAT_STARTED_HOLD;
	if (o->verify_ram)
		h->features |= WIRE_FEAT_RAM_HASH;
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
		/* A destination with a key closes a connection that has none at once. */
		bool hint = !src->o->net.auth &&
			    (ret == -ENODATA || ret == -ECONNRESET || ret == -EBADMSG);

		source_fail(src, "channel %u: no valid HELLO_ACK from %s: %s%s", s->idx,
			    transport_peer(s->ch), strerror(-ret),
			    hint ? " (this source runs --insecure: does the destination require a key?)" : "");
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
	src->session = session;
	src->rep->session_id = session;

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
		if (!i) {
			/* As the channel chose it: TLS may have turned zero copy off. */
			snprintf(src->rep->transport, sizeof(src->rep->transport), "%s",
				 transport_backend_name(transport_chan_backend(s->ch)));
			snprintf(src->rep->security, sizeof(src->rep->security), "%s",
				 transport_chan_security(s->ch));
			src->rep->crypto = transport_chan_crypto(s->ch);
		}
		ret = handshake(src, s, session, &mb);
		if (ret)
			goto out;
		if (!i)
			src->probe_st = s->st;
		/* The codec and zero copy as negotiated, not as asked. */
		if (!(s->st.codecs & WIRE_CODEC_BIT(cfg.codec)))
			cfg.codec = WIRE_CODEC_RAW;
		/* Raw pages by reference: sendmsg() copies them, or zero copy pins them. */
		cfg.zerocopy = s->st.features & WIRE_FEAT_RAW_UNCHECKED;
		if (o->bandwidth)
			cfg.link_bps = o->bandwidth / src->n;
		ret = wire_tx_create(&cfg, &s->tx);
		if (ret) {
			source_fail(src, "channel %u: codec setup: %s", i, strerror(-ret));
			goto out;
		}
		wire_tx_set_digest(s->tx, &src->digest);
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

/* Record what the destination said; wake whoever waits for news. */
static void news(struct source *src, void (*fn)(struct dest_news *, const void *), const void *arg)
{
	pthread_mutex_lock(&src->lock);
	fn(&src->news, arg);
	pthread_cond_broadcast(&src->cond_news);
	pthread_mutex_unlock(&src->lock);
}

/*
 * A round acknowledged: the time from its last ROUND_END to the ack is the
 * destination's drain time (its backlog plus a round trip); the smallest
 * seen is the round trip itself.  Both go into the downtime estimate.
 * Round 0's is no round trip: its ack waits for the destination to get
 * through all of RAM (2.4 s in one run, which made the commit part 3.7 s
 * and pre-copy give up on the limit).
 */
static void took_ack(struct source *src, const struct wire_round_ack *a)
{
	struct dest_news *n = &src->news;
	uint64_t now = vmm_now_ns(), sent;

	pthread_mutex_lock(&src->lock);
	if (a->round + 1 > n->acked) {
		n->acked = a->round + 1;
		n->ack_ns[a->round & 1] = now;
		sent = src->round_sent_at[a->round & 1];
		if (a->round && sent && now > sent && (!src->rtt_ns || now - sent < src->rtt_ns))
			src->rtt_ns = now - sent;
	}
	pthread_cond_broadcast(&src->cond_news);
	pthread_mutex_unlock(&src->lock);
}

static void news_ready(struct dest_news *n, const void *arg)
{
	n->rd = *(const struct wire_ready *)arg;
	n->ready = true;
	n->ready_at = vmm_now_ns();
}

static void news_started(struct dest_news *n, const void *arg)
{
	n->sd = *(const struct wire_started *)arg;
	n->started = true;
	n->started_at = vmm_now_ns();
}

static void news_gone(struct dest_news *n, const void *arg)
{
	const struct wire_error *e = arg;

	if (n->gone)
		return;
	n->gone = true;
	/* Only a destination that discarded its copy can say it never runs it. */
	n->discarded = e->code == WIRE_ERR_DISCARDED;
	snprintf(n->gone_why, sizeof(n->gone_why), "%s", e->text);
}

/*
 * The control receiver: channel 0 is where the destination acknowledges
 * rounds, says READY and STARTED, or ERROR at any time.  Reading it all
 * along means a refusal in round 3 stops us at once, not after the last
 * round.  The main thread decides what the news means for the phase it is
 * in; this thread only records it (and fails the migration on errors
 * before the switchover, which is always safe: nothing was committed).
 */
static void *control_main(void *arg)
{
	struct source *src = arg;
	struct sender *s0 = &src->snd[0];
	struct wire_error err;
	struct msgbuf mb;
	int ret;

	pthread_setname_np(pthread_self(), "src-control");
	if (msgbuf_init(&mb)) {
		source_fail(src, "out of memory");
		return NULL;
	}
	while (!src->ctl_stop) {
		ret = msg_recv(s0->ch, &s0->st, &mb, 200, &err);
		if (ret == -ETIMEDOUT)
			continue;
		if (!ret && mb.hdr.type == WIRE_ROUND_ACK) {
			struct wire_round_ack a;

			ret = wire_dec_round_ack(&mb.hdr, mb.payload, &a);
			if (!ret) {
				took_ack(src, &a);
				continue;
			}
		} else if (!ret && mb.hdr.type == WIRE_READY) {
			struct wire_ready rd;

			ret = wire_dec_ready(&mb.hdr, mb.payload, &rd);
			if (!ret) {
				news(src, news_ready, &rd);
				continue;
			}
		} else if (!ret && mb.hdr.type == WIRE_STARTED) {
			struct wire_started sd;

			ret = wire_dec_started(&mb.hdr, mb.payload, &sd);
			if (!ret && sd.hold_ns && !(s0->st.features & WIRE_FEAT_STARTED_HOLD))
				ret = -EBADMSG;
			if (!ret) {
				news(src, news_started, &sd);
				break;		/* nothing follows */
			}
		}
		if (src->ctl_stop)
			break;
		if (ret == -ECONNABORTED) {
			struct wire_error said = err;	/* not printed into itself */

			wire_error_set(&err, said.code, 0, "destination: %s (%s)", said.text,
				       wire_err_name(said.code));
		} else if (ret == -ENODATA) {
			wire_error_set(&err, 0, 0, "destination %s closed the connection",
				       transport_peer(s0->ch));
		} else if (!ret) {
			wire_error_set(&err, 0, 0, "destination sent an unexpected message (type %u)",
				       mb.hdr.type);
		} else {
			wire_error_set(&err, 0, 0, "control channel: %s",
				       ret == -ECANCELED ? "cancelled" : strerror(-ret));
		}
		news(src, news_gone, &err);
		/*
		 * Before the switchover nothing is committed: a destination
		 * gone or failed ends the migration now, not when a write
		 * fails (a destination that reads on never makes one fail).
		 * In the switchover the main thread decides (switch_src.c).
		 */
		if (migrate_ctl_phase(src->ctl) == MIGRATE_PRECOPY)
			source_fail(src, "%s", err.text);
		break;
	}
	/* Anyone waiting for news learns that no more will come. */
	pthread_mutex_lock(&src->lock);
	if (!src->news.gone && !src->news.started) {
		src->news.gone = true;
		snprintf(src->news.gone_why, sizeof(src->news.gone_why), "control channel closed");
	}
	pthread_cond_broadcast(&src->cond_news);
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

int source_add_round(struct migrate_report *rep, const struct migrate_round *r)
{
	struct migrate_round *p = realloc(rep->rounds, (rep->nr_rounds + 1) * sizeof(*p));

	if (!p)
		return -ENOMEM;
	rep->rounds = p;
	rep->rounds[rep->nr_rounds++] = *r;
	return 0;
}

/*
 * Time all CPUs of the host were busy (/proc/stat: every field but idle
 * and iowait, in USER_HZ ticks); 0 where it cannot be read.
 */
static uint64_t host_busy_ns(void)
{
	unsigned long long v[8] = { 0 };
	long hz = sysconf(_SC_CLK_TCK);
	FILE *f = fopen("/proc/stat", "re");
	int n = 0;

	if (f) {
		n = fscanf(f, "cpu %llu %llu %llu %llu %llu %llu %llu %llu",
			   &v[0], &v[1], &v[2], &v[3], &v[4], &v[5], &v[6], &v[7]);
		fclose(f);
	}
	if (n < 8 || hz <= 0)
		return 0;
	/* user nice system [idle iowait] irq softirq steal */
	return (v[0] + v[1] + v[2] + v[5] + v[6] + v[7]) * (1000000000ull / hz);
}

int source_round(struct source *src, uint32_t round, const uint64_t *gfns, uint64_t n,
		 struct migrate_round *r)
{
	uint64_t t0 = vmm_now_ns();
	uint64_t g0 = vm_runner_cpu_ns(src->runner), h0 = host_busy_ns(), g1, h1;
	int ret;

	ret = senders_run_round(src, round, gfns, n);
	r->round = round;
	r->ns = vmm_now_ns() - t0;
	g1 = vm_runner_cpu_ns(src->runner);
	h1 = host_busy_ns();
	r->guest_cpu_ns = g1 > g0 ? g1 - g0 : 0;
	r->host_cpu_ns = h0 && h1 > h0 ? h1 - h0 : 0;

	r->pages = r->zero_pages = r->wire_bytes = 0;
	memset(&r->time, 0, sizeof(r->time));
	r->nice = src->snd[0].nice;
	for (unsigned int i = 0; i < src->n; i++) {
		const struct migrate_round_time *t = &src->snd[i].time;

		if (src->snd[i].nice > r->nice)
			r->nice = src->snd[i].nice;
		r->pages += src->snd[i].pages;
		r->zero_pages += src->snd[i].zero_pages;
		r->wire_bytes += src->snd[i].wire_bytes;
		r->time.read_ns += t->read_ns;
		r->time.scan_ns += t->scan_ns;
		r->time.comp_ns += t->comp_ns;
		r->time.send_ns += t->send_ns;
		r->time.link_ns += t->link_ns;
		r->time.cap_ns += t->cap_ns;
		r->time.cpu_wait_ns += t->cpu_wait_ns;
		r->time.cpu_ns += t->cpu_ns;
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
 * destination (ERROR CANCELLED: discard everything); then wake every
 * blocked call.  Before the commit only.
 */
void source_cancel(struct source *src, const char *why)
{
	source_abort(src, why);
	tell_dest(src, "%s", why);
	source_wake(src);
}

bool source_cancelled(struct source *src)
{
	bool c;

	if (src->abort)
		return true;
	pthread_mutex_lock(&src->ctl->lock);
	c = src->ctl->cancel;
	pthread_mutex_unlock(&src->ctl->lock);
	return c;
}

int source_harvest(struct source *src, struct dirty_log *log)
{
	int ret = tracker_harvest(src->trk, log);

	if (ret)
		source_fail(src, "dirty tracking (%s): %s", tracker_name(src->trk),
			    tracker_error(src->trk)[0] ? tracker_error(src->trk) : strerror(-ret));
	return ret;
}

/* The operator (control socket, signal) asked to cancel. */
static bool operator_cancelled(struct source *src)
{
	bool c;

	pthread_mutex_lock(&src->ctl->lock);
	c = src->ctl->cancel;
	pthread_mutex_unlock(&src->ctl->lock);
	return c;
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
 * Between a round and the harvest after it: let the destination acknowledge
 * the round (its ROUND_ACK measures the drain time the estimate needs, and
 * a pause begun with the destination still behind would wait for it), at
 * most as long as the round took.  Unless the rest already fitted before
 * it (@shrink: a round that only shrinks the pause), give every round
 * ROUND_MIN_NS, so that rounds of a few pages do not spin through
 * --max-rounds before the guest had time to dirty anything.  A shrink
 * round's padding would only let the guest dirty more for the pause to
 * carry (in the test host at "below": 30-105 ms idle per 2 s migration).
 *
 * A destination gone or failed ends pre-copy here, and so does one whose
 * oldest unacknowledged round ended more than --timeout ago: one that takes
 * our bytes and acknowledges nothing is stuck, and the writes never tell
 * (in the test host a killed destination's connection once took 271 MB in
 * 600 s of pre-copy with no ack and no error).  0, or the failure.
 */
#define ROUND_MIN_NS		100000000ull
#define ROUND_ACK_WAIT_MIN_MS	100

static int settle(struct source *src, uint32_t round, uint64_t t_round, bool shrink,
		  struct migrate_round *r)
{
	const struct migrate_report *rep = src->rep;
	uint64_t wait_ms = r->ns / 1000000, late = 0, t = vmm_now_ns();
	char why[sizeof(src->abort_text)];
	uint32_t acked;
	int ret;

	ret = source_wait_acked(src, round, wait_ms > ROUND_ACK_WAIT_MIN_MS ? wait_ms :
					    ROUND_ACK_WAIT_MIN_MS);
	r->ack_wait_ns = vmm_now_ns() - t;
	if (ret == -ENOTCONN) {
		/* control_main() fails the migration too: the first says why. */
		pthread_mutex_lock(&src->lock);
		snprintf(why, sizeof(why), "%s", src->news.gone_why);
		pthread_mutex_unlock(&src->lock);
		source_fail(src, "%s", why);
		return -ECONNABORTED;
	}
	if (ret == -ECANCELED)		/* the operator's cancel: the caller says so */
		return operator_cancelled(src) ? 0 : -ECONNABORTED;
	pthread_mutex_lock(&src->lock);
	acked = src->news.acked;
	pthread_mutex_unlock(&src->lock);
	/* Rounds 0..round-1 are in the report; round @acked is the oldest unacknowledged. */
	if (acked < round && acked < rep->nr_rounds)
		late = vmm_now_ns() - rep->rounds[acked].end_ns;
	if (late > src->o->net.timeout_ms * 1000000ull) {
		snprintf(why, sizeof(why),
			 "round %u still unacknowledged %.1f s after it ended (--timeout %u ms): the destination is stuck or gone",
			 acked, late / 1e9, src->o->net.timeout_ms);
		/* Between rounds: channel 0 is ours to tell the destination to discard. */
		source_cancel(src, why);
		return -ETIMEDOUT;
	}
	t = vmm_now_ns();
	while (!shrink && vmm_now_ns() - t_round < ROUND_MIN_NS && !source_cancelled(src))
		usleep(5000);
	r->pad_ns = vmm_now_ns() - t;
	return 0;
}

static int probe_after_round0(struct source *src)
{
	uint64_t t = vmm_now_ns();
	int ret = source_probe(src);

	src->rep->probe_wall_ns = vmm_now_ns() - t;
	if (ret)
		source_fail(src, "timing the pause and the state save: %s", strerror(-ret));
	return ret;
}

/*
 * Whether the senders may go back from --nice to 0: lowering a nice value
 * takes CAP_SYS_NICE or an RLIMIT_NICE of 20 (the default is 0).  Where
 * they may not, auto-converge's first step would be spent on nothing.
 */
static bool may_unnice(void)
{
	struct __user_cap_header_struct h = { .version = _LINUX_CAPABILITY_VERSION_3 };
	struct __user_cap_data_struct c[_LINUX_CAPABILITY_U32S_3] = { 0 };
	struct rlimit rl;

	if (!getrlimit(RLIMIT_NICE, &rl) && (rl.rlim_cur == RLIM_INFINITY || rl.rlim_cur >= 20))
		return true;
	return !syscall(SYS_capget, &h, c) &&
	       (c[CAP_SYS_NICE / 32].effective & (1u << (CAP_SYS_NICE % 32)));
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
	struct converge_params cp = o->conv;
	struct converge_state cs;
	struct migrate_downtime fixed;
	struct dirty_log log;
	unsigned int throttle = 0;
	uint32_t round = 0;
	uint64_t t0, t_round;
	int ret;

	converge_init(&cs);
	cp.yielding = o->nice > 0 && may_unnice();
	if (o->nice && !cp.yielding)
		source_log(src, "the senders cannot go back from nice %u to 0 (no CAP_SYS_NICE, RLIMIT_NICE under 20): auto-converge throttles the vCPUs first",
			   o->nice);
	t0 = vmm_now_ns();
	/* The first harvest after start reports every page: round 0 is all RAM. */
	ret = source_harvest(src, &log);
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
		t_round = vmm_now_ns();
		ret = source_round(src, round, *gfns, *n, &r);
		if (!round)
			set_populated(src, NULL);
		if (ret && operator_cancelled(src)) {
			/* Cut short by a cancel: say so to the destination. */
			src->rep->cancelled = true;
			tell_dest(src, "%s", src->abort_text);
			return -ECANCELED;
		}
		if (ret)
			break;
		/*
		 * The switch probe, once: while the destination works through
		 * round 0's backlog, which settle() waits for anyway, and with
		 * the senders idle, as they are when the switchover saves the
		 * state (timed beside round 0's senders, the state part was
		 * expected at 1.3-2 times what it took).
		 */
		if (!round)
			ret = probe_after_round0(src);
		if (!ret)
			ret = settle(src, round, t_round, cs.shrinking, &r);
		if (ret)
			break;
		ret = source_harvest(src, &log);
		if (ret)
			break;
		/* Failed elsewhere meanwhile (the destination gone): no cancel, no switchover. */
		if (src->abort && !operator_cancelled(src)) {
			ret = -ECONNABORTED;
			break;
		}
		if (!src->harvest_min_ns || log.total_ns < src->harvest_min_ns)
			src->harvest_min_ns = log.total_ns;
		/*
		 * A pause's latency now, as the switchover would meet it right
		 * after this harvest: one kick, the vCPUs straight back into
		 * KVM_RUN.  (The probe's, with senders and receivers idle, was
		 * 0.4-1.5 ms in the test host where the switchover's pause
		 * took 2-20.)  A kick that timed out still says how long; one
		 * that found every vCPU asleep for the throttle says nothing.
		 */
		if (vm_runner_kick_wait(src->runner, 1000, &r.kick_ns) != -EAGAIN) {
			src->kick_sum_ns += r.kick_ns;
			src->kicks++;
		} else {
			r.kick_ns = UINT64_MAX;	/* untimed: -1 in the report */
		}
		r.dirty_after = log.count;
		cr.pages = r.pages - r.zero_pages;
		cr.zero_pages = r.zero_pages;
		cr.ns = r.ns;
		r.end_ns = t_round + r.ns;
		/* The channels wait on one bucket at once: their waits overlap. */
		cr.uncapped_ns = r.ns - (r.time.cap_ns / src->n < r.ns ? r.time.cap_ns / src->n : r.ns);
		cr.scan_ns = r.time.scan_ns / src->n;
		/* Like the cap's waits, the channels' waits for a CPU overlap. */
		cr.cpu_wait_ns = r.time.cpu_wait_ns / src->n;
		cr.guest_cpu_ns = r.guest_cpu_ns;
		cr.others_cpu_ns = r.host_cpu_ns > r.time.cpu_ns ? r.host_cpu_ns - r.time.cpu_ns : 0;
		cr.wire_bytes = r.wire_bytes;
		cr.cap_bps = o->bandwidth;
		cr.cap_tokens = ratelimit_tokens(&src->rl);
		cr.dirty_pages = log.count;
		/* The switchover's costs besides the pages: harvest, state, drain, commit, resume. */
		source_estimate(src, 0, 0, &fixed);
		cr.fixed_ns = fixed.total_ns;
		r.expected_fixed_ns = fixed.total_ns;
		act = converge_next(&cs, &cp, &cr);
		r.expected_downtime_ns = cs.expected_downtime_ns;
		r.bound_downtime_ns = cs.bound_downtime_ns;
		ret = source_add_round(src->rep, &r);
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
			src->rep->fixed_over = cs.fixed_over;
			src->rep->shrink_rounds = cs.shrink_rounds;
			if (cs.fixed_over)
				source_log(src, "the switchover's fixed costs alone (%.0f ms expected) exceed --downtime (%.0f ms): switching now, with the pages adding little",
					   fixed.total_ns / 1e6, o->conv.downtime_ns / 1e6);
			*next = round + 1;
			source_estimate(src, cs.expected_pages_ns, log.count, &src->rep->expected);
			return log_pages(src, &log, gfns, cap, n);
		}
		if (act == CONVERGE_CANCEL) {
			src->rep->cancelled = true;
			source_cancel(src, cs.why);
			return -ETIMEDOUT;
		}
		if (source_cancelled(src)) {
			src->rep->cancelled = true;
			if (!src->abort)
				source_cancel(src, src->ctl->why[0] ? src->ctl->why :
					      "cancelled on request");
			else
				tell_dest(src, "%s", src->abort_text);
			return -ECANCELED;
		}
		if (cs.yield_over && src->rep->yield_over_round < 0) {
			/* Read by the senders with the next round's job. */
			pthread_mutex_lock(&src->lock);
			src->job_nice = 0;
			pthread_mutex_unlock(&src->lock);
			src->rep->yield_over_round = round + 1;
			source_log(src, "round %u: the guest dirtied more than %u%% of what the rounds sent, two running: the senders stop yielding to it (nice 0 from round %u) before any throttle",
				   round, cp.trigger_pct, round + 1);
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
	wire_digest_release(&src->digest);
	ratelimit_destroy(&src->rl);
	pthread_cond_destroy(&src->cond_news);
	pthread_cond_destroy(&src->cond_done);
	pthread_cond_destroy(&src->cond_work);
	pthread_mutex_destroy(&src->lock);
}

/* --verify-ram: how fast a pass over guest RAM goes, for the estimate. */
static void measure_hash(struct source *src)
{
	uint64_t len = src->vm->mem_size < (16u << 20) ? src->vm->mem_size : (16u << 20);
	struct wire_region reg = { 0, len };
	long cpus = sysconf(_SC_NPROCESSORS_ONLN);
	uint64_t t0 = vmm_now_ns(), h, dt;

	if (wire_ram_hash(src->vm->mem, &reg, 1, cpus > 0 ? cpus : 1, &h))
		return;
	dt = vmm_now_ns() - t0;
	src->hash_bps = dt ? len * 1000000000ull / dt : 0;
}

int migrate_source(struct vm *vm, struct vm_runner *runner, struct tracker *trk,
		   const struct migrate_source_opts *o, struct migrate_report *rep)
{
	struct source src = {
		.vm = vm, .runner = runner, .trk = trk, .o = o, .rep = rep,
		.n = o->channels,
	};
	struct vm_runner_stats rs;
	uint64_t *gfns = NULL, cap = 0, n = 0, t0 = vmm_now_ns(), t_end = 0, t;
	uint32_t round = 0;
	bool started = false;
	int ret;

	memset(rep, 0, sizeof(*rep));
	rep->role = "source";
	rep->yield_over_round = -1;
	rep->outcome = MIGRATE_NOT_MIGRATED;
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
	rep->clock_start_ns = t0;

	if (!o->nr_to || !src.n || src.n > MIGRATE_MAX_CHANNELS) {
		snprintf(rep->error, sizeof(rep->error), "need 1..%d channels and a destination",
			 MIGRATE_MAX_CHANNELS);
		return -EINVAL;
	}
	if (o->ctl) {
		src.ctl = o->ctl;
	} else {
		migrate_ctl_init(&src.own_ctl);
		src.ctl = &src.own_ctl;
	}
	pthread_mutex_lock(&src.ctl->lock);
	src.ctl->cancel = src.ctl->resolve_now = src.ctl->force_resume = src.ctl->give_up = false;
	src.ctl->why[0] = 0;
	src.ctl->phase = MIGRATE_PRECOPY;
	pthread_mutex_unlock(&src.ctl->lock);
	pthread_mutex_init(&src.lock, NULL);
	pthread_cond_init(&src.cond_work, NULL);
	pthread_cond_init(&src.cond_done, NULL);
	pthread_cond_init(&src.cond_news, NULL);
	ratelimit_init(&src.rl, o->bandwidth);
	src.snd = calloc(src.n, sizeof(*src.snd));
	if (!src.snd || wire_digest_init(&src.digest, vm->mem_size / 4096)) {
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
	t = vmm_now_ns();
	rep->connect_ns = t - t0;

	if (o->verify_ram) {
		uint64_t t_hash = t;

		measure_hash(&src);
		t = vmm_now_ns();
		rep->hash_speed_ns = t - t_hash;
	}
	/* The parts share their ends: they add up to setup exactly. */
	ret = tracker_start(trk);
	if (ret) {
		source_fail(&src, "starting dirty tracking (%s): %s", tracker_name(trk),
			    tracker_error(trk)[0] ? tracker_error(trk) : strerror(-ret));
		goto out;
	}
	started = true;
	rep->setup_ns = vmm_now_ns() - t0;
	rep->track_start_ns = t0 + rep->setup_ns - t;
	ret = precopy(&src, &gfns, &cap, &n, &round);
	if (ret)
		goto out;
	ret = source_switchover(&src, gfns, n, round);
	/* Done when the guest runs there (QEMU's total ends sooner: at its last byte sent). */
	t_end = rep->outcome == MIGRATE_MIGRATED ? src.news.started_at : 0;
out:
	free(gfns);
	if (ret && src.abort)
		snprintf(rep->error, sizeof(rep->error), "%s", src.abort_text);
	else if (ret && !rep->error[0])
		snprintf(rep->error, sizeof(rep->error), "%s", strerror(-ret));
	if (started)
		tracker_stop(trk);
	if (rep->outcome == MIGRATE_MIGRATED) {
		vm_runner_stop(runner);
	} else if (rep->outcome == MIGRATE_NOT_MIGRATED) {
		/* Never committed, or the destination discarded: the guest goes on here. */
		vm_runner_throttle(runner, 0);
		vm_runner_resume(runner);
	}
	/* In doubt and given up: paused here for good, for the operator. */
	source_set_phase(&src, MIGRATE_DONE);
	if (src.snd)
		teardown(&src);
	vm_runner_stats(runner, &rs);
	rep->guest_errors = rs.guest_errors;
	rep->guest_max_gap_ns = rs.max_gap_ns;
	t = vmm_now_ns();
	if (!t_end)
		t_end = t;
	rep->total_ns = t_end - t0;
	rep->teardown_ns = t - t_end;
	rep->ok = rep->outcome == MIGRATE_MIGRATED;
	if (src.ctl == &src.own_ctl)
		migrate_ctl_destroy(&src.own_ctl);
	return rep->ok ? 0 : ret ? ret : -EIO;
}
