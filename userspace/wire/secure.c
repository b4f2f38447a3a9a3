// SPDX-License-Identifier: GPL-2.0
/*
 * TLS on the transport (transport.h, "Security"): the client's handshake in
 * transport_connect(), the listeners' gate, the choice of where records are
 * encrypted, and records in userspace where the kernel has no TLS.
 *
 * The gate: a listener with a key never hands out a connection whose peer
 * has not proved it holds the key.  Each new connection joins the gate as
 * a non-blocking server handshake with a deadline; one poll() drives them
 * all, so a peer that stalls holds one slot until its deadline and delays
 * nobody.  When the gate is full (max_handshakes), a new connection is
 * closed at once: a flood costs the listener an accept() and a close() per
 * connection, never memory or a VM.  A connection leaves the gate as a
 * channel (handshake done) or closed (failed, too slow), said in opts.log.
 */
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "auth/tls.h"
#include "wire/transport_priv.h"

/* Userspace records: the plaintext of one full record, gathered from the iovec. */
#define TLS_STAGE	16384
/* New connections taken per wakeup before the handshakes get their turn. */
#define GATE_ACCEPT_BURST 16

/* The raw socket while a handshake runs: never blocks (poll() waits). */
static ssize_t raw_push(void *ctx, const void *buf, size_t len)
{
	return send((int)(intptr_t)ctx, buf, len, MSG_NOSIGNAL | MSG_DONTWAIT);
}

static ssize_t raw_pull(void *ctx, void *buf, size_t len)
{
	return recv((int)(intptr_t)ctx, buf, len, MSG_DONTWAIT);
}

int tp_tls_connect(int fd, const struct transport_opts *o, const char *peer,
		   struct auth_session **out)
{
	struct auth_io io = { raw_push, raw_pull, (void *)(intptr_t)fd };
	uint64_t deadline = tp_now_ns() + o->handshake_ms * 1000000ull;
	struct auth_session *s;
	int ret;

	ret = auth_session_new(o->auth, AUTH_CLIENT, &io, &s);
	if (ret)
		return tp_err(ret, "TLS with %s: %s", peer, strerror(-ret));
	for (;;) {
		struct pollfd p = { .fd = fd };
		bool ww = false;
		int wait;

		ret = auth_handshake(s, &ww);
		if (ret != -EAGAIN)
			break;
		wait = tp_poll_remaining(deadline);
		if (!wait) {
			ret = tp_err(-ETIMEDOUT, "TLS handshake with %s: no answer within %u ms", peer,
				     o->handshake_ms);
			goto err_free;
		}
		p.events = ww ? POLLOUT : POLLIN;
		if (poll(&p, 1, wait) < 0 && errno != EINTR) {
			ret = tp_err(-errno, "TLS handshake with %s: poll: %s", peer, strerror(errno));
			goto err_free;
		}
	}
	if (ret) {
		tp_err(ret, "TLS handshake with %s failed: %s", peer, auth_session_error(s));
		goto err_free;
	}
	*out = s;
	return 0;

err_free:
	auth_session_free(s);
	return ret;
}

/* Records in userspace: the channel's socket under GnuTLS. */

static ssize_t chan_push(void *ctx, const void *buf, size_t len)
{
	struct transport_chan *ch = ctx;

	for (;;) {
		ssize_t n = send(ch->fd, buf, len, MSG_NOSIGNAL | MSG_DONTWAIT);
		int ret;

		if (n >= 0)
			return n;
		if (errno == EINTR)
			continue;
		if (errno == EAGAIN) {
			ret = tp_wait_writable(ch);
			if (!ret)
				continue;
			errno = -ret;
		} else if (atomic_load(&ch->cancelled)) {
			errno = ECANCELED;
		}
		ch->sec_tx_errno = errno;
		return -1;
	}
}

/*
 * Blocking, bounded by SO_RCVTIMEO as transport_recvv() is.  A timeout is
 * EAGAIN to GnuTLS, which keeps the session usable (its other failures are
 * fatal to it), as a plaintext channel stays usable after one.
 */
static ssize_t chan_pull(void *ctx, void *buf, size_t len)
{
	struct transport_chan *ch = ctx;

	for (;;) {
		ssize_t n = recv(ch->fd, buf, len, 0);

		ch->rx.recv_calls++;
		if (n > 0)
			return n;
		if (atomic_load(&ch->cancelled))
			errno = ECANCELED;
		else if (n == 0)
			return 0;
		else if (errno == EINTR)
			continue;
		else if (errno == EAGAIN)
			return -1;
		ch->sec_rx_errno = errno;
		return -1;
	}
}

static int tls_user_setup(struct transport_chan *ch)
{
	ch->priv = malloc(TLS_STAGE);
	return ch->priv ? 0 : tp_err(-ENOMEM, "TLS staging buffer: out of memory");
}

