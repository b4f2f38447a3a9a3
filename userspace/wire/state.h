/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The vCPU and VM state that VCPU_STATE and VM_STATE carry: vmm's
 * struct vcpu_state and struct vm_state (userspace/vmm/vmm.h).  Until vmm.h
 * is merged, the same structs as written in brief/VMM-API.md; once it is,
 * vmm.h wins and this fallback can go.
 */
#ifndef VMDIRTY_WIRE_STATE_H
#define VMDIRTY_WIRE_STATE_H

#if __has_include("vmm/vmm.h")
#include "vmm/vmm.h"
#else
#include <stdint.h>
#include <linux/kvm.h>

#define VCPU_MAX_MSRS 64

struct vcpu_state {
	struct kvm_regs regs;
	struct kvm_sregs sregs;
	uint32_t xsave_size;
	struct kvm_xsave *xsave;	/* xsave_size bytes (KVM_CAP_XSAVE2) */
	struct kvm_xcrs xcrs;
	struct kvm_lapic_state lapic;
	struct kvm_vcpu_events events;
	struct kvm_debugregs debugregs;
	struct kvm_mp_state mp_state;
	uint32_t nr_msrs;
	struct kvm_msr_entry msrs[VCPU_MAX_MSRS];
};

struct vm_state {
	struct kvm_clock_data clock;
	struct kvm_irqchip pic[2], ioapic;
	uint64_t tsc_khz;
};
#endif

#endif
