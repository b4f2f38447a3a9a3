// SPDX-License-Identifier: GPL-2.0
/*
 * The guest image as a multiboot loader sees it (vmm/image.c), without
 * KVM: the built-in file is what QEMU's loader accepts (ELF32, i386, a
 * multiboot header in its first 8 KiB, the 32-bit entry), every way a file
 * can be wrong is refused with a reason, loading zeroes bss, and the
 * multiboot information is what the guest reads.
 */
#include <elf.h>
#include <stdlib.h>
#include <string.h>

/* The 6.1 harness defines functions without prototypes (userspace/Makefile has -Wmissing-prototypes). */
#pragma GCC diagnostic ignored "-Wmissing-prototypes"
#include "kselftest_harness.h"
#include "vmm/vmm.h"

#define MEM	(64ULL << 20)

static size_t image_size(void)
{
	return vmm_guest_image_end - vmm_guest_image_start;
}

/* Catches: an image QEMU refuses ("Cannot load x86-64 image") or that the direct boot cannot use. */
TEST(built_in_image_is_a_multiboot_elf32)
{
	const Elf32_Ehdr *e = (const void *)vmm_guest_image_start;
	const struct guest_payload_hdr *h;
	struct vmm_image img;
	const char *why = NULL;
	uint8_t *mem = calloc(1, GUEST_WORK_BASE);

	ASSERT_NE(NULL, mem);
	ASSERT_EQ(0, vmm_image_check(vmm_guest_image_start, image_size(), MEM, &img, &why))
		TH_LOG("%s", why);
	EXPECT_EQ(ELFCLASS32, e->e_ident[EI_CLASS]);
	EXPECT_EQ(EM_386, e->e_machine);
	EXPECT_EQ(3, img.mb_flags);
	EXPECT_EQ(GUEST_CODE_BASE, img.lo);
	EXPECT_GE(GUEST_CODE_BASE + GUEST_CODE_MAX, img.hi);
	ASSERT_EQ(0, vmm_image_load(vmm_guest_image_start, image_size(), mem, GUEST_WORK_BASE,
				    &img, &why));
	/* Two ways in: the multiboot entry (ELF) is not the direct one (payload header). */
	ASSERT_LT(0, vmm_payload_check(mem + GUEST_CODE_BASE, img.file_end - GUEST_CODE_BASE, &h));
	EXPECT_NE(h->entry, img.entry);
	EXPECT_EQ(h->end, img.hi);
	TH_LOG("image %zu bytes: segment %#llx-%#llx, multiboot entry %#x, direct entry %#llx",
	       image_size(), (unsigned long long)img.lo, (unsigned long long)img.hi, img.entry,
	       (unsigned long long)h->entry);
	free(mem);
}

/* Catches: bss left as the RAM held it (the guest's variables start non-zero). */
TEST(load_zeroes_bss)
{
	uint8_t *mem = malloc(GUEST_WORK_BASE);
	struct vmm_image img;
	uint64_t a;

	ASSERT_NE(NULL, mem);
	memset(mem, 0xaa, GUEST_WORK_BASE);
	ASSERT_EQ(0, vmm_image_load(vmm_guest_image_start, image_size(), mem, GUEST_WORK_BASE,
				    &img, NULL));
	ASSERT_LT(img.file_end, img.hi);
	for (a = img.file_end; a < img.hi; a++)
		ASSERT_EQ(0, mem[a]);
	EXPECT_EQ(0xaa, mem[img.hi]);
	EXPECT_EQ(0xaa, mem[img.lo - 1]);
	free(mem);
}

