// SPDX-License-Identifier: GPL-2.0
/* The small messages: ERROR, ROUND_END, ROUND_ACK, COMPLETE and the handover's. */
#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct wire_hdr h;
	struct wire_stream s;
	struct wire_error e;
	struct wire_round_end re;
	struct wire_complete c;
	struct wire_ready rd;
	struct wire_commit cm;
	struct wire_started sd;
	struct wire_query q;
	struct wire_outcome_msg o;
	struct wire_round_ack ra;

	wire_stream_init(&s, WIRE_ROLE_DEST, 4096);
	s.version = WIRE_VERSION_MAX;
	h = fuzz_hdr(WIRE_ERROR, size);
	wire_dec_error(&h, data, &e);
	h.type = WIRE_ROUND_END;
	wire_dec_round_end(&s, &h, data, &re);
	h.type = WIRE_COMPLETE;
	wire_dec_complete(&h, data, &c);
	h.type = WIRE_READY;
	wire_dec_ready(&h, data, &rd);
	h.type = WIRE_COMMIT;
	wire_dec_commit(&h, data, &cm);
	h.type = WIRE_STARTED;
	wire_dec_started(&h, data, &sd);
	h.type = WIRE_QUERY;
	wire_dec_query(&h, data, &q);
	h.type = WIRE_OUTCOME;
	wire_dec_outcome(&h, data, &o);
	h.type = WIRE_ROUND_ACK;
	wire_dec_round_ack(&h, data, &ra);
	return 0;
}
