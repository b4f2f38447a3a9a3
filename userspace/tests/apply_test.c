// SPDX-License-Identifier: GPL-2.0
/*
 * Round-ordered apply: newer rounds win whatever the delivery order and
 * however many threads apply at once; bad batches apply nothing; the end
 * check finds missing pages, wrong totals and a RAM hash mismatch.
 */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

/* The 6.1 harness and its fixture macros define functions without prototypes. */
#pragma GCC diagnostic ignored "-Wmissing-prototypes"
#include "kselftest_harness.h"

#include "wire/apply.h"
#include "wire/digest.h"
#include "wire_util.h"

#define PS	4096

/* Content of page gfn in round r: recognizable, never zero. */
static void page_of(uint8_t *p, uint64_t gfn, uint32_t r)
{
	uint64_t v = gfn << 20 | r, seed = v * 0x9e3779b97f4a7c15ull + 1;

	rnd_fill(p, PS, &seed);
	memcpy(p, &v, 8);
}

static uint32_t round_in(const uint8_t *p)
{
	uint64_t v;

	memcpy(&v, p, 8);
	return v & 0xfffff;
}

struct job {
	struct wire_apply *a;
	pthread_barrier_t *bar;
	/* (gfn, round) pairs in the order this thread applies them. */
	uint64_t *gfn;
	uint32_t *round;
	const uint8_t **data;
	unsigned int n, batch;
	int ret;
};

static void *apply_thread(void *arg)
{
	struct job *j = arg;
	struct wire_batch *b = malloc(sizeof(*b));

	pthread_barrier_wait(j->bar);
	for (unsigned int i = 0; i < j->n && !j->ret;) {
		/* A batch holds one round, as a PAGES message does. */
		b->round = j->round[i];
		b->n = 0;
		while (i < j->n && b->n < j->batch && j->round[i] == b->round) {
			b->gfn[b->n] = j->gfn[i];
			b->data[b->n] = j->data[i];
			b->n++;
			i++;
		}
		j->ret = wire_apply_batch(j->a, b);
	}
	free(b);
	return NULL;
}

TEST(newer_round_wins_single_thread)
{
	struct wire_region rg = { 0, 16 * PS };
	uint8_t *mem = calloc(16, PS), *p1 = malloc(PS), *p0 = malloc(PS);
	struct wire_apply_stats st;
	struct wire_apply *a;
	struct wire_batch b = { .n = 1, .gfn = { 3 } };

	ASSERT_EQ(0, wire_apply_create(mem, PS, &rg, 1, &a));
	ASSERT_EQ(-1, wire_apply_round(a, 3));
	page_of(p1, 3, 1);
	page_of(p0, 3, 0);
	b.round = 1;
	b.data[0] = p1;
	ASSERT_EQ(0, wire_apply_batch(a, &b));
	b.round = 0;
	b.data[0] = p0;
	ASSERT_EQ(0, wire_apply_batch(a, &b));
	ASSERT_EQ(0, memcmp(mem + 3 * PS, p1, PS));
	ASSERT_EQ(1, wire_apply_round(a, 3));
	/* The same round twice: the first one stays. */
	b.round = 1;
	ASSERT_EQ(0, wire_apply_batch(a, &b));
	ASSERT_EQ(0, memcmp(mem + 3 * PS, p1, PS));
	/* A zero page of a newer round clears it; an older one does not. */
	b.round = 2;
	b.data[0] = NULL;
	ASSERT_EQ(0, wire_apply_batch(a, &b));
	ASSERT_TRUE(wire_is_zero(mem + 3 * PS, PS));
	b.round = 3;
	ASSERT_EQ(0, wire_apply_batch(a, &b));
	wire_apply_stats(a, &st);
	ASSERT_EQ(1, st.data);
	ASSERT_EQ(1, st.zero);
	ASSERT_EQ(1, st.zero_clean);
	ASSERT_EQ(2, st.stale);
	wire_apply_destroy(a);
	free(mem);
	free(p1);
	free(p0);
}

/*
 * A zero page costs a write only where memory may hold data: on a page
 * never backed (fresh memory) it is not touched, so shmem never allocates
 * it; on a backed page, or one written here, it is cleared.  Catches an
 * apply that reads or clears unbacked pages, and one that skips the clear
 * of a backed page.
 */
