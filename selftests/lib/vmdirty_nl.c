// SPDX-License-Identifier: GPL-2.0
/*
 * A libnl-genl client of the "vmdirty" family (see vmdirty_nl.h).
 */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>

#include <netlink/genl/ctrl.h>
#include <netlink/msg.h>

#include "vmdirty_nl.h"

int vmdirty_nl_open(struct vmdirty_nl *nl)
{
	int ret;

	memset(nl, 0, sizeof(*nl));
	nl->sk = nl_socket_alloc();
	if (!nl->sk)
		return -ENOMEM;
	ret = genl_connect(nl->sk);
	if (ret < 0)
		goto err;
	nl->family = genl_ctrl_resolve(nl->sk, VMDIRTY_GENL_NAME);
	if (nl->family < 0) {
		ret = -ENOENT;
		goto err_close;
	}
	nl->events = genl_ctrl_resolve_grp(nl->sk, VMDIRTY_GENL_NAME, VMDIRTY_GENL_MCGRP);
	if (nl->events < 0) {
		ret = -ENOENT;
		goto err_close;
	}
	return 0;
err_close:
	nl_socket_free(nl->sk);
	nl->sk = NULL;
	return ret;
err:
	nl_socket_free(nl->sk);
	nl->sk = NULL;
	return -ECONNREFUSED;
}

void vmdirty_nl_close(struct vmdirty_nl *nl)
{
	if (nl->sk)
		nl_socket_free(nl->sk);
	nl->sk = NULL;
}

static int vmdirty_nl_parse_vcpus(struct nlattr *nest, struct vmdirty_nl_session *out)
{
	static struct nla_policy policy[VMDIRTY_A_VCPU_MAX + 1] = {
		[VMDIRTY_A_VCPU_IDX] = { .type = NLA_U32 },
		[VMDIRTY_A_VCPU_ID] = { .type = NLA_U32 },
		[VMDIRTY_A_VCPU_RING_SIZE] = { .type = NLA_U32 },
		[VMDIRTY_A_VCPU_RING_USED] = { .type = NLA_U32 },
		[VMDIRTY_A_VCPU_ENTRIES] = { .type = NLA_U64 },
		[VMDIRTY_A_VCPU_LAST_ENTRIES] = { .type = NLA_U64 },
	};
	struct nlattr *entry, *tb[VMDIRTY_A_VCPU_MAX + 1];
	int rem, i;

	nla_for_each_nested(entry, nest, rem) {
		struct vmdirty_nl_vcpu *v;

		if (nla_type(entry) != VMDIRTY_A_VCPUS_ENTRY ||
		    out->nr_vcpu_entries == VMDIRTY_NL_MAX_VCPUS)
			return -EPROTO;
		if (nla_parse_nested(tb, VMDIRTY_A_VCPU_MAX, entry, policy) < 0)
			return -EPROTO;
		for (i = VMDIRTY_A_VCPU_IDX; i <= VMDIRTY_A_VCPU_LAST_ENTRIES; i++)
			if (!tb[i])
				return -EPROTO;
		v = &out->vcpus[out->nr_vcpu_entries++];
		v->idx = nla_get_u32(tb[VMDIRTY_A_VCPU_IDX]);
		v->id = nla_get_u32(tb[VMDIRTY_A_VCPU_ID]);
		v->ring_size = nla_get_u32(tb[VMDIRTY_A_VCPU_RING_SIZE]);
		v->ring_used = nla_get_u32(tb[VMDIRTY_A_VCPU_RING_USED]);
		v->entries = nla_get_u64(tb[VMDIRTY_A_VCPU_ENTRIES]);
		v->last_entries = nla_get_u64(tb[VMDIRTY_A_VCPU_LAST_ENTRIES]);
	}
	return 0;
}

