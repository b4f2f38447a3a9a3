/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The agent's client of the "vmdirty" generic netlink family (libnl-genl-3):
 * list the module's sessions with their per-vCPU counters, and listen to its
 * session events.  Read-only, like the family itself.
 */
#ifndef VMDIRTY_NL_H
#define VMDIRTY_NL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct vmdirty_nl;

/* One entry of VMDIRTY_A_VCPUS. */
struct vmdirty_nl_vcpu {
	uint32_t idx, id, ring_size, ring_used;
	uint64_t entries, last_entries;
};

/* One session as the module reports it; absent attributes read as 0. */
struct vmdirty_nl_session {
	uint32_t id;
	uint32_t flags;			/* VMDIRTY_SESSION_F_* */
	uint32_t owner_pid, vm_pid;
	uint32_t layout_gen, nr_slots, nr_vcpus;
	uint32_t drain_interval_us;
	uint64_t tracked_pages, harvests, drains, entries, resets, dropped, live_pages;
	bool has_vcpus;			/* the reply carried VMDIRTY_A_VCPUS */
	unsigned int nr_vcpu_entries;
	struct vmdirty_nl_vcpu *vcpus;	/* nr_vcpu_entries, owned by the session */
};

/* -ENOENT: the family is not registered (the module is not loaded). */
int vmdirty_nl_open(struct vmdirty_nl **out);
void vmdirty_nl_close(struct vmdirty_nl *nl);

/*
 * Dump every session (with vCPUs if asked); a dump the kernel marks
 * NLM_F_DUMP_INTR is retried a few times, then fails with -EAGAIN.
 * *out is a malloc'ed array of *n sessions: free with vmdirty_nl_free().
 */
int vmdirty_nl_list(struct vmdirty_nl *nl, bool vcpus,
		    struct vmdirty_nl_session **out, size_t *n);
/* One session by id; -ENOENT (or the module's errno) if there is none. */
int vmdirty_nl_get(struct vmdirty_nl *nl, uint32_t id, bool vcpus,
		   struct vmdirty_nl_session *out);
void vmdirty_nl_session_release(struct vmdirty_nl_session *s);
void vmdirty_nl_free(struct vmdirty_nl_session *s, size_t n);

/* Events of the "events" multicast group, on a socket of their own. */
enum vmdirty_nl_event {
	VMDIRTY_NL_EV_NEW,		/* VMDIRTY_CMD_SESSION_NEW */
	VMDIRTY_NL_EV_DEL,		/* VMDIRTY_CMD_SESSION_DEL */
	VMDIRTY_NL_EV_STALE,		/* VMDIRTY_CMD_LAYOUT_STALE */
};
typedef void (*vmdirty_nl_event_fn)(void *ctx, enum vmdirty_nl_event ev,
				    const struct vmdirty_nl_session *s);
int vmdirty_nl_subscribe(struct vmdirty_nl *nl);
/* The event socket's fd, for poll(); -EBADF before subscribing. */
int vmdirty_nl_event_fd(const struct vmdirty_nl *nl);
/* Read what is pending on the event socket (non-blocking), calling fn per event. */
int vmdirty_nl_read_events(struct vmdirty_nl *nl, vmdirty_nl_event_fn fn, void *ctx);
const char *vmdirty_nl_event_name(enum vmdirty_nl_event ev);

#endif
