// SPDX-License-Identifier: GPL-2.0
/*
 * The transport over real TCP sockets on loopback: streams of iovec
 * messages with content checks on every backend, zero-copy completion
 * accounting, the ENOBUFS fallback, dead and silent peers, timeouts,
 * cancel, partial sends, and rejected input.
 *
 * On loopback the kernel copies every MSG_ZEROCOPY send after all (a
 * deferred copy): these tests check completions and correctness, not
 * copy avoidance.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <liburing.h>
#include <linux/capability.h>
#include <net/if.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <netinet/in.h>
#include <time.h>
#include <unistd.h>

#include "wire/transport.h"
#include "wire/transport_priv.h"

/* The harness defines its functions without prototypes. */
#pragma GCC diagnostic ignored "-Wmissing-prototypes"
#include "../../selftests/lib/ksft_compat.h"

#define MSG_MAGIC	0x766d6474u	/* "vmdt" */
#define MAX_PAYLOAD	(256 << 10)
#define SLOTS		8

struct msg_hdr {
	uint32_t magic;
	uint32_t chan;
	uint64_t seq;
	uint32_t len;
	uint32_t pad;
};

static uint64_t now_ms(void)
{
	return tp_now_ns() / 1000000;
}

static uint64_t splitmix(uint64_t *s)
{
	uint64_t z = (*s += 0x9e3779b97f4a7c15ull);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

/* The content of message (chan, seq): a function of both only. */
static void fill(void *buf, size_t len, uint32_t chan, uint64_t seq)
{
	uint64_t s = ((uint64_t)chan << 48) ^ seq, w;
	unsigned char *p = buf;

	while (len >= 8) {
		w = splitmix(&s);
		memcpy(p, &w, 8);
		p += 8;
		len -= 8;
	}
	w = splitmix(&s);
	memcpy(p, &w, len);
}

static bool uring_works(void)
{
	struct io_uring_probe *probe = io_uring_get_probe();
	bool ok = probe && io_uring_opcode_supported(probe, IORING_OP_SENDMSG_ZC);

	if (probe)
		io_uring_free_probe(probe);
	return ok;
}

/*
 * Zero-copy channels keep asking for zero copy although loopback copies
 * every send (TRANSPORT_OPT_ZC_ALWAYS): these tests are about completions.
 * adaptive_opts() is the default, which stops asking.
 */
static struct transport_opts adaptive_opts(enum transport_backend b, uint32_t timeout_ms)
{
	struct transport_opts o;

	transport_opts_init(&o);
	o.backend = b;
	o.timeout_ms = timeout_ms;
	return o;
}

static struct transport_opts opts(enum transport_backend b, uint32_t timeout_ms)
{
	struct transport_opts o = adaptive_opts(b, timeout_ms);

	if (b != TRANSPORT_PLAIN)
		o.flags = TRANSPORT_OPT_ZC_ALWAYS;
	return o;
}

/*
 * n connected pairs over one listener on addr ("127.0.0.1:0"): snd[i] made
 * with so, rcv[] accepted with lo.
 */
static int make_pairs(const char *addr, const struct transport_opts *so,
		      const struct transport_opts *lo, int n,
		      struct transport_chan **snd, struct transport_chan **rcv)
{
	struct transport_listener *l;
	char dst[64];
	int ret;

	ret = transport_listen(addr, lo, &l);
	if (ret)
		return ret;
	snprintf(dst, sizeof(dst), "%s%d", addr[0] == '[' ? "[::1]:" : "127.0.0.1:",
		 transport_listener_port(l));
	for (int i = 0; i < n && !ret; i++) {
		ret = transport_connect(dst, so, &snd[i]);
		if (!ret)
			ret = transport_accept(l, 5000, &rcv[i]);
	}
	transport_listener_close(l);
	return ret;
}

/* Input checks. */

TEST(rejects_bad_addresses)
{
	static const char *const bad_connect[] = {
		"", "127.0.0.1", "127.0.0.1:", "127.0.0.1:x1", "127.0.0.1:65536",
		"127.0.0.1:123456", "127.0.0.1:-1", "::1:80", "[::1", "[::1]80",
		"[::1]:", "[]:80", "127.0.0.1:0", ":80", "[::1]:+80",
	};
	static const char *const bad_listen[] = {
		"", "x", "127.0.0.1:99999", "::1:0", "[::1]0", "1.2.3.4: 80",
	};
	struct transport_listener *l = NULL;
	struct transport_chan *ch = NULL;

	for (size_t i = 0; i < sizeof(bad_connect) / sizeof(bad_connect[0]); i++) {
		EXPECT_EQ(-EINVAL, transport_connect(bad_connect[i], NULL, &ch))
			TH_LOG("connect '%s'", bad_connect[i]);
		EXPECT_NE(0, strlen(transport_error()));
	}
	for (size_t i = 0; i < sizeof(bad_listen) / sizeof(bad_listen[0]); i++) {
		EXPECT_EQ(-EINVAL, transport_listen(bad_listen[i], NULL, &l))
			TH_LOG("listen '%s'", bad_listen[i]);
	}
	EXPECT_EQ(-EINVAL, transport_connect(NULL, NULL, &ch));
	EXPECT_EQ(-EINVAL, transport_listen("127.0.0.1:0", NULL, NULL));
	EXPECT_EQ(-EINVAL, transport_connect("127.0.0.1:1", NULL, NULL));
	EXPECT_EQ(NULL, ch);
	EXPECT_EQ(NULL, l);
}

TEST(rejects_bad_opts)
{
	struct transport_listener *l = NULL;
	struct transport_opts o;

	o = opts(TRANSPORT_NR_BACKENDS, 0);
	EXPECT_EQ(-EINVAL, transport_listen("127.0.0.1:0", &o, &l));
	o = opts(-1, 0);
	EXPECT_EQ(-EINVAL, transport_listen("127.0.0.1:0", &o, &l));
	o = opts(TRANSPORT_PLAIN, 0);
	o.flags = TRANSPORT_OPT_ALL + 1;
	EXPECT_EQ(-EINVAL, transport_listen("127.0.0.1:0", &o, &l));
	o.flags = 1u << 31;
	EXPECT_EQ(-EINVAL, transport_listen("127.0.0.1:0", &o, &l));
	o = opts(TRANSPORT_PLAIN, 0x20000000);
	EXPECT_EQ(-EINVAL, transport_listen("127.0.0.1:0", &o, &l));
	o = opts(TRANSPORT_PLAIN, 0);
	o.sndbuf = 0x80000000u;
	EXPECT_EQ(-EINVAL, transport_listen("127.0.0.1:0", &o, &l));
	EXPECT_EQ(NULL, l);
}

TEST(backend_names)
{
	enum transport_backend b;

	for (int i = 0; i < TRANSPORT_NR_BACKENDS; i++) {
		ASSERT_EQ(0, transport_backend_parse(transport_backend_name(i), &b));
		EXPECT_EQ(i, b);
	}
	EXPECT_EQ(-EINVAL, transport_backend_parse("zero-copy", &b));
	EXPECT_EQ(-EINVAL, transport_backend_parse("", &b));
	EXPECT_EQ(-EINVAL, transport_backend_parse(NULL, &b));
	EXPECT_STREQ("invalid", transport_backend_name(TRANSPORT_NR_BACKENDS));
}

TEST(rejects_bad_send_and_recv)
{
	struct transport_opts o = opts(TRANSPORT_ZEROCOPY, 1000);
	struct transport_chan *s, *r;
	char buf[64] = { 0 };
	struct iovec v = { .iov_base = buf, .iov_len = sizeof(buf) };
	struct iovec nullbase = { .iov_base = NULL, .iov_len = 8 };
	transport_ticket_t t = 77;

	ASSERT_EQ(0, make_pairs("127.0.0.1:0", &o, &o, 1, &s, &r));
	EXPECT_EQ(-EINVAL, transport_send(s, &v, 1, 1u << 5, &t));
	EXPECT_EQ(TRANSPORT_TICKET_DONE, t);
	EXPECT_EQ(-EINVAL, transport_send(s, &v, -1, 0, &t));
	EXPECT_EQ(-EINVAL, transport_send(s, &v, IOV_MAX + 1, 0, &t));
	EXPECT_EQ(-EINVAL, transport_send(s, NULL, 1, 0, &t));
	EXPECT_EQ(-EINVAL, transport_send(s, &nullbase, 1, 0, &t));
	EXPECT_EQ(-EINVAL, transport_send(NULL, &v, 1, 0, &t));
	EXPECT_EQ(-EINVAL, transport_recvv(r, &v, -1));
	EXPECT_EQ(-EINVAL, transport_recvv(r, NULL, 2));
	EXPECT_EQ(-EINVAL, transport_recvv(r, &nullbase, 1));
	EXPECT_EQ(-EINVAL, transport_recv(NULL, buf, 1));
	EXPECT_EQ(-EINVAL, transport_link(NULL, &(struct transport_link){ 0 }));
	EXPECT_EQ(-EINVAL, transport_link(s, NULL));
	/* A ticket this channel never issued. */
	EXPECT_EQ(-EINVAL, transport_ticket_done(s, 5));
	EXPECT_EQ(-EINVAL, transport_wait(s, 5));
	EXPECT_EQ(1, transport_ticket_done(s, TRANSPORT_TICKET_DONE));
	/* Empty sends and receives are no-ops; nothing was sent above. */
	EXPECT_EQ(0, transport_send(s, &v, 0, 0, &t));
	EXPECT_EQ(0, transport_recv(r, buf, 0));
	EXPECT_EQ(0, transport_send(s, &v, 1, 0, &t));
	EXPECT_EQ(TRANSPORT_TICKET_DONE, t);	/* below zc_min_bytes: copied */
	EXPECT_EQ(0, transport_recv(r, buf, sizeof(buf)));
	transport_close(s);
	transport_close(r);
}

/* When a channel stops asking for zero copy, on reported completions alone. */
TEST(zerocopy_stop_rule)
{
	struct transport_chan ch;

	/* Copied from the first completion on: stops at the threshold. */
	memset(&ch, 0, sizeof(ch));
	for (int i = 0; i < TRANSPORT_ZC_GIVE_UP - 1; i++)
		tp_zc_completed(&ch, 1, true);
	EXPECT_EQ(0, ch.tx.zc_stopped);
	EXPECT_EQ(0, ch.tx.zc_stopped);
	tp_zc_completed(&ch, 1, true);
	EXPECT_EQ(1, ch.tx.zc_stopped);
	EXPECT_EQ(1, ch.tx.zc_stopped);
	EXPECT_EQ(TRANSPORT_ZC_GIVE_UP, ch.tx.zc_copied);
	EXPECT_EQ(TRANSPORT_ZC_GIVE_UP, ch.tx.zc_completions);

	/* A merged range counts whole. */
	memset(&ch, 0, sizeof(ch));
	tp_zc_completed(&ch, TRANSPORT_ZC_GIVE_UP, true);
	EXPECT_EQ(1, ch.tx.zc_stopped);

	/* One send really zero-copied: occasional copies never stop it. */
	memset(&ch, 0, sizeof(ch));
	tp_zc_completed(&ch, 1, false);
	for (int i = 0; i < 10 * TRANSPORT_ZC_GIVE_UP; i++)
		tp_zc_completed(&ch, 1, true);
	EXPECT_EQ(0, ch.tx.zc_stopped);
	EXPECT_EQ(0, ch.tx.zc_stopped);
	EXPECT_EQ(10 * TRANSPORT_ZC_GIVE_UP, ch.tx.zc_copied);

	/* ... nor does anything with TRANSPORT_OPT_ZC_ALWAYS. */
	memset(&ch, 0, sizeof(ch));
	ch.opts.flags = TRANSPORT_OPT_ZC_ALWAYS;
	tp_zc_completed(&ch, 10 * TRANSPORT_ZC_GIVE_UP, true);
	EXPECT_EQ(0, ch.tx.zc_stopped);
	EXPECT_EQ(0, ch.tx.zc_stopped);
}

TEST(completion_window)
{
	struct tp_zcwin w = { 0 };

	ASSERT_EQ(0, tp_zcwin_reserve(&w, 3000));
	for (int i = 0; i < 3000; i++)
		EXPECT_EQ(i, tp_zcwin_issue(&w));
	/* Out of order: nothing is done until the first id is. */
	EXPECT_EQ(1000, tp_zcwin_complete(&w, 1000, 1999));
	EXPECT_EQ(0, w.done);
	EXPECT_EQ(-EPROTO, tp_zcwin_complete(&w, 1500, 1500));	/* twice */
	EXPECT_EQ(-EPROTO, tp_zcwin_complete(&w, 2999, 3000));	/* never issued */
	EXPECT_EQ(-EPROTO, tp_zcwin_complete(&w, 10, 9));
	EXPECT_EQ(1000, tp_zcwin_complete(&w, 0, 999));
	EXPECT_EQ(2000, w.done);
	EXPECT_EQ(-EPROTO, tp_zcwin_complete(&w, 5, 5));	/* already done */
	/* Grow while ids are pending; their bits survive. */
	EXPECT_EQ(1, tp_zcwin_complete(&w, 2500, 2500));
	ASSERT_EQ(0, tp_zcwin_reserve(&w, 10000));
	EXPECT_EQ(-EPROTO, tp_zcwin_complete(&w, 2500, 2500));
	EXPECT_EQ(500, tp_zcwin_complete(&w, 2000, 2499));
	EXPECT_EQ(2501, w.done);
	/* 32-bit kernel ids past the wrap. */
	w.next = w.done = 0xfffffff0ull;
	EXPECT_EQ(0x100000005ull, tp_zcwin_widen(&w, 5));
	EXPECT_EQ(0xfffffff1ull, tp_zcwin_widen(&w, 0xfffffff1u));
	tp_zcwin_free(&w);
}

/* Streams of messages, every backend, 1 and 4 channels. */

struct stream_chan {
	struct transport_chan *snd, *rcv;
	uint32_t id;
	int messages;
	char err[200];
	struct transport_stats st;
	uint64_t bytes;
};

static void *stream_sender(void *arg)
{
	struct stream_chan *c = arg;
	struct msg_hdr *hdr = calloc(SLOTS, sizeof(*hdr));
	char *pay = malloc((size_t)SLOTS * MAX_PAYLOAD);
	transport_ticket_t ticket[SLOTS] = { 0 };
	uint64_t rnd = c->id + 1;
	int ret = 0;

	if (!hdr || !pay) {
		snprintf(c->err, sizeof(c->err), "out of memory");
		goto out;
	}
	for (int seq = 0; seq < c->messages && !ret; seq++) {
		int s = seq % SLOTS, n = 1 + splitmix(&rnd) % 8;
		struct iovec iov[9];
		char *p = pay + (size_t)s * MAX_PAYLOAD;
		uint32_t len = 1 + splitmix(&rnd) % MAX_PAYLOAD, off = 0;

		/* The slot's last send must be done with it before it changes. */
		ret = transport_wait(c->snd, ticket[s]);
		if (ret)
			break;
		if (transport_ticket_done(c->snd, ticket[s]) != 1) {
			snprintf(c->err, sizeof(c->err), "ticket not done after wait");
			ret = -EPROTO;
			break;
		}
		hdr[s] = (struct msg_hdr){ MSG_MAGIC, c->id, seq, len, 0 };
		fill(p, len, c->id, seq);
		iov[0] = (struct iovec){ &hdr[s], sizeof(hdr[s]) };
		/* Cut the payload into up to 8 pieces, like scattered pages. */
		for (int i = 1; i <= n; i++) {
			uint32_t piece = i == n ? len - off : (len - off) / 2;

			iov[i] = (struct iovec){ p + off, piece };
			off += piece;
		}
		ret = transport_send(c->snd, iov, n + 1, 0, &ticket[s]);
		c->bytes += sizeof(hdr[s]) + len;
	}
	if (!ret)
		ret = transport_flush(c->snd);
	if (ret && !c->err[0])
		snprintf(c->err, sizeof(c->err), "send: %s", transport_error());
out:
	free(hdr);
	free(pay);
	return NULL;
}

static void *stream_receiver(void *arg)
{
	struct stream_chan *c = arg;
	char *buf = malloc(MAX_PAYLOAD), *want = malloc(MAX_PAYLOAD);
	uint32_t chan = UINT32_MAX;
	int ret = 0;

	if (!buf || !want) {
		snprintf(c->err, sizeof(c->err), "out of memory");
		goto out;
	}
	for (int seq = 0; seq < c->messages; seq++) {
		struct msg_hdr h;

		ret = transport_recv(c->rcv, &h, sizeof(h));
		if (ret) {
			snprintf(c->err, sizeof(c->err), "recv header %d: %s", seq,
				 transport_error());
			break;
		}
		if (chan == UINT32_MAX)
			chan = h.chan;
		if (h.magic != MSG_MAGIC || h.chan != chan || h.seq != (uint64_t)seq ||
		    !h.len || h.len > MAX_PAYLOAD || h.pad) {
			snprintf(c->err, sizeof(c->err), "bad header %d: %x %u %llu %u", seq,
				 h.magic, h.chan, (unsigned long long)h.seq, h.len);
			break;
		}
		ret = transport_recv(c->rcv, buf, h.len);
		if (ret) {
			snprintf(c->err, sizeof(c->err), "recv payload %d: %s", seq,
				 transport_error());
			break;
		}
		fill(want, h.len, h.chan, h.seq);
		if (memcmp(buf, want, h.len)) {
			snprintf(c->err, sizeof(c->err), "channel %u message %d: content differs",
				 chan, seq);
			break;
		}
	}
out:
	free(buf);
	free(want);
	return NULL;
}

FIXTURE(stream) {
	int n;
	struct stream_chan c[4];
};

FIXTURE_VARIANT(stream) {
	enum transport_backend backend;
	int channels;
	const char *addr;
	bool adaptive;		/* the default: stop asking once all are copied */
};

FIXTURE_VARIANT_ADD(stream, plain_1) { TRANSPORT_PLAIN, 1, "127.0.0.1:0", false };
FIXTURE_VARIANT_ADD(stream, plain_4) { TRANSPORT_PLAIN, 4, "127.0.0.1:0", false };
FIXTURE_VARIANT_ADD(stream, zerocopy_1) { TRANSPORT_ZEROCOPY, 1, "127.0.0.1:0", false };
FIXTURE_VARIANT_ADD(stream, zerocopy_4) { TRANSPORT_ZEROCOPY, 4, "127.0.0.1:0", false };
FIXTURE_VARIANT_ADD(stream, zerocopy_ipv6) { TRANSPORT_ZEROCOPY, 2, "[::1]:0", false };
FIXTURE_VARIANT_ADD(stream, uring_1) { TRANSPORT_URING, 1, "127.0.0.1:0", false };
FIXTURE_VARIANT_ADD(stream, uring_4) { TRANSPORT_URING, 4, "127.0.0.1:0", false };
FIXTURE_VARIANT_ADD(stream, zerocopy_adaptive_1) { TRANSPORT_ZEROCOPY, 1, "127.0.0.1:0", true };
FIXTURE_VARIANT_ADD(stream, zerocopy_adaptive_4) { TRANSPORT_ZEROCOPY, 4, "127.0.0.1:0", true };
FIXTURE_VARIANT_ADD(stream, uring_adaptive_2) { TRANSPORT_URING, 2, "127.0.0.1:0", true };

FIXTURE_SETUP(stream)
{
	struct transport_chan *snd[4], *rcv[4];
	struct transport_opts o = variant->adaptive ? adaptive_opts(variant->backend, 5000) :
				  opts(variant->backend, 5000);
	struct transport_opts lo = opts(TRANSPORT_PLAIN, 5000);
	int ret;

	if (variant->backend == TRANSPORT_URING && !uring_works())
		SETUP_SKIP("io_uring is not available");
	self->n = variant->channels;
	ret = make_pairs(variant->addr, &o, &lo, self->n, snd, rcv);
	if (ret == -EAFNOSUPPORT || ret == -EADDRNOTAVAIL)
		SETUP_SKIP("%s: %s", variant->addr, transport_error());
	ASSERT_EQ(0, ret) TH_LOG("%s", transport_error());
	for (int i = 0; i < self->n; i++)
		self->c[i] = (struct stream_chan){ .snd = snd[i], .rcv = rcv[i], .id = i,
						     .messages = 400 };
}

FIXTURE_TEARDOWN(stream)
{
	for (int i = 0; i < self->n; i++) {
		transport_close(self->c[i].snd);
		transport_close(self->c[i].rcv);
	}
}

TEST_F(stream, messages_arrive_intact)
{
	struct stream_chan rx[4];
	pthread_t ts[4], tr[4];
	struct transport_stats sum = { 0 };

	for (int i = 0; i < self->n; i++) {
		rx[i] = self->c[i];
		ASSERT_EQ(0, pthread_create(&tr[i], NULL, stream_receiver, &rx[i]));
		ASSERT_EQ(0, pthread_create(&ts[i], NULL, stream_sender, &self->c[i]));
	}
	for (int i = 0; i < self->n; i++) {
		pthread_join(ts[i], NULL);
		pthread_join(tr[i], NULL);
	}
	for (int i = 0; i < self->n; i++) {
		struct transport_stats st, rs;
		struct transport_link lk;

		EXPECT_STREQ("", self->c[i].err);
		EXPECT_STREQ("", rx[i].err);
		transport_get_stats(self->c[i].snd, &st);
		transport_get_stats(self->c[i].rcv, &rs);
		EXPECT_EQ(self->c[i].bytes, st.bytes_sent);
		EXPECT_EQ(self->c[i].bytes, rs.bytes_received);
		EXPECT_EQ(self->c[i].messages, st.sends);
		EXPECT_LE(st.sends, st.send_calls);
		EXPECT_EQ(st.zc_sends, st.zc_completions);
		/* TCP measured what the channel delivered. */
		ASSERT_EQ(0, transport_link(self->c[i].snd, &lk)) TH_LOG("%s", transport_error());
		EXPECT_LT(0, lk.delivery_bps);
		EXPECT_LT(0, lk.rtt_us);
		EXPECT_LT(0, lk.delivered);
		if (variant->adaptive && st.zc_copied) {
			/*
			 * Every completion came back copied (loopback): the
			 * channel stopped asking after TRANSPORT_ZC_GIVE_UP,
			 * give or take the sends made before it read them.
			 */
			EXPECT_EQ(1, st.zc_stopped);
			EXPECT_LE(TRANSPORT_ZC_GIVE_UP, st.zc_sends);
			EXPECT_GT(self->c[i].messages / 2, st.zc_sends);
		} else {
			/* Kept asking, or no usage reports (io_uring before 6.2). */
			EXPECT_EQ(0, st.zc_stopped);
		}
		transport_stats_add(&sum, &st);
	}
	TH_LOG("%s%s x%d: %llu sends, %llu calls, %llu zc (%llu copied), %llu copies, %llu notifications",
	       transport_backend_name(variant->backend), variant->adaptive ? " adaptive" : "",
	       self->n,
	       (unsigned long long)sum.sends, (unsigned long long)sum.send_calls,
	       (unsigned long long)sum.zc_sends, (unsigned long long)sum.zc_copied,
	       (unsigned long long)sum.copied_sends, (unsigned long long)sum.notifications);
	if (variant->backend == TRANSPORT_PLAIN) {
		EXPECT_EQ(0, sum.zc_sends);
		EXPECT_EQ(sum.send_calls, sum.copied_sends);
		return;
	}
	/* About 1 in 16 messages is below zc_min_bytes and copied. */
	EXPECT_LT(0, sum.zc_sends);
	EXPECT_LT(0, sum.copied_sends);
	EXPECT_LT(0, sum.notifications);
	/* Loopback copies every zero-copy send: whatever the kernel said, all. */
	EXPECT_EQ(sum.zc_completions, sum.zc_copied);
}

/* Tickets and flush. */

FIXTURE(zc) {
	struct transport_chan *s, *r;
	char *buf;
};

FIXTURE_VARIANT(zc) {
	enum transport_backend backend;
};

FIXTURE_VARIANT_ADD(zc, zerocopy) { TRANSPORT_ZEROCOPY };
FIXTURE_VARIANT_ADD(zc, uring) { TRANSPORT_URING };

#define ZC_MSG	(192 << 10)

/*
 * The receiver's buffer is tiny and nobody reads it: most of each message
 * stays in the sender's queue, its pages pinned, until the test reads.
 */
FIXTURE_SETUP(zc)
{
	struct transport_opts o = opts(variant->backend, 400);
	struct transport_opts lo = opts(TRANSPORT_PLAIN, 5000);

	if (variant->backend == TRANSPORT_URING && !uring_works())
		SETUP_SKIP("io_uring is not available");
	o.sndbuf = 4 << 20;
	lo.rcvbuf = 4096;
	ASSERT_EQ(0, make_pairs("127.0.0.1:0", &o, &lo, 1, &self->s, &self->r))
		TH_LOG("%s", transport_error());
	self->buf = malloc(4 * ZC_MSG);
	ASSERT_NE(NULL, self->buf);
}

FIXTURE_TEARDOWN(zc)
{
	transport_close(self->s);
	transport_close(self->r);
	free(self->buf);
}

static int drain(struct transport_chan *r, char *buf, size_t len, uint32_t chan, int n)
{
	char *want = malloc(len);
	int ret = 0;

	for (int i = 0; i < n && !ret; i++) {
		ret = transport_recv(r, buf, len);
		fill(want, len, chan, i);
		if (!ret && memcmp(buf, want, len))
			ret = -EBADMSG;
	}
	free(want);
	return ret;
}

TEST_F(zc, ticket_not_done_before_completion)
{
	struct iovec v = { self->buf, ZC_MSG };
	transport_ticket_t t, tc;
	struct transport_stats st;
	char *rbuf = malloc(ZC_MSG);

	fill(self->buf, ZC_MSG, 9, 0);
	ASSERT_EQ(0, transport_send(self->s, &v, 1, 0, &t));
	ASSERT_NE(TRANSPORT_TICKET_DONE, t);
	/* Nothing was read: the kernel still holds the pages. */
	EXPECT_EQ(0, transport_ticket_done(self->s, t));
	EXPECT_EQ(-ETIMEDOUT, transport_wait(self->s, t));
	EXPECT_EQ(0, transport_ticket_done(self->s, t));
	EXPECT_EQ(-ETIMEDOUT, transport_flush(self->s));
	/* A copied send is done at once, the zero-copy one still not. */
	v.iov_base = self->buf + ZC_MSG;
	fill(v.iov_base, ZC_MSG, 9, 1);
	ASSERT_EQ(0, transport_send(self->s, &v, 1, TRANSPORT_SEND_COPY, &tc));
	EXPECT_EQ(TRANSPORT_TICKET_DONE, tc);
	EXPECT_EQ(0, transport_ticket_done(self->s, t));

	ASSERT_EQ(0, drain(self->r, rbuf, ZC_MSG, 9, 2));
	EXPECT_EQ(0, transport_wait(self->s, t));
	EXPECT_EQ(1, transport_ticket_done(self->s, t));
	transport_get_stats(self->s, &st);
	EXPECT_EQ(1, st.zc_sends);
	EXPECT_EQ(1, st.zc_completions);
	EXPECT_EQ(1, st.zc_copied);	/* loopback */
	EXPECT_EQ(1, st.copied_sends);
	free(rbuf);
}

struct reader {
	struct transport_chan *r;
	size_t len;
	int n, delay_ms, ret;
	uint32_t chan;
};

static void *late_reader(void *arg)
{
	struct reader *rd = arg;
	char *buf = malloc(rd->len);

	usleep(rd->delay_ms * 1000);
	rd->ret = buf ? drain(rd->r, buf, rd->len, rd->chan, rd->n) : -ENOMEM;
	free(buf);
	return NULL;
}

TEST_F(zc, flush_waits_for_every_ticket)
{
	transport_ticket_t t[4];
	struct transport_stats st;
	struct reader rd = { self->r, ZC_MSG, 4, 150, 0, 3 };
	pthread_t th;

	for (int i = 0; i < 4; i++) {
		struct iovec v = { self->buf + i * ZC_MSG, ZC_MSG };

		fill(v.iov_base, ZC_MSG, 3, i);
		ASSERT_EQ(0, transport_send(self->s, &v, 1, 0, &t[i]));
		EXPECT_EQ(0, transport_ticket_done(self->s, t[i]));
	}
	/* Tickets of one channel are ordered. */
	EXPECT_LT(t[0], t[1]);
	EXPECT_LT(t[2], t[3]);
	ASSERT_EQ(0, pthread_create(&th, NULL, late_reader, &rd));
	ASSERT_EQ(0, transport_flush(self->s)) TH_LOG("%s", transport_error());
	for (int i = 0; i < 4; i++)
		EXPECT_EQ(1, transport_ticket_done(self->s, t[i]));
	pthread_join(th, NULL);
	EXPECT_EQ(0, rd.ret);
	transport_get_stats(self->s, &st);
	EXPECT_LE(4, st.zc_sends);
	EXPECT_EQ(st.zc_sends, st.zc_completions);
	EXPECT_EQ(st.zc_completions, st.zc_copied);
	EXPECT_LE(1, st.waits);
}

struct canceller {
	struct transport_chan *ch;
	struct transport_listener *l;
	int delay_ms;
};

static void *cancel_later(void *arg)
{
	struct canceller *c = arg;

	usleep(c->delay_ms * 1000);
	if (c->ch)
		transport_cancel(c->ch);
	if (c->l)
		transport_listener_cancel(c->l);
	return NULL;
}

TEST_F(zc, cancel_wakes_flush)
{
	struct iovec v = { self->buf, ZC_MSG };
	struct canceller c = { self->s, NULL, 100 };
	transport_ticket_t t;
	pthread_t th;
	uint64_t t0;

	/* Long enough that only the cancel can end the flush in time. */
	ASSERT_EQ(0, transport_set_timeout(self->s, 20000));
	ASSERT_EQ(0, transport_send(self->s, &v, 1, 0, &t));
	ASSERT_EQ(0, pthread_create(&th, NULL, cancel_later, &c));
	t0 = now_ms();
	EXPECT_EQ(-ECANCELED, transport_flush(self->s));
	EXPECT_GT(5000, now_ms() - t0);
	pthread_join(th, NULL);
	EXPECT_EQ(-ECANCELED, transport_send(self->s, &v, 1, 0, &t));
	EXPECT_EQ(-ECANCELED, transport_recv(self->s, self->buf, 1));
}

/* ENOBUFS: zero copy refused, the send still goes out, by copy. */

static int drop_ipc_lock(void)
{
	struct __user_cap_header_struct h = { _LINUX_CAPABILITY_VERSION_3, 0 };
	struct __user_cap_data_struct d[2];

	if (syscall(SYS_capget, &h, d))
		return -errno;
	d[CAP_IPC_LOCK / 32].effective &= ~(1u << (CAP_IPC_LOCK % 32));
	d[CAP_IPC_LOCK / 32].permitted &= ~(1u << (CAP_IPC_LOCK % 32));
	return syscall(SYS_capset, &h, d) ? -errno : 0;
}

static void enobufs_run(struct __test_metadata *_metadata, int n)
{
	struct transport_opts o = opts(TRANSPORT_ZEROCOPY, 5000);
	struct transport_chan *s, *r;
	struct reader rd = { NULL, 64 << 10, n, 0, 0, 5 };
	char *buf = malloc(64 << 10);
	struct transport_stats st;
	pthread_t th;

	ASSERT_EQ(0, make_pairs("127.0.0.1:0", &o, &o, 1, &s, &r)) TH_LOG("%s", transport_error());
	rd.r = r;
	ASSERT_EQ(0, pthread_create(&th, NULL, late_reader, &rd));
	for (int i = 0; i < n; i++) {
		struct iovec v = { buf, 64 << 10 };
		transport_ticket_t t;

		fill(buf, v.iov_len, 5, i);
		ASSERT_EQ(0, transport_send(s, &v, 1, 0, &t)) TH_LOG("%s", transport_error());
		ASSERT_EQ(0, transport_wait(s, t));
	}
	pthread_join(th, NULL);
	EXPECT_EQ(0, rd.ret);
	ASSERT_EQ(0, transport_flush(s));
	transport_get_stats(s, &st);
	TH_LOG("%d sends: %llu zero-copy, %llu ENOBUFS, %llu copied", n,
	       (unsigned long long)st.zc_sends, (unsigned long long)st.zc_enobufs,
	       (unsigned long long)st.copied_sends);
	EXPECT_EQ(n, st.sends);
	EXPECT_LE(n, st.zc_enobufs);
	EXPECT_LE(n, st.copied_sends);
	EXPECT_EQ(0, st.zc_sends);
	transport_close(s);
	transport_close(r);
	free(buf);
}

/*
 * No CAP_IPC_LOCK and RLIMIT_MEMLOCK 0: the kernel cannot account the
 * pinned pages (mm_account_pinned_pages) and refuses every zero-copy send.
 * Any user may do this to itself; the harness runs each test in its own
 * process.
 */
TEST(enobufs_locked_memory_limit)
{
	struct rlimit rl = { 0, 0 };

	ASSERT_EQ(0, drop_ipc_lock());
	ASSERT_EQ(0, setrlimit(RLIMIT_MEMLOCK, &rl));
	enobufs_run(_metadata, 16);
}

static int write_file(int fd, const char *s)
{
	return pwrite(fd, s, strlen(s), 0) == (ssize_t)strlen(s) ? 0 : -errno;
}

static int lo_up(void)
{
	struct ifreq ifr = { .ifr_name = "lo" };
	int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0), ret = 0;

	if (fd < 0)
		return -errno;
	if (ioctl(fd, SIOCGIFFLAGS, &ifr) < 0)
		ret = -errno;
	ifr.ifr_flags |= IFF_UP;
	if (!ret && ioctl(fd, SIOCSIFFLAGS, &ifr) < 0)
		ret = -errno;
	close(fd);
	return ret;
}

