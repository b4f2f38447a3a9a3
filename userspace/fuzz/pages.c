// SPDX-License-Identifier: GPL-2.0
/*
 * PAGES through the whole receive path: validation, lz4/zstd decoding (the
 * zstd stream carries over between inputs, as on a channel) and apply into
 * a 64-page guest memory.
 */
#include <stdlib.h>

#include "fuzz.h"
#include "wire/apply.h"
#include "wire/codec.h"

#define NPAGES 64

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct wire_region rg = { 0, NPAGES * 4096 };
	static struct wire_apply *a;
	static struct wire_rx *rx;
	static struct wire_batch b;
	static uint8_t *mem;
	struct wire_hdr h = fuzz_hdr(WIRE_PAGES, size);
	struct wire_stream s;

	/* As a sender seals it: pcsum over meta, descriptors and hashes. */
	h.flags = WIRE_HF_TAIL_UNCHECKED;
	if (size >= WIRE_PAGES_META) {
		size_t meta = WIRE_PAGES_META + (size_t)(data[8] | data[9] << 8) * WIRE_DESC_SIZE +
			      (size_t)(data[10] | data[11] << 8) * WIRE_HASH_SIZE;

		h.csum_len = meta < size ? meta : size;
	}

	if (!mem) {
		mem = calloc(NPAGES, 4096);
		if (!mem || wire_apply_create(mem, 4096, &rg, 1, &a) || wire_rx_create(4096, &rx))
			abort();
	}
	wire_stream_init(&s, WIRE_ROLE_DEST, 4096);
	s.version = WIRE_VERSION_MAX;
	s.codecs = WIRE_CODECS_ALL;
	s.features = WIRE_FEAT_ALL;
	if (size >= 4)
		s.rx_round = data[0] | data[1] << 8 | data[2] << 16 | (uint32_t)data[3] << 24;
	if (!wire_rx_pages(rx, &s, &h, data, &b))
		wire_apply_batch(a, &b);
	return 0;
}
