// SPDX-License-Identifier: GPL-2.0
/*
 * Trust at the transport, over real TCP on loopback: key files and their
 * checks, the TLS record cursor, TLS channels carrying messages intact, and
 * every way a listener with a key turns a connection away (a wrong key, no
 * key, not TLS, a replayed handshake, a peer that stalls, too many at
 * once, a record altered on the way), each followed by the right peer
 * being accepted by the same listener.  Records are in userspace here
 * (this machine's kernel has no TLS); selftests/tls_test.c runs the
 * kernel's TLS in the test host.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <unistd.h>

#include "auth/psk.h"
#include "auth/tls.h"
#include "wire/transport.h"
#include "wire/transport_priv.h"
#include "../../selftests/lib/tls_pump.h"

/* The harness defines its functions without prototypes. */
#pragma GCC diagnostic ignored "-Wmissing-prototypes"
#include "../../selftests/lib/ksft_compat.h"

#define MSGS		300
#define PUMP(chan)	{ .ch = (chan), .msgs = MSGS, .max = MAX_PAYLOAD }
#define MAX_PAYLOAD	(96 << 10)

/* What a listener said about the connections it refused. */
struct logbuf {
	pthread_mutex_t m;
	char text[16384];
};

static void log_line(void *ctx, const char *line)
{
	struct logbuf *b = ctx;
	size_t n;

	pthread_mutex_lock(&b->m);
	n = strlen(b->text);
	snprintf(b->text + n, sizeof(b->text) - n, "%s\n", line);
	pthread_mutex_unlock(&b->m);
}

static bool logged(struct logbuf *b, const char *what)
{
	bool r;

	pthread_mutex_lock(&b->m);
	r = strstr(b->text, what) != NULL;
	pthread_mutex_unlock(&b->m);
	return r;
}

static struct auth_creds *new_creds(void)
{
	struct auth_key k;
	struct auth_creds *c = NULL;
	char why[256];

	if (auth_key_random(&k) || auth_creds_new(&k, &c, why, sizeof(why)))
		return NULL;
	auth_key_wipe(&k);
	return c;
}

static struct transport_opts tls_opts(const struct auth_creds *c, uint32_t timeout_ms)
{
	struct transport_opts o;

	transport_opts_init(&o);
	o.auth = c;
	o.timeout_ms = timeout_ms;
	o.connect_attempts = 1;
	return o;
}

static int raw_connect(int port)
{
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons(port),
				 .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	if (fd >= 0 && connect(fd, (struct sockaddr *)&a, sizeof(a)) < 0) {
		close(fd);
		return -1;
	}
	return fd;
}

/* Has the other end closed fd (within ms)? */
static bool closed_by_peer(int fd, int ms)
{
	struct pollfd p = { .fd = fd, .events = POLLIN };
	char buf[4096];

	while (poll(&p, 1, ms) > 0) {
		ssize_t n = recv(fd, buf, sizeof(buf), MSG_DONTWAIT);

		if (n == 0 || (n < 0 && errno != EAGAIN))
			return true;
	}
	return false;
}

/* An accept in a thread of its own: the listener's side of each test. */
struct acceptor {
	struct transport_listener *l;
	uint32_t timeout_ms;
	struct transport_chan *ch;
	int ret;
	pthread_t t;
};

static void *accept_main(void *arg)
{
	struct acceptor *a = arg;

	a->ret = transport_accept(a->l, a->timeout_ms, &a->ch);
	return NULL;
}

static void accept_start(struct acceptor *a, struct transport_listener *l, uint32_t ms)
{
	a->l = l;
	a->timeout_ms = ms;
	a->ch = NULL;
	a->ret = -EINPROGRESS;
	pthread_create(&a->t, NULL, accept_main, a);
}

