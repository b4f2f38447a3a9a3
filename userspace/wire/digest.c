// SPDX-License-Identifier: GPL-2.0
/*
 * Page hashes and the order-independent page digest (digest.h).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <xxhash.h>
#if defined(__x86_64__)
#include <xxh_x86dispatch.h>
#endif

#include "wire/digest.h"

uint64_t wire_page_hash(const void *page, size_t len)
{
	uint64_t h = XXH3_64bits(page, len);

	return h ? h : 1;
}

uint64_t wire_zero_page_hash(size_t len)
{
	static uint64_t cached_len, cached;
	uint64_t h;
	void *z;

	if (__atomic_load_n(&cached_len, __ATOMIC_ACQUIRE) == len)
		return __atomic_load_n(&cached, __ATOMIC_RELAXED);
	z = calloc(1, len);
	if (!z)
		abort();
	h = wire_page_hash(z, len);
	free(z);
	/* Racing first calls store the same value; the release pairs with the acquire above. */
	__atomic_store_n(&cached, h, __ATOMIC_RELAXED);
	__atomic_store_n(&cached_len, len, __ATOMIC_RELEASE);
	return h;
}

/* (gfn, hash) to 64 bits that sum well: a bijective mix of both. */
static uint64_t mix(uint64_t gfn, uint64_t h)
{
	uint64_t x;

	if (!h)
		return 0;
	x = h ^ (gfn * 0x9e3779b97f4a7c15ull);
	x ^= x >> 33;
	x *= 0xff51afd7ed558ccdull;
	x ^= x >> 33;
	x *= 0xc4ceb9fe1a85ec53ull;
	x ^= x >> 33;
	return x;
}

int wire_digest_init(struct wire_digest *d, uint64_t nr_pages)
{
	memset(d, 0, sizeof(*d));
	d->hash = calloc(nr_pages ? nr_pages : 1, sizeof(*d->hash));
	if (!d->hash)
		return -ENOMEM;
	d->nr_pages = nr_pages;
	return 0;
}

void wire_digest_release(struct wire_digest *d)
{
	free(d->hash);
	d->hash = NULL;
	d->nr_pages = 0;
}

void wire_digest_set(struct wire_digest *d, uint64_t gfn, uint64_t h)
{
	uint64_t old = d->hash[gfn];

	if (old == h)
		return;
	d->hash[gfn] = h;
	__atomic_fetch_add(&d->sum, mix(gfn, h) - mix(gfn, old), __ATOMIC_RELAXED);
	if (!old)
		__atomic_fetch_add(&d->pages, 1, __ATOMIC_RELAXED);
}

uint64_t wire_digest_sum(const struct wire_digest *d)
{
	return __atomic_load_n(&d->sum, __ATOMIC_RELAXED);
}

uint64_t wire_digest_pages(const struct wire_digest *d)
{
	return __atomic_load_n(&d->pages, __ATOMIC_RELAXED);
}
