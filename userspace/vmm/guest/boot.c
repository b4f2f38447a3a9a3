// SPDX-License-Identifier: GPL-2.0
/*
 * The multiboot boot (guest_abi.h): boot32.S brings the BSP into long mode
 * on a 4 GiB map; from here it builds what the VMM builds in a direct boot,
 * at the same addresses and with the same code (GDT, TSS, IDT, page tables
 * for RAM only), sets up its FPU, XSAVE and x2APIC, reads its RAM size and
 * command line from the loader, fills the mailbox, posts the workload to
 * every vCPU's slot, starts the APs with INIT-SIPI-SIPI one at a time, and
 * runs its own slot in guest_main() like every AP: as if the host had
 * posted GUEST_CMD_WORKLOAD.  A stop request ends the workload and the
 * vCPUs wait for commands, so a host can still post VERIFY.
 *
 * Anything that keeps the guest from running as configured (no multiboot
 * loader, no memory size, a bad command line, an AP that does not come up)
 * ends the boot: an E record on the debug console, the reason in the
 * mailbox's boot_error, GUEST_ERR_BOOT on GUEST_PORT_ERROR, then hlt.
 */
#include "guest.h"
#include "guest_cmdline.h"

#define MB_LOADER_MAGIC	0x2badb002
#define MBI_F_MEM	(1U << 0)
#define MBI_F_CMDLINE	(1U << 2)
#define MBI_F_MMAP	(1U << 6)
#define MB_MMAP_RAM	1

#define CR0_MP		(1ULL << 1)
#define CR0_EM		(1ULL << 2)
#define CR0_TS		(1ULL << 3)
#define CR0_ET		(1ULL << 4)
#define CR0_NE		(1ULL << 5)
#define CR0_WP		(1ULL << 16)
#define CR4_OSFXSR	(1ULL << 9)
#define CR4_OSXMMEXCPT	(1ULL << 10)
#define CR4_OSXSAVE	(1ULL << 18)

#define CPUID_1_ECX_X2APIC	(1U << 21)
#define CPUID_1_ECX_TSC_DEADLINE (1U << 24)
#define CPUID_1_ECX_XSAVE	(1U << 26)
#define CPUID_1_ECX_AVX		(1U << 28)
#define XFEATURE_X87		(1ULL << 0)
#define XFEATURE_SSE		(1ULL << 1)
#define XFEATURE_YMM		(1ULL << 2)

#define MSR_APIC_BASE		0x1b
#define APIC_BASE_X2APIC	(1ULL << 10)
#define APIC_BASE_ENABLE	(1ULL << 11)
#define MSR_X2APIC_ICR		0x830
#define ICR_INIT		0x500
#define ICR_STARTUP		0x600
#define ICR_ASSERT		0x4000

/* PIT channel 2, gated by port 0x61, counts down at 1193182 Hz. */
#define PIT_HZ			1193182ULL
#define PIT_CAL_TICKS		11932ULL	/* about 10 ms */
#define PIT_CAL_RUNS		8	/* a run the vCPU lost the CPU in only reads long */

/* The loader's multiboot v1 information: the fields used here. */
struct mb_info {
	uint32_t flags, mem_lower, mem_upper, boot_device, cmdline;
	uint32_t mods_count, mods_addr, syms[4];
	uint32_t mmap_length, mmap_addr;
};

struct mb_mmap {
	uint32_t size;		/* of the rest of the entry */
	uint64_t addr, len;
	uint32_t type;
} __attribute__((packed));

struct table_desc {
	uint16_t limit;
	uint64_t base;
} __attribute__((packed));

/* What the loader handed over: boot32.S stores it before anything else. */
uint32_t guest_mb_magic, guest_mb_info;
/* The next AP's stack, for boot32.S; which AP it is, and the last one up. */
volatile uint64_t guest_ap_rsp;
static volatile uint32_t ap_next, ap_up;
static char cmdline[GUEST_CMDLINE_MAX];

