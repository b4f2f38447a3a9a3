// SPDX-License-Identifier: GPL-2.0
/*
 * vCPU and VM state, saved from one VM and restored into another (the
 * migration destination) so that the guest continues exactly where it
 * stopped.  The order of the restore matters; each step says why it is
 * where it is.  References: QEMU's kvm_arch_put_registers() and the KVM
 * selftests' vcpu_load_state() / x86_64/state_test.c.
 *
 * Not migrated: nested virtualization state (the payload never runs
 * VMRUN/VMLAUNCH), the PIT (none is created), PMU MSRs (unused).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>

#include "vmm/vmm.h"
#include "vmm/vmm_int.h"

#define MSR_IA32_TSC			0x10
#define MSR_IA32_TSC_ADJUST		0x3b
#define MSR_IA32_SPEC_CTRL		0x48
#define MSR_IA32_SYSENTER_CS		0x174
#define MSR_IA32_SYSENTER_ESP		0x175
#define MSR_IA32_SYSENTER_EIP		0x176
#define MSR_IA32_MISC_ENABLE		0x1a0
#define MSR_IA32_CR_PAT			0x277
#define MSR_MTRR_DEF_TYPE		0x2ff
#define MSR_IA32_TSC_DEADLINE		0x6e0
#define MSR_IA32_XSS			0xda0
#define MSR_STAR			0xc0000081
#define MSR_LSTAR			0xc0000082
#define MSR_CSTAR			0xc0000083
#define MSR_SYSCALL_MASK		0xc0000084
#define MSR_KERNEL_GS_BASE		0xc0000102
#define MSR_TSC_AUX			0xc0000103
#define MSR_AMD64_VIRT_SPEC_CTRL	0xc001011f
#define MSR_KVM_WALL_CLOCK_NEW		0x4b564d00
#define MSR_KVM_SYSTEM_TIME_NEW		0x4b564d01
#define MSR_KVM_ASYNC_PF_EN		0x4b564d02
#define MSR_KVM_STEAL_TIME		0x4b564d03
#define MSR_KVM_PV_EOI_EN		0x4b564d04
#define MSR_KVM_POLL_CONTROL		0x4b564d05
#define MSR_KVM_ASYNC_PF_INT		0x4b564d06

/*
 * The architectural MSRs a guest of ours can touch, and KVM's paravirtual
 * ones.  EFER, FS/GS base and APIC base travel in sregs.  TSC_ADJUST comes
 * before TSC, as in QEMU, so a TSC write does not get folded into it.
 */
static const uint32_t wanted_msrs[] = {
	MSR_IA32_SYSENTER_CS, MSR_IA32_SYSENTER_ESP, MSR_IA32_SYSENTER_EIP,
	MSR_STAR, MSR_LSTAR, MSR_CSTAR, MSR_SYSCALL_MASK, MSR_KERNEL_GS_BASE,
	MSR_TSC_AUX, MSR_IA32_CR_PAT, MSR_IA32_MISC_ENABLE, MSR_MTRR_DEF_TYPE,
	MSR_IA32_SPEC_CTRL, MSR_AMD64_VIRT_SPEC_CTRL, MSR_IA32_XSS,
	MSR_KVM_WALL_CLOCK_NEW, MSR_KVM_SYSTEM_TIME_NEW, MSR_KVM_ASYNC_PF_EN,
	MSR_KVM_STEAL_TIME, MSR_KVM_PV_EOI_EN, MSR_KVM_POLL_CONTROL, MSR_KVM_ASYNC_PF_INT,
	MSR_IA32_TSC_ADJUST, MSR_IA32_TSC,
	MSR_IA32_TSC_DEADLINE,	/* restored apart, after the LAPIC */
};

_Static_assert(sizeof(wanted_msrs) / sizeof(wanted_msrs[0]) <= VCPU_MAX_MSRS, "MSR list");

struct msrs {
	struct kvm_msrs hdr;
	struct kvm_msr_entry e[VCPU_MAX_MSRS];
};

