// SPDX-License-Identifier: GPL-2.0
/*
 * VCPU_STATE and VM_STATE: KVM's UAPI structs written field by field, in
 * the order Documentation/protocol.rst lists.  Padding and reserved fields
 * are never sent and decode as zero; flags KVM would reject are rejected
 * here already, on both sides.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "vmm/vmm.h"
#include "wire/internal.h"

#ifndef KVM_VCPUEVENT_VALID_PAYLOAD
#define KVM_VCPUEVENT_VALID_PAYLOAD	0x00000010
#endif
#ifndef KVM_VCPUEVENT_VALID_TRIPLE_FAULT
#define KVM_VCPUEVENT_VALID_TRIPLE_FAULT 0x00000020
#endif
#ifndef KVM_CLOCK_REALTIME
#define KVM_CLOCK_REALTIME		(1 << 2)
#endif
#ifndef KVM_CLOCK_HOST_TSC
#define KVM_CLOCK_HOST_TSC		(1 << 3)
#endif

#define EVENTS_FLAGS	(KVM_VCPUEVENT_VALID_NMI_PENDING | KVM_VCPUEVENT_VALID_SIPI_VECTOR | \
			 KVM_VCPUEVENT_VALID_SHADOW | KVM_VCPUEVENT_VALID_SMM | \
			 KVM_VCPUEVENT_VALID_PAYLOAD | KVM_VCPUEVENT_VALID_TRIPLE_FAULT)
#define CLOCK_FLAGS	(KVM_CLOCK_TSC_STABLE | KVM_CLOCK_REALTIME | KVM_CLOCK_HOST_TSC)
#define MP_STATE_MAX	10	/* KVM_MP_STATE_SUSPENDED */

_Static_assert(VCPU_MAX_MSRS <= WIRE_MAX_MSRS, "MSR list bound");
_Static_assert(sizeof(struct kvm_xsave) <= WIRE_MAX_XSAVE, "xsave bound");

static bool vcpu_state_valid(const struct vcpu_state *st)
{
	return st->xcrs.nr_xcrs <= KVM_MAX_XCRS && !st->xcrs.flags &&
	       !(st->events.flags & ~EVENTS_FLAGS) && !st->debugregs.flags &&
	       st->mp_state.mp_state <= MP_STATE_MAX && st->nr_msrs <= VCPU_MAX_MSRS &&
	       st->xsave && st->xsave_size >= sizeof(struct kvm_xsave) &&
	       st->xsave_size <= WIRE_MAX_XSAVE;
}

static void put_seg(struct wbuf *w, const struct kvm_segment *sg)
{
	wb_u64(w, sg->base);
	wb_u32(w, sg->limit);
	wb_u16(w, sg->selector);
	wb_u8(w, sg->type);
	wb_u8(w, sg->present);
	wb_u8(w, sg->dpl);
	wb_u8(w, sg->db);
	wb_u8(w, sg->s);
	wb_u8(w, sg->l);
	wb_u8(w, sg->g);
	wb_u8(w, sg->avl);
	wb_u8(w, sg->unusable);
}

static void get_seg(struct rbuf *r, struct kvm_segment *sg)
{
	sg->base = rb_u64(r);
	sg->limit = rb_u32(r);
	sg->selector = rb_u16(r);
	sg->type = rb_u8(r);
	sg->present = rb_u8(r);
	sg->dpl = rb_u8(r);
	sg->db = rb_u8(r);
	sg->s = rb_u8(r);
	sg->l = rb_u8(r);
	sg->g = rb_u8(r);
	sg->avl = rb_u8(r);
	sg->unusable = rb_u8(r);
}

static void put_dt(struct wbuf *w, const struct kvm_dtable *dt)
{
	wb_u64(w, dt->base);
	wb_u16(w, dt->limit);
}

static void get_dt(struct rbuf *r, struct kvm_dtable *dt)
{
	dt->base = rb_u64(r);
	dt->limit = rb_u16(r);
}

static void put_regs(struct wbuf *w, const struct kvm_regs *g)
{
	const uint64_t v[] = { g->rax, g->rbx, g->rcx, g->rdx, g->rsi, g->rdi, g->rsp, g->rbp,
			       g->r8, g->r9, g->r10, g->r11, g->r12, g->r13, g->r14, g->r15,
			       g->rip, g->rflags };

	for (size_t i = 0; i < sizeof(v) / sizeof(v[0]); i++)
		wb_u64(w, v[i]);
}

