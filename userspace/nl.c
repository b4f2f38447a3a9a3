// SPDX-License-Identifier: GPL-2.0
/*
 * Client of vmdirty.ko's generic netlink family (see the end of
 * include/uapi/linux/vmdirty.h), on libnl-genl-3.  Requests and events use
 * separate sockets so that multicast events never interleave with a dump.
 * Replies are parsed with policies; attributes this client does not know
 * (a newer module) are ignored, malformed known ones fail the request.
 */
#include <errno.h>
#include <poll.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <netlink/genl/ctrl.h>
#include <netlink/genl/genl.h>
#include <netlink/netlink.h>

#include <linux/vmdirty.h>

#include "nl.h"
#include "wire/record.h"

#define NL_DUMP_RETRIES 5
#define NL_MAX_VCPUS 4096

struct vmdirty_genl {
	struct nl_sock *sk;	/* requests and their replies */
	struct nl_sock *ev;	/* the "events" group, NULL until subscribed */
	int family;
};

static struct nla_policy session_policy[VMDIRTY_A_MAX + 1] = {
	[VMDIRTY_A_SESSION_ID]		= { .type = NLA_U32 },
	[VMDIRTY_A_SESSION_FLAGS]	= { .type = NLA_U32 },
	[VMDIRTY_A_OWNER_PID]		= { .type = NLA_U32 },
	[VMDIRTY_A_VM_PID]		= { .type = NLA_U32 },
	[VMDIRTY_A_LAYOUT_GEN]		= { .type = NLA_U32 },
	[VMDIRTY_A_NR_SLOTS]		= { .type = NLA_U32 },
	[VMDIRTY_A_NR_VCPUS]		= { .type = NLA_U32 },
	[VMDIRTY_A_TRACKED_PAGES]	= { .type = NLA_U64 },
	[VMDIRTY_A_HARVESTS]		= { .type = NLA_U64 },
	[VMDIRTY_A_DRAINS]		= { .type = NLA_U64 },
	[VMDIRTY_A_ENTRIES]		= { .type = NLA_U64 },
	[VMDIRTY_A_RESETS]		= { .type = NLA_U64 },
	[VMDIRTY_A_DROPPED]		= { .type = NLA_U64 },
	[VMDIRTY_A_LIVE_PAGES]		= { .type = NLA_U64 },
	[VMDIRTY_A_DRAIN_INTERVAL_US]	= { .type = NLA_U32 },
	[VMDIRTY_A_VCPUS]		= { .type = NLA_NESTED },
};

static struct nla_policy vcpu_policy[VMDIRTY_A_VCPU_MAX + 1] = {
	[VMDIRTY_A_VCPU_IDX]		= { .type = NLA_U32 },
	[VMDIRTY_A_VCPU_ID]		= { .type = NLA_U32 },
	[VMDIRTY_A_VCPU_RING_SIZE]	= { .type = NLA_U32 },
	[VMDIRTY_A_VCPU_RING_USED]	= { .type = NLA_U32 },
	[VMDIRTY_A_VCPU_ENTRIES]	= { .type = NLA_U64 },
	[VMDIRTY_A_VCPU_LAST_ENTRIES]	= { .type = NLA_U64 },
};

/* libnl folds kernel errnos into its own codes; map back what we report. */
static int nlerr_to_errno(int nlerr)
{
	switch (abs(nlerr)) {
	case 0:			return 0;
	case NLE_NOMEM:		return -ENOMEM;
	case NLE_OBJ_NOTFOUND:	return -ENOENT;
	case NLE_PERM:		return -EPERM;
	case NLE_NOACCESS:	return -EACCES;
	case NLE_INVAL:		return -EINVAL;
	case NLE_OPNOTSUPP:	return -EOPNOTSUPP;
	case NLE_AGAIN:		return -EAGAIN;
	case NLE_DUMP_INTR:	return -EAGAIN;
	case NLE_BAD_SOCK:	return -EBADF;
	case NLE_PROTO_MISMATCH: return -EPROTONOSUPPORT;
	case NLE_MSG_TOOSHORT:
	case NLE_MSG_TRUNC:
	case NLE_MSG_OVERFLOW:
	case NLE_ATTRSIZE:
	case NLE_MISSING_ATTR:	return -EBADMSG;
	default:		return -EIO;
	}
}