TEST(zero_page_writes_only_backed_memory)
{
	struct wire_region rg = { 0, 4 * PS };
	uint8_t *mem = malloc(4 * PS), *pg = malloc(PS);
	struct wire_batch b = { .round = 0, .n = 4, .gfn = { 0, 1, 2, 3 } };
	uint64_t backed = 1u << 1;			/* only gfn 1 */
	struct wire_apply_stats st;
	struct wire_apply *a;

	/* A marker the apply must not touch: proof that it did not write. */
	memset(mem, 0x5a, 4 * PS);
	page_of(pg, 2, 0);
	ASSERT_EQ(0, wire_apply_create(mem, PS, &rg, 1, &a));
	wire_apply_mark_backed(a, &backed);
	b.data[2] = pg;
	ASSERT_EQ(0, wire_apply_batch(a, &b));
	ASSERT_EQ(0x5a, mem[0]);			/* unbacked: untouched */
	ASSERT_TRUE(wire_is_zero(mem + PS, PS));	/* backed: cleared */
	ASSERT_EQ(0, memcmp(mem + 2 * PS, pg, PS));
	ASSERT_EQ(0x5a, mem[3 * PS]);
	/* gfn 2 now holds data: a newer zero page clears it. */
	b.round = 1;
	b.data[2] = NULL;
	ASSERT_EQ(0, wire_apply_batch(a, &b));
	ASSERT_TRUE(wire_is_zero(mem + 2 * PS, PS));
	ASSERT_EQ(0x5a, mem[0]);
	wire_apply_stats(a, &st);
	ASSERT_EQ(1, st.data);
	ASSERT_EQ(2, st.zero);			/* gfn 1 in round 0, gfn 2 in round 1 */
	ASSERT_EQ(5, st.zero_clean);
	wire_apply_destroy(a);
	free(mem);
	free(pg);
}

/*
 * What a batch carries is checked before it is applied: an exact batch
 * with one page that does not match its hash applies nothing (catches an
 * apply that skips the check, or checks after writing); a batch that is
 * not exact (pages read in place, written while sent) applies what came
 * and counts it, and the digest holds what was applied.
 */
TEST(page_hashes_checked_before_apply)
{
	struct wire_region rg = { 0, 4 * PS };
	uint8_t *mem = calloc(4, PS), *p0 = malloc(PS), *p1 = malloc(PS);
	struct wire_batch b = { .round = 0, .n = 2, .gfn = { 1, 2 }, .exact = true };
	struct wire_apply_stats st;
	struct wire_digest want;
	struct wire_apply *a;

	page_of(p0, 1, 0);
	page_of(p1, 2, 0);
	ASSERT_EQ(0, wire_apply_create(mem, PS, &rg, 1, &a));
	b.data[0] = p0;
	b.data[1] = p1;
	b.hash[0] = wire_page_hash(p0, PS);
	b.hash[1] = wire_page_hash(p1, PS) ^ 1;
	ASSERT_EQ(-EBADMSG, wire_apply_batch(a, &b));
	ASSERT_TRUE(wire_is_zero(mem, 4 * PS));
	ASSERT_EQ(-1, wire_apply_round(a, 1));
	ASSERT_EQ(0, wire_apply_digest(a));

	b.exact = false;
	ASSERT_EQ(0, wire_apply_batch(a, &b));
	ASSERT_EQ(0, memcmp(mem + 2 * PS, p1, PS));
	wire_apply_stats(a, &st);
	ASSERT_EQ(1, st.changed);
	/* The digest has what arrived, not what the hash said. */
	ASSERT_EQ(0, wire_digest_init(&want, 4));
	wire_digest_set(&want, 1, wire_page_hash(p0, PS));
	wire_digest_set(&want, 2, wire_page_hash(p1, PS));
	ASSERT_EQ(wire_digest_sum(&want), wire_apply_digest(a));
	/* A newer round of a page replaces its hash; a stale one does not. */
	b.round = 2;
	b.n = 1;
	b.gfn[0] = 2;
	b.data[0] = NULL;
	ASSERT_EQ(0, wire_apply_batch(a, &b));
	b.round = 1;
	b.data[0] = p0;
	b.hash[0] = wire_page_hash(p0, PS);
	ASSERT_EQ(0, wire_apply_batch(a, &b));
	wire_digest_set(&want, 2, wire_zero_page_hash(PS));
	ASSERT_EQ(wire_digest_sum(&want), wire_apply_digest(a));
	wire_digest_release(&want);
	wire_apply_destroy(a);
	free(mem);
	free(p0);
	free(p1);
}