static void get_regs(struct rbuf *r, struct kvm_regs *g)
{
	__u64 *v[] = { &g->rax, &g->rbx, &g->rcx, &g->rdx, &g->rsi, &g->rdi, &g->rsp, &g->rbp,
		       &g->r8, &g->r9, &g->r10, &g->r11, &g->r12, &g->r13, &g->r14, &g->r15,
		       &g->rip, &g->rflags };

	for (size_t i = 0; i < sizeof(v) / sizeof(v[0]); i++)
		*v[i] = rb_u64(r);
}

static void put_sregs(struct wbuf *w, const struct kvm_sregs *sr)
{
	const struct kvm_segment *segs[] = { &sr->cs, &sr->ds, &sr->es, &sr->fs, &sr->gs,
					     &sr->ss, &sr->tr, &sr->ldt };

	for (size_t i = 0; i < 8; i++)
		put_seg(w, segs[i]);
	put_dt(w, &sr->gdt);
	put_dt(w, &sr->idt);
	wb_u64(w, sr->cr0);
	wb_u64(w, sr->cr2);
	wb_u64(w, sr->cr3);
	wb_u64(w, sr->cr4);
	wb_u64(w, sr->cr8);
	wb_u64(w, sr->efer);
	wb_u64(w, sr->apic_base);
	for (size_t i = 0; i < sizeof(sr->interrupt_bitmap) / 8; i++)
		wb_u64(w, sr->interrupt_bitmap[i]);
}

static void get_sregs(struct rbuf *r, struct kvm_sregs *sr)
{
	struct kvm_segment *segs[] = { &sr->cs, &sr->ds, &sr->es, &sr->fs, &sr->gs,
				       &sr->ss, &sr->tr, &sr->ldt };

	for (size_t i = 0; i < 8; i++)
		get_seg(r, segs[i]);
	get_dt(r, &sr->gdt);
	get_dt(r, &sr->idt);
	sr->cr0 = rb_u64(r);
	sr->cr2 = rb_u64(r);
	sr->cr3 = rb_u64(r);
	sr->cr4 = rb_u64(r);
	sr->cr8 = rb_u64(r);
	sr->efer = rb_u64(r);
	sr->apic_base = rb_u64(r);
	for (size_t i = 0; i < sizeof(sr->interrupt_bitmap) / 8; i++)
		sr->interrupt_bitmap[i] = rb_u64(r);
}

static void put_events(struct wbuf *w, const struct kvm_vcpu_events *e)
{
	wb_u8(w, e->exception.injected);
	wb_u8(w, e->exception.nr);
	wb_u8(w, e->exception.has_error_code);
	wb_u8(w, e->exception.pending);
	wb_u32(w, e->exception.error_code);
	wb_u8(w, e->interrupt.injected);
	wb_u8(w, e->interrupt.nr);
	wb_u8(w, e->interrupt.soft);
	wb_u8(w, e->interrupt.shadow);
	wb_u8(w, e->nmi.injected);
	wb_u8(w, e->nmi.pending);
	wb_u8(w, e->nmi.masked);
	wb_u32(w, e->sipi_vector);
	wb_u32(w, e->flags);
	wb_u8(w, e->smi.smm);
	wb_u8(w, e->smi.pending);
	wb_u8(w, e->smi.smm_inside_nmi);
	wb_u8(w, e->smi.latched_init);
	wb_u8(w, e->triple_fault.pending);
	wb_u8(w, e->exception_has_payload);
	wb_u64(w, e->exception_payload);
}

static void get_events(struct rbuf *r, struct kvm_vcpu_events *e)
{
	e->exception.injected = rb_u8(r);
	e->exception.nr = rb_u8(r);
	e->exception.has_error_code = rb_u8(r);
	e->exception.pending = rb_u8(r);
	e->exception.error_code = rb_u32(r);
	e->interrupt.injected = rb_u8(r);
	e->interrupt.nr = rb_u8(r);
	e->interrupt.soft = rb_u8(r);
	e->interrupt.shadow = rb_u8(r);
	e->nmi.injected = rb_u8(r);
	e->nmi.pending = rb_u8(r);
	e->nmi.masked = rb_u8(r);
	e->sipi_vector = rb_u32(r);
	e->flags = rb_u32(r);
	e->smi.smm = rb_u8(r);
	e->smi.pending = rb_u8(r);
	e->smi.smm_inside_nmi = rb_u8(r);
	e->smi.latched_init = rb_u8(r);
	e->triple_fault.pending = rb_u8(r);
	e->exception_has_payload = rb_u8(r);
	e->exception_payload = rb_u64(r);
}