static uint32_t get_u32(struct nlattr **tb, int a)
{
	return tb[a] ? nla_get_u32(tb[a]) : 0;
}

static uint64_t get_u64(struct nlattr **tb, int a)
{
	return tb[a] ? nla_get_u64(tb[a]) : 0;
}

/*
 * One VMDIRTY_A_VCPUS nest, appended to s->vcpus: a message may carry
 * several (at most VMDIRTY_A_VCPUS_MAX entries each), and a dump may spread
 * a session over several messages.
 */
static int parse_vcpus(struct nlattr *nest, struct vmdirty_genl_session *s)
{
	struct nlattr *tb[VMDIRTY_A_VCPU_MAX + 1];
	struct nlattr *pos;
	unsigned int n = 0;
	void *p;
	int rem, ret;

	nla_for_each_nested(pos, nest, rem)
		n++;
	if (n > VMDIRTY_A_VCPUS_MAX || s->nr_vcpu_entries + n > NL_MAX_VCPUS)
		return -EBADMSG;
	s->has_vcpus = true;
	if (!n)
		return 0;
	p = realloc(s->vcpus, (s->nr_vcpu_entries + n) * sizeof(*s->vcpus));
	if (!p)
		return -ENOMEM;
	s->vcpus = p;
	nla_for_each_nested(pos, nest, rem) {
		struct vmdirty_genl_vcpu *v = &s->vcpus[s->nr_vcpu_entries];

		if (nla_type(pos) != VMDIRTY_A_VCPUS_ENTRY)
			return -EBADMSG;
		ret = nla_parse_nested(tb, VMDIRTY_A_VCPU_MAX, pos, vcpu_policy);
		if (ret < 0)
			return nlerr_to_errno(ret);
		if (!tb[VMDIRTY_A_VCPU_IDX])
			return -EBADMSG;
		v->idx = get_u32(tb, VMDIRTY_A_VCPU_IDX);
		v->id = get_u32(tb, VMDIRTY_A_VCPU_ID);
		v->ring_size = get_u32(tb, VMDIRTY_A_VCPU_RING_SIZE);
		v->ring_used = get_u32(tb, VMDIRTY_A_VCPU_RING_USED);
		v->entries = get_u64(tb, VMDIRTY_A_VCPU_ENTRIES);
		v->last_entries = get_u64(tb, VMDIRTY_A_VCPU_LAST_ENTRIES);
		s->nr_vcpu_entries++;
	}
	return 0;
}

/* Every VMDIRTY_A_VCPUS of a message, in order. */
static int parse_all_vcpus(struct nl_msg *msg, struct vmdirty_genl_session *s)
{
	struct genlmsghdr *gh = nlmsg_data(nlmsg_hdr(msg));
	struct nlattr *pos;
	int rem, ret;

	nla_for_each_attr(pos, genlmsg_attrdata(gh, 0), genlmsg_attrlen(gh, 0), rem) {
		if (nla_type(pos) != VMDIRTY_A_VCPUS)
			continue;
		ret = parse_vcpus(pos, s);
		if (ret < 0)
			return ret;
	}
	return 0;
}

