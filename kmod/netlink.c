// SPDX-License-Identifier: GPL-2.0
/*
 * vmdirty: the "vmdirty" generic netlink family, read-only reporting of the
 * attached sessions and their per-vCPU counters, and the "events" group.
 * Counters are read from the shared region without the session's lock,
 * under vmdirty_sessions_lock, which keeps the session alive.  Both GET and
 * the events group need CAP_NET_ADMIN: they tell who runs which VM.
 *
 * A netlink attribute's length is 16 bits: a nest holds at most
 * VMDIRTY_A_VCPUS_MAX vCPUs, a message as many nests as it needs (do), or
 * a dump goes on in the next message (a cursor per session).
 */
#include <net/genetlink.h>
#include <net/netlink.h>

#include "compat.h"
#include "session.h"
#include "vmdirty.h"

static const struct nla_policy vmdirty_genl_policy[VMDIRTY_A_MAX + 1] = {
	[VMDIRTY_A_SESSION_ID]	= { .type = NLA_U32 },
	[VMDIRTY_A_DUMP_FLAGS]	= NLA_POLICY_MASK(NLA_U32, VMDIRTY_DUMP_F_ALL),
};

static struct genl_family vmdirty_genl_family;

enum { VMDIRTY_MCGRP_EVENTS };

static const struct genl_multicast_group vmdirty_genl_mcgrps[] = {
	[VMDIRTY_MCGRP_EVENTS] = {
		.name = VMDIRTY_GENL_MCGRP,
		.flags = VMDIRTY_GENL_MCGRP_FLAGS,
	},
};

#ifndef VMDIRTY_HAVE_GENL_MCAST_CAP
/* Kernels without the group flag: the same check, at bind. */
static int vmdirty_genl_mcast_bind(struct net *net, int group)
{
	return ns_capable(net->user_ns, CAP_NET_ADMIN) ? 0 : -EPERM;
}
#endif

static u32 vmdirty_genl_session_flags(struct vmdirty_session *s)
{
	u32 flags = 0;

	if (READ_ONCE(s->drain.interval_us))
		flags |= VMDIRTY_SESSION_F_DRAINING;
	if (READ_ONCE(s->hdr->flags) & VMDIRTY_STATUS_LAYOUT_STALE)
		flags |= VMDIRTY_SESSION_F_STALE;
	if (READ_ONCE(s->hdr->flags) & VMDIRTY_STATUS_RING_CONFLICT)
		flags |= VMDIRTY_SESSION_F_CONFLICT;
	return flags;
}

static int vmdirty_genl_put_vcpu(struct sk_buff *skb, u32 idx,
				 struct vmdirty_shm_vcpu *v)
{
	struct nlattr *vcpu = nla_nest_start(skb, VMDIRTY_A_VCPUS_ENTRY);

	if (!vcpu ||
	    nla_put_u32(skb, VMDIRTY_A_VCPU_IDX, idx) ||
	    nla_put_u32(skb, VMDIRTY_A_VCPU_ID, READ_ONCE(v->vcpu_id)) ||
	    nla_put_u32(skb, VMDIRTY_A_VCPU_RING_SIZE, READ_ONCE(v->ring_size)) ||
	    nla_put_u32(skb, VMDIRTY_A_VCPU_RING_USED, READ_ONCE(v->ring_used)) ||
	    nla_put_u64_64bit(skb, VMDIRTY_A_VCPU_ENTRIES, READ_ONCE(v->entries),
			      VMDIRTY_A_VCPU_PAD) ||
	    nla_put_u64_64bit(skb, VMDIRTY_A_VCPU_LAST_ENTRIES,
			      READ_ONCE(v->last_entries), VMDIRTY_A_VCPU_PAD)) {
		nla_nest_cancel(skb, vcpu);
		return -EMSGSIZE;
	}
	nla_nest_end(skb, vcpu);
	return 0;
}

/*
 * One VMDIRTY_A_VCPUS nest: the vCPUs present from *idx on, below @n, at
 * most VMDIRTY_A_VCPUS_MAX, as many as fit; *idx ends past the last one put.
 */
