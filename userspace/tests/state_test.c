// SPDX-License-Identifier: GPL-2.0
/*
 * VCPU_STATE and VM_STATE: every KVM struct comes back byte for byte,
 * padding and reserved fields are not sent, and what KVM would reject is
 * rejected on both sides without touching the output.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

/* The 6.1 harness and its fixture macros define functions without prototypes. */
#pragma GCC diagnostic ignored "-Wmissing-prototypes"
#include "kselftest_harness.h"

#include "wire/proto.h"
#include "vmm/vmm.h"
#include "wire_util.h"

/* Body layout of VCPU_STATE (protocol.rst) with n xcrs and m MSRs. */
#define V_REGS		8
#define V_SREGS		(V_REGS + 18 * 8)
#define V_XCRS		(V_SREGS + 8 * 23 + 2 * 10 + 7 * 8 + 4 * 8)
#define V_LAPIC(n)	(V_XCRS + 8 + 12 * (n))
#define V_EVENTS(n)	(V_LAPIC(n) + 1024)
#define V_EV_FLAGS(n)	(V_EVENTS(n) + 19)
#define V_DEBUG(n)	(V_EVENTS(n) + 37)
#define V_MP(n)		(V_DEBUG(n) + 56)
#define V_MSRS(n)	(V_MP(n) + 4)
#define V_XSAVE(n, m)	(V_MSRS(n) + 4 + 12 * (m))
#define V_SIZE(n, m, x)	(V_XSAVE(n, m) + 4 + (x))

struct pair {
	struct wire_stream src, dst;
	uint8_t *buf, *c;
};

static void pair_open(struct pair *p)
{
	struct wire_hello hello;

	make_hello(&hello);
	p->buf = calloc(1, WIRE_MAX_MSG);
	p->c = calloc(1, WIRE_MAX_MSG);
	handshake(&p->src, &p->dst, &hello, &hello, p->buf);
}

static void pair_close(struct pair *p)
{
	free(p->buf);
	free(p->c);
}

/* Every field random, every padding and reserved byte zero. */
static void random_vcpu(struct vcpu_state *st, uint32_t xsave_size, uint64_t *seed)
{
	struct kvm_segment *segs[] = { &st->sregs.cs, &st->sregs.ds, &st->sregs.es,
				       &st->sregs.fs, &st->sregs.gs, &st->sregs.ss,
				       &st->sregs.tr, &st->sregs.ldt };

	memset(st, 0, sizeof(*st));
	rnd_fill(&st->regs, sizeof(st->regs), seed);
	rnd_fill(&st->sregs, sizeof(st->sregs), seed);
	for (int i = 0; i < 8; i++)
		segs[i]->padding = 0;
	memset(st->sregs.gdt.padding, 0, sizeof(st->sregs.gdt.padding));
	memset(st->sregs.idt.padding, 0, sizeof(st->sregs.idt.padding));
	st->xcrs.nr_xcrs = 1 + rnd_next(seed) % KVM_MAX_XCRS;
	for (uint32_t i = 0; i < st->xcrs.nr_xcrs; i++) {
		st->xcrs.xcrs[i].xcr = rnd_next(seed);
		st->xcrs.xcrs[i].value = rnd_next(seed);
	}
	rnd_fill(st->lapic.regs, sizeof(st->lapic.regs), seed);
	rnd_fill(&st->events, sizeof(st->events), seed);
	st->events.nmi.pad = 0;
	memset(st->events.reserved, 0, sizeof(st->events.reserved));
	st->events.flags = rnd_next(seed) & 0x3f;
	rnd_fill(&st->debugregs, sizeof(st->debugregs), seed);
	st->debugregs.flags = 0;
	memset(st->debugregs.reserved, 0, sizeof(st->debugregs.reserved));
	st->mp_state.mp_state = rnd_next(seed) % 11;
	st->nr_msrs = rnd_next(seed) % (VCPU_MAX_MSRS + 1);
	for (uint32_t i = 0; i < st->nr_msrs; i++) {
		st->msrs[i].index = rnd_next(seed);
		st->msrs[i].data = rnd_next(seed);
	}
	st->xsave_size = xsave_size;
	st->xsave = malloc(xsave_size);
	rnd_fill(st->xsave, xsave_size, seed);
}