/* Parse one message of the family into *s; *s is released on failure. */
static int parse_session(struct nl_msg *msg, struct vmdirty_genl_session *s)
{
	struct nlattr *tb[VMDIRTY_A_MAX + 1];
	int ret;

	memset(s, 0, sizeof(*s));
	ret = genlmsg_parse(nlmsg_hdr(msg), 0, tb, VMDIRTY_A_MAX, session_policy);
	if (ret < 0)
		return nlerr_to_errno(ret);
	if (!tb[VMDIRTY_A_SESSION_ID])
		return -EBADMSG;
	s->id = get_u32(tb, VMDIRTY_A_SESSION_ID);
	s->flags = get_u32(tb, VMDIRTY_A_SESSION_FLAGS);
	s->owner_pid = get_u32(tb, VMDIRTY_A_OWNER_PID);
	s->vm_pid = get_u32(tb, VMDIRTY_A_VM_PID);
	s->layout_gen = get_u32(tb, VMDIRTY_A_LAYOUT_GEN);
	s->nr_slots = get_u32(tb, VMDIRTY_A_NR_SLOTS);
	s->nr_vcpus = get_u32(tb, VMDIRTY_A_NR_VCPUS);
	s->drain_interval_us = get_u32(tb, VMDIRTY_A_DRAIN_INTERVAL_US);
	s->tracked_pages = get_u64(tb, VMDIRTY_A_TRACKED_PAGES);
	s->harvests = get_u64(tb, VMDIRTY_A_HARVESTS);
	s->drains = get_u64(tb, VMDIRTY_A_DRAINS);
	s->entries = get_u64(tb, VMDIRTY_A_ENTRIES);
	s->resets = get_u64(tb, VMDIRTY_A_RESETS);
	s->dropped = get_u64(tb, VMDIRTY_A_DROPPED);
	s->live_pages = get_u64(tb, VMDIRTY_A_LIVE_PAGES);
	if (tb[VMDIRTY_A_VCPUS]) {
		ret = parse_all_vcpus(msg, s);
		if (ret < 0) {
			vmdirty_genl_session_release(s);
			return ret;
		}
	}
	return 0;
}

/* A dump's next message for the same session: its vCPUs go on. */
static int merge_session(struct vmdirty_genl_session *into, struct vmdirty_genl_session *more)
{
	void *p;

	if (into->nr_vcpu_entries + more->nr_vcpu_entries > NL_MAX_VCPUS)
		return -EBADMSG;
	if (more->nr_vcpu_entries) {
		p = realloc(into->vcpus, (into->nr_vcpu_entries + more->nr_vcpu_entries) *
				sizeof(*into->vcpus));
		if (!p)
			return -ENOMEM;
		into->vcpus = p;
		memcpy(into->vcpus + into->nr_vcpu_entries, more->vcpus,
		       more->nr_vcpu_entries * sizeof(*more->vcpus));
		into->nr_vcpu_entries += more->nr_vcpu_entries;
	}
	vmdirty_genl_session_release(more);
	return 0;
}

void vmdirty_genl_session_release(struct vmdirty_genl_session *s)
{
	free(s->vcpus);
	s->vcpus = NULL;
	s->nr_vcpu_entries = 0;
}

void vmdirty_genl_free(struct vmdirty_genl_session *s, size_t n)
{
	for (size_t i = 0; i < n; i++)
		vmdirty_genl_session_release(&s[i]);
	free(s);
}

/* What the receive callbacks fill in. */
struct reply_ctx {
	struct vmdirty_genl_session *v;
	size_t n, cap;
	uint8_t want_cmd;
	int err;		/* first error: the kernel's errno or ours */
};

static int reply_valid(struct nl_msg *msg, void *arg)
{
	struct genlmsghdr *gh = nlmsg_data(nlmsg_hdr(msg));
	struct reply_ctx *c = arg;
	int ret;

	if (c->err)
		return NL_SKIP;
	if (!genlmsg_valid_hdr(nlmsg_hdr(msg), 0) || gh->cmd != c->want_cmd) {
		c->err = -EBADMSG;
		return NL_SKIP;
	}
	if (c->n == c->cap) {
		size_t cap = c->cap ? 2 * c->cap : 8;
		void *p = realloc(c->v, cap * sizeof(*c->v));

		if (!p) {
			c->err = -ENOMEM;
			return NL_SKIP;
		}
		c->v = p;
		c->cap = cap;
	}
	ret = parse_session(msg, &c->v[c->n]);
	if (ret < 0)
		c->err = ret;
	else if (c->n && c->v[c->n].has_vcpus && c->v[c->n - 1].id == c->v[c->n].id)
		c->err = merge_session(&c->v[c->n - 1], &c->v[c->n]);
	else
		c->n++;
	return NL_OK;
}