/*
 * net.core.optmem_max 0: no socket may allocate the zero-copy notification
 * (sock_omalloc), every zero-copy send gets ENOBUFS.  Root only, in a
 * network namespace of our own.  Since Linux 6.9 the limit belongs to the
 * namespace; before, it is global (and absent from other namespaces): then
 * the teardown puts the old value back, whatever happened.
 */
FIXTURE(optmem) {
	int fd;		/* the global knob, if it is global */
	char old[32];
};

FIXTURE_SETUP(optmem)
{
	const char *path = "/proc/sys/net/core/optmem_max";
	int fd;

	self->fd = -1;
	if (geteuid())
		SETUP_SKIP("needs root for net.core.optmem_max");
	fd = open(path, O_RDWR | O_CLOEXEC);
	ASSERT_LE(0, fd);
	ASSERT_LT(0, pread(fd, self->old, sizeof(self->old) - 1, 0));
	if (unshare(CLONE_NEWNET)) {
		close(fd);
		SETUP_SKIP("unshare(CLONE_NEWNET): %s", strerror(errno));
	}
	ASSERT_EQ(0, lo_up());
	self->fd = open(path, O_RDWR | O_CLOEXEC);
	if (self->fd >= 0) {
		/* Ours alone, and fd names the old namespace's. */
		char now[32] = "";

		ASSERT_EQ(0, write_file(self->fd, "0\n"));
		ASSERT_LT(0, pread(fd, now, sizeof(now) - 1, 0));
		ASSERT_STREQ(self->old, now);
		close(self->fd);
		close(fd);
		self->fd = -1;
		TH_LOG("optmem_max belongs to the namespace");
	} else {
		ASSERT_EQ(ENOENT, errno);
		self->fd = fd;
		ASSERT_EQ(0, write_file(self->fd, "0\n"));
		TH_LOG("optmem_max is global: 0 until the teardown restores it");
	}
}

