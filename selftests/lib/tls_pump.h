/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Test helper shared by selftests/tls_test.c (kernel TLS) and
 * userspace/tests/auth_test.c (records in userspace): a receiving thread
 * that checks every message a sending thread made with tls_pump_fill().
 * Message i: a u32 length, then that many bytes of tls_pump_fill(i).
 */
#ifndef VMDIRTY_TLS_PUMP_H
#define VMDIRTY_TLS_PUMP_H

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "wire/transport.h"

struct pump {
	struct transport_chan *ch;
	uint32_t msgs;		/* how many messages */
	uint32_t max;		/* the longest */
	int ret;
	char err[256];
};

static inline void tls_pump_fill(uint8_t *p, size_t len, uint64_t seed)
{
	for (size_t i = 0; i < len; i++) {
		seed = seed * 6364136223846793005ull + 1442695040888963407ull;
		p[i] = seed >> 56;
	}
}

static inline void *pump_recv(void *arg)
{
	struct pump *p = arg;
	uint8_t *buf = malloc(p->max), *want = malloc(p->max);

	for (uint32_t i = 0; i < p->msgs && !p->ret; i++) {
		uint32_t len;

		p->ret = transport_recv(p->ch, &len, sizeof(len));
		if (!p->ret && len > p->max)
			p->ret = -EPROTO;
		if (!p->ret)
			p->ret = transport_recv(p->ch, buf, len);
		if (p->ret)
			break;
		tls_pump_fill(want, len, i);
		if (memcmp(buf, want, len)) {
			p->ret = -EBADMSG;
			snprintf(p->err, sizeof(p->err), "message %u differs", i);
		}
	}
	if (p->ret && !p->err[0])
		snprintf(p->err, sizeof(p->err), "%s", transport_error());
	free(buf);
	free(want);
	return NULL;
}

#endif
