/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The agent's client of the "vmdirty" generic netlink family (libnl-genl-3):
 * list the module's sessions with their per-vCPU counters, and listen to its
 * session events.  Read-only, like the family itself.
 */
#ifndef VMDIRTY_GENL_CLIENT_H
#define VMDIRTY_GENL_CLIENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct vmdirty_genl;

/* One entry of VMDIRTY_A_VCPUS. */
struct vmdirty_genl_vcpu {
	uint32_t idx, id, ring_size, ring_used;
	uint64_t entries, last_entries;
};

/* One session as the module reports it; absent attributes read as 0. */
struct vmdirty_genl_session {
	uint32_t id;
	uint32_t flags;			/* VMDIRTY_SESSION_F_* */
	uint32_t owner_pid, vm_pid;
	uint32_t layout_gen, nr_slots, nr_vcpus;
	uint32_t drain_interval_us;
	uint64_t tracked_pages, harvests, drains, entries, resets, dropped, live_pages;
	bool has_vcpus;			/* the reply carried VMDIRTY_A_VCPUS */
	unsigned int nr_vcpu_entries;
	struct vmdirty_genl_vcpu *vcpus;	/* nr_vcpu_entries, owned by the session */
};

/* -ENOENT: the family is not registered (the module is not loaded). */
int vmdirty_genl_open(struct vmdirty_genl **out);
void vmdirty_genl_close(struct vmdirty_genl *nl);

/*
 * Dump every session (with vCPUs if asked); a dump the kernel marks
 * NLM_F_DUMP_INTR is retried a few times, then fails with -EAGAIN.
 * *out is a malloc'ed array of *n sessions: free with vmdirty_genl_free().
 */
int vmdirty_genl_list(struct vmdirty_genl *nl, bool vcpus,
		      struct vmdirty_genl_session **out, size_t *n);
/* One session by id; -ENOENT (or the module's errno) if there is none. */
int vmdirty_genl_get(struct vmdirty_genl *nl, uint32_t id, bool vcpus,
		     struct vmdirty_genl_session *out);
void vmdirty_genl_session_release(struct vmdirty_genl_session *s);
void vmdirty_genl_free(struct vmdirty_genl_session *s, size_t n);

/* Events of the "events" multicast group, on a socket of their own. */
enum vmdirty_genl_event {
	VMDIRTY_GENL_EV_NEW,		/* VMDIRTY_CMD_SESSION_NEW */
	VMDIRTY_GENL_EV_DEL,		/* VMDIRTY_CMD_SESSION_DEL */
	VMDIRTY_GENL_EV_STALE,		/* VMDIRTY_CMD_LAYOUT_STALE */
	VMDIRTY_GENL_EV_CONFLICT,	/* VMDIRTY_CMD_RING_CONFLICT */
};
typedef void (*vmdirty_genl_event_fn)(void *ctx, enum vmdirty_genl_event ev,
				      const struct vmdirty_genl_session *s);
int vmdirty_genl_subscribe(struct vmdirty_genl *nl);
/* The event socket's fd, for poll(); -EBADF before subscribing. */
int vmdirty_genl_event_fd(const struct vmdirty_genl *nl);
/* Read what is pending on the event socket (non-blocking), calling fn per event. */
int vmdirty_genl_read_events(struct vmdirty_genl *nl, vmdirty_genl_event_fn fn, void *ctx);
const char *vmdirty_genl_event_name(enum vmdirty_genl_event ev);

/*
 * The reply and event parsers on a buffer of netlink messages, as the
 * socket would deliver them (the fuzzer's entry; the live paths use the
 * same callbacks).  Replies: *out as vmdirty_genl_list() gives it, also on
 * failure (free it); the first error.
 */
int vmdirty_genl_parse_replies(const void *buf, size_t len,
			       struct vmdirty_genl_session **out, size_t *n);
int vmdirty_genl_parse_events(const void *buf, size_t len, vmdirty_genl_event_fn fn, void *ctx);

#endif