FIXTURE_TEARDOWN(optmem)
{
	if (self->fd >= 0) {
		EXPECT_EQ(0, write_file(self->fd, self->old));
		close(self->fd);
	}
}

TEST_F(optmem, enobufs_optmem_limit)
{
	enobufs_run(_metadata, 16);
}

/* Dead, silent and closed peers; timeouts; cancel. */

FIXTURE(pair) {
	struct transport_chan *s, *r;
	char *buf;
};

FIXTURE_VARIANT(pair) {
	enum transport_backend backend;
};

FIXTURE_VARIANT_ADD(pair, plain) { TRANSPORT_PLAIN };
FIXTURE_VARIANT_ADD(pair, zerocopy) { TRANSPORT_ZEROCOPY };
FIXTURE_VARIANT_ADD(pair, uring) { TRANSPORT_URING };

#define PAIR_MSG	(1 << 20)

FIXTURE_SETUP(pair)
{
	struct transport_opts o = opts(variant->backend, 300);

	if (variant->backend == TRANSPORT_URING && !uring_works())
		SETUP_SKIP("io_uring is not available");
	ASSERT_EQ(0, make_pairs("127.0.0.1:0", &o, &o, 1, &self->s, &self->r))
		TH_LOG("%s", transport_error());
	self->buf = calloc(1, PAIR_MSG);
	ASSERT_NE(NULL, self->buf);
}