/* The right peer connects and says hello; the listener's channel reads it. */
static int right_peer(struct transport_listener *l, const struct transport_opts *o,
		      char *err, size_t errlen)
{
	struct acceptor a;
	struct transport_chan *c = NULL;
	char addr[64], got[6] = "";
	struct iovec v = { "hello", 5 };
	int ret;

	snprintf(addr, sizeof(addr), "127.0.0.1:%d", transport_listener_port(l));
	accept_start(&a, l, 5000);
	ret = transport_connect(addr, o, &c);
	if (!ret)
		ret = transport_send(c, &v, 1, 0, NULL);
	if (ret)
		snprintf(err, errlen, "connect: %s", transport_error());
	pthread_join(a.t, NULL);
	if (!ret && a.ret) {
		ret = a.ret;
		snprintf(err, errlen, "accept: %d", a.ret);
	}
	if (!ret) {
		ret = transport_recv(a.ch, got, 5);
		if (!ret && strcmp(got, "hello"))
			ret = -EBADMSG;
		if (ret)
			snprintf(err, errlen, "recv: %s", transport_error());
	}
	transport_close(c);
	transport_close(a.ch);
	return ret;
}

/* Key files. */

TEST(key_text)
{
	struct auth_key k, k2;
	char why[256], text[AUTH_KEY_FILE_MAX + 8];
	static const uint8_t raw[AUTH_KEY_BYTES] = { 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14,
						     15, 16, 17, 18, 19, 20, 21, 22, 23, 24, 25,
						     26, 27, 28, 29, 30, 31, 32 };
	/* base64 of raw, as `base64` prints it. */
	const char *good = "AQIDBAUGBwgJCgsMDQ4PEBESExQVFhcYGRobHB0eHyA=";

	ASSERT_EQ(0, auth_key_parse(good, strlen(good), &k, why, sizeof(why))) TH_LOG("%s", why);
	EXPECT_EQ(0, memcmp(k.key, raw, AUTH_KEY_BYTES));
	/* The id names the key: 8 hex bytes of a hash, the same every time. */
	EXPECT_EQ(AUTH_KEY_ID_LEN, strlen(k.id));
	EXPECT_EQ(0, strncmp(k.id, "vmdirty-", 8));
	snprintf(text, sizeof(text), "%s\n", good);
	ASSERT_EQ(0, auth_key_parse(text, strlen(text), &k2, why, sizeof(why)));
	EXPECT_STREQ(k.id, k2.id);

	/* Each is one byte or one character away from a key. */
	EXPECT_EQ(-EINVAL, auth_key_parse(good, strlen(good) - 1, &k, why, sizeof(why)));
	EXPECT_EQ(-EINVAL, auth_key_parse("", 0, &k, why, sizeof(why)));
	snprintf(text, sizeof(text), "%s ", good);
	EXPECT_EQ(-EINVAL, auth_key_parse(text, strlen(text), &k, why, sizeof(why)));
	snprintf(text, sizeof(text), "%s\n\n", good);
	EXPECT_EQ(-EINVAL, auth_key_parse(text, strlen(text), &k, why, sizeof(why)));
	memcpy(text, good, AUTH_KEY_B64_LEN + 1);
	text[10] = '*';
	EXPECT_EQ(-EINVAL, auth_key_parse(text, AUTH_KEY_B64_LEN, &k, why, sizeof(why)));
	EXPECT_NE(NULL, strstr(why, "base64")) TH_LOG("%s", why);
	/* Non-canonical: the same bytes with stray low bits (B instead of A). */
	memcpy(text, good, AUTH_KEY_B64_LEN + 1);
	text[AUTH_KEY_B64_LEN - 2] = 'B';
	EXPECT_EQ(-EINVAL, auth_key_parse(text, AUTH_KEY_B64_LEN, &k, why, sizeof(why)));
	memcpy(text, good, AUTH_KEY_B64_LEN + 1);
	text[AUTH_KEY_B64_LEN - 1] = 'A';
	EXPECT_EQ(-EINVAL, auth_key_parse(text, AUTH_KEY_B64_LEN, &k, why, sizeof(why)));
	EXPECT_EQ(-EINVAL, auth_key_parse("AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=", 44, &k, why,
					  sizeof(why)));
	EXPECT_NE(NULL, strstr(why, "zero")) TH_LOG("%s", why);
}

