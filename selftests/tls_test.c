// SPDX-License-Identifier: GPL-2.0
/*
 * The kernel's TLS (kTLS) under the transport, in the test host's stock
 * kernel: channels whose records the kernel encrypts carry messages intact;
 * they interoperate with records made in userspace (GnuTLS) both ways, so
 * the handshake handed the right keys and sequence numbers over; a record
 * altered on the way is refused by the kernel; and zero copy: what
 * MSG_ZEROCOPY and io_uring's send_zc do on a kTLS socket, and that a
 * channel that asked for zero copy says it sends by copy instead.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <liburing.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "auth/psk.h"
#include "auth/tls.h"
#include "wire/transport.h"
#include "wire/transport_priv.h"

#include "ksft_compat.h"
#include "tls_pump.h"

#define MSGS		200
#define PUMP(chan)	{ .ch = (chan), .msgs = MSGS, .max = MAX_PAYLOAD }
#define MAX_PAYLOAD	(300 << 10)

static struct auth_creds *new_creds(void)
{
	struct auth_key k;
	struct auth_creds *c = NULL;
	char why[256];

	if (auth_key_random(&k) || auth_creds_new(&k, &c, why, sizeof(why)))
		return NULL;
	return c;
}

struct accepted {
	struct transport_listener *l;
	struct transport_chan *ch;
	int ret;
};

static void *accept_main(void *arg)
{
	struct accepted *a = arg;

	a->ret = transport_accept(a->l, 10000, &a->ch);
	return NULL;
}

/* A connected pair: c with client opts co, s accepted with server opts so. */
static int pair(struct transport_opts *co, struct transport_opts *so,
		struct transport_chan **c, struct transport_chan **s)
{
	struct accepted a = { 0 };
	pthread_t t;
	char addr[64];
	int ret;

	ret = transport_listen("127.0.0.1:0", so, &a.l);
	if (ret)
		return ret;
	snprintf(addr, sizeof(addr), "127.0.0.1:%d", transport_listener_port(a.l));
	pthread_create(&t, NULL, accept_main, &a);
	ret = transport_connect(addr, co, c);
	pthread_join(t, NULL);
	transport_listener_close(a.l);
	if (ret) {
		transport_close(a.ch);
		return ret;
	}
	if (a.ret) {
		transport_close(*c);
		return a.ret;
	}
	*s = a.ch;
	return 0;
}

static bool ktls_here(void)
{
	struct auth_creds *cr = new_creds();
	struct transport_opts o;
	struct transport_chan *c, *s;
	bool ok;

	transport_opts_init(&o);
	o.auth = cr;
	o.tls = TRANSPORT_TLS_KERNEL;
	ok = !pair(&o, &o, &c, &s);
	if (ok) {
		transport_close(c);
		transport_close(s);
	}
	auth_creds_free(cr);
	return ok;
}



/* Messages of 4 KiB pages from a region, one iovec entry each, as PAGES. */
static void *pump_send(void *arg)
{
	struct pump *p = arg;
	uint8_t *region = malloc(MAX_PAYLOAD);
	struct iovec v[1 + MAX_PAYLOAD / 4096];

	for (uint32_t i = 0; i < MSGS && !p->ret; i++) {
		uint32_t pages = i % (MAX_PAYLOAD / 4096) + 1, len = pages * 4096;

		v[0] = (struct iovec){ &len, sizeof(len) };
		tls_pump_fill(region, len, i);
		for (uint32_t k = 0; k < pages; k++)
			v[1 + k] = (struct iovec){ region + (size_t)k * 4096, 4096 };
		p->ret = transport_send(p->ch, v, 1 + pages, 0, NULL);
	}
	if (p->ret)
		snprintf(p->err, sizeof(p->err), "%s", transport_error());
	free(region);
	return NULL;
}


FIXTURE(ktls) {
	struct auth_creds *creds;
	struct transport_chan *c, *s;
};

FIXTURE_VARIANT(ktls) {
	enum transport_tls client, server;
	enum transport_backend backend;
};

