/* SPDX-License-Identifier: GPL-2.0 */
/* Internal to userspace/vmm/: what its files call in each other. */
#ifndef VMDIRTY_VMM_INT_H
#define VMDIRTY_VMM_INT_H

#include <errno.h>
#include <sys/ioctl.h>

#include "vmm/vmm.h"

/* KVM ioctls other than KVM_RUN are restarted on a signal (the runner's kick). */
static inline int ioctl_retry(int fd, unsigned long req, void *arg)
{
	int r;

	do
		r = ioctl(fd, req, arg);
	while (r < 0 && errno == EINTR);
	return r;
}

/* vcpu.c */
int vcpu_create(struct vm *vm, unsigned int idx, struct vcpu **out);
void vcpu_destroy(struct vcpu *v);
/* What vcpu_handle_exit saw (>= 0), or -errno to end the run. */
enum { VCPU_EXIT_DONE, VCPU_EXIT_PROGRESS, VCPU_EXIT_ERROR, VCPU_EXIT_RING_FULL,
       VCPU_EXIT_DEBUGCON };
int vcpu_handle_exit(struct vcpu *v, int (*ring_full)(struct vcpu *v, void *ctx), void *ctx);
int vcpu_io_value(const struct vcpu *v, uint32_t *value);

/* cpu.c */
int cpu_init_vm(struct vm *vm);		/* before vCPUs: CPUID, features, XSAVE size */
int cpu_init_vcpu(struct vcpu *v);	/* at vCPU creation: CPUID */
int cpu_reset_vcpu(struct vcpu *v);	/* vm_load_guest: long mode at the entry point */

/* state.c */
int state_init_vm(struct vm *vm);	/* after vCPUs: the MSRs to migrate */

#endif