static int get_msr_index_list(int kvm_fd, struct kvm_msr_list **out)
{
	struct kvm_msr_list probe = { .nmsrs = 0 }, *l;

	/* The first call fails with E2BIG and says how many there are. */
	if (ioctl_retry(kvm_fd, KVM_GET_MSR_INDEX_LIST, &probe) == 0)
		return -ENODATA;
	if (errno != E2BIG)
		return -errno;
	l = calloc(1, sizeof(*l) + probe.nmsrs * sizeof(l->indices[0]));
	if (!l)
		return -ENOMEM;
	l->nmsrs = probe.nmsrs;
	if (ioctl_retry(kvm_fd, KVM_GET_MSR_INDEX_LIST, l) < 0) {
		free(l);
		return -errno;
	}
	*out = l;
	return 0;
}

/*
 * The MSRs to migrate: the wanted ones KVM lists and that vCPU 0 can
 * actually read (KVM_GET_MSRS stops at the first it cannot).
 */
int state_init_vm(struct vm *vm)
{
	struct kvm_msr_list *list = NULL;
	struct msrs m;
	uint32_t i, j, n = 0;
	int r;

	r = get_msr_index_list(vm->kvm_fd, &list);
	if (r)
		return r;
	for (i = 0; i < sizeof(wanted_msrs) / sizeof(wanted_msrs[0]); i++)
		for (j = 0; j < list->nmsrs; j++)
			if (list->indices[j] == wanted_msrs[i]) {
				vm->msr_index[n++] = wanted_msrs[i];
				break;
			}
	free(list);
	for (;;) {
		memset(&m, 0, sizeof(m));
		m.hdr.nmsrs = n;
		for (i = 0; i < n; i++)
			m.e[i].index = vm->msr_index[i];
		r = ioctl_retry(vm->vcpus[0]->fd, KVM_GET_MSRS, &m);
		if (r < 0)
			return -errno;
		if ((uint32_t)r == n)
			break;
		memmove(&vm->msr_index[r], &vm->msr_index[r + 1], (n - r - 1) * sizeof(uint32_t));
		n--;
	}
	vm->nr_msrs = n;
	return 0;
}

/*
 * After an IO exit KVM finishes the instruction (advances RIP) only on
 * the next KVM_RUN; immediate_exit lets it do that and return at once, so
 * the registers we read are the ones the guest would continue from.
 * Nothing to do when the last KVM_RUN did not end in an exit: the runner
 * completes it on the vCPU's own thread before it parks (runner.c), since
 * a KVM_RUN from any other thread waits for an RCU grace period
 * (kvm_vcpu_ioctl(): the vCPU's pid changes, synchronize_rcu()), 8-16 ms
 * in the test host, and again when the vCPU's thread runs it next.
 */
int vcpu_complete_io(struct vcpu *v)
{
	uint8_t old = v->run->immediate_exit;
	int r;

	if (!v->exit_pending)
		return 0;
	v->run->immediate_exit = 1;
	r = vcpu_run(v);
	v->run->immediate_exit = old;
	if (r == 0)
		return -EIO;	/* an exit: something was still pending */
	return r == -EINTR ? 0 : r;
}

static int get(struct vcpu *v, unsigned long req, void *arg)
{
	return ioctl_retry(v->fd, req, arg) < 0 ? -errno : 0;
}

int vcpu_save_state(struct vcpu *v, struct vcpu_state *s)
{
	struct vm *vm = v->vm;
	struct msrs m;
	uint32_t i;
	int r;

	memset(s, 0, sizeof(*s));
	s->idx = v->idx;
	r = vcpu_complete_io(v);
	if (r)
		return r;
	/* MP state first: reading it lets KVM process pending INIT/SIPI. */
	r = get(v, KVM_GET_MP_STATE, &s->mp_state);
	if (!r)
		r = get(v, KVM_GET_REGS, &s->regs);
	if (!r)
		r = get(v, KVM_GET_SREGS, &s->sregs);
	if (r)
		return r;
	s->xsave_size = vm->xsave_size;
	s->xsave = calloc(1, s->xsave_size);
	if (!s->xsave)
		return -ENOMEM;
	r = get(v, vm->xsave2 ? KVM_GET_XSAVE2 : KVM_GET_XSAVE, s->xsave);
	if (!r && vm->xcr0)
		r = get(v, KVM_GET_XCRS, &s->xcrs);
	if (!r)
		r = get(v, KVM_GET_LAPIC, &s->lapic);
	if (!r)
		r = get(v, KVM_GET_VCPU_EVENTS, &s->events);
	if (!r)
		r = get(v, KVM_GET_DEBUGREGS, &s->debugregs);
	if (r)
		goto err;
	memset(&m, 0, sizeof(m));
	m.hdr.nmsrs = vm->nr_msrs;
	for (i = 0; i < vm->nr_msrs; i++)
		m.e[i].index = vm->msr_index[i];
	r = ioctl_retry(v->fd, KVM_GET_MSRS, &m);
	if (r != (int)vm->nr_msrs) {
		r = r < 0 ? -errno : -EIO;
		goto err;
	}
	s->nr_msrs = vm->nr_msrs;
	memcpy(s->msrs, m.e, s->nr_msrs * sizeof(m.e[0]));
	return 0;
err:
	vcpu_state_release(s);
	return r;
}