static int vmdirty_genl_put_vcpus(struct sk_buff *skb, struct vmdirty_session *s,
				  u32 *idx, u32 n)
{
	struct nlattr *vcpus;
	u32 put = 0;

	vcpus = nla_nest_start(skb, VMDIRTY_A_VCPUS);
	if (!vcpus)
		return -EMSGSIZE;
	for (; *idx < n && put < VMDIRTY_A_VCPUS_MAX; (*idx)++) {
		struct vmdirty_shm_vcpu *v = &s->shm_vcpus[*idx];

		/* Pairs with smp_store_release() in vmdirty_shm_vcpu_seen(). */
		if (!smp_load_acquire(&v->present))
			continue;
		if (vmdirty_genl_put_vcpu(skb, *idx, v))
			break;
		put++;
	}
	if (!put && *idx < n) {
		nla_nest_cancel(skb, vcpus);
		return -EMSGSIZE;
	}
	nla_nest_end(skb, vcpus);
	return 0;
}

static int vmdirty_genl_put_u64(struct sk_buff *skb, int attr, u64 *field)
{
	return nla_put_u64_64bit(skb, attr, READ_ONCE(*field), VMDIRTY_A_PAD);
}

/*
 * @n: the vCPUs seen, read once for the whole message; with
 * VMDIRTY_DUMP_F_VCPUS, those from *idx on: all of them (@all), or one
 * nest's worth.
 */
static int vmdirty_genl_put_session(struct sk_buff *skb, struct vmdirty_session *s,
				    u32 dump_flags, u32 n, u32 *idx, bool all)
{
	int ret;

	struct vmdirty_shm_header *hdr = s->hdr;

	if (nla_put_u32(skb, VMDIRTY_A_SESSION_ID, s->id) ||
	    nla_put_u32(skb, VMDIRTY_A_SESSION_FLAGS, vmdirty_genl_session_flags(s)) ||
	    nla_put_u32(skb, VMDIRTY_A_OWNER_PID, s->owner_pid) ||
	    nla_put_u32(skb, VMDIRTY_A_VM_PID, s->kvm->userspace_pid) ||
	    nla_put_u32(skb, VMDIRTY_A_LAYOUT_GEN, READ_ONCE(hdr->layout_gen)) ||
	    nla_put_u32(skb, VMDIRTY_A_NR_SLOTS, s->nr_slots) ||
	    nla_put_u32(skb, VMDIRTY_A_NR_VCPUS, n) ||
	    nla_put_u64_64bit(skb, VMDIRTY_A_TRACKED_PAGES, s->tracked_pages,
			      VMDIRTY_A_PAD) ||
	    vmdirty_genl_put_u64(skb, VMDIRTY_A_HARVESTS, &hdr->harvests) ||
	    vmdirty_genl_put_u64(skb, VMDIRTY_A_DRAINS, &hdr->drains) ||
	    vmdirty_genl_put_u64(skb, VMDIRTY_A_ENTRIES, &hdr->entries) ||
	    vmdirty_genl_put_u64(skb, VMDIRTY_A_RESETS, &hdr->resets) ||
	    vmdirty_genl_put_u64(skb, VMDIRTY_A_DROPPED, &hdr->dropped) ||
	    vmdirty_genl_put_u64(skb, VMDIRTY_A_LIVE_PAGES, &hdr->live_pages) ||
	    nla_put_u32(skb, VMDIRTY_A_DRAIN_INTERVAL_US, READ_ONCE(s->drain.interval_us)))
		return -EMSGSIZE;
	if (!(dump_flags & VMDIRTY_DUMP_F_VCPUS))
		return 0;
	do {
		ret = vmdirty_genl_put_vcpus(skb, s, idx, n);
	} while (!ret && all && *idx < n);
	return ret;
}

/*
 * One message for @s; a dump's @cb flags it if sessions came or went, and
 * gets one nest of vCPUs from *idx on (a do gets them all).
 */
static int vmdirty_genl_fill(struct sk_buff *skb, struct vmdirty_session *s,
			     u32 portid, u32 seq, int flags, u8 cmd,
			     u32 dump_flags, u32 nr_vcpus, u32 *idx,
			     struct netlink_callback *cb)
{
	u32 first = *idx;
	void *hdr;

