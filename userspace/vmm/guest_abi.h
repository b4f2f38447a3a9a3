/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The contract between the VMM (host) and the freestanding 64-bit guest
 * payload (vmm/guest/): guest-physical layout, ports, commands, the mailbox,
 * and the page-content and random-number generators both sides evaluate.
 *
 * This header is compiled by both sides: the host (gnu11, libc) and the
 * guest (-ffreestanding, no libc, no SSE), and its constants by the guest's
 * assembler.  It may use only <stdint.h> and static inline code with no
 * library calls.
 *
 * The payload is one ELF32 file (vmdirty-guest.elf) with two ways in:
 * - direct: the agent's VMM builds the tables below, writes the mailbox and
 *   starts every vCPU in long mode at the payload header's entry;
 * - multiboot: any multiboot v1 loader (qemu -kernel, the agent's
 *   vm_boot_multiboot) starts the BSP in 32-bit protected mode at the ELF
 *   entry; the guest builds the same tables at the same addresses itself,
 *   fills the mailbox from its command line, starts the APs and posts
 *   GUEST_CMD_WORKLOAD to every vCPU (Documentation/guest.rst).
 *
 * Guest-physical layout (gpa == offset into vm->mem; everything below
 * GUEST_WORK_BASE is the VMM's, identity mapped like the rest):
 *
 *   0x001000  GDT (null, code64 0x08, data 0x10, TSS 0x18)
 *   0x002000  TSS
 *   0x003000  IDT (vectors 0-31 exceptions, GUEST_TIMER_VECTOR, spurious)
 *   0x008000  multiboot: the APs' real-mode trampoline (one page)
 *   0x009000  multiboot: the loader's info, memory map and (agent) command
 *             line, read before anything else is written below 1 MiB
 *   0x010000  mailbox (struct guest_mailbox, GUEST_MAILBOX_SIZE)
 *   0x020000  page tables: PML4, PDPT, then one PD per GiB of RAM
 *             (2 MiB pages, RAM only; GUEST_MAX_MEM)
 *   0x100000  payload (GUEST_CODE_BASE, at most GUEST_CODE_MAX incl. bss;
 *             QEMU puts the command line right after it)
 *   0x140000  vCPU stacks, GUEST_STACK_SIZE each, vCPU i at
 *             GUEST_STACK_BASE + i * GUEST_STACK_SIZE (grows down from the top)
 *   0x200000  vCPU scratch areas, GUEST_SCRATCH_SIZE each (WRITE_LIST lists)
 *   0x400000  GUEST_WORK_BASE: the work area, [GUEST_WORK_BASE, mem_size)
 */
#ifndef VMDIRTY_GUEST_ABI_H
#define VMDIRTY_GUEST_ABI_H

/* Constants the guest's assembler reads too: no integer suffixes there. */
#ifdef __ASSEMBLER__
#define GUEST_C(x)		x
#else
#include <stdint.h>
#define GUEST_C(x)		x##ULL
#endif

#define GUEST_ABI_VERSION	2
#define GUEST_PAGE_SIZE		GUEST_C(4096)
#define GUEST_PAGE_SHIFT	12
#define GUEST_LARGE_PAGE_SIZE	GUEST_C(0x200000)

#define GUEST_MAX_VCPUS		32
#define GUEST_MAX_MEM		(GUEST_C(64) << 30)

#define GUEST_GDT_GPA		GUEST_C(0x1000)
#define GUEST_TSS_GPA		GUEST_C(0x2000)
#define GUEST_IDT_GPA		GUEST_C(0x3000)
#define GUEST_TRAMPOLINE_GPA	GUEST_C(0x8000)
#define GUEST_LOADER_GPA	GUEST_C(0x9000)
#define GUEST_LOADER_END	GUEST_C(0x10000)
#define GUEST_MAILBOX_GPA	GUEST_C(0x10000)
#define GUEST_MAILBOX_SIZE	GUEST_C(0x4000)
#define GUEST_PML4_GPA		GUEST_C(0x20000)
#define GUEST_PDPT_GPA		GUEST_C(0x21000)
#define GUEST_PD_GPA		GUEST_C(0x22000)	/* one page per GiB */
#define GUEST_CODE_BASE		GUEST_C(0x100000)
#define GUEST_CODE_MAX		GUEST_C(0x40000)
#define GUEST_STACK_BASE	GUEST_C(0x140000)
#define GUEST_STACK_SIZE	GUEST_C(0x4000)
#define GUEST_SCRATCH_BASE	GUEST_C(0x200000)
#define GUEST_SCRATCH_SIZE	GUEST_C(0x10000)
#define GUEST_WORK_BASE		GUEST_C(0x400000)

/* GDT selectors, and the two segment descriptors every boot path uses. */
#define GUEST_SEL_CODE		0x08
#define GUEST_SEL_DATA		0x10
#define GUEST_SEL_TSS		0x18
#define GUEST_GDT_CODE64	GUEST_C(0x00af9b000000ffff)	/* 64-bit code, DPL 0 */
#define GUEST_GDT_DATA		GUEST_C(0x00cf93000000ffff)	/* flat data, writable */

/* Interrupt vectors the payload handles besides exceptions 0-31. */
#define GUEST_TIMER_VECTOR	0x40
#define GUEST_SPURIOUS_VECTOR	0xff

/*
 * Ports: OUT of a 32-bit value.  DONE: the command finished, value = low 32
 * bits of the status (the full status is in the mailbox).  PROGRESS: a
 * periodic report, value = vCPU index.  ERROR: value = GUEST_ERR_* code
 * (details in the mailbox).  IDLE: the vCPU was run with no command posted,
 * value = vCPU index.
 */
#define GUEST_PORT_DONE		0xe0
#define GUEST_PORT_PROGRESS	0xe4
#define GUEST_PORT_ERROR	0xe8
#define GUEST_PORT_IDLE		0xec

/*
 * The debug console (QEMU's isa-debugcon, the agent's --debugcon).  KVM
 * exits to the VMM once for every byte written there (it emulates rep outs
 * one element at a time), so progress is one byte:
 *
 *   <tick>                   a progress report (every GUEST_REPORT_MS) with
 *                            GUEST_F_DEBUGCON, instead of GUEST_PORT_PROGRESS:
 *                            the vCPU index as a base-32 digit, 0-9 a-v
 *   B <key>=<value> ...\n    multiboot: booted; the configuration in effect
 *   E <vcpu> <text>\n        an error (bad command line, exception, self-check)
 *
 * Lines start with an upper-case letter and end with a newline; each is
 * written by a single rep outsb under a guest lock, so no other vCPU's
 * bytes come between.  Outside lines, every byte is a tick.  Numbers are
 * decimal.  The progress counter itself is in the mailbox (GUEST_OPS_GPA).
 */
#define GUEST_PORT_DEBUGCON	0xe9
#define GUEST_DEBUGCON_MAX	160	/* bytes in one line, newline included */

/*
 * GUEST_PORT_ERROR codes.  Self-check failures are reported and the guest
 * goes on (the host counts them); GUEST_ERR_EXCEPTION is fatal: the guest
 * repeats the report forever.  GUEST_ERR_BOOT is fatal too: reported once,
 * then the vCPU halts with interrupts off.
 */
#define GUEST_ERR_EXCEPTION	1	/* err_info: vector, error code, rip, cr2 */
#define GUEST_ERR_PAGE		2	/* err_info: work page, version, qword */
#define GUEST_ERR_FPU		3	/* err_info: register lo, hi, memory */
#define GUEST_ERR_CMD		4	/* err_info: cmd */
#define GUEST_ERR_TABLE		5	/* err_info: work page, version */
#define GUEST_ERR_BOOT		6	/* multiboot failed: the mailbox's boot_error says why */

/* Commands (struct guest_vcpu_mailbox.cmd). */
#define GUEST_CMD_NONE		0
#define GUEST_CMD_WRITE_LIST	1	/* gpa of u64 gpas, count */
#define GUEST_CMD_WRITE_RANGE	2	/* first gpa, npages, stride, passes */
#define GUEST_CMD_WRITE_RANDOM	3	/* region gpa, npages, writes, seed */
#define GUEST_CMD_WORKLOAD	4	/* kind, bytes/s (0: no limit), hot pages, seed */
#define GUEST_CMD_VERIFY	5	/* -: status = errors in the vCPU's slice */
#define GUEST_CMD_MAX		5
#define GUEST_CMD_ARGS		6

/* Workload kinds (GUEST_CMD_WORKLOAD arg0). */
#define GUEST_WL_IDLE		0	/* no writes; timer wakeups (arg1 a second) count as ops */
#define GUEST_WL_SEQ		1	/* whole pages in order through the slice */
#define GUEST_WL_RANDOM		2	/* whole pages, uniform over the slice */
#define GUEST_WL_HOTSET		3	/* whole pages, uniform over the first hot pages */
#define GUEST_WL_MAX		3

/*
 * Statuses the payload reports in DONE for rejected arguments (negative,
 * like -errno; the host passes them through).
 */
#define GUEST_EINVAL		(-22)
#define GUEST_ERANGE		(-34)

/* Mailbox features (host -> guest, or found by the guest in a multiboot boot). */
#define GUEST_F_AVX		(1U << 0)	/* XCR0 has YMM: keep the counter in ymm15 too */
#define GUEST_F_TSC_DEADLINE	(1U << 1)	/* sleep with the x2APIC TSC-deadline timer */
#define GUEST_F_DEBUGCON	(1U << 2)	/* progress as ticks on GUEST_PORT_DEBUGCON */

#define GUEST_MAILBOX_MAGIC	0x786f626c69616d76ULL	/* "vmailbox" */
#define GUEST_PAYLOAD_MAGIC	0x64726976u		/* "vird" */
#define GUEST_PAGE_MAGIC	0x7974726964766d76ULL	/* "vmvdirty" */

/* struct guest_mailbox.boot: who set the machine up. */
#define GUEST_BOOT_DIRECT	0	/* the VMM (vm_load_guest) */
#define GUEST_BOOT_MULTIBOOT	1	/* the guest itself, from a multiboot loader */
#define GUEST_BOOT_ERROR_MAX	128

/* Progress reports come about every GUEST_REPORT_MS of guest TSC time. */
#define GUEST_REPORT_MS		10

#ifndef __ASSEMBLER__

/*
 * One vCPU's command slot.  The host writes cmd and args, then bumps
 * cmd_seq (vcpu_post); the guest runs the command, writes status, copies
 * cmd_seq to done_seq and reports DONE.  Everything from done_seq on is
 * written by the guest only, except stop.
 */
struct guest_vcpu_mailbox {
	/* host -> guest */
	uint64_t cmd_seq;
	uint32_t cmd;
	uint32_t pad0;
	uint64_t args[GUEST_CMD_ARGS];
	uint64_t stop;		/* WORKLOAD: finish when non-zero */
	/* guest -> host */
	uint64_t done_seq;
	int64_t status;
	uint64_t ops;		/* WORKLOAD: pages written (idle: timer wakeups) */
	uint64_t reports;	/* GUEST_PORT_PROGRESS reports sent */
	uint64_t errors;	/* self-check failures (GUEST_PORT_ERROR) */
	uint64_t checks;	/* self-checks done */
	uint64_t fpu_counter;	/* memory twin of the counter kept in xmm15/ymm15 */
	uint64_t err_code;	/* last GUEST_ERR_* */
	uint64_t err_info[4];
	/* the workload's slice, valid once wl_ready (VERIFY uses it) */
	uint64_t wl_ready;
	uint64_t wl_first;	/* first work page of the slice */
	uint64_t wl_table_pages;	/* version table at the start of the slice */
	uint64_t wl_data_pages;	/* data pages after the table */
	uint64_t wl_writes;	/* whole-page writes since the workload began */
	/*
	 * A page being rewritten: 1 + its data page index, and the version
	 * it gets; 0 between writes.  Set before its content changes, cleared
	 * once its version and wl_writes are updated, so a stopped guest's
	 * memory (a dump) shows which page may be half old, half new.
	 */
	uint64_t wl_inflight;
	uint64_t wl_inflight_version;
	uint64_t pad1[4];
};

struct guest_mailbox {
	uint64_t magic;
	uint32_t abi_version;
	uint32_t nr_vcpus;
	uint32_t features;	/* GUEST_F_* */
	uint32_t boot;		/* GUEST_BOOT_* */
	uint64_t tsc_khz;	/* 0: unknown, report every 4096 ops instead */
	uint64_t mem_size;
	uint64_t work_pages;	/* pages from GUEST_WORK_BASE to mem_size */
	uint64_t pad1[2];
	struct guest_vcpu_mailbox vcpu[GUEST_MAX_VCPUS];
	char boot_error[GUEST_BOOT_ERROR_MAX];	/* GUEST_ERR_BOOT: why, NUL-terminated */
};

_Static_assert(sizeof(struct guest_vcpu_mailbox) == 256, "mailbox slot layout");
/*
 * Where a dump reader finds vCPU i's progress counter (ops) and its slice
 * description: documented addresses (Documentation/guest.rst).
 */
#define GUEST_VCPU_MAILBOX_GPA(i)	(GUEST_MAILBOX_GPA + 64 + (uint64_t)(i) * 256)
#define GUEST_OPS_GPA(i)		(GUEST_VCPU_MAILBOX_GPA(i) + 88)
_Static_assert(__builtin_offsetof(struct guest_mailbox, vcpu) == 64, "mailbox header");
_Static_assert(__builtin_offsetof(struct guest_vcpu_mailbox, ops) == 88, "ops offset");
_Static_assert(__builtin_offsetof(struct guest_vcpu_mailbox, wl_ready) == 168, "slice offset");
_Static_assert(sizeof(struct guest_mailbox) <= GUEST_MAILBOX_SIZE, "mailbox size");
_Static_assert(GUEST_STACK_BASE + GUEST_MAX_VCPUS * GUEST_STACK_SIZE <= GUEST_SCRATCH_BASE,
	       "stacks overlap scratch");
_Static_assert(GUEST_SCRATCH_BASE + GUEST_MAX_VCPUS * GUEST_SCRATCH_SIZE <= GUEST_WORK_BASE,
	       "scratch overlaps the work area");
_Static_assert(GUEST_CODE_BASE + GUEST_CODE_MAX <= GUEST_STACK_BASE, "payload overlaps stacks");
_Static_assert(GUEST_PD_GPA + (GUEST_MAX_MEM >> 30) * GUEST_PAGE_SIZE <= GUEST_CODE_BASE,
	       "page tables overlap the payload");
_Static_assert(GUEST_IDT_GPA + GUEST_PAGE_SIZE <= GUEST_TRAMPOLINE_GPA &&
	       GUEST_TRAMPOLINE_GPA + GUEST_PAGE_SIZE <= GUEST_LOADER_GPA &&
	       GUEST_LOADER_END <= GUEST_MAILBOX_GPA, "low layout overlaps");
/* The 32-bit boot code maps 4 GiB before it knows the RAM size. */
_Static_assert(GUEST_PD_GPA + 4 * GUEST_PAGE_SIZE <= GUEST_CODE_BASE, "boot page tables");

/*
 * The payload image starts with this header (at GUEST_CODE_BASE); the host
 * checks it and builds the IDT from it.
 */
struct guest_payload_hdr {
	uint32_t magic;		/* GUEST_PAYLOAD_MAGIC */
	uint32_t abi_version;	/* GUEST_ABI_VERSION */
	uint64_t base;		/* GUEST_CODE_BASE */
	uint64_t end;		/* end of the image incl. bss */
	uint64_t entry;		/* rdi = vCPU index, rsp = top of its stack */
	uint64_t exc_table;	/* gpa of 32 u64 handler addresses */
	uint64_t timer_handler;
	uint64_t spurious_handler;
};

/*
 * The tables below GUEST_WORK_BASE, built the same by the VMM (direct boot)
 * and by the guest itself (multiboot), from the same code.
 */
#define GUEST_GDT_LIMIT		(GUEST_SEL_TSS + 16 - 1)
#define GUEST_IDT_LIMIT		(256 * 16 - 1)

/*
 * iretq reloads CS and SS from the GDT, so it matches the segments either
 * boot path loads.  The TSS descriptor is busy for a TR loaded through
 * KVM_SET_SREGS, available for ltr (which marks it busy).
 */
static inline void guest_build_gdt(volatile uint64_t *gdt, int tss_busy)
{
	const uint64_t tss = GUEST_TSS_GPA;

	gdt[0] = 0;
	gdt[GUEST_SEL_CODE / 8] = GUEST_GDT_CODE64;
	gdt[GUEST_SEL_DATA / 8] = GUEST_GDT_DATA;
	gdt[GUEST_SEL_TSS / 8] = 0x67 | (tss & 0xffffff) << 16 | (tss_busy ? 0x8bULL : 0x89ULL) << 40 |
				 (tss >> 24 & 0xff) << 56;
	gdt[GUEST_SEL_TSS / 8 + 1] = tss >> 32;
}

/* 64-bit interrupt gate (type 14), present, DPL 0, IST 0. */
static inline void guest_idt_gate(volatile uint64_t *idt, unsigned int vec, uint64_t handler)
{
	idt[vec * 2] = (handler & 0xffff) | ((uint64_t)GUEST_SEL_CODE << 16) | (0x8eULL << 40) |
		       ((handler >> 16 & 0xffff) << 48);
	idt[vec * 2 + 1] = handler >> 32;
}

/* The whole IDT: exceptions 0-31 from exc[], the timer and spurious vectors. */
static inline void guest_build_idt(volatile uint64_t *idt, const uint64_t exc[32], uint64_t timer,
				   uint64_t spurious)
{
	unsigned int i;

	for (i = 0; i < 512; i++)
		idt[i] = 0;
	for (i = 0; i < 32; i++)
		guest_idt_gate(idt, i, exc[i]);
	guest_idt_gate(idt, GUEST_TIMER_VECTOR, timer);
	guest_idt_gate(idt, GUEST_SPURIOUS_VECTOR, spurious);
}

#define GUEST_PTE_P		0x01ULL
#define GUEST_PTE_RW		0x02ULL
#define GUEST_PTE_A		0x20ULL
#define GUEST_PTE_D		0x40ULL
#define GUEST_PTE_PS		0x80ULL

/*
 * Identity page tables for mem_size bytes of RAM with 2 MiB pages, RAM
 * only: a stray access beyond it faults in the guest, not in KVM.
 * Accessed and dirty preset: the page walker never writes the tables, so
 * they stay out of the dirty log.  Every entry of the three levels is
 * written (no clearing pass first), so the guest can rebuild the tables it
 * runs on.  -22 (EINVAL) for a size that is not a multiple of 2 MiB in
 * (0, GUEST_MAX_MEM].
 */
static inline int guest_build_page_tables(volatile uint64_t *pml4, volatile uint64_t *pdpt,
					  volatile uint64_t *pd, uint64_t mem_size)
{
	uint64_t gib = (mem_size + (1ULL << 30) - 1) >> 30, pages = mem_size / GUEST_LARGE_PAGE_SIZE;
	uint64_t i;

	if (!mem_size || mem_size > GUEST_MAX_MEM || mem_size % GUEST_LARGE_PAGE_SIZE)
		return GUEST_EINVAL;
	for (i = 0; i < 512; i++)
		pml4[i] = i ? 0 : GUEST_PDPT_GPA | GUEST_PTE_P | GUEST_PTE_RW | GUEST_PTE_A;
	for (i = 0; i < 512; i++)
		pdpt[i] = i < gib ? (GUEST_PD_GPA + i * GUEST_PAGE_SIZE) | GUEST_PTE_P |
				    GUEST_PTE_RW | GUEST_PTE_A : 0;
	for (i = 0; i < gib * 512; i++)
		pd[i] = i < pages ? i * GUEST_LARGE_PAGE_SIZE | GUEST_PTE_P | GUEST_PTE_RW |
				    GUEST_PTE_PS | GUEST_PTE_A | GUEST_PTE_D : 0;
	return 0;
}

/* The debug console's progress tick for vCPU idx, and back (-1: not a tick). */
static inline char guest_debugcon_tick(uint32_t idx)
{
	return (char)(idx < 10 ? '0' + idx : 'a' + idx - 10);
}

static inline int guest_debugcon_tick_vcpu(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c < 'a' + GUEST_MAX_VCPUS - 10)
		return c - 'a' + 10;
	return -1;
}

