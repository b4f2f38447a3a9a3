// SPDX-License-Identifier: GPL-2.0
/*
 * The payload's main loop and the write commands.  Every vCPU runs
 * guest_main(idx) on its own stack; it takes commands from its mailbox
 * slot, one at a time, and reports DONE through a port.
 */
#include "guest.h"

extern char __image_end[];
extern char _start[], guest_exc_table[], guest_timer_irq[], guest_spurious_irq[];

/* The host checks this and builds the IDT from it (vmm_payload_check). */
__attribute__((section(".header"), used))
static const struct guest_payload_hdr header = {
	.magic = GUEST_PAYLOAD_MAGIC,
	.abi_version = GUEST_ABI_VERSION,
	.base = GUEST_CODE_BASE,
	.end = (uint64_t)__image_end,
	.entry = (uint64_t)_start,
	.exc_table = (uint64_t)guest_exc_table,
	.timer_handler = (uint64_t)guest_timer_irq,
	.spurious_handler = (uint64_t)guest_spurious_irq,
};

void guest_exception(uint64_t vec, uint64_t err, uint64_t rip, uint64_t cr2, uint64_t rsp)
	__attribute__((noreturn));

/* An E record: "E <vcpu> <what> <n0> <n1> <n2> <n3>". */
static void dbg_error(uint32_t idx, const char *what, const uint64_t *n, unsigned int nr)
{
	struct dbg_rec r;
	unsigned int i;

	dbg_init(&r, 'E', idx);
	dbg_str(&r, " ");
	dbg_str(&r, what);
	for (i = 0; i < nr; i++) {
		dbg_str(&r, " ");
		dbg_u64(&r, n[i]);
	}
	dbg_send(&r);
}

void guest_report_error(vmb_t *m, uint64_t code, uint64_t a, uint64_t b, uint64_t c)
{
	const uint64_t n[4] = { code, a, b, c };

	m->errors++;
	m->err_code = code;
	m->err_info[0] = a;
	m->err_info[1] = b;
	m->err_info[2] = c;
	dbg_error((uint32_t)(m - MB->vcpu), "self-check", n, 4);
	outl(GUEST_PORT_ERROR, (uint32_t)code);
}

/* The vCPU is known from the stack the exception frame is on. */
void guest_exception(uint64_t vec, uint64_t err, uint64_t rip, uint64_t cr2, uint64_t rsp)
{
	uint64_t idx = (rsp - GUEST_STACK_BASE) / GUEST_STACK_SIZE;
	vmb_t *m = &MB->vcpu[idx < GUEST_MAX_VCPUS ? idx : 0];
	const uint64_t n[4] = { vec, err, rip, cr2 };

	m->errors++;
	m->err_code = GUEST_ERR_EXCEPTION;
	m->err_info[0] = vec;
	m->err_info[1] = err;
	m->err_info[2] = rip;
	m->err_info[3] = cr2;
	dbg_error((uint32_t)(m - MB->vcpu), "exception", n, 4);
	for (;;)
		outl(GUEST_PORT_ERROR, GUEST_ERR_EXCEPTION);
}

void guest_sleep_until(uint64_t tsc)
{
	if (!(MB->features & GUEST_F_TSC_DEADLINE)) {
		while (rdtsc() < tsc)
			cpu_relax();
		return;
	}
	/* guest_safe_halt (entry.S) cannot lose the timer's wakeup. */
	while (rdtsc() < tsc) {
		wrmsr(MSR_TSC_DEADLINE, tsc);
		guest_safe_halt();
	}
}

void guest_fpu_step(vmb_t *m)
{
	int avx = MB->features & GUEST_F_AVX;
	uint64_t lo, hi, mem = m->fpu_counter;

	fpu_get(&lo, &hi, avx);
	if (lo != mem || hi != mem)
		guest_report_error(m, GUEST_ERR_FPU, lo, hi, mem);
	mem++;
	m->fpu_counter = mem;
	fpu_set(mem, avx);
}

static int gpa_ok(uint64_t gpa)
{
	return gpa >= GUEST_WORK_BASE && gpa < MB->mem_size && !(gpa & 7);
}

