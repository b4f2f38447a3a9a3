// SPDX-License-Identifier: GPL-2.0
/*
 * Transport channels: addresses, listen/accept/connect with timeouts and
 * retries, socket options, cancel and close.  Moving data is in
 * transport_io.c, the send backends in tcp.c and uring.c.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "auth/tls.h"
#include "wire/transport_priv.h"

#define TP_ADDR_MAX	256

static const struct {
	const char *name;
	const struct tp_backend_ops *ops;
} tp_backends[TRANSPORT_NR_BACKENDS] = {
	[TRANSPORT_PLAIN] = { "plain", &tp_plain_ops },
	[TRANSPORT_ZEROCOPY] = { "zerocopy", &tp_zerocopy_ops },
	[TRANSPORT_URING] = { "uring", &tp_uring_ops },
};

static __thread char tp_errbuf[256];

int tp_err(int err, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(tp_errbuf, sizeof(tp_errbuf), fmt, ap);
	va_end(ap);
	return err;
}

const char *transport_error(void)
{
	return tp_errbuf;
}

uint64_t tp_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + ts.tv_nsec;
}

/* Options and names. */

void transport_opts_init(struct transport_opts *o)
{
	memset(o, 0, sizeof(*o));
	o->backend = TRANSPORT_PLAIN;
	o->timeout_ms = TRANSPORT_DEFAULT_TIMEOUT_MS;
	o->connect_attempts = TRANSPORT_DEFAULT_ATTEMPTS;
	o->retry_delay_ms = TRANSPORT_DEFAULT_RETRY_MS;
	o->zc_min_bytes = TRANSPORT_DEFAULT_ZC_MIN;
	o->handshake_ms = TRANSPORT_DEFAULT_HANDSHAKE_MS;
	o->max_handshakes = TRANSPORT_DEFAULT_MAX_HANDSHAKES;
}

const char *transport_backend_name(enum transport_backend b)
{
	if ((unsigned int)b >= TRANSPORT_NR_BACKENDS)
		return "invalid";
	return tp_backends[b].name;
}

int transport_backend_parse(const char *name, enum transport_backend *b)
{
	for (unsigned int i = 0; name && i < TRANSPORT_NR_BACKENDS; i++) {
		if (!strcmp(name, tp_backends[i].name)) {
			*b = i;
			return 0;
		}
	}
	return tp_err(-EINVAL, "unknown transport backend '%s' (plain, zerocopy, uring)",
		      name ? name : "(null)");
}

/* Validate o and fill in its defaults. */
static int opts_resolve(const struct transport_opts *in, struct transport_opts *o)
{
	if (!in) {
		transport_opts_init(o);
		return 0;
	}
	*o = *in;
	if ((unsigned int)o->backend >= TRANSPORT_NR_BACKENDS)
		return tp_err(-EINVAL, "transport backend %u out of range", o->backend);
	if (o->flags & ~TRANSPORT_OPT_ALL)
		return tp_err(-EINVAL, "transport flags 0x%x are not defined",
			      o->flags & ~TRANSPORT_OPT_ALL);
	if (o->timeout_ms > INT_MAX / 4)
		return tp_err(-EINVAL, "timeout %u ms is too long", o->timeout_ms);
	if (o->sndbuf > INT_MAX / 2 || o->rcvbuf > INT_MAX / 2)
		return tp_err(-EINVAL, "socket buffer sizes above %d bytes", INT_MAX / 2);
	if ((unsigned int)o->tls >= TRANSPORT_TLS_NR)
		return tp_err(-EINVAL, "TLS mode %u out of range", o->tls);
	if (o->tls != TRANSPORT_TLS_AUTO && !o->auth)
		return tp_err(-EINVAL, "a TLS mode without a key");
	if (o->handshake_ms > INT_MAX / 4)
		return tp_err(-EINVAL, "handshake bound %u ms is too long", o->handshake_ms);
	if (o->max_handshakes > 1024)
		return tp_err(-EINVAL, "%u handshakes at once: at most 1024", o->max_handshakes);
	if (!o->timeout_ms)
		o->timeout_ms = TRANSPORT_DEFAULT_TIMEOUT_MS;
	if (!o->connect_attempts)
		o->connect_attempts = TRANSPORT_DEFAULT_ATTEMPTS;
	if (!o->retry_delay_ms)
		o->retry_delay_ms = TRANSPORT_DEFAULT_RETRY_MS;
	if (!o->zc_min_bytes)
		o->zc_min_bytes = TRANSPORT_DEFAULT_ZC_MIN;
	if (!o->handshake_ms)
		o->handshake_ms = TRANSPORT_DEFAULT_HANDSHAKE_MS;
	if (!o->max_handshakes)
		o->max_handshakes = TRANSPORT_DEFAULT_MAX_HANDSHAKES;
	return 0;
}

