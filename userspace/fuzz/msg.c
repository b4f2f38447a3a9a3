// SPDX-License-Identifier: GPL-2.0
/* The small messages: ERROR, ROUND_END, COMPLETE, CONFIRM. */
#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct wire_hdr h;
	struct wire_stream s;
	struct wire_error e;
	struct wire_round_end re;
	struct wire_complete c;
	struct wire_confirm cf;

	wire_stream_init(&s, WIRE_ROLE_DEST, 4096);
	s.version = 1;
	h = fuzz_hdr(WIRE_ERROR, size);
	wire_dec_error(&h, data, &e);
	h.type = WIRE_ROUND_END;
	wire_dec_round_end(&s, &h, data, &re);
	h.type = WIRE_COMPLETE;
	wire_dec_complete(&h, data, &c);
	h.type = WIRE_CONFIRM;
	wire_dec_confirm(&h, data, &cf);
	return 0;
}
