// SPDX-License-Identifier: GPL-2.0
/*
 * The debug console (guest_abi.h, GUEST_PORT_DEBUGCON), under QEMU's
 * isa-debugcon and the agent's --debugcon alike.  KVM emulates rep outs one
 * element per exit to userspace (6.1: em_out passes a count of 1), so a
 * line costs an exit a byte on either VMM: progress is a one-byte tick
 * (measured in the test host, 12-byte progress lines every 10 ms cut the
 * random writer from about 2500-3000 to 300-600 pages a second), and the
 * rare lines go out under a lock, since a vCPU can be interrupted between
 * two bytes: no other vCPU's bytes come into a line.
 */
#include "guest.h"
#include "guest_cmdline.h"

static volatile uint32_t dbg_lock;

void dbg_init(struct dbg_rec *r, char kind, uint32_t idx)
{
	r->n = 0;
	r->b[r->n++] = kind;
	if (kind == 'B')
		return;
	r->b[r->n++] = ' ';
	dbg_u64(r, idx);
}

/* Text is cut short rather than overrun: room for the newline stays. */
void dbg_str(struct dbg_rec *r, const char *s)
{
	while (*s && r->n < GUEST_DEBUGCON_MAX - 1)
		r->b[r->n++] = *s++;
}

void dbg_u64(struct dbg_rec *r, uint64_t v)
{
	char d[20];
	unsigned int n = guest_put_u64(d, v), i;

	for (i = 0; i < n && r->n < GUEST_DEBUGCON_MAX - 1; i++)
		r->b[r->n++] = d[i];
}

void dbg_send(struct dbg_rec *r)
{
	const char *p = r->b;
	uint64_t n;

	r->b[r->n++] = '\n';
	n = r->n;
	while (__atomic_exchange_n(&dbg_lock, 1, __ATOMIC_ACQUIRE))
		cpu_relax();
	asm volatile("rep outsb" : "+S"(p), "+c"(n) : "d"(GUEST_PORT_DEBUGCON) : "memory");
	__atomic_store_n(&dbg_lock, 0, __ATOMIC_RELEASE);
}

void guest_dbg_tick(uint32_t idx)
{
	/* Not inside another vCPU's line. */
	while (__atomic_exchange_n(&dbg_lock, 1, __ATOMIC_ACQUIRE))
		cpu_relax();
	outb(GUEST_PORT_DEBUGCON, (uint8_t)guest_debugcon_tick(idx));
	__atomic_store_n(&dbg_lock, 0, __ATOMIC_RELEASE);
}