FIXTURE_TEARDOWN(pair)
{
	transport_close(self->s);
	transport_close(self->r);
	free(self->buf);
}

/* Send 1 MiB messages until one fails; the error, or 0 after max. */
static int send_until_error(struct transport_chan *s, char *buf, int max)
{
	struct iovec v = { buf, PAIR_MSG };
	transport_ticket_t t;
	int ret = 0;

	for (int i = 0; i < max && !ret; i++)
		ret = transport_send(s, &v, 1, 0, &t);
	return ret;
}

struct closer {
	struct transport_chan *r;
	char *buf;
	int ret;
};

/* Read 3 MiB, then go away with data unread: the kernel sends an RST. */
static void *read_then_close(void *arg)
{
	struct closer *c = arg;

	for (int i = 0; i < 3 && !c->ret; i++)
		c->ret = transport_recv(c->r, c->buf, PAIR_MSG);
	transport_close(c->r);
	return NULL;
}

TEST_F(pair, peer_closes_mid_stream)
{
	struct closer c = { self->r, malloc(PAIR_MSG), 0 };
	pthread_t th;
	uint64_t t0;
	int ret;

	ASSERT_EQ(0, transport_set_timeout(self->s, 5000));
	ASSERT_EQ(0, transport_set_timeout(self->r, 5000));
	self->r = NULL;
	t0 = now_ms();
	ASSERT_EQ(0, pthread_create(&th, NULL, read_then_close, &c));
	ret = send_until_error(self->s, self->buf, 1000);
	pthread_join(th, NULL);
	EXPECT_EQ(0, c.ret);
	EXPECT_TRUE(ret == -ECONNRESET || ret == -EPIPE) TH_LOG("%d: %s", ret, transport_error());
	/* Found by the reset, not by the timeout. */
	EXPECT_GT(4000, now_ms() - t0);
	EXPECT_EQ(-EPIPE, send_until_error(self->s, self->buf, 1));
	/* The flush ends: the reset freed every pinned page. */
	ret = transport_flush(self->s);
	EXPECT_TRUE(ret == 0 || ret == -ECONNRESET || ret == -EPIPE) TH_LOG("%d", ret);
	EXPECT_GT(4000, now_ms() - t0);
	free(c.buf);
}

