// SPDX-License-Identifier: GPL-2.0
/*
 * Batch encoder and decoder for PAGES.
 *
 * lz4 runs in block mode, one block per batch (LZ4_compress_fast_extState):
 * measured on guest-like pages, the 64 KiB history of the streaming API
 * gained nothing at batches of 64+ pages (ratio 0.713 both ways at 256
 * pages) and cost 1-4% speed, and block mode has no stability requirement
 * on the previous input, which here is live guest memory or a reused
 * buffer.  The batch is staged in a side buffer (the copy lz4 needs for a
 * contiguous block) and compressed into the message.
 *
 * zstd runs as one stream per channel (ZSTD_compressStream2 with
 * ZSTD_e_flush per batch, as QEMU's multifd-zstd does), fed from the same
 * staged copy, so that what it compresses is what was hashed.
 * A batch that does not shrink is sent raw (by reference if zero-copy is
 * on); zstd's stream then restarts and the next compressed batch carries
 * WIRE_PF_RESET so the decoder restarts too.  Compressed data is always
 * smaller than raw, which bounds messages.
 */
#include <endian.h>
#include <errno.h>
#include <lz4.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <zstd.h>
#include <zstd_errors.h>

#include "wire/codec.h"
#include "wire/digest.h"

#define MIN_GAIN_RATIO	0.9	/* no link figure: compress while it saves 10% */
#define LINK_MAX_RATIO	0.98	/* with one: while it saves anything */
#define BACKOFF_MIN	4	/* batches sent raw before probing again */
#define BACKOFF_MAX	256
/*
 * Without a link figure, while compressing: this many batches go raw to
 * measure the link (raw sends fill the socket buffer, so that TCP's rate
 * sample sees the link, not the compressor), every LINK_REPROBE batches.
 */
#define LINK_PROBE	4
#define LINK_REPROBE	128
#define ZSTD_LEVEL_MAX	19	/* window <= 8 MiB, which the decoder allows */
#define ZSTD_WLOG_MAX	23

struct wire_tx {
	struct wire_tx_config cfg;
	unsigned int max_pages;
	void *lz4;			/* LZ4 state for extState */
	uint8_t *stage;			/* the batch's data pages, copied (lz4; exact zstd) */
	ZSTD_CCtx *zc;
	bool zstd_fresh;		/* the zstd stream starts with the next batch */
	bool have_est, probing;
	unsigned int skip, backoff;
	unsigned int link_probe;	/* batches of the link probe still to go raw */
	unsigned int since_probe;	/* compressed batches since the last one */
	double link_est;		/* measured link, bytes/s; 0 = not yet */
	struct wire_tx_stats st;
	const uint64_t *populated;	/* wire_tx_set_populated() */
	struct wire_digest *digest;	/* wire_tx_set_digest() */
	bool stable;			/* wire_tx_set_stable() */
	bool held, held_compress;	/* wire_tx_hold_choice() */
	const uint8_t *src[WIRE_MAX_BATCH];
	uint64_t hash[WIRE_MAX_BATCH];
};

struct wire_rx {
	uint32_t page_size;
	uint8_t *scratch;		/* decompressed batch, WIRE_MAX_DATA */
	ZSTD_DCtx *zd;
};

static const char *const codec_names[WIRE_NR_CODECS] = {
	[WIRE_CODEC_RAW] = "raw",
	[WIRE_CODEC_LZ4] = "lz4",
	[WIRE_CODEC_ZSTD] = "zstd",
};

const char *wire_codec_name(enum wire_codec c)
{
	return (unsigned int)c < WIRE_NR_CODECS ? codec_names[c] : "unknown";
}

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000000000ull + ts.tv_nsec;
}

static bool page_size_ok(uint32_t ps)
{
	return ps >= WIRE_PAGE_SIZE_MIN && ps <= WIRE_PAGE_SIZE_MAX && !(ps & (ps - 1));
}

int wire_txmsg_init(struct wire_txmsg *m)
{
	memset(m, 0, sizeof(*m));
	/* Page-aligned: friendlier to MSG_ZEROCOPY's page pinning. */
	m->buf = aligned_alloc(4096, (WIRE_MAX_MSG + 4095) & ~4095ul);
	return m->buf ? 0 : -ENOMEM;
}

void wire_txmsg_release(struct wire_txmsg *m)
{
	free(m->buf);
	m->buf = NULL;
}

