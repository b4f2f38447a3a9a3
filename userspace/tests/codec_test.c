// SPDX-License-Identifier: GPL-2.0
/*
 * Page codecs: zero detection, every codec on zero, text-like, random and
 * mixed pages, zero-copy iovecs, the per-batch raw fallback and the
 * adaptive choice, and corrupted compressed data rejected before anything
 * reaches guest memory.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

/* The 6.1 harness and its fixture macros define functions without prototypes. */
#pragma GCC diagnostic ignored "-Wmissing-prototypes"
#include "kselftest_harness.h"

#include "wire/apply.h"
#include "wire/codec.h"
#include "wire/proto.h"
#include "wire_util.h"

#define PS		4096
#define NPAGES		1024

TEST(zero_detection)
{
	static const size_t sizes[] = { 8, 100, 255, 256, 300, 4096, 8192, 65536 };
	const struct wire_zero_impl *impls;
	const char *active;
	unsigned int n;
	uint8_t *buf = aligned_alloc(64, 65536 + 64);

	impls = wire_zero_impls(&n, &active);
	ASSERT_LE(1, n);
	TH_LOG("zero detection: %s", active);
	for (size_t s = 0; s < sizeof(sizes) / sizeof(sizes[0]); s++)
		for (unsigned int off = 0; off < 2; off++) {
			uint8_t *p = buf + off * 3;	/* unaligned too */
			size_t len = sizes[s];

			memset(buf, 0, 65536 + 64);
			for (unsigned int i = 0; i < n; i++) {
				ASSERT_TRUE(impls[i].fn(p, len));
			}
			ASSERT_TRUE(wire_is_zero(p, len));
			for (size_t pos = 0; pos < len; pos += (len > 4096 ? 61 : 1)) {
				p[pos] = 1 << (pos % 8);
				for (unsigned int i = 0; i < n; i++) {
					ASSERT_FALSE(impls[i].fn(p, len))
						TH_LOG("%s len %zu pos %zu", impls[i].name, len, pos);
				}
				ASSERT_FALSE(wire_is_zero(p, len));
				p[pos] = 0;
			}
			/* A byte just outside does not count. */
			p[len] = 1;
			for (unsigned int i = 0; i < n; i++) {
				ASSERT_TRUE(impls[i].fn(p, len));
			}
		}
	free(buf);
}

/* Source and destination of one channel, a guest memory on each side. */
FIXTURE(chan) {
	struct wire_stream src, dst;
	struct wire_txmsg m;
	struct wire_rx *rx;
	struct wire_apply *apply;
	uint8_t *smem, *dmem, *flat, *tmp;
	uint64_t seed;
	uint64_t backed[(NPAGES + 63) / 64];
};

FIXTURE_SETUP(chan)
{
	struct wire_hello hello;
	struct wire_region rg = { 0, NPAGES * PS };

	make_hello(&hello);
	hello.nr_regions = 1;
	hello.regions[0] = rg;
	self->tmp = calloc(1, WIRE_MAX_MSG);
	self->flat = calloc(1, WIRE_MAX_MSG);
	self->smem = aligned_alloc(PS, NPAGES * PS);
	self->dmem = aligned_alloc(PS, NPAGES * PS);
	ASSERT_NE(NULL, self->smem);
	ASSERT_NE(NULL, self->dmem);
	memset(self->dmem, 0x77, NPAGES * PS);
	self->seed = 12345;
	ASSERT_EQ(0, handshake(&self->src, &self->dst, &hello, &hello, self->tmp));
	ASSERT_EQ(0, wire_txmsg_init(&self->m));
	ASSERT_EQ(0, wire_rx_create(PS, &self->rx));
	ASSERT_EQ(0, wire_apply_create(self->dmem, PS, &rg, 1, &self->apply));
	/* Garbage, not fresh memory: every page must be written. */
	memset(self->backed, 0xff, sizeof(self->backed));
	wire_apply_mark_backed(self->apply, self->backed);
}

FIXTURE_TEARDOWN(chan)
{
	wire_apply_destroy(self->apply);
	wire_rx_destroy(self->rx);
	wire_txmsg_release(&self->m);
	free(self->smem);
	free(self->dmem);
	free(self->flat);
	free(self->tmp);
}

