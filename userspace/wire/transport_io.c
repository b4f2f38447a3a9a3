// SPDX-License-Identifier: GPL-2.0
/*
 * Moving data on a channel: sends through the backend, tickets and the
 * waits for their completion, and receiving exactly N bytes.
 */
#include <errno.h>
#include <limits.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "auth/tls.h"
#include "wire/transport_priv.h"

#define TP_IOV_STACK	128	/* a header and 127 pages without malloc() */

void tp_stats_moved(struct transport_stats *st)
{
	uint64_t now = tp_now_ns();

	if (!st->first_ns)
		st->first_ns = now;
	st->last_ns = now;
}

void tp_msg_advance(struct msghdr *msg, size_t n)
{
	while (n && msg->msg_iovlen) {
		struct iovec *v = msg->msg_iov;

		if (n < v->iov_len) {
			v->iov_base = (char *)v->iov_base + n;
			v->iov_len -= n;
			return;
		}
		n -= v->iov_len;
		msg->msg_iov++;
		msg->msg_iovlen--;
	}
	/* Skip empty entries so that the next call starts on data. */
	while (msg->msg_iovlen && !msg->msg_iov->iov_len) {
		msg->msg_iov++;
		msg->msg_iovlen--;
	}
}

static int check_iov(const struct iovec *iov, int iovcnt, size_t *len,
		     const char *what)
{
	size_t total = 0;

	if (iovcnt < 0 || iovcnt > IOV_MAX || (iovcnt && !iov))
		return tp_err(-EINVAL, "%s: %d iovec entries (0 to %d)", what, iovcnt, IOV_MAX);
	for (int i = 0; i < iovcnt; i++) {
		if (iov[i].iov_len && !iov[i].iov_base)
			return tp_err(-EINVAL, "%s: iovec %d has no buffer", what, i);
		if (iov[i].iov_len > SSIZE_MAX - total)
			return tp_err(-EINVAL, "%s: iovec too long", what);
		total += iov[i].iov_len;
	}
	*len = total;
	return 0;
}

int transport_send(struct transport_chan *ch, const struct iovec *iov,
		   int iovcnt, unsigned int flags, transport_ticket_t *ticket)
{
	struct iovec stack[TP_IOV_STACK], *copy = stack;
	uint64_t t0 = tp_now_ns(), first_id, sent;
	struct msghdr msg = { 0 };
	size_t len;
	bool zc;
	int ret;

	if (ticket)
		*ticket = TRANSPORT_TICKET_DONE;
	if (!ch)
		return tp_err(-EINVAL, "send: no channel");
	if (flags & ~TRANSPORT_SEND_COPY)
		return tp_err(-EINVAL, "send: unknown flags 0x%x", flags & ~TRANSPORT_SEND_COPY);
	ret = check_iov(iov, iovcnt, &len, "send");
	if (ret)
		return ret;
	if (atomic_load(&ch->cancelled))
		return tp_err(-ECANCELED, "send to %s: cancelled", ch->peer);
	if (ch->broken)
		return tp_err(-EPIPE, "send to %s: an earlier send failed mid-message", ch->peer);
	if (!len)
		return 0;
	if (iovcnt > TP_IOV_STACK) {
		copy = malloc(iovcnt * sizeof(*copy));
		if (!copy)
			return tp_err(-ENOMEM, "send: out of memory");
	}
	memcpy(copy, iov, iovcnt * sizeof(*copy));
	msg.msg_iov = copy;
	msg.msg_iovlen = iovcnt;
	tp_msg_advance(&msg, 0);

	zc = ch->backend != TRANSPORT_PLAIN && !ch->tx.zc_stopped &&
	     !(flags & TRANSPORT_SEND_COPY) && len >= ch->opts.zc_min_bytes;
	first_id = ch->zc.next;
	sent = ch->tx.bytes_sent;
	ret = ch->ops->send(ch, &msg, len, zc);
	if (ticket && ch->zc.next != first_id)
		*ticket = ch->zc.next;
	if (ret && ch->tx.bytes_sent != sent)
		ch->broken = true;
	if (!ret)
		ch->tx.sends++;
	ch->tx.send_ns += tp_now_ns() - t0;
	if (copy != stack)
		free(copy);
	return ret;
}

