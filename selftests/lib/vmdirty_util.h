/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Helpers for the vmdirty.ko selftests: ioctl wrappers in the KVM selftests'
 * style, a session (open, attach, map), and bare KVM VMs built with raw
 * ioctls (a dirty ring, memslots from anonymous memory, vCPUs that never
 * run) for the tests that need a VM but no guest.
 */
#ifndef VMDIRTY_UTIL_H
#define VMDIRTY_UTIL_H

#include <assert.h>
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <pthread.h>
#include <string.h>
#include <sys/ioctl.h>

#include <linux/kvm.h>
#include <linux/vmdirty.h>

/* Outside a harness assertion: report where, and fail the test's process. */
#define TEST_ASSERT(cond, fmt, ...) do {					\
	if (!(cond)) {								\
		fprintf(stderr, "# %s:%d: %s: " fmt "\n", __FILE__, __LINE__,	\
			#cond, ##__VA_ARGS__);					\
		exit(1);							\
	}									\
} while (0)

/* The argument must be exactly what the ioctl number says. */
#define __vmdirty_ioctl(fd, cmd, arg) ({					\
	static_assert(sizeof(*(arg)) == _IOC_SIZE(cmd),				\
		      "argument size of " #cmd);				\
	ioctl(fd, cmd, arg) < 0 ? -errno : 0;					\
})

/* Must succeed: on failure, print the ioctl's name and the error. */
#define vmdirty_ioctl(fd, cmd, arg) ({						\
	int __ret = __vmdirty_ioctl(fd, cmd, arg);				\
	TEST_ASSERT(!__ret, "%s failed: %s", #cmd, strerror(-__ret));		\
	__ret;									\
})

/* A raw ioctl whose argument is not checked against the number. */
static inline int sys_ioctl(int fd, unsigned long cmd, void *arg)
{
	return ioctl(fd, cmd, arg) < 0 ? -errno : 0;
}

/* Every ioctl's size field set, the rest zero. */
#define VMDIRTY_ARG(type) ((struct type){ .size = sizeof(struct type) })

/* --- Sessions ------------------------------------------------------- */

/* open("/dev/vmdirty"); -errno on failure (-ENOENT: module not loaded). */
/* Write s to a sysfs or proc file: 0, or -errno (-EIO on a short write). */
int write_file(const char *path, const char *s);
int vmdirty_open(void);
/* ATTACH @fd to @vm_fd; 0 or -errno; fills *out if not NULL. */
int vmdirty_attach(int fd, int vm_fd, struct vmdirty_attach *out);
/* mmap the whole region read-only; NULL on failure (errno set). */
struct vmdirty_shm_header *vmdirty_map(int fd, size_t size);
/* HARVEST with @flags; 0 or -errno; fills *out if not NULL. */
int vmdirty_harvest(int fd, uint32_t flags, struct vmdirty_harvest *out);
/* SET_DRAIN; 0 or -errno. */
int vmdirty_set_drain(int fd, uint32_t flags, uint32_t min_us, uint32_t max_us,
		      uint32_t high_pct);

/* The region's pieces. */
static inline struct vmdirty_shm_slot *vmdirty_shm_slots(struct vmdirty_shm_header *h)
{
	return (void *)((char *)h + h->slots_offset);
}

static inline struct vmdirty_shm_vcpu *vmdirty_shm_vcpus(struct vmdirty_shm_header *h)
{
	return (void *)((char *)h + h->vcpus_offset);
}

static inline uint64_t *vmdirty_shm_bitmap(struct vmdirty_shm_header *h,
					   const struct vmdirty_shm_slot *slot,
					   unsigned int set)
{
	return (void *)((char *)h + slot->bitmap_offset[set]);
}

static inline uint64_t *vmdirty_shm_summary(struct vmdirty_shm_header *h,
					    const struct vmdirty_shm_slot *slot,
					    unsigned int set)
{
	return (void *)((char *)h + slot->summary_offset[set]);
}

static inline bool vmdirty_test_bit(const uint64_t *bitmap, uint64_t bit)
{
	return bitmap[bit / 64] >> (bit % 64) & 1;
}

/* Bits set in a slot's bitmap of @set. */
uint64_t vmdirty_shm_count(struct vmdirty_shm_header *h,
			   const struct vmdirty_shm_slot *slot, unsigned int set);
/*
 * Every non-zero word of the slot's bitmap of @set has its summary bit set,
 * and no bit lies past the slot's last page.  Returns false if not.
 */
bool vmdirty_shm_consistent(struct vmdirty_shm_header *h,
			    const struct vmdirty_shm_slot *slot, unsigned int set);

/* --- Bare VMs -------------------------------------------------------- */

#define BARE_VM_MAX_VCPUS	8
#define BARE_VM_MAX_SLOTS	8

struct bare_slot {
	uint32_t slot;		/* (as_id << 16) | id */
	uint64_t gpa;
	uint64_t size;
	void *mem;
};

struct bare_vm {
	int kvm_fd;
	int vm_fd;
	uint32_t ring_entries;	/* 0: no dirty ring */
	unsigned int nr_vcpus;
	int vcpu_fd[BARE_VM_MAX_VCPUS];
	struct kvm_dirty_gfn *ring[BARE_VM_MAX_VCPUS];
	unsigned int nr_slots;
	struct bare_slot slots[BARE_VM_MAX_SLOTS];
};