extern const char guest_trampoline[], guest_trampoline_end[];
extern const uint64_t guest_exc_table[32];
extern char guest_timer_irq[], guest_spurious_irq[];
void guest_mb_main(void) __attribute__((noreturn));
void guest_ap_main(void) __attribute__((noreturn));

void guest_boot_fail(uint32_t idx, const char *why, uint64_t n)
{
	volatile char *e = MB->boot_error;
	struct dbg_rec r;
	unsigned int i, start;

	dbg_init(&r, 'E', idx);
	dbg_str(&r, " boot: ");
	start = r.n;
	dbg_str(&r, why);
	if (n != ~0ULL)
		dbg_u64(&r, n);
	for (i = 0; start + i < r.n && i < GUEST_BOOT_ERROR_MAX - 1; i++)
		e[i] = r.b[start + i];
	e[i] = 0;
	MB->vcpu[idx].err_code = GUEST_ERR_BOOT;
	dbg_send(&r);
	outl(GUEST_PORT_ERROR, GUEST_ERR_BOOT);
	for (;;)
		asm volatile("cli; hlt");
}

/* GDT, IDT and TR from the tables at their layout addresses (the BSP built them). */
static void tables_load(void)
{
	volatile uint64_t *gdt = (volatile uint64_t *)GUEST_GDT_GPA;
	struct table_desc g = { GUEST_GDT_LIMIT, GUEST_GDT_GPA };
	struct table_desc i = { GUEST_IDT_LIMIT, GUEST_IDT_GPA };

	asm volatile("lgdt %0" : : "m"(g) : "memory");
	asm volatile("lidt %0" : : "m"(i) : "memory");
	/*
	 * One TSS for all vCPUs (nothing uses it at CPL 0 without IST), so
	 * ltr finds it busy from the vCPU before: available again first.
	 * The APs start one at a time, so no two do this at once.
	 */
	gdt[GUEST_SEL_TSS / 8] &= ~(1ULL << 41);
	asm volatile("ltr %w0" : : "r"((uint16_t)GUEST_SEL_TSS) : "memory");
}

static void tables_build(void)
{
	volatile uint64_t *tss = (volatile uint64_t *)GUEST_TSS_GPA;
	unsigned int i;

	guest_build_gdt((volatile uint64_t *)GUEST_GDT_GPA, 0);
	for (i = 0; i < GUEST_PAGE_SIZE / 8; i++)
		tss[i] = 0;
	guest_build_idt((volatile uint64_t *)GUEST_IDT_GPA, guest_exc_table,
			(uint64_t)guest_timer_irq, (uint64_t)guest_spurious_irq);
}

static int have_x2apic;
static uint64_t xcr0_now;	/* XCR0 as read back after cpu_setup() */

static uint64_t xgetbv0(void)
{
	uint32_t lo, hi;

	asm volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
	return (uint64_t)hi << 32 | lo;
}