TEST_F(pair, send_times_out_when_peer_stops_reading)
{
	uint64_t t0 = now_ms();

	EXPECT_EQ(-ETIMEDOUT, send_until_error(self->s, self->buf, 1000))
		TH_LOG("%s", transport_error());
	EXPECT_LE(250, now_ms() - t0);
	EXPECT_GT(5000, now_ms() - t0);
}

TEST_F(pair, recv_times_out)
{
	uint64_t t0 = now_ms();

	EXPECT_EQ(-ETIMEDOUT, transport_recv(self->r, self->buf, 16));
	EXPECT_LE(250, now_ms() - t0);
	EXPECT_GT(3000, now_ms() - t0);
	/* And after a partial message, too. */
	ASSERT_EQ(0, transport_send(self->s, &(struct iovec){ self->buf, 10 }, 1, 0, NULL));
	EXPECT_EQ(-ETIMEDOUT, transport_recv(self->r, self->buf, 16));
}

TEST_F(pair, recv_sees_peer_close)
{
	struct iovec v = { self->buf, 10 };

	ASSERT_EQ(0, transport_send(self->s, &v, 1, 0, NULL));
	ASSERT_EQ(0, transport_recv(self->r, self->buf, 10));
	ASSERT_EQ(0, transport_send(self->s, &v, 1, 0, NULL));
	transport_close(self->s);
	self->s = NULL;
	EXPECT_EQ(-ECONNRESET, transport_recv(self->r, self->buf, 20));
	EXPECT_EQ(-ENODATA, transport_recv(self->r, self->buf, 20));
}

