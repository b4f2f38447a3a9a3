// SPDX-License-Identifier: GPL-2.0
/* HELLO and HELLO_ACK bodies, then negotiation against a fixed local side. */
#include <string.h>

#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct wire_hdr h = fuzz_hdr(WIRE_HELLO, size);
	struct wire_hello local, peer;
	struct wire_hello_ack ack;
	struct wire_error err;

	memset(&local, 0, sizeof(local));
	local.ver_min = local.ver_max = 1;
	local.page_size = 4096;
	local.nr_vcpus = 2;
	local.features = WIRE_FEAT_ALL;
	local.codecs = WIRE_CODECS_ALL;
	local.nr_regions = 1;
	local.regions[0].size = 1 << 20;
	if (!wire_dec_hello(&h, data, &peer)) {
		if (!wire_negotiate(&local, &peer, &ack, &err))
			wire_check_ack(&peer, &ack, &err);
	}
	h.type = WIRE_HELLO_ACK;
	if (!wire_dec_hello_ack(&h, data, &ack))
		wire_check_ack(&local, &ack, &err);
	return 0;
}
