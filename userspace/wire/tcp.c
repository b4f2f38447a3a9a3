// SPDX-License-Identifier: GPL-2.0
/*
 * Send backends on sendmsg(): plain (the kernel copies), and MSG_ZEROCOPY
 * (Documentation/networking/msg_zerocopy.rst): the kernel pins the pages,
 * and queues a notification on the socket's error queue once it let go of
 * them.  Each sendmsg() that sent data takes one id of a 32-bit per-socket
 * counter; a notification completes a range of ids [ee_info, ee_data].  TCP
 * acknowledges in order, so the kernel usually merges them into one.
 */
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <string.h>
#include <time.h>

/* After <time.h>: it needs struct timespec. */
#include <linux/errqueue.h>

#include "wire/transport_priv.h"

/* Collect completions every this many zero-copy sends at least. */
#define TCP_REAP_EVERY	32

static int plain_setup(struct transport_chan *ch)
{
	return 0;
}

static int zc_setup(struct transport_chan *ch)
{
	int one = 1;

	if (setsockopt(ch->fd, SOL_SOCKET, SO_ZEROCOPY, &one, sizeof(one)) < 0)
		return tp_err(-errno, "setsockopt SO_ZEROCOPY: %s", strerror(errno));
	return 0;
}

static void tcp_release(struct transport_chan *ch)
{
}

/* Handle one error-queue message: the ids it completes, or -errno. */
static int zc_notification(struct transport_chan *ch, struct msghdr *msg)
{
	struct sock_extended_err serr;
	struct cmsghdr *cm;
	int64_t n;

	if (msg->msg_flags & MSG_CTRUNC)
		return tp_err(-EPROTO, "%s: truncated error-queue message", ch->peer);
	cm = CMSG_FIRSTHDR(msg);
	if (!cm || !((cm->cmsg_level == SOL_IP && cm->cmsg_type == IP_RECVERR) ||
		     (cm->cmsg_level == SOL_IPV6 && cm->cmsg_type == IPV6_RECVERR)) ||
	    cm->cmsg_len < CMSG_LEN(sizeof(serr)))
		return tp_err(-EPROTO, "%s: unexpected error-queue message", ch->peer);
	memcpy(&serr, CMSG_DATA(cm), sizeof(serr));
	if (serr.ee_origin != SO_EE_ORIGIN_ZEROCOPY) {
		/* Not ours: a real error (ICMP with IP_RECVERR, say). */
		if (serr.ee_errno)
			return tp_err(-(int)serr.ee_errno, "%s: %s", ch->peer,
				      strerror(serr.ee_errno));
		return tp_err(-EPROTO, "%s: error-queue message of origin %u", ch->peer,
			      serr.ee_origin);
	}
	if (serr.ee_errno)
		return tp_err(-(int)serr.ee_errno, "%s: zero-copy completion with error %s",
			      ch->peer, strerror(serr.ee_errno));
	n = tp_zcwin_complete(&ch->zc, tp_zcwin_widen(&ch->zc, serr.ee_info),
			      tp_zcwin_widen(&ch->zc, serr.ee_info) +
			      (uint32_t)(serr.ee_data - serr.ee_info));
	if (n < 0)
		return n;
	ch->tx.notifications++;
	/*
	 * The kernel merges a notification into the one queued before it
	 * without looking at its copied flag: the flag describes the first
	 * send of the range, and counts the whole range here.
	 */
	tp_zc_completed(ch, n, serr.ee_code & SO_EE_CODE_ZEROCOPY_COPIED);
	return n;
}

/* Read the error queue dry.  Returns the ids completed. */
static int zc_drain(struct transport_chan *ch)
{
	char control[128];
	int total = 0;

	for (;;) {
		struct msghdr msg = {
			.msg_control = control,
			.msg_controllen = sizeof(control),
		};
		int n;

		if (recvmsg(ch->fd, &msg, MSG_ERRQUEUE | MSG_DONTWAIT) < 0) {
			if (errno == EAGAIN)
				return total;
			if (errno == EINTR)
				continue;
			return tp_err(-errno, "%s: read error queue: %s", ch->peer,
				      strerror(errno));
		}
		n = zc_notification(ch, &msg);
		if (n < 0)
			return n;
		total += n;
	}
}