struct blocked {
	struct transport_chan *ch;
	char *buf;
	bool send;
	int ret;
	uint64_t ms;
};

static void *block(void *arg)
{
	struct blocked *b = arg;
	uint64_t t0 = now_ms();

	b->ret = b->send ? send_until_error(b->ch, b->buf, 1000) :
			   transport_recv(b->ch, b->buf, 16);
	b->ms = now_ms() - t0;
	return NULL;
}

/* The peer neither reads nor writes: s blocks in send and in recv. */
TEST_F(pair, cancel_wakes_blocked_recv_and_send)
{
	struct blocked br = { .ch = self->s, .buf = self->buf, .send = false };
	struct blocked bs = { .ch = self->s, .buf = malloc(PAIR_MSG), .send = true };
	pthread_t tr, ts;

	ASSERT_EQ(0, transport_set_timeout(self->s, 20000));
	ASSERT_EQ(0, pthread_create(&tr, NULL, block, &br));
	ASSERT_EQ(0, pthread_create(&ts, NULL, block, &bs));
	usleep(300 * 1000);
	transport_cancel(self->s);
	pthread_join(tr, NULL);
	pthread_join(ts, NULL);
	EXPECT_EQ(-ECANCELED, br.ret);
	EXPECT_EQ(-ECANCELED, bs.ret) TH_LOG("%s", transport_error());
	EXPECT_GT(5000, br.ms);
	EXPECT_GT(5000, bs.ms);
	/* Zero-copy sends were left in the queue: the flush cannot finish. */
	if (variant->backend == TRANSPORT_PLAIN) {
		EXPECT_EQ(0, transport_flush(self->s));
	} else {
		EXPECT_EQ(-ECANCELED, transport_flush(self->s));
	}
	EXPECT_EQ(-ECANCELED, transport_recv(self->s, self->buf, 1));
	free(bs.buf);
}

