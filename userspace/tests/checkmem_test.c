// SPDX-License-Identifier: GPL-2.0
/*
 * vmdirty checkmem's two halves without KVM: a guest's memory is made here
 * the way the guest writes it (write_page() in vmm/guest/workload.c, step by
 * step), then read back through each dump format and checked; then broken
 * one way at a time.  Each test names the bug it catches.
 */
#include <elf.h>
#include <stdlib.h>
#include <string.h>

/* The 6.1 harness defines functions without prototypes (userspace/Makefile has -Wmissing-prototypes). */
#pragma GCC diagnostic ignored "-Wmissing-prototypes"
#include "kselftest_harness.h"
#include "check/check.h"

#define MEM		(8ULL << 20)	/* 1024 work pages */
#define NR_VCPUS	2
#define WRITES		600	/* over about 500 pages a vCPU: some stay unwritten */

struct guest {
	uint8_t *mem;
	struct guest_mailbox *mb;
};

static uint64_t slice_first(unsigned int i, uint64_t *table, uint64_t *data)
{
	uint64_t first, n;

	guest_slice((MEM - GUEST_WORK_BASE) / GUEST_PAGE_SIZE, NR_VCPUS, i, &first, &n);
	*table = guest_table_pages(n);
	*data = n - *table;
	return first;
}

static uint32_t *versions(struct guest *g, unsigned int i)
{
	uint64_t t, d, first = slice_first(i, &t, &d);

	return (uint32_t *)(g->mem + GUEST_WORK_BASE + first * GUEST_PAGE_SIZE);
}

static uint64_t page_no(unsigned int i, uint64_t p)
{
	uint64_t t, d;

	return slice_first(i, &t, &d) + t + p;
}

static uint64_t *page(struct guest *g, unsigned int i, uint64_t p)
{
	return (uint64_t *)(g->mem + GUEST_WORK_BASE + page_no(i, p) * GUEST_PAGE_SIZE);
}

/* The guest's write_page(), all of it. */
static void write_page(struct guest *g, unsigned int i, uint64_t p)
{
	uint32_t *v = versions(g, i);

	guest_page_fill(page(g, i, p), page_no(i, p), v[p] + 1);
	v[p]++;
	g->mb->vcpu[i].wl_writes++;
	g->mb->vcpu[i].ops++;
}

/* A stopped guest, 2 vCPUs, WRITES random writes each, as the guest lays it out. */
static void make_guest(struct guest *g)
{
	unsigned int i;
	uint64_t w;

	g->mem = calloc(1, MEM);
	g->mb = (struct guest_mailbox *)(g->mem + GUEST_MAILBOX_GPA);
	g->mb->magic = GUEST_MAILBOX_MAGIC;
	g->mb->abi_version = GUEST_ABI_VERSION;
	g->mb->nr_vcpus = NR_VCPUS;
	g->mb->boot = GUEST_BOOT_MULTIBOOT;
	g->mb->mem_size = MEM;
	g->mb->work_pages = (MEM - GUEST_WORK_BASE) / GUEST_PAGE_SIZE;
	for (i = 0; i < NR_VCPUS; i++) {
		struct guest_vcpu_mailbox *m = &g->mb->vcpu[i];
		uint64_t rng = guest_wl_seed(1, i), t, d;

		m->wl_first = slice_first(i, &t, &d);
		m->wl_table_pages = t;
		m->wl_data_pages = d;
		m->wl_ready = 1;
		for (w = 0; w < WRITES; w++)
			write_page(g, i, guest_rand_below(&rng, d));
	}
}

static int check(struct guest *g, struct memcheck *r)
{
	struct dump d;
	char err[CHECK_ERR_MAX];

	if (dump_parse(g->mem, MEM, &d, err, sizeof(err)))
		return -100;
	return memcheck_run(&d, r);
}

/* The first data page of vCPU i with a version (or without, want_zero_class: a zero-class one). */
static uint64_t find_page(struct guest *g, unsigned int i, bool written, bool zero_class)
{
	uint32_t *v = versions(g, i);
	uint64_t p, t, d;

	slice_first(i, &t, &d);
	for (p = 0; p < d; p++)
		if (!!v[p] == written &&
		    (guest_page_class(page_no(i, p)) == GUEST_PAGE_ZERO) == zero_class)
			return p;
	return ~0ULL;
}

FIXTURE(mem) {
	struct guest g;
	struct memcheck r;
};

