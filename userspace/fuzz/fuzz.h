/* SPDX-License-Identifier: GPL-2.0 */
/* Shared by the harnesses: a header for a payload, as wire_recv_check() passed it. */
#ifndef VMDIRTY_FUZZ_H
#define VMDIRTY_FUZZ_H

#include <stddef.h>
#include <stdint.h>

#include "wire/proto.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static inline struct wire_hdr fuzz_hdr(uint8_t type, size_t size)
{
	return (struct wire_hdr){ .version = WIRE_VERSION_MAX, .type = type,
				  .len = size, .csum_len = size };
}

#endif