/* Addresses. */

/*
 * Split "host:port" / "[v6]:port".  An empty host is only for listening;
 * so is port 0.  Returns the resolved list in *res.
 */
static int addr_resolve(const char *addr, bool passive, struct addrinfo **res)
{
	char host[TP_ADDR_MAX], *port, *end;
	struct addrinfo hints = {
		.ai_socktype = SOCK_STREAM,
		.ai_protocol = IPPROTO_TCP,
		.ai_flags = AI_NUMERICSERV | (passive ? AI_PASSIVE : 0),
	};
	unsigned long pnum;
	size_t len;
	int ret;

	if (!addr || !*addr)
		return tp_err(-EINVAL, "empty address (want host:port)");
	len = strlen(addr);
	if (len >= sizeof(host))
		return tp_err(-EINVAL, "address longer than %zu characters", sizeof(host) - 1);
	memcpy(host, addr, len + 1);

	if (host[0] == '[') {
		end = strchr(host, ']');
		if (!end)
			return tp_err(-EINVAL, "'%s': no ']' after the IPv6 address", addr);
		if (end[1] != ':')
			return tp_err(-EINVAL, "'%s': want [address]:port", addr);
		*end = '\0';
		port = end + 2;
		memmove(host, host + 1, strlen(host + 1) + 1);
		if (!host[0])
			return tp_err(-EINVAL, "'%s': empty IPv6 address", addr);
		hints.ai_family = AF_INET6;
		hints.ai_flags |= AI_NUMERICHOST;
	} else {
		port = strrchr(host, ':');
		if (!port)
			return tp_err(-EINVAL, "'%s': no port (want host:port)", addr);
		*port++ = '\0';
		if (strchr(host, ':'))
			return tp_err(-EINVAL, "'%s': put an IPv6 address in brackets, [address]:port",
				      addr);
	}
	if (!*port || strspn(port, "0123456789") != strlen(port) || strlen(port) > 5)
		return tp_err(-EINVAL, "'%s': port '%s' is not a number", addr, port);
	pnum = strtoul(port, NULL, 10);
	if (pnum > 65535)
		return tp_err(-EINVAL, "'%s': port %lu out of range", addr, pnum);
	if (!passive && !pnum)
		return tp_err(-EINVAL, "'%s': cannot connect to port 0", addr);
	if (!passive && !host[0])
		return tp_err(-EINVAL, "'%s': no host to connect to", addr);

	ret = getaddrinfo(host[0] ? host : NULL, port, &hints, res);
	switch (ret) {
	case 0:
		return 0;
	case EAI_SYSTEM:
		return tp_err(-errno, "resolve '%s': %s", addr, strerror(errno));
	case EAI_AGAIN:
		return tp_err(-EAGAIN, "resolve '%s': %s", addr, gai_strerror(ret));
	case EAI_MEMORY:
		return tp_err(-ENOMEM, "resolve '%s': %s", addr, gai_strerror(ret));
	case EAI_NONAME:
	case EAI_NODATA:
		return tp_err(-ENOENT, "resolve '%s': %s", addr, gai_strerror(ret));
	default:
		return tp_err(-EINVAL, "resolve '%s': %s", addr, gai_strerror(ret));
	}
}

void tp_addr_format(const struct sockaddr *sa, char *buf, size_t len)
{
	char host[INET6_ADDRSTRLEN] = "?";
	unsigned int port = 0;

	if (sa->sa_family == AF_INET) {
		const struct sockaddr_in *sin = (const void *)sa;

		inet_ntop(AF_INET, &sin->sin_addr, host, sizeof(host));
		port = ntohs(sin->sin_port);
		snprintf(buf, len, "%s:%u", host, port);
	} else if (sa->sa_family == AF_INET6) {
		const struct sockaddr_in6 *sin6 = (const void *)sa;

		inet_ntop(AF_INET6, &sin6->sin6_addr, host, sizeof(host));
		port = ntohs(sin6->sin6_port);
		snprintf(buf, len, "[%s]:%u", host, port);
	} else {
		snprintf(buf, len, "family %d", sa->sa_family);
	}
}