FIXTURE_VARIANT_ADD(ktls, kernel_kernel) { TRANSPORT_TLS_KERNEL, TRANSPORT_TLS_KERNEL, TRANSPORT_PLAIN };
FIXTURE_VARIANT_ADD(ktls, kernel_to_user) { TRANSPORT_TLS_KERNEL, TRANSPORT_TLS_USER, TRANSPORT_PLAIN };
FIXTURE_VARIANT_ADD(ktls, user_to_kernel) { TRANSPORT_TLS_USER, TRANSPORT_TLS_KERNEL, TRANSPORT_PLAIN };
FIXTURE_VARIANT_ADD(ktls, kernel_zerocopy) { TRANSPORT_TLS_KERNEL, TRANSPORT_TLS_KERNEL, TRANSPORT_ZEROCOPY };
FIXTURE_VARIANT_ADD(ktls, kernel_uring) { TRANSPORT_TLS_KERNEL, TRANSPORT_TLS_KERNEL, TRANSPORT_URING };

FIXTURE_SETUP(ktls)
{
	struct transport_opts co, so;

	if (!ktls_here())
		SETUP_SKIP("no kTLS in this kernel: %s", transport_error());
	self->creds = new_creds();
	ASSERT_NE(NULL, self->creds);
	transport_opts_init(&co);
	co.auth = self->creds;
	co.backend = variant->backend;
	co.tls = variant->client;
	so = co;
	so.backend = TRANSPORT_PLAIN;
	so.tls = variant->server;
	ASSERT_EQ(0, pair(&co, &so, &self->c, &self->s)) TH_LOG("%s", transport_error());
}

FIXTURE_TEARDOWN(ktls)
{
	transport_close(self->c);
	transport_close(self->s);
	auth_creds_free(self->creds);
}

/*
 * Catches: keys, IVs or sequence numbers handed to the kernel wrongly
 * (the first record fails), bytes of the first message left in GnuTLS's
 * buffer at the switch, or a scattered send mangled.
 */
TEST_F(ktls, messages_arrive_intact_both_ways)
{
	struct pump tx1 = PUMP(self->c), rx1 = PUMP(self->s);
	struct pump tx2 = PUMP(self->s), rx2 = PUMP(self->c);
	pthread_t t[4];

	EXPECT_EQ(variant->client == TRANSPORT_TLS_KERNEL ? TRANSPORT_CRYPTO_KERNEL :
		  TRANSPORT_CRYPTO_USER, transport_chan_crypto(self->c));
	EXPECT_EQ(variant->server == TRANSPORT_TLS_KERNEL ? TRANSPORT_CRYPTO_KERNEL :
		  TRANSPORT_CRYPTO_USER, transport_chan_crypto(self->s));
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
	TH_LOG("client: %s", transport_chan_security(self->c));
	if (variant->backend != TRANSPORT_PLAIN) {
		struct transport_stats st;

		/* The channel chose plain sends, and said why. */
		EXPECT_EQ(TRANSPORT_PLAIN, transport_chan_backend(self->c));
		EXPECT_NE(NULL, strstr(transport_chan_security(self->c), "kTLS takes no MSG_ZEROCOPY"));
		transport_get_stats(self->c, &st);
		EXPECT_EQ(0, st.zc_sends);
	}
}

/*
 * What the kernel does with zero copy on a kTLS socket, asked directly
 * (not through the transport): MSG_ZEROCOPY on sendmsg(), and io_uring's
 * IORING_OP_SENDMSG_ZC.  Catches a kernel that starts taking them (then
 * the transport's choice of copying should be revisited).
 */