/* Values WRITE_LIST / WRITE_RANGE / WRITE_RANDOM store (never 0). */
#define GUEST_WRITE_VALUE(seq, i)	(((uint64_t)(seq) << 32) | (((i) & 0xffffffffULL) + 1))

/*
 * The guest's pseudo-random generator (splitmix64): WRITE_RANDOM and the
 * workloads draw from it, and the host replays it to know what was written.
 */
static inline uint64_t guest_rand(uint64_t *state)
{
	uint64_t z = (*state += 0x9e3779b97f4a7c15ULL);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

/* Uniform enough in [0, n) for page choice; 0 when n == 0. */
static inline uint64_t guest_rand_below(uint64_t *state, uint64_t n)
{
	uint64_t r = guest_rand(state);

	return n ? r % n : 0;
}

/* The seed of vCPU idx's workload stream, from the command's seed. */
static inline uint64_t guest_wl_seed(uint64_t seed, uint32_t idx)
{
	return seed ^ ((uint64_t)(idx + 1) * 0xd1342543de82ef95ULL);
}

/*
 * vCPU idx's slice of the work area: [*first, *first + *npages) in work
 * pages (page 0 is GUEST_WORK_BASE).
 */
static inline void guest_slice(uint64_t work_pages, uint32_t nr_vcpus, uint32_t idx,
			       uint64_t *first, uint64_t *npages)
{
	uint64_t lo = work_pages * idx / nr_vcpus;
	uint64_t hi = work_pages * (idx + 1) / nr_vcpus;

	*first = lo;
	*npages = hi - lo;
}

/*
 * A workload slice of n pages starts with its version table (one u32 per
 * data page), then the data pages: the fewest table pages t with
 * t * 1024 >= n - t.
 */
#define GUEST_VERSIONS_PER_PAGE	(GUEST_PAGE_SIZE / sizeof(uint32_t))
static inline uint64_t guest_table_pages(uint64_t n)
{
	return (n + GUEST_VERSIONS_PER_PAGE) / (GUEST_VERSIONS_PER_PAGE + 1);
}

/*
 * Page content.  A work page's class depends on its index only: about 25%
 * zero, 40% text-like (compressible), 35% random (incompressible).  Every
 * non-zero page starts with a 4-qword header (magic, page, version | class,
 * magic ^ page ^ version); the rest is a stream seeded by (page, version),
 * so a page can be regenerated and checked from its index and version.
 */
enum guest_page_class { GUEST_PAGE_ZERO, GUEST_PAGE_TEXT, GUEST_PAGE_RANDOM };

#define GUEST_PAGE_QWORDS	(GUEST_PAGE_SIZE / 8)
#define GUEST_PAGE_HDR_QWORDS	4

static inline uint64_t guest_mix64(uint64_t x)
{
	x ^= x >> 33;
	x *= 0xff51afd7ed558ccdULL;
	x ^= x >> 33;
	x *= 0xc4ceb9fe1a85ec53ULL;
	x ^= x >> 33;
	return x;
}

static inline enum guest_page_class guest_page_class(uint64_t page)
{
	uint64_t h = guest_mix64(page ^ 0x5bd1e9955bd1e995ULL) % 100;

	if (h < 25)
		return GUEST_PAGE_ZERO;
	if (h < 65)
		return GUEST_PAGE_TEXT;
	return GUEST_PAGE_RANDOM;
}

/* Eight-byte "words": text pages are made of these, 5 bits of entropy each. */
static inline uint64_t guest_text_word(unsigned int i)
{
	static const union {
		char c[32][8];
		uint64_t q[32];
	} words = { .c = {
		"the     ", "dirty   ", "page    ", "memory  ", "migrate ", "round   ",
		"of      ", "and     ", "guest   ", "host    ", "ring    ", "bitmap  ",
		"to      ", "is      ", "copy    ", "send    ", "a       ", "vcpu    ",
		"kvm     ", "in      ", "log     ", "fast    ", "slow    ", "for     ",
		"zero    ", "with    ", "data    ", "rate    ", "time    ", "down    ",
		"pre     ", "post\n   ",
	} };

	return words.q[i & 31];
}

/*
 * Qword q (q >= GUEST_PAGE_HDR_QWORDS) of a page of class c; *state starts
 * at guest_page_stream_seed() and advances one step per qword, in order.
 */
static inline uint64_t guest_page_stream_seed(uint64_t page, uint32_t version)
{
	return guest_mix64(page * 0x9e3779b97f4a7c15ULL + version);
}

static inline uint64_t guest_page_qword(enum guest_page_class c, uint64_t *state)
{
	uint64_t r = guest_rand(state);

	if (c == GUEST_PAGE_RANDOM)
		return r;
	return guest_text_word((unsigned int)(r >> 59));
}

static inline void guest_page_header(uint64_t hdr[GUEST_PAGE_HDR_QWORDS], uint64_t page,
				     uint32_t version)
{
	hdr[0] = GUEST_PAGE_MAGIC;
	hdr[1] = page;
	hdr[2] = version | ((uint64_t)guest_page_class(page) << 32);
	hdr[3] = GUEST_PAGE_MAGIC ^ page ^ version;
}

/* Writes the content of (page, version) to dst (GUEST_PAGE_SIZE bytes). */
static inline void guest_page_fill(volatile uint64_t *dst, uint64_t page, uint32_t version)
{
	enum guest_page_class c = guest_page_class(page);
	uint64_t hdr[GUEST_PAGE_HDR_QWORDS], s;
	unsigned int q;

	if (c == GUEST_PAGE_ZERO) {
		for (q = 0; q < GUEST_PAGE_QWORDS; q++)
			dst[q] = 0;
		return;
	}
	guest_page_header(hdr, page, version);
	for (q = 0; q < GUEST_PAGE_HDR_QWORDS; q++)
		dst[q] = hdr[q];
	s = guest_page_stream_seed(page, version);
	for (; q < GUEST_PAGE_QWORDS; q++)
		dst[q] = guest_page_qword(c, &s);
}

/*
 * Checks src against (page, version): returns -1 if it matches, else the
 * index of the first qword that differs.
 */
static inline int guest_page_check(const volatile uint64_t *src, uint64_t page, uint32_t version)
{
	enum guest_page_class c = guest_page_class(page);
	uint64_t hdr[GUEST_PAGE_HDR_QWORDS], s;
	unsigned int q;

	if (c == GUEST_PAGE_ZERO) {
		for (q = 0; q < GUEST_PAGE_QWORDS; q++)
			if (src[q])
				return (int)q;
		return -1;
	}
	guest_page_header(hdr, page, version);
	for (q = 0; q < GUEST_PAGE_HDR_QWORDS; q++)
		if (src[q] != hdr[q])
			return (int)q;
	s = guest_page_stream_seed(page, version);
	for (; q < GUEST_PAGE_QWORDS; q++)
		if (src[q] != guest_page_qword(c, &s))
			return (int)q;
	return -1;
}

#endif /* __ASSEMBLER__ */

#endif
