// SPDX-License-Identifier: GPL-2.0
/*
 * Zero-page detection at memory speed, the way QEMU's buffer_is_zero()
 * works: probe a few words first (most non-zero pages fail there), then OR
 * whole vectors together and test the accumulator once per 256 bytes, with
 * the widest instruction set the CPU has, chosen once at run time.
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "wire/codec.h"

static bool zero_words(const uint8_t *p, size_t len)
{
	uint64_t acc = 0, w;
	size_t i = 0;

	for (; i + 8 <= len; i += 8) {
		memcpy(&w, p + i, 8);
		acc |= w;
	}
	for (; i < len; i++)
		acc |= p[i];
	return !acc;
}

/* First, middle and last word: cheap rejection of pages with data. */
static bool probe(const uint8_t *p, size_t len)
{
	uint64_t a, b, c;

	memcpy(&a, p, 8);
	memcpy(&b, p + len / 2 - 8, 8);
	memcpy(&c, p + len - 8, 8);
	return !(a | b | c);
}

#if defined(__x86_64__)
#include <immintrin.h>

static bool zero_sse2(const void *buf, size_t len)
{
	const uint8_t *p = buf;
	size_t i = 0;

	if (len < 256)
		return zero_words(p, len);
	if (!probe(p, len))
		return false;
	for (; i + 256 <= len; i += 256) {
		__m128i a = _mm_loadu_si128((const __m128i *)(p + i));

		for (size_t j = 16; j < 256; j += 16)
			a = _mm_or_si128(a, _mm_loadu_si128((const __m128i *)(p + i + j)));
		if (_mm_movemask_epi8(_mm_cmpeq_epi8(a, _mm_setzero_si128())) != 0xffff)
			return false;
	}
	return zero_words(p + i, len - i);
}

__attribute__((target("avx2")))
static bool zero_avx2(const void *buf, size_t len)
{
	const uint8_t *p = buf;
	size_t i = 0;

	if (len < 256)
		return zero_words(p, len);
	if (!probe(p, len))
		return false;
	for (; i + 256 <= len; i += 256) {
		__m256i a = _mm256_loadu_si256((const __m256i *)(p + i));

		for (size_t j = 32; j < 256; j += 32)
			a = _mm256_or_si256(a, _mm256_loadu_si256((const __m256i *)(p + i + j)));
		if (!_mm256_testz_si256(a, a))
			return false;
	}
	return zero_words(p + i, len - i);
}
#endif

static bool zero_generic(const void *p, size_t len)
{
	if (len >= 256 && !probe(p, len))
		return false;
	return zero_words(p, len);
}

static const struct wire_zero_impl impls[] = {
	{ "generic", zero_generic },
#if defined(__x86_64__)
	{ "sse2", zero_sse2 },
	{ "avx2", zero_avx2 },
#endif
};

static const struct wire_zero_impl *chosen;

static const struct wire_zero_impl *choose(void)
{
	const struct wire_zero_impl *best = &impls[0];

#if defined(__x86_64__)
	__builtin_cpu_init();
	best = &impls[1];	/* SSE2 is baseline x86-64 */
	if (__builtin_cpu_supports("avx2"))
		best = &impls[2];
#endif
	/* Every thread computes the same answer: a racy first store is benign. */
	__atomic_store_n(&chosen, best, __ATOMIC_RELAXED);
	return best;
}

bool wire_is_zero(const void *p, size_t len)
{
	const struct wire_zero_impl *z = __atomic_load_n(&chosen, __ATOMIC_RELAXED);

	if (!z)
		z = choose();
	return z->fn(p, len);
}

const struct wire_zero_impl *wire_zero_impls(unsigned int *n, const char **active)
{
	const struct wire_zero_impl *z = __atomic_load_n(&chosen, __ATOMIC_RELAXED);

	if (!z)
		z = choose();
	*n = sizeof(impls) / sizeof(impls[0]);
	if (active)
		*active = z->name;
	return impls;
}
