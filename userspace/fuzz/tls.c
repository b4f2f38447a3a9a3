// SPDX-License-Identifier: GPL-2.0
/*
 * The TLS handshake as a peer drives it (auth/tls.c on GnuTLS, the record
 * cursor in front of it), in memory: data[0] picks the side we play, 0 a
 * server reading what a client sent, 1 a client reading a server; the rest
 * is the peer's bytes, and what we send is dropped.  A finished handshake
 * goes on to read records.  data[0] == 2 feeds the key file parser.
 * Seeds: the handshakes of real migrations as each side read them
 * (VMDIRTY_RECORD) and gen.c's in-memory one.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "auth/psk.h"
#include "auth/tls.h"
#include "fuzz.h"

struct mem {
	const uint8_t *p;
	size_t n;
};

static ssize_t mem_pull(void *ctx, void *buf, size_t len)
{
	struct mem *m = ctx;
	size_t k = len < m->n ? len : m->n;

	memcpy(buf, m->p, k);
	m->p += k;
	m->n -= k;
	return k;	/* 0 at the end: the peer closed */
}

static ssize_t mem_push(void *ctx, const void *buf, size_t len)
{
	return len;
}

/* The harness's key, fixed (gen.c makes its seeds with the same). */
const struct auth_creds *fuzz_tls_creds(void);

const struct auth_creds *fuzz_tls_creds(void)
{
	static struct auth_creds *c;
	struct auth_key k;
	char why[128];

	if (!c) {
		for (int i = 0; i < AUTH_KEY_BYTES; i++)
			k.key[i] = i + 1;
		auth_key_set_id(&k);
		if (auth_creds_new(&k, &c, why, sizeof(why)))
			abort();
	}
	return c;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct mem m = { data + 1, size ? size - 1 : 0 };
	struct auth_io io = { mem_push, mem_pull, &m };
	struct auth_session *s;
	uint8_t buf[4096];
	bool ww;
	int r, steps = 0;

	if (!size || data[0] > 2)
		return 0;
	if (data[0] == 2) {
		struct auth_key k;

		auth_key_parse((const char *)data + 1, size - 1, &k, (char *)buf, sizeof(buf));
		return 0;
	}
	if (auth_session_new(fuzz_tls_creds(), data[0] ? AUTH_CLIENT : AUTH_SERVER, &io, &s))
		return 0;
	do
		r = auth_handshake(s, &ww);
	while (r == -EAGAIN && ++steps < 64);
	if (!r)
		while (auth_recv(s, buf, sizeof(buf)) > 0)
			;
	auth_session_free(s);
	return 0;
}