static int reply_error(struct sockaddr_nl *nla, struct nlmsgerr *e, void *arg)
{
	struct reply_ctx *c = arg;

	if (!c->err)
		c->err = e->error < 0 ? e->error : -EPROTO;
	return NL_STOP;
}

/* VMDIRTY_RECORD: each reply as it came, a seed for the fuzzer. */
static int record_reply(struct nl_msg *msg, void *arg)
{
	struct nlmsghdr *h = nlmsg_hdr(msg);

	record_input(arg ? RECORD_NL_EVENT : RECORD_NL_REPLY, h, h->nlmsg_len);
	return NL_OK;
}

static int request(struct vmdirty_genl *nl, bool dump, uint32_t id, bool vcpus,
		   struct reply_ctx *c)
{
	struct nl_msg *msg = NULL;
	struct nl_cb *cb = NULL;
	int ret;

	msg = nlmsg_alloc();
	cb = nl_cb_alloc(NL_CB_DEFAULT);
	if (!msg || !cb) {
		ret = -ENOMEM;
		goto out;
	}
	if (!genlmsg_put(msg, NL_AUTO_PORT, NL_AUTO_SEQ, nl->family, 0,
			 dump ? NLM_F_DUMP : 0, VMDIRTY_CMD_GET_SESSION,
			 VMDIRTY_GENL_VERSION)) {
		ret = -ENOMEM;
		goto out;
	}
	if ((!dump && nla_put_u32(msg, VMDIRTY_A_SESSION_ID, id) < 0) ||
	    (vcpus && nla_put_u32(msg, VMDIRTY_A_DUMP_FLAGS, VMDIRTY_DUMP_F_VCPUS) < 0)) {
		ret = -ENOMEM;
		goto out;
	}
	c->want_cmd = VMDIRTY_CMD_GET_SESSION;
	nl_cb_set(cb, NL_CB_VALID, NL_CB_CUSTOM, reply_valid, c);
	nl_cb_err(cb, NL_CB_CUSTOM, reply_error, c);
	if (record_on())
		nl_cb_set(cb, NL_CB_MSG_IN, NL_CB_CUSTOM, record_reply, NULL);
	ret = nl_send_auto(nl->sk, msg);
	if (ret < 0) {
		ret = nlerr_to_errno(ret);
		goto out;
	}
	ret = nl_recvmsgs(nl->sk, cb);
	if (c->err)
		ret = c->err;
	else if (ret == -NLE_DUMP_INTR)
		ret = -EAGAIN;
	else if (ret < 0)
		ret = nlerr_to_errno(ret);
	else
		ret = 0;
out:
	nl_cb_put(cb);
	nlmsg_free(msg);
	return ret;
}

int vmdirty_genl_list(struct vmdirty_genl *nl, bool vcpus,
		      struct vmdirty_genl_session **out, size_t *n)
{
	struct reply_ctx c;
	int ret = -EAGAIN;

	for (int i = 0; i < NL_DUMP_RETRIES && ret == -EAGAIN; i++) {
		memset(&c, 0, sizeof(c));
		ret = request(nl, true, 0, vcpus, &c);
		if (ret < 0) {
			vmdirty_genl_free(c.v, c.n);
			continue;
		}
		*out = c.v;
		*n = c.n;
	}
	return ret;
}

int vmdirty_genl_get(struct vmdirty_genl *nl, uint32_t id, bool vcpus,
		     struct vmdirty_genl_session *out)
{
	struct reply_ctx c = { 0 };
	int ret;