void wire_txmsg_set(struct wire_txmsg *m, size_t len)
{
	m->iov[0].iov_base = m->buf;
	m->iov[0].iov_len = len;
	m->niov = 1;
	m->len = len;
	m->zerocopy = false;
}

int wire_tx_create(const struct wire_tx_config *cfg, struct wire_tx **out)
{
	struct wire_tx *tx;
	int ret = -ENOMEM;

	if (!page_size_ok(cfg->page_size) || (unsigned int)cfg->codec >= WIRE_NR_CODECS)
		return -EINVAL;
	if (cfg->codec == WIRE_CODEC_ZSTD &&
	    (cfg->level < ZSTD_minCLevel() || cfg->level > ZSTD_LEVEL_MAX))
		return -EINVAL;
	if (cfg->codec == WIRE_CODEC_LZ4 && (cfg->level < 0 || cfg->level > 65537))
		return -EINVAL;
	tx = calloc(1, sizeof(*tx));
	if (!tx)
		return -ENOMEM;
	tx->cfg = *cfg;
	tx->max_pages = WIRE_MAX_DATA / cfg->page_size;
	if (tx->max_pages > WIRE_MAX_BATCH)
		tx->max_pages = WIRE_MAX_BATCH;
	tx->backoff = BACKOFF_MIN;
	tx->since_probe = LINK_REPROBE - 1;	/* the first probe is due */
	tx->zstd_fresh = true;
	if (cfg->codec != WIRE_CODEC_RAW) {
		tx->stage = malloc(WIRE_MAX_DATA);
		if (!tx->stage)
			goto err;
	}
	if (cfg->codec == WIRE_CODEC_LZ4) {
		tx->lz4 = malloc(LZ4_sizeofState());
		if (!tx->lz4)
			goto err;
	}
	if (cfg->codec == WIRE_CODEC_ZSTD) {
		tx->zc = ZSTD_createCCtx();
		if (!tx->zc)
			goto err;
		if (ZSTD_isError(ZSTD_CCtx_setParameter(tx->zc, ZSTD_c_compressionLevel,
							cfg->level))) {
			ret = -EINVAL;
			goto err;
		}
	}
	*out = tx;
	return 0;
err:
	wire_tx_destroy(tx);
	return ret;
}

void wire_tx_destroy(struct wire_tx *tx)
{
	if (!tx)
		return;
	ZSTD_freeCCtx(tx->zc);
	free(tx->lz4);
	free(tx->stage);
	free(tx);
}

void wire_tx_set_link(struct wire_tx *tx, uint64_t bytes_per_sec)
{
	tx->cfg.link_bps = bytes_per_sec;
}

bool wire_tx_wants_link(const struct wire_tx *tx)
{
	return tx->cfg.adaptive && tx->cfg.codec != WIRE_CODEC_RAW && !tx->cfg.link_bps;
}

void wire_tx_link_sample(struct wire_tx *tx, uint64_t bytes_per_sec, bool app_limited)
{
	if (!bytes_per_sec)
		return;
	/*
	 * An app-limited sample is in theory a lower bound, so it only ever
	 * raises the figure; but short bursts over a shaped link (late rounds'
	 * few batches) measured up to 1.7x the link (40 Mbit/s netem, test
	 * host): it raises the figure by the same quarter, not to itself.
	 */
	if (!app_limited || bytes_per_sec > tx->link_est)
		tx->link_est = tx->link_est ? 0.75 * tx->link_est + 0.25 * bytes_per_sec :
			       bytes_per_sec;
}

/* The link figure the choice uses: given, else measured; 0 if neither. */
static double link_bps(const struct wire_tx *tx)
{
	return tx->cfg.link_bps ? (double)tx->cfg.link_bps : tx->link_est;
}

void wire_tx_set_populated(struct wire_tx *tx, const uint64_t *bits)
{
	tx->populated = bits;
}

void wire_tx_set_digest(struct wire_tx *tx, struct wire_digest *d)
{
	tx->digest = d;
}

void wire_tx_set_stable(struct wire_tx *tx, bool stable)
{
	tx->stable = stable;
}

void wire_tx_hold_choice(struct wire_tx *tx, bool hold)
{
	tx->held = hold;
	/* Compressing unless in a raw stretch or at the probe that ends one. */
	tx->held_compress = !tx->skip && !tx->probing;
}

