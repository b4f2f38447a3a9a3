// SPDX-License-Identifier: GPL-2.0
/*
 * The netlink client's parsers (nl.c) on a buffer of netlink messages as
 * the socket would deliver them: data[0] bit 0 picks the event parser,
 * else replies to GET_SESSION; the rest is the messages (seeds: replies of
 * the module recorded in the test host, and gen.c's).
 */
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "nl.h"

static void event(void *ctx, enum vmdirty_genl_event ev, const struct vmdirty_genl_session *s)
{
	/* Touch what a real consumer reads. */
	for (unsigned int i = 0; i < s->nr_vcpu_entries; i++)
		*(volatile uint64_t *)ctx += s->vcpus[i].entries;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct vmdirty_genl_session *v = NULL;
	uint64_t sink = 0;
	size_t n = 0;
	void *buf;

	if (size < 1)
		return 0;
	/* Netlink messages are 4-byte aligned in a socket's buffer. */
	buf = malloc(size);
	memcpy(buf, data + 1, size - 1);
	if (data[0] & 1) {
		vmdirty_genl_parse_events(buf, size - 1, event, &sink);
	} else {
		vmdirty_genl_parse_replies(buf, size - 1, &v, &n);
		vmdirty_genl_free(v, n);
	}
	free(buf);
	return 0;
}