ssize_t wire_enc_vcpu_state(struct wire_stream *s, void *buf, size_t cap,
			    const struct vcpu_state *st)
{
	struct wbuf w;
	int ret;

	if (st->idx >= WIRE_MAX_VCPUS || !vcpu_state_valid(st))
		return -EINVAL;
	ret = wire_msg_start(s, WIRE_VCPU_STATE, buf, cap, &w);
	if (ret)
		return ret;
	wb_u32(&w, st->idx);
	wb_u32(&w, 0);
	put_regs(&w, &st->regs);
	put_sregs(&w, &st->sregs);
	wb_u32(&w, st->xcrs.nr_xcrs);
	wb_u32(&w, st->xcrs.flags);
	for (uint32_t i = 0; i < st->xcrs.nr_xcrs; i++) {
		wb_u32(&w, st->xcrs.xcrs[i].xcr);
		wb_u64(&w, st->xcrs.xcrs[i].value);
	}
	wb_bytes(&w, st->lapic.regs, sizeof(st->lapic.regs));
	put_events(&w, &st->events);
	for (int i = 0; i < 4; i++)
		wb_u64(&w, st->debugregs.db[i]);
	wb_u64(&w, st->debugregs.dr6);
	wb_u64(&w, st->debugregs.dr7);
	wb_u64(&w, st->debugregs.flags);
	wb_u32(&w, st->mp_state.mp_state);
	wb_u32(&w, st->nr_msrs);
	for (uint32_t i = 0; i < st->nr_msrs; i++) {
		wb_u32(&w, st->msrs[i].index);
		wb_u64(&w, st->msrs[i].data);
	}
	/* The XSAVE standard format is architectural and little-endian. */
	wb_u32(&w, st->xsave_size);
	wb_bytes(&w, st->xsave, st->xsave_size);
	return wire_msg_finish(s, WIRE_VCPU_STATE, buf, &w);
}

int wire_dec_vcpu_state(const struct wire_hdr *h, const void *p, struct vcpu_state *out)
{
	struct vcpu_state v;
	const uint8_t *xsave;
	uint32_t rsvd;
	struct rbuf r;
	int ret;

	ret = wire_msg_begin(h, WIRE_VCPU_STATE, p, &r);
	if (ret)
		return ret;
	memset(&v, 0, sizeof(v));
	v.idx = rb_u32(&r);
	rsvd = rb_u32(&r);
	get_regs(&r, &v.regs);
	get_sregs(&r, &v.sregs);
	v.xcrs.nr_xcrs = rb_u32(&r);
	v.xcrs.flags = rb_u32(&r);
	if (r.bad || rsvd || v.idx >= WIRE_MAX_VCPUS || v.xcrs.nr_xcrs > KVM_MAX_XCRS)
		return -EBADMSG;
	for (uint32_t i = 0; i < v.xcrs.nr_xcrs; i++) {
		v.xcrs.xcrs[i].xcr = rb_u32(&r);
		v.xcrs.xcrs[i].value = rb_u64(&r);
	}
	rb_bytes(&r, v.lapic.regs, sizeof(v.lapic.regs));
	get_events(&r, &v.events);
	for (int i = 0; i < 4; i++)
		v.debugregs.db[i] = rb_u64(&r);
	v.debugregs.dr6 = rb_u64(&r);
	v.debugregs.dr7 = rb_u64(&r);
	v.debugregs.flags = rb_u64(&r);
	v.mp_state.mp_state = rb_u32(&r);
	v.nr_msrs = rb_u32(&r);
	if (r.bad || v.nr_msrs > VCPU_MAX_MSRS)
		return -EBADMSG;
	for (uint32_t i = 0; i < v.nr_msrs; i++) {
		v.msrs[i].index = rb_u32(&r);
		v.msrs[i].data = rb_u64(&r);
	}
	v.xsave_size = rb_u32(&r);
	if (r.bad || v.xsave_size < sizeof(struct kvm_xsave) || v.xsave_size > WIRE_MAX_XSAVE)
		return -EBADMSG;
	xsave = rb_take(&r, v.xsave_size);
	/* A stand-in pointer: validity only needs it non-NULL. */
	v.xsave = (struct kvm_xsave *)xsave;
	if (!rb_done(&r) || !vcpu_state_valid(&v))
		return -EBADMSG;
	v.xsave = malloc(v.xsave_size);
	if (!v.xsave)
		return -ENOMEM;
	memcpy(v.xsave, xsave, v.xsave_size);
	*out = v;
	return 0;
}