static bool unbacked(const struct wire_tx *tx, uint64_t gfn)
{
	return tx->populated && !(tx->populated[gfn / 64] & (1ull << (gfn % 64)));
}

unsigned int wire_tx_max_pages(const struct wire_tx *tx)
{
	return tx->max_pages;
}

void wire_tx_stats(const struct wire_tx *tx, struct wire_tx_stats *st)
{
	*st = tx->st;
	st->link_bps = link_bps(tx);
	st->link_measured = !tx->cfg.link_bps && tx->link_est;
}

static bool want_compress(struct wire_tx *tx)
{
	if (tx->cfg.codec == WIRE_CODEC_RAW)
		return false;
	if (!tx->cfg.adaptive)
		return true;
	if (tx->held) {
		if (!tx->held_compress)
			tx->st.skipped++;
		return tx->held_compress;
	}
	if (tx->link_probe) {
		tx->link_probe--;
		tx->st.link_probes++;
		return false;
	}
	if (!tx->skip)
		return true;
	tx->skip--;
	tx->st.skipped++;
	return false;
}

/*
 * Measure the link now and then while compressing, when nobody gave its
 * figure: compressed sends that do not fill the link say only that it is
 * faster than they are.  First after the first compressed batch (so that
 * the choice has both figures early), then every LINK_REPROBE.
 */
static void maybe_probe_link(struct wire_tx *tx)
{
	if (!wire_tx_wants_link(tx) || ++tx->since_probe < LINK_REPROBE)
		return;
	tx->since_probe = 0;
	tx->link_probe = LINK_PROBE;
}

/*
 * Update the running ratio and speed of the codec and decide whether the
 * next batches try it.  A channel thread compresses a batch while the
 * kernel transmits the ones before it from the socket buffer, so with a
 * link of L bytes/s and a compressor doing C raw bytes/s at ratio r, pages
 * go at min(C, L / r) compressed against L raw: compression pays when the
 * compressor outruns the link (and saves anything).  Without a link figure
 * (none given, none measured yet) it pays while it saves MIN_GAIN_RATIO.
 * A probe (the first batch after a raw stretch) replaces the estimate.
 */
static void learn(struct wire_tx *tx, size_t raw, size_t out, uint64_t ns)
{
	double r = (double)out / raw;
	double c = raw * 1e9 / (ns ? ns : 1);
	bool pays;

	if (!tx->have_est || tx->probing) {
		tx->st.ratio = r;
		tx->st.speed = c;
	} else {
		tx->st.ratio = 0.75 * tx->st.ratio + 0.25 * r;
		tx->st.speed = 0.75 * tx->st.speed + 0.25 * c;
	}
	tx->have_est = true;
	tx->probing = false;
	if (!tx->cfg.adaptive)
		return;
	if (link_bps(tx))
		pays = tx->st.speed > link_bps(tx) && tx->st.ratio < LINK_MAX_RATIO;
	else
		pays = tx->st.ratio < MIN_GAIN_RATIO;
	if (pays) {
		tx->backoff = BACKOFF_MIN;
		maybe_probe_link(tx);
		return;
	}
	tx->skip = tx->backoff;
	tx->probing = true;
	tx->backoff = tx->backoff * 2 > BACKOFF_MAX ? BACKOFF_MAX : tx->backoff * 2;
}

/*
 * Stage the batch contiguously (lz4's block needs it) and compress it into
 * data.  Returns the compressed size, or 0 if it would not fit in cap.
 */
static ssize_t lz4_batch(struct wire_tx *tx, unsigned int ndata, uint8_t *data, size_t cap)
{
	size_t ps = tx->cfg.page_size;
	int acc = tx->cfg.level ? tx->cfg.level : 1;
	int r;

	r = LZ4_compress_fast_extState(tx->lz4, (const char *)tx->stage, (char *)data,
				       ndata * ps, cap, acc);
	return r > 0 ? r : 0;
}