void vcpu_state_release(struct vcpu_state *s)
{
	free(s->xsave);
	s->xsave = NULL;
}

/* Sets the saved MSRs but the TSC deadline, or only it; in saved order. */
static int set_msrs(struct vcpu *v, const struct vcpu_state *s, bool deadline)
{
	struct msrs m;
	uint32_t i;
	int r;

	memset(&m, 0, sizeof(m));
	for (i = 0; i < s->nr_msrs; i++)
		if ((s->msrs[i].index == MSR_IA32_TSC_DEADLINE) == deadline)
			m.e[m.hdr.nmsrs++] = s->msrs[i];
	if (!m.hdr.nmsrs)
		return 0;
	r = ioctl_retry(v->fd, KVM_SET_MSRS, &m);
	if (r == (int)m.hdr.nmsrs)
		return 0;
	if (r >= 0)
		fprintf(stderr, "vmm: vcpu %u: KVM_SET_MSRS refused MSR %#x\n", v->idx,
			m.e[r].index);
	return r < 0 ? -errno : -EIO;
}

/* What the destination can take; refused before anything is changed. */
static int check_vcpu_state(struct vcpu *v, const struct vcpu_state *s)
{
	struct vm *vm = v->vm;
	uint32_t i, j;

	/* The APIC ID (CPUID, LAPIC) is the vCPU index. */
	if (s->idx != v->idx)
		return -EINVAL;
	if (!s->xsave || s->xsave_size < sizeof(struct kvm_xsave) || s->xsave_size > vm->xsave_size)
		return -EINVAL;
	if (s->nr_msrs > VCPU_MAX_MSRS)
		return -EINVAL;
	for (i = 0; i < s->nr_msrs; i++) {
		for (j = 0; j < vm->nr_msrs; j++)
			if (s->msrs[i].index == vm->msr_index[j])
				break;
		if (j == vm->nr_msrs)
			return -EOPNOTSUPP;	/* an MSR this KVM cannot take */
		if (s->msrs[i].reserved)
			return -EINVAL;
	}
	if (s->xcrs.nr_xcrs > KVM_MAX_XCRS || s->xcrs.flags)
		return -EINVAL;
	return 0;
}

int vcpu_restore_state(struct vcpu *v, const struct vcpu_state *s)
{
	struct vm *vm = v->vm;
	struct kvm_vcpu_events events;
	struct kvm_xsave *xsave;
	int r;

	r = check_vcpu_state(v, s);
	if (r)
		return r;
	/* KVM_SET_XSAVE reads as many bytes as this KVM's XSAVE2 size. */
	xsave = calloc(1, vm->xsave_size);
	if (!xsave)
		return -ENOMEM;
	memcpy(xsave, s->xsave, s->xsave_size);

	/*
	 * 1. sregs: CR0/CR4/EFER decide what the rest may be (CR4.OSXSAVE for
	 * XCR0, long mode for the syscall MSRs), and APIC base puts the LAPIC
	 * in x2APIC mode before its registers and MSRs are loaded.
	 */
	r = get(v, KVM_SET_SREGS, (void *)&s->sregs);
	/*
	 * 2. MSRs, TSC among them: vm_restore_state() set the TSC rate
	 * before, so the TSC offset KVM computes here is final.  Not the TSC
	 * deadline: KVM_SET_LAPIC would cancel it (step 5).
	 */
	if (!r)
		r = set_msrs(v, s, false);
	/* 3. XCR0 enables the components the XSAVE image then fills. */
	if (!r && s->xcrs.nr_xcrs)
		r = get(v, KVM_SET_XCRS, (void *)&s->xcrs);
	if (!r)
		r = get(v, KVM_SET_XSAVE, xsave);
	/* 4. regs (this drops any pending exception: events restore it). */
	if (!r)
		r = get(v, KVM_SET_REGS, (void *)&s->regs);
	/* 5. LAPIC after APIC base; it cancels and restarts the APIC timer... */
	if (!r)
		r = get(v, KVM_SET_LAPIC, (void *)&s->lapic);
	/* ...so the TSC deadline (the timer's expiry) comes after it. */
	if (!r)
		r = set_msrs(v, s, true);
	/* 6. MP state after the LAPIC, which holds pending INIT/SIPI. */
	if (!r)
		r = get(v, KVM_SET_MP_STATE, (void *)&s->mp_state);
	if (!r)
		r = get(v, KVM_SET_DEBUGREGS, (void *)&s->debugregs);
	/*
	 * 7. Events last: the setters above clear or recompute pending
	 * exceptions and interrupts; these carry the injected ones, NMI
	 * state and the interrupt shadow.
	 */
	if (!r) {
		events = s->events;
		events.flags |= KVM_VCPUEVENT_VALID_NMI_PENDING | KVM_VCPUEVENT_VALID_SIPI_VECTOR;
		r = get(v, KVM_SET_VCPU_EVENTS, &events);
	}
	free(xsave);
	return r;
}