/* What the transport does: gather the iovecs into one received buffer. */
static size_t flatten(const struct wire_txmsg *m, uint8_t *out)
{
	size_t off = 0;

	for (unsigned int i = 0; i < m->niov; i++) {
		memcpy(out + off, m->iov[i].iov_base, m->iov[i].iov_len);
		off += m->iov[i].iov_len;
	}
	return off;
}

/* Receive, decode and apply one message; apply only if everything passed. */
static int deliver(struct wire_stream *s, struct wire_rx *rx, struct wire_apply *a,
		   const uint8_t *msg, struct wire_batch *b)
{
	struct wire_hdr h;
	int ret;

	ret = recv_msg(s, msg, &h);
	ret = ret ? ret : wire_rx_pages(rx, s, &h, msg + WIRE_HDR_SIZE, b);
	return ret ? ret : wire_apply_batch(a, b);
}

static void fill_mem(uint8_t *mem, enum content c, uint64_t *seed)
{
	for (uint64_t i = 0; i < NPAGES; i++)
		fill_page(mem + i * PS, PS, c, i, seed);
}

static void shuffle(uint64_t *v, unsigned int n, uint64_t *seed)
{
	for (unsigned int i = n - 1; i > 0; i--) {
		unsigned int j = rnd_next(seed) % (i + 1);
		uint64_t t = v[i];

		v[i] = v[j];
		v[j] = t;
	}
}

struct codec_case {
	enum wire_codec codec;
	int level;
};

static const struct codec_case cases[] = {
	{ WIRE_CODEC_RAW, 0 }, { WIRE_CODEC_LZ4, 1 }, { WIRE_CODEC_LZ4, 8 },
	{ WIRE_CODEC_ZSTD, -5 }, { WIRE_CODEC_ZSTD, -1 }, { WIRE_CODEC_ZSTD, 1 },
	{ WIRE_CODEC_ZSTD, 3 },
};

/* All RAM in batches (shuffled or in order), round by round: dst == src. */
TEST_F(chan, every_codec_every_content)
{
	uint64_t gfns[NPAGES];
	struct wire_batch *b = malloc(sizeof(*b));
	struct wire_round_end re;
	struct wire_hdr h;
	uint32_t round = 0;

	for (size_t k = 0; k < sizeof(cases) / sizeof(cases[0]); k++)
		for (int zc = 0; zc < 2; zc++)
			for (enum content c = C_ZERO; c <= C_MIXED; c++) {
				struct wire_tx_config cfg = {
					.page_size = PS, .codec = cases[k].codec,
					.level = cases[k].level, .zerocopy = zc,
				};
				struct wire_tx_stats st;
				struct wire_tx *tx;

				ASSERT_EQ(0, wire_tx_create(&cfg, &tx));
				fill_mem(self->smem, c, &self->seed);
				for (unsigned int i = 0; i < NPAGES; i++)
					gfns[i] = i;
				if (c & 1)
					shuffle(gfns, NPAGES, &self->seed);
				for (unsigned int i = 0; i < NPAGES; i += 200) {
					unsigned int n = NPAGES - i < 200 ? NPAGES - i : 200;
					ssize_t len = wire_tx_pages(tx, &self->src, &self->m, self->smem,
								    round, gfns + i, n);

					ASSERT_LT(0, len);
					ASSERT_EQ(len, self->m.len);
					ASSERT_EQ(len, flatten(&self->m, self->flat));
					ASSERT_EQ(0, deliver(&self->dst, self->rx, self->apply,
							     self->flat, b))
						TH_LOG("%s level %d content %d zc %d",
						       wire_codec_name(cfg.codec), cfg.level, c, zc);
					ASSERT_EQ(n, b->n);
					for (unsigned int j = 0; j < n; j++) {
						const uint8_t *sp = self->smem + gfns[i + j] * PS;

						ASSERT_EQ(gfns[i + j], b->gfn[j]);
						if (b->data[j]) {
							ASSERT_EQ(0, memcmp(b->data[j], sp, PS));
						} else {
							ASSERT_TRUE(wire_is_zero(sp, PS));
						}
					}
				}
				ASSERT_LT(0, wire_enc_round_end(&self->src, self->tmp, WIRE_MAX_MSG, round));
				ASSERT_EQ(0, recv_msg(&self->dst, self->tmp, &h));
				ASSERT_EQ(0, wire_dec_round_end(&self->dst, &h, self->tmp + WIRE_HDR_SIZE, &re));
				round++;
				ASSERT_EQ(0, memcmp(self->smem, self->dmem, NPAGES * PS));

				wire_tx_stats(tx, &st);
				ASSERT_EQ(NPAGES, st.pages);
				if (c == C_ZERO) {
					ASSERT_EQ(NPAGES, st.zero_pages);
					ASSERT_EQ(st.batches * WIRE_HDR_SIZE + NPAGES * 8 +
						  st.batches * WIRE_PAGES_META, st.wire_bytes);
				}
				if (c == C_MIXED) {
					ASSERT_EQ(NPAGES / 4, st.zero_pages);
				}
				if (cfg.codec != WIRE_CODEC_RAW && (c == C_TEXT || c == C_MIXED)) {
					/* Text compresses (mixed: 1/3 random), every batch. */
					ASSERT_EQ(st.batches, st.by_codec[cfg.codec]);
					ASSERT_GT(st.raw_bytes / (c == C_TEXT ? 2 : 1), st.wire_bytes);
				}
				if (c == C_RANDOM) {
					/* Random never shrinks: sent raw after trying. */
					ASSERT_EQ(st.batches, st.by_codec[WIRE_CODEC_RAW]);
					ASSERT_EQ(cfg.codec == WIRE_CODEC_RAW ? 0 : st.batches,
						  st.fallbacks);
					ASSERT_GE(st.wire_bytes, st.raw_bytes);
				}
				/*
				 * Raw data goes by reference only when negotiated and
				 * asked, and not after lz4 or zstd staged it: the staged
				 * copy is what was hashed.
				 */
				if (zc && c == C_RANDOM && cfg.codec == WIRE_CODEC_RAW) {
					ASSERT_TRUE(self->m.zerocopy);
				}
				if (!zc) {
					ASSERT_FALSE(self->m.zerocopy);
				}
				wire_tx_destroy(tx);
			}
	free(b);
}

