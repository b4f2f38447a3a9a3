// SPDX-License-Identifier: GPL-2.0
/*
 * vmdirty: the "vmdirty" generic netlink family, read-only reporting of the
 * attached sessions and their per-vCPU counters, and the "events" group.
 * Counters are read from the shared region without the session's lock,
 * under vmdirty_sessions_lock, which keeps the session alive.
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
	[VMDIRTY_MCGRP_EVENTS] = { .name = VMDIRTY_GENL_MCGRP },
};

static u32 vmdirty_genl_session_flags(struct vmdirty_session *s)
{
	u32 flags = 0;

	if (READ_ONCE(s->drain.interval_us))
		flags |= VMDIRTY_SESSION_F_DRAINING;
	if (READ_ONCE(s->hdr->flags) & VMDIRTY_STATUS_LAYOUT_STALE)
		flags |= VMDIRTY_SESSION_F_STALE;
	return flags;
}

static int vmdirty_genl_put_vcpus(struct sk_buff *skb, struct vmdirty_session *s,
				  u32 n)
{
	struct nlattr *vcpus, *vcpu;
	u32 i;

	vcpus = nla_nest_start(skb, VMDIRTY_A_VCPUS);
	if (!vcpus)
		return -EMSGSIZE;
	for (i = 0; i < n; i++) {
		struct vmdirty_shm_vcpu *v = &s->shm_vcpus[i];

		/* Pairs with smp_store_release() in vmdirty_shm_vcpu_seen(). */
		if (!smp_load_acquire(&v->present))
			continue;
		vcpu = nla_nest_start(skb, VMDIRTY_A_VCPUS_ENTRY);
		if (!vcpu ||
		    nla_put_u32(skb, VMDIRTY_A_VCPU_IDX, i) ||
		    nla_put_u32(skb, VMDIRTY_A_VCPU_ID, READ_ONCE(v->vcpu_id)) ||
		    nla_put_u32(skb, VMDIRTY_A_VCPU_RING_SIZE, READ_ONCE(v->ring_size)) ||
		    nla_put_u32(skb, VMDIRTY_A_VCPU_RING_USED, READ_ONCE(v->ring_used)) ||
		    nla_put_u64_64bit(skb, VMDIRTY_A_VCPU_ENTRIES, READ_ONCE(v->entries),
				      VMDIRTY_A_VCPU_PAD) ||
		    nla_put_u64_64bit(skb, VMDIRTY_A_VCPU_LAST_ENTRIES,
				      READ_ONCE(v->last_entries), VMDIRTY_A_VCPU_PAD))
			return -EMSGSIZE;
		nla_nest_end(skb, vcpu);
	}
	nla_nest_end(skb, vcpus);
	return 0;
}

static int vmdirty_genl_put_u64(struct sk_buff *skb, int attr, u64 *field)
{
	return nla_put_u64_64bit(skb, attr, READ_ONCE(*field), VMDIRTY_A_PAD);
}

/* @n: the vCPUs seen, read once for the whole message. */
static int vmdirty_genl_put_session(struct sk_buff *skb, struct vmdirty_session *s,
				    u32 dump_flags, u32 n)
{
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
	if (dump_flags & VMDIRTY_DUMP_F_VCPUS)
		return vmdirty_genl_put_vcpus(skb, s, n);
	return 0;
}

/* One message for @s; a dump's @cb flags it if sessions came or went. */
static int vmdirty_genl_fill(struct sk_buff *skb, struct vmdirty_session *s,
			     u32 portid, u32 seq, int flags, u8 cmd,
			     u32 dump_flags, u32 nr_vcpus, struct netlink_callback *cb)
{
	void *hdr;

	hdr = genlmsg_put(skb, portid, seq, &vmdirty_genl_family, flags, cmd);
	if (!hdr)
		return -EMSGSIZE;
	if (cb)
		genl_dump_check_consistent(cb, hdr);
	if (vmdirty_genl_put_session(skb, s, dump_flags, nr_vcpus)) {
		genlmsg_cancel(skb, hdr);
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
		size += nla_total_size(0) + nr_vcpus * nla_total_size(vcpu);
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
	u32 dump_flags = 0, id, n;
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
				VMDIRTY_CMD_GET_SESSION, dump_flags, n, NULL);
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
 * Each dump buffer must hold the largest session message with all its
 * vCPUs; sized for every vCPU the VMs may have, since more can appear
 * while the dump runs.
 */
static int vmdirty_genl_dump_start(struct netlink_callback *cb)
{
	struct vmdirty_session *s;
	unsigned long id;
	size_t size = 0;

	if (!(vmdirty_genl_dump_flags(cb) & VMDIRTY_DUMP_F_VCPUS))
		return 0;
	mutex_lock(&vmdirty_sessions_lock);
	xa_for_each(&vmdirty_sessions, id, s)
		if (vmdirty_session_attached(s))
			size = max(size, vmdirty_genl_size(s->max_vcpus, VMDIRTY_DUMP_F_VCPUS));
	mutex_unlock(&vmdirty_sessions_lock);
	cb->min_dump_alloc = nlmsg_total_size(GENL_HDRLEN + size);
	return 0;
}

/* cb->args[0]: the next session id to dump. */
static int vmdirty_genl_dump(struct sk_buff *skb, struct netlink_callback *cb)
{
	u32 dump_flags = vmdirty_genl_dump_flags(cb);
	struct vmdirty_session *s;
	unsigned long id;
	int ret = 0;

	mutex_lock(&vmdirty_sessions_lock);
	cb->seq = vmdirty_sessions_gen;
	xa_for_each_start(&vmdirty_sessions, id, s, cb->args[0]) {
		if (!vmdirty_session_attached(s))
			continue;
		ret = vmdirty_genl_fill(skb, s, NETLINK_CB(cb->skb).portid,
					cb->nlh->nlmsg_seq, NLM_F_MULTI,
					VMDIRTY_CMD_GET_SESSION, dump_flags,
					READ_ONCE(s->nr_vcpus), cb);
		if (ret)
			break;
	}
	mutex_unlock(&vmdirty_sessions_lock);
	/* Resume at the session that did not fit, or past the last one. */
	cb->args[0] = ret ? id : ULONG_MAX;
	/* A session that does not fit an empty message never will. */
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
};

/**
 * vmdirty_genl_notify - tell the "events" group about a session
 * @s: an attached session (its lock may be held)
 * @cmd: VMDIRTY_CMD_SESSION_NEW, _SESSION_DEL or _LAYOUT_STALE
 *
 * Best effort: listeners that cannot keep up lose events, as netlink does.
 */
void vmdirty_genl_notify(struct vmdirty_session *s, u8 cmd)
{
	struct sk_buff *msg;

	if (!genl_has_listeners(&vmdirty_genl_family, &init_net, VMDIRTY_MCGRP_EVENTS))
		return;
	msg = genlmsg_new(vmdirty_genl_size(0, 0), GFP_KERNEL);
	if (!msg)
		return;
	if (vmdirty_genl_fill(msg, s, 0, 0, 0, cmd, 0, READ_ONCE(s->nr_vcpus), NULL)) {
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