/*
 * The digest is a sum: any order of updates gives the same value, and a
 * page swapped with another does not cancel out (catches a mix that drops
 * the gfn, or an XOR that cancels equal pages).
 */
TEST(digest_order_free_and_position_bound)
{
	struct wire_digest a, b, c;
	uint64_t h1 = 0x1111, h2 = 0x2222;

	ASSERT_EQ(0, wire_digest_init(&a, 8));
	ASSERT_EQ(0, wire_digest_init(&b, 8));
	ASSERT_EQ(0, wire_digest_init(&c, 8));
	wire_digest_set(&a, 3, h1);
	wire_digest_set(&a, 5, h2);
	wire_digest_set(&b, 5, h2);
	wire_digest_set(&b, 3, 0x9999);
	wire_digest_set(&b, 3, h1);
	ASSERT_EQ(wire_digest_sum(&a), wire_digest_sum(&b));
	ASSERT_EQ(2, wire_digest_pages(&b));
	wire_digest_set(&c, 3, h2);
	wire_digest_set(&c, 5, h1);
	ASSERT_NE(wire_digest_sum(&a), wire_digest_sum(&c));
	/* Two equal pages do not cancel. */
	wire_digest_set(&c, 3, h1);
	wire_digest_set(&c, 5, h1);
	ASSERT_NE(0, wire_digest_sum(&c));
	ASSERT_NE(wire_page_hash("", 0), 0);
	wire_digest_release(&a);
	wire_digest_release(&b);
	wire_digest_release(&c);
}

TEST(bad_batch_applies_nothing)
{
	struct wire_region rg[] = { { 0, 4 * PS }, { 8 * PS, 4 * PS } };
	uint8_t *mem = calloc(12, PS), *pg = malloc(PS);
	struct wire_batch b = { .round = 0, .n = 3, .gfn = { 0, 9, 5 } };
	struct wire_apply *a;
	uint64_t first;

	page_of(pg, 0, 0);
	b.data[0] = b.data[1] = b.data[2] = pg;
	ASSERT_EQ(0, wire_apply_create(mem, PS, rg, 2, &a));
	/* gfn 5 is in the hole between the regions. */
	ASSERT_EQ(-ERANGE, wire_apply_batch(a, &b));
	b.gfn[2] = 12;					/* past the end */
	ASSERT_EQ(-ERANGE, wire_apply_batch(a, &b));
	b.gfn[2] = 1ull << 40;
	ASSERT_EQ(-ERANGE, wire_apply_batch(a, &b));
	b.gfn[2] = 3;
	b.round = UINT32_MAX;
	ASSERT_EQ(-ERANGE, wire_apply_batch(a, &b));
	ASSERT_TRUE(wire_is_zero(mem, 12 * PS));
	ASSERT_EQ(8, wire_apply_missing(a, &first));
	ASSERT_EQ(0, first);

	b.round = 0;
	ASSERT_EQ(0, wire_apply_batch(a, &b));
	ASSERT_EQ(5, wire_apply_missing(a, &first));
	ASSERT_EQ(1, first);
	ASSERT_EQ(0, memcmp(mem + 9 * PS, pg, PS));
	wire_apply_destroy(a);

	/* Layouts are checked too. */
	rg[1].gpa = 2 * PS;
	ASSERT_EQ(-EINVAL, wire_apply_create(mem, PS, rg, 2, &a));
	rg[1].gpa = 8 * PS + 1;
	ASSERT_EQ(-EINVAL, wire_apply_create(mem, PS, rg, 2, &a));
	ASSERT_EQ(-EINVAL, wire_apply_create(mem, PS, rg, 0, &a));
	free(mem);
	free(pg);
}

/*
 * nthreads threads apply rounds 0..nrounds-1 of npages pages, each
 * (page, round) delivered once by a random thread in a random order, as
 * several channels would.  The memory must end with every page's newest
 * round and the stamps must say so.
 */