	hdr = genlmsg_put(skb, portid, seq, &vmdirty_genl_family, flags, cmd);
	if (!hdr)
		return -EMSGSIZE;
	if (cb)
		genl_dump_check_consistent(cb, hdr);
	if (vmdirty_genl_put_session(skb, s, dump_flags, nr_vcpus, idx, !cb)) {
		genlmsg_cancel(skb, hdr);
		*idx = first;
		return -EMSGSIZE;
	}
	genlmsg_end(skb, hdr);
	return 0;
}

/* Payload bytes of a session message with @nr_vcpus vCPUs. */
static size_t vmdirty_genl_size(u32 nr_vcpus, u32 dump_flags)
{
	size_t vcpu = 4 * nla_total_size(sizeof(u32)) +
		      2 * nla_total_size_64bit(sizeof(u64));
	size_t size = 8 * nla_total_size(sizeof(u32)) +
		      7 * nla_total_size_64bit(sizeof(u64));

	if (dump_flags & VMDIRTY_DUMP_F_VCPUS)
		size += (DIV_ROUND_UP(nr_vcpus, VMDIRTY_A_VCPUS_MAX) + 1) * nla_total_size(0) +
			nr_vcpus * nla_total_size(vcpu);
	return size;
}

static struct vmdirty_session *vmdirty_genl_lookup(u32 id)
{
	struct vmdirty_session *s;

	lockdep_assert_held(&vmdirty_sessions_lock);
	s = xa_load(&vmdirty_sessions, id);
	return s && vmdirty_session_attached(s) ? s : NULL;
}

static int vmdirty_genl_get(struct sk_buff *skb, struct genl_info *info)
{
	u32 dump_flags = 0, id, n, idx = 0;
	struct vmdirty_session *s;
	struct sk_buff *msg;
	int ret;

	if (GENL_REQ_ATTR_CHECK(info, VMDIRTY_A_SESSION_ID))
		return -EINVAL;
	id = nla_get_u32(info->attrs[VMDIRTY_A_SESSION_ID]);
	if (info->attrs[VMDIRTY_A_DUMP_FLAGS])
		dump_flags = nla_get_u32(info->attrs[VMDIRTY_A_DUMP_FLAGS]);

	mutex_lock(&vmdirty_sessions_lock);
	s = vmdirty_genl_lookup(id);
	if (!s) {
		NL_SET_ERR_MSG_ATTR(info->extack, info->attrs[VMDIRTY_A_SESSION_ID],
				    "no such session");
		ret = -ENOENT;
		goto out_unlock;
	}
	n = READ_ONCE(s->nr_vcpus);
	msg = genlmsg_new(vmdirty_genl_size(n, dump_flags), GFP_KERNEL);
	if (!msg) {
		ret = -ENOMEM;
		goto out_unlock;
	}
	ret = vmdirty_genl_fill(msg, s, info->snd_portid, info->snd_seq, 0,
				VMDIRTY_CMD_GET_SESSION, dump_flags, n, &idx, NULL);
	mutex_unlock(&vmdirty_sessions_lock);
	if (ret) {
		nlmsg_free(msg);
		return ret;
	}
	return genlmsg_reply(msg, info);

out_unlock:
	mutex_unlock(&vmdirty_sessions_lock);
	return ret;
}

static u32 vmdirty_genl_dump_flags(struct netlink_callback *cb)
{
	struct nlattr **attrs = vmdirty_dump_attrs(cb);

	return attrs[VMDIRTY_A_DUMP_FLAGS] ? nla_get_u32(attrs[VMDIRTY_A_DUMP_FLAGS]) : 0;
}

/*
 * Each dump buffer must hold a session message with one nest of vCPUs:
 * sized for the vCPUs the sessions have now, up to a full nest (more may
 * appear while the dump runs; they go in later messages).
 */
static int vmdirty_genl_dump_start(struct netlink_callback *cb)
{
	struct vmdirty_session *s;
	unsigned long id;
	u32 n = 0;

	if (!(vmdirty_genl_dump_flags(cb) & VMDIRTY_DUMP_F_VCPUS))
		return 0;
	mutex_lock(&vmdirty_sessions_lock);
	xa_for_each(&vmdirty_sessions, id, s)
		if (vmdirty_session_attached(s))
			n = max(n, READ_ONCE(s->nr_vcpus));
	mutex_unlock(&vmdirty_sessions_lock);
	n = min_t(u32, max(n, 1U), VMDIRTY_A_VCPUS_MAX);
	cb->min_dump_alloc = nlmsg_total_size(GENL_HDRLEN +
					      vmdirty_genl_size(n, VMDIRTY_DUMP_F_VCPUS));
	return 0;
}