static int vcpu_equal(const struct vcpu_state *a, const struct vcpu_state *b)
{
	return !memcmp(&a->regs, &b->regs, sizeof(a->regs)) &&
	       !memcmp(&a->sregs, &b->sregs, sizeof(a->sregs)) &&
	       !memcmp(&a->xcrs, &b->xcrs, sizeof(a->xcrs)) &&
	       !memcmp(&a->lapic, &b->lapic, sizeof(a->lapic)) &&
	       !memcmp(&a->events, &b->events, sizeof(a->events)) &&
	       !memcmp(&a->debugregs, &b->debugregs, sizeof(a->debugregs)) &&
	       !memcmp(&a->mp_state, &b->mp_state, sizeof(a->mp_state)) &&
	       a->nr_msrs == b->nr_msrs &&
	       !memcmp(a->msrs, b->msrs, sizeof(a->msrs)) &&
	       a->xsave_size == b->xsave_size &&
	       !memcmp(a->xsave, b->xsave, a->xsave_size);
}

TEST(vcpu_state_round_trip)
{
	static const uint32_t sizes[] = { 4096, 4096, 11008, WIRE_MAX_XSAVE };
	struct pair p;
	uint64_t seed = 42;

	pair_open(&p);
	for (int i = 0; i < 64; i++) {
		uint32_t xs = sizes[i % 4];
		struct vcpu_state in, out;
		struct wire_hdr h;
		ssize_t len;

		random_vcpu(&in, xs, &seed);
		in.idx = i;
		len = wire_enc_vcpu_state(&p.src, p.buf, WIRE_MAX_MSG, &in);
		/* Exactly the fields: no padding, no host struct. */
		ASSERT_EQ(WIRE_HDR_SIZE + V_SIZE(in.xcrs.nr_xcrs, in.nr_msrs, xs), len);
		ASSERT_EQ(0, recv_msg(&p.dst, p.buf, &h));
		memset(&out, 0xaa, sizeof(out));
		ASSERT_EQ(0, wire_dec_vcpu_state(&h, p.buf + WIRE_HDR_SIZE, &out));
		ASSERT_EQ(i, out.idx);
		ASSERT_TRUE(vcpu_equal(&in, &out)) TH_LOG("vcpu %d", i);
		free(in.xsave);
		free(out.xsave);
	}
	pair_close(&p);
}

TEST(vcpu_padding_not_sent)
{
	struct kvm_segment *segs[8];
	struct vcpu_state in, clean, out;
	struct pair p;
	struct wire_hdr h;
	uint64_t seed = 9;

	pair_open(&p);
	random_vcpu(&in, 4096, &seed);
	in.xcrs.nr_xcrs = 2;
	in.nr_msrs = 3;
	memset(&in.xcrs.xcrs[2], 0, sizeof(in.xcrs.xcrs) - 2 * sizeof(in.xcrs.xcrs[0]));
	memset(&in.msrs[3], 0, sizeof(in.msrs) - 3 * sizeof(in.msrs[0]));
	clean = in;
	/* Garbage wherever the wire has no field. */
	segs[0] = &in.sregs.cs, segs[1] = &in.sregs.ds, segs[2] = &in.sregs.es;
	segs[3] = &in.sregs.fs, segs[4] = &in.sregs.gs, segs[5] = &in.sregs.ss;
	segs[6] = &in.sregs.tr, segs[7] = &in.sregs.ldt;
	for (int i = 0; i < 8; i++)
		segs[i]->padding = 0x5a;
	memset(in.sregs.gdt.padding, 0x5a, sizeof(in.sregs.gdt.padding));
	in.xcrs.xcrs[0].reserved = 0x5a5a;
	in.xcrs.xcrs[5].value = 0x5a5a;		/* beyond nr_xcrs */
	memset(in.xcrs.padding, 0x5a, sizeof(in.xcrs.padding));
	in.events.nmi.pad = 0x5a;
	memset(in.events.reserved, 0x5a, sizeof(in.events.reserved));
	memset(in.debugregs.reserved, 0x5a, sizeof(in.debugregs.reserved));
	in.msrs[1].reserved = 0x5a;
	in.msrs[10].data = 0x5a;			/* beyond nr_msrs */

	ASSERT_LT(0, wire_enc_vcpu_state(&p.src, p.buf, WIRE_MAX_MSG, &in));
	ASSERT_EQ(0, recv_msg(&p.dst, p.buf, &h));
	ASSERT_EQ(0, wire_dec_vcpu_state(&h, p.buf + WIRE_HDR_SIZE, &out));
	ASSERT_TRUE(vcpu_equal(&clean, &out));
	free(in.xsave);
	free(out.xsave);
	pair_close(&p);
}