FIXTURE_SETUP(mem)
{
	make_guest(&self->g);
	ASSERT_NE(NULL, self->g.mem);
}

FIXTURE_TEARDOWN(mem)
{
	free(self->g.mem);
}

/* Catches: a checker that fails a clean guest, or checks fewer pages than were written. */
TEST_F(mem, clean_guest_passes)
{
	uint64_t written = 0, p, t, d;
	unsigned int i;

	for (i = 0; i < NR_VCPUS; i++) {
		slice_first(i, &t, &d);
		for (p = 0; p < d; p++)
			written += !!versions(&self->g, i)[p];
	}
	ASSERT_EQ(0, check(&self->g, &self->r)) TH_LOG("%s", self->r.first);
	EXPECT_EQ(written, self->r.checked);
	EXPECT_EQ(0, self->r.bad);
	EXPECT_EQ(NR_VCPUS * WRITES, self->r.ops);
	EXPECT_EQ(NR_VCPUS, self->r.nr_vcpus);
}

/* Catches: data pages not compared with the content their version names. */
TEST_F(mem, flipped_byte_in_a_data_page)
{
	uint64_t p = find_page(&self->g, 1, true, false);

	ASSERT_NE(~0ULL, p);
	((uint8_t *)page(&self->g, 1, p))[1234] ^= 0x04;
	EXPECT_EQ(1, check(&self->g, &self->r));
	EXPECT_EQ(1, self->r.bad);
	EXPECT_NE(NULL, strstr(self->r.first, "vCPU 1: page")) TH_LOG("%s", self->r.first);
}

/* Catches: a written zero-class page not checked for zeros. */
TEST_F(mem, flipped_byte_in_a_written_zero_page)
{
	uint64_t p = find_page(&self->g, 0, true, true);

	ASSERT_NE(~0ULL, p);
	((uint8_t *)page(&self->g, 0, p))[4095] = 1;
	EXPECT_EQ(1, check(&self->g, &self->r));
	EXPECT_EQ(1, self->r.bad);
}

/* Catches: version tables taken on trust. */
TEST_F(mem, flipped_byte_in_a_version_table)
{
	uint64_t p = find_page(&self->g, 0, true, false);

	ASSERT_NE(~0ULL, p);
	((uint8_t *)&versions(&self->g, 0)[p])[0] ^= 0x01;
	EXPECT_EQ(1, check(&self->g, &self->r));
	EXPECT_GE(self->r.bad, 1);
}

/*
 * Catches: a version bumped on a zero-class page going unseen (its content
 * is zeros under any version): only the sum of versions against the write
 * count shows it.
 */
TEST_F(mem, version_bumped_on_a_zero_page)
{
	uint64_t p = find_page(&self->g, 0, false, true);

	ASSERT_NE(~0ULL, p);
	versions(&self->g, 0)[p] = 1;
	EXPECT_EQ(1, check(&self->g, &self->r));
	EXPECT_NE(NULL, strstr(self->r.first, "add up to")) TH_LOG("%s", self->r.first);
}

/* Catches: a version beyond the writes made (a table from another run). */
TEST_F(mem, version_beyond_the_writes)
{
	uint64_t p = find_page(&self->g, 1, true, false);
	uint32_t *v = versions(&self->g, 1);

	ASSERT_NE(~0ULL, p);
	v[p] = WRITES + 1;
	guest_page_fill(page(&self->g, 1, p), page_no(1, p), v[p]);
	EXPECT_EQ(1, check(&self->g, &self->r));
	EXPECT_NE(NULL, strstr(self->r.first, "after 600 writes")) TH_LOG("%s", self->r.first);
}

/* Catches: a dump of something else (or of a guest not booted) read as a guest. */
TEST_F(mem, wrong_mailbox_magic)
{
	self->g.mb->magic ^= 1;
	EXPECT_EQ(1, check(&self->g, &self->r));
	EXPECT_NE(NULL, strstr(self->r.first, "mailbox magic")) TH_LOG("%s", self->r.first);
	self->g.mb->magic ^= 1;
	self->g.mb->abi_version++;
	EXPECT_EQ(1, check(&self->g, &self->r));
	self->g.mb->abi_version--;
	self->g.mb->work_pages++;
	EXPECT_EQ(1, check(&self->g, &self->r));
}

/* Catches: a slice the mailbox puts elsewhere than guest_slice() does. */
TEST_F(mem, slice_not_where_the_layout_says)
{
	self->g.mb->vcpu[1].wl_data_pages--;
	EXPECT_EQ(1, check(&self->g, &self->r));
	EXPECT_NE(NULL, strstr(self->r.first, "by the layout")) TH_LOG("%s", self->r.first);
}