/* Socket options. */

static int setopt(int fd, int level, int name, int val, const char *what)
{
	if (setsockopt(fd, level, name, &val, sizeof(val)) < 0)
		return tp_err(-errno, "setsockopt %s=%d: %s", what, val, strerror(errno));
	return 0;
}

/*
 * Before listen() or connect(), so that the window scale fits.  The FORCE
 * variants pass net.core.[rw]mem_max when we may (CAP_NET_ADMIN).
 */
static int set_buffers(int fd, const struct transport_opts *o)
{
	int ret = 0;

	if (o->sndbuf && setsockopt(fd, SOL_SOCKET, SO_SNDBUFFORCE, &o->sndbuf,
				    sizeof(int)) < 0)
		ret = setopt(fd, SOL_SOCKET, SO_SNDBUF, o->sndbuf, "SO_SNDBUF");
	if (!ret && o->rcvbuf && setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &o->rcvbuf,
					    sizeof(int)) < 0)
		ret = setopt(fd, SOL_SOCKET, SO_RCVBUF, o->rcvbuf, "SO_RCVBUF");
	return ret;
}

static int set_timeouts(int fd, uint32_t ms)
{
	struct timeval tv = { .tv_sec = ms / 1000, .tv_usec = (ms % 1000) * 1000 };

	if (setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv)) < 0 ||
	    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)) < 0)
		return tp_err(-errno, "setsockopt SO_{SND,RCV}TIMEO: %s", strerror(errno));
	return 0;
}

/*
 * A connected socket: no Nagle (each message is one sendmsg; small control
 * messages must not wait for an ACK), and blocking calls bounded by
 * SO_SNDTIMEO/SO_RCVTIMEO.  Keepalive and TCP_USER_TIMEOUT make the kernel
 * itself drop a peer that acknowledges nothing (data, window probes,
 * keepalives) for TP_USER_TIMEOUTS timeouts, which unpins our zero-copy
 * pages even after we gave up and closed.  Longer than one timeout: a
 * receiver that stops reading for a while is slow, not dead, and our own
 * calls give up on it first.
 */
#define TP_USER_TIMEOUTS	3

static int set_channel_opts(int fd, const struct transport_opts *o)
{
	int idle = o->timeout_ms / 2000, intvl = o->timeout_ms / 4000;
	int ret;

	if (idle < 1)
		idle = 1;
	if (intvl < 1)
		intvl = 1;
	ret = setopt(fd, IPPROTO_TCP, TCP_NODELAY, 1, "TCP_NODELAY");
	if (!ret)
		ret = setopt(fd, SOL_SOCKET, SO_KEEPALIVE, 1, "SO_KEEPALIVE");
	if (!ret)
		ret = setopt(fd, IPPROTO_TCP, TCP_KEEPIDLE, idle, "TCP_KEEPIDLE");
	if (!ret)
		ret = setopt(fd, IPPROTO_TCP, TCP_KEEPINTVL, intvl, "TCP_KEEPINTVL");
	if (!ret)
		ret = setopt(fd, IPPROTO_TCP, TCP_KEEPCNT, 3, "TCP_KEEPCNT");
	if (!ret)
		ret = setopt(fd, IPPROTO_TCP, TCP_USER_TIMEOUT,
			     o->timeout_ms * TP_USER_TIMEOUTS, "TCP_USER_TIMEOUT");
	if (!ret)
		ret = set_timeouts(fd, o->timeout_ms);
	return ret;
}

int tp_set_blocking(int fd, bool blocking)
{
	int fl = fcntl(fd, F_GETFL);

	if (fl < 0)
		return tp_err(-errno, "fcntl: %s", strerror(errno));
	fl = blocking ? fl & ~O_NONBLOCK : fl | O_NONBLOCK;
	if (fcntl(fd, F_SETFL, fl) < 0)
		return tp_err(-errno, "fcntl: %s", strerror(errno));
	return 0;
}

int tp_chan_create(int fd, const struct transport_opts *o, struct auth_session *sec,
		   struct transport_chan **out)
{
	struct sockaddr_storage ss;
	socklen_t sl = sizeof(ss);
	struct transport_chan *ch;
	char peer[64];
	int ret;