TEST(vcpu_state_rejects)
{
	struct vcpu_state in, bad, out;
	struct pair p;
	struct wire_hdr h;
	uint64_t seed = 5;
	ssize_t len;
	uint8_t *b;

	pair_open(&p);
	random_vcpu(&in, 4096, &seed);
	in.xcrs.nr_xcrs = 1;
	in.nr_msrs = 2;
	in.idx = 3;
	len = wire_enc_vcpu_state(&p.src, p.buf, WIRE_MAX_MSG, &in);
	ASSERT_EQ(WIRE_HDR_SIZE + V_SIZE(1, 2, 4096), len);
	b = p.c + WIRE_HDR_SIZE;

#define BAD_VCPU(stmt) do {							\
		memcpy(p.c, p.buf, len);					\
		stmt;								\
		reseal(p.c, msg_len(p.c));					\
		ASSERT_EQ(0, wire_hdr_parse(p.c, &h));				\
		memset(&out, 0xaa, sizeof(out));				\
		ASSERT_EQ(-EBADMSG, wire_dec_vcpu_state(&h, b, &out));		\
		ASSERT_EQ(0xaaaaaaaaaaaaaaaaull, out.regs.rax);			\
	} while (0)
	BAD_VCPU(put32(b, WIRE_MAX_VCPUS));
	BAD_VCPU(put32(b + 4, 1));					/* reserved */
	BAD_VCPU(put32(b + V_XCRS, KVM_MAX_XCRS + 1));
	BAD_VCPU(put32(b + V_XCRS, UINT32_MAX));
	BAD_VCPU(put32(b + V_XCRS + 4, 1));				/* xcrs flags */
	BAD_VCPU(put32(b + V_EV_FLAGS(1), 0x40));			/* unknown event flag */
	BAD_VCPU(put64(b + V_DEBUG(1) + 48, 1));			/* debugregs flags */
	BAD_VCPU(put32(b + V_MP(1), 11));				/* mp_state */
	BAD_VCPU(put32(b + V_MSRS(1), VCPU_MAX_MSRS + 1));
	BAD_VCPU(put32(b + V_MSRS(1), UINT32_MAX));
	BAD_VCPU(put32(b + V_XSAVE(1, 2), 4095));
	BAD_VCPU(put32(b + V_XSAVE(1, 2), 4097));			/* more than sent */
	BAD_VCPU(put32(b + V_XSAVE(1, 2), WIRE_MAX_XSAVE + 1));
	BAD_VCPU(put32(b + V_XSAVE(1, 2), UINT32_MAX));
#undef BAD_VCPU

	/* The encoder refuses the same. */
	bad = in;
	bad.events.flags = 0x80;
	ASSERT_EQ(-EINVAL, wire_enc_vcpu_state(&p.src, p.c, WIRE_MAX_MSG, &bad));
	bad = in;
	bad.nr_msrs = VCPU_MAX_MSRS + 1;
	ASSERT_EQ(-EINVAL, wire_enc_vcpu_state(&p.src, p.c, WIRE_MAX_MSG, &bad));
	bad = in;
	bad.xsave = NULL;
	ASSERT_EQ(-EINVAL, wire_enc_vcpu_state(&p.src, p.c, WIRE_MAX_MSG, &bad));
	bad = in;
	bad.xsave_size = 1024;
	ASSERT_EQ(-EINVAL, wire_enc_vcpu_state(&p.src, p.c, WIRE_MAX_MSG, &bad));
	bad = in;
	bad.idx = WIRE_MAX_VCPUS;
	ASSERT_EQ(-EINVAL, wire_enc_vcpu_state(&p.src, p.c, WIRE_MAX_MSG, &bad));
	ASSERT_EQ(-ENOSPC, wire_enc_vcpu_state(&p.src, p.c, len - 1, &in));
	free(in.xsave);
	pair_close(&p);
}