/* Catches: the guest's own self-check failures not counted against it. */
TEST_F(mem, guest_reported_errors)
{
	self->g.mb->vcpu[0].errors = 1;
	self->g.mb->vcpu[0].err_code = GUEST_ERR_PAGE;
	EXPECT_EQ(1, check(&self->g, &self->r));
}

/*
 * A vCPU stopped mid-rewrite, at each point of write_page(): marked, half
 * filled; filled and versioned but not counted.  Catches: a dump of a
 * paused guest failing when it is right, and a torn page passing when its
 * old half is wrong.
 */
TEST_F(mem, page_in_flight)
{
	struct guest_vcpu_mailbox *m = &self->g.mb->vcpu[0];
	uint64_t p = find_page(&self->g, 0, true, false), *dst, next[GUEST_PAGE_QWORDS];
	uint32_t *v = versions(&self->g, 0);

	ASSERT_NE(~0ULL, p);
	dst = page(&self->g, 0, p);
	guest_page_fill(next, page_no(0, p), v[p] + 1);
	m->wl_inflight = p + 1;
	m->wl_inflight_version = v[p] + 1;
	/* Marked, first 100 qwords rewritten. */
	memcpy(dst, next, 100 * 8);
	ASSERT_EQ(0, check(&self->g, &self->r)) TH_LOG("%s", self->r.first);
	EXPECT_EQ(1, self->r.inflight);
	/* The old half damaged. */
	dst[300] ^= 1;
	EXPECT_EQ(1, check(&self->g, &self->r));
	dst[300] ^= 1;
	/* Filled and versioned, not yet counted: the sum is one ahead, allowed for it only. */
	memcpy(dst, next, sizeof(next));
	v[p]++;
	ASSERT_EQ(0, check(&self->g, &self->r)) TH_LOG("%s", self->r.first);
	/* The same without the mark: a write not counted. */
	m->wl_inflight = 0;
	EXPECT_EQ(1, check(&self->g, &self->r));
	/* A mark naming a page beyond the slice. */
	m->wl_inflight = 1ULL << 40;
	EXPECT_EQ(1, check(&self->g, &self->r));
}

/* An ELF core of g's RAM in two PT_LOADs split at split, with a note first, like QEMU's. */
static uint8_t *elf_core(struct guest *g, bool is64, uint64_t split, size_t *size)
{
	size_t hdr = 4096, sz = hdr + MEM;
	uint8_t *f = calloc(1, sz);

	if (!f)
		return NULL;
	if (is64) {
		Elf64_Ehdr *e = (Elf64_Ehdr *)f;
		Elf64_Phdr *ph = (Elf64_Phdr *)(f + sizeof(*e));

		memcpy(e->e_ident, ELFMAG, SELFMAG);
		e->e_ident[EI_CLASS] = ELFCLASS64;
		e->e_ident[EI_DATA] = ELFDATA2LSB;
		e->e_type = ET_CORE;
		e->e_machine = EM_X86_64;
		e->e_phoff = sizeof(*e);
		e->e_phentsize = sizeof(*ph);
		e->e_phnum = 3;
		ph[0] = (Elf64_Phdr){ .p_type = PT_NOTE, .p_offset = 512, .p_filesz = 16 };
		ph[1] = (Elf64_Phdr){ .p_type = PT_LOAD, .p_offset = hdr, .p_paddr = 0,
				      .p_filesz = split, .p_memsz = split };
		ph[2] = (Elf64_Phdr){ .p_type = PT_LOAD, .p_offset = hdr + split,
				      .p_paddr = split, .p_filesz = MEM - split,
				      .p_memsz = MEM - split };
	} else {
		Elf32_Ehdr *e = (Elf32_Ehdr *)f;
		Elf32_Phdr *ph = (Elf32_Phdr *)(f + sizeof(*e));

		memcpy(e->e_ident, ELFMAG, SELFMAG);
		e->e_ident[EI_CLASS] = ELFCLASS32;
		e->e_ident[EI_DATA] = ELFDATA2LSB;
		e->e_type = ET_CORE;
		e->e_machine = EM_386;
		e->e_phoff = sizeof(*e);
		e->e_phentsize = sizeof(*ph);
		e->e_phnum = 2;
		ph[0] = (Elf32_Phdr){ .p_type = PT_LOAD, .p_offset = hdr + split,
				      .p_paddr = split, .p_filesz = MEM - split,
				      .p_memsz = MEM - split };
		ph[1] = (Elf32_Phdr){ .p_type = PT_LOAD, .p_offset = hdr, .p_paddr = 0,
				      .p_filesz = split, .p_memsz = split };
	}
	memcpy(f + hdr, g->mem, MEM);
	*size = sz;
	return f;
}