/* Catches: a loader that takes a header, a segment or an entry without checking it. */
TEST(bad_images_are_refused_with_a_reason)
{
	size_t size = image_size();
	uint8_t *f = malloc(size);
	Elf32_Ehdr *e = (Elf32_Ehdr *)f;
	Elf32_Phdr *ph;
	struct vmm_image img;
	const char *why;
	uint32_t *mb = NULL, off;

	ASSERT_NE(NULL, f);
#define RESET() memcpy(f, vmm_guest_image_start, size)
#define REFUSED(err, text) do { \
		why = ""; \
		EXPECT_EQ(err, vmm_image_check(f, size, MEM, &img, &why)); \
		EXPECT_NE(NULL, strstr(why, text)) TH_LOG("'%s' for '%s'", why, text); \
		RESET(); \
	} while (0)
	RESET();
	ph = (Elf32_Phdr *)(f + e->e_phoff);
	for (off = 0; off < 8192; off += 4)
		if (*(uint32_t *)(f + off) == 0x1badb002) {
			mb = (uint32_t *)(f + off);
			break;
		}
	ASSERT_NE(NULL, mb);

	f[1] = 'X';
	REFUSED(-ENOEXEC, "not an ELF file");
	f[EI_CLASS] = ELFCLASS64;
	REFUSED(-ENOEXEC, "ELF32");
	e->e_machine = EM_X86_64;
	REFUSED(-ENOEXEC, "i386");
	e->e_type = ET_DYN;
	REFUSED(-ENOEXEC, "i386");
	e->e_phoff = size - 4;
	REFUSED(-ENOEXEC, "program headers");
	e->e_phnum = 0;
	REFUSED(-ENOEXEC, "program headers");
	e->e_phentsize = 40;
	REFUSED(-ENOEXEC, "program headers");
	ph[0].p_filesz = size;
	REFUSED(-ENOEXEC, "beyond the file");
	ph[0].p_filesz = ph[0].p_memsz + 1;
	REFUSED(-ENOEXEC, "beyond the file");
	ph[0].p_paddr = 0x8000;
	REFUSED(-E2BIG, "outside RAM");
	ph[0].p_memsz = MEM;
	REFUSED(-E2BIG, "outside RAM");
	ph[0].p_type = PT_NOTE;
	REFUSED(-ENOEXEC, "no loadable segment");
	e->e_entry = GUEST_CODE_BASE - 1;
	REFUSED(-ENOEXEC, "entry point");
	mb[0] = 0;
	REFUSED(-ENOEXEC, "no multiboot header");
	mb[2]++;
	REFUSED(-ENOEXEC, "no multiboot header");
	mb[1] |= 1u << 2;	/* a video mode */
	mb[2] -= 1u << 2;
	REFUSED(-ENOEXEC, "lacks");
	mb[1] |= 1u << 16;	/* a.out kludge: load by address fields */
	mb[2] -= 1u << 16;
	REFUSED(-ENOEXEC, "address fields");
	EXPECT_EQ(-ENOEXEC, vmm_image_check(f, sizeof(*e) - 1, MEM, &img, NULL));
	EXPECT_EQ(0, vmm_image_check(f, size, MEM, &img, NULL));
#undef REFUSED
#undef RESET
	free(f);
}

struct mbi {
	uint32_t flags, mem_lower, mem_upper, boot_device, cmdline;
	uint32_t mods_count, mods_addr, syms[4];
	uint32_t mmap_length, mmap_addr;
	uint32_t drives_length, drives_addr, config_table, boot_loader_name;
};

struct mmap {
	uint32_t size;
	uint64_t addr, len;
	uint32_t type;
} __attribute__((packed));

/*
 * Catches: a memory map the guest reads as less RAM than the VM has (its
 * rule: the RAM entry at 1 MiB and what follows it without a gap), info
 * in the guest's own layout, or a cmdline cut short.
 */
TEST(multiboot_info_is_what_the_guest_reads)
{
	static const uint64_t sizes[] = { 6ULL << 20, 512ULL << 20, 5ULL << 30 };
	uint8_t *low = calloc(1, GUEST_WORK_BASE);
	char line[GUEST_LOADER_END];
	unsigned int s;

	ASSERT_NE(NULL, low);
	for (s = 0; s < 3; s++) {
		int gpa = vmm_multiboot_info(low, sizes[s], "workload=seq vcpus=2");
		const struct mbi *m = (const void *)(low + gpa);
		uint64_t end = 0, p;

		ASSERT_LE(GUEST_LOADER_GPA, gpa);
		ASSERT_GT(GUEST_LOADER_END, gpa);
		EXPECT_EQ(0x245, m->flags);	/* memory, cmdline, mmap, loader name */
		EXPECT_EQ(640, m->mem_lower);
		EXPECT_EQ((sizes[s] < (4ULL << 30) ? sizes[s] : 4ULL << 30) / 1024 - 1024,
			  m->mem_upper);
		EXPECT_STREQ("workload=seq vcpus=2", (char *)low + m->cmdline);
		EXPECT_STREQ("vmdirty", (char *)low + m->boot_loader_name);
		ASSERT_LE(GUEST_LOADER_GPA, m->mmap_addr);
		ASSERT_GE(GUEST_LOADER_END, m->mmap_addr + m->mmap_length);
		for (p = m->mmap_addr; p < m->mmap_addr + m->mmap_length;) {
			const struct mmap *e = (const void *)(low + p);

			if (e->type == 1 && e->addr <= (1 << 20) && e->addr + e->len > (1 << 20))
				end = e->addr + e->len;
			p += e->size + 4;
		}
		EXPECT_EQ(sizes[s], end);
	}
	memset(line, 'x', sizeof(line) - 1);
	line[sizeof(line) - 1] = 0;
	EXPECT_EQ(-E2BIG, vmm_multiboot_info(low, 64ULL << 20, line));
	free(low);
}

TEST_HARNESS_MAIN
