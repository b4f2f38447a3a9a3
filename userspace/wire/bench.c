// SPDX-License-Identifier: GPL-2.0
/*
 * Codec micro-benchmark.  Each codec runs through wire_tx_pages() and
 * wire_rx_pages() exactly as a channel does (zero detection, staging,
 * compression, framing, checksums; then verification, decompression and
 * the copy into memory), one thread, timed in thread CPU time, so the
 * figures are per core.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <xxhash.h>
#if defined(__x86_64__)
#include <xxh_x86dispatch.h>
#endif

#include "wire/apply.h"
#include "wire/bench.h"
#include "wire/codec.h"

#define MIB	(1024.0 * 1024.0)

/*
 * CPU time of this thread: per-core figures that hold on a loaded machine
 * (wall time would count time other processes ran on our core).
 */
static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
	return ts.tv_sec + ts.tv_nsec * 1e-9;
}

static uint64_t mix64(uint64_t x)
{
	x ^= x >> 33;
	x *= 0xff51afd7ed558ccdull;
	x ^= x >> 33;
	x *= 0xc4ceb9fe1a85ec53ull;
	return x ^ (x >> 33);
}

static void text_page(uint8_t *p, size_t ps, uint64_t *s)
{
	static const char *const words[] = {
		"the", "of", "and", "to", "in", "is", "that", "for", "it", "as", "was", "with",
		"be", "by", "on", "not", "he", "this", "are", "or", "his", "from", "at", "which",
		"but", "have", "an", "had", "they", "you", "were", "their", "one", "all", "we",
		"can", "her", "has", "there", "been", "if", "more", "when", "will", "would",
		"who", "so", "no", "kernel", "page", "memory", "struct", "return", "static",
		"unsigned", "long", "int", "void", "const", "0x7f3a", "1024", "4096", "error",
		"value",
	};
	size_t o = 0;

	_Static_assert(sizeof(words) / sizeof(words[0]) == 64, "64 words");
	while (o < ps) {
		const char *w;
		size_t l;

		*s = mix64(*s + 1);
		w = words[*s % 64];
		l = strlen(w);
		if (l > ps - o)
			l = ps - o;
		memcpy(p + o, w, l);
		o += l;
		if (o < ps)
			p[o++] = (*s >> 8) % 12 ? ' ' : '\n';
	}
}

void wire_bench_fill(uint8_t *mem, size_t len, uint32_t page_size, unsigned int zero_pct,
		     unsigned int text_pct, uint64_t seed)
{
	for (size_t i = 0; i < len / page_size; i++) {
		uint8_t *p = mem + i * page_size;
		unsigned int k = mix64(i ^ 0x5bd1e995) % 100;
		uint64_t s = mix64(seed ^ (i * 0x9e3779b97f4a7c15ull));

		if (k < zero_pct) {
			memset(p, 0, page_size);
		} else if (k < zero_pct + text_pct) {
			text_page(p, page_size, &s);
		} else {
			for (size_t o = 0; o < page_size; o += 8) {
				s = mix64(s + o);
				memcpy(p + o, &s, 8);
			}
		}
	}
}

struct codec_run {
	const char *name;
	enum wire_codec codec;
	int level;
	bool zerocopy;
};

static const struct codec_run runs[] = {
	{ "raw (copy)", WIRE_CODEC_RAW, 0, false },
	{ "raw (by reference)", WIRE_CODEC_RAW, 0, true },
	{ "lz4", WIRE_CODEC_LZ4, 1, false },
	{ "zstd -5", WIRE_CODEC_ZSTD, -5, false },
	{ "zstd -1", WIRE_CODEC_ZSTD, -1, false },
	{ "zstd 1", WIRE_CODEC_ZSTD, 1, false },
	{ "zstd 3", WIRE_CODEC_ZSTD, 3, false },
};

/* Gather the message as the transport would (not timed). */
static void flatten(const struct wire_txmsg *m, uint8_t *out)
{
	for (unsigned int i = 0; i < m->niov; i++) {
		memcpy(out, m->iov[i].iov_base, m->iov[i].iov_len);
		out += m->iov[i].iov_len;
	}
}

struct bench_ctx {
	const uint8_t *mem;
	size_t npages;
	uint32_t ps;
	unsigned int batch;
	double min_secs;
	uint64_t *gfns;
	uint8_t *flat, *out;
	struct wire_batch *b;
	struct wire_txmsg m;
};