TEST_F(chan, zerocopy_iovecs_point_into_guest_memory)
{
	struct wire_tx_config cfg = { .page_size = PS, .codec = WIRE_CODEC_RAW, .zerocopy = true };
	uint64_t gfns[] = { 10, 11, 12, 40, 7, 8, 100 };
	struct wire_apply_stats as;
	struct wire_stream r;
	struct wire_batch b;
	struct wire_hdr h;
	struct wire_tx *tx;

	fill_mem(self->smem, C_TEXT, &self->seed);
	memset(self->smem + 40 * PS, 0, PS);
	ASSERT_EQ(0, wire_tx_create(&cfg, &tx));
	ASSERT_LT(0, wire_tx_pages(tx, &self->src, &self->m, self->smem, 0, gfns, 7));
	ASSERT_TRUE(self->m.zerocopy);
	/* Header, descriptors and hashes, then runs 10-12, 7-8, 100 (40 is zero). */
	ASSERT_EQ(4, self->m.niov);
	ASSERT_EQ(WIRE_HDR_SIZE + WIRE_PAGES_META + 7 * 8 + 6 * WIRE_HASH_SIZE,
		  self->m.iov[0].iov_len);
	ASSERT_EQ(self->smem + 10 * PS, self->m.iov[1].iov_base);
	ASSERT_EQ(3 * PS, self->m.iov[1].iov_len);
	ASSERT_EQ(self->smem + 7 * PS, self->m.iov[2].iov_base);
	ASSERT_EQ(2 * PS, self->m.iov[2].iov_len);
	ASSERT_EQ(self->smem + 100 * PS, self->m.iov[3].iov_base);
	flatten(&self->m, self->flat);
	ASSERT_EQ(0, wire_hdr_parse(self->flat, &h));
	ASSERT_EQ(WIRE_HF_TAIL_UNCHECKED, h.flags);
	ASSERT_EQ(WIRE_PAGES_META + 7 * 8 + 6 * WIRE_HASH_SIZE, h.csum_len);
	/* Read in place, with the vCPUs running: not exact. */
	ASSERT_EQ(0, self->flat[WIRE_HDR_SIZE + 5] & WIRE_PF_EXACT);

	/* A receiver that did not negotiate pages read in place refuses it. */
	r = self->dst;
	r.features &= ~WIRE_FEAT_RAW_UNCHECKED;
	ASSERT_EQ(0, recv_msg(&r, self->flat, &h));
	ASSERT_EQ(-EPROTO, wire_rx_pages(self->rx, &r, &h, self->flat + WIRE_HDR_SIZE, &b));
	/*
	 * A page that differs from its hash in a batch that is not exact was
	 * written while it was sent: applied, and counted (the page digest at
	 * COMPLETE catches it if nothing newer replaces it, apply_test).
	 */
	self->flat[h.csum_len + WIRE_HDR_SIZE + 5] ^= 1;
	ASSERT_EQ(0, deliver(&self->dst, self->rx, self->apply, self->flat, &b));
	wire_apply_stats(self->apply, &as);
	ASSERT_EQ(1, as.changed);
	/* Paused vCPUs: the same batch is exact, and a changed page is refused. */
	wire_tx_set_stable(tx, true);
	ASSERT_LT(0, wire_tx_pages(tx, &self->src, &self->m, self->smem, 0, gfns, 7));
	flatten(&self->m, self->flat);
	ASSERT_EQ(WIRE_PF_EXACT, self->flat[WIRE_HDR_SIZE + 5] & WIRE_PF_EXACT);
	self->flat[self->m.len - 1] ^= 1;
	ASSERT_EQ(-EBADMSG, deliver(&self->dst, self->rx, self->apply, self->flat, &b));
	wire_tx_set_stable(tx, false);
	self->dst.failed = false;
	/* The metadata stays covered. */
	ASSERT_LT(0, wire_tx_pages(tx, &self->src, &self->m, self->smem, 0, gfns, 7));
	flatten(&self->m, self->flat);
	self->flat[WIRE_HDR_SIZE + WIRE_PAGES_META + 3] ^= 1;
	ASSERT_EQ(-EBADMSG, recv_msg(&self->dst, self->flat, &h));

	/* Without the feature the same config copies and checksums it all. */
	self->src.features &= ~WIRE_FEAT_RAW_UNCHECKED;
	ASSERT_LT(0, wire_tx_pages(tx, &self->src, &self->m, self->smem, 0, gfns, 7));
	ASSERT_FALSE(self->m.zerocopy);
	ASSERT_EQ(1, self->m.niov);
	wire_tx_destroy(tx);
}

