/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Transport: the TCP channels that carry migration traffic.
 *
 * One channel is one TCP connection.  A migration opens several, possibly
 * to several destination addresses; each has one sending thread and one
 * receiving thread at most, and any thread may cancel it.
 *
 * Sending takes an iovec (a header plus pointers straight into guest memory,
 * or a compressed buffer) and one of three backends, chosen in one place
 * (transport_opts.backend):
 *
 *   plain     sendmsg(): the kernel copies the data before send returns.
 *   zerocopy  sendmsg(MSG_ZEROCOPY) on an SO_ZEROCOPY socket: the kernel pins
 *             the pages and reports when it let go of them on the socket's
 *             error queue (SO_EE_ORIGIN_ZEROCOPY, ranges [ee_info, ee_data]
 *             of per-sendmsg ids).
 *   uring     io_uring IORING_OP_SENDMSG_ZC: the same pinning, with the
 *             release reported as a notification CQE.
 *
 * With zero copy every byte of the iovec (header included) stays in use by
 * the kernel after transport_send() returned, until the send's ticket has
 * completed: transport_wait() for one ticket, transport_flush() for all.
 * A ticket that was sent by copy is TRANSPORT_TICKET_DONE.  Tickets of one
 * channel complete in order: when ticket t is done, every earlier one is.
 *
 * On loopback and veth the kernel copies every zero-copy send after all (a
 * deferred copy, reported as SO_EE_CODE_ZEROCOPY_COPIED and counted in
 * zc_copied); zero copy saves CPU only between two hosts.  A deferred copy
 * costs more than sendmsg()'s own (the data is cold, and each send adds a
 * notification), so a channel whose first TRANSPORT_ZC_GIVE_UP completions
 * in a row all came back copied stops asking for zero copy and sends by
 * copy from then on, as msg_zerocopy.rst suggests (zc_stopped; the kernel's
 * choice is the route's, and does not change on a connection).
 * TRANSPORT_OPT_ZC_ALWAYS keeps asking, for tests and measurements.  Sends shorter
 * than zc_min_bytes are copied.  When the kernel refuses zero copy with
 * ENOBUFS (net.core.optmem_max, or RLIMIT_MEMLOCK without CAP_IPC_LOCK), the
 * send collects completions and tries once more, then copies the rest
 * (zc_enobufs, copied_sends).
 *
 * A migration with N channels:
 *   source       channel i: transport_connect(addr[i % naddrs], ...); its
 *                sender thread calls transport_send() per message.  A
 *                buffer it will rewrite (header slot, compressed buffer)
 *                first waits for the ticket of its last send
 *                (transport_wait()).  Guest pages need not: a page written
 *                after its send is dirty again and goes out in a later round,
 *                but its bytes on the wire may mix old and new (so no
 *                checksum of raw zero-copy pages taken before the send can be
 *                trusted).  transport_flush() ends each round and precedes
 *                the switchover.
 *   destination  transport_listen() on each address, transport_accept_any()
 *                N times; receive thread i: transport_recv() of the fixed
 *                header, then transport_recv()/recvv() of the payload it
 *                announces, straight into its destination if it can.
 *   abort        any thread: transport_cancel() every channel (and
 *                transport_listener_cancel()); join the threads; then
 *                transport_close().
 *
 * Timeouts: every blocking call gives up with -ETIMEDOUT after
 * transport_opts.timeout_ms without progress (data moved, a completion
 * arrived).  The kernel drops a peer that acknowledges nothing for three
 * timeouts (TCP_USER_TIMEOUT, keepalive).  transport_cancel() makes every
 * blocked and later call on the channel that has to wait or move data return
 * -ECANCELED (a flush with nothing pending still returns 0).
 *
 * Security (secure.c): with transport_opts.auth set, every channel is TLS
 * 1.3 with the pre-shared key (auth/tls.h) before it carries a byte of
 * ours.  transport_connect() runs the handshake (bounded by handshake_ms);
 * a listener runs up to max_handshakes of them at once, per address,
 * without blocking on any, and transport_accept*() return only channels
 * whose peer proved it holds the key.  Connections that fail (a wrong key,
 * no TLS, a peer that stalls past handshake_ms) or that come when that many
 * are in progress are closed and said in opts.log; accept goes on waiting.
 * After the handshake the records are encrypted by the kernel (kTLS: sends
 * stay one copy, the encryption) where it has TLS, else in userspace
 * (GnuTLS, one more copy); transport_opts.tls may insist on either.  The
 * kernel's TLS takes no MSG_ZEROCOPY (Linux 6.1, 6.12: EOPNOTSUPP, which
 * io_uring's send_zc gets too): a channel that asked for zero copy sends by
 * copy then, and transport_chan_security() says so.
 *
 * Errors are negative errno values; transport_error() describes the last
 * failure of the calling thread in words.
 */
#ifndef VMDIRTY_WIRE_TRANSPORT_H
#define VMDIRTY_WIRE_TRANSPORT_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/uio.h>

struct auth_creds;

enum transport_backend {
	TRANSPORT_PLAIN,
	TRANSPORT_ZEROCOPY,
	TRANSPORT_URING,
	TRANSPORT_NR_BACKENDS,
};

/* Defaults for the fields left at 0. */
#define TRANSPORT_DEFAULT_TIMEOUT_MS	10000
#define TRANSPORT_DEFAULT_ATTEMPTS	5
#define TRANSPORT_DEFAULT_RETRY_MS	200
/* Below about 10 KiB pinning costs more than copying (msg_zerocopy.rst). */
#define TRANSPORT_DEFAULT_ZC_MIN	16384
/* Copied completions in a row, from the first, that turn zero copy off. */
#define TRANSPORT_ZC_GIVE_UP		8

/* Where a TLS channel's records are encrypted (transport_opts.tls). */
enum transport_tls {
	TRANSPORT_TLS_AUTO,		/* the kernel's TLS if it has it, else userspace */
	TRANSPORT_TLS_KERNEL,		/* kTLS or fail */
	TRANSPORT_TLS_USER,		/* GnuTLS's records in userspace */
	TRANSPORT_TLS_NR,
};

/* What protects a channel. */
enum transport_crypto {
	TRANSPORT_CRYPTO_NONE,		/* plaintext, no authentication */
	TRANSPORT_CRYPTO_KERNEL,	/* TLS, records by the kernel (kTLS) */
	TRANSPORT_CRYPTO_USER,		/* TLS, records by GnuTLS */
};

#define TRANSPORT_DEFAULT_HANDSHAKE_MS	5000
#define TRANSPORT_DEFAULT_MAX_HANDSHAKES 8

/* transport_opts.flags */
#define TRANSPORT_OPT_ZC_ALWAYS	(1u << 0)	/* never stop asking for zero copy */
#define TRANSPORT_OPT_ALL	TRANSPORT_OPT_ZC_ALWAYS

struct transport_opts {
	enum transport_backend backend;
	/* Bound on a blocking call without progress; 0: the default. */
	uint32_t timeout_ms;
	/* Connection attempts in all, 1 for no retry; 0: the default. */
	uint32_t connect_attempts;
	/* Pause between attempts; 0: the default. */
	uint32_t retry_delay_ms;
	/* Sends shorter than this are copied; 0: the default, 1: never. */
	uint32_t zc_min_bytes;
	/* Socket buffers in bytes; 0 leaves them to the kernel's autotuning. */
	uint32_t sndbuf;
	uint32_t rcvbuf;
	/* TRANSPORT_OPT_*; others must be 0. */
	uint32_t flags;
	/* Security (see above).  NULL: plaintext, and anyone may connect. */
	const struct auth_creds *auth;
	enum transport_tls tls;
	/* Bound on one TLS handshake; 0: the default. */
	uint32_t handshake_ms;
	/* Listener: TLS handshakes in progress at once, per address; 0: the default. */
	uint32_t max_handshakes;
	/* Listener: one line per connection refused (thread of the accept). */
	void (*log)(void *ctx, const char *line);
	void *log_ctx;
};

/* transport_send() flags */
#define TRANSPORT_SEND_COPY	(1u << 0)	/* copy this one, whatever the backend */

typedef uint64_t transport_ticket_t;
#define TRANSPORT_TICKET_DONE	((transport_ticket_t)0)

/*
 * Counters of one channel, or of several added up.  Send-side fields belong
 * to the sending thread, receive-side ones to the receiving thread: read
 * them once both are done with the channel.
 */
struct transport_stats {
	uint64_t bytes_sent;		/* accepted by the kernel */
	uint64_t bytes_received;
	uint64_t sends;			/* transport_send() calls that succeeded */
	uint64_t send_calls;		/* sendmsg()s and io_uring submissions */
	uint64_t recv_calls;		/* recvmsg()s */
	uint64_t zc_sends;		/* send calls made with zero copy */
	uint64_t zc_bytes;		/* bytes sent with zero copy */
	uint64_t zc_completions;	/* of zc_sends, completed */
	uint64_t zc_copied;		/* of zc_completions, copied by the kernel */
	uint64_t zc_enobufs;		/* zero copy refused: ENOBUFS */
	uint64_t zc_stopped;		/* channels that stopped asking: all copied */
	uint64_t copied_sends;		/* send calls made by copy */
	uint64_t notifications;		/* error-queue messages or notification CQEs */
	uint64_t waits;			/* wait/flush calls that had to block */
	uint64_t send_ns;		/* inside transport_send() */
	uint64_t full_ns;		/* of send_ns, blocked on a full socket buffer (the link) */
	uint64_t recv_ns;		/* inside transport_recv*() */
	uint64_t wait_ns;		/* inside transport_wait()/flush() */
	uint64_t first_ns;		/* CLOCK_MONOTONIC of the first byte moved */
	uint64_t last_ns;		/* ... and of the last */
};

struct transport_listener;
struct transport_chan;

/* Fill in every default. */
void transport_opts_init(struct transport_opts *o);

const char *transport_backend_name(enum transport_backend b);
/* "plain", "zerocopy", "uring"; -EINVAL for anything else. */
int transport_backend_parse(const char *name, enum transport_backend *b);

/* The last failure of the calling thread, in words. */
const char *transport_error(void);

/*
 * Addresses are "host:port": "10.0.0.2:4444", "[fe80::1%eth1]:4444",
 * "dst.example:4444".  Listening, the host may be empty (":4444", all
 * addresses, IPv6 and IPv4) and the port 0 (the kernel picks one).
 */
int transport_listen(const char *addr, const struct transport_opts *o,
		     struct transport_listener **out);
/* The bound port, in host order. */
int transport_listener_port(const struct transport_listener *l);
/* Wait up to timeout_ms (0: forever) for one connection. */
int transport_accept(struct transport_listener *l, uint32_t timeout_ms,
		     struct transport_chan **out);
/* The same on the first of n listeners with a connection; *which says it. */
int transport_accept_any(struct transport_listener *const *ls, unsigned int n,
			 uint32_t timeout_ms, struct transport_chan **out,
			 unsigned int *which);
/* Wake a blocked transport_accept*() with -ECANCELED; thread-safe. */
void transport_listener_cancel(struct transport_listener *l);
void transport_listener_close(struct transport_listener *l);

/* Each attempt bounded by timeout_ms, tried over every resolved address. */
int transport_connect(const char *addr, const struct transport_opts *o,
		      struct transport_chan **out);

/*
 * Send all of iov.  *ticket is set even on failure: zero-copy sends issued
 * before the failure still hold the buffers until it completes (or the
 * channel is closed).  A failed send leaves the stream mid-message: every
 * later send fails with -EPIPE.
 */
int transport_send(struct transport_chan *ch, const struct iovec *iov,
		   int iovcnt, unsigned int flags, transport_ticket_t *ticket);
/* 1 if the ticket's buffers may be reused, 0 if not yet; never blocks. */
int transport_ticket_done(struct transport_chan *ch, transport_ticket_t t);
/* Block until the ticket completed. */
int transport_wait(struct transport_chan *ch, transport_ticket_t t);
/* Block until every ticket completed. */
int transport_flush(struct transport_chan *ch);

/*
 * Receive exactly len bytes.  -ENODATA: the peer closed the channel before
 * the first byte; -ECONNRESET: after some of them.
 */
int transport_recv(struct transport_chan *ch, void *buf, size_t len);
int transport_recvv(struct transport_chan *ch, const struct iovec *iov,
		    int iovcnt);
/*
 * Wait up to timeout_ms (-1: no limit) for something to receive: 1 when
 * data (or the peer's close) is there, 0 on timeout, -ECANCELED.  A
 * receiver that must tell "nothing yet" from "stuck in the middle of a
 * message" polls first, then receives the message whole.
 */
int transport_poll_recv(struct transport_chan *ch, int timeout_ms);
/*
 * Read and discard until the peer closes or timeout_ms passes: after
 * sending a last message (an error) on a channel whose peer may still be
 * sending, so that closing does not reset the connection and lose it.
 */
void transport_drain(struct transport_chan *ch, uint32_t timeout_ms);

/*
 * Abort the channel from any thread: blocked and later calls return
 * -ECANCELED.  The kernel may still hold zero-copy buffers; it keeps its own
 * references to the pages, so freeing them after transport_close() is safe.
 */
void transport_cancel(struct transport_chan *ch);
/* Release the channel; no thread may be using it.  NULL is a no-op. */
void transport_close(struct transport_chan *ch);

/*
 * Change the channel's timeout (0: the default), in the kernel too
 * (SO_SNDTIMEO, SO_RCVTIMEO, TCP_USER_TIMEOUT, keepalive).  Call it from
 * the thread using the channel, or before its threads start.
 */
int transport_set_timeout(struct transport_chan *ch, uint32_t timeout_ms);

/* "addr:port" of the other end. */
const char *transport_peer(const struct transport_chan *ch);
enum transport_backend transport_chan_backend(const struct transport_chan *ch);
enum transport_crypto transport_chan_crypto(const struct transport_chan *ch);
/*
 * In words: "none", or the TLS session ("TLS1.3 ... in the kernel (kTLS)"),
 * and why zero copy is off if it was asked for and is.
 */
const char *transport_chan_security(const struct transport_chan *ch);
const char *transport_tls_name(enum transport_tls t);
/* "auto", "kernel", "user"; -EINVAL for anything else. */
int transport_tls_parse(const char *name, enum transport_tls *t);

/*
 * TCP's latest delivery rate sample for the channel (TCP_INFO): bytes/s
 * the peer acknowledged over about a round trip.  app_limited: we did not
 * keep the connection busy, so the link can do at least that.  TCP keeps
 * only its latest sample: a reader that asks again before new data was
 * acknowledged reads the same one, which delivered tells apart.
 */
struct transport_link {
	uint64_t delivery_bps;		/* 0: no sample yet */
	bool app_limited;
	uint32_t rtt_us;
	uint32_t delivered;		/* segments acknowledged so far; 0: unknown (< 4.18) */
};
int transport_link(struct transport_chan *ch, struct transport_link *out);

void transport_get_stats(const struct transport_chan *ch,
			 struct transport_stats *st);
/* Sum counters; the active span becomes the union of both. */
void transport_stats_add(struct transport_stats *sum,
			 const struct transport_stats *st);
/* MiB/s over the active span, sent plus received. */
double transport_stats_mibps(const struct transport_stats *st);
/* One JSON object, no trailing newline. */
void transport_stats_json(FILE *f, const struct transport_stats *st);

#endif
