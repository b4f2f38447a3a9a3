/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Page codecs: zero detection, raw / lz4 / zstd batch encoding with a
 * per-batch choice, and the matching decoder.  One wire_tx per sending
 * channel and one wire_rx per receiving channel, each used by one thread:
 * they hold the channel's compressor or decompressor stream.
 */
#ifndef VMDIRTY_WIRE_CODEC_H
#define VMDIRTY_WIRE_CODEC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

#include "wire/proto.h"

/* True if len bytes at p are all zero (SSE2/AVX2 picked at run time). */
bool wire_is_zero(const void *p, size_t len);

struct wire_zero_impl {
	const char *name;
	bool (*fn)(const void *p, size_t len);
};
/* Every implementation this CPU can run (for the benchmark), and the one used. */
const struct wire_zero_impl *wire_zero_impls(unsigned int *n, const char **active);

struct wire_tx_config {
	uint32_t page_size;
	enum wire_codec codec;	/* preferred codec for data pages */
	int level;		/* zstd: level, negative = fast (0 = zstd's default 3); lz4: acceleration >= 1 (0 = 1) */
	bool zerocopy;		/* raw data by reference into guest memory, if WIRE_FEAT_RAW_UNCHECKED
				 * (the transport copies it in sendmsg, or pins it for zero copy) */
	bool adaptive;		/* send raw while compression does not pay, probe again later */
	uint64_t link_bps;	/* this channel's share of the link, bytes/s, as given;
				 * 0: measure it (wire_tx_link_sample()) */
};

struct wire_tx_stats {
	uint64_t batches, pages, zero_pages, data_pages;
	uint64_t raw_bytes;		/* data page bytes taken in */
	uint64_t wire_bytes;		/* PAGES message bytes produced, headers included */
	uint64_t by_codec[WIRE_NR_CODECS];	/* batches sent with each codec */
	uint64_t fallbacks;		/* compressed, did not shrink, sent raw */
	uint64_t skipped;		/* sent raw without trying: compression did not pay */
	uint64_t link_probes;		/* sent raw to measure the link */
	uint64_t exact_batches;		/* sent with WIRE_PF_EXACT */
	uint64_t comp_ns;		/* time spent compressing */
	uint64_t scan_ns;		/* time spent finding the zero pages (reading them) */
	uint64_t comp_bytes;		/* data page bytes given to the compressor */
	double ratio;			/* running compressed/raw estimate of the codec */
	double speed;			/* running compressor speed, raw bytes/s */
	uint64_t link_bps;		/* the link figure in use, bytes/s; 0 = none */
	bool link_measured;		/* ... from wire_tx_link_sample(), not given */
};

/*
 * One encoded message.  buf (WIRE_MAX_MSG bytes) holds the header and
 * everything not borrowed; iov[0..niov) is the message, len its length.
 * With zerocopy set, iov also points into guest memory: send with
 * MSG_ZEROCOPY and reuse m only after the completion.
 */
struct wire_txmsg {
	uint8_t *buf;
	struct iovec iov[WIRE_MAX_IOV];
	unsigned int niov;
	size_t len;
	bool zerocopy;
};
int wire_txmsg_init(struct wire_txmsg *m);
void wire_txmsg_release(struct wire_txmsg *m);
/* After a wire_enc_*() into m->buf: make m the single-iovec message of len bytes. */
void wire_txmsg_set(struct wire_txmsg *m, size_t len);

struct wire_tx;
int wire_tx_create(const struct wire_tx_config *cfg, struct wire_tx **out);
void wire_tx_destroy(struct wire_tx *tx);
void wire_tx_set_link(struct wire_tx *tx, uint64_t bytes_per_sec);
/* True if the choice needs wire_tx_link_sample(): adaptive, a codec, no figure given. */
bool wire_tx_wants_link(const struct wire_tx *tx);
/*
 * What the channel's connection delivered lately (TCP's delivery rate,
 * bytes/s), and whether that was all we gave it (app_limited: the link can
 * do at least that).  Used while no link figure was given.
 */
void wire_tx_link_sample(struct wire_tx *tx, uint64_t bytes_per_sec, bool app_limited);
/*
 * Pages known to be zero without reading them: while bits is set, a page
 * whose bit is clear goes out as a zero marker unread (vm_mem_populated():
 * reading unbacked guest memory would allocate it).  NULL: read every page.
 */
void wire_tx_set_populated(struct wire_tx *tx, const uint64_t *bits);
struct wire_digest;
/* Record every page sent (its hash, or the zero page's) in d (wire/digest.h). */
void wire_tx_set_digest(struct wire_tx *tx, struct wire_digest *d);
/* The pages cannot change until the switch (vCPUs paused): every batch is exact. */
void wire_tx_set_stable(struct wire_tx *tx, bool stable);
/*
 * Keep the adaptive choice as it stands (compress or not), with no probes,
 * until released: for the final round, whose time the choice of the last
 * round predicted (a probe there is downtime nobody expected, and a link
 * freed of the cap is only faster: what did not pay below it pays less).
 */
void wire_tx_hold_choice(struct wire_tx *tx, bool hold);
/* Most pages one PAGES message can carry (WIRE_MAX_BATCH, or less for big pages). */
unsigned int wire_tx_max_pages(const struct wire_tx *tx);
/*
 * Encode the pages gfns[0..n) of round into m: zero pages as markers, the
 * others raw or compressed.  mem is the host address of gpa 0.  s must be
 * established and round its open round.  Returns the message length.
 */
ssize_t wire_tx_pages(struct wire_tx *tx, struct wire_stream *s, struct wire_txmsg *m,
		      const uint8_t *mem, uint32_t round, const uint64_t *gfns, unsigned int n);
void wire_tx_stats(const struct wire_tx *tx, struct wire_tx_stats *st);

/*
 * A decoded batch: data[i] is the page content of gfn[i], NULL for a zero
 * page; hash[i] the source's hash of a data page (0 for a zero page).
 * exact: the data is exactly what the source hashed, so any difference is
 * corruption; otherwise a page may have changed while it was sent (it is
 * then dirty, and sent again).
 */
struct wire_batch {
	uint32_t round;
	unsigned int n;
	bool exact;
	uint64_t gfn[WIRE_MAX_BATCH];
	uint64_t hash[WIRE_MAX_BATCH];
	const uint8_t *data[WIRE_MAX_BATCH];
};

struct wire_rx;
int wire_rx_create(uint32_t page_size, struct wire_rx **out);
void wire_rx_destroy(struct wire_rx *rx);
/*
 * Decode a PAGES message that passed wire_recv_check(): validates it
 * (wire_dec_pages), decompresses into rx's scratch buffer, checks the size
 * and fills b.  b's pointers stay valid until the next call or until the
 * payload is reused.  -EILSEQ: the decompressor failed or the size is wrong;
 * other errors as wire_dec_pages().  Guest memory is not touched here.
 */
int wire_rx_pages(struct wire_rx *rx, struct wire_stream *s, const struct wire_hdr *h,
		  const void *payload, struct wire_batch *b);

const char *wire_codec_name(enum wire_codec c);

#endif
