// SPDX-License-Identifier: GPL-2.0
/*
 * Send backend on io_uring IORING_OP_SENDMSG_ZC (Linux 6.1).  Each request
 * posts a result CQE; when it carries IORING_CQE_F_MORE a notification CQE
 * (IORING_CQE_F_NOTIF) with the same user_data follows once the kernel let
 * go of the pages.  Requests are numbered by the channel's completion
 * window, so tickets mean the same as with MSG_ZEROCOPY.  No optmem or
 * error queue: the notification is a CQE read from shared memory.
 *
 * Each send waits for its own result (as sendmsg() would), under a linked
 * timeout; notifications of earlier sends are collected on the way.  The
 * ring is made by the first send, in the sending thread.
 */
#include <errno.h>
#include <liburing.h>
#include <stdlib.h>
#include <string.h>

#include "wire/transport_priv.h"

/* Linux 6.2's, backported to 6.1.y; liburing 2.3 lacks the names. */
#ifndef IORING_SEND_ZC_REPORT_USAGE
#define IORING_SEND_ZC_REPORT_USAGE	(1U << 3)
#endif
#ifndef IORING_NOTIF_USAGE_ZC_COPIED
#define IORING_NOTIF_USAGE_ZC_COPIED	(1U << 31)
#endif

#define URING_ENTRIES	64
#define URING_SLICE_MS	100	/* a reap wait rechecks for cancel this often */
#define UD_TIMEOUT	UINT64_MAX
#define UD_NONE		(UINT64_MAX - 1)

struct uring_state {
	struct io_uring ring;
	bool ready;
	bool report_usage;	/* IORING_SEND_ZC_REPORT_USAGE is accepted */
	bool probed;		/* ... or we know it is not */
	struct __kernel_timespec ts;
};

/* Is there an io_uring with SENDMSG_ZC (Linux 6.1), here and now? */
static int uring_probe(void)
{
	struct io_uring_probe *probe = io_uring_get_probe();
	int ret = 0;

	if (!probe)
		return tp_err(-ENOSYS, "io_uring is not available (kernel, sysctl kernel.io_uring_disabled or seccomp)");
	if (!io_uring_opcode_supported(probe, IORING_OP_SENDMSG_ZC))
		ret = tp_err(-EOPNOTSUPP, "io_uring has no IORING_OP_SENDMSG_ZC (Linux 6.1 or later)");
	io_uring_free_probe(probe);
	return ret;
}

static int uring_setup(struct transport_chan *ch)
{
	struct uring_state *st;
	int ret = uring_probe();

	if (ret)
		return ret;
	st = calloc(1, sizeof(*st));
	if (!st)
		return tp_err(-ENOMEM, "io_uring state: out of memory");
	st->report_usage = true;
	ch->priv = st;
	return 0;
}

static void uring_release(struct transport_chan *ch)
{
	struct uring_state *st = ch->priv;

	if (!st)
		return;
	if (st->ready)
		io_uring_queue_exit(&st->ring);
	free(st);
	ch->priv = NULL;
}

static int uring_ready(struct transport_chan *ch)
{
	struct uring_state *st = ch->priv;
	int ret;

	if (st->ready)
		return 0;
	ret = io_uring_queue_init(URING_ENTRIES, &st->ring, 0);
	if (ret < 0)
		return tp_err(ret, "io_uring_queue_init: %s", strerror(-ret));
	st->ready = true;
	return 0;
}

/*
 * One CQE.  The result of request want goes to *res.  Returns the ids
 * completed, or -errno.
 */
static int uring_cqe(struct transport_chan *ch, const struct io_uring_cqe *cqe,
		     uint64_t want, int *res, bool *got)
{
	struct uring_state *st = ch->priv;
	uint64_t id = cqe->user_data;
	int64_t n;

	if (id == UD_TIMEOUT)
		return 0;
	if (cqe->flags & IORING_CQE_F_NOTIF) {
		n = tp_zcwin_complete(&ch->zc, id, id);
		if (n < 0)
			return n;
		ch->tx.notifications++;
		/* Without usage reports a copy looks like zero copy: never stop. */
		tp_zc_completed(ch, n, st->report_usage &&
				((uint32_t)cqe->res & IORING_NOTIF_USAGE_ZC_COPIED));
		return n;
	}
	if (id != want || *got)
		return tp_err(-EPROTO, "%s: io_uring result for request %llu unexpected",
			      ch->peer, (unsigned long long)id);
	*got = true;
	*res = cqe->res;
	if (cqe->flags & IORING_CQE_F_MORE) {
		/* Took pages (or may have): a notification follows. */
		ch->tx.zc_sends++;
		return 0;
	}
	return tp_zcwin_complete(&ch->zc, id, id);
}

static int uring_drain(struct transport_chan *ch, uint64_t want, int *res, bool *got)
{
	struct uring_state *st = ch->priv;
	struct io_uring_cqe *cqe;
	unsigned int head, seen = 0;
	int total = 0, n = 0;

	io_uring_for_each_cqe(&st->ring, head, cqe) {
		seen++;
		n = uring_cqe(ch, cqe, want, res, got);
		if (n < 0)
			break;
		total += n;
	}
	io_uring_cq_advance(&st->ring, seen);
	return n < 0 ? n : total;
}