static ssize_t zstd_batch(struct wire_tx *tx, unsigned int ndata, uint8_t *data, size_t cap,
			  uint8_t *cflags)
{
	ZSTD_outBuffer out = { data, cap, 0 };
	ZSTD_inBuffer in;
	size_t r;

	for (unsigned int k = 0; k < ndata; k++) {
		in = (ZSTD_inBuffer){ tx->src[k], tx->cfg.page_size, 0 };
		while (in.pos < in.size) {
			r = ZSTD_compressStream2(tx->zc, &out, &in, ZSTD_e_continue);
			if (ZSTD_isError(r))
				goto fail;
			if (out.pos == out.size && in.pos < in.size)
				goto full;
		}
	}
	in = (ZSTD_inBuffer){ NULL, 0, 0 };
	do {
		r = ZSTD_compressStream2(tx->zc, &out, &in, ZSTD_e_flush);
		if (ZSTD_isError(r))
			goto fail;
		if (r && out.pos == out.size)
			goto full;
	} while (r);
	if (tx->zstd_fresh)
		*cflags |= WIRE_PF_RESET;
	tx->zstd_fresh = false;
	return out.pos;
full:
	ZSTD_CCtx_reset(tx->zc, ZSTD_reset_session_only);
	tx->zstd_fresh = true;
	return 0;
fail:
	ZSTD_CCtx_reset(tx->zc, ZSTD_reset_session_only);
	tx->zstd_fresh = true;
	return ZSTD_getErrorCode(r) == ZSTD_error_memory_allocation ? -ENOMEM : -EIO;
}

/* Raw data by reference: one iovec per run of adjacent pages. */
static void borrow_pages(struct wire_tx *tx, struct wire_txmsg *m, unsigned int ndata)
{
	size_t ps = tx->cfg.page_size;

	for (unsigned int k = 0; k < ndata; k++) {
		struct iovec *last = &m->iov[m->niov - 1];

		if (m->niov > 1 && (const uint8_t *)last->iov_base + last->iov_len == tx->src[k]) {
			last->iov_len += ps;
			continue;
		}
		m->iov[m->niov].iov_base = (void *)tx->src[k];
		m->iov[m->niov].iov_len = ps;
		m->niov++;
	}
	m->zerocopy = true;
}

/*
 * The data pages' hashes, and where the bytes the codec and the kernel will
 * read come from.  A batch to compress is staged (lz4's block needs it
 * anyway; for zstd it costs a copy, far less than compressing) and hashed
 * there, so that every compressed batch is exact: the destination checks
 * each page as it applies it.  A raw batch that is not sent by reference
 * is copied into the message and hashed there: exact too.  Raw pages sent
 * by reference are hashed in place and may change before the kernel reads
 * them: exact only while the vCPUs are paused (stable).
 */
enum hashed { HASHED_IN_PLACE, HASHED_STAGED, HASHED_COPIED };

static enum hashed hash_batch(struct wire_tx *tx, unsigned int ndata, bool compress,
			      bool borrow, uint8_t *data)
{
	size_t ps = tx->cfg.page_size;

	if (compress) {
		for (unsigned int k = 0; k < ndata; k++) {
			memcpy(tx->stage + k * ps, tx->src[k], ps);
			tx->src[k] = tx->stage + k * ps;
			tx->hash[k] = wire_page_hash(tx->src[k], ps);
		}
		return HASHED_STAGED;
	}
	if (!compress && !borrow) {
		for (unsigned int k = 0; k < ndata; k++) {
			memcpy(data + k * ps, tx->src[k], ps);
			tx->hash[k] = wire_page_hash(data + k * ps, ps);
		}
		return HASHED_COPIED;
	}
	for (unsigned int k = 0; k < ndata; k++)
		tx->hash[k] = wire_page_hash(tx->src[k], ps);
	return HASHED_IN_PLACE;
}

