// SPDX-License-Identifier: GPL-2.0
/*
 * CPU setup: CPUID from KVM_GET_SUPPORTED_CPUID, the XSAVE size, and the
 * direct boot: long mode set up by the VMM (no firmware, no loader): GDT,
 * TSS, IDT, identity page tables with 2 MiB pages (built by the same code
 * the guest runs in a multiboot boot, guest_abi.h), CR0/CR4/EFER, XCR0,
 * x2APIC; then the payload and the mailbox, and every vCPU at the payload's
 * entry point.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>

#include "vmm/vmm.h"
#include "vmm/vmm_int.h"

#define CR0_PE		(1ULL << 0)
#define CR0_MP		(1ULL << 1)
#define CR0_ET		(1ULL << 4)
#define CR0_NE		(1ULL << 5)
#define CR0_WP		(1ULL << 16)
#define CR0_PG		(1ULL << 31)
#define CR4_PAE		(1ULL << 5)
#define CR4_OSFXSR	(1ULL << 9)
#define CR4_OSXMMEXCPT	(1ULL << 10)
#define CR4_OSXSAVE	(1ULL << 18)
#define EFER_LME	(1ULL << 8)
#define EFER_LMA	(1ULL << 10)

#define APIC_BASE_BSP		(1ULL << 8)
#define APIC_BASE_X2APIC	(1ULL << 10)
#define APIC_BASE_ENABLE	(1ULL << 11)
#define APIC_DEFAULT_BASE	0xfee00000ULL

#define CPUID_1_ECX_X2APIC	(1U << 21)
#define CPUID_1_ECX_TSC_DEADLINE (1U << 24)
#define CPUID_1_ECX_XSAVE	(1U << 26)
#define CPUID_1_ECX_AVX		(1U << 28)

#define XFEATURE_X87	(1ULL << 0)
#define XFEATURE_SSE	(1ULL << 1)
#define XFEATURE_YMM	(1ULL << 2)

static struct kvm_cpuid_entry2 *cpuid_find(struct kvm_cpuid2 *c, uint32_t fn, uint32_t index)
{
	uint32_t i;

	for (i = 0; i < c->nent; i++)
		if (c->entries[i].function == fn &&
		    (!(c->entries[i].flags & KVM_CPUID_FLAG_SIGNIFCANT_INDEX) ||
		     c->entries[i].index == index))
			return &c->entries[i];
	return NULL;
}

static int get_supported_cpuid(struct vm *vm)
{
	uint32_t nent = 128;

	for (;;) {
		struct kvm_cpuid2 *c = calloc(1, sizeof(*c) + nent * sizeof(c->entries[0]));

		if (!c)
			return -ENOMEM;
		c->nent = nent;
		if (ioctl_retry(vm->kvm_fd, KVM_GET_SUPPORTED_CPUID, c) == 0) {
			vm->cpuid = c;
			return 0;
		}
		free(c);
		if (errno != E2BIG || nent >= 4096)
			return -errno;
		nent *= 2;
	}
}

int cpu_init_vm(struct vm *vm)
{
	struct kvm_cpuid_entry2 *e1, *ed;
	int r;

	r = get_supported_cpuid(vm);
	if (r)
		return r;
	e1 = cpuid_find(vm->cpuid, 1, 0);
	ed = cpuid_find(vm->cpuid, 0xd, 0);
	if (!e1)
		return -EOPNOTSUPP;
	/*
	 * KVM emulates the TSC-deadline timer but leaves the CPUID bit to
	 * userspace (KVM_CAP_TSC_DEADLINE_TIMER).  The guest sleeps on it,
	 * programmed through x2APIC MSRs.
	 */
	if (vm_check_cap(vm, KVM_CAP_TSC_DEADLINE_TIMER) > 0)
		e1->ecx |= CPUID_1_ECX_TSC_DEADLINE;
	if ((e1->ecx & CPUID_1_ECX_TSC_DEADLINE) && (e1->ecx & CPUID_1_ECX_X2APIC))
		vm->features |= GUEST_F_TSC_DEADLINE;
	if (e1->ecx & CPUID_1_ECX_XSAVE && ed) {
		vm->xcr0 = XFEATURE_X87 | XFEATURE_SSE;
		if ((e1->ecx & CPUID_1_ECX_AVX) && (ed->eax & XFEATURE_YMM)) {
			vm->xcr0 |= XFEATURE_YMM;
			vm->features |= GUEST_F_AVX;
		}
	}
	/* KVM_CAP_XSAVE2 on the VM: the size of KVM_GET_XSAVE2's buffer. */
	r = vm_check_cap(vm, KVM_CAP_XSAVE2);
	vm->xsave2 = r > 0;
	vm->xsave_size = r > (int)sizeof(struct kvm_xsave) ? (uint32_t)r : sizeof(struct kvm_xsave);
	return 0;
}