	ret = set_channel_opts(fd, o);
	if (ret)
		goto err_close;
	if (getpeername(fd, (struct sockaddr *)&ss, &sl) < 0) {
		ret = tp_err(-errno, "getpeername: %s", strerror(errno));
		goto err_close;
	}
	tp_addr_format((struct sockaddr *)&ss, peer, sizeof(peer));
	ch = aligned_alloc(64, (sizeof(*ch) + 63) & ~(size_t)63);
	if (!ch) {
		ret = tp_err(-ENOMEM, "channel to %s: out of memory", peer);
		goto err_close;
	}
	memset(ch, 0, sizeof(*ch));
	ch->fd = fd;
	ch->opts = *o;
	ch->backend = o->backend;
	ch->ops = tp_backends[o->backend].ops;
	atomic_init(&ch->cancelled, false);
	memcpy(ch->peer, peer, sizeof(peer));
	snprintf(ch->security, sizeof(ch->security), "none");
	if (sec) {
		/* May change the backend: zero copy does not go with TLS records. */
		ret = tp_tls_attach(ch, sec);
		sec = NULL;
		if (ret)
			goto err_free;
	}
	ret = ch->ops->setup(ch);
	if (ret) {
		ch->ops->release(ch);
		goto err_free;
	}
	*out = ch;
	return 0;

err_free:
	auth_session_free(ch->sec);
	free(ch);
err_close:
	auth_session_free(sec);
	close(fd);
	return ret;
}

/* Listening and accepting. */

/* Wildcard listeners take IPv6 first, dual-stack, then IPv4. */
static int listen_one(const struct addrinfo *ai, const struct transport_opts *o)
{
	int fd, ret;

	fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC | SOCK_NONBLOCK,
		    ai->ai_protocol);
	if (fd < 0)
		return -errno;
	ret = setopt(fd, SOL_SOCKET, SO_REUSEADDR, 1, "SO_REUSEADDR");
	if (!ret && ai->ai_family == AF_INET6)
		ret = setopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, 0, "IPV6_V6ONLY");
	if (!ret)
		ret = set_buffers(fd, o);
	if (!ret && (bind(fd, ai->ai_addr, ai->ai_addrlen) < 0 || listen(fd, 128) < 0))
		ret = -errno;
	if (ret) {
		close(fd);
		return ret;
	}
	return fd;
}

int transport_listen(const char *addr, const struct transport_opts *opts,
		     struct transport_listener **out)
{
	struct transport_listener *l;
	struct sockaddr_storage ss;
	socklen_t sl = sizeof(ss);
	struct addrinfo *res, *ai;
	struct transport_opts o;
	int ret, fd = -EAFNOSUPPORT;

	if (!out)
		return tp_err(-EINVAL, "transport_listen: no place for the listener");
	ret = opts_resolve(opts, &o);
	if (ret)
		return ret;
	ret = addr_resolve(addr, true, &res);
	if (ret)
		return ret;
	for (int pass = 0; pass < 2 && fd < 0; pass++) {
		for (ai = res; ai && fd < 0; ai = ai->ai_next) {
			if ((pass == 0) != (ai->ai_family == AF_INET6))
				continue;
			fd = listen_one(ai, &o);
		}
	}
	freeaddrinfo(res);
	if (fd < 0)
		return tp_err(fd, "listen on %s: %s", addr, strerror(-fd));
	if (getsockname(fd, (struct sockaddr *)&ss, &sl) < 0) {
		ret = tp_err(-errno, "getsockname: %s", strerror(errno));
		goto err_close;
	}
	l = calloc(1, sizeof(*l));
	if (!l) {
		ret = tp_err(-ENOMEM, "listener: out of memory");
		goto err_close;
	}
	l->fd = fd;
	l->opts = o;
	atomic_init(&l->cancelled, false);
	if (o.auth) {
		ret = tp_gate_new(l);
		if (ret) {
			free(l);
			goto err_close;
		}
	}
	l->port = ntohs(ss.ss_family == AF_INET6 ?
			((struct sockaddr_in6 *)&ss)->sin6_port :
			((struct sockaddr_in *)&ss)->sin_port);
	*out = l;
	return 0;

err_close:
	close(fd);
	return ret;
}

int transport_listener_port(const struct transport_listener *l)
{
	return l ? l->port : -EINVAL;
}