static void tls_user_release(struct transport_chan *ch)
{
	free(ch->priv);
	ch->priv = NULL;
}

static int tls_user_reap(struct transport_chan *ch, int timeout_ms)
{
	return 0;
}

/* Why a userspace record could not go out. */
static int tls_send_error(struct transport_chan *ch, ssize_t n)
{
	int e = ch->sec_tx_errno;

	if (atomic_load(&ch->cancelled))
		return tp_err(-ECANCELED, "send to %s: cancelled", ch->peer);
	if (n == -EPIPE && e == ETIMEDOUT)
		return -ETIMEDOUT;	/* tp_wait_writable() said it */
	if (n == -EPIPE && e)
		return tp_err(-e, "send to %s: %s", ch->peer, strerror(e));
	return tp_err(-EPROTO, "send to %s: TLS record refused (%zd)", ch->peer, n);
}

/*
 * Full records: the iovec gathered into one record's plaintext at a time
 * (pages are 4 KiB apart; a record each would be four times the records).
 */
static int tls_user_send(struct transport_chan *ch, struct msghdr *msg, size_t len, bool zc)
{
	uint8_t *stage = ch->priv;

	while (len) {
		size_t fill = 0, off = 0;

		while (fill < TLS_STAGE && msg->msg_iovlen) {
			struct iovec *v = msg->msg_iov;
			size_t k = v->iov_len < TLS_STAGE - fill ? v->iov_len : TLS_STAGE - fill;

			memcpy(stage + fill, v->iov_base, k);
			fill += k;
			tp_msg_advance(msg, k);
		}
		while (off < fill) {
			ssize_t n = auth_send(ch->sec, stage + off, fill - off);

			ch->tx.send_calls++;
			if (n <= 0)
				return tls_send_error(ch, n);
			off += n;
			ch->tx.copied_sends++;
			ch->tx.bytes_sent += n;
			tp_stats_moved(&ch->tx);
		}
		len -= fill;
	}
	return 0;
}

const struct tp_backend_ops tp_tls_user_ops = {
	.setup = tls_user_setup,
	.send = tls_user_send,
	.reap = tls_user_reap,
	.release = tls_user_release,
};

int tp_tls_recvv(struct transport_chan *ch, struct msghdr *msg, size_t len)
{
	size_t got = 0;

	while (got < len) {
		struct iovec *v = msg->msg_iov;
		ssize_t n = auth_recv(ch->sec, v->iov_base, v->iov_len);
		int e = ch->sec_rx_errno;

		if (n > 0) {
			got += n;
			ch->rx.bytes_received += n;
			tp_stats_moved(&ch->rx);
			tp_msg_advance(msg, n);
			continue;
		}
		if (atomic_load(&ch->cancelled))
			return tp_err(-ECANCELED, "recv from %s: cancelled", ch->peer);
		if (n == 0)
			return got ? tp_err(-ECONNRESET, "%s closed the channel after %zu of %zu bytes",
					    ch->peer, got, len) :
				     tp_err(-ENODATA, "%s closed the channel", ch->peer);
		if (n == -EBADMSG)
			return tp_err(-EBADMSG, "recv from %s: a TLS record failed its authentication (altered on the way)",
				      ch->peer);
		if (n == -EAGAIN)
			return tp_err(-ETIMEDOUT, "recv from %s: nothing for %u ms (%zu of %zu bytes)",
				      ch->peer, ch->opts.timeout_ms, got, len);
		if (n == -EPIPE && e)
			return tp_err(-e, "recv from %s: %s", ch->peer, strerror(e));
		return tp_err(-EPROTO, "recv from %s: unexpected TLS record", ch->peer);
	}
	return 0;
}

/*
 * Does the kernel's TLS take MSG_ZEROCOPY on this socket?  Asked with an
 * empty send, which moves nothing either way.  Linux 6.1 to 6.12: no
 * (tls_sw_sendmsg() accepts MORE, DONTWAIT, NOSIGNAL and little else).
 */
static bool ktls_takes_zerocopy(int fd)
{
	struct msghdr m = { 0 };

	return sendmsg(fd, &m, MSG_ZEROCOPY | MSG_DONTWAIT | MSG_NOSIGNAL) >= 0;
}