int vm_save_state(struct vm *vm, struct vm_state *s)
{
	int r;

	memset(s, 0, sizeof(*s));
	s->nr_vcpus = vm->nr_vcpus;
	s->mem_size = vm->mem_size;
	s->tsc_khz = vm->tsc_khz;
	s->pic[0].chip_id = KVM_IRQCHIP_PIC_MASTER;
	s->pic[1].chip_id = KVM_IRQCHIP_PIC_SLAVE;
	s->ioapic.chip_id = KVM_IRQCHIP_IOAPIC;
	r = ioctl_retry(vm->fd, KVM_GET_CLOCK, &s->clock);
	if (!r)
		r = ioctl_retry(vm->fd, KVM_GET_IRQCHIP, &s->pic[0]);
	if (!r)
		r = ioctl_retry(vm->fd, KVM_GET_IRQCHIP, &s->pic[1]);
	if (!r)
		r = ioctl_retry(vm->fd, KVM_GET_IRQCHIP, &s->ioapic);
	return r < 0 ? -errno : 0;
}

static int set_tsc_khz(struct vm *vm, uint64_t khz)
{
	unsigned int i;

	if (!khz || khz == vm->tsc_khz)
		return 0;
	if (vm_check_cap(vm, KVM_CAP_TSC_CONTROL) <= 0)
		return -EOPNOTSUPP;
	for (i = 0; i < vm->nr_vcpus; i++)
		if (ioctl_retry(vm->vcpus[i]->fd, KVM_SET_TSC_KHZ, (void *)(unsigned long)khz) < 0)
			return -errno;
	vm->tsc_khz = khz;
	return 0;
}

int vm_restore_state(struct vm *vm, const struct vm_state *s)
{
	int r;

	if (s->nr_vcpus != vm->nr_vcpus || s->mem_size != vm->mem_size)
		return -EINVAL;
	if (s->pic[0].chip_id != KVM_IRQCHIP_PIC_MASTER ||
	    s->pic[1].chip_id != KVM_IRQCHIP_PIC_SLAVE || s->ioapic.chip_id != KVM_IRQCHIP_IOAPIC)
		return -EINVAL;
	/* The TSC rate first: vCPU TSC values are restored against it. */
	r = set_tsc_khz(vm, s->tsc_khz);
	if (r)
		return r;
	r = ioctl_retry(vm->fd, KVM_SET_IRQCHIP, (void *)&s->pic[0]);
	if (!r)
		r = ioctl_retry(vm->fd, KVM_SET_IRQCHIP, (void *)&s->pic[1]);
	if (!r)
		r = ioctl_retry(vm->fd, KVM_SET_IRQCHIP, (void *)&s->ioapic);
	/* With KVM_CLOCK_REALTIME set, KVM adds the time since the save. */
	if (!r)
		r = ioctl_retry(vm->fd, KVM_SET_CLOCK, (void *)&s->clock);
	return r < 0 ? -errno : 0;
}