int tp_poll_remaining(uint64_t deadline)
{
	uint64_t now;

	if (!deadline)
		return -1;
	now = tp_now_ns();
	if (now >= deadline)
		return 0;
	return (deadline - now + 999999) / 1000000;
}

int transport_accept_any(struct transport_listener *const *ls, unsigned int n,
			 uint32_t timeout_ms, struct transport_chan **out,
			 unsigned int *which)
{
	uint64_t deadline = timeout_ms ? tp_now_ns() + timeout_ms * 1000000ull : 0;
	struct pollfd pfd[16];

	if (!ls || !n || n > 16 || !out)
		return tp_err(-EINVAL, "transport_accept: %u listeners (1 to 16)", n);
	if (timeout_ms > INT_MAX / 2)
		return tp_err(-EINVAL, "accept timeout %u ms is too long", timeout_ms);
	for (unsigned int i = 0; i < n; i++) {
		if (!ls[i])
			return tp_err(-EINVAL, "transport_accept: listener %u is NULL", i);
		if ((ls[i]->gate != NULL) != (ls[0]->gate != NULL))
			return tp_err(-EINVAL, "transport_accept: listeners with and without TLS");
		pfd[i] = (struct pollfd){ .fd = ls[i]->fd, .events = POLLIN };
	}
	if (ls[0]->gate)
		return tp_gate_accept(ls, n, timeout_ms, out, which);
	for (;;) {
		int wait = tp_poll_remaining(deadline), ret;

		for (unsigned int i = 0; i < n; i++)
			if (atomic_load(&ls[i]->cancelled))
				return tp_err(-ECANCELED, "accept: cancelled");
		if (!wait)
			return tp_err(-ETIMEDOUT, "accept: nobody connected within %u ms",
				      timeout_ms);
		ret = poll(pfd, n, wait);
		if (ret < 0 && errno != EINTR)
			return tp_err(-errno, "accept: poll: %s", strerror(errno));
		for (unsigned int i = 0; ret > 0 && i < n; i++) {
			int fd;

			if (!pfd[i].revents)
				continue;
			fd = accept4(pfd[i].fd, NULL, NULL, SOCK_CLOEXEC);
			if (fd < 0) {
				if (errno == EAGAIN || errno == EINTR || errno == ECONNABORTED)
					continue;
				if (atomic_load(&ls[i]->cancelled))
					return tp_err(-ECANCELED, "accept: cancelled");
				return tp_err(-errno, "accept: %s", strerror(errno));
			}
			if (which)
				*which = i;
			return tp_chan_create(fd, &ls[i]->opts, NULL, out);
		}
	}
}

int transport_accept(struct transport_listener *l, uint32_t timeout_ms,
		     struct transport_chan **out)
{
	return transport_accept_any(&l, 1, timeout_ms, out, NULL);
}

void transport_listener_cancel(struct transport_listener *l)
{
	if (!l)
		return;
	atomic_store(&l->cancelled, true);
	/* A listening socket shut down wakes its pollers with POLLHUP. */
	shutdown(l->fd, SHUT_RDWR);
}

void transport_listener_close(struct transport_listener *l)
{
	if (!l)
		return;
	tp_gate_free(l->gate);
	close(l->fd);
	free(l);
}

/* Connecting. */

static bool retryable(int err)
{
	switch (err) {
	case ECONNREFUSED:
	case ETIMEDOUT:
	case EHOSTUNREACH:
	case ENETUNREACH:
	case ECONNRESET:
	case EAGAIN:
		return true;
	default:
		return false;
	}
}

/* One attempt on one address: a connected blocking socket, or -errno. */
static int connect_one(const struct addrinfo *ai, const struct transport_opts *o)
{
	struct pollfd pfd;
	socklen_t sl = sizeof(int);
	int fd, ret, soerr;

	fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC | SOCK_NONBLOCK,
		    ai->ai_protocol);
	if (fd < 0)
		return -errno;
	ret = set_buffers(fd, o);
	if (ret)
		goto err_close;
	if (connect(fd, ai->ai_addr, ai->ai_addrlen) < 0) {
		if (errno != EINPROGRESS) {
			ret = -errno;
			goto err_close;
		}
		pfd = (struct pollfd){ .fd = fd, .events = POLLOUT };
		do
			ret = poll(&pfd, 1, o->timeout_ms);
		while (ret < 0 && errno == EINTR);
		if (ret <= 0) {
			ret = ret ? -errno : -ETIMEDOUT;
			goto err_close;
		}
		if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &sl) < 0) {
			ret = -errno;
			goto err_close;
		}
		if (soerr) {
			ret = -soerr;
			goto err_close;
		}
	}
	ret = tp_set_blocking(fd, true);
	if (ret)
		goto err_close;
	return fd;