static int run_codec(struct bench_ctx *c, const struct codec_run *cr, struct wire_bench_result *r)
{
	struct wire_tx_config cfg = {
		.page_size = c->ps, .codec = cr->codec, .level = cr->level, .zerocopy = cr->zerocopy,
	};
	struct wire_hello_ack ack = { .version = WIRE_VERSION_MAX, .features = WIRE_FEAT_ALL,
				      .codecs = WIRE_CODECS_ALL };
	double enc = 0, dec = 0, t0, t1, t2;
	uint64_t wire = 0, data = 0, guest = 0, data_raw = 0;
	struct wire_stream src, dst;
	struct wire_tx *tx = NULL;
	struct wire_rx *rx = NULL;
	struct wire_tx_stats st;
	int ret;

	wire_stream_init(&src, WIRE_ROLE_SOURCE, c->ps);
	wire_stream_init(&dst, WIRE_ROLE_DEST, c->ps);
	wire_stream_establish(&src, &ack);
	wire_stream_establish(&dst, &ack);
	ret = wire_tx_create(&cfg, &tx);
	ret = ret ? ret : wire_rx_create(c->ps, &rx);
	while (!ret && (enc < c->min_secs || !guest)) {
		for (size_t i = 0; i < c->npages && !ret; i += c->batch) {
			unsigned int n = c->npages - i < c->batch ? c->npages - i : c->batch;
			struct wire_hdr h;
			ssize_t len;

			for (unsigned int k = 0; k < n; k++)
				c->gfns[k] = i + k;
			t0 = now_s();
			len = wire_tx_pages(tx, &src, &c->m, c->mem, 0, c->gfns, n);
			t1 = now_s();
			if (len < 0) {
				ret = len;
				break;
			}
			flatten(&c->m, c->flat);
			t2 = now_s();
			ret = wire_hdr_parse(c->flat, &h);
			ret = ret ? ret : wire_recv_check(&dst, &h, c->flat + WIRE_HDR_SIZE);
			ret = ret ? ret : wire_rx_pages(rx, &dst, &h, c->flat + WIRE_HDR_SIZE, c->b);
			for (unsigned int k = 0; !ret && k < c->b->n; k++) {
				uint8_t *to = c->out + (size_t)k * c->ps;

				if (c->b->data[k])
					memcpy(to, c->b->data[k], c->ps);
				else if (!wire_is_zero(to, c->ps))
					memset(to, 0, c->ps);
			}
			dec += now_s() - t2;
			enc += t1 - t0;
			wire += len;
			data += len - WIRE_HDR_SIZE - WIRE_PAGES_META - (size_t)n * WIRE_DESC_SIZE;
			guest += (uint64_t)n * c->ps;
		}
	}
	if (!ret) {
		wire_tx_stats(tx, &st);
		data_raw = st.raw_bytes;
		snprintf(r->name, sizeof(r->name), "%s", cr->name);
		r->enc_mib_s = guest / MIB / enc;
		r->dec_mib_s = guest / MIB / dec;
		r->ratio = (double)wire / guest;
		r->data_ratio = data_raw ? (double)data / data_raw : 0;
	}
	wire_rx_destroy(rx);
	wire_tx_destroy(tx);
	return ret;
}

/* A plain per-page pass: zero detection or checksum over every page. */
static void run_scan(const uint8_t *mem, size_t npages, uint32_t ps, double min_secs,
		     bool hash, const char *name, struct wire_bench_result *r)
{
	volatile uint64_t sink = 0;
	double t0 = now_s(), t;
	uint64_t bytes = 0;

	do {
		for (size_t i = 0; i < npages; i++)
			sink += hash ? XXH3_64bits(mem + i * ps, ps) : wire_is_zero(mem + i * ps, ps);
		bytes += npages * ps;
		t = now_s() - t0;
	} while (t < min_secs);
	(void)sink;
	memset(r, 0, sizeof(*r));
	snprintf(r->name, sizeof(r->name), "%s", name);
	r->enc_mib_s = bytes / MIB / t;
}

/*
 * Round-ordered apply alone (stamps, striped locks, copy or clear) of the
 * first 64 MiB of mem into a private copy, one round after another so
 * that every page is applied.
 */