static int uring_reap(struct transport_chan *ch, int timeout_ms)
{
	struct uring_state *st = ch->priv;
	struct __kernel_timespec ts;
	struct io_uring_cqe *cqe;
	bool got = false;
	int n, res, ret;

	if (!st->ready)
		return 0;
	n = uring_drain(ch, UD_NONE, &res, &got);
	if (n || !timeout_ms || ch->zc.done == ch->zc.next)
		return n;
	if (timeout_ms > URING_SLICE_MS)
		timeout_ms = URING_SLICE_MS;
	ts = (struct __kernel_timespec){ .tv_sec = timeout_ms / 1000,
					 .tv_nsec = (timeout_ms % 1000) * 1000000L };
	ret = io_uring_wait_cqe_timeout(&st->ring, &cqe, &ts);
	if (ret < 0 && ret != -ETIME && ret != -EINTR)
		return tp_err(ret, "%s: io_uring wait: %s", ch->peer, strerror(-ret));
	return uring_drain(ch, UD_NONE, &res, &got);
}

/* Submit one SENDMSG_ZC of what is left of msg and wait for its result. */
static int uring_send_one(struct transport_chan *ch, struct msghdr *msg, int *res)
{
	struct uring_state *st = ch->priv;
	struct io_uring_sqe *sqe, *tsqe;
	struct io_uring_cqe *cqe;
	bool got = false;
	uint64_t id;
	int ret;

	ret = tp_zcwin_reserve(&ch->zc, 1);
	if (ret)
		return ret;
	sqe = io_uring_get_sqe(&st->ring);
	tsqe = io_uring_get_sqe(&st->ring);
	if (!sqe || !tsqe)	/* we submit as we go: cannot be full */
		return tp_err(-EBUSY, "%s: io_uring submission queue full", ch->peer);
	id = tp_zcwin_issue(&ch->zc);
	io_uring_prep_sendmsg_zc(sqe, ch->fd, msg, MSG_WAITALL | MSG_NOSIGNAL);
	if (st->report_usage)
		sqe->ioprio |= IORING_SEND_ZC_REPORT_USAGE;
	sqe->user_data = id;
	sqe->flags |= IOSQE_IO_LINK;
	st->ts = (struct __kernel_timespec){
		.tv_sec = ch->opts.timeout_ms / 1000,
		.tv_nsec = (ch->opts.timeout_ms % 1000) * 1000000L,
	};
	io_uring_prep_link_timeout(tsqe, &st->ts, 0);
	tsqe->user_data = UD_TIMEOUT;

	/*
	 * One syscall: usually the send completes inline, its CQE is there.
	 * A signal may end the wait; it must not lose the submission.
	 */
	do
		ret = io_uring_submit_and_wait(&st->ring, 1);
	while (ret == -EINTR && io_uring_sq_ready(&st->ring));
	ch->tx.send_calls++;
	if (ret < 0 && ret != -EINTR) {
		/* Nothing went in: retire the id so flushes do not wait for it. */
		tp_zcwin_complete(&ch->zc, id, id);
		return tp_err(ret, "%s: io_uring_submit: %s", ch->peer, strerror(-ret));
	}
	for (;;) {
		ret = uring_drain(ch, id, res, &got);
		if (ret < 0 || got)
			return ret < 0 ? ret : 0;
		/* The linked timeout guarantees this result. */
		ret = io_uring_wait_cqe(&st->ring, &cqe);
		if (ret < 0 && ret != -EINTR)
			return tp_err(ret, "%s: io_uring wait: %s", ch->peer, strerror(-ret));
	}
}

static int uring_send(struct transport_chan *ch, struct msghdr *msg, size_t len, bool zc)
{
	struct uring_state *st = ch->priv;
	int ret, res;

	if (!zc)
		return tp_tcp_send(ch, msg, len, false);
	ret = uring_ready(ch);
	if (ret)
		return ret;
	while (len) {
		ret = uring_send_one(ch, msg, &res);
		if (ret)
			return ret;
		if (res > 0) {
			st->probed = true;
			ch->tx.zc_bytes += res;
			ch->tx.bytes_sent += res;
			tp_stats_moved(&ch->tx);
			tp_msg_advance(msg, res);
			len -= res;
			continue;
		}
		if (atomic_load(&ch->cancelled))
			return tp_err(-ECANCELED, "send to %s: cancelled", ch->peer);
		switch (-res) {
		case 0:
			return tp_err(-EPIPE, "send to %s: nothing sent", ch->peer);
		case EINTR:
			continue;
		case EINVAL:
			if (st->probed)
				break;
			/* A kernel without IORING_SEND_ZC_REPORT_USAGE. */
			st->probed = true;
			st->report_usage = false;
			continue;
		case ENOBUFS:
		case ENOMEM:
			ch->tx.zc_enobufs++;
			return tp_tcp_send(ch, msg, len, false);
		case ECANCELED:
			return tp_err(-ETIMEDOUT, "send to %s: no progress for %u ms", ch->peer,
				      ch->opts.timeout_ms);
		}
		return tp_err(res, "send to %s: %s", ch->peer, strerror(-res));
	}
	return 0;
}

const struct tp_backend_ops tp_uring_ops = {
	.setup = uring_setup,
	.send = uring_send,
	.reap = uring_reap,
	.release = uring_release,
};
