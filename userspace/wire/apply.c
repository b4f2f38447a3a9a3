// SPDX-License-Identifier: GPL-2.0
/*
 * Round-ordered apply.
 *
 * Every page has a stamp: 0 if never received, else 1 + the round last
 * applied, and the CONTENT bit when its memory may hold data (written here,
 * or backed when the apply began): a zero page for a page without it needs
 * no write, and reading it to find out would make shmem allocate it.  Check-copy-stamp must be atomic against another thread applying
 * the same page: a compare-and-swap on the stamp alone cannot cover a 4 KiB
 * copy (an older round's copy could still be running when a newer one
 * stamps), so each page is covered by one of STRIPES mutexes, chosen by the
 * low bits of its gfn.  Why striped mutexes:
 *  - a lock per page would cost 40 bytes a page; a global lock would
 *    serialize the channel threads on every copy; STRIPES cache-line sized
 *    locks cost 64 KiB and two threads only meet when they copy pages with
 *    the same low gfn bits at the same instant (adjacent pages never do);
 *  - a mutex sleeps where a spinlock (e.g. a busy bit in the stamp) would
 *    spin on a preempted holder, and the destination runs more threads
 *    (channels, decompression) than it has cores.
 * The lock also orders the stamps: a thread that finds a newer stamp under
 * the lock sees that newer page's content.  Stamps are read without locks
 * only once every applier has been joined.
 */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "wire/apply.h"
#include "wire/digest.h"

#define STRIPES		1024
#define CONTENT		(1u << 31)	/* stamp bit: the page's memory may be non-zero */
#define ROUND_MASK	(CONTENT - 1)

struct stripe {
	pthread_mutex_t lock;
} __attribute__((aligned(64)));

struct wire_apply {
	uint8_t *mem;
	uint32_t page_size;
	unsigned int nr_regions;
	struct wire_region *regions;	/* gfn ranges: gpa and size in pages */
	uint64_t nr_stamps;
	uint64_t layout_pages;		/* pages in the regions */
	uint32_t *stamps;
	struct wire_digest dg;		/* hash of every page as applied */
	struct stripe stripes[STRIPES];
	uint64_t data, zero, zero_clean, stale, changed;	/* atomics */
};

static bool in_layout(const struct wire_apply *a, uint64_t gfn)
{
	unsigned int lo = 0, hi = a->nr_regions;

	/* Last region starting at or below gfn. */
	while (hi - lo > 1) {
		unsigned int mid = (lo + hi) / 2;

		if (a->regions[mid].gpa <= gfn)
			lo = mid;
		else
			hi = mid;
	}
	return gfn >= a->regions[lo].gpa && gfn - a->regions[lo].gpa < a->regions[lo].size;
}

int wire_apply_create(uint8_t *mem, uint32_t page_size, const struct wire_region *regions,
		      unsigned int nr, struct wire_apply **out)
{
	struct wire_apply *a;
	uint64_t end = 0;
	unsigned int i;
	int ret = -ENOMEM;

	if (!nr || nr > WIRE_MAX_REGIONS || page_size < WIRE_PAGE_SIZE_MIN ||
	    page_size > WIRE_PAGE_SIZE_MAX || (page_size & (page_size - 1)))
		return -EINVAL;
	for (i = 0; i < nr; i++) {
		if (!regions[i].size || (regions[i].gpa | regions[i].size) & (page_size - 1) ||
		    regions[i].gpa < end || regions[i].gpa + regions[i].size < regions[i].gpa)
			return -EINVAL;
		end = regions[i].gpa + regions[i].size;
	}
	a = aligned_alloc(64, sizeof(*a));
	if (!a)
		return -ENOMEM;
	memset(a, 0, sizeof(*a));
	a->mem = mem;
	a->page_size = page_size;
	a->nr_regions = nr;
	a->nr_stamps = end / page_size;
	a->regions = calloc(nr, sizeof(*a->regions));
	a->stamps = calloc(a->nr_stamps, sizeof(*a->stamps));
	if (!a->regions || !a->stamps || wire_digest_init(&a->dg, a->nr_stamps))
		goto err;
	for (i = 0; i < nr; i++) {
		a->regions[i].gpa = regions[i].gpa / page_size;
		a->regions[i].size = regions[i].size / page_size;
		a->layout_pages += a->regions[i].size;
	}
	for (i = 0; i < STRIPES; i++) {
		ret = -pthread_mutex_init(&a->stripes[i].lock, NULL);
		if (ret)
			goto err_locks;
	}
	*out = a;
	return 0;

err_locks:
	while (i--)
		pthread_mutex_destroy(&a->stripes[i].lock);
err:
	wire_digest_release(&a->dg);
	free(a->regions);
	free(a->stamps);
	free(a);
	return ret;
}

