/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Guest-side helpers for the vmdirty.ko selftests, on the VMM library: run
 * posted commands on vCPU threads, peek the rings like a userspace reaper,
 * and read a session's bit sets as gfn sets.
 */
#ifndef VMDIRTY_GUEST_H
#define VMDIRTY_GUEST_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "vmm/vmm.h"
#include "vmdirty_util.h"

/*
 * What the guest tests (harvest, drain, collector) start from: /dev/vmdirty
 * open, a VM made from a vm_config with the guest loaded, and a session
 * attached to it and mapped.
 */
struct guest_session {
	struct vm *vm;
	int fd;			/* /dev/vmdirty, -1 once closed */
	struct vmdirty_attach attach;
	struct vmdirty_shm_header *hdr;	/* NULL until attached */
};

#define GUEST_SESSION_SKIP	1

/*
 * Open, create and load the VM, and attach and map if @attach.  Returns 0;
 * GUEST_SESSION_SKIP (no module, no KVM with the acquire/release ring); or
 * -errno; *what says what did not work.  guest_session_teardown() undoes
 * whatever part was done.
 */
int guest_session_setup(struct guest_session *gs, const struct vm_config *cfg,
			bool attach, const char **what);
/* ATTACH and map; 0 or -errno. */
int guest_session_attach(struct guest_session *gs);
/* Unmap and close the session (the VM stays). */
void guest_session_close(struct guest_session *gs);
void guest_session_teardown(struct guest_session *gs);

/* One vCPU running its posted command on a thread of its own. */
struct vcpu_thread {
	pthread_t th;
	struct vcpu *v;
	int (*ring_full)(struct vcpu *v, void *ctx);
	void *ctx;
	int ret;
};

int vcpu_thread_start(struct vcpu_thread *t, struct vcpu *v,
		      int (*ring_full)(struct vcpu *v, void *ctx), void *ctx);
/* Joins and returns vcpu_run_cmd's result. */
int vcpu_thread_join(struct vcpu_thread *t);
/* Runs every vCPU with a posted command concurrently; first error or 0. */
int vm_run_posted(struct vm *vm, int (*ring_full)(struct vcpu *v, void *ctx), void *ctx);

/* Posts WRITE_LIST of @n gpas (copied to v's scratch area). */
int vcpu_post_list(struct vcpu *v, const uint64_t *gpas, uint64_t n);

/* A set of guest pages, one byte per gfn of guest RAM. */
struct gfn_set {
	uint64_t npages;
	uint8_t *in;
	uint64_t count;		/* gfns in the set */
	uint64_t entries;	/* additions, duplicates included */
	uint64_t bad;		/* additions naming no page of the VM */
};

int gfn_set_init(struct gfn_set *s, uint64_t npages);
void gfn_set_free(struct gfn_set *s);
void gfn_set_clear(struct gfn_set *s);
void gfn_set_add(struct gfn_set *s, int64_t gfn);

/*
 * Peek every vCPU's ring from cursor[i] (advanced) like a userspace reaper
 * that does not collect: what KVM logged since.  Adds each entry's gfn to
 * @all and to per_vcpu[i] if not NULL.  Returns the entries seen or -errno.
 */
int vm_peek_rings(struct vm *vm, uint32_t *cursor, struct gfn_set *all,
		  struct gfn_set *per_vcpu);

/* Adds the gfns whose bit is set in set @set of the region to @s. */
void shm_to_gfn_set(struct vmdirty_shm_header *hdr, unsigned int set, struct gfn_set *s);

/*
 * Pages below GUEST_WORK_BASE the guest touches for itself (tables, code,
 * mailbox, GDT/IDT/TSS, the stacks and scratch of vCPUs 0..nr_vcpus-1): a
 * walk or a write there is logged like any other.
 */
bool guest_bookkeeping_page(uint64_t gfn, uint64_t mem_size, unsigned int nr_vcpus);

#endif /* VMDIRTY_GUEST_H */