int vmdirty_nl_parse(struct nlmsghdr *nlh, struct vmdirty_nl_session *out)
{
	static struct nla_policy policy[VMDIRTY_A_MAX + 1] = {
		[VMDIRTY_A_SESSION_ID] = { .type = NLA_U32 },
		[VMDIRTY_A_SESSION_FLAGS] = { .type = NLA_U32 },
		[VMDIRTY_A_OWNER_PID] = { .type = NLA_U32 },
		[VMDIRTY_A_VM_PID] = { .type = NLA_U32 },
		[VMDIRTY_A_LAYOUT_GEN] = { .type = NLA_U32 },
		[VMDIRTY_A_NR_SLOTS] = { .type = NLA_U32 },
		[VMDIRTY_A_NR_VCPUS] = { .type = NLA_U32 },
		[VMDIRTY_A_TRACKED_PAGES] = { .type = NLA_U64 },
		[VMDIRTY_A_HARVESTS] = { .type = NLA_U64 },
		[VMDIRTY_A_DRAINS] = { .type = NLA_U64 },
		[VMDIRTY_A_ENTRIES] = { .type = NLA_U64 },
		[VMDIRTY_A_RESETS] = { .type = NLA_U64 },
		[VMDIRTY_A_DROPPED] = { .type = NLA_U64 },
		[VMDIRTY_A_LIVE_PAGES] = { .type = NLA_U64 },
		[VMDIRTY_A_DRAIN_INTERVAL_US] = { .type = NLA_U32 },
		[VMDIRTY_A_VCPUS] = { .type = NLA_NESTED },
	};
	struct nlattr *tb[VMDIRTY_A_MAX + 1];
	struct genlmsghdr *gnlh = nlmsg_data(nlh);
	int i;

	memset(out, 0, sizeof(*out));
	if (genlmsg_parse(nlh, 0, tb, VMDIRTY_A_MAX, policy) < 0)
		return -EPROTO;
	out->cmd = gnlh->cmd;
	out->nlmsg_flags = nlh->nlmsg_flags;
	for (i = 0; i <= VMDIRTY_A_MAX; i++)
		out->has[i] = tb[i];
#define U32(a, f) if (tb[a]) out->f = nla_get_u32(tb[a])
#define U64(a, f) if (tb[a]) out->f = nla_get_u64(tb[a])
	U32(VMDIRTY_A_SESSION_ID, id);
	U32(VMDIRTY_A_SESSION_FLAGS, flags);
	U32(VMDIRTY_A_OWNER_PID, owner_pid);
	U32(VMDIRTY_A_VM_PID, vm_pid);
	U32(VMDIRTY_A_LAYOUT_GEN, layout_gen);
	U32(VMDIRTY_A_NR_SLOTS, nr_slots);
	U32(VMDIRTY_A_NR_VCPUS, nr_vcpus);
	U32(VMDIRTY_A_DRAIN_INTERVAL_US, drain_interval_us);
	U64(VMDIRTY_A_TRACKED_PAGES, tracked_pages);
	U64(VMDIRTY_A_HARVESTS, harvests);
	U64(VMDIRTY_A_DRAINS, drains);
	U64(VMDIRTY_A_ENTRIES, entries);
	U64(VMDIRTY_A_RESETS, resets);
	U64(VMDIRTY_A_DROPPED, dropped);
	U64(VMDIRTY_A_LIVE_PAGES, live_pages);
#undef U32
#undef U64
	if (tb[VMDIRTY_A_VCPUS]) {
		struct nlattr *pos;
		int rem, ret;

		/* Every nest: a message may carry several. */
		nla_for_each_attr(pos, genlmsg_attrdata(gnlh, 0), genlmsg_attrlen(gnlh, 0), rem) {
			if (nla_type(pos) != VMDIRTY_A_VCPUS)
				continue;
			ret = vmdirty_nl_parse_vcpus(pos, out);
			if (ret)
				return ret;
		}
	}
	return 0;
}

/* What one exchange collected. */
struct vmdirty_nl_ctx {
	struct vmdirty_nl_session *out;
	unsigned int max, n;
	bool intr;
	int err;
	bool done;
};

static int vmdirty_nl_valid(struct nl_msg *msg, void *arg)
{
	struct vmdirty_nl_ctx *ctx = arg;
	struct nlmsghdr *nlh = nlmsg_hdr(msg);

	if (nlh->nlmsg_flags & NLM_F_DUMP_INTR)
		ctx->intr = true;
	if (ctx->n < ctx->max) {
		struct vmdirty_nl_session *s = &ctx->out[ctx->n], *prev = s - 1;
		int ret = vmdirty_nl_parse(nlh, s);

		if (ret && !ctx->err)
			ctx->err = ret;
		/* A dump spreads a session's vCPUs over messages: merge them. */
		if (!ret && ctx->n && prev->id == s->id && s->has[VMDIRTY_A_VCPUS]) {
			unsigned int i;

			for (i = 0; i < s->nr_vcpu_entries &&
			     prev->nr_vcpu_entries < VMDIRTY_NL_MAX_VCPUS; i++)
				prev->vcpus[prev->nr_vcpu_entries++] = s->vcpus[i];
			return NL_OK;
		}
	}
	ctx->n++;
	return NL_OK;
}

static int vmdirty_nl_error(struct sockaddr_nl *nla, struct nlmsgerr *e, void *arg)
{
	struct vmdirty_nl_ctx *ctx = arg;

	ctx->err = e->error;
	ctx->done = true;
	return NL_STOP;
}

static int vmdirty_nl_finish(struct nl_msg *msg, void *arg)
{
	struct vmdirty_nl_ctx *ctx = arg;

	ctx->done = true;
	return NL_STOP;
}

/* Send @msg (freed) and read until its ACK, error or the dump's end. */
static int vmdirty_nl_exchange(struct vmdirty_nl *nl, struct nl_msg *msg,
			       struct vmdirty_nl_ctx *ctx)
{
	struct nl_cb *cb = nl_cb_alloc(NL_CB_DEFAULT);
	int ret;