/* Partial sends: a signal interrupts sendmsg() after some bytes went. */

static void on_usr1(int sig)
{
}

struct pinger {
	pthread_t target;
	atomic_bool stop;
	int sent;
};

static void *ping(void *arg)
{
	struct pinger *p = arg;

	while (!atomic_load(&p->stop)) {
		pthread_kill(p->target, SIGUSR1);
		p->sent++;
		usleep(500);
	}
	return NULL;
}

static void *slow_reader(void *arg)
{
	struct reader *rd = arg;
	char *buf = malloc(rd->len), *want = malloc(rd->len);

	rd->ret = 0;
	for (size_t off = 0; off < rd->len && !rd->ret; off += 32 << 10) {
		usleep(300);
		rd->ret = transport_recv(rd->r, buf + off, 32 << 10);
	}
	fill(want, rd->len, rd->chan, 0);
	if (!rd->ret && memcmp(buf, want, rd->len))
		rd->ret = -EBADMSG;
	free(buf);
	free(want);
	return NULL;
}

TEST_F(pair, partial_sends_after_signals)
{
	struct sigaction sa = { .sa_handler = on_usr1 };	/* no SA_RESTART */
	const size_t len = 8 << 20;
	struct reader rd = { self->r, len, 1, 0, 0, 11 };
	struct pinger p = { .target = pthread_self() };
	char *buf = malloc(len);
	struct transport_stats st;
	pthread_t tp, tr;
	int ret;

	ASSERT_NE(NULL, buf);
	ASSERT_EQ(0, transport_set_timeout(self->s, 10000));
	ASSERT_EQ(0, transport_set_timeout(self->r, 10000));
	ASSERT_EQ(0, sigaction(SIGUSR1, &sa, NULL));
	fill(buf, len, 11, 0);
	atomic_init(&p.stop, false);
	ASSERT_EQ(0, pthread_create(&tr, NULL, slow_reader, &rd));
	ASSERT_EQ(0, pthread_create(&tp, NULL, ping, &p));
	ret = transport_send(self->s, &(struct iovec){ buf, len }, 1, 0, NULL);
	atomic_store(&p.stop, true);
	pthread_join(tp, NULL);
	EXPECT_EQ(0, ret) TH_LOG("%s", transport_error());
	EXPECT_EQ(0, transport_flush(self->s)) TH_LOG("%s", transport_error());
	pthread_join(tr, NULL);
	EXPECT_EQ(0, rd.ret);
	transport_get_stats(self->s, &st);
	TH_LOG("%d signals, %llu send calls, %llu zero-copy", p.sent,
	       (unsigned long long)st.send_calls, (unsigned long long)st.zc_sends);
	EXPECT_EQ(len, st.bytes_sent);
	/* io_uring sends do not see the signal: they wait in the kernel. */
	if (variant->backend != TRANSPORT_URING) {
		EXPECT_LT(1, st.send_calls);
	}
	EXPECT_EQ(st.zc_sends, st.zc_completions);
	free(buf);
}