void tp_zc_completed(struct transport_chan *ch, uint64_t n, bool copied)
{
	ch->tx.zc_completions += n;
	if (copied)
		ch->tx.zc_copied += n;
	/*
	 * Only a run from the very first completion counts (every one so far
	 * copied): a route that pinned pages once can do it again, and an
	 * occasional copy (a retransmit, a full skb) is no reason to stop.
	 */
	if (ch->tx.zc_copied == ch->tx.zc_completions &&
	    ch->tx.zc_copied >= TRANSPORT_ZC_GIVE_UP &&
	    !(ch->opts.flags & TRANSPORT_OPT_ZC_ALWAYS))
		ch->tx.zc_stopped = 1;
}

static int check_ticket(struct transport_chan *ch, transport_ticket_t t)
{
	if (!ch)
		return tp_err(-EINVAL, "no channel");
	if (t > ch->zc.next)
		return tp_err(-EINVAL, "ticket %llu was never issued on %s (last %llu)",
			      (unsigned long long)t, ch->peer,
			      (unsigned long long)ch->zc.next);
	return 0;
}

int transport_ticket_done(struct transport_chan *ch, transport_ticket_t t)
{
	int ret = check_ticket(ch, t);

	if (ret)
		return ret;
	if (ch->zc.done >= t)
		return 1;
	ret = ch->ops->reap(ch, 0);
	if (ret < 0)
		return ret;
	return ch->zc.done >= t;
}

/*
 * Wait until the window passed target.  The deadline moves with every
 * completion: a long flush that makes progress is not a dead peer.
 */
static int wait_done(struct transport_chan *ch, uint64_t target)
{
	uint64_t t0, deadline;
	int ret = 0;

	if (ch->zc.done >= target)
		return 0;
	t0 = tp_now_ns();
	deadline = t0 + ch->opts.timeout_ms * 1000000ull;
	ch->tx.waits++;
	while (ch->zc.done < target) {
		int wait;

		if (atomic_load(&ch->cancelled)) {
			ret = tp_err(-ECANCELED, "wait on %s: cancelled", ch->peer);
			break;
		}
		wait = tp_poll_remaining(deadline);
		if (!wait) {
			ret = tp_err(-ETIMEDOUT,
				     "%s: %llu zero-copy sends still pending after %u ms",
				     ch->peer,
				     (unsigned long long)(ch->zc.next - ch->zc.done),
				     ch->opts.timeout_ms);
			break;
		}
		ret = ch->ops->reap(ch, wait);
		if (ret < 0)
			break;
		if (ret > 0)
			deadline = tp_now_ns() + ch->opts.timeout_ms * 1000000ull;
		ret = 0;
	}
	ch->tx.wait_ns += tp_now_ns() - t0;
	return ret;
}

int transport_wait(struct transport_chan *ch, transport_ticket_t t)
{
	int ret = check_ticket(ch, t);

	return ret ? ret : wait_done(ch, t);
}

int transport_flush(struct transport_chan *ch)
{
	if (!ch)
		return tp_err(-EINVAL, "flush: no channel");
	return wait_done(ch, ch->zc.next);
}

/* Receiving. */