int cpu_init_vcpu(struct vcpu *v)
{
	struct kvm_cpuid2 *src = v->vm->cpuid, *c;
	size_t size = sizeof(*src) + src->nent * sizeof(src->entries[0]);
	uint32_t i;
	long khz;
	int r = 0;

	c = malloc(size);
	if (!c)
		return -ENOMEM;
	memcpy(c, src, size);
	/* The APIC ID is the vCPU index; KVM's supported table leaves it 0. */
	for (i = 0; i < c->nent; i++) {
		struct kvm_cpuid_entry2 *e = &c->entries[i];

		if (e->function == 1)
			e->ebx = (e->ebx & 0x00ffffff) | (v->idx << 24);
		else if (e->function == 0xb || e->function == 0x1f)
			e->edx = v->idx;
	}
	/* Before anything else: KVM checks CR4, XCR0 and MSRs against it. */
	if (ioctl_retry(v->fd, KVM_SET_CPUID2, c) < 0)
		r = -errno;
	free(c);
	if (r || v->idx)
		return r;
	khz = ioctl_retry(v->fd, KVM_GET_TSC_KHZ, 0);
	v->vm->tsc_khz = khz > 0 ? (uint64_t)khz : 0;
	return 0;
}

int vmm_build_page_tables(uint8_t *low, uint64_t mem_size)
{
	if (guest_build_page_tables((uint64_t *)(low + GUEST_PML4_GPA),
				    (uint64_t *)(low + GUEST_PDPT_GPA),
				    (uint64_t *)(low + GUEST_PD_GPA), mem_size))
		return -EINVAL;
	return 0;
}

int vmm_payload_check(const void *image, size_t size, const struct guest_payload_hdr **out)
{
	const struct guest_payload_hdr *h = image;
	uint64_t end;
	unsigned int i;

	if (size < sizeof(*h))
		return -ENOEXEC;
	if (h->magic != GUEST_PAYLOAD_MAGIC || h->abi_version != GUEST_ABI_VERSION ||
	    h->base != GUEST_CODE_BASE)
		return -ENOEXEC;
	if (h->end < h->base + size || h->end - h->base > GUEST_CODE_MAX)
		return -E2BIG;
	end = h->base + size;
	if (h->entry < h->base || h->entry >= end || h->exc_table < h->base ||
	    h->exc_table + 32 * sizeof(uint64_t) > end ||
	    h->timer_handler < h->base || h->timer_handler >= end ||
	    h->spurious_handler < h->base || h->spurious_handler >= end)
		return -ENOEXEC;
	for (i = 0; i < 32; i++) {
		uint64_t a;

		memcpy(&a, (const uint8_t *)image + (h->exc_table - h->base) + i * 8, 8);
		if (a < h->base || a >= end)
			return -ENOEXEC;
	}
	if (out)
		*out = h;
	return (int)size;
}

static void build_tables(struct vm *vm, const struct guest_payload_hdr *h)
{
	uint64_t exc[32];

	/* The TSS busy: TR is loaded through KVM_SET_SREGS, not ltr. */
	guest_build_gdt((uint64_t *)(vm->mem + GUEST_GDT_GPA), 1);
	memset(vm->mem + GUEST_TSS_GPA, 0, GUEST_PAGE_SIZE);
	memcpy(exc, vm->mem + h->exc_table, sizeof(exc));
	guest_build_idt((uint64_t *)(vm->mem + GUEST_IDT_GPA), exc, h->timer_handler,
			h->spurious_handler);
}

static void seg(struct kvm_segment *s, uint16_t sel, uint8_t type, bool code)
{
	memset(s, 0, sizeof(*s));
	s->selector = sel;
	s->limit = 0xffffffff;
	s->type = type;
	s->present = 1;
	s->s = 1;
	s->g = 1;
	s->l = code;
	s->db = !code;
}