	ret = request(nl, false, id, vcpus, &c);
	if (!ret && c.n != 1)
		ret = c.n ? -EBADMSG : -ENOENT;
	if (ret < 0) {
		vmdirty_genl_free(c.v, c.n);
		return ret;
	}
	*out = c.v[0];
	free(c.v);
	return 0;
}

int vmdirty_genl_open(struct vmdirty_genl **out)
{
	struct vmdirty_genl *nl;
	int ret;

	nl = calloc(1, sizeof(*nl));
	if (!nl)
		return -ENOMEM;
	nl->sk = nl_socket_alloc();
	if (!nl->sk) {
		ret = -ENOMEM;
		goto err;
	}
	ret = genl_connect(nl->sk);
	if (ret < 0) {
		ret = nlerr_to_errno(ret);
		goto err;
	}
	nl->family = genl_ctrl_resolve(nl->sk, VMDIRTY_GENL_NAME);
	if (nl->family < 0) {
		ret = nl->family == -NLE_OBJ_NOTFOUND ? -ENOENT : nlerr_to_errno(nl->family);
		goto err;
	}
	*out = nl;
	return 0;
err:
	vmdirty_genl_close(nl);
	return ret;
}

void vmdirty_genl_close(struct vmdirty_genl *nl)
{
	if (!nl)
		return;
	nl_socket_free(nl->ev);
	nl_socket_free(nl->sk);
	free(nl);
}

int vmdirty_genl_subscribe(struct vmdirty_genl *nl)
{
	int grp, ret;

	if (nl->ev)
		return 0;
	nl->ev = nl_socket_alloc();
	if (!nl->ev)
		return -ENOMEM;
	/* Events carry no sequence number of ours (read_events checks none). */
	nl_socket_disable_seq_check(nl->ev);
	ret = genl_connect(nl->ev);
	if (ret < 0)
		goto err;
	grp = genl_ctrl_resolve_grp(nl->ev, VMDIRTY_GENL_NAME, VMDIRTY_GENL_MCGRP);
	if (grp < 0) {
		ret = grp;
		goto err;
	}
	ret = nl_socket_add_membership(nl->ev, grp);
	if (ret < 0)
		goto err;
	ret = nl_socket_set_nonblocking(nl->ev);
	if (ret < 0)
		goto err;
	return 0;
err:
	nl_socket_free(nl->ev);
	nl->ev = NULL;
	return ret == -NLE_OBJ_NOTFOUND ? -ENOENT : nlerr_to_errno(ret);
}

int vmdirty_genl_event_fd(const struct vmdirty_genl *nl)
{
	return nl->ev ? nl_socket_get_fd(nl->ev) : -EBADF;
}

const char *vmdirty_genl_event_name(enum vmdirty_genl_event ev)
{
	switch (ev) {
	case VMDIRTY_GENL_EV_NEW:		return "new";
	case VMDIRTY_GENL_EV_DEL:		return "del";
	case VMDIRTY_GENL_EV_STALE:	return "layout-stale";
	case VMDIRTY_GENL_EV_CONFLICT:	return "ring-conflict";
	}
	return "?";
}

struct event_ctx {
	vmdirty_genl_event_fn fn;
	void *ctx;
	int err;
};

static int event_valid(struct nl_msg *msg, void *arg)
{
	struct event_ctx *c = arg;
	struct vmdirty_genl_session s;
	enum vmdirty_genl_event ev;
	struct genlmsghdr *gh;
	int ret;

	if (!genlmsg_valid_hdr(nlmsg_hdr(msg), 0)) {
		c->err = -EBADMSG;
		return NL_SKIP;
	}
	gh = nlmsg_data(nlmsg_hdr(msg));
	switch (gh->cmd) {
	case VMDIRTY_CMD_SESSION_NEW:	ev = VMDIRTY_GENL_EV_NEW; break;
	case VMDIRTY_CMD_SESSION_DEL:	ev = VMDIRTY_GENL_EV_DEL; break;
	case VMDIRTY_CMD_LAYOUT_STALE:	ev = VMDIRTY_GENL_EV_STALE; break;
	case VMDIRTY_CMD_RING_CONFLICT:	ev = VMDIRTY_GENL_EV_CONFLICT; break;
	default:			return NL_SKIP; /* a newer module's event */
	}
	ret = parse_session(msg, &s);
	if (ret < 0) {
		c->err = ret;
		return NL_SKIP;
	}
	c->fn(c->ctx, ev, &s);
	vmdirty_genl_session_release(&s);
	return NL_OK;
}