static int race(unsigned int nthreads, unsigned int npages, unsigned int nrounds,
		unsigned int batch, uint64_t seed)
{
	struct wire_region rg = { 0, (uint64_t)npages * PS };
	uint8_t *mem = calloc(npages, PS);
	struct job *jobs = calloc(nthreads, sizeof(*jobs));
	pthread_t *tids = calloc(nthreads, sizeof(*tids));
	uint32_t *newest = calloc(npages, sizeof(*newest));
	uint8_t *pool = malloc((size_t)npages * nrounds * PS);
	pthread_barrier_t bar;
	struct wire_apply *a;
	int ret = 0;

	if (wire_apply_create(mem, PS, &rg, 1, &a))
		return -1;
	for (unsigned int t = 0; t < nthreads; t++) {
		jobs[t].a = a;
		jobs[t].bar = &bar;
		jobs[t].batch = batch;
		jobs[t].gfn = malloc(sizeof(uint64_t) * npages * nrounds);
		jobs[t].round = malloc(sizeof(uint32_t) * npages * nrounds);
		jobs[t].data = malloc(sizeof(*jobs[t].data) * npages * nrounds);
	}
	/* Round r dirties a random half of the pages (round 0: all). */
	for (uint32_t r = 0; r < nrounds; r++)
		for (unsigned int g = 0; g < npages; g++) {
			struct job *j;

			if (r && rnd_next(&seed) % 2)
				continue;
			j = &jobs[rnd_next(&seed) % nthreads];
			j->gfn[j->n] = g;
			j->round[j->n] = r;
			j->data[j->n] = pool + ((size_t)r * npages + g) * PS;
			page_of(pool + ((size_t)r * npages + g) * PS, g, r);
			j->n++;
			newest[g] = r;
		}
	/* Each thread delivers its rounds newest first: the worst order. */
	for (unsigned int t = 0; t < nthreads; t++) {
		struct job *j = &jobs[t];

		for (unsigned int lo = 0, hi = j->n; lo < hi / 2; lo++) {
			unsigned int up = hi - 1 - lo;
			uint64_t g = j->gfn[lo];
			uint32_t r = j->round[lo];
			const uint8_t *d = j->data[lo];

			j->gfn[lo] = j->gfn[up];
			j->round[lo] = j->round[up];
			j->data[lo] = j->data[up];
			j->gfn[up] = g;
			j->round[up] = r;
			j->data[up] = d;
		}
	}
	pthread_barrier_init(&bar, NULL, nthreads);
	for (unsigned int t = 0; t < nthreads; t++)
		pthread_create(&tids[t], NULL, apply_thread, &jobs[t]);
	for (unsigned int t = 0; t < nthreads; t++) {
		pthread_join(tids[t], NULL);
		if (jobs[t].ret)
			ret = jobs[t].ret;
	}
	pthread_barrier_destroy(&bar);
	for (unsigned int g = 0; g < npages && !ret; g++) {
		uint8_t want[PS];

		page_of(want, g, newest[g]);
		if (memcmp(mem + (size_t)g * PS, want, PS) || round_in(mem + (size_t)g * PS) != newest[g] ||
		    wire_apply_round(a, g) != newest[g])
			ret = 1000 + g;
	}
	for (unsigned int t = 0; t < nthreads; t++) {
		free(jobs[t].gfn);
		free(jobs[t].round);
		free(jobs[t].data);
	}
	free(pool);
	wire_apply_destroy(a);
	free(jobs);
	free(tids);
	free(newest);
	free(mem);
	return ret;
}

TEST(out_of_order_two_threads)
{
	/* Round k+1 delivered before round k, from two threads. */
	for (uint64_t s = 1; s <= 20; s++)
		ASSERT_EQ(0, race(2, 512, 2, 64, s));
}

TEST(concurrent_apply_many_threads)
{
	for (uint64_t s = 1; s <= 5; s++)
		ASSERT_EQ(0, race(6, 1024, 6, 32, s));
	/* Tiny batches: the most lock traffic. */
	ASSERT_EQ(0, race(4, 256, 8, 1, 99));
}

static struct wire_stream stream_with(uint32_t rounds, uint64_t pages, uint64_t bytes)
{
	struct wire_stream s;

	wire_stream_init(&s, WIRE_ROLE_DEST, PS);
	s.version = WIRE_VERSION_MAX;
	s.rx_round = rounds;
	s.rx_pages = pages;
	s.rx_bytes = bytes;
	return s;
}