static void put_pic(struct wbuf *w, const struct kvm_pic_state *pic)
{
	const uint8_t v[] = { pic->last_irr, pic->irr, pic->imr, pic->isr, pic->priority_add,
			      pic->irq_base, pic->read_reg_select, pic->poll, pic->special_mask,
			      pic->init_state, pic->auto_eoi, pic->rotate_on_auto_eoi,
			      pic->special_fully_nested_mode, pic->init4, pic->elcr,
			      pic->elcr_mask };

	wb_bytes(w, v, sizeof(v));
}

static void get_pic(struct rbuf *r, struct kvm_pic_state *pic)
{
	uint8_t *v[] = { &pic->last_irr, &pic->irr, &pic->imr, &pic->isr, &pic->priority_add,
			 &pic->irq_base, &pic->read_reg_select, &pic->poll, &pic->special_mask,
			 &pic->init_state, &pic->auto_eoi, &pic->rotate_on_auto_eoi,
			 &pic->special_fully_nested_mode, &pic->init4, &pic->elcr,
			 &pic->elcr_mask };

	for (size_t i = 0; i < sizeof(v) / sizeof(v[0]); i++)
		*v[i] = rb_u8(r);
}

static bool vm_state_valid(const struct vm_state *st)
{
	return st->nr_vcpus && st->nr_vcpus <= WIRE_MAX_VCPUS && st->mem_size &&
	       !(st->clock.flags & ~CLOCK_FLAGS) &&
	       st->pic[0].chip_id == KVM_IRQCHIP_PIC_MASTER &&
	       st->pic[1].chip_id == KVM_IRQCHIP_PIC_SLAVE &&
	       st->ioapic.chip_id == KVM_IRQCHIP_IOAPIC;
}

ssize_t wire_enc_vm_state(struct wire_stream *s, void *buf, size_t cap, const struct vm_state *st)
{
	const struct kvm_ioapic_state *io = &st->ioapic.chip.ioapic;
	struct wbuf w;
	int ret;

	if (!vm_state_valid(st))
		return -EINVAL;
	ret = wire_msg_start(s, WIRE_VM_STATE, buf, cap, &w);
	if (ret)
		return ret;
	wb_u32(&w, st->nr_vcpus);
	wb_u32(&w, 0);
	wb_u64(&w, st->mem_size);
	wb_u64(&w, st->clock.clock);
	wb_u32(&w, st->clock.flags);
	wb_u64(&w, st->clock.realtime);
	wb_u64(&w, st->clock.host_tsc);
	put_pic(&w, &st->pic[0].chip.pic);
	put_pic(&w, &st->pic[1].chip.pic);
	wb_u64(&w, io->base_address);
	wb_u32(&w, io->ioregsel);
	wb_u32(&w, io->id);
	wb_u32(&w, io->irr);
	for (int i = 0; i < KVM_IOAPIC_NUM_PINS; i++)
		wb_u64(&w, io->redirtbl[i].bits);
	wb_u64(&w, st->tsc_khz);
	return wire_msg_finish(s, WIRE_VM_STATE, buf, &w);
}

int wire_dec_vm_state(const struct wire_hdr *h, const void *p, struct vm_state *out)
{
	struct kvm_ioapic_state *io;
	struct vm_state v;
	uint32_t rsvd;
	struct rbuf r;
	int ret;

	ret = wire_msg_begin(h, WIRE_VM_STATE, p, &r);
	if (ret)
		return ret;
	memset(&v, 0, sizeof(v));
	io = &v.ioapic.chip.ioapic;
	v.nr_vcpus = rb_u32(&r);
	rsvd = rb_u32(&r);
	v.mem_size = rb_u64(&r);
	v.clock.clock = rb_u64(&r);
	v.clock.flags = rb_u32(&r);
	v.clock.realtime = rb_u64(&r);
	v.clock.host_tsc = rb_u64(&r);
	v.pic[0].chip_id = KVM_IRQCHIP_PIC_MASTER;
	get_pic(&r, &v.pic[0].chip.pic);
	v.pic[1].chip_id = KVM_IRQCHIP_PIC_SLAVE;
	get_pic(&r, &v.pic[1].chip.pic);
	v.ioapic.chip_id = KVM_IRQCHIP_IOAPIC;
	io->base_address = rb_u64(&r);
	io->ioregsel = rb_u32(&r);
	io->id = rb_u32(&r);
	io->irr = rb_u32(&r);
	for (int i = 0; i < KVM_IOAPIC_NUM_PINS; i++)
		io->redirtbl[i].bits = rb_u64(&r);
	v.tsc_khz = rb_u64(&r);
	if (!rb_done(&r) || rsvd || !vm_state_valid(&v))
		return -EBADMSG;
	*out = v;
	return 0;
}