static int zc_reap(struct transport_chan *ch, int timeout_ms)
{
	struct pollfd pfd = { .fd = ch->fd };	/* POLLERR, POLLHUP: always */
	socklen_t sl = sizeof(int);
	int n, soerr = 0;

	ch->zc_since_reap = 0;
	n = zc_drain(ch);
	if (n || !timeout_ms || ch->zc.done == ch->zc.next)
		return n;
	if (poll(&pfd, 1, timeout_ms) < 0)
		return errno == EINTR ? 0 : tp_err(-errno, "poll: %s", strerror(errno));
	n = zc_drain(ch);
	if (n || !(pfd.revents & (POLLERR | POLLHUP)))
		return n;
	/* Nothing queued, yet an error or a hang-up: the connection is gone. */
	if (getsockopt(ch->fd, SOL_SOCKET, SO_ERROR, &soerr, &sl) == 0 && soerr)
		return tp_err(-soerr, "%s: %s with %llu zero-copy sends pending", ch->peer,
			      strerror(soerr), (unsigned long long)(ch->zc.next - ch->zc.done));
	if (atomic_load(&ch->cancelled))
		return tp_err(-ECANCELED, "%s: cancelled", ch->peer);
	return tp_err(-EPIPE, "%s: connection closed with %llu zero-copy sends pending",
		      ch->peer, (unsigned long long)(ch->zc.next - ch->zc.done));
}

static int plain_reap(struct transport_chan *ch, int timeout_ms)
{
	return 0;
}

/* The socket buffer is full: wait for room, at most one timeout. */
static int wait_writable(struct transport_chan *ch)
{
	struct pollfd p = { .fd = ch->fd, .events = POLLOUT };
	uint64_t t0 = tp_now_ns();
	int n;

	do
		n = poll(&p, 1, ch->opts.timeout_ms);
	while (n < 0 && errno == EINTR);
	ch->tx.full_ns += tp_now_ns() - t0;
	if (atomic_load(&ch->cancelled))
		return tp_err(-ECANCELED, "send to %s: cancelled", ch->peer);
	if (n < 0)
		return tp_err(-errno, "poll %s: %s", ch->peer, strerror(errno));
	if (!n)
		return tp_err(-ETIMEDOUT, "send to %s: no progress for %u ms", ch->peer,
			      ch->opts.timeout_ms);
	/* Room, or an error or hang-up that the next sendmsg() reports. */
	return 0;
}

int tp_tcp_send(struct transport_chan *ch, struct msghdr *msg, size_t len, bool zc)
{
	bool reaped = false;
	int ret;

	while (len) {
		ssize_t n;

		if (zc) {
			if (ch->zc_since_reap >= TCP_REAP_EVERY) {
				ret = zc_reap(ch, 0);
				if (ret < 0)
					return ret;
			}
			ret = tp_zcwin_reserve(&ch->zc, 1);
			if (ret)
				return ret;
		}
		/*
		 * Never block inside sendmsg(): waiting for buffer space happens
		 * in poll() below, so that the time the link holds us up
		 * (full_ns) is told apart from the time spent copying.
		 */
		n = sendmsg(ch->fd, msg, MSG_NOSIGNAL | MSG_DONTWAIT | (zc ? MSG_ZEROCOPY : 0));
		if (n < 0 && errno == EAGAIN) {
			/* Not a send: nothing moved (and zero copy took no id). */
			ret = wait_writable(ch);
			if (ret)
				return ret;
			continue;
		}
		ch->tx.send_calls++;
		if (n > 0) {
			if (zc) {
				tp_zcwin_issue(&ch->zc);
				ch->zc_since_reap++;
				ch->tx.zc_sends++;
				ch->tx.zc_bytes += n;
			} else {
				ch->tx.copied_sends++;
			}
			ch->tx.bytes_sent += n;
			tp_stats_moved(&ch->tx);
			tp_msg_advance(msg, n);
			len -= n;
			continue;
		}
		if (atomic_load(&ch->cancelled))
			return tp_err(-ECANCELED, "send to %s: cancelled", ch->peer);
		if (n == 0)
			return tp_err(-EPIPE, "send to %s: nothing sent", ch->peer);
		switch (errno) {
		case EINTR:
			continue;
		case ENOBUFS:
			if (!zc)
				break;
			/*
			 * Over the socket's optmem or the locked-memory limit.
			 * Completions give both back: collect them and try
			 * once more, else copy the rest of this send.
			 */
			ch->tx.zc_enobufs++;
			ret = zc_reap(ch, 0);
			if (ret < 0)
				return ret;
			if (!ret || reaped)
				zc = false;
			reaped = true;
			continue;
		}
		return tp_err(-errno, "send to %s: %s", ch->peer, strerror(errno));
	}
	return 0;
}

const struct tp_backend_ops tp_plain_ops = {
	.setup = plain_setup,
	.send = tp_tcp_send,
	.reap = plain_reap,
	.release = tcp_release,
};

const struct tp_backend_ops tp_zerocopy_ops = {
	.setup = zc_setup,
	.send = tp_tcp_send,
	.reap = zc_reap,
	.release = tcp_release,
};