/* /dev/kvm present and the dirty ring supported? (else the test skips) */
bool bare_vm_supported(void);
/* A VM with a @ring_entries dirty ring (0: none); 0 or -errno. */
int bare_vm_create(struct bare_vm *vm, uint32_t ring_entries);
/* A slot of @size bytes at @gpa, logging dirty pages; 0 or -errno. */
int bare_vm_add_slot(struct bare_vm *vm, uint32_t slot, uint64_t gpa, uint64_t size);
/* Delete slot @slot (its index in vm->slots stays, size 0); 0 or -errno. */
int bare_vm_del_slot(struct bare_vm *vm, uint32_t slot);
/* Move slot @slot to @gpa (KVM_MR_MOVE); 0 or -errno. */
int bare_vm_move_slot(struct bare_vm *vm, uint32_t slot, uint64_t gpa);
/* A vCPU with its ring mapped; 0 or -errno. */
int bare_vm_add_vcpu(struct bare_vm *vm);
void bare_vm_destroy(struct bare_vm *vm);
/* A VM with a 4096-entry ring, one 1 MiB slot at 1 MiB and @nr_vcpus. */
int bare_vm_simple(struct bare_vm *vm, unsigned int nr_vcpus);

/*
 * The start of a FIXTURE_SETUP on a bare VM (the fixture has "int fd" and
 * "struct bare_vm vm"; the test includes ksft_compat.h): skip without
 * a ring-capable /dev/kvm, open /dev/vmdirty into self->fd or skip if the
 * module is not loaded, and make self->vm a bare_vm_simple() of @nr_vcpus
 * (nr_vcpus < 0: no VM, the tests make their own; self->vm's fds are -1
 * then, for bare_vm_destroy()).  A macro, since it skips and asserts as
 * the fixture.
 */
#define BARE_SESSION_SETUP(self, nr_vcpus) do {					\
	int __nr = (nr_vcpus), __ret;						\
										\
	(self)->fd = -1;							\
	(self)->vm.vm_fd = -1;							\
	(self)->vm.kvm_fd = -1;							\
	if (!bare_vm_supported())						\
		SETUP_SKIP("no /dev/kvm with a dirty ring");			\
	(self)->fd = vmdirty_open();						\
	if ((self)->fd == -ENOENT)						\
		SETUP_SKIP("vmdirty.ko is not loaded");				\
	ASSERT_LE(0, (self)->fd) TH_LOG("/dev/vmdirty: %s", strerror(-(self)->fd)); \
	if (__nr >= 0) {							\
		__ret = bare_vm_simple(&(self)->vm, __nr);			\
		ASSERT_EQ(0, __ret) TH_LOG("bare VM: %s", strerror(-__ret));	\
	}									\
} while (0)

/* --- The module ------------------------------------------------------ */

/* kmod/vmdirty.ko: $VMDIRTY_KO, or found from the current directory up. */
bool vmdirty_module_path(char *path, size_t len);
/* The DEBUG build: $VMDIRTY_DEBUG_KO, or build/kmod-debug/ beside @ko's tree. */
bool vmdirty_debug_module_path(const char *ko, char *path, size_t len);
/* finit_module() of @path; 0 or -errno. */
int vmdirty_module_load(const char *path);
/* delete_module("vmdirty"), once, not waiting; 0 or -errno (-EWOULDBLOCK: in use). */
int vmdirty_module_unload(void);
bool vmdirty_module_loaded(void);

/* --- Test host ------------------------------------------------------- */

/* The session's kthread worker ("vmdirty/<id>"): its pid, or -ESRCH. */
int vmdirty_worker_pid(uint32_t session_id);
/* Drop @cap from this process's effective and permitted sets; 0 or -errno. */
int drop_cap(int cap);
/* Pin task @tid (0: the calling thread) to @cpu; 0 or -errno. */
int pin_task(int tid, int cpu);

/*
 * A SCHED_FIFO thread that owns one CPU: it calls check(ctx) in a tight
 * loop for spin_ms, then every millisecond (sleeping in between) until it
 * returns true or timeout_ms passes.  A task pinned to that CPU (the
 * session's worker) cannot run while it spins: that holds a window open
 * (between the module's walk and the reset it asks the worker for) so
 * that the test can act inside it, deterministically.  RT throttling is off
 * meanwhile (sched_rt_runtime_us -1), else the worker would get the CPU
 * for 50 ms of every second.
 */
struct cpu_hold {
	int cpu;
	unsigned int spin_ms, timeout_ms;
	bool (*check)(void *ctx);
	void *ctx;
	/* out */
	bool done;		/* check() returned true */
	bool while_spinning;	/* ... before the first sleep */
	int err;		/* setting the policy or affinity failed */
	pthread_t th;
	bool ready;		/* the thread owns its CPU */
	char rt_runtime[32];	/* sched_rt_runtime_us to restore */
};

/* Returns once the thread owns its CPU (or failed to). */
int cpu_hold_start(struct cpu_hold *h);
/* Joins; 0 if check() returned true, -ETIMEDOUT, or the setup error. */
int cpu_hold_join(struct cpu_hold *h);

/* /sys/kernel/debug/kvm/<pid>-<fd> of a VM this thread created. */
void kvm_debugfs_dir(char *buf, size_t len, int vm_fd);
/* Mount debugfs if needed; false if it cannot be. */
bool debugfs_ready(void);
/* Send / receive one fd over a unix socket. */
int send_fd(int sock, int fd);
int recv_fd(int sock);

#endif /* VMDIRTY_UTIL_H */
