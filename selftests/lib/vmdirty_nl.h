/* SPDX-License-Identifier: GPL-2.0 */
/*
 * A libnl-genl client of the "vmdirty" family for the selftests: get one
 * session, dump them all, listen to the "events" group, and send requests
 * with arbitrary attributes to see them rejected.
 */
#ifndef VMDIRTY_NL_H
#define VMDIRTY_NL_H

#include <stdbool.h>
#include <stdint.h>

#include <netlink/genl/genl.h>
#include <linux/vmdirty.h>

struct vmdirty_nl {
	struct nl_sock *sk;
	int family;
	int events;		/* multicast group id */
};

struct vmdirty_nl_vcpu {
	uint32_t idx, id, ring_size, ring_used;
	uint64_t entries, last_entries;
};

#define VMDIRTY_NL_MAX_VCPUS	16

/* One session message, as the kernel sent it. */
struct vmdirty_nl_session {
	uint8_t cmd;
	uint16_t nlmsg_flags;
	bool has[VMDIRTY_A_MAX + 1];	/* which attributes came */
	uint32_t id, flags, owner_pid, vm_pid, layout_gen, nr_slots, nr_vcpus;
	uint32_t drain_interval_us;
	uint64_t tracked_pages, harvests, drains, entries, resets, dropped;
	uint64_t live_pages;
	unsigned int nr_vcpu_entries;
	struct vmdirty_nl_vcpu vcpus[VMDIRTY_NL_MAX_VCPUS];
};

/* Connect and resolve the family; 0 or -errno (-ENOENT: no family). */
int vmdirty_nl_open(struct vmdirty_nl *nl);
void vmdirty_nl_close(struct vmdirty_nl *nl);
/* GET_SESSION do; dump_flags < 0 omits the attribute; 0 or -errno. */
int vmdirty_nl_get(struct vmdirty_nl *nl, uint32_t id, int64_t dump_flags,
		   struct vmdirty_nl_session *out);
/*
 * GET_SESSION dump into out[max]; *n sessions; *intr if any message was
 * flagged NLM_F_DUMP_INTR.  0 or -errno.
 */
int vmdirty_nl_dump(struct vmdirty_nl *nl, int64_t dump_flags,
		    struct vmdirty_nl_session *out, unsigned int max,
		    unsigned int *n, bool *intr);
/* A GET_SESSION (or @cmd) message to fill with attributes by hand. */
struct nl_msg *vmdirty_nl_msg(struct vmdirty_nl *nl, uint8_t cmd, int flags);
/* Send @msg (freed) and return the kernel's answer: 0 or -errno. */
int vmdirty_nl_request(struct vmdirty_nl *nl, struct nl_msg *msg);
/* Join the "events" group; 0 or -errno. */
int vmdirty_nl_subscribe(struct vmdirty_nl *nl);
/* The next event within @timeout_ms: 0, -ETIMEDOUT or -errno. */
int vmdirty_nl_event(struct vmdirty_nl *nl, struct vmdirty_nl_session *out,
		     int timeout_ms);
/* Parse one message of the family; 0 or -errno. */
int vmdirty_nl_parse(struct nlmsghdr *nlh, struct vmdirty_nl_session *out);

#endif /* VMDIRTY_NL_H */