TEST(verify_complete)
{
	struct wire_region rg = { 0, 64 * PS };
	uint8_t *mem = calloc(64, PS), *pg = malloc(PS);
	struct wire_stream s0 = stream_with(3, 40, 4000), s1 = stream_with(3, 30, 3000);
	struct wire_stream *streams[] = { &s0, &s1 };
	struct wire_complete c = { 2, WIRE_COMPLETE_HASH, 1, 70, 7000, 0, 0 };
	struct wire_batch b = { .round = 0, .n = 0, .exact = true };
	struct wire_digest sent;
	struct wire_error err;
	struct wire_apply *a;
	uint64_t hash, want;

	ASSERT_EQ(0, wire_apply_create(mem, PS, &rg, 1, &a));
	ASSERT_EQ(0, wire_digest_init(&sent, 64));
	page_of(pg, 0, 0);
	for (unsigned int g = 0; g < 64; g++) {
		b.gfn[b.n] = g;
		b.data[b.n] = g % 3 ? pg : NULL;
		b.hash[b.n] = g % 3 ? wire_page_hash(pg, PS) : 0;
		/* What the source's digest holds for the page it sent. */
		wire_digest_set(&sent, g, g % 3 ? wire_page_hash(pg, PS) : wire_zero_page_hash(PS));
		b.n++;
	}
	c.digest = wire_digest_sum(&sent);
	ASSERT_EQ(-EPROTO, wire_verify_complete(&c, streams, 2, a, 1, &hash, &err));
	ASSERT_EQ(WIRE_ERR_INCOMPLETE, err.code);
	ASSERT_STREQ("64 pages never received, the first at gfn 0", err.text);
	b.n = 63;
	ASSERT_EQ(0, wire_apply_batch(a, &b));
	ASSERT_EQ(-EPROTO, wire_verify_complete(&c, streams, 2, a, 1, &hash, &err));
	ASSERT_STREQ("1 pages never received, the first at gfn 0x3f", err.text);
	b.n = 64;
	ASSERT_EQ(0, wire_apply_batch(a, &b));

	ASSERT_EQ(0, wire_ram_hash(mem, &rg, 1, 1, &want));
	c.ram_hash = want;
	ASSERT_EQ(0, wire_verify_complete(&c, streams, 2, a, 2, &hash, &err));
	ASSERT_EQ(want, hash);
	ASSERT_EQ(c.digest, wire_apply_digest(a));

	/* The source sent one page differently than it arrived: the digest says so. */
	c.digest++;
	ASSERT_EQ(-EBADMSG, wire_verify_complete(&c, streams, 2, a, 2, &hash, &err));
	ASSERT_EQ(WIRE_ERR_HASH, err.code);
	ASSERT_NE(NULL, strstr(err.text, "page digest"));
	c.digest--;

	/* One byte differs: the hash catches what no checksum covered. */
	mem[17 * PS + 100] ^= 1;
	ASSERT_EQ(-EBADMSG, wire_verify_complete(&c, streams, 2, a, 2, &hash, &err));
	ASSERT_EQ(WIRE_ERR_HASH, err.code);
	mem[17 * PS + 100] ^= 1;

	c.total_pages++;
	ASSERT_EQ(-EPROTO, wire_verify_complete(&c, streams, 2, a, 1, &hash, &err));
	ASSERT_EQ(WIRE_ERR_INCOMPLETE, err.code);
	c.total_pages--;
	c.total_bytes--;
	ASSERT_EQ(-EPROTO, wire_verify_complete(&c, streams, 2, a, 1, &hash, &err));
	c.total_bytes++;
	/* A channel that did not end the last round, or got pages after it. */
	s1.rx_round = 2;
	ASSERT_EQ(-EPROTO, wire_verify_complete(&c, streams, 2, a, 1, &hash, &err));
	ASSERT_NE(NULL, strstr(err.text, "channel 1 ended 2 rounds"));
	s1.rx_round = 3;
	s1.rx_round_pages = 1;
	ASSERT_EQ(-EPROTO, wire_verify_complete(&c, streams, 2, a, 1, &hash, &err));
	s1.rx_round_pages = 0;
	/* Without the hash flag the hash is not computed: O(1) at the switch. */
	c.flags = 0;
	c.ram_hash = 0;
	mem[0] ^= 1;
	ASSERT_EQ(0, wire_verify_complete(&c, streams, 2, a, 1, &hash, &err));
	ASSERT_EQ(0, hash);
	wire_digest_release(&sent);
	wire_apply_destroy(a);
	free(mem);
	free(pg);
}

TEST_HARNESS_MAIN