/* What the VMM sets for a direct boot (cpu.c), on this vCPU; returns GUEST_F_*. */
static uint32_t cpu_setup(void)
{
	uint32_t a, b, c, d, ea, eb, ec, ed, features = 0;
	uint64_t cr0, cr4, base;

	cpuid(1, 0, &a, &b, &c, &d);
	asm volatile("mov %%cr0, %0" : "=r"(cr0));
	cr0 = (cr0 | CR0_MP | CR0_ET | CR0_NE | CR0_WP) & ~(CR0_EM | CR0_TS);
	asm volatile("mov %0, %%cr0" : : "r"(cr0) : "memory");
	asm volatile("mov %%cr4, %0" : "=r"(cr4));
	cr4 |= CR4_OSFXSR | CR4_OSXMMEXCPT | (c & CPUID_1_ECX_XSAVE ? CR4_OSXSAVE : 0);
	asm volatile("mov %0, %%cr4" : : "r"(cr4) : "memory");
	if (c & CPUID_1_ECX_XSAVE) {
		uint64_t xcr0 = XFEATURE_X87 | XFEATURE_SSE;

		cpuid(0xd, 0, &ea, &eb, &ec, &ed);
		if ((c & CPUID_1_ECX_AVX) && (ea & XFEATURE_YMM)) {
			xcr0 |= XFEATURE_YMM;
			features |= GUEST_F_AVX;
		}
		asm volatile("xsetbv" : : "c"(0), "a"((uint32_t)xcr0), "d"((uint32_t)(xcr0 >> 32)));
		/*
		 * YMM only if XCR0 outlives an exit to the hypervisor (CPUID
		 * always exits).  Under QEMU 7.2's TCG, the test host's outer
		 * CPU, a nested guest's xsetbv runs in place instead of
		 * exiting to the L1 hypervisor, whose next entry loads XCR0 as
		 * it knows it: back to x87 only.  SSE needs no XCR0 bit.
		 */
		cpuid(0, 0, &ea, &eb, &ec, &ed);
		xcr0_now = xgetbv0();
		if (xcr0_now != xcr0)
			features &= ~GUEST_F_AVX;
	}
	if (c & CPUID_1_ECX_X2APIC) {
		/* xAPIC first: disabled -> x2APIC directly is not a valid transition. */
		base = rdmsr(MSR_APIC_BASE) | APIC_BASE_ENABLE;
		wrmsr(MSR_APIC_BASE, base);
		wrmsr(MSR_APIC_BASE, base | APIC_BASE_X2APIC);
		have_x2apic = 1;
		if (c & CPUID_1_ECX_TSC_DEADLINE)
			features |= GUEST_F_TSC_DEADLINE;
	}
	return features;
}

static uint32_t apic_id(void)
{
	uint32_t a, b, c, d;

	cpuid(1, 0, &a, &b, &c, &d);
	return b >> 24;
}

/*
 * TSC cycles in PIT_CAL_TICKS of PIT channel 2 (one-shot, speaker off),
 * the shortest of a few runs: exits only ever lengthen a run.
 */
static uint64_t pit_tsc_khz(void)
{
	uint64_t best = ~0ULL, t0, t1;
	unsigned int run;

	for (run = 0; run < PIT_CAL_RUNS; run++) {
		outb(0x61, (inb(0x61) & ~0x02) | 0x01);
		outb(0x43, 0xb0);	/* channel 2, lobyte/hibyte, mode 0, binary */
		outb(0x42, PIT_CAL_TICKS & 0xff);
		outb(0x42, PIT_CAL_TICKS >> 8);
		t0 = rdtsc();
		while (!(inb(0x61) & 0x20))
			cpu_relax();
		t1 = rdtsc();
		if (t1 - t0 < best)
			best = t1 - t0;
	}
	return best * PIT_HZ / PIT_CAL_TICKS / 1000;
}

static void delay_us(uint64_t us)
{
	uint64_t until = rdtsc() + MB->tsc_khz * us / 1000;

	while (rdtsc() < until)
		cpu_relax();
}

/* INIT, then two SIPIs to the trampoline; 0 once the AP runs on its tables. */
static int start_ap(uint32_t idx)
{
	uint64_t dest = (uint64_t)idx << 32, until;
	unsigned int i;

	guest_ap_rsp = GUEST_STACK_BASE + (idx + 1) * GUEST_STACK_SIZE;
	ap_next = idx;
	barrier();	/* its stack and index before it can run */
	wrmsr(MSR_X2APIC_ICR, dest | ICR_ASSERT | ICR_INIT);
	delay_us(10000);
	/* A SIPI to a vCPU that already left wait-for-SIPI is ignored. */
	for (i = 0; i < 2; i++) {
		wrmsr(MSR_X2APIC_ICR, dest | ICR_ASSERT | ICR_STARTUP | (GUEST_TRAMPOLINE_GPA >> 12));
		delay_us(200);
	}
	/* Generous: nested virtualization under emulation is slow. */
	until = rdtsc() + MB->tsc_khz * 10000;
	while (ap_up != idx)
		if (rdtsc() > until)
			return -1;
		else
			cpu_relax();
	return 0;
}