ssize_t wire_tx_pages(struct wire_tx *tx, struct wire_stream *s, struct wire_txmsg *m,
		      const uint8_t *mem, uint32_t round, const uint64_t *gfns, unsigned int n)
{
	size_t ps = tx->cfg.page_size;
	uint8_t *desc = m->buf + WIRE_HDR_SIZE + WIRE_PAGES_META;
	uint8_t *hashes, *data;
	struct wire_pages pg = { .round = round, .codec = WIRE_CODEC_RAW, .nr_pages = n };
	bool compress, borrow, exact;
	enum hashed how;
	unsigned int ndata = 0;
	uint64_t zero_hash = wire_zero_page_hash(ps), t_scan;
	ssize_t len;

	/* Everything wire_seal_pages() checks, before the codec stream moves. */
	if (!n || n > tx->max_pages || s->page_size != ps || s->role != WIRE_ROLE_SOURCE ||
	    !s->version || wire_stream_failed(s) || round != s->tx_round)
		return -EINVAL;
	t_scan = now_ns();
	for (unsigned int i = 0; i < n; i++) {
		const uint8_t *p;
		bool zero;

		if (gfns[i] >> WIRE_GFN_BITS || (tx->digest && gfns[i] >= tx->digest->nr_pages))
			return -EINVAL;
		p = mem + gfns[i] * ps;
		zero = unbacked(tx, gfns[i]) || wire_is_zero(p, ps);
		wire_desc_put(desc + (size_t)i * WIRE_DESC_SIZE, gfns[i],
			      zero ? WIRE_PAGE_ZERO : WIRE_PAGE_DATA);
		if (!zero)
			tx->src[ndata++] = p;
	}
	/* A page with content fails the zero test in its first words: this is the zero pages'. */
	tx->st.scan_ns += now_ns() - t_scan;
	hashes = desc + (size_t)n * WIRE_DESC_SIZE;
	data = hashes + (size_t)ndata * WIRE_HASH_SIZE;
	pg.nr_data = ndata;
	pg.data_len = ndata * ps;
	m->iov[0].iov_base = m->buf;
	m->iov[0].iov_len = data - m->buf;
	m->niov = 1;
	m->zerocopy = false;

	compress = ndata && (s->codecs & WIRE_CODEC_BIT(tx->cfg.codec)) && want_compress(tx);
	/* Raw pages by reference: the transport copies or pins them itself. */
	borrow = tx->cfg.zerocopy && (s->features & WIRE_FEAT_RAW_UNCHECKED);
	how = hash_batch(tx, ndata, compress, borrow, data);
	exact = how != HASHED_IN_PLACE || tx->stable;
	for (unsigned int k = 0; k < ndata; k++)
		wire_hash_put(hashes + (size_t)k * WIRE_HASH_SIZE, tx->hash[k]);

	if (compress) {
		uint64_t t0 = now_ns(), dt;
		uint8_t cflags = 0;
		ssize_t clen;

		if (tx->cfg.codec == WIRE_CODEC_LZ4)
			clen = lz4_batch(tx, ndata, data, pg.data_len - 1);
		else
			clen = zstd_batch(tx, ndata, data, pg.data_len - 1, &cflags);
		if (clen < 0)
			return clen;
		dt = now_ns() - t0;
		tx->st.comp_ns += dt;
		tx->st.comp_bytes += pg.data_len;
		learn(tx, pg.data_len, clen ? clen : pg.data_len, dt);
		if (clen) {
			pg.codec = tx->cfg.codec;
			pg.cflags = cflags;
			pg.data_len = clen;
			m->iov[0].iov_len += pg.data_len;
		} else {
			tx->st.fallbacks++;
			compress = false;
			/* Raw after all: send exactly the bytes that were hashed. */
			if (how == HASHED_STAGED) {
				memcpy(data, tx->stage, (size_t)ndata * ps);
				borrow = false;
			} else if (!borrow) {
				how = hash_batch(tx, ndata, false, false, data);
				exact = true;
			}
		}
	}
	if (!compress) {
		if (ndata && borrow)
			borrow_pages(tx, m, ndata);
		else
			m->iov[0].iov_len += pg.data_len;
	}
	if (exact)
		pg.cflags |= WIRE_PF_EXACT;
	len = wire_seal_pages(s, &pg, m->iov, m->niov);
	if (len < 0) {
		/* Not sent: the peer's decoder will not see this batch. */
		if (pg.codec == WIRE_CODEC_ZSTD) {
			ZSTD_CCtx_reset(tx->zc, ZSTD_reset_session_only);
			tx->zstd_fresh = true;
		}
		return len;
	}
	if (tx->digest) {
		unsigned int k = 0;

		for (unsigned int i = 0; i < n; i++) {
			uint64_t gfn;
			uint8_t kind;
			uint64_t d;

			memcpy(&d, desc + (size_t)i * WIRE_DESC_SIZE, 8);
			d = le64toh(d);
			gfn = d & ((1ull << WIRE_GFN_BITS) - 1);
			kind = d >> WIRE_GFN_BITS;
			wire_digest_set(tx->digest, gfn,
					kind == WIRE_PAGE_DATA ? tx->hash[k++] : zero_hash);
		}
	}
	m->len = len;
	tx->st.batches++;
	tx->st.pages += n;
	tx->st.zero_pages += n - ndata;
	tx->st.data_pages += ndata;
	tx->st.raw_bytes += (uint64_t)ndata * ps;
	tx->st.wire_bytes += len;
	tx->st.by_codec[pg.codec]++;
	tx->st.exact_batches += exact;
	return len;
}