void wire_apply_destroy(struct wire_apply *a)
{
	if (!a)
		return;
	for (unsigned int i = 0; i < STRIPES; i++)
		pthread_mutex_destroy(&a->stripes[i].lock);
	wire_digest_release(&a->dg);
	free(a->regions);
	free(a->stamps);
	free(a);
}

int wire_apply_batch(struct wire_apply *a, const struct wire_batch *b)
{
	uint64_t data = 0, zero = 0, clean = 0, stale = 0, changed = 0;
	uint32_t stamp = b->round + 1;
	size_t ps = a->page_size;
	uint64_t zero_hash = wire_zero_page_hash(ps);
	uint64_t h[WIRE_MAX_BATCH];

	/* Validate everything first: a bad batch applies nothing. */
	if (b->round >= ROUND_MASK || b->n > WIRE_MAX_BATCH)
		return -ERANGE;
	for (unsigned int i = 0; i < b->n; i++)
		if (!in_layout(a, b->gfn[i]))
			return -ERANGE;
	/*
	 * Check what the batch carries before it is applied: an exact batch
	 * must match its hashes; in any other a page may have changed while
	 * it was sent (it is dirty again), and what arrived is what counts.
	 */
	for (unsigned int i = 0; i < b->n; i++) {
		if (!b->data[i]) {
			h[i] = zero_hash;
			continue;
		}
		h[i] = wire_page_hash(b->data[i], ps);
		if (h[i] == b->hash[i])
			continue;
		if (b->exact)
			return -EBADMSG;
		changed++;
	}

	for (unsigned int i = 0; i < b->n; i++) {
		uint64_t gfn = b->gfn[i];
		struct stripe *st = &a->stripes[gfn & (STRIPES - 1)];
		uint8_t *dst = a->mem + gfn * ps;

		pthread_mutex_lock(&st->lock);
		if ((a->stamps[gfn] & ROUND_MASK) >= stamp) {
			stale++;
		} else {
			if (b->data[i]) {
				memcpy(dst, b->data[i], ps);
				data++;
				a->stamps[gfn] = stamp | CONTENT;
			} else if (a->stamps[gfn] & CONTENT) {
				memset(dst, 0, ps);
				zero++;
				a->stamps[gfn] = stamp;
			} else {
				/* Never written: it reads as zero, and stays unallocated. */
				clean++;
				a->stamps[gfn] = stamp;
			}
			wire_digest_set(&a->dg, gfn, h[i]);
		}
		pthread_mutex_unlock(&st->lock);
	}
	__atomic_fetch_add(&a->data, data, __ATOMIC_RELAXED);
	__atomic_fetch_add(&a->zero, zero, __ATOMIC_RELAXED);
	__atomic_fetch_add(&a->zero_clean, clean, __ATOMIC_RELAXED);
	__atomic_fetch_add(&a->stale, stale, __ATOMIC_RELAXED);
	__atomic_fetch_add(&a->changed, changed, __ATOMIC_RELAXED);
	return 0;
}

void wire_apply_mark_backed(struct wire_apply *a, const uint64_t *bits)
{
	for (uint64_t gfn = 0; gfn < a->nr_stamps; gfn++)
		if (bits[gfn / 64] & (1ull << (gfn % 64)))
			a->stamps[gfn] |= CONTENT;
}

int64_t wire_apply_round(const struct wire_apply *a, uint64_t gfn)
{
	struct stripe *st;
	uint32_t stamp;

	if (!in_layout(a, gfn))
		return -1;
	st = (struct stripe *)&a->stripes[gfn & (STRIPES - 1)];
	pthread_mutex_lock(&st->lock);
	stamp = a->stamps[gfn] & ROUND_MASK;
	pthread_mutex_unlock(&st->lock);
	return (int64_t)stamp - 1;
}