TEST_F(chan, tx_rejects_bad_requests)
{
	struct wire_tx_config cfg = { .page_size = PS, .codec = WIRE_CODEC_LZ4 };
	uint64_t gfns[WIRE_MAX_BATCH + 1] = { 0 };
	struct wire_stream fresh;
	struct wire_tx *tx;

	ASSERT_EQ(0, wire_tx_create(&cfg, &tx));
	ASSERT_EQ(WIRE_MAX_BATCH, wire_tx_max_pages(tx));
	ASSERT_EQ(-EINVAL, wire_tx_pages(tx, &self->src, &self->m, self->smem, 0, gfns, 0));
	ASSERT_EQ(-EINVAL, wire_tx_pages(tx, &self->src, &self->m, self->smem, 0, gfns,
					 WIRE_MAX_BATCH + 1));
	ASSERT_EQ(-EINVAL, wire_tx_pages(tx, &self->src, &self->m, self->smem, 1, gfns, 1));
	gfns[0] = 1ull << WIRE_GFN_BITS;
	ASSERT_EQ(-EINVAL, wire_tx_pages(tx, &self->src, &self->m, self->smem, 0, gfns, 1));
	gfns[0] = 0;
	wire_stream_init(&fresh, WIRE_ROLE_SOURCE, PS);
	ASSERT_EQ(-EINVAL, wire_tx_pages(tx, &fresh, &self->m, self->smem, 0, gfns, 1));
	wire_tx_destroy(tx);

	cfg.codec = WIRE_CODEC_ZSTD;
	cfg.level = 20;
	ASSERT_EQ(-EINVAL, wire_tx_create(&cfg, &tx));
	cfg.level = -200000;
	ASSERT_EQ(-EINVAL, wire_tx_create(&cfg, &tx));
	cfg.codec = 7;
	ASSERT_EQ(-EINVAL, wire_tx_create(&cfg, &tx));
	cfg.codec = WIRE_CODEC_RAW;
	cfg.page_size = 1000;
	ASSERT_EQ(-EINVAL, wire_tx_create(&cfg, &tx));
}