err_close:
	close(fd);
	return ret;
}

int transport_connect(const char *addr, const struct transport_opts *opts,
		      struct transport_chan **out)
{
	struct transport_opts o;
	struct addrinfo *res = NULL, *ai;
	int ret, fd = -EHOSTUNREACH;
	uint32_t attempt;

	if (!out)
		return tp_err(-EINVAL, "transport_connect: no place for the channel");
	ret = opts_resolve(opts, &o);
	if (ret)
		return ret;
	for (attempt = 1; ; attempt++) {
		if (!res) {
			ret = addr_resolve(addr, false, &res);
			/* A resolver failure says nothing more than its text. */
			if (ret && (ret != -EAGAIN || attempt >= o.connect_attempts))
				return ret;
			fd = ret;
		}
		for (ai = res; ai; ai = ai->ai_next) {
			fd = connect_one(ai, &o);
			if (fd >= 0)
				break;
		}
		if (fd >= 0 || attempt >= o.connect_attempts || !retryable(-fd))
			break;
		usleep(o.retry_delay_ms * 1000);
	}
	if (res)
		freeaddrinfo(res);
	if (fd < 0)
		return tp_err(fd, "connect to %s: %s (%u attempt%s)", addr, strerror(-fd),
			      attempt, attempt == 1 ? "" : "s");
	if (o.auth) {
		struct auth_session *sec;

		ret = tp_tls_connect(fd, &o, addr, &sec);
		if (ret) {
			close(fd);
			return ret;
		}
		return tp_chan_create(fd, &o, sec, out);
	}
	return tp_chan_create(fd, &o, NULL, out);
}

/* Life cycle. */

void transport_cancel(struct transport_chan *ch)
{
	if (!ch)
		return;
	atomic_store(&ch->cancelled, true);
	/*
	 * Wakes a sendmsg() waiting for buffer space (EPIPE), a recvmsg()
	 * (returns 0) and a poll() for completions (POLLHUP).
	 */
	shutdown(ch->fd, SHUT_RDWR);
}

void transport_close(struct transport_chan *ch)
{
	if (!ch)
		return;
	ch->ops->release(ch);
	close(ch->fd);
	auth_session_free(ch->sec);
	tp_zcwin_free(&ch->zc);
	free(ch);
}

int transport_set_timeout(struct transport_chan *ch, uint32_t timeout_ms)
{
	if (!ch)
		return tp_err(-EINVAL, "set timeout: no channel");
	if (timeout_ms > INT_MAX / 4)
		return tp_err(-EINVAL, "timeout %u ms is too long", timeout_ms);
	ch->opts.timeout_ms = timeout_ms ? timeout_ms : TRANSPORT_DEFAULT_TIMEOUT_MS;
	return set_channel_opts(ch->fd, &ch->opts);
}

const char *transport_peer(const struct transport_chan *ch)
{
	return ch ? ch->peer : "";
}

enum transport_backend transport_chan_backend(const struct transport_chan *ch)
{
	return ch->backend;
}

enum transport_crypto transport_chan_crypto(const struct transport_chan *ch)
{
	return ch->crypto;
}

const char *transport_chan_security(const struct transport_chan *ch)
{
	return ch->security;
}

static const char *const tp_tls_names[TRANSPORT_TLS_NR] = {
	[TRANSPORT_TLS_AUTO] = "auto",
	[TRANSPORT_TLS_KERNEL] = "kernel",
	[TRANSPORT_TLS_USER] = "user",
};

const char *transport_tls_name(enum transport_tls t)
{
	return (unsigned int)t < TRANSPORT_TLS_NR ? tp_tls_names[t] : "invalid";
}

int transport_tls_parse(const char *name, enum transport_tls *t)
{
	for (unsigned int i = 0; name && i < TRANSPORT_TLS_NR; i++) {
		if (!strcmp(name, tp_tls_names[i])) {
			*t = i;
			return 0;
		}
	}
	return tp_err(-EINVAL, "unknown TLS mode '%s' (auto, kernel, user)", name ? name : "(null)");
}