/* The loader's memory map entry that holds gpa (NULL: none). */
static const struct mb_mmap *mmap_find(const struct mb_info *mbi, uint64_t gpa)
{
	uint64_t p;

	if (!(mbi->flags & MBI_F_MMAP))
		return 0;
	for (p = mbi->mmap_addr; p + 24 <= (uint64_t)mbi->mmap_addr + mbi->mmap_length;) {
		const struct mb_mmap *e = (const struct mb_mmap *)p;

		if (e->len && e->addr <= gpa && e->addr + e->len > gpa)
			return e;
		p += e->size + 4;
	}
	return 0;
}

/*
 * RAM from 0 up: the memory map's RAM entry at 1 MiB and whatever entries
 * follow it without a gap, reserved ones included (SeaBIOS keeps its ACPI
 * tables at the top of RAM; this guest reads none and owns all its RAM),
 * so that qemu -m 512 and vmdirty --mem 512 give the guest the same 512
 * MiB.  Without a map: mem_upper.
 */
static uint64_t ram_size(const struct mb_info *mbi)
{
	const struct mb_mmap *e = mmap_find(mbi, 1ULL << 20);
	uint64_t end;

	if (!e || e->type != MB_MMAP_RAM)
		return ((uint64_t)mbi->mem_upper + 1024) << 10;
	end = e->addr + e->len;
	while ((e = mmap_find(mbi, end)))
		end = e->addr + e->len;
	return end;
}

static void read_cmdline(const struct mb_info *mbi)
{
	const char *s = (const char *)(uint64_t)mbi->cmdline;
	unsigned int i;

	cmdline[0] = 0;
	if (!(mbi->flags & MBI_F_CMDLINE))
		return;
	for (i = 0; s[i]; i++) {
		if (i == GUEST_CMDLINE_MAX - 1)
			guest_boot_fail(0, "command line longer than ", GUEST_CMDLINE_MAX - 1);
		cmdline[i] = s[i];
	}
	cmdline[i] = 0;
}

static void post_workloads(const struct guest_config *c)
{
	volatile uint64_t *mb = (volatile uint64_t *)MB;
	unsigned int i, k;

	for (i = 0; i < GUEST_MAILBOX_SIZE / 8; i++)
		mb[i] = 0;
	for (i = 0; i < c->vcpus; i++) {
		vmb_t *m = &MB->vcpu[i];
		const uint64_t args[GUEST_CMD_ARGS] = { c->workload, c->rate, c->hot, c->seed + i };

		m->cmd = GUEST_CMD_WORKLOAD;
		for (k = 0; k < GUEST_CMD_ARGS; k++)
			m->args[k] = args[k];
		barrier();	/* the arguments before the sequence number */
		m->cmd_seq = 1;
	}
}

static void boot_record(const struct guest_config *c, int calibrated)
{
	struct dbg_rec r;

	dbg_init(&r, 'B', 0);
	dbg_str(&r, " vcpus=");
	dbg_u64(&r, c->vcpus);
	dbg_str(&r, " mem_mib=");
	dbg_u64(&r, MB->mem_size >> 20);
	dbg_str(&r, " tsc_khz=");
	dbg_u64(&r, MB->tsc_khz);
	dbg_str(&r, calibrated ? " tsc=pit" : " tsc=cmdline");
	dbg_str(&r, " workload=");
	dbg_str(&r, guest_workload_name(c->workload));
	dbg_str(&r, " rate=");
	dbg_u64(&r, c->rate / 1000000);
	dbg_str(&r, ".");
	dbg_u64(&r, c->rate / 100000 % 10);
	dbg_u64(&r, c->rate / 10000 % 10);
	dbg_u64(&r, c->rate / 1000 % 10);
	dbg_str(&r, " hot=");
	dbg_u64(&r, c->hot);
	dbg_str(&r, " seed=");
	dbg_u64(&r, c->seed);
	dbg_str(&r, " avx=");
	dbg_u64(&r, !!(MB->features & GUEST_F_AVX));
	dbg_str(&r, " tsc_deadline=");
	dbg_u64(&r, !!(MB->features & GUEST_F_TSC_DEADLINE));
	dbg_str(&r, " debugcon=");
	dbg_u64(&r, !!(MB->features & GUEST_F_DEBUGCON));
	dbg_str(&r, " xcr0=");
	dbg_u64(&r, xcr0_now);
	dbg_send(&r);
}

