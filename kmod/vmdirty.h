/* SPDX-License-Identifier: GPL-2.0 */
/*
 * vmdirty: prototypes shared between the module's files.
 */
#ifndef _VMDIRTY_H
#define _VMDIRTY_H

#include <linux/mutex.h>
#include <linux/xarray.h>
#include <uapi/linux/vmdirty.h>

#undef pr_fmt
#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

struct kvm_dirty_gfn;
struct kvm_vcpu;
struct vm_area_struct;
struct vmdirty_bits;
struct vmdirty_collect;
struct vmdirty_session;
struct vmdirty_vcpu;

/* device.c: /dev/vmdirty */
int vmdirty_device_init(void);
void vmdirty_device_uninit(void);

/* session.c: attach and lifetime, the registry of attached sessions */
extern struct mutex vmdirty_sessions_lock;
extern struct xarray vmdirty_sessions;
extern u32 vmdirty_sessions_gen;
void vmdirty_sessions_changed(void);
struct vmdirty_session *vmdirty_session_create(void);
void vmdirty_session_destroy(struct vmdirty_session *s);
int vmdirty_session_attach(struct vmdirty_session *s,
			   struct vmdirty_attach *arg);
bool vmdirty_session_attached(struct vmdirty_session *s);

/* slots.c: the memslot layout recorded at ATTACH */
int vmdirty_slots_record(struct vmdirty_session *s);
int vmdirty_slots_find(struct vmdirty_session *s, u32 key, u64 offset);
bool vmdirty_slots_check(struct vmdirty_session *s);

/* shm.c: the shared region and its bit sets */
int vmdirty_shm_alloc(struct vmdirty_session *s);
void vmdirty_shm_free(struct vmdirty_session *s);
int vmdirty_shm_mmap(struct vmdirty_session *s, struct vm_area_struct *vma);
u64 vmdirty_bits_or(struct vmdirty_bits *b, u64 word, u64 bits);
bool vmdirty_bits_set(struct vmdirty_bits *b, u64 bit);
void vmdirty_bits_clear(struct vmdirty_bits *b);
void vmdirty_shm_vcpu_seen(struct vmdirty_session *s, u32 idx, u32 vcpu_id,
			   u32 ring_size);
void vmdirty_shm_account(struct vmdirty_session *s,
			 const struct vmdirty_collect *c);
void vmdirty_shm_reset(struct vmdirty_session *s, u64 n);
u64 vmdirty_shm_publish(struct vmdirty_session *s);
void vmdirty_shm_drained(struct vmdirty_session *s);
void vmdirty_shm_swap(struct vmdirty_session *s);

/* ring.c: one vCPU's ring, claimed and handed back entry by entry */
int vmdirty_ring_sync(struct vmdirty_session *s, u32 idx, struct kvm_vcpu *vcpu,
		      struct vmdirty_collect *c);
int vmdirty_ring_claim(struct kvm_vcpu *vcpu, struct vmdirty_vcpu *v);
int vmdirty_ring_publish(struct kvm_vcpu *vcpu, struct vmdirty_vcpu *v);
int vmdirty_ring_unreset(struct vmdirty_session *s, u32 idx, struct kvm_vcpu *vcpu,
			 u32 *rewritten);

/* harvest.c: the walk over every ring, batch ordering, HARVEST */
void vmdirty_batch_order(struct vmdirty_session *s, struct kvm_dirty_gfn *gfns,
			 u32 mask, u32 start, u32 n, struct vmdirty_collect *c);
int vmdirty_collect(struct vmdirty_session *s, bool sorted,
		    struct vmdirty_collect *c);
long vmdirty_harvest_locked(struct vmdirty_session *s, bool sorted, bool idle_reset,
			    struct vmdirty_collect *c);
int vmdirty_harvest(struct vmdirty_session *s, struct vmdirty_harvest *arg);

/* reset.c: KVM_RESET_DIRTY_RINGS from the right mm, the session's worker */
int vmdirty_reset_init(struct vmdirty_session *s);
void vmdirty_reset_uninit(struct vmdirty_session *s);
int vmdirty_reset_rings(struct vmdirty_session *s, bool on_worker);

/* drain.c: background draining */
void vmdirty_drain_init(struct vmdirty_session *s);
void vmdirty_drain_stop(struct vmdirty_session *s);
int vmdirty_set_drain(struct vmdirty_session *s, struct vmdirty_drain *arg);

/* netlink.c: the "vmdirty" generic netlink family */
int vmdirty_genl_init(void);
void vmdirty_genl_uninit(void);
void vmdirty_genl_notify(struct vmdirty_session *s, u8 cmd);

/*
 * The steps of ATTACH after its first allocation (the session's id) that a
 * DEBUG build can be told to fail, as if that allocation had failed: the
 * module parameter fail_attach (selftest.c), for selftests/attach_fault_test.c.
 */
enum vmdirty_fault {
	VMDIRTY_FAULT_NONE,
	VMDIRTY_FAULT_VCPUS,	/* the vCPU array */
	VMDIRTY_FAULT_SLOTS,	/* after the layout is recorded */
	VMDIRTY_FAULT_REGION,	/* every region page allocated, none mapped */
	VMDIRTY_FAULT_PRIVATE,	/* the scratch set allocated, the pending set not */
	VMDIRTY_FAULT_WORKER,	/* after the worker is created */
};

#ifdef DEBUG
/* selftest.c: run at load time by DEBUG builds */
bool vmdirty_selftest(void);
bool vmdirty_fault(enum vmdirty_fault where);
#else
static inline bool vmdirty_fault(enum vmdirty_fault where)
{
	return false;
}
#endif

#endif /* _VMDIRTY_H */