int wire_rx_create(uint32_t page_size, struct wire_rx **out)
{
	struct wire_rx *rx;

	if (!page_size_ok(page_size))
		return -EINVAL;
	rx = calloc(1, sizeof(*rx));
	if (!rx)
		return -ENOMEM;
	rx->page_size = page_size;
	rx->scratch = malloc(WIRE_MAX_DATA);
	rx->zd = ZSTD_createDCtx();
	/* Bound what a hostile frame header can make us allocate. */
	if (!rx->scratch || !rx->zd ||
	    ZSTD_isError(ZSTD_DCtx_setParameter(rx->zd, ZSTD_d_windowLogMax, ZSTD_WLOG_MAX))) {
		wire_rx_destroy(rx);
		return -ENOMEM;
	}
	*out = rx;
	return 0;
}

void wire_rx_destroy(struct wire_rx *rx)
{
	if (!rx)
		return;
	ZSTD_freeDCtx(rx->zd);
	free(rx->scratch);
	free(rx);
}

/* Exactly raw bytes out of exactly len bytes in, or -EILSEQ. */
static int zstd_unbatch(ZSTD_DCtx *zd, const void *src, size_t len, void *dst, size_t raw)
{
	ZSTD_inBuffer in = { src, len, 0 };
	ZSTD_outBuffer out = { dst, raw, 0 };
	uint8_t extra;
	size_t r;

	for (;;) {
		size_t in0 = in.pos, out0 = out.pos;

		r = ZSTD_decompressStream(zd, &out, &in);
		if (ZSTD_isError(r))
			return -EILSEQ;
		if (in.pos == in0 && out.pos == out0)
			break;
	}
	if (in.pos != in.size || out.pos != raw)
		return -EILSEQ;
	/* Nothing may be left over inside the decoder either. */
	out = (ZSTD_outBuffer){ &extra, 1, 0 };
	r = ZSTD_decompressStream(zd, &out, &in);
	if (ZSTD_isError(r) || out.pos)
		return -EILSEQ;
	return 0;
}

int wire_rx_pages(struct wire_rx *rx, struct wire_stream *s, const struct wire_hdr *h,
		  const void *payload, struct wire_batch *b)
{
	size_t ps = rx->page_size;
	const uint8_t *src;
	struct wire_pages pg;
	unsigned int k = 0;
	size_t raw;
	int ret;

	if (s->page_size != ps)
		return -EINVAL;
	ret = wire_dec_pages(s, h, payload, &pg);
	if (ret)
		return ret;
	raw = (size_t)pg.nr_data * ps;
	src = rx->scratch;
	switch (pg.codec) {
	case WIRE_CODEC_RAW:
		src = pg.data;
		break;
	case WIRE_CODEC_LZ4:
		if (LZ4_decompress_safe((const char *)pg.data, (char *)rx->scratch,
					pg.data_len, raw) != (int)raw)
			return -EILSEQ;
		break;
	case WIRE_CODEC_ZSTD:
		if (pg.cflags & WIRE_PF_RESET)
			ZSTD_DCtx_reset(rx->zd, ZSTD_reset_session_only);
		ret = zstd_unbatch(rx->zd, pg.data, pg.data_len, rx->scratch, raw);
		if (ret)
			return ret;
		break;
	default:
		return -EBADMSG;
	}
	b->round = pg.round;
	b->n = pg.nr_pages;
	b->exact = pg.cflags & WIRE_PF_EXACT;
	for (unsigned int i = 0; i < pg.nr_pages; i++) {
		uint8_t kind;

		wire_pages_desc(&pg, i, &b->gfn[i], &kind);
		if (kind == WIRE_PAGE_DATA) {
			b->hash[i] = wire_pages_hash(&pg, k);
			b->data[i] = src + (k++) * ps;
		} else {
			b->hash[i] = 0;
			b->data[i] = NULL;
		}
	}
	return 0;
}