TEST(key_file_owner_and_mode)
{
	char dir[] = "/tmp/vmdirty-auth-XXXXXX", path[64], why[256], before[64], after[64];
	struct auth_key k, k2;
	struct stat st;
	int fd;

	ASSERT_NE(NULL, mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/key", dir);
	ASSERT_EQ(0, auth_key_generate(path, why, sizeof(why))) TH_LOG("%s", why);
	ASSERT_EQ(0, stat(path, &st));
	EXPECT_EQ(0600, st.st_mode & 07777);
	ASSERT_EQ(0, auth_key_load(path, &k, why, sizeof(why))) TH_LOG("%s", why);

	/* Never overwritten: the key in use stays what it was. */
	fd = open(path, O_RDONLY);
	ASSERT_EQ(AUTH_KEY_B64_LEN, read(fd, before, AUTH_KEY_B64_LEN));
	close(fd);
	EXPECT_EQ(-EEXIST, auth_key_generate(path, why, sizeof(why)));
	fd = open(path, O_RDONLY);
	ASSERT_EQ(AUTH_KEY_B64_LEN, read(fd, after, AUTH_KEY_B64_LEN));
	close(fd);
	EXPECT_EQ(0, memcmp(before, after, AUTH_KEY_B64_LEN));

	/* Readable by the group, or others: refused, as ssh refuses it. */
	ASSERT_EQ(0, chmod(path, 0640));
	EXPECT_EQ(-EPERM, auth_key_load(path, &k2, why, sizeof(why)));
	EXPECT_NE(NULL, strstr(why, "too open")) TH_LOG("%s", why);
	ASSERT_EQ(0, chmod(path, 0604));
	EXPECT_EQ(-EPERM, auth_key_load(path, &k2, why, sizeof(why)));
	ASSERT_EQ(0, chmod(path, 0400));
	EXPECT_EQ(0, auth_key_load(path, &k2, why, sizeof(why))) TH_LOG("%s", why);
	EXPECT_STREQ(k.id, k2.id);

	/* Someone else's file is refused; root's and our own are fine. */
	ASSERT_EQ(0, stat(path, &st));
	st.st_uid = 1234;
	EXPECT_EQ(-EPERM, auth_key_check_stat(&st, 1000, why, sizeof(why)));
	EXPECT_NE(NULL, strstr(why, "uid 1234")) TH_LOG("%s", why);
	st.st_uid = 0;
	EXPECT_EQ(0, auth_key_check_stat(&st, 1000, why, sizeof(why)));
	st.st_uid = 1000;
	EXPECT_EQ(0, auth_key_check_stat(&st, 1000, why, sizeof(why)));
	EXPECT_EQ(-EINVAL, auth_key_load(dir, &k2, why, sizeof(why)));
	EXPECT_EQ(-ENOENT, auth_key_load("/nonexistent/key", &k2, why, sizeof(why)));

	unlink(path);
	rmdir(dir);
}

/* The record cursor: never reads into the next record; knows TLS from not. */

TEST(record_cursor)
{
	static const uint8_t recs[] = {
		0x16, 0x03, 0x01, 0x00, 0x03, 'a', 'b', 'c',
		0x17, 0x03, 0x03, 0x00, 0x02, 'd', 'e',
		0x15, 0x03, 0x03, 0x00, 0x02, 1, 0,
	};
	struct auth_rec_cursor c = { 0 };
	size_t i = 0;

	/* Byte by byte as far as the limit allows: it stops at each boundary. */
	EXPECT_EQ(5, auth_rec_limit(&c, 100));
	EXPECT_TRUE(auth_rec_advance(&c, recs, 5));
	EXPECT_EQ(3, auth_rec_limit(&c, 100));
	EXPECT_EQ(2, auth_rec_limit(&c, 2));
	EXPECT_TRUE(auth_rec_advance(&c, recs + 5, 3));
	EXPECT_EQ(5, auth_rec_limit(&c, 100));
	for (i = 8; i < sizeof(recs); i++)
		EXPECT_TRUE(auth_rec_advance(&c, recs + i, 1));
	EXPECT_EQ(3, c.records);
	EXPECT_EQ(sizeof(recs), c.bytes);
	EXPECT_EQ(0, c.hdr_got);

	/* Our protocol in the clear, as a source without a key sends it. */
	memset(&c, 0, sizeof(c));
	EXPECT_FALSE(auth_rec_advance(&c, (const uint8_t *)"VMDW\x01\0\x01\0", 8));
	EXPECT_EQ(AUTH_NOT_TLS_CLEAR, c.bad);
	memset(&c, 0, sizeof(c));
	EXPECT_FALSE(auth_rec_advance(&c, (const uint8_t *)"GET / HTTP/1.0", 14));
	EXPECT_EQ(AUTH_NOT_TLS_OTHER, c.bad);
	/* Empty, oversized, unknown type, unknown version. */
	memset(&c, 0, sizeof(c));
	EXPECT_FALSE(auth_rec_advance(&c, (const uint8_t *)"\x16\x03\x03\x00\x00", 5));
	memset(&c, 0, sizeof(c));
	EXPECT_FALSE(auth_rec_advance(&c, (const uint8_t *)"\x17\x03\x03\x41\x01", 5));
	memset(&c, 0, sizeof(c));
	EXPECT_TRUE(auth_rec_advance(&c, (const uint8_t *)"\x17\x03\x03\x41\x00", 5));
	memset(&c, 0, sizeof(c));
	EXPECT_FALSE(auth_rec_advance(&c, (const uint8_t *)"\x18\x03\x03\x00\x01", 5));
	memset(&c, 0, sizeof(c));
	EXPECT_FALSE(auth_rec_advance(&c, (const uint8_t *)"\x16\x02\x00\x00\x01", 5));
}

/* Channels: messages intact both ways, records in userspace. */



/* MSGS messages of random length, each a header and a scatter of pieces. */
static void *pump_send(void *arg)
{
	struct pump *p = arg;
	uint8_t *buf = malloc(MAX_PAYLOAD);

	for (uint32_t i = 0; i < MSGS && !p->ret; i++) {
		uint32_t len = (i * 7919u) % MAX_PAYLOAD + 1;
		struct iovec v[4] = {
			{ &len, sizeof(len) },
			{ buf, len / 3 },
			{ buf + len / 3, len / 3 },
			{ buf + 2 * (len / 3), len - 2 * (len / 3) },
		};

		tls_pump_fill(buf, len, i);
		p->ret = transport_send(p->ch, v, 4, 0, NULL);
	}
	if (p->ret)
		snprintf(p->err, sizeof(p->err), "%s", transport_error());
	free(buf);
	return NULL;
}


FIXTURE(chan) {
	struct auth_creds *creds;
	struct transport_listener *l;
	struct transport_chan *c, *s;
	struct logbuf log;
};

FIXTURE_VARIANT(chan) {
	enum transport_backend backend;
	enum transport_tls tls;
};

FIXTURE_VARIANT_ADD(chan, plain_auto) { TRANSPORT_PLAIN, TRANSPORT_TLS_AUTO };
FIXTURE_VARIANT_ADD(chan, plain_user) { TRANSPORT_PLAIN, TRANSPORT_TLS_USER };
FIXTURE_VARIANT_ADD(chan, zerocopy_auto) { TRANSPORT_ZEROCOPY, TRANSPORT_TLS_AUTO };

FIXTURE_SETUP(chan)
{
	struct transport_opts o;
	struct acceptor a;
	char addr[64];

	pthread_mutex_init(&self->log.m, NULL);
	self->creds = new_creds();
	ASSERT_NE(NULL, self->creds);
	o = tls_opts(self->creds, 5000);
	o.backend = variant->backend;
	o.tls = variant->tls;
	o.log = log_line;
	o.log_ctx = &self->log;
	ASSERT_EQ(0, transport_listen("127.0.0.1:0", &o, &self->l)) TH_LOG("%s", transport_error());
	snprintf(addr, sizeof(addr), "127.0.0.1:%d", transport_listener_port(self->l));
	accept_start(&a, self->l, 5000);
	ASSERT_EQ(0, transport_connect(addr, &o, &self->c)) TH_LOG("%s", transport_error());
	pthread_join(a.t, NULL);
	ASSERT_EQ(0, a.ret) TH_LOG("%s", self->log.text);
	self->s = a.ch;
}

FIXTURE_TEARDOWN(chan)
{
	transport_close(self->c);
	transport_close(self->s);
	transport_listener_close(self->l);
	auth_creds_free(self->creds);
}

TEST_F(chan, messages_arrive_intact_both_ways)
{
	struct pump tx1 = PUMP(self->c), rx1 = PUMP(self->s);
	struct pump tx2 = PUMP(self->s), rx2 = PUMP(self->c);
	struct transport_stats st;
	pthread_t t[4];

	pthread_create(&t[0], NULL, pump_send, &tx1);
	pthread_create(&t[1], NULL, pump_recv, &rx1);
	pthread_create(&t[2], NULL, pump_send, &tx2);
	pthread_create(&t[3], NULL, pump_recv, &rx2);
	for (int i = 0; i < 4; i++)
		pthread_join(t[i], NULL);
	EXPECT_EQ(0, tx1.ret) TH_LOG("%s", tx1.err);
	EXPECT_EQ(0, rx1.ret) TH_LOG("%s", rx1.err);
	EXPECT_EQ(0, tx2.ret) TH_LOG("%s", tx2.err);
	EXPECT_EQ(0, rx2.ret) TH_LOG("%s", rx2.err);

	/* TLS takes no zero copy: a channel that asked says so and copies. */
	EXPECT_EQ(TRANSPORT_PLAIN, transport_chan_backend(self->c));
	transport_get_stats(self->c, &st);
	EXPECT_EQ(0, st.zc_sends);
	EXPECT_NE(TRANSPORT_CRYPTO_NONE, transport_chan_crypto(self->c));
	EXPECT_NE(NULL, strstr(transport_chan_security(self->c), "TLS 1.3"));
	if (variant->backend != TRANSPORT_PLAIN)
		EXPECT_NE(NULL, strstr(transport_chan_security(self->c), "zerocopy asked"))
			TH_LOG("%s", transport_chan_security(self->c));
	if (variant->tls == TRANSPORT_TLS_USER)
		EXPECT_EQ(TRANSPORT_CRYPTO_USER, transport_chan_crypto(self->c));
	TH_LOG("%s", transport_chan_security(self->c));
	EXPECT_STREQ("", self->log.text);
}

/* A receiver that polls first sees data GnuTLS holds already decrypted. */
TEST_F(chan, poll_sees_buffered_plaintext)
{
	struct iovec v = { "abcdefgh", 8 };
	char got[4];

	ASSERT_EQ(0, transport_send(self->c, &v, 1, 0, NULL));
	ASSERT_EQ(1, transport_poll_recv(self->s, 2000));
	ASSERT_EQ(0, transport_recv(self->s, got, 4));
	/* The rest of the record may be in the session, not the socket. */
	ASSERT_EQ(1, transport_poll_recv(self->s, 500));
	ASSERT_EQ(0, transport_recv(self->s, got, 4));
	EXPECT_EQ(0, memcmp(got, "efgh", 4));
	EXPECT_EQ(0, transport_poll_recv(self->s, 100));
}

TEST_F(chan, peer_close_and_timeout)
{
	char got[4];

	ASSERT_EQ(0, transport_set_timeout(self->s, 200));
	EXPECT_EQ(-ETIMEDOUT, transport_recv(self->s, got, 4));
	transport_close(self->c);
	self->c = NULL;
	EXPECT_EQ(-ENODATA, transport_recv(self->s, got, 4)) TH_LOG("%s", transport_error());
}

/* The listener's gate: every refusal, then the right peer. */

FIXTURE(gate) {
	struct auth_creds *creds;
	struct transport_opts o;
	struct transport_listener *l;
	int port;
	struct logbuf log;
};

FIXTURE_SETUP(gate)
{
	pthread_mutex_init(&self->log.m, NULL);
	self->creds = new_creds();
	ASSERT_NE(NULL, self->creds);
	self->o = tls_opts(self->creds, 5000);
	self->o.handshake_ms = 400;
	self->o.max_handshakes = 3;
	self->o.log = log_line;
	self->o.log_ctx = &self->log;
	ASSERT_EQ(0, transport_listen("127.0.0.1:0", &self->o, &self->l));
	self->port = transport_listener_port(self->l);
}

FIXTURE_TEARDOWN(gate)
{
	transport_listener_close(self->l);
	auth_creds_free(self->creds);
}

/* Catches: a listener that accepts a peer with another key. */
TEST_F(gate, wrong_key_refused_then_right_peer)
{
	struct auth_creds *other = new_creds();
	struct transport_opts wrong = tls_opts(other, 2000);
	struct transport_chan *c = NULL;
	struct acceptor a;
	char addr[64], err[256] = "";
	int ret;

	snprintf(addr, sizeof(addr), "127.0.0.1:%d", self->port);
	accept_start(&a, self->l, 1500);
	ret = transport_connect(addr, &wrong, &c);
	EXPECT_EQ(-EACCES, ret) TH_LOG("%s", transport_error());
	EXPECT_NE(NULL, strstr(transport_error(), "does not know our key")) TH_LOG("%s", transport_error());
	pthread_join(a.t, NULL);
	EXPECT_EQ(-ETIMEDOUT, a.ret);
	EXPECT_TRUE(logged(&self->log, "holds another key")) TH_LOG("%s", self->log.text);
	EXPECT_TRUE(logged(&self->log, auth_creds_key_id(other)));
	transport_close(c);
	EXPECT_EQ(0, right_peer(self->l, &self->o, err, sizeof(err))) TH_LOG("%s", err);
	auth_creds_free(other);
}

/* Catches: a listener that lets a peer without a key talk in the clear. */
TEST_F(gate, no_key_refused_then_right_peer)
{
	struct transport_opts plain = tls_opts(NULL, 2000);
	struct transport_chan *c;
	struct acceptor a;
	char addr[64], err[256] = "", hdr[32] = "VMDW\x01\0\x01\0";
	struct iovec v = { hdr, sizeof(hdr) };
	int ret;

	snprintf(addr, sizeof(addr), "127.0.0.1:%d", self->port);
	accept_start(&a, self->l, 1500);
	ASSERT_EQ(0, transport_connect(addr, &plain, &c));
	ASSERT_EQ(0, transport_send(c, &v, 1, 0, NULL));
	/* The gate closes it unread (so the kernel may reset it): nothing back. */
	ret = transport_recv(c, hdr, 8);
	EXPECT_TRUE(ret == -ENODATA || ret == -ECONNRESET) TH_LOG("%s", transport_error());
	pthread_join(a.t, NULL);
	EXPECT_EQ(-ETIMEDOUT, a.ret);
	EXPECT_TRUE(logged(&self->log, "in the clear: it has no key")) TH_LOG("%s", self->log.text);
	transport_close(c);
	EXPECT_EQ(0, right_peer(self->l, &self->o, err, sizeof(err))) TH_LOG("%s", err);
}

/* Catches: bytes that are not TLS reaching anything but the record cursor. */
TEST_F(gate, not_tls_refused_then_right_peer)
{
	struct acceptor a;
	char err[256] = "";
	int fd;

	accept_start(&a, self->l, 1500);
	fd = raw_connect(self->port);
	ASSERT_LE(0, fd);
	ASSERT_EQ(18, send(fd, "GET / HTTP/1.0\r\n\r\n", 18, 0));
	EXPECT_TRUE(closed_by_peer(fd, 1000));
	pthread_join(a.t, NULL);
	EXPECT_EQ(-ETIMEDOUT, a.ret);
	EXPECT_TRUE(logged(&self->log, "not TLS: record 0 starts 47 45 54 20 2f"))
		TH_LOG("%s", self->log.text);
	close(fd);
	EXPECT_EQ(0, right_peer(self->l, &self->o, err, sizeof(err))) TH_LOG("%s", err);
}

/*
 * Catches: a stalled handshake holding up everyone (handshakes run one at a
 * time), or never being closed.
 */
TEST_F(gate, stalled_handshake_closed_and_delays_nobody)
{
	char err[256] = "";
	uint64_t t0;
	int fd;

	fd = raw_connect(self->port);
	ASSERT_LE(0, fd);
	/* Half a ClientHello, then nothing. */
	ASSERT_EQ(5, send(fd, "\x16\x03\x01\x02\x00", 5, 0));
	t0 = tp_now_ns();
	EXPECT_EQ(0, right_peer(self->l, &self->o, err, sizeof(err))) TH_LOG("%s", err);
	/* The right peer got in while the staller still held its slot. */
	EXPECT_GT(self->o.handshake_ms * 1000000ull, tp_now_ns() - t0);
	EXPECT_FALSE(logged(&self->log, "no TLS handshake within"));
	/* The gate closes it at its deadline (while an accept runs). */
	struct acceptor a;

	accept_start(&a, self->l, 800);
	EXPECT_TRUE(closed_by_peer(fd, 2000));
	pthread_join(a.t, NULL);
	EXPECT_TRUE(logged(&self->log, "no TLS handshake within 400 ms")) TH_LOG("%s", self->log.text);
	close(fd);
}

/* Catches: an unbounded number of connections held in their handshake. */
TEST_F(gate, too_many_handshakes_refused_then_right_peer)
{
	struct acceptor a;
	char err[256] = "";
	int fd[4];

	accept_start(&a, self->l, 300);
	for (int i = 0; i < 4; i++) {
		fd[i] = raw_connect(self->port);
		ASSERT_LE(0, fd[i]);
		usleep(20000);
	}
	/* The fourth is closed at once, the three others hold their slots. */
	EXPECT_TRUE(closed_by_peer(fd[3], 250));
	EXPECT_FALSE(closed_by_peer(fd[0], 1));
	pthread_join(a.t, NULL);
	EXPECT_TRUE(logged(&self->log, "3 TLS handshakes already in progress")) TH_LOG("%s", self->log.text);
	/* Once they timed out (the next accept closes them), there is room. */
	usleep(450000);
	EXPECT_EQ(0, right_peer(self->l, &self->o, err, sizeof(err))) TH_LOG("%s", err);
	for (int i = 0; i < 3; i++) {
		EXPECT_TRUE(closed_by_peer(fd[i], 100));
		close(fd[i]);
	}
	close(fd[3]);
	EXPECT_TRUE(logged(&self->log, "no TLS handshake within")) TH_LOG("%s", self->log.text);
}

/*
 * A relay between a client and the listener that keeps what the client
 * sent, and can alter one byte of it: the man in the middle.
 */
struct relay {
	int lfd, port, to_port;
	long flip_at;			/* client byte to alter, -1: none */
	uint8_t rec[65536];
	size_t nrec;
	pthread_t t;
};

static void *relay_main(void *arg)
{
	struct relay *r = arg;
	int c = accept(r->lfd, NULL, NULL), s = raw_connect(r->to_port);
	struct pollfd p[2] = { { .fd = c, .events = POLLIN }, { .fd = s, .events = POLLIN } };
	uint8_t buf[65536];

	while (c >= 0 && s >= 0 && poll(p, 2, 3000) > 0) {
		if (p[0].revents) {
			ssize_t n = recv(c, buf, sizeof(buf), 0);

			if (n <= 0)
				break;
			for (ssize_t i = 0; i < n; i++)
				if ((long)(r->nrec + i) == r->flip_at)
					buf[i] ^= 0x01;
			if (r->nrec + n <= sizeof(r->rec)) {
				memcpy(r->rec + r->nrec, buf, n);
				r->nrec += n;
			}
			if (send(s, buf, n, MSG_NOSIGNAL) != n)
				break;
		}
		if (p[1].revents) {
			ssize_t n = recv(s, buf, sizeof(buf), 0);

			if (n <= 0 || send(c, buf, n, MSG_NOSIGNAL) != n)
				break;
		}
	}
	if (c >= 0)
		close(c);
	if (s >= 0)
		close(s);
	return NULL;
}

static int relay_start(struct relay *r, int to_port, long flip_at)
{
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t sl = sizeof(a);

	r->to_port = to_port;
	r->flip_at = flip_at;
	r->nrec = 0;
	r->lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (r->lfd < 0 || bind(r->lfd, (struct sockaddr *)&a, sizeof(a)) ||
	    listen(r->lfd, 1) || getsockname(r->lfd, (struct sockaddr *)&a, &sl))
		return -1;
	r->port = ntohs(a.sin_port);
	return pthread_create(&r->t, NULL, relay_main, r);
}

/*
 * Catches: a handshake recorded on the path and played back being taken
 * (a replay window: 0-RTT, or keys that do not depend on the server).
 */
TEST_F(gate, replayed_handshake_refused_then_right_peer)
{
	struct relay *r = calloc(1, sizeof(*r));
	struct transport_chan *c = NULL;
	struct acceptor a;
	char addr[64], err[256] = "", got[6] = "";
	struct iovec v = { "hello", 5 };
	int fd;

	/* A real session through the relay, which records the client's bytes. */
	ASSERT_EQ(0, relay_start(r, self->port, -1));
	snprintf(addr, sizeof(addr), "127.0.0.1:%d", r->port);
	accept_start(&a, self->l, 3000);
	ASSERT_EQ(0, transport_connect(addr, &self->o, &c)) TH_LOG("%s", transport_error());
	ASSERT_EQ(0, transport_send(c, &v, 1, 0, NULL));
	pthread_join(a.t, NULL);
	ASSERT_EQ(0, a.ret);
	ASSERT_EQ(0, transport_recv(a.ch, got, 5));
	transport_close(c);
	transport_close(a.ch);
	pthread_join(r->t, NULL);
	close(r->lfd);
	ASSERT_LT(100, r->nrec);

	/* The same bytes again, from someone without the key. */
	accept_start(&a, self->l, 1500);
	fd = raw_connect(self->port);
	ASSERT_LE(0, fd);
	ASSERT_EQ((ssize_t)r->nrec, send(fd, r->rec, r->nrec, MSG_NOSIGNAL));
	EXPECT_TRUE(closed_by_peer(fd, 1000));
	pthread_join(a.t, NULL);
	EXPECT_EQ(-ETIMEDOUT, a.ret);
	EXPECT_TRUE(logged(&self->log, "replays a recorded handshake")) TH_LOG("%s", self->log.text);
	close(fd);
	EXPECT_EQ(0, right_peer(self->l, &self->o, err, sizeof(err))) TH_LOG("%s", err);
	free(r);
}

/* Catches: a record altered on the path being delivered. */
TEST_F(gate, altered_record_detected)
{
	struct relay *r = calloc(1, sizeof(*r));
	struct transport_chan *c = NULL;
	struct acceptor a;
	char addr[64], got[4096];
	uint8_t msg[4096];
	struct iovec v = { msg, sizeof(msg) };

	/* The handshake is a few hundred bytes; byte 3000 is in our data. */
	ASSERT_EQ(0, relay_start(r, self->port, 3000));
	snprintf(addr, sizeof(addr), "127.0.0.1:%d", r->port);
	accept_start(&a, self->l, 3000);
	ASSERT_EQ(0, transport_connect(addr, &self->o, &c)) TH_LOG("%s", transport_error());
	pthread_join(a.t, NULL);
	ASSERT_EQ(0, a.ret);
	tls_pump_fill(msg, sizeof(msg), 1);
	ASSERT_EQ(0, transport_send(c, &v, 1, 0, NULL));
	EXPECT_EQ(-EBADMSG, transport_recv(a.ch, got, sizeof(got))) TH_LOG("%s", transport_error());
	transport_close(c);
	transport_close(a.ch);
	pthread_join(r->t, NULL);
	close(r->lfd);
	free(r);
}

/* Catches: a client waiting forever on a server that never answers. */
TEST(client_handshake_bounded)
{
	struct auth_creds *creds = new_creds();
	struct transport_opts o = tls_opts(creds, 2000);
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t sl = sizeof(sa);
	struct transport_chan *c = NULL;
	int lfd = socket(AF_INET, SOCK_STREAM, 0);
	char addr[64];
	uint64_t t0;

	ASSERT_EQ(0, bind(lfd, (struct sockaddr *)&sa, sizeof(sa)));
	ASSERT_EQ(0, listen(lfd, 1));
	ASSERT_EQ(0, getsockname(lfd, (struct sockaddr *)&sa, &sl));
	snprintf(addr, sizeof(addr), "127.0.0.1:%d", ntohs(sa.sin_port));
	o.handshake_ms = 300;
	t0 = tp_now_ns();
	EXPECT_EQ(-ETIMEDOUT, transport_connect(addr, &o, &c));
	EXPECT_NE(NULL, strstr(transport_error(), "no answer within 300 ms")) TH_LOG("%s", transport_error());
	EXPECT_GT(1500000000ull, tp_now_ns() - t0);
	close(lfd);
	auth_creds_free(creds);
}

/* Catches: options that make no sense accepted quietly. */
TEST(rejects_bad_tls_opts)
{
	struct transport_opts o;
	struct transport_listener *l;
	enum transport_tls t;

	transport_opts_init(&o);
	o.tls = TRANSPORT_TLS_KERNEL;
	EXPECT_EQ(-EINVAL, transport_listen("127.0.0.1:0", &o, &l));
	o.tls = TRANSPORT_TLS_NR;
	EXPECT_EQ(-EINVAL, transport_listen("127.0.0.1:0", &o, &l));
	transport_opts_init(&o);
	o.max_handshakes = 100000;
	EXPECT_EQ(-EINVAL, transport_listen("127.0.0.1:0", &o, &l));
	EXPECT_EQ(0, transport_tls_parse("kernel", &t));
	EXPECT_EQ(TRANSPORT_TLS_KERNEL, t);
	EXPECT_EQ(-EINVAL, transport_tls_parse("ktls", &t));
}

TEST_HARNESS_MAIN