void guest_mb_main(void)
{
	const struct mb_info *mbi = (const struct mb_info *)(uint64_t)guest_mb_info;
	char err[GUEST_CMDLINE_ERR_MAX];
	struct guest_config c;
	uint64_t mem, khz;
	uint32_t features, i;

	tables_build();
	tables_load();
	if (guest_mb_magic != MB_LOADER_MAGIC)
		guest_boot_fail(0, "not started by a multiboot loader", ~0ULL);
	if (!(mbi->flags & MBI_F_MEM))
		guest_boot_fail(0, "the loader gave no memory size", ~0ULL);
	/* Everything the loader handed over is read before any of it can be overwritten. */
	mem = ram_size(mbi) & ~(GUEST_LARGE_PAGE_SIZE - 1);
	if (mem > GUEST_MAX_MEM)
		mem = GUEST_MAX_MEM;
	if (mem < GUEST_WORK_BASE + GUEST_LARGE_PAGE_SIZE)
		guest_boot_fail(0, "too little RAM (MiB): ", mem >> 20);
	read_cmdline(mbi);
	if (guest_build_page_tables((volatile uint64_t *)GUEST_PML4_GPA,
				    (volatile uint64_t *)GUEST_PDPT_GPA,
				    (volatile uint64_t *)GUEST_PD_GPA, mem))
		guest_boot_fail(0, "no page tables for RAM (MiB): ", mem >> 20);
	asm volatile("mov %0, %%cr3" : : "r"(GUEST_PML4_GPA) : "memory");
	features = cpu_setup();

	guest_config_init(&c);
	if (guest_cmdline_parse(cmdline, &c, err, sizeof(err)))
		guest_boot_fail(0, err, ~0ULL);
	if (c.vcpus > 1 && !have_x2apic)
		guest_boot_fail(0, "more than one vCPU needs the x2APIC", ~0ULL);
	khz = c.tsc_khz ? c.tsc_khz : pit_tsc_khz();
	if (khz < 1000)
		guest_boot_fail(0, "PIT calibration found a TSC at kHz: ", khz);

	post_workloads(&c);
	MB->abi_version = GUEST_ABI_VERSION;
	MB->nr_vcpus = c.vcpus;
	MB->features = features | (c.debugcon ? GUEST_F_DEBUGCON : 0);
	MB->boot = GUEST_BOOT_MULTIBOOT;
	MB->tsc_khz = khz;
	MB->mem_size = mem;
	MB->work_pages = (mem - GUEST_WORK_BASE) / GUEST_PAGE_SIZE;
	barrier();	/* the mailbox is complete once it has its magic */
	MB->magic = GUEST_MAILBOX_MAGIC;

	for (i = 0; guest_trampoline + i < guest_trampoline_end; i++)
		((volatile char *)GUEST_TRAMPOLINE_GPA)[i] = guest_trampoline[i];
	for (i = 1; i < c.vcpus; i++)
		if (start_ap(i))
			guest_boot_fail(0, "no answer from vCPU ", i);
	boot_record(&c, !c.tsc_khz);
	guest_main(0);
}

void guest_ap_main(void)
{
	uint32_t idx = ap_next;

	tables_load();
	cpu_setup();
	if (apic_id() != idx)
		guest_boot_fail(idx, "vCPU started with another APIC ID: ", apic_id());
	barrier();	/* x86 stores are ordered: the BSP sees us up after our setup */
	ap_up = idx;
	guest_main(idx);
}
