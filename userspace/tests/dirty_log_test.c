// SPDX-License-Identifier: GPL-2.0
/*
 * Unit tests (no KVM, no module) for what the trackers share: walking a
 * dirty log (iterator, for_each, test, popcount against a brute-force
 * reference, with and without summaries, odd part sizes, stray bits past a
 * part's end), backend names, and the netlink client and `vmdirty status`
 * when the module is not there.
 */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "kselftest_harness.h"

#include "nl.h"
#include "track/track.h"

#define NPARTS 6
static const uint64_t part_pages[NPARTS] = { 1, 63, 64, 65, 4097, 70001 };

struct fake_log {
	struct dirty_log log;
	uint64_t *bits[NPARTS], *summary[NPARTS];
};

static uint64_t rng_next(uint64_t *s)
{
	return guest_rand(s);
}

/* Parts with gaps between them; density d in 1/1024; stray tail bits set. */
static void fake_build(struct fake_log *f, uint64_t seed, unsigned int d, int summary_mode)
{
	uint64_t first = 7;

	memset(&f->log, 0, sizeof(f->log));
	f->log.nr_parts = NPARTS;
	for (int i = 0; i < NPARTS; i++) {
		uint64_t np = part_pages[i], w = (np + 63) / 64, sw = (w + 63) / 64;

		f->bits[i] = calloc(w, 8);
		f->summary[i] = calloc(sw, 8);
		for (uint64_t p = 0; p < np; p++)
			if (rng_next(&seed) % 1024 < d)
				f->bits[i][p / 64] |= 1ull << (p % 64);
		if (np % 64)	/* garbage past npages must never be reported */
			f->bits[i][w - 1] |= ~0ull << (np % 64);
		for (uint64_t k = 0; k < w; k++) {
			if (f->bits[i][k] || (summary_mode == 2 && rng_next(&seed) % 3 == 0))
				f->summary[i][k / 64] |= 1ull << (k % 64);
		}
		f->log.part[i] = (struct dirty_log_part){
			.first_page = first, .npages = np, .bits = f->bits[i],
			.summary = summary_mode ? f->summary[i] : NULL,
		};
		first += np + 1000 * (uint64_t)i;
	}
}

static void fake_free(struct fake_log *f)
{
	for (int i = 0; i < NPARTS; i++) {
		free(f->bits[i]);
		free(f->summary[i]);
	}
}

static bool ref_test(const struct fake_log *f, uint64_t page)
{
	for (int i = 0; i < NPARTS; i++) {
		const struct dirty_log_part *p = &f->log.part[i];

		if (page >= p->first_page && page < p->first_page + p->npages) {
			uint64_t o = page - p->first_page;

			return (f->bits[i][o / 64] >> (o % 64)) & 1;
		}
	}
	return false;
}

struct collect {
	uint64_t *pages;
	size_t n, stop_at;
};

static int collect_one(void *ctx, uint64_t page)
{
	struct collect *c = ctx;

	c->pages[c->n++] = page;
	return c->stop_at && c->n == c->stop_at ? 42 : 0;
}

TEST(iterator_matches_reference)
{
	static const unsigned int density[] = { 0, 1, 30, 512, 1024 };
	uint64_t *ref = malloc(sizeof(uint64_t) * 80000);
	uint64_t *got = malloc(sizeof(uint64_t) * 80000);

	ASSERT_NE(NULL, ref);
	ASSERT_NE(NULL, got);
	for (int mode = 0; mode < 3; mode++) {
		for (unsigned int di = 0; di < sizeof(density) / sizeof(density[0]); di++) {
			struct fake_log f;
			struct collect c = { .pages = got };
			struct dirty_log_iter it;
			size_t nref = 0, nit = 0;
			uint64_t page, last;

			fake_build(&f, 1000 + di * 7 + mode, density[di], mode);
			last = f.log.part[NPARTS - 1].first_page + f.log.part[NPARTS - 1].npages + 70;
			for (page = 0; page < last; page++)
				if (ref_test(&f, page))
					ref[nref++] = page;
			/* test() agrees with the reference everywhere. */
			for (page = 0; page < last; page++)
				ASSERT_EQ(ref_test(&f, page), dirty_log_test(&f.log, page))
					TH_LOG("page %llu mode %d", (unsigned long long)page, mode);
			dirty_log_iter_init(&it, &f.log);
			while (dirty_log_next(&it, &page)) {
				ASSERT_LT(nit, nref);
				ASSERT_EQ(ref[nit], page) TH_LOG("mode %d density %u", mode, density[di]);
				nit++;
			}
			EXPECT_EQ(nref, nit);
			EXPECT_FALSE(dirty_log_next(&it, &page));
			EXPECT_EQ(0, dirty_log_for_each(&f.log, collect_one, &c));
			ASSERT_EQ(nref, c.n);
			EXPECT_EQ(0, memcmp(ref, got, nref * sizeof(*ref)));
			EXPECT_EQ(nref, dirty_log_popcount(&f.log));
			if (nref > 3) {
				c = (struct collect){ .pages = got, .stop_at = 3 };
				EXPECT_EQ(42, dirty_log_for_each(&f.log, collect_one, &c));
				EXPECT_EQ(3, c.n);
			}
			fake_free(&f);
		}
	}
	free(ref);
	free(got);
}