TEST_F(ktls, zero_copy_refused_by_the_kernel)
{
	static char page[65536];
	struct iovec v = { page, sizeof(page) };
	struct msghdr m = { .msg_iov = &v, .msg_iovlen = 1 };
	struct io_uring ring;
	struct io_uring_sqe *sqe;
	struct io_uring_cqe *cqe;
	int one = 1, fd = self->c->fd, res;
	ssize_t n;

	if (variant->client != TRANSPORT_TLS_KERNEL || variant->backend != TRANSPORT_PLAIN)
		SKIP(return, "once is enough");
	ASSERT_EQ(0, setsockopt(fd, SOL_SOCKET, SO_ZEROCOPY, &one, sizeof(one)));
	n = sendmsg(fd, &m, MSG_ZEROCOPY | MSG_DONTWAIT);
	TH_LOG("sendmsg(MSG_ZEROCOPY) on kTLS: %zd (%s)", n, n < 0 ? strerror(errno) : "sent");
	EXPECT_EQ(-1, n);
	EXPECT_EQ(EOPNOTSUPP, errno);

	if (io_uring_queue_init(8, &ring, 0))
		SKIP(return, "no io_uring");
	sqe = io_uring_get_sqe(&ring);
	io_uring_prep_sendmsg_zc(sqe, fd, &m, 0);
	ASSERT_EQ(1, io_uring_submit(&ring));
	ASSERT_EQ(0, io_uring_wait_cqe(&ring, &cqe));
	res = cqe->res;
	io_uring_cqe_seen(&ring, cqe);
	TH_LOG("io_uring SENDMSG_ZC on kTLS: %d (%s)", res, res < 0 ? strerror(-res) : "sent");
	EXPECT_EQ(-EOPNOTSUPP, res);
	io_uring_queue_exit(&ring);
}

/* A relay that flips one byte of what the client sends: the man in the middle. */
struct relay {
	int lfd, port, to_port;
	long flip_at;
	pthread_t t;
};

static int tcp_to(int port)
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

static void *relay_main(void *arg)
{
	struct relay *r = arg;
	int c = accept(r->lfd, NULL, NULL), s = tcp_to(r->to_port);
	struct pollfd p[2] = { { .fd = c, .events = POLLIN }, { .fd = s, .events = POLLIN } };
	static uint8_t buf[65536];
	long off = 0;

	while (c >= 0 && s >= 0 && poll(p, 2, 5000) > 0) {
		if (p[0].revents) {
			ssize_t n = recv(c, buf, sizeof(buf), 0);

			if (n <= 0)
				break;
			if (r->flip_at >= off && r->flip_at < off + n)
				buf[r->flip_at - off] ^= 0x01;
			off += n;
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

/* Catches: the kernel delivering a record altered on the way. */
TEST(ktls_altered_record_refused)
{
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t sl = sizeof(a);
	struct auth_creds *cr;
	struct transport_opts o;
	struct accepted acc = { 0 };
	struct transport_chan *c;
	struct relay r = { 0 };
	uint8_t msg[4096], got[4096];
	struct iovec v = { msg, sizeof(msg) };
	pthread_t t;
	char addr[64];

	if (!ktls_here())
		SKIP(return, "no kTLS in this kernel");
	cr = new_creds();
	transport_opts_init(&o);
	o.auth = cr;
	o.tls = TRANSPORT_TLS_KERNEL;
	o.timeout_ms = 3000;
	ASSERT_EQ(0, transport_listen("127.0.0.1:0", &o, &acc.l));
	r.to_port = transport_listener_port(acc.l);
	r.flip_at = 3000;	/* past the handshake: inside our data */
	r.lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	ASSERT_EQ(0, bind(r.lfd, (struct sockaddr *)&a, sizeof(a)));
	ASSERT_EQ(0, listen(r.lfd, 1));
	ASSERT_EQ(0, getsockname(r.lfd, (struct sockaddr *)&a, &sl));
	pthread_create(&r.t, NULL, relay_main, &r);
	pthread_create(&t, NULL, accept_main, &acc);
	snprintf(addr, sizeof(addr), "127.0.0.1:%d", ntohs(a.sin_port));
	ASSERT_EQ(0, transport_connect(addr, &o, &c)) TH_LOG("%s", transport_error());
	pthread_join(t, NULL);
	ASSERT_EQ(0, acc.ret);
	EXPECT_EQ(TRANSPORT_CRYPTO_KERNEL, transport_chan_crypto(acc.ch));
	tls_pump_fill(msg, sizeof(msg), 1);
	ASSERT_EQ(0, transport_send(c, &v, 1, 0, NULL));
	EXPECT_EQ(-EBADMSG, transport_recv(acc.ch, got, sizeof(got))) TH_LOG("%s", transport_error());
	transport_close(c);
	transport_close(acc.ch);
	pthread_join(r.t, NULL);
	close(r.lfd);
	transport_listener_close(acc.l);
	auth_creds_free(cr);
}

TEST_HARNESS_MAIN