/*
 * cb->args[0]: the session id to go on with; cb->args[1]: its next vCPU.
 * A session with more vCPUs than a message holds spans several messages.
 */
static int vmdirty_genl_dump(struct sk_buff *skb, struct netlink_callback *cb)
{
	u32 dump_flags = vmdirty_genl_dump_flags(cb), idx = cb->args[1], n;
	struct vmdirty_session *s;
	unsigned long id;
	int ret = 0;

	mutex_lock(&vmdirty_sessions_lock);
	cb->seq = vmdirty_sessions_gen;
	xa_for_each_start(&vmdirty_sessions, id, s, cb->args[0]) {
		if (!vmdirty_session_attached(s))
			continue;
		n = READ_ONCE(s->nr_vcpus);
		do {
			ret = vmdirty_genl_fill(skb, s, NETLINK_CB(cb->skb).portid,
						cb->nlh->nlmsg_seq, NLM_F_MULTI,
						VMDIRTY_CMD_GET_SESSION, dump_flags, n,
						&idx, cb);
		} while (!ret && (dump_flags & VMDIRTY_DUMP_F_VCPUS) && idx < n);
		if (ret)
			break;
		idx = 0;
	}
	mutex_unlock(&vmdirty_sessions_lock);
	/* Resume where the message did not fit, or past the last session. */
	cb->args[0] = ret ? id : ULONG_MAX;
	cb->args[1] = ret ? idx : 0;
	/* A message that does not fit an empty buffer never will. */
	if (ret && !skb->len)
		return ret;
	return skb->len;
}

static const struct genl_ops vmdirty_genl_ops[] = {
	{
		.cmd	= VMDIRTY_CMD_GET_SESSION,
		.doit	= vmdirty_genl_get,
		.start	= vmdirty_genl_dump_start,
		.dumpit	= vmdirty_genl_dump,
		.flags	= GENL_ADMIN_PERM,
	},
};

static struct genl_family vmdirty_genl_family __ro_after_init = {
	.name		= VMDIRTY_GENL_NAME,
	.version	= VMDIRTY_GENL_VERSION,
	.maxattr	= VMDIRTY_A_MAX,
	.policy		= vmdirty_genl_policy,
	.module		= THIS_MODULE,
	.ops		= vmdirty_genl_ops,
	.n_ops		= ARRAY_SIZE(vmdirty_genl_ops),
	.mcgrps		= vmdirty_genl_mcgrps,
	.n_mcgrps	= ARRAY_SIZE(vmdirty_genl_mcgrps),
#ifndef VMDIRTY_HAVE_GENL_MCAST_CAP
	.mcast_bind	= vmdirty_genl_mcast_bind,
#endif
};

/**
 * vmdirty_genl_notify - tell the "events" group about a session
 * @s: an attached session (its lock may be held)
 * @cmd: VMDIRTY_CMD_SESSION_NEW, _SESSION_DEL, _LAYOUT_STALE or
 *	_RING_CONFLICT
 *
 * Best effort: listeners that cannot keep up lose events, as netlink does.
 */
void vmdirty_genl_notify(struct vmdirty_session *s, u8 cmd)
{
	struct sk_buff *msg;
	u32 idx = 0;

	if (!genl_has_listeners(&vmdirty_genl_family, &init_net, VMDIRTY_MCGRP_EVENTS))
		return;
	msg = genlmsg_new(vmdirty_genl_size(0, 0), GFP_KERNEL);
	if (!msg)
		return;
	if (vmdirty_genl_fill(msg, s, 0, 0, 0, cmd, 0, READ_ONCE(s->nr_vcpus), &idx, NULL)) {
		nlmsg_free(msg);
		return;
	}
	genlmsg_multicast(&vmdirty_genl_family, msg, 0, VMDIRTY_MCGRP_EVENTS,
			  GFP_KERNEL);
}

MODULE_ALIAS_GENL_FAMILY(VMDIRTY_GENL_NAME);

int __init vmdirty_genl_init(void)
{
	return genl_register_family(&vmdirty_genl_family);
}

void vmdirty_genl_uninit(void)
{
	genl_unregister_family(&vmdirty_genl_family);
}