int tp_tls_attach(struct transport_chan *ch, struct auth_session *sec)
{
	struct auth_io io = { chan_push, chan_pull, ch };
	bool zc = ch->backend != TRANSPORT_PLAIN;
	char why[160] = "", note[128] = "";
	const char *where;
	int ret = -ENOENT;

	ch->sec = sec;
	if (ch->opts.tls != TRANSPORT_TLS_USER) {
		ret = auth_session_ktls(sec, ch->fd, why, sizeof(why));
		if (ret && (ret != -ENOENT || ch->opts.tls == TRANSPORT_TLS_KERNEL))
			return tp_err(ret, "%s: %s", ch->peer, why);
	}
	if (!ret) {
		ch->crypto = TRANSPORT_CRYPTO_KERNEL;
		where = "in the kernel (kTLS)";
		if (zc && !ktls_takes_zerocopy(ch->fd)) {
			snprintf(note, sizeof(note),
				 "; %s asked, but kTLS takes no MSG_ZEROCOPY (%s): sends by copy, the encryption being that copy",
				 transport_backend_name(ch->backend), strerror(errno));
			ch->backend = TRANSPORT_PLAIN;
			ch->ops = &tp_plain_ops;
		}
	} else {
		/* Every record through GnuTLS, which copies: no zero copy. */
		ch->crypto = TRANSPORT_CRYPTO_USER;
		where = ch->opts.tls == TRANSPORT_TLS_USER ? "in userspace (GnuTLS, as asked)" :
			"in userspace (GnuTLS: this kernel has no TLS)";
		if (zc)
			snprintf(note, sizeof(note), "; %s asked, but userspace TLS copies: sends by copy",
				 transport_backend_name(ch->backend));
		ch->backend = TRANSPORT_PLAIN;
		ch->ops = &tp_tls_user_ops;
		auth_session_set_io(sec, &io);
	}
	snprintf(ch->security, sizeof(ch->security), "%s, records %s%s", auth_session_desc(sec),
		 where, note);
	return 0;
}

/* The gate. */

struct tp_pending {
	int fd;
	struct auth_session *s;
	uint64_t deadline;
	bool want_write;
	char peer[64];
};

struct tp_gate {
	unsigned int n, max;
	struct tp_pending p[];
};

int tp_gate_new(struct transport_listener *l)
{
	l->gate = calloc(1, sizeof(*l->gate) + l->opts.max_handshakes * sizeof(l->gate->p[0]));
	if (!l->gate)
		return tp_err(-ENOMEM, "listener: out of memory");
	l->gate->max = l->opts.max_handshakes;
	return 0;
}

static void gate_drop(struct tp_gate *g, unsigned int i)
{
	auth_session_free(g->p[i].s);
	close(g->p[i].fd);
	g->p[i] = g->p[--g->n];
}

void tp_gate_free(struct tp_gate *g)
{
	while (g && g->n)
		gate_drop(g, g->n - 1);
	free(g);
}

static void gate_log(const struct transport_listener *l, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static void gate_log(const struct transport_listener *l, const char *fmt, ...)
{
	char line[512];
	va_list ap;

	if (!l->opts.log)
		return;
	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	l->opts.log(l->opts.log_ctx, line);
}

/* A new connection: into the gate, or closed if the gate is full. */
static void gate_admit(struct transport_listener *l, int fd, const char *peer)
{
	struct tp_gate *g = l->gate;
	struct tp_pending *p;
	struct auth_io io = { raw_push, raw_pull, (void *)(intptr_t)fd };
	int one = 1;

	if (g->n == g->max) {
		gate_log(l, "refused %s: %u TLS handshakes already in progress on port %d (the limit)",
			 peer, g->max, l->port);
		close(fd);
		return;
	}
	p = &g->p[g->n];
	if (auth_session_new(l->opts.auth, AUTH_SERVER, &io, &p->s)) {
		gate_log(l, "refused %s: out of memory for its handshake", peer);
		close(fd);
		return;
	}
	/* The handshake's small flights must not wait for delayed ACKs. */
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	p->fd = fd;
	p->deadline = tp_now_ns() + l->opts.handshake_ms * 1000000ull;
	p->want_write = false;
	snprintf(p->peer, sizeof(p->peer), "%s", peer);
	g->n++;
}

/* Take what waits on l's backlog; -errno only for what must end accepting. */
static int gate_take(struct transport_listener *l)
{
	for (int i = 0; i < GATE_ACCEPT_BURST; i++) {
		struct sockaddr_storage ss;
		socklen_t sl = sizeof(ss);
		char peer[64];
		int fd = accept4(l->fd, (struct sockaddr *)&ss, &sl, SOCK_CLOEXEC | SOCK_NONBLOCK);

		if (fd < 0) {
			if (errno == EAGAIN || errno == EINTR || errno == ECONNABORTED)
				return 0;
			if (atomic_load(&l->cancelled))
				return tp_err(-ECANCELED, "accept: cancelled");
			/* Out of descriptors or memory: a flood; the gate drains it. */
			if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) {
				gate_log(l, "accept on port %d: %s", l->port, strerror(errno));
				return 0;
			}
			return tp_err(-errno, "accept: %s", strerror(errno));
		}
		tp_addr_format((struct sockaddr *)&ss, peer, sizeof(peer));
		gate_admit(l, fd, peer);
	}
	return 0;
}