/* Connecting and accepting. */

static int unused_port(void)
{
	struct sockaddr_in sin = { .sin_family = AF_INET,
				   .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t sl = sizeof(sin);
	int fd = socket(AF_INET, SOCK_STREAM, 0), port;

	if (fd < 0 || bind(fd, (void *)&sin, sizeof(sin)) ||
	    getsockname(fd, (void *)&sin, &sl))
		return -1;
	port = ntohs(sin.sin_port);
	close(fd);
	return port;
}

TEST(connect_refused_after_retries)
{
	struct transport_opts o = opts(TRANSPORT_PLAIN, 1000);
	struct transport_chan *ch = NULL;
	char addr[64];
	uint64_t t0;
	int port = unused_port();

	ASSERT_LT(0, port);
	snprintf(addr, sizeof(addr), "127.0.0.1:%d", port);
	o.connect_attempts = 3;
	o.retry_delay_ms = 100;
	t0 = now_ms();
	EXPECT_EQ(-ECONNREFUSED, transport_connect(addr, &o, &ch));
	EXPECT_LE(200, now_ms() - t0);		/* two pauses */
	EXPECT_GT(3000, now_ms() - t0);
	EXPECT_NE(NULL, strstr(transport_error(), "3 attempts")) TH_LOG("%s", transport_error());
	o.connect_attempts = 1;
	t0 = now_ms();
	EXPECT_EQ(-ECONNREFUSED, transport_connect(addr, &o, &ch));
	EXPECT_GT(100, now_ms() - t0);
	EXPECT_EQ(NULL, ch);
}

struct late_listen {
	char addr[64];
	int delay_ms, ret;
	struct transport_listener *l;
};

static void *listen_later(void *arg)
{
	struct late_listen *ll = arg;

	usleep(ll->delay_ms * 1000);
	ll->ret = transport_listen(ll->addr, NULL, &ll->l);
	return NULL;
}

TEST(connect_retries_until_listener_appears)
{
	struct transport_opts o = opts(TRANSPORT_PLAIN, 1000);
	struct late_listen ll = { .delay_ms = 200 };
	struct transport_chan *ch = NULL, *acc = NULL;
	pthread_t th;
	int port = unused_port();

	ASSERT_LT(0, port);
	snprintf(ll.addr, sizeof(ll.addr), "127.0.0.1:%d", port);
	o.connect_attempts = 50;
	o.retry_delay_ms = 50;
	ASSERT_EQ(0, pthread_create(&th, NULL, listen_later, &ll));
	EXPECT_EQ(0, transport_connect(ll.addr, &o, &ch)) TH_LOG("%s", transport_error());
	pthread_join(th, NULL);
	ASSERT_EQ(0, ll.ret);
	EXPECT_EQ(0, transport_accept(ll.l, 1000, &acc));
	transport_close(ch);
	transport_close(acc);
	transport_listener_close(ll.l);
}

TEST(accept_times_out_and_cancels)
{
	struct transport_listener *l;
	struct transport_chan *ch = NULL;
	struct canceller c = { NULL, NULL, 100 };
	pthread_t th;
	uint64_t t0;

	ASSERT_EQ(0, transport_listen("127.0.0.1:0", NULL, &l));
	t0 = now_ms();
	EXPECT_EQ(-ETIMEDOUT, transport_accept(l, 200, &ch));
	EXPECT_LE(190, now_ms() - t0);
	c.l = l;
	ASSERT_EQ(0, pthread_create(&th, NULL, cancel_later, &c));
	t0 = now_ms();
	EXPECT_EQ(-ECANCELED, transport_accept(l, 0, &ch));
	EXPECT_GT(5000, now_ms() - t0);
	pthread_join(th, NULL);
	EXPECT_EQ(NULL, ch);
	EXPECT_EQ(-EINVAL, transport_accept_any(NULL, 1, 0, &ch, NULL));
	EXPECT_EQ(-EINVAL, transport_accept_any(&l, 0, 0, &ch, NULL));
	transport_listener_close(l);
}

TEST(accept_any_and_addresses)
{
	struct transport_listener *l[2];
	struct transport_chan *c, *a;
	unsigned int which = 9;
	char addr[64];

	ASSERT_EQ(0, transport_listen("127.0.0.1:0", NULL, &l[0]));
	ASSERT_EQ(0, transport_listen(":0", NULL, &l[1]));	/* every address */
	/* By name, over IPv4 and (when there is one) IPv6 loopback. */
	snprintf(addr, sizeof(addr), "localhost:%d", transport_listener_port(l[1]));
	ASSERT_EQ(0, transport_connect(addr, NULL, &c)) TH_LOG("%s", transport_error());
	ASSERT_EQ(0, transport_accept_any(l, 2, 1000, &a, &which));
	EXPECT_EQ(1, which);
	TH_LOG("localhost reached %s", transport_peer(a));
	transport_close(c);
	transport_close(a);
	snprintf(addr, sizeof(addr), "127.0.0.1:%d", transport_listener_port(l[0]));
	ASSERT_EQ(0, transport_connect(addr, NULL, &c));
	ASSERT_EQ(0, transport_accept_any(l, 2, 1000, &a, &which));
	EXPECT_EQ(0, which);
	EXPECT_EQ(0, strncmp(transport_peer(a), "127.0.0.1:", 10));
	EXPECT_EQ(0, strncmp(transport_peer(c), addr, strlen(addr)));
	transport_close(c);
	transport_close(a);
	transport_listener_close(l[0]);
	transport_listener_close(l[1]);
}

TEST(stats_json)
{
	struct transport_stats st = { .bytes_sent = 1 << 20, .zc_sends = 3,
				      .first_ns = 1000000000, .last_ns = 2000000000 };
	char *out = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&out, &len);

	ASSERT_NE(NULL, f);
	transport_stats_json(f, &st);
	fclose(f);
	EXPECT_EQ('{', out[0]);
	EXPECT_EQ('}', out[len - 1]);
	EXPECT_NE(NULL, strstr(out, "\"bytes_sent\": 1048576,"));
	EXPECT_NE(NULL, strstr(out, "\"zc_sends\": 3,"));
	EXPECT_NE(NULL, strstr(out, "\"mib_per_s\": 1.0}"));
	free(out);
}

TEST_HARNESS_MAIN
