// SPDX-License-Identifier: GPL-2.0
/*
 * Debug-console records (guest_abi.h, GUEST_PORT_DEBUGCON): one line each,
 * sent with a single rep outsb, under QEMU's isa-debugcon and the agent's
 * --debugcon alike.  KVM emulates rep outs one element per exit to
 * userspace (6.1: em_out passes a count of 1), so a record costs one exit
 * a byte on either VMM, which is why records are short; and a vCPU can be
 * interrupted between bytes, so records go out under a lock: vCPUs never
 * interleave theirs.
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

void guest_dbg_progress(uint32_t idx, uint64_t ops)
{
	struct dbg_rec r;

	dbg_init(&r, 'P', idx);
	dbg_str(&r, " ");
	dbg_u64(&r, ops);
	dbg_send(&r);
}
