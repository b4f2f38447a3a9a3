// SPDX-License-Identifier: GPL-2.0
/*
 * The RAM hash of COMPLETE (protocol.rst, "COMPLETE"): chunked so that
 * several threads can share the work at the pause, where it is downtime.
 */
#include <endian.h>
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <xxhash.h>
#if defined(__x86_64__)
#include <xxh_x86dispatch.h>
#endif

#include "wire/proto.h"

struct hash_job {
	const uint8_t *const *ptr;
	const size_t *len;
	uint64_t *out;
	size_t from, to;
};

static void *hash_chunks(void *arg)
{
	struct hash_job *j = arg;

	for (size_t i = j->from; i < j->to; i++)
		j->out[i] = htole64(XXH3_64bits(j->ptr[i], j->len[i]));
	return NULL;
}

int wire_ram_hash(const uint8_t *mem, const struct wire_region *rg, unsigned int nr,
		  unsigned int nthreads, uint64_t *hash)
{
	struct hash_job jobs[16];
	pthread_t tids[16];
	const uint8_t **ptr = NULL;
	size_t *len = NULL;
	uint64_t *out = NULL;
	size_t n = 0, k = 0;
	unsigned int started = 0;
	int ret = 0;

	for (unsigned int i = 0; i < nr; i++)
		n += (rg[i].size + WIRE_HASH_CHUNK - 1) / WIRE_HASH_CHUNK;
	ptr = calloc(n + 1, sizeof(*ptr));
	len = calloc(n + 1, sizeof(*len));
	out = calloc(n + 1, sizeof(*out));
	if (!ptr || !len || !out) {
		ret = -ENOMEM;
		goto out;
	}
	for (unsigned int i = 0; i < nr; i++)
		for (uint64_t off = 0; off < rg[i].size; off += WIRE_HASH_CHUNK, k++) {
			ptr[k] = mem + rg[i].gpa + off;
			len[k] = rg[i].size - off < WIRE_HASH_CHUNK ? rg[i].size - off : WIRE_HASH_CHUNK;
		}
	if (nthreads < 1)
		nthreads = 1;
	if (nthreads > 16)
		nthreads = 16;
	for (unsigned int t = 0; t < nthreads; t++) {
		jobs[t] = (struct hash_job){ ptr, len, out, n * t / nthreads, n * (t + 1) / nthreads };
		if (t == 0)
			continue;
		ret = -pthread_create(&tids[t], NULL, hash_chunks, &jobs[t]);
		if (ret)
			break;
		started++;
	}
	if (!ret)
		hash_chunks(&jobs[0]);
	for (unsigned int t = 1; t <= started; t++)
		pthread_join(tids[t], NULL);
	if (!ret)
		*hash = XXH3_64bits(out, n * sizeof(*out));
out:
	free(ptr);
	free(len);
	free(out);
	return ret;
}