/* Catches: PT_LOADs read by file offset or virtual address instead of p_paddr, or a split slice missed. */
TEST_F(mem, elf_cores_read_like_raw)
{
	uint64_t p = find_page(&self->g, 0, true, false);
	uint64_t gpa = (uint8_t *)page(&self->g, 0, p) - self->g.mem;
	struct memcheck raw;
	char err[CHECK_ERR_MAX];
	struct dump d;
	size_t size;
	uint8_t *f;

	ASSERT_NE(~0ULL, p);
	ASSERT_EQ(0, check(&self->g, &raw));
	for (int is64 = 0; is64 < 2; is64++) {
		/* Split inside a page vCPU 0 wrote. */
		f = elf_core(&self->g, is64, gpa + 2048, &size);
		ASSERT_NE(NULL, f);
		ASSERT_EQ(0, dump_parse(f, size, &d, err, sizeof(err))) TH_LOG("%s", err);
		EXPECT_EQ(DUMP_ELF, d.format);
		EXPECT_EQ(2, d.nr);
		/* A page across the split is in no one segment: reported, not read past. */
		EXPECT_EQ(1, memcheck_run(&d, &self->r));
		free(f);
		f = elf_core(&self->g, is64, 5ULL << 20, &size);
		ASSERT_EQ(0, dump_parse(f, size, &d, err, sizeof(err))) TH_LOG("%s", err);
		ASSERT_EQ(0, memcheck_run(&d, &self->r)) TH_LOG("%s", self->r.first);
		EXPECT_EQ(raw.checked, self->r.checked);
		EXPECT_EQ(raw.ops, self->r.ops);
		free(f);
	}
}

/* Catches: offsets and counts from the file used unchecked. */
TEST_F(mem, malformed_dumps_are_refused)
{
	char err[CHECK_ERR_MAX];
	struct dump d;
	size_t size;
	uint8_t *f = elf_core(&self->g, true, 5ULL << 20, &size);
	Elf64_Ehdr *e = (Elf64_Ehdr *)f;
	Elf64_Phdr *ph = (Elf64_Phdr *)(f + sizeof(*e));

	ASSERT_NE(NULL, f);
	ph[2].p_filesz += 4096;
	EXPECT_EQ(-EINVAL, dump_parse(f, size, &d, err, sizeof(err)));
	EXPECT_NE(NULL, strstr(err, "beyond the file")) TH_LOG("%s", err);
	ph[2].p_filesz -= 4096;
	e->e_phoff = size - 10;
	EXPECT_EQ(-EINVAL, dump_parse(f, size, &d, err, sizeof(err)));
	EXPECT_NE(NULL, strstr(err, "program headers"));
	e->e_phoff = sizeof(*e);
	e->e_type = ET_EXEC;
	EXPECT_EQ(-EINVAL, dump_parse(f, size, &d, err, sizeof(err)));
	EXPECT_NE(NULL, strstr(err, "not a core dump"));
	e->e_type = ET_CORE;
	EXPECT_EQ(-EINVAL, dump_parse(f, sizeof(*e) - 1, &d, err, sizeof(err)));
	memcpy(f, "KDUMP   ", 8);
	EXPECT_EQ(-EINVAL, dump_parse(f, size, &d, err, sizeof(err)));
	EXPECT_NE(NULL, strstr(err, "kdump-compressed"));
	EXPECT_EQ(-EINVAL, dump_parse(f, 0, &d, err, sizeof(err)));
	free(f);
	/* A raw dump too short for the mailbox. */
	ASSERT_EQ(0, dump_parse(self->g.mem, GUEST_MAILBOX_GPA + 8, &d, err, sizeof(err)));
	EXPECT_EQ(-EINVAL, memcheck_run(&d, &self->r));
	/* ... or for the work area. */
	ASSERT_EQ(0, dump_parse(self->g.mem, MEM - 4096, &d, err, sizeof(err)));
	EXPECT_EQ(1, memcheck_run(&d, &self->r));
}

TEST_HARNESS_MAIN