/*
 * Move pending handshake i of l on.  1 and *out: it is done and a channel;
 * 0: still going, or it failed (closed and said).
 */
static int gate_step(struct transport_listener *l, unsigned int i, struct transport_chan **out)
{
	struct tp_gate *g = l->gate;
	struct tp_pending p = g->p[i];
	int ret = auth_handshake(p.s, &g->p[i].want_write);

	if (ret == -EAGAIN)
		return 0;
	if (ret) {
		gate_log(l, "refused %s: %s", p.peer, auth_session_error(p.s));
		gate_drop(g, i);
		return 0;
	}
	/* Out of the gate: the channel owns the socket and the session now. */
	g->p[i] = g->p[--g->n];
	ret = tp_set_blocking(p.fd, true);
	if (ret) {
		auth_session_free(p.s);
		close(p.fd);
	} else {
		ret = tp_chan_create(p.fd, &l->opts, p.s, out);
	}
	if (ret) {
		gate_log(l, "dropped %s after its handshake: %s", p.peer, transport_error());
		return 0;
	}
	return 1;
}

/* Close what took too long; the time until the next deadline (ms, -1: none). */
static int gate_expire(struct transport_listener *const *ls, unsigned int n, uint64_t now)
{
	uint64_t next = 0;

	for (unsigned int li = 0; li < n; li++) {
		struct tp_gate *g = ls[li]->gate;

		for (unsigned int i = g->n; i-- > 0;) {
			if (now >= g->p[i].deadline) {
				gate_log(ls[li], "refused %s: no TLS handshake within %u ms",
					 g->p[i].peer, ls[li]->opts.handshake_ms);
				gate_drop(g, i);
			} else if (!next || g->p[i].deadline < next) {
				next = g->p[i].deadline;
			}
		}
	}
	return next ? tp_poll_remaining(next) : -1;
}

int tp_gate_accept(struct transport_listener *const *ls, unsigned int n, uint32_t timeout_ms,
		   struct transport_chan **out, unsigned int *which)
{
	uint64_t deadline = timeout_ms ? tp_now_ns() + timeout_ms * 1000000ull : 0;
	unsigned int cap = n, cnt;
	struct pollfd *pfd;
	int ret = 0;

	for (unsigned int li = 0; li < n; li++)
		cap += ls[li]->gate->max;
	pfd = calloc(cap, sizeof(*pfd));
	if (!pfd)
		return tp_err(-ENOMEM, "accept: out of memory");
	for (;;) {
		int wait = gate_expire(ls, n, tp_now_ns()), left;

		for (unsigned int li = 0; li < n; li++)
			if (atomic_load(&ls[li]->cancelled)) {
				ret = tp_err(-ECANCELED, "accept: cancelled");
				goto out;
			}
		left = tp_poll_remaining(deadline);
		if (!left) {
			ret = tp_err(-ETIMEDOUT, "accept: nobody connected within %u ms", timeout_ms);
			goto out;
		}
		if (wait < 0 || (left >= 0 && left < wait))
			wait = left;
		cnt = 0;
		for (unsigned int li = 0; li < n; li++)
			pfd[cnt++] = (struct pollfd){ .fd = ls[li]->fd, .events = POLLIN };
		for (unsigned int li = 0; li < n; li++)
			for (unsigned int i = 0; i < ls[li]->gate->n; i++) {
				const struct tp_pending *p = &ls[li]->gate->p[i];

				pfd[cnt++] = (struct pollfd){ .fd = p->fd,
							      .events = p->want_write ? POLLOUT : POLLIN };
			}
		if (poll(pfd, cnt, wait) < 0) {
			if (errno == EINTR)
				continue;
			ret = tp_err(-errno, "accept: poll: %s", strerror(errno));
			goto out;
		}
		/*
		 * Handshakes first, each list downwards: a finished or failed
		 * one is replaced by the list's last, already visited.
		 */
		cnt = n;
		for (unsigned int li = 0; li < n; li++) {
			unsigned int first = cnt, m = ls[li]->gate->n;

			cnt += m;
			for (unsigned int i = m; i-- > 0;) {
				if (!pfd[first + i].revents)
					continue;
				if (gate_step(ls[li], i, out)) {
					if (which)
						*which = li;
					goto out;
				}
			}
		}
		for (unsigned int li = 0; li < n; li++) {
			if (!pfd[li].revents)
				continue;
			ret = gate_take(ls[li]);
			if (ret)
				goto out;
		}
	}
out:
	free(pfd);
	return ret;
}
