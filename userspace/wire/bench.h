/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Codec micro-benchmark: per-core throughput and ratio of each page codec
 * through the real batch encoder and decoder, on any memory (guest RAM,
 * or guest-like content from wire_bench_fill()).
 */
#ifndef VMDIRTY_WIRE_BENCH_H
#define VMDIRTY_WIRE_BENCH_H

#include <stdint.h>
#include <stdio.h>

#include "wire/proto.h"

struct wire_bench_result {
	char name[24];
	double enc_mib_s;	/* guest MiB/s one core encodes (zero pages included) */
	double dec_mib_s;	/* guest MiB/s one core decodes and copies out; 0: n/a */
	double ratio;		/* wire bytes / guest bytes */
	double data_ratio;	/* encoded data / data-page bytes (non-zero pages) */
};

/*
 * Fill len bytes with guest-like pages: zero_pct % zero, text_pct %
 * text-like, the rest random, chosen by page index (deterministic).
 */
void wire_bench_fill(uint8_t *mem, size_t len, uint32_t page_size, unsigned int zero_pct,
		     unsigned int text_pct, uint64_t seed);
/*
 * Run zero detection, XXH3, the round-ordered apply and every codec (raw
 * copy, raw by reference, lz4, zstd -5/-1/1/3) over the pages of mem in
 * batches of batch pages, each for at least min_secs, single-threaded.  mem is only read.  Returns the
 * number of results written (at most max) or -errno.
 */
int wire_bench_run(const uint8_t *mem, size_t len, uint32_t page_size, unsigned int batch,
		   double min_secs, struct wire_bench_result *res, unsigned int max);
void wire_bench_print(FILE *f, const struct wire_bench_result *res, unsigned int n);

#endif
