/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Transport internals shared by transport.c (channels), transport_io.c
 * (sending, completions, receiving), transport_stats.c, zcwin.c (the
 * completion window), the send backends: tcp.c (plain and MSG_ZEROCOPY)
 * and uring.c (io_uring), and secure.c (TLS: handshakes, the listeners'
 * gate, records in userspace).
 */
#ifndef VMDIRTY_WIRE_TRANSPORT_PRIV_H
#define VMDIRTY_WIRE_TRANSPORT_PRIV_H

#include <stdatomic.h>
#include <stdbool.h>
#include <sys/socket.h>

#include "wire/transport.h"

struct auth_session;

/*
 * Completion window of zero-copy send ids (the kernel's per-socket sendmsg
 * counter, or our io_uring request numbers), widened to 64 bits.  Ids below
 * done have all completed; those in [done, next) have a bit each, set once
 * completed, so that out-of-order completions are kept until done reaches
 * them.  A ticket is an id + 1: done when done >= ticket.
 */
struct tp_zcwin {
	uint64_t next;
	uint64_t done;
	uint64_t *bits;		/* ring of cap bits, id & (cap - 1) */
	uint64_t cap;		/* a power of two, 0 before the first send */
};

int tp_zcwin_reserve(struct tp_zcwin *w, uint64_t n);
/* Take the next id; tp_zcwin_reserve() made room for it. */
uint64_t tp_zcwin_issue(struct tp_zcwin *w);
/* Mark [lo, hi] completed: ids completed now, or -EPROTO for a bogus range. */
int64_t tp_zcwin_complete(struct tp_zcwin *w, uint64_t lo, uint64_t hi);
/* The 64-bit id a 32-bit kernel id stands for. */
uint64_t tp_zcwin_widen(const struct tp_zcwin *w, uint32_t id);
void tp_zcwin_free(struct tp_zcwin *w);

struct tp_backend_ops {
	/* Socket options on a connected socket. */
	int (*setup)(struct transport_chan *ch);
	/*
	 * Send all len bytes of msg (msg_iov is ours to advance), with zero
	 * copy if zc.  Account every call and byte in ch->tx.
	 */
	int (*send)(struct transport_chan *ch, struct msghdr *msg, size_t len,
		    bool zc);
	/*
	 * Collect completions, waiting up to timeout_ms (0: don't wait) for
	 * the first.  Returns the number of ids completed.
	 */
	int (*reap)(struct transport_chan *ch, int timeout_ms);
	void (*release)(struct transport_chan *ch);
};

struct transport_chan {
	int fd;
	enum transport_crypto crypto;
	struct auth_session *sec;	/* TLS; used for records in userspace only */
	int sec_tx_errno;		/* userspace records: the stream's last failure, */
	int sec_rx_errno;		/* ... sending and receiving */
	char security[224];		/* transport_chan_security() */
	enum transport_backend backend;
	const struct tp_backend_ops *ops;
	struct transport_opts opts;
	atomic_bool cancelled;
	bool broken;		/* a send stopped mid-message */
	char peer[64];
	void *priv;		/* the backend's */
	unsigned int zc_since_reap;

	/* The sending thread's. */
	struct tp_zcwin zc;
	struct transport_stats tx __attribute__((aligned(64)));
	/* The receiving thread's. */
	struct transport_stats rx __attribute__((aligned(64)));
};

/* A gate of handshakes in progress (secure.c); NULL without TLS. */
struct tp_gate;

struct transport_listener {
	int fd;
	int port;
	atomic_bool cancelled;
	struct transport_opts opts;
	struct tp_gate *gate;
};

extern const struct tp_backend_ops tp_plain_ops;
extern const struct tp_backend_ops tp_zerocopy_ops;
extern const struct tp_backend_ops tp_uring_ops;

/* Set the thread's error text; returns err. */
int tp_err(int err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
uint64_t tp_now_ns(void);
/* Milliseconds to a tp_now_ns() deadline for poll(): -1 for none (0). */
int tp_poll_remaining(uint64_t deadline);
/* Drop the first n bytes of msg's iovec. */
void tp_msg_advance(struct msghdr *msg, size_t n);
/* Data moved now: extend st's active span. */
void tp_stats_moved(struct transport_stats *st);
/*
 * Account n completed zero-copy ids whose pages the kernel copied (copied)
 * or not; the backends' one way to report them.
 */
void tp_zc_completed(struct transport_chan *ch, uint64_t n, bool copied);
/* The socket buffer is full: wait for room, at most one timeout (tcp.c). */
int tp_wait_writable(struct transport_chan *ch);
/* The sendmsg() loop of tcp.c, for uring.c's copies. */
int tp_tcp_send(struct transport_chan *ch, struct msghdr *msg, size_t len,
		bool zc);

/*
 * Wrap a connected socket (transport.c): takes fd, and sec (the finished
 * TLS session on it, or NULL) in every case.
 */
int tp_chan_create(int fd, const struct transport_opts *o, struct auth_session *sec,
		   struct transport_chan **out);
void tp_addr_format(const struct sockaddr *sa, char *buf, size_t len);
int tp_set_blocking(int fd, bool blocking);

/* secure.c */
/* The client's handshake on a connected socket, within o->handshake_ms. */
int tp_tls_connect(int fd, const struct transport_opts *o, const char *peer,
		   struct auth_session **out);
/* Records: in the kernel, or through sec; the backend that fits; the words. */
int tp_tls_attach(struct transport_chan *ch, struct auth_session *sec);
extern const struct tp_backend_ops tp_tls_user_ops;
/* Receive in userspace TLS: transport_recvv()'s loop. */
int tp_tls_recvv(struct transport_chan *ch, struct msghdr *msg, size_t len);
int tp_gate_new(struct transport_listener *l);
void tp_gate_free(struct tp_gate *g);
int tp_gate_accept(struct transport_listener *const *ls, unsigned int n, uint32_t timeout_ms,
		   struct transport_chan **out, unsigned int *which);

#endif