int cpu_reset_vcpu(struct vcpu *v)
{
	const struct guest_payload_hdr *h = (const void *)(v->vm->mem + GUEST_CODE_BASE);
	struct vm *vm = v->vm;
	struct kvm_mp_state mp = { .mp_state = KVM_MP_STATE_RUNNABLE };
	struct kvm_sregs sregs;
	struct kvm_regs regs;

	if (ioctl_retry(v->fd, KVM_GET_SREGS, &sregs) < 0)
		return -errno;
	sregs.cr0 = CR0_PE | CR0_MP | CR0_ET | CR0_NE | CR0_WP | CR0_PG;
	sregs.cr4 = CR4_PAE | CR4_OSFXSR | CR4_OSXMMEXCPT | (vm->xcr0 ? CR4_OSXSAVE : 0);
	sregs.efer = EFER_LME | EFER_LMA;
	sregs.cr3 = GUEST_PML4_GPA;
	seg(&sregs.cs, GUEST_SEL_CODE, 0xb, true);
	seg(&sregs.ds, GUEST_SEL_DATA, 0x3, false);
	sregs.es = sregs.fs = sregs.gs = sregs.ss = sregs.ds;
	memset(&sregs.tr, 0, sizeof(sregs.tr));
	sregs.tr.selector = GUEST_SEL_TSS;
	sregs.tr.base = GUEST_TSS_GPA;
	sregs.tr.limit = 0x67;
	sregs.tr.type = 0xb;
	sregs.tr.present = 1;
	memset(&sregs.ldt, 0, sizeof(sregs.ldt));
	sregs.ldt.unusable = 1;
	sregs.gdt.base = GUEST_GDT_GPA;
	sregs.gdt.limit = GUEST_GDT_LIMIT;
	sregs.idt.base = GUEST_IDT_GPA;
	sregs.idt.limit = GUEST_IDT_LIMIT;
	if (vm->features & GUEST_F_TSC_DEADLINE)
		sregs.apic_base = APIC_DEFAULT_BASE | APIC_BASE_ENABLE | APIC_BASE_X2APIC |
				  (v->idx ? 0 : APIC_BASE_BSP);
	if (ioctl_retry(v->fd, KVM_SET_SREGS, &sregs) < 0)
		return -errno;
	/* KVM checks XCR0 against the guest's CPUID leaf 0xd, set at creation. */
	if (vm->xcr0) {
		struct kvm_xcrs xcrs = { .nr_xcrs = 1, .xcrs[0] = { .xcr = 0, .value = vm->xcr0 } };

		if (ioctl_retry(v->fd, KVM_SET_XCRS, &xcrs) < 0)
			return -errno;
	}
	memset(&regs, 0, sizeof(regs));
	regs.rip = h->entry;
	regs.rsp = GUEST_STACK_BASE + (v->idx + 1) * GUEST_STACK_SIZE;
	regs.rdi = v->idx;
	regs.rflags = 0x2;
	if (ioctl_retry(v->fd, KVM_SET_REGS, &regs) < 0)
		return -errno;
	/* With the in-kernel LAPIC, APs start waiting for INIT/SIPI. */
	if (ioctl_retry(v->fd, KVM_SET_MP_STATE, &mp) < 0)
		return -errno;
	v->posted_seq = 0;
	return 0;
}

int vm_load_guest(struct vm *vm)
{
	const struct guest_payload_hdr *h;
	struct guest_mailbox *mb = vm->mb;
	struct vmm_image img;
	unsigned int i;
	int r;

	/* The whole low area is ours: start it from zero (bss included). */
	memset(vm->mem, 0, GUEST_WORK_BASE);
	r = vmm_image_load(vmm_guest_image_start, vmm_guest_image_end - vmm_guest_image_start,
			   vm->mem, vm->mem_size, &img, NULL);
	if (r)
		return r;
	if (img.lo != GUEST_CODE_BASE)
		return -ENOEXEC;
	r = vmm_payload_check(vm->mem + GUEST_CODE_BASE, img.file_end - GUEST_CODE_BASE, &h);
	if (r < 0)
		return r;
	build_tables(vm, h);
	r = vmm_build_page_tables(vm->mem, vm->mem_size);
	if (r)
		return r;
	mb->magic = GUEST_MAILBOX_MAGIC;
	mb->abi_version = GUEST_ABI_VERSION;
	mb->nr_vcpus = vm->nr_vcpus;
	/* Progress on the debug console only where someone reads it: each byte is an exit. */
	mb->features = vm->features | (vm->debugcon_fd >= 0 ? GUEST_F_DEBUGCON : 0);
	mb->boot = GUEST_BOOT_DIRECT;
	mb->tsc_khz = vm->tsc_khz;
	mb->mem_size = vm->mem_size;
	mb->work_pages = vm_work_pages(vm);
	for (i = 0; i < vm->nr_vcpus; i++) {
		r = cpu_reset_vcpu(vm->vcpus[i]);
		if (r)
			return r;
	}
	return 0;
}
