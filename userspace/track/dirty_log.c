// SPDX-License-Identifier: GPL-2.0
/*
 * Walking a dirty log: set bits in ascending page order, skipping the
 * 4096-page groups a summary says are clean.  Bits past a part's npages are
 * never reported, whatever the bitmap holds there.
 */
#include <stddef.h>

#include "track/track.h"

/* Mask of the valid bits of word w of a part. */
static uint64_t word_mask(const struct dirty_log_part *p, uint64_t w)
{
	uint64_t first = w * 64;

	if (first + 64 <= p->npages)
		return ~0ull;
	return (1ull << (p->npages - first)) - 1;
}

/* Index of the first word >= w that may be non-zero, or the word count. */
static uint64_t next_word(const struct dirty_log_part *p, uint64_t w)
{
	uint64_t nw = (p->npages + 63) / 64;

	while (w < nw) {
		if (p->summary) {
			uint64_t s = p->summary[w / 64] >> (w % 64);

			if (!s) {
				w = (w / 64 + 1) * 64;
				continue;
			}
			w += (uint64_t)__builtin_ctzll(s);
			if (w >= nw)
				break;
		}
		if (p->bits[w] & word_mask(p, w))
			return w;
		w++;
	}
	return nw;
}

void dirty_log_iter_init(struct dirty_log_iter *it, const struct dirty_log *log)
{
	it->log = log;
	it->part = 0;
	it->word = 0;
	it->bits = 0;
	if (log->nr_parts && log->part[0].npages) {
		const struct dirty_log_part *p = &log->part[0];

		it->word = next_word(p, 0);
		if (it->word < (p->npages + 63) / 64)
			it->bits = p->bits[it->word] & word_mask(p, it->word);
	}
}

bool dirty_log_next(struct dirty_log_iter *it, uint64_t *page)
{
	const struct dirty_log *log = it->log;

	while (it->part < log->nr_parts) {
		const struct dirty_log_part *p = &log->part[it->part];
		uint64_t nw = (p->npages + 63) / 64;

		if (it->bits) {
			unsigned int b = (unsigned int)__builtin_ctzll(it->bits);

			it->bits &= it->bits - 1;
			*page = p->first_page + it->word * 64 + b;
			return true;
		}
		it->word = it->word < nw ? next_word(p, it->word + 1) : nw;
		if (it->word < nw) {
			it->bits = p->bits[it->word] & word_mask(p, it->word);
			continue;
		}
		/* Next part. */
		if (++it->part >= log->nr_parts)
			break;
		p = &log->part[it->part];
		nw = (p->npages + 63) / 64;
		it->word = next_word(p, 0);
		it->bits = it->word < nw ? p->bits[it->word] & word_mask(p, it->word) : 0;
	}
	return false;
}

int dirty_log_for_each(const struct dirty_log *log,
		       int (*fn)(void *ctx, uint64_t page), void *ctx)
{
	struct dirty_log_iter it;
	uint64_t page;
	int ret;

	dirty_log_iter_init(&it, log);
	while (dirty_log_next(&it, &page)) {
		ret = fn(ctx, page);
		if (ret)
			return ret;
	}
	return 0;
}

bool dirty_log_test(const struct dirty_log *log, uint64_t page)
{
	for (unsigned int i = 0; i < log->nr_parts; i++) {
		const struct dirty_log_part *p = &log->part[i];
		uint64_t off;

		if (page < p->first_page || page - p->first_page >= p->npages)
			continue;
		off = page - p->first_page;
		return (p->bits[off / 64] >> (off % 64)) & 1;
	}
	return false;
}

uint64_t dirty_log_popcount(const struct dirty_log *log)
{
	uint64_t n = 0;

	for (unsigned int i = 0; i < log->nr_parts; i++) {
		const struct dirty_log_part *p = &log->part[i];
		uint64_t nw = (p->npages + 63) / 64;

		for (uint64_t w = next_word(p, 0); w < nw; w = next_word(p, w + 1))
			n += (uint64_t)__builtin_popcountll(p->bits[w] & word_mask(p, w));
	}
	return n;
}