uint64_t wire_apply_missing(const struct wire_apply *a, uint64_t *first)
{
	uint64_t missing = 0;

	*first = UINT64_MAX;
	/* O(1) when nothing is missing: the digest counts the pages it has. */
	if (wire_digest_pages(&a->dg) == a->layout_pages)
		return 0;
	for (unsigned int r = 0; r < a->nr_regions; r++)
		for (uint64_t gfn = a->regions[r].gpa;
		     gfn < a->regions[r].gpa + a->regions[r].size; gfn++)
			if (!(a->stamps[gfn] & ROUND_MASK)) {
				if (!missing)
					*first = gfn;
				missing++;
			}
	return missing;
}

void wire_apply_stats(const struct wire_apply *a, struct wire_apply_stats *st)
{
	st->data = __atomic_load_n(&a->data, __ATOMIC_RELAXED);
	st->zero = __atomic_load_n(&a->zero, __ATOMIC_RELAXED);
	st->zero_clean = __atomic_load_n(&a->zero_clean, __ATOMIC_RELAXED);
	st->stale = __atomic_load_n(&a->stale, __ATOMIC_RELAXED);
	st->changed = __atomic_load_n(&a->changed, __ATOMIC_RELAXED);
}

uint64_t wire_apply_digest(const struct wire_apply *a)
{
	return wire_digest_sum(&a->dg);
}

int wire_verify_complete(const struct wire_complete *c, struct wire_stream *const *streams,
			 unsigned int nr_streams, const struct wire_apply *a,
			 unsigned int nthreads, uint64_t *hash, struct wire_error *err)
{
	struct wire_region bytes[WIRE_MAX_REGIONS];
	uint64_t pages = 0, total = 0, missing, first, digest;
	int ret;

	*hash = 0;
	for (unsigned int i = 0; i < nr_streams; i++) {
		const struct wire_stream *s = streams[i];

		if (s->rx_round != c->last_round + 1ull || s->rx_round_pages) {
			wire_error_set(err, WIRE_ERR_INCOMPLETE, EPROTO,
				       "channel %u ended %u rounds (%llu pages after), COMPLETE says rounds 0..%u",
				       i, s->rx_round, (unsigned long long)s->rx_round_pages,
				       c->last_round);
			return -EPROTO;
		}
		pages += s->rx_pages;
		total += s->rx_bytes;
	}
	if (pages != c->total_pages || total != c->total_bytes) {
		wire_error_set(err, WIRE_ERR_INCOMPLETE, EPROTO,
			       "received %llu pages in %llu bytes, source sent %llu in %llu",
			       (unsigned long long)pages, (unsigned long long)total,
			       (unsigned long long)c->total_pages, (unsigned long long)c->total_bytes);
		return -EPROTO;
	}
	missing = wire_apply_missing(a, &first);
	if (missing) {
		wire_error_set(err, WIRE_ERR_INCOMPLETE, EPROTO,
			       "%llu pages never received, the first at gfn %#llx",
			       (unsigned long long)missing, (unsigned long long)first);
		return -EPROTO;
	}
	digest = wire_apply_digest(a);
	if (digest != c->digest) {
		wire_error_set(err, WIRE_ERR_HASH, EBADMSG,
			       "page digest %#llx here, %#llx at the source: some page differs from what was sent last",
			       (unsigned long long)digest, (unsigned long long)c->digest);
		return -EBADMSG;
	}
	if (!(c->flags & WIRE_COMPLETE_HASH))
		return 0;
	for (unsigned int i = 0; i < a->nr_regions; i++) {
		bytes[i].gpa = a->regions[i].gpa * a->page_size;
		bytes[i].size = a->regions[i].size * a->page_size;
	}
	ret = wire_ram_hash(a->mem, bytes, a->nr_regions, nthreads, hash);
	if (ret) {
		wire_error_set(err, WIRE_ERR_INTERNAL, ret, "RAM hash: %s", strerror(-ret));
		return ret;
	}
	if (*hash != c->ram_hash) {
		wire_error_set(err, WIRE_ERR_HASH, EBADMSG,
			       "RAM hash %#llx here, %#llx at the source",
			       (unsigned long long)*hash, (unsigned long long)c->ram_hash);
		return -EBADMSG;
	}
	return 0;
}
