// SPDX-License-Identifier: GPL-2.0
/*
 * The VMM's guest setup that needs no KVM: the identity page tables (walked
 * here the way the CPU walks them) and the check of the embedded payload,
 * loaded from the guest image the way the direct boot loads it.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

/* The 6.1 harness defines functions without prototypes (userspace/Makefile has -Wmissing-prototypes). */
#pragma GCC diagnostic ignored "-Wmissing-prototypes"
#include "kselftest_harness.h"
#include "vmm/vmm.h"

#define P	1ULL
#define RW	2ULL
#define PS	0x80ULL
#define ADDR	0x000ffffffffff000ULL

/* Walks the tables in low like the CPU: gva -> gpa, or ~0 if not mapped. */
static uint64_t walk(const uint8_t *low, uint64_t gva)
{
	const uint64_t *pml4 = (const uint64_t *)(low + GUEST_PML4_GPA);
	uint64_t e = pml4[(gva >> 39) & 511];

	if (!(e & P))
		return ~0ULL;
	e = ((const uint64_t *)(low + (e & ADDR)))[(gva >> 30) & 511];
	if (!(e & P) || (e & PS))
		return ~0ULL;	/* no 1 GiB pages here */
	e = ((const uint64_t *)(low + (e & ADDR)))[(gva >> 21) & 511];
	if (!(e & P) || !(e & PS) || !(e & RW))
		return ~0ULL;
	return (e & ADDR & ~(GUEST_LARGE_PAGE_SIZE - 1)) | (gva & (GUEST_LARGE_PAGE_SIZE - 1));
}

TEST(page_tables_map_ram_one_to_one)
{
	static const uint64_t sizes[] = {
		VM_MIN_MEM, 32ULL << 20, (1ULL << 30) + (2ULL << 20), 5ULL << 30, VM_MAX_MEM,
	};
	uint8_t *low = malloc(GUEST_WORK_BASE);
	unsigned int i;

	ASSERT_NE(NULL, low);
	for (i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
		uint64_t mem = sizes[i], a;

		memset(low, 0xaa, GUEST_WORK_BASE);
		ASSERT_EQ(0, vmm_build_page_tables(low, mem));
		for (a = 0; a < mem; a += GUEST_LARGE_PAGE_SIZE / 2 + 4096 * 3)
			ASSERT_EQ(a, walk(low, a));
		ASSERT_EQ(mem - 8, walk(low, mem - 8));
		/* Nothing beyond RAM: a stray access faults in the guest. */
		EXPECT_EQ(~0ULL, walk(low, mem));
		EXPECT_EQ(~0ULL, walk(low, mem + (1ULL << 30)));
		EXPECT_EQ(~0ULL, walk(low, 1ULL << 39));
	}
	free(low);
}

TEST(page_tables_reject_bad_sizes)
{
	uint8_t *low = calloc(1, GUEST_WORK_BASE);

	ASSERT_NE(NULL, low);
	EXPECT_EQ(-EINVAL, vmm_build_page_tables(low, 0));
	EXPECT_EQ(-EINVAL, vmm_build_page_tables(low, (32ULL << 20) + 4096));
	EXPECT_EQ(-EINVAL, vmm_build_page_tables(low, VM_MAX_MEM + GUEST_LARGE_PAGE_SIZE));
	free(low);
}

/* The built-in image's payload (file bytes from GUEST_CODE_BASE), as vm_load_guest loads it. */
static uint8_t *payload(size_t *size)
{
	uint8_t *low = calloc(1, GUEST_WORK_BASE);
	struct vmm_image img;

	if (!low || vmm_image_load(vmm_guest_image_start,
				   vmm_guest_image_end - vmm_guest_image_start, low,
				   GUEST_WORK_BASE, &img, NULL) || img.lo != GUEST_CODE_BASE) {
		free(low);
		return NULL;
	}
	*size = img.file_end - GUEST_CODE_BASE;
	memmove(low, low + GUEST_CODE_BASE, *size);
	return low;
}

TEST(embedded_payload_is_valid)
{
	const struct guest_payload_hdr *h = NULL;
	size_t size = 0;
	uint8_t *img = payload(&size);

	ASSERT_NE(NULL, img);
	ASSERT_EQ((int)size, vmm_payload_check(img, size, &h));
	ASSERT_NE(NULL, h);
	EXPECT_EQ(GUEST_CODE_BASE, h->base);
	EXPECT_GE(GUEST_CODE_BASE + GUEST_CODE_MAX, h->end);
	TH_LOG("payload: %zu bytes, %llu with bss", size,
	       (unsigned long long)(h->end - h->base));
	free(img);
}

TEST(corrupt_payloads_are_refused)
{
	size_t size = 0;
	uint8_t *orig = payload(&size), *img = malloc(size);
	struct guest_payload_hdr *h = (struct guest_payload_hdr *)img;
	uint64_t *exc;

	ASSERT_NE(NULL, orig);
	ASSERT_NE(NULL, img);
#define RESET() memcpy(img, orig, size)
	RESET();
	EXPECT_EQ(-ENOEXEC, vmm_payload_check(img, sizeof(*h) - 1, NULL));
	h->magic ^= 1;
	EXPECT_EQ(-ENOEXEC, vmm_payload_check(img, size, NULL));
	RESET();
	h->abi_version++;
	EXPECT_EQ(-ENOEXEC, vmm_payload_check(img, size, NULL));
	RESET();
	h->base += 4096;
	EXPECT_EQ(-ENOEXEC, vmm_payload_check(img, size, NULL));
	RESET();
	h->end = h->base + GUEST_CODE_MAX + 1;
	EXPECT_EQ(-E2BIG, vmm_payload_check(img, size, NULL));
	RESET();
	h->end = h->base + size - 1;	/* image longer than it says */
	EXPECT_EQ(-E2BIG, vmm_payload_check(img, size, NULL));
	RESET();
	h->entry = h->base + size;
	EXPECT_EQ(-ENOEXEC, vmm_payload_check(img, size, NULL));
	RESET();
	h->timer_handler = 0;
	EXPECT_EQ(-ENOEXEC, vmm_payload_check(img, size, NULL));
	RESET();
	h->exc_table = h->base + size - 8;
	EXPECT_EQ(-ENOEXEC, vmm_payload_check(img, size, NULL));
	RESET();
	exc = (uint64_t *)(img + (h->exc_table - h->base));
	exc[13] = GUEST_WORK_BASE;
	EXPECT_EQ(-ENOEXEC, vmm_payload_check(img, size, NULL));
	RESET();
	EXPECT_EQ((int)size, vmm_payload_check(img, size, NULL));
#undef RESET
	free(img);
	free(orig);
}

TEST_HARNESS_MAIN