/* A codec the peer did not accept is never used. */
TEST_F(chan, unnegotiated_codec_sends_raw)
{
	struct wire_tx_config cfg = { .page_size = PS, .codec = WIRE_CODEC_ZSTD, .level = 1 };
	uint64_t gfns[64];
	struct wire_tx_stats st;
	struct wire_batch b;
	struct wire_tx *tx;

	self->src.codecs = self->dst.codecs = WIRE_CODEC_BIT(WIRE_CODEC_RAW);
	fill_mem(self->smem, C_TEXT, &self->seed);
	for (int i = 0; i < 64; i++)
		gfns[i] = i;
	ASSERT_EQ(0, wire_tx_create(&cfg, &tx));
	ASSERT_LT(0, wire_tx_pages(tx, &self->src, &self->m, self->smem, 0, gfns, 64));
	wire_tx_stats(tx, &st);
	ASSERT_EQ(1, st.by_codec[WIRE_CODEC_RAW]);
	ASSERT_EQ(0, deliver(&self->dst, self->rx, self->apply, self->m.buf, &b));
	wire_tx_destroy(tx);
}

/* zstd: a batch that does not shrink restarts the stream, both sides. */
TEST_F(chan, zstd_stream_restarts_after_raw_batch)
{
	struct wire_tx_config cfg = { .page_size = PS, .codec = WIRE_CODEC_ZSTD, .level = 3 };
	struct wire_batch b;
	struct wire_tx *tx;
	uint64_t gfns[64];
	const enum content seq[] = { C_TEXT, C_TEXT, C_RANDOM, C_TEXT, C_TEXT, C_RANDOM, C_TEXT };
	const int reset[] = { 1, 0, -1, 1, 0, -1, 1 };

	ASSERT_EQ(0, wire_tx_create(&cfg, &tx));
	for (unsigned int k = 0; k < sizeof(seq) / sizeof(seq[0]); k++) {
		struct wire_hdr h;

		for (int i = 0; i < 64; i++) {
			gfns[i] = k * 64 + i;
			fill_page(self->smem + gfns[i] * PS, PS, seq[k], i, &self->seed);
		}
		ASSERT_LT(0, wire_tx_pages(tx, &self->src, &self->m, self->smem, 0, gfns, 64));
		ASSERT_EQ(0, wire_hdr_parse(self->m.buf, &h));
		if (reset[k] < 0) {
			ASSERT_EQ(WIRE_CODEC_RAW, self->m.buf[WIRE_HDR_SIZE + 4]);
		} else {
			ASSERT_EQ(WIRE_CODEC_ZSTD, self->m.buf[WIRE_HDR_SIZE + 4]);
			/* Compressed batches are always exact (hashed from their stage). */
			ASSERT_EQ(reset[k] | WIRE_PF_EXACT, self->m.buf[WIRE_HDR_SIZE + 5])
				TH_LOG("batch %u", k);
		}
		ASSERT_EQ(0, deliver(&self->dst, self->rx, self->apply, self->m.buf, &b));
		ASSERT_EQ(0, memcmp(self->dmem + k * 64 * PS, self->smem + k * 64 * PS, 64 * PS));
	}
	wire_tx_destroy(tx);
}

static void run_batches(struct _test_data_chan *self, struct wire_tx *tx, unsigned int nbatch)
{
	uint64_t gfns[128];

	for (unsigned int k = 0; k < nbatch; k++) {
		for (int i = 0; i < 128; i++)
			gfns[i] = (k * 128 + i) % NPAGES;
		wire_tx_pages(tx, &self->src, &self->m, self->smem, 0, gfns, 128);
	}
}

