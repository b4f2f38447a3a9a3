/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Destination side: apply decoded batches to guest memory in round order,
 * from any number of channel threads at once, and tell at the end whether
 * everything announced arrived.
 */
#ifndef VMDIRTY_WIRE_APPLY_H
#define VMDIRTY_WIRE_APPLY_H

#include <stdint.h>

#include "wire/codec.h"
#include "wire/proto.h"

struct wire_apply;

struct wire_apply_stats {
	uint64_t data;		/* data pages copied */
	uint64_t zero;		/* zero pages cleared */
	uint64_t zero_clean;	/* zero pages that already were (never written): not written */
	uint64_t stale;		/* pages skipped: a same or newer round was applied */
	uint64_t changed;	/* data pages that differed from their hash in a batch
				 * that was not exact: changed while being sent */
};

/* mem is the host address of gpa 0; regions as in HELLO (validated). */
int wire_apply_create(uint8_t *mem, uint32_t page_size, const struct wire_region *regions,
		      unsigned int nr, struct wire_apply **out);
void wire_apply_destroy(struct wire_apply *a);
/*
 * Before any apply: the pages whose memory is backed (vm_mem_populated()
 * bits, one per page from gpa 0).  Every other page is taken to read as
 * zero, so a zero page for it costs no write (and no allocation).  Without
 * this call every page is taken to be zero: right for fresh memory only.
 */
void wire_apply_mark_backed(struct wire_apply *a, const uint64_t *bits);
/*
 * Apply b: each page is written only if no page of the same or a newer
 * round was applied before, so content from round k never overwrites
 * round k+1 whichever channel delivers first.  Thread-safe.  -ERANGE if any
 * gfn is outside the layout or the round is out of range, -EBADMSG if b is
 * exact and a data page does not match its hash: nothing applied.
 */
int wire_apply_batch(struct wire_apply *a, const struct wire_batch *b);
/* wire_digest_sum() of every page as applied (wire/digest.h). */
uint64_t wire_apply_digest(const struct wire_apply *a);
/* Round last applied to gfn, or -1 if none (or not in the layout). */
int64_t wire_apply_round(const struct wire_apply *a, uint64_t gfn);
/* Pages of the layout never received; *first = lowest such gfn.  Appliers must be stopped. */
uint64_t wire_apply_missing(const struct wire_apply *a, uint64_t *first);
void wire_apply_stats(const struct wire_apply *a, struct wire_apply_stats *st);

/*
 * At COMPLETE, with every channel's receiver stopped: every stream ended
 * rounds 0..last_round and nothing since, the page and byte totals match,
 * no page is missing, the page digests match (O(1)), and, only with
 * WIRE_COMPLETE_HASH, the RAM hash (a pass over all RAM).  *hash gets the
 * hash computed here (0 if none).  On failure err is ready to send and
 * -EPROTO (totals, rounds, pages) or -EBADMSG (digest, hash) is returned.
 */
int wire_verify_complete(const struct wire_complete *c, struct wire_stream *const *streams,
			 unsigned int nr_streams, const struct wire_apply *a,
			 unsigned int nthreads, uint64_t *hash, struct wire_error *err);

#endif
