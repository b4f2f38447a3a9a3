/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The payload's own helpers.  Compiled with -mgeneral-regs-only: the
 * compiler never touches an SSE/AVX register, so xmm15 (and the upper lane
 * of ymm15 with AVX) hold a counter only fpu_step() changes, and its twin
 * in the mailbox tells whether the vCPU's XSAVE state survived a
 * save/restore.
 */
#ifndef VMDIRTY_GUEST_H
#define VMDIRTY_GUEST_H

#include <stddef.h>
#include <stdint.h>

#include "guest_abi.h"

#define MB		((volatile struct guest_mailbox *)GUEST_MAILBOX_GPA)
#define barrier()	asm volatile("" ::: "memory")

#define MSR_TSC_DEADLINE	0x6e0
#define MSR_X2APIC_SVR		0x80f
#define MSR_X2APIC_LVT_TIMER	0x832
#define LVT_TIMER_TSC_DEADLINE	(2U << 17)
#define SVR_APIC_ENABLE		(1U << 8)

typedef volatile struct guest_vcpu_mailbox vmb_t;

static inline void outl(uint16_t port, uint32_t v)
{
	asm volatile("outl %0, %w1" : : "a"(v), "Nd"(port) : "memory");
}

static inline void outb(uint16_t port, uint8_t v)
{
	asm volatile("outb %0, %w1" : : "a"(v), "Nd"(port) : "memory");
}

static inline uint8_t inb(uint16_t port)
{
	uint8_t v;

	asm volatile("inb %w1, %0" : "=a"(v) : "Nd"(port) : "memory");
	return v;
}

static inline uint64_t rdmsr(uint32_t msr)
{
	uint32_t lo, hi;

	asm volatile("rdmsr" : "=a"(lo), "=d"(hi) : "c"(msr) : "memory");
	return (uint64_t)hi << 32 | lo;
}

static inline void cpuid(uint32_t leaf, uint32_t sub, uint32_t *a, uint32_t *b, uint32_t *c,
			 uint32_t *d)
{
	asm volatile("cpuid" : "=a"(*a), "=b"(*b), "=c"(*c), "=d"(*d) : "a"(leaf), "c"(sub));
}

static inline uint64_t rdtsc(void)
{
	uint32_t lo, hi;

	asm volatile("rdtsc" : "=a"(lo), "=d"(hi) : : "memory");
	return (uint64_t)hi << 32 | lo;
}

static inline void wrmsr(uint32_t msr, uint64_t v)
{
	asm volatile("wrmsr" : : "c"(msr), "a"((uint32_t)v), "d"((uint32_t)(v >> 32)) : "memory");
}

static inline void cpu_relax(void)
{
	asm volatile("pause" : : : "memory");
}

static inline void fpu_set(uint64_t v, int avx)
{
	if (avx)
		asm volatile("vmovq %0, %%xmm15\n\t"
			     "vinsertf128 $1, %%xmm15, %%ymm15, %%ymm15" : : "r"(v));
	else
		asm volatile("movq %0, %%xmm15" : : "r"(v));
}

static inline void fpu_get(uint64_t *lo, uint64_t *hi, int avx)
{
	if (avx) {
		asm volatile("vmovq %%xmm15, %0\n\t"
			     "vextractf128 $1, %%ymm15, %%xmm14\n\t"
			     "vmovq %%xmm14, %1" : "=r"(*lo), "=r"(*hi));
	} else {
		asm volatile("movq %%xmm15, %0" : "=r"(*lo));
		*hi = *lo;
	}
}

/* main.c */
void guest_main(uint32_t idx) __attribute__((noreturn));
void guest_report_error(vmb_t *m, uint64_t code, uint64_t a, uint64_t b, uint64_t c);
void guest_sleep_until(uint64_t tsc);
/* entry.S: sti; hlt; cli, immune to a wakeup that arrives before the hlt. */
void guest_safe_halt(void);
void guest_fpu_step(vmb_t *m);
/* boot.c: a multiboot boot that cannot go on; says why, halts this vCPU. */
void guest_boot_fail(uint32_t idx, const char *why, uint64_t n) __attribute__((noreturn));
/*
 * debugcon.c: records on GUEST_PORT_DEBUGCON (guest_abi.h), each sent with
 * one rep outsb.  A record is built in a struct dbg_rec, then sent.
 */
struct dbg_rec {
	char b[GUEST_DEBUGCON_MAX];
	unsigned int n;
};
void dbg_init(struct dbg_rec *r, char kind, uint32_t idx);
void dbg_str(struct dbg_rec *r, const char *s);
void dbg_u64(struct dbg_rec *r, uint64_t v);
void dbg_send(struct dbg_rec *r);
void guest_dbg_tick(uint32_t idx);
/* workload.c */
int64_t guest_cmd_workload(uint32_t idx, vmb_t *m);
int64_t guest_cmd_verify(uint32_t idx, vmb_t *m);

#endif
