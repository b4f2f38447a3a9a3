// SPDX-License-Identifier: GPL-2.0
/*
 * The guest ABI's shared code, on the host (no KVM): the random generator
 * the host replays, the work-area slicing, the version-table size, and the
 * page-content generator (its class mix, its compressibility, and that its
 * check catches any change).
 */
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include <zstd.h>

/* The 6.1 harness defines functions without prototypes (userspace/Makefile has -Wmissing-prototypes). */
#pragma GCC diagnostic ignored "-Wmissing-prototypes"
#include "kselftest_harness.h"
#include "vmm/guest_abi.h"

TEST(rand_is_splitmix64)
{
	uint64_t s = 0;

	/* Published first outputs of splitmix64 seeded with 0. */
	EXPECT_EQ(0xe220a8397b1dcdafULL, guest_rand(&s));
	EXPECT_EQ(0x6e789e6aa1b965f4ULL, guest_rand(&s));
	EXPECT_EQ(0x06c45d188009454fULL, guest_rand(&s));
}

TEST(rand_replays_and_covers_the_range)
{
	uint64_t a = 1234, b = 1234, hist[10] = {}, i;

	for (i = 0; i < 100000; i++) {
		uint64_t x = guest_rand_below(&a, 10);

		ASSERT_EQ(x, guest_rand_below(&b, 10));
		ASSERT_GT(10, x);
		hist[x]++;
	}
	for (i = 0; i < 10; i++) {
		EXPECT_LT(9000, hist[i]);
		EXPECT_GT(11000, hist[i]);
	}
	EXPECT_EQ(0, guest_rand_below(&a, 0));
	EXPECT_NE(guest_wl_seed(1, 0), guest_wl_seed(1, 1));
}

TEST(slices_partition_the_work_area)
{
	static const uint64_t sizes[] = { 1, 31, 1024, 7168, 1000003 };
	unsigned int s, nr, i;

	for (s = 0; s < sizeof(sizes) / sizeof(sizes[0]); s++) {
		for (nr = 1; nr <= GUEST_MAX_VCPUS; nr++) {
			uint64_t next = 0, first, n;

			for (i = 0; i < nr; i++) {
				guest_slice(sizes[s], nr, i, &first, &n);
				ASSERT_EQ(next, first);
				ASSERT_GE(sizes[s] / nr + 1, n);
				next = first + n;
			}
			ASSERT_EQ(sizes[s], next);
		}
	}
}

TEST(version_table_is_the_smallest_that_fits)
{
	uint64_t n;

	EXPECT_EQ(0, guest_table_pages(0));
	for (n = 1; n < 5000000; n += n / 7 + 1) {
		uint64_t t = guest_table_pages(n);

		ASSERT_LE(n - t, t * GUEST_VERSIONS_PER_PAGE);
		ASSERT_GT(n - (t - 1), (t - 1) * GUEST_VERSIONS_PER_PAGE);
	}
}

TEST(page_classes_mix_as_documented)
{
	uint64_t count[3] = {}, p, n = 200000;

	for (p = 0; p < n; p++)
		count[guest_page_class(p)]++;
	/* 25% zero, 40% text, 35% random, within 1% of the pages. */
	EXPECT_LT(n * 24 / 100, count[GUEST_PAGE_ZERO]);
	EXPECT_GT(n * 26 / 100, count[GUEST_PAGE_ZERO]);
	EXPECT_LT(n * 39 / 100, count[GUEST_PAGE_TEXT]);
	EXPECT_GT(n * 41 / 100, count[GUEST_PAGE_TEXT]);
	EXPECT_LT(n * 34 / 100, count[GUEST_PAGE_RANDOM]);
	EXPECT_GT(n * 36 / 100, count[GUEST_PAGE_RANDOM]);
}

static uint64_t first_page_of(enum guest_page_class c)
{
	uint64_t p = 0;

	while (guest_page_class(p) != c)
		p++;
	return p;
}

TEST(content_compresses_by_class)
{
	uint64_t page[GUEST_PAGE_QWORDS];
	char out[ZSTD_COMPRESSBOUND(GUEST_PAGE_SIZE)];
	size_t z[3];
	int c;

	for (c = GUEST_PAGE_ZERO; c <= GUEST_PAGE_RANDOM; c++) {
		guest_page_fill(page, first_page_of(c), 3);
		z[c] = ZSTD_compress(out, sizeof(out), page, sizeof(page), 3);
		ASSERT_FALSE(ZSTD_isError(z[c]));
	}
	TH_LOG("zstd -3 of a 4096-byte page: zero %zu, text %zu, random %zu bytes",
	       z[GUEST_PAGE_ZERO], z[GUEST_PAGE_TEXT], z[GUEST_PAGE_RANDOM]);
	EXPECT_GT(64, z[GUEST_PAGE_ZERO]);
	EXPECT_GT(GUEST_PAGE_SIZE / 3, z[GUEST_PAGE_TEXT]);
	EXPECT_LT(GUEST_PAGE_SIZE * 95 / 100, z[GUEST_PAGE_RANDOM]);
}

TEST(check_catches_every_change)
{
	uint64_t page[GUEST_PAGE_QWORDS];
	int c;
	unsigned int q;

	for (c = GUEST_PAGE_ZERO; c <= GUEST_PAGE_RANDOM; c++) {
		uint64_t p = first_page_of(c);

		guest_page_fill(page, p, 7);
		ASSERT_EQ(-1, guest_page_check(page, p, 7));
		if (c != GUEST_PAGE_ZERO) {
			/* Another version or another page is other content. */
			EXPECT_LE(0, guest_page_check(page, p, 8));
			EXPECT_LE(0, guest_page_check(page, p + 1, 7));
			EXPECT_EQ(GUEST_PAGE_MAGIC, page[0]);
			EXPECT_EQ(p, page[1]);
			EXPECT_EQ(7, page[2] & 0xffffffff);
		}
		for (q = 0; q < GUEST_PAGE_QWORDS; q += 37) {
			page[q] ^= 1ULL << (q % 64);
			EXPECT_EQ((int)q, guest_page_check(page, p, 7));
			page[q] ^= 1ULL << (q % 64);
		}
	}
}

TEST(mailbox_layout)
{
	/* The host and the guest see one layout; the slots stay 256 bytes apart. */
	EXPECT_EQ(256, sizeof(struct guest_vcpu_mailbox));
	EXPECT_EQ(0, offsetof(struct guest_mailbox, vcpu) % 64);
	EXPECT_GE(GUEST_MAILBOX_SIZE, sizeof(struct guest_mailbox));
	EXPECT_EQ(0, offsetof(struct guest_vcpu_mailbox, cmd_seq));
	EXPECT_EQ(GUEST_WRITE_VALUE(1, 0), (1ULL << 32) | 1);
}

TEST_HARNESS_MAIN