TEST_F(chan, adaptive_skips_what_does_not_pay)
{
	struct wire_tx_config cfg = { .page_size = PS, .codec = WIRE_CODEC_LZ4, .adaptive = true };
	struct wire_tx_stats st;
	struct wire_tx *tx;

	/* Incompressible: tried, then skipped with a growing backoff. */
	fill_mem(self->smem, C_RANDOM, &self->seed);
	ASSERT_EQ(0, wire_tx_create(&cfg, &tx));
	run_batches(self, tx, 100);
	wire_tx_stats(tx, &st);
	ASSERT_EQ(100, st.by_codec[WIRE_CODEC_RAW]);
	/* Probes after 4, 8, 16, 32 raw batches: 5 tries in 100 batches. */
	ASSERT_EQ(5, st.fallbacks);
	ASSERT_EQ(95, st.skipped);
	/* Content turns compressible: the next probe takes it up again. */
	fill_mem(self->smem, C_TEXT, &self->seed);
	run_batches(self, tx, 100);
	wire_tx_stats(tx, &st);
	ASSERT_LT(st.by_codec[WIRE_CODEC_LZ4], 100);
	ASSERT_LT(60, st.by_codec[WIRE_CODEC_LZ4]);
	ASSERT_GT(0.5, st.ratio);
	wire_tx_destroy(tx);

	/* Compressible but a link faster than the compressor: raw wins. */
	cfg.link_bps = 1ull << 40;
	ASSERT_EQ(0, wire_tx_create(&cfg, &tx));
	run_batches(self, tx, 50);
	wire_tx_stats(tx, &st);
	ASSERT_LT(40, st.skipped);
	ASSERT_EQ(0, st.fallbacks);
	/* A slow link makes the same content worth compressing. */
	wire_tx_set_link(tx, 1 << 20);
	run_batches(self, tx, 100);
	wire_tx_stats(tx, &st);
	ASSERT_LT(50, st.by_codec[WIRE_CODEC_LZ4]);
	wire_tx_destroy(tx);

	/* Not adaptive: always tries. */
	cfg.adaptive = false;
	cfg.link_bps = 0;
	fill_mem(self->smem, C_RANDOM, &self->seed);
	ASSERT_EQ(0, wire_tx_create(&cfg, &tx));
	run_batches(self, tx, 20);
	wire_tx_stats(tx, &st);
	ASSERT_EQ(20, st.fallbacks);
	ASSERT_EQ(0, st.skipped);
	wire_tx_destroy(tx);
}

/* No link figure given: the channel measures it (TCP's delivery rate). */
/*
 * The final round keeps the choice the downtime estimate was made with: no
 * probe flips it in the pause (catches want_compress() ignoring the hold).
 */
TEST_F(chan, held_choice_does_not_probe)
{
	struct wire_tx_config cfg = { .page_size = PS, .codec = WIRE_CODEC_LZ4, .adaptive = true };
	struct wire_tx_stats st, before;
	struct wire_tx *tx;

	/* In a raw stretch (incompressible), then held: compressible content stays raw. */
	fill_mem(self->smem, C_RANDOM, &self->seed);
	ASSERT_EQ(0, wire_tx_create(&cfg, &tx));
	run_batches(self, tx, 3);
	wire_tx_hold_choice(tx, true);
	fill_mem(self->smem, C_TEXT, &self->seed);
	wire_tx_stats(tx, &before);
	run_batches(self, tx, 100);
	wire_tx_stats(tx, &st);
	ASSERT_EQ(before.by_codec[WIRE_CODEC_RAW] + 100, st.by_codec[WIRE_CODEC_RAW]);
	ASSERT_EQ(before.fallbacks, st.fallbacks);
	/* Released: the next probe takes compression up again. */
	wire_tx_hold_choice(tx, false);
	run_batches(self, tx, 100);
	wire_tx_stats(tx, &st);
	ASSERT_LT(60, st.by_codec[WIRE_CODEC_LZ4]);
	/* Compressing, then held: every batch is tried, however it turns out. */
	wire_tx_hold_choice(tx, true);
	fill_mem(self->smem, C_RANDOM, &self->seed);
	wire_tx_stats(tx, &before);
	run_batches(self, tx, 50);
	wire_tx_stats(tx, &st);
	ASSERT_EQ(before.fallbacks + 50, st.fallbacks);
	ASSERT_EQ(before.skipped, st.skipped);
	wire_tx_destroy(tx);
}