static int64_t cmd_write_list(vmb_t *m, uint64_t seq)
{
	uint64_t list = m->args[0], n = m->args[1], i;
	volatile uint64_t *gpas = (volatile uint64_t *)list;

	if (list & 7 || list > MB->mem_size || n > (MB->mem_size - list) / 8)
		return GUEST_ERANGE;
	/* Check every address before writing any: bad input changes nothing. */
	for (i = 0; i < n; i++)
		if (!gpa_ok(gpas[i]))
			return GUEST_ERANGE;
	for (i = 0; i < n; i++)
		*(volatile uint64_t *)gpas[i] = GUEST_WRITE_VALUE(seq, i);
	return 0;
}

static int64_t cmd_write_range(vmb_t *m, uint64_t seq)
{
	uint64_t first = m->args[0], n = m->args[1], stride = m->args[2];
	uint64_t passes = m->args[3], p, i;

	if (!stride || !gpa_ok(first))
		return n ? GUEST_ERANGE : 0;
	if (n && (n - 1) > (MB->mem_size - 1 - first) / GUEST_PAGE_SIZE / stride)
		return GUEST_ERANGE;
	for (p = 0; p < passes; p++)
		for (i = 0; i < n; i++)
			*(volatile uint64_t *)(first + i * stride * GUEST_PAGE_SIZE) =
				GUEST_WRITE_VALUE(seq, i);
	return 0;
}

static int64_t cmd_write_random(vmb_t *m, uint64_t seq)
{
	uint64_t region = m->args[0], n = m->args[1], writes = m->args[2];
	uint64_t state = m->args[3], i;

	if (!n || region & (GUEST_PAGE_SIZE - 1) || !gpa_ok(region) ||
	    n > (MB->mem_size - region) / GUEST_PAGE_SIZE)
		return GUEST_ERANGE;
	for (i = 0; i < writes; i++)
		*(volatile uint64_t *)(region + guest_rand_below(&state, n) * GUEST_PAGE_SIZE) =
			GUEST_WRITE_VALUE(seq, i);
	return 0;
}

static int64_t run_cmd(uint32_t idx, vmb_t *m, uint64_t seq)
{
	switch (m->cmd) {
	case GUEST_CMD_WRITE_LIST:
		return cmd_write_list(m, seq);
	case GUEST_CMD_WRITE_RANGE:
		return cmd_write_range(m, seq);
	case GUEST_CMD_WRITE_RANDOM:
		return cmd_write_random(m, seq);
	case GUEST_CMD_WORKLOAD:
		return guest_cmd_workload(idx, m);
	case GUEST_CMD_VERIFY:
		return guest_cmd_verify(idx, m);
	}
	guest_report_error(m, GUEST_ERR_CMD, m->cmd, 0, 0);
	return GUEST_EINVAL;
}

static void apic_init(void)
{
	if (!(MB->features & GUEST_F_TSC_DEADLINE))
		return;
	/* The host put the APIC in x2APIC mode; enable it and arm nothing yet. */
	wrmsr(MSR_X2APIC_SVR, SVR_APIC_ENABLE | GUEST_SPURIOUS_VECTOR);
	wrmsr(MSR_X2APIC_LVT_TIMER, LVT_TIMER_TSC_DEADLINE | GUEST_TIMER_VECTOR);
}

void guest_main(uint32_t idx)
{
	vmb_t *m = &MB->vcpu[idx];

	apic_init();
	fpu_set(m->fpu_counter, MB->features & GUEST_F_AVX);
	for (;;) {
		uint64_t seq = m->cmd_seq;
		int64_t status;

		if (seq == m->done_seq) {
			outl(GUEST_PORT_IDLE, idx);
			continue;
		}
		barrier();	/* the arguments after the sequence number */
		status = run_cmd(idx, m, seq);
		m->status = status;
		barrier();	/* the status before done_seq */
		m->done_seq = seq;
		outl(GUEST_PORT_DONE, (uint32_t)status);
	}
}