	if (!cb) {
		nlmsg_free(msg);
		return -ENOMEM;
	}
	nl_cb_set(cb, NL_CB_VALID, NL_CB_CUSTOM, vmdirty_nl_valid, ctx);
	nl_cb_set(cb, NL_CB_FINISH, NL_CB_CUSTOM, vmdirty_nl_finish, ctx);
	nl_cb_set(cb, NL_CB_ACK, NL_CB_CUSTOM, vmdirty_nl_finish, ctx);
	nl_cb_err(cb, NL_CB_CUSTOM, vmdirty_nl_error, ctx);

	ret = nl_send_auto(nl->sk, msg);
	nlmsg_free(msg);
	if (ret < 0) {
		ret = -EIO;
		goto out;
	}
	ret = 0;
	while (!ctx->done) {
		ret = nl_recvmsgs(nl->sk, cb);
		/* An interrupted dump is reported through ctx->intr. */
		if (ret < 0 && ret != -NLE_DUMP_INTR) {
			ret = ctx->err ?: -EIO;
			break;
		}
		ret = 0;
	}
	if (!ret)
		ret = ctx->err;
out:
	nl_cb_put(cb);
	return ret;
}

struct nl_msg *vmdirty_nl_msg(struct vmdirty_nl *nl, uint8_t cmd, int flags)
{
	struct nl_msg *msg = nlmsg_alloc();

	if (!msg)
		return NULL;
	if (!genlmsg_put(msg, NL_AUTO_PORT, NL_AUTO_SEQ, nl->family, 0,
			 flags | NLM_F_ACK, cmd, VMDIRTY_GENL_VERSION)) {
		nlmsg_free(msg);
		return NULL;
	}
	return msg;
}

int vmdirty_nl_request(struct vmdirty_nl *nl, struct nl_msg *msg)
{
	struct vmdirty_nl_session scratch[4];
	struct vmdirty_nl_ctx ctx = { .out = scratch, .max = 4 };

	return vmdirty_nl_exchange(nl, msg, &ctx);
}

int vmdirty_nl_get(struct vmdirty_nl *nl, uint32_t id, int64_t dump_flags,
		   struct vmdirty_nl_session *out)
{
	struct vmdirty_nl_ctx ctx = { .out = out, .max = 1 };
	struct nl_msg *msg = vmdirty_nl_msg(nl, VMDIRTY_CMD_GET_SESSION, 0);
	int ret;

	if (!msg)
		return -ENOMEM;
	nla_put_u32(msg, VMDIRTY_A_SESSION_ID, id);
	if (dump_flags >= 0)
		nla_put_u32(msg, VMDIRTY_A_DUMP_FLAGS, dump_flags);
	ret = vmdirty_nl_exchange(nl, msg, &ctx);
	if (!ret && ctx.n != 1)
		ret = -EPROTO;
	return ret;
}

int vmdirty_nl_dump(struct vmdirty_nl *nl, int64_t dump_flags,
		    struct vmdirty_nl_session *out, unsigned int max,
		    unsigned int *n, bool *intr)
{
	struct vmdirty_nl_ctx ctx = { .out = out, .max = max };
	struct nl_msg *msg = vmdirty_nl_msg(nl, VMDIRTY_CMD_GET_SESSION, NLM_F_DUMP);
	int ret;

	if (!msg)
		return -ENOMEM;
	if (dump_flags >= 0)
		nla_put_u32(msg, VMDIRTY_A_DUMP_FLAGS, dump_flags);
	ret = vmdirty_nl_exchange(nl, msg, &ctx);
	if (n)
		*n = ctx.n;
	if (intr)
		*intr = ctx.intr;
	return ret;
}

int vmdirty_nl_subscribe(struct vmdirty_nl *nl)
{
	return nl_socket_add_membership(nl->sk, nl->events) < 0 ? -EIO : 0;
}

/* Events carry sequence number 0: no check. */
static int vmdirty_nl_any_seq(struct nl_msg *msg, void *arg)
{
	return NL_OK;
}

int vmdirty_nl_event(struct vmdirty_nl *nl, struct vmdirty_nl_session *out,
		     int timeout_ms)
{
	struct pollfd pfd = { .fd = nl_socket_get_fd(nl->sk), .events = POLLIN };
	struct vmdirty_nl_ctx ctx = { .out = out, .max = 1 };
	struct nl_cb *cb;
	int ret;

	ret = poll(&pfd, 1, timeout_ms);
	if (ret <= 0)
		return ret ? -errno : -ETIMEDOUT;
	cb = nl_cb_alloc(NL_CB_DEFAULT);
	if (!cb)
		return -ENOMEM;
	nl_cb_set(cb, NL_CB_VALID, NL_CB_CUSTOM, vmdirty_nl_valid, &ctx);
	nl_cb_set(cb, NL_CB_SEQ_CHECK, NL_CB_CUSTOM, vmdirty_nl_any_seq, NULL);
	ret = nl_recvmsgs(nl->sk, cb);
	nl_cb_put(cb);
	if (ret < 0) {
		fprintf(stderr, "# vmdirty_nl_event: %s\n", nl_geterror(ret));
		return -EIO;
	}
	return ctx.n ? ctx.err : -EAGAIN;
}
