// SPDX-License-Identifier: GPL-2.0
/*
 * wire_hdr_parse() and wire_recv_check() on a header and payload.  The
 * checksums are fixed up first (unless the input's flags byte asks not to)
 * so that the fuzzer gets past them to the field checks.
 */
#include <stdlib.h>
#include <string.h>
#include <xxhash.h>

#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct wire_stream s;
	struct wire_hdr h;
	uint8_t *msg;
	uint32_t v;
	uint64_t pc;

	if (size < WIRE_HDR_SIZE)
		return 0;
	msg = malloc(size);
	memcpy(msg, data, size);
	if (!(data[7] & 0x40)) {
		v = size - WIRE_HDR_SIZE;
		memcpy(&pc, msg + 12, 4);	/* keep a fuzzed csum_len */
		pc = XXH3_64bits(msg + WIRE_HDR_SIZE, (uint32_t)pc <= v ? (uint32_t)pc : v);
		memcpy(msg + 24, &pc, 8);
		memset(msg + 20, 0, 4);
		v = (uint32_t)XXH3_64bits(msg, WIRE_HDR_SIZE);
		memcpy(msg + 20, &v, 4);
	}
	if (!wire_hdr_parse(msg, &h) && h.len == size - WIRE_HDR_SIZE) {
		wire_stream_init(&s, data[6] & 1 ? WIRE_ROLE_SOURCE : WIRE_ROLE_DEST, 4096);
		s.rx_seq = h.seq;
		if (data[7] & 0x20)
			s.version = WIRE_VERSION_MAX;
		s.features = data[7] & 0x10 ? WIRE_FEAT_ALL : 0;
		wire_recv_check(&s, &h, msg + WIRE_HDR_SIZE);
	}
	free(msg);
	return 0;
}