TEST_F(chan, adaptive_measures_the_link)
{
	struct wire_tx_config cfg = { .page_size = PS, .codec = WIRE_CODEC_LZ4, .adaptive = true };
	struct wire_tx_stats st;
	struct wire_tx *tx;

	fill_mem(self->smem, C_TEXT, &self->seed);
	ASSERT_EQ(0, wire_tx_create(&cfg, &tx));
	/* No sample yet: compress while it saves, with one probe of 4 raw batches. */
	run_batches(self, tx, 20);
	wire_tx_stats(tx, &st);
	EXPECT_EQ(4, st.link_probes);
	EXPECT_EQ(16, st.by_codec[WIRE_CODEC_LZ4]);
	EXPECT_EQ(0, st.link_bps);
	EXPECT_FALSE(st.link_measured);

	/* A link far faster than the compressor: raw from the next decision on. */
	wire_tx_link_sample(tx, 1ull << 40, false);
	run_batches(self, tx, 40);
	wire_tx_stats(tx, &st);
	EXPECT_EQ(1ull << 40, st.link_bps);
	EXPECT_TRUE(st.link_measured);
	EXPECT_LE(35, st.skipped);

	/* A lower sample that is app-limited is only a lower bound: no change. */
	wire_tx_link_sample(tx, 1 << 20, true);
	wire_tx_stats(tx, &st);
	EXPECT_EQ(1ull << 40, st.link_bps);
	/* Samples of a full, slow link bring the figure down: compress again. */
	for (int i = 0; i < 200; i++)
		wire_tx_link_sample(tx, 1 << 20, false);
	wire_tx_stats(tx, &st);
	EXPECT_GT(2 << 20, st.link_bps);
	run_batches(self, tx, 300);
	wire_tx_stats(tx, &st);
	EXPECT_LT(16 + 200, st.by_codec[WIRE_CODEC_LZ4]);
	/* ... re-measuring every 128 compressed batches. */
	EXPECT_LE(4 + 4, st.link_probes);
	EXPECT_GE(4 + 4 * 3, st.link_probes);
	/* One app-limited burst that measured fast moves it a quarter of the way. */
	wire_tx_link_sample(tx, 1 << 30, true);
	wire_tx_stats(tx, &st);
	EXPECT_LT(256 << 20, st.link_bps);
	EXPECT_GT(258 << 20, st.link_bps);
	wire_tx_destroy(tx);

	/* A given figure wins over samples, and nothing probes. */
	cfg.link_bps = 1 << 20;
	ASSERT_EQ(0, wire_tx_create(&cfg, &tx));
	wire_tx_link_sample(tx, 1ull << 40, false);
	run_batches(self, tx, 50);
	wire_tx_stats(tx, &st);
	EXPECT_EQ(1 << 20, st.link_bps);
	EXPECT_FALSE(st.link_measured);
	EXPECT_EQ(0, st.link_probes);
	EXPECT_EQ(50, st.by_codec[WIRE_CODEC_LZ4]);
	wire_tx_destroy(tx);
}

/*
 * Compressed data that is corrupt but checksummed correctly (a buggy or
 * hostile peer): the decoder refuses, guest memory is untouched.
 */