/* Multicast messages carry no sequence number of ours. */
static int event_seq_ok(struct nl_msg *msg, void *arg)
{
	return NL_OK;
}

int vmdirty_genl_read_events(struct vmdirty_genl *nl, vmdirty_genl_event_fn fn, void *ctx)
{
	struct event_ctx c = { .fn = fn, .ctx = ctx };
	struct nl_cb *cb;
	int ret = 0;

	if (!nl->ev)
		return -EBADF;
	cb = nl_cb_alloc(NL_CB_DEFAULT);
	if (!cb)
		return -ENOMEM;
	nl_cb_set(cb, NL_CB_VALID, NL_CB_CUSTOM, event_valid, &c);
	nl_cb_set(cb, NL_CB_SEQ_CHECK, NL_CB_CUSTOM, event_seq_ok, NULL);
	if (record_on())
		nl_cb_set(cb, NL_CB_MSG_IN, NL_CB_CUSTOM, record_reply, cb);
	for (;;) {
		struct pollfd p = { .fd = nl_socket_get_fd(nl->ev), .events = POLLIN };

		ret = poll(&p, 1, 0);
		if (ret <= 0) {
			ret = ret < 0 ? -errno : 0;
			break;
		}
		ret = nl_recvmsgs(nl->ev, cb);
		if (ret == -NLE_AGAIN) {
			ret = 0;
			break;
		}
		if (ret < 0) {
			/* A full socket buffer lost events: say so, keep going. */
			ret = ret == -NLE_NOMEM ? -ENOBUFS : nlerr_to_errno(ret);
			break;
		}
	}
	nl_cb_put(cb);
	return c.err ? c.err : ret;
}

/*
 * The parsers on a buffer of netlink messages as a socket would deliver
 * them (nl.h): the fuzzer's way in, through the same callbacks.
 */
int vmdirty_genl_parse_replies(const void *buf, size_t len,
			       struct vmdirty_genl_session **out, size_t *n)
{
	struct reply_ctx c = { .want_cmd = VMDIRTY_CMD_GET_SESSION };
	struct nlmsghdr *h = (struct nlmsghdr *)buf;
	int rem = len > INT32_MAX ? INT32_MAX : (int)len;

	for (; nlmsg_ok(h, rem) && !c.err; h = nlmsg_next(h, &rem)) {
		struct nl_msg *msg;

		if (h->nlmsg_type == NLMSG_DONE)
			break;
		if (h->nlmsg_type == NLMSG_NOOP)
			continue;
		if (h->nlmsg_type == NLMSG_ERROR) {
			c.err = -EPROTO;
			break;
		}
		msg = nlmsg_convert(h);
		if (!msg) {
			c.err = -ENOMEM;
			break;
		}
		reply_valid(msg, &c);
		nlmsg_free(msg);
	}
	*out = c.v;
	*n = c.n;
	return c.err;
}

int vmdirty_genl_parse_events(const void *buf, size_t len, vmdirty_genl_event_fn fn, void *ctx)
{
	struct event_ctx c = { .fn = fn, .ctx = ctx };
	struct nlmsghdr *h = (struct nlmsghdr *)buf;
	int rem = len > INT32_MAX ? INT32_MAX : (int)len;

	for (; nlmsg_ok(h, rem); h = nlmsg_next(h, &rem)) {
		struct nl_msg *msg = nlmsg_convert(h);

		if (!msg)
			return -ENOMEM;
		event_valid(msg, &c);
		nlmsg_free(msg);
	}
	return c.err;
}