static int run_apply(const uint8_t *mem, size_t npages, uint32_t ps, unsigned int batch,
		     double min_secs, struct wire_bench_result *r)
{
	struct wire_region rg;
	struct wire_apply *a;
	struct wire_batch *b = malloc(sizeof(*b));
	uint8_t *dst;
	uint64_t bytes = 0;
	double t = 0, t0;
	uint32_t round = 0;
	int ret;

	if (npages > (64u << 20) / ps)
		npages = (64u << 20) / ps;
	rg = (struct wire_region){ 0, (uint64_t)npages * ps };
	dst = aligned_alloc(4096, rg.size);
	if (!b || !dst) {
		ret = -ENOMEM;
		goto out;
	}
	memset(dst, 0x5a, rg.size);
	ret = wire_apply_create(dst, ps, &rg, 1, &a);
	if (ret)
		goto out;
	while (t < min_secs || !bytes) {
		for (size_t i = 0; i < npages; i += batch) {
			b->round = round;
			b->n = npages - i < batch ? npages - i : batch;
			for (unsigned int k = 0; k < b->n; k++) {
				const uint8_t *p = mem + (i + k) * ps;

				b->gfn[k] = i + k;
				b->data[k] = wire_is_zero(p, ps) ? NULL : p;
			}
			t0 = now_s();
			ret = wire_apply_batch(a, b);
			t += now_s() - t0;
			if (ret)
				break;
		}
		bytes += (uint64_t)npages * ps;
		round++;
	}
	wire_apply_destroy(a);
	memset(r, 0, sizeof(*r));
	snprintf(r->name, sizeof(r->name), "apply (by round)");
	r->enc_mib_s = bytes / MIB / t;
out:
	free(dst);
	free(b);
	return ret;
}

int wire_bench_run(const uint8_t *mem, size_t len, uint32_t page_size, unsigned int batch,
		   double min_secs, struct wire_bench_result *res, unsigned int max)
{
	struct bench_ctx c = {
		.mem = mem, .npages = len / page_size, .ps = page_size, .batch = batch,
		.min_secs = min_secs,
	};
	size_t zlen = 64u << 20;
	uint8_t *zero = NULL;
	unsigned int n = 0;
	int ret = -ENOMEM;

	if (!c.npages || !batch || batch > WIRE_MAX_BATCH || (size_t)batch * page_size > WIRE_MAX_DATA)
		return -EINVAL;
	c.gfns = calloc(batch, sizeof(*c.gfns));
	c.flat = malloc(WIRE_MAX_MSG);
	c.out = malloc((size_t)batch * page_size);
	c.b = malloc(sizeof(*c.b));
	zero = malloc(zlen);
	if (!c.gfns || !c.flat || !c.out || !c.b || !zero || wire_txmsg_init(&c.m))
		goto out;
	/* Really zero pages (not the shared zero page): memory speed. */
	memset(zero, 0, zlen);
	if (n < max)
		run_scan(zero, zlen / page_size, page_size, min_secs, false, "zero-detect (zeros)",
			 &res[n++]);
	if (n < max)
		run_scan(mem, c.npages, page_size, min_secs, false, "zero-detect (this)", &res[n++]);
	if (n < max)
		run_scan(mem, c.npages, page_size, min_secs, true, "xxh3 checksum", &res[n++]);
	ret = 0;
	if (n < max)
		ret = run_apply(mem, c.npages, page_size, batch, min_secs, &res[n++]);
	for (size_t i = 0; i < sizeof(runs) / sizeof(runs[0]) && n < max && !ret; i++)
		ret = run_codec(&c, &runs[i], &res[n++]);
out:
	wire_txmsg_release(&c.m);
	free(zero);
	free(c.gfns);
	free(c.flat);
	free(c.out);
	free(c.b);
	return ret ? ret : (int)n;
}

void wire_bench_print(FILE *f, const struct wire_bench_result *res, unsigned int n)
{
	fprintf(f, "%-20s %12s %12s %8s %8s\n", "codec", "enc MiB/s", "dec MiB/s", "ratio",
		"data");
	for (unsigned int i = 0; i < n; i++) {
		const struct wire_bench_result *r = &res[i];

		if (r->dec_mib_s)
			fprintf(f, "%-20s %12.0f %12.0f %8.3f %8.3f\n", r->name, r->enc_mib_s,
				r->dec_mib_s, r->ratio, r->data_ratio);
		else
			fprintf(f, "%-20s %12.0f %12s %8s %8s\n", r->name, r->enc_mib_s, "-", "-", "-");
	}
}