TEST(empty_log)
{
	struct dirty_log log = { 0 };
	struct dirty_log_iter it;
	uint64_t page;

	dirty_log_iter_init(&it, &log);
	EXPECT_FALSE(dirty_log_next(&it, &page));
	EXPECT_EQ(0, dirty_log_popcount(&log));
	EXPECT_FALSE(dirty_log_test(&log, 0));
}

TEST(backend_names)
{
	enum track_backend b;

	for (int i = 0; i < TRACK_NR; i++) {
		ASSERT_EQ(0, track_backend_parse(track_backend_name(i), &b));
		EXPECT_EQ(i, b);
	}
	EXPECT_EQ(-EINVAL, track_backend_parse("bitmaps", &b));
	EXPECT_EQ(-EINVAL, track_backend_parse("", &b));
	EXPECT_STREQ("?", track_backend_name(TRACK_NR));
	EXPECT_EQ(-EINVAL, track_vm_config(TRACK_AUTO, &(struct vm_config){ 0 }));
}

TEST(vm_config_per_backend)
{
	struct vm_config c = { .ring_entries = 1024, .manual_protect = false, .log_dirty = true };

	ASSERT_EQ(0, track_vm_config(TRACK_BITMAP, &c));
	EXPECT_EQ(0, c.ring_entries);
	EXPECT_TRUE(c.manual_protect);
	EXPECT_FALSE(c.log_dirty);
	c = (struct vm_config){ .manual_protect = true };
	ASSERT_EQ(0, track_vm_config(TRACK_RING, &c));
	EXPECT_EQ(TRACK_RING_DEFAULT, c.ring_entries);
	EXPECT_FALSE(c.manual_protect);
	c = (struct vm_config){ .ring_entries = 512 };
	ASSERT_EQ(0, track_vm_config(TRACK_KMOD, &c));
	EXPECT_EQ(512, c.ring_entries);
	c = (struct vm_config){ .ring_entries = 1000 };
	EXPECT_EQ(-EINVAL, track_vm_config(TRACK_RING, &c));
}

/* Where the module cannot be (this machine): a clear -ENOENT. */
TEST(netlink_without_module)
{
	struct vmdirty_genl *nl = NULL;
	int ret = vmdirty_genl_open(&nl);

	if (ret == 0) {
		vmdirty_genl_close(nl);
		SKIP(return, "the vmdirty family is registered here");
	}
	EXPECT_EQ(-ENOENT, ret);
}

/* Runs the agent (next to the unit tests' directory), returns its status. */
static int agent(const char *args, char *err, size_t len)
{
	char exe[PATH_MAX], cmd[PATH_MAX + 256];
	ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
	FILE *f;
	size_t got;
	int st;

	if (n <= 0)
		return -1;
	exe[n] = 0;
	*strrchr(exe, '/') = 0;		/* build/userspace/tests */
	snprintf(cmd, sizeof(cmd), "%s/../../vmdirty %s 2>&1", exe, args);
	f = popen(cmd, "r");
	if (!f)
		return -1;
	got = fread(err, 1, len - 1, f);
	err[got] = 0;
	st = pclose(f);
	return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

TEST(status_command_errors)
{
	char out[4096];
	struct vmdirty_genl *nl = NULL;

	EXPECT_EQ(2, agent("status --bogus", out, sizeof(out)));
	EXPECT_EQ(2, agent("status --count 3", out, sizeof(out)));
	EXPECT_NE(NULL, strstr(out, "need --watch")) TH_LOG("%s", out);
	EXPECT_EQ(2, agent("status --watch --interval 1", out, sizeof(out)));
	EXPECT_EQ(2, agent("status extra", out, sizeof(out)));
	EXPECT_EQ(0, agent("status --help", out, sizeof(out)));
	if (vmdirty_genl_open(&nl) == 0) {
		vmdirty_genl_close(nl);
		SKIP(return, "the vmdirty family is registered here");
	}
	EXPECT_EQ(1, agent("status", out, sizeof(out)));
	EXPECT_NE(NULL, strstr(out, "not loaded")) TH_LOG("%s", out);
	EXPECT_EQ(1, agent("status --json --watch", out, sizeof(out)));
}

TEST_HARNESS_MAIN