static void random_vm(struct vm_state *st, uint64_t *seed)
{
	struct kvm_ioapic_state *io = &st->ioapic.chip.ioapic;

	memset(st, 0, sizeof(*st));
	st->nr_vcpus = 1 + rnd_next(seed) % WIRE_MAX_VCPUS;
	st->mem_size = rnd_next(seed) | 1;
	st->clock.clock = rnd_next(seed);
	st->clock.flags = KVM_CLOCK_TSC_STABLE | KVM_CLOCK_REALTIME | KVM_CLOCK_HOST_TSC;
	st->clock.realtime = rnd_next(seed);
	st->clock.host_tsc = rnd_next(seed);
	st->pic[0].chip_id = KVM_IRQCHIP_PIC_MASTER;
	st->pic[1].chip_id = KVM_IRQCHIP_PIC_SLAVE;
	st->ioapic.chip_id = KVM_IRQCHIP_IOAPIC;
	rnd_fill(&st->pic[0].chip.pic, sizeof(st->pic[0].chip.pic), seed);
	rnd_fill(&st->pic[1].chip.pic, sizeof(st->pic[1].chip.pic), seed);
	io->base_address = rnd_next(seed);
	io->ioregsel = rnd_next(seed);
	io->id = rnd_next(seed);
	io->irr = rnd_next(seed);
	for (int i = 0; i < KVM_IOAPIC_NUM_PINS; i++)
		io->redirtbl[i].bits = rnd_next(seed);
	st->tsc_khz = rnd_next(seed);
}

TEST(vm_state_round_trip)
{
	struct vm_state in, clean, out;
	struct pair p;
	struct wire_hdr h;
	uint64_t seed = 77;
	ssize_t len;

	pair_open(&p);
	random_vm(&in, &seed);
	clean = in;
	/* Not on the wire: pads and the rest of each irqchip's union. */
	in.clock.pad0 = 0x5a;
	in.clock.pad[2] = 0x5a;
	in.pic[0].pad = 0x5a;
	in.pic[1].chip.dummy[400] = 0x5a;
	in.ioapic.chip.ioapic.pad = 0x5a;
	len = wire_enc_vm_state(&p.src, p.buf, WIRE_MAX_MSG, &in);
	ASSERT_EQ(WIRE_HDR_SIZE + 16 + 28 + 2 * 16 + 20 + 24 * 8 + 8, len);
	ASSERT_EQ(0, recv_msg(&p.dst, p.buf, &h));
	memset(&out, 0xaa, sizeof(out));
	ASSERT_EQ(0, wire_dec_vm_state(&h, p.buf + WIRE_HDR_SIZE, &out));
	ASSERT_EQ(0, memcmp(&clean.clock, &out.clock, sizeof(out.clock)));
	ASSERT_EQ(0, memcmp(&clean.pic, &out.pic, sizeof(out.pic)));
	ASSERT_EQ(0, memcmp(&clean.ioapic, &out.ioapic, sizeof(out.ioapic)));
	ASSERT_EQ(clean.tsc_khz, out.tsc_khz);
	ASSERT_EQ(clean.nr_vcpus, out.nr_vcpus);
	ASSERT_EQ(clean.mem_size, out.mem_size);

	/* Clock flags KVM does not know, no vCPUs, no memory, reserved. */
#define BAD_VM(off, put, val) do {						\
		memcpy(p.c, p.buf, len);					\
		put(p.c + WIRE_HDR_SIZE + (off), val);				\
		reseal(p.c, len - WIRE_HDR_SIZE);				\
		ASSERT_EQ(0, wire_hdr_parse(p.c, &h));				\
		memset(&out, 0xaa, sizeof(out));				\
		ASSERT_EQ(-EBADMSG, wire_dec_vm_state(&h, p.c + WIRE_HDR_SIZE, &out)); \
		ASSERT_EQ(0xaaaaaaaaaaaaaaaaull, out.tsc_khz);			\
	} while (0)
	BAD_VM(24, put32, 0x10);
	BAD_VM(0, put32, 0);
	BAD_VM(0, put32, WIRE_MAX_VCPUS + 1);
	BAD_VM(4, put32, 1);
	BAD_VM(8, put64, 0);
#undef BAD_VM
	in.clock.flags = 1;
	ASSERT_EQ(-EINVAL, wire_enc_vm_state(&p.src, p.c, WIRE_MAX_MSG, &in));
	in = clean;
	in.pic[1].chip_id = KVM_IRQCHIP_PIC_MASTER;
	ASSERT_EQ(-EINVAL, wire_enc_vm_state(&p.src, p.c, WIRE_MAX_MSG, &in));
	in = clean;
	in.nr_vcpus = 0;
	ASSERT_EQ(-EINVAL, wire_enc_vm_state(&p.src, p.c, WIRE_MAX_MSG, &in));
	pair_close(&p);
}

TEST_HARNESS_MAIN