int transport_recvv(struct transport_chan *ch, const struct iovec *iov, int iovcnt)
{
	struct iovec stack[TP_IOV_STACK], *copy = stack;
	struct msghdr msg = { 0 };
	size_t len, got = 0;
	uint64_t t0;
	int ret;

	if (!ch)
		return tp_err(-EINVAL, "recv: no channel");
	ret = check_iov(iov, iovcnt, &len, "recv");
	if (ret)
		return ret;
	if (atomic_load(&ch->cancelled))
		return tp_err(-ECANCELED, "recv from %s: cancelled", ch->peer);
	if (!len)
		return 0;
	if (iovcnt > TP_IOV_STACK) {
		copy = malloc(iovcnt * sizeof(*copy));
		if (!copy)
			return tp_err(-ENOMEM, "recv: out of memory");
	}
	memcpy(copy, iov, iovcnt * sizeof(*copy));
	msg.msg_iov = copy;
	msg.msg_iovlen = iovcnt;
	tp_msg_advance(&msg, 0);

	t0 = tp_now_ns();
	if (ch->crypto == TRANSPORT_CRYPTO_USER) {
		ret = tp_tls_recvv(ch, &msg, len);
		goto out;
	}
	while (got < len) {
		/* SO_RCVTIMEO bounds each call: a timeout is no progress. */
		ssize_t n = recvmsg(ch->fd, &msg, MSG_WAITALL);

		ch->rx.recv_calls++;
		if (n > 0) {
			got += n;
			ch->rx.bytes_received += n;
			tp_stats_moved(&ch->rx);
			tp_msg_advance(&msg, n);
			continue;
		}
		if (atomic_load(&ch->cancelled)) {
			ret = tp_err(-ECANCELED, "recv from %s: cancelled", ch->peer);
			break;
		}
		if (n == 0) {
			if (got)
				ret = tp_err(-ECONNRESET, "%s closed the channel after %zu of %zu bytes",
					     ch->peer, got, len);
			else
				ret = tp_err(-ENODATA, "%s closed the channel", ch->peer);
			break;
		}
		if (errno == EINTR)
			continue;
		if (errno == EAGAIN)
			ret = tp_err(-ETIMEDOUT, "recv from %s: nothing for %u ms (%zu of %zu bytes)",
				     ch->peer, ch->opts.timeout_ms, got, len);
		else
			ret = tp_err(-errno, "recv from %s: %s", ch->peer, strerror(errno));
		break;
	}
out:
	ch->rx.recv_ns += tp_now_ns() - t0;
	if (copy != stack)
		free(copy);
	return ret;
}

int transport_recv(struct transport_chan *ch, void *buf, size_t len)
{
	struct iovec v = { .iov_base = buf, .iov_len = len };

	return transport_recvv(ch, &v, 1);
}

int transport_poll_recv(struct transport_chan *ch, int timeout_ms)
{
	uint64_t deadline = timeout_ms < 0 ? 0 : tp_now_ns() + timeout_ms * 1000000ull + 1;

	if (!ch)
		return tp_err(-EINVAL, "poll: no channel");
	for (;;) {
		struct pollfd p = { .fd = ch->fd, .events = POLLIN };
		/* Short slices: a cancel is a flag, not a wakeup. */
		int wait = deadline ? tp_poll_remaining(deadline) : 100;
		int n;

		if (atomic_load(&ch->cancelled))
			return tp_err(-ECANCELED, "poll %s: cancelled", ch->peer);
		/* Records in userspace: plaintext may wait in the session, not the socket. */
		if (ch->crypto == TRANSPORT_CRYPTO_USER && auth_pending(ch->sec))
			return 1;
		if (deadline && !wait)
			return 0;
		n = poll(&p, 1, wait < 0 || wait > 100 ? 100 : wait);
		if (n > 0)
			return 1;
		if (n < 0 && errno != EINTR)
			return tp_err(-errno, "poll %s: %s", ch->peer, strerror(errno));
	}
}

void transport_drain(struct transport_chan *ch, uint32_t timeout_ms)
{
	uint64_t deadline = tp_now_ns() + timeout_ms * 1000000ull + 1;
	char buf[16384];

	if (!ch)
		return;
	shutdown(ch->fd, SHUT_WR);
	while (tp_poll_remaining(deadline)) {
		struct pollfd p = { .fd = ch->fd, .events = POLLIN };
		ssize_t n;

		if (poll(&p, 1, tp_poll_remaining(deadline)) <= 0)
			break;
		n = recv(ch->fd, buf, sizeof(buf), MSG_DONTWAIT);
		if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR))
			break;
	}
}