TEST_F(chan, corrupt_compressed_data_rejected)
{
	static const enum wire_codec codecs[] = { WIRE_CODEC_LZ4, WIRE_CODEC_ZSTD };
	uint8_t *before = malloc(NPAGES * PS);
	uint64_t gfns[8] = { 1, 2, 3, 4, 5, 6, 7, 0 };

	fill_mem(self->smem, C_TEXT, &self->seed);
	memset(self->smem, 0, PS);			/* gfn 0: a zero page */
	memcpy(before, self->dmem, NPAGES * PS);
	for (size_t k = 0; k < 2; k++) {
		struct wire_tx_config cfg = { .page_size = PS, .codec = codecs[k], .level = 1 };
		struct wire_tx *tx;
		struct wire_batch b;
		uint8_t *p = self->flat + WIRE_HDR_SIZE;
		size_t len, dlen;
		int mut;

		ASSERT_EQ(0, wire_tx_create(&cfg, &tx));
		len = wire_tx_pages(tx, &self->src, &self->m, self->smem, 0, gfns, 8);
		ASSERT_LT(0, len);
		ASSERT_EQ(codecs[k], self->m.buf[WIRE_HDR_SIZE + 4]);
		dlen = get32(self->m.buf + WIRE_HDR_SIZE + 12);
		/* Earlier messages went to copies of dst: catch its sequence up. */
		self->dst.rx_seq = get32(self->m.buf + H_SEQ);
		for (mut = 0; mut < 5; mut++) {
			struct wire_stream r = self->dst;
			size_t meta = WIRE_PAGES_META + 8 * 8 + 7 * WIRE_HASH_SIZE;
			uint8_t *data = p + meta;
			size_t plen = len - WIRE_HDR_SIZE;
			int ret;

			memcpy(self->flat, self->m.buf, len);
			switch (mut) {
			case 0:		/* garbage */
				memset(data, 0xff, dlen);
				break;
			case 1:		/* cut short */
				put32(p + 12, dlen - 16);
				plen -= 16;
				break;
			case 2:		/* claims one more data page than it holds */
				put16(p + 10, 8);
				p[WIRE_PAGES_META + 7 * 8 + 7] = WIRE_PAGE_DATA;
				break;
			case 3:		/* claims one less */
				put16(p + 10, 6);
				p[WIRE_PAGES_META + 6 * 8 + 7] = WIRE_PAGE_ZERO;
				break;
			case 4:		/* a bit flipped in the middle */
				data[dlen / 2] ^= 0x10;
				break;
			}
			reseal_tail(self->flat, plen, meta);
			ret = deliver(&r, self->rx, self->apply, self->flat, &b);
			/*
			 * The decoder refuses it, or the layout no longer adds up
			 * (counts), or a page it decoded fails its hash (a flipped
			 * literal): never applied.
			 */
			ASSERT_TRUE(ret == -EILSEQ || ret == -EBADMSG)
				TH_LOG("%s mutation %d: %d", wire_codec_name(codecs[k]), mut, ret);
			ASSERT_EQ(0, memcmp(before, self->dmem, NPAGES * PS));
			/* zstd's stream is dead after an error: a fresh decoder. */
			wire_rx_destroy(self->rx);
			ASSERT_EQ(0, wire_rx_create(PS, &self->rx));
		}
		wire_tx_destroy(tx);
	}
	free(before);
}

/* Two zstd batches in one message decode to more than announced. */
TEST_F(chan, zstd_trailing_data_rejected)
{
	struct wire_tx_config cfg = { .page_size = PS, .codec = WIRE_CODEC_ZSTD, .level = 1 };
	uint64_t g1[4] = { 1, 2, 3, 4 }, g2[4] = { 5, 6, 7, 8 };
	uint8_t *p = self->flat + WIRE_HDR_SIZE;
	struct wire_tx *tx;
	struct wire_batch b;
	size_t l1, l2, d1, d2;

	fill_mem(self->smem, C_TEXT, &self->seed);
	ASSERT_EQ(0, wire_tx_create(&cfg, &tx));
	l1 = wire_tx_pages(tx, &self->src, &self->m, self->smem, 0, g1, 4);
	memcpy(self->flat, self->m.buf, l1);
	d1 = get32(p + 12);
	l2 = wire_tx_pages(tx, &self->src, &self->m, self->smem, 0, g2, 4);
	d2 = get32(self->m.buf + WIRE_HDR_SIZE + 12);
	ASSERT_LT(0, l2);
	memcpy(self->flat + l1, self->m.buf + l2 - d2, d2);
	put32(p + 12, d1 + d2);
	reseal_tail(self->flat, l1 - WIRE_HDR_SIZE + d2, WIRE_PAGES_META + 4 * 8 + 4 * WIRE_HASH_SIZE);
	ASSERT_EQ(-EILSEQ, deliver(&self->dst, self->rx, self->apply, self->flat, &b));
	wire_tx_destroy(tx);
}

TEST_HARNESS_MAIN
