/* SPDX-License-Identifier: GPL-2.0 */
/*
 * End-to-end integrity without a pass over guest RAM at the switch: each
 * side keeps the hash of every page as it last sent it (source) or applied
 * it (destination), and a sum over all pages of a mix of (gfn, hash) that
 * it updates page by page.  At COMPLETE the two sums must be equal: that
 * costs O(1) there, and O(pages sent) over the whole migration.
 *
 * The sum is order-independent (addition mod 2^64), so channels and threads
 * may update it in any order; the mix binds each hash to its gfn, so two
 * pages swapped do not cancel out.  A page never sent counts 0.
 *
 * What it proves: the destination holds, for every page, exactly the bytes
 * the source last sent for it.  What it cannot: that the source sent every
 * page the guest dirtied (a lost dirty page has the same stale hash on both
 * sides).  The opt-in full RAM hash (WIRE_FEAT_RAM_HASH) checks that too.
 */
#ifndef VMDIRTY_WIRE_DIGEST_H
#define VMDIRTY_WIRE_DIGEST_H

#include <stddef.h>
#include <stdint.h>

/* XXH3-64 of one page; never 0 (0 means "not sent" in a digest). */
uint64_t wire_page_hash(const void *page, size_t len);
/* wire_page_hash() of an all-zero page of len bytes (computed once per size). */
uint64_t wire_zero_page_hash(size_t len);

struct wire_digest {
	uint64_t *hash;		/* per gfn, 0: never sent or applied */
	uint64_t nr_pages;
	uint64_t sum;		/* atomic */
	uint64_t pages;		/* pages with a hash, atomic */
};

int wire_digest_init(struct wire_digest *d, uint64_t nr_pages);
void wire_digest_release(struct wire_digest *d);
/*
 * Page gfn now holds content of hash h.  Callers serialize updates of the
 * same page (one sender per page per round; the destination's stripe
 * lock); different pages may be updated from any threads at once.
 */
void wire_digest_set(struct wire_digest *d, uint64_t gfn, uint64_t h);
uint64_t wire_digest_sum(const struct wire_digest *d);
uint64_t wire_digest_pages(const struct wire_digest *d);

#endif
