/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Helpers for the wire unit tests: a deterministic RNG, guest-like page
 * content, a handshake between two streams, and a second, independent
 * implementation of the header layout of Documentation/protocol.rst so
 * that tests can forge messages whose checksums are right but whose
 * contents are not.
 */
#ifndef VMDIRTY_TESTS_WIRE_UTIL_H
#define VMDIRTY_TESTS_WIRE_UTIL_H

#include <endian.h>
#include <stdint.h>
#include <string.h>
#include <xxhash.h>

#include "wire/proto.h"

static inline uint64_t rnd_next(uint64_t *s)
{
	/* xorshift64* */
	*s ^= *s >> 12;
	*s ^= *s << 25;
	*s ^= *s >> 27;
	return *s * 0x2545F4914F6CDD1Dull;
}

static inline void rnd_fill(void *buf, size_t len, uint64_t *s)
{
	uint8_t *p = buf;

	while (len >= 8) {
		uint64_t v = rnd_next(s);

		memcpy(p, &v, 8);
		p += 8;
		len -= 8;
	}
	while (len--)
		*p++ = rnd_next(s);
}

enum content { C_ZERO, C_TEXT, C_RANDOM, C_MIXED };

/* Page i of a content kind: MIXED cycles zero, text, text, random. */
static inline void fill_page(uint8_t *p, size_t ps, enum content c, uint64_t i, uint64_t *s)
{
	static const char *const words[] = { "kernel ", "page ", "dirty ", "ring ", "vcpu ",
					     "migrate ", "round ", "0x1f2e ", "struct ", "\n" };

	if (c == C_MIXED)
		c = (enum content[]){ C_ZERO, C_TEXT, C_TEXT, C_RANDOM }[i % 4];
	switch (c) {
	case C_ZERO:
		memset(p, 0, ps);
		break;
	case C_TEXT:
		for (size_t o = 0; o < ps;) {
			const char *w = words[rnd_next(s) % 10];
			size_t l = strlen(w);

			if (l > ps - o)
				l = ps - o;
			memcpy(p + o, w, l);
			o += l;
		}
		break;
	default:
		rnd_fill(p, ps, s);
		break;
	}
}

/* Header field offsets (protocol.rst, "Header"). */
#define H_MAGIC		0
#define H_VERSION	4
#define H_TYPE		6
#define H_FLAGS		7
#define H_LEN		8
#define H_CSUM_LEN	12
#define H_SEQ		16
#define H_HCSUM		20
#define H_PCSUM		24

static inline void put16(uint8_t *p, uint16_t v) { v = htole16(v); memcpy(p, &v, 2); }
static inline void put32(uint8_t *p, uint32_t v) { v = htole32(v); memcpy(p, &v, 4); }
static inline void put64(uint8_t *p, uint64_t v) { v = htole64(v); memcpy(p, &v, 8); }
static inline uint32_t get32(const uint8_t *p) { uint32_t v; memcpy(&v, p, 4); return le32toh(v); }
static inline uint16_t get16(const uint8_t *p) { uint16_t v; memcpy(&v, p, 2); return le16toh(v); }
static inline uint64_t get64(const uint8_t *p) { uint64_t v; memcpy(&v, p, 8); return le64toh(v); }

/* Recompute the header checksum only. */
static inline void fix_hcsum(uint8_t *msg)
{
	put32(msg + H_HCSUM, 0);
	put32(msg + H_HCSUM, (uint32_t)XXH3_64bits(msg, WIRE_HDR_SIZE));
}

/* Declare len payload bytes, all covered, with correct checksums. */
static inline void reseal(uint8_t *msg, uint32_t len)
{
	put32(msg + H_LEN, len);
	put32(msg + H_CSUM_LEN, len);
	put64(msg + H_PCSUM, XXH3_64bits(msg + WIRE_HDR_SIZE, len));
	fix_hcsum(msg);
}

/* len bytes of payload, of which the first csum_len under pcsum (PAGES). */
static inline void reseal_tail(uint8_t *msg, uint32_t len, uint32_t csum_len)
{
	put32(msg + H_LEN, len);
	put32(msg + H_CSUM_LEN, csum_len);
	put64(msg + H_PCSUM, XXH3_64bits(msg + WIRE_HDR_SIZE, csum_len));
	fix_hcsum(msg);
}

static inline uint32_t msg_len(const uint8_t *msg)
{
	return get32(msg + H_LEN);
}

static inline int recv_msg(struct wire_stream *s, const uint8_t *msg, struct wire_hdr *h)
{
	int ret = wire_hdr_parse(msg, h);

	return ret ? ret : wire_recv_check(s, h, msg + WIRE_HDR_SIZE);
}

static inline void make_hello(struct wire_hello *h)
{
	memset(h, 0, sizeof(*h));
	h->ver_min = WIRE_VERSION_MIN;
	h->ver_max = WIRE_VERSION_MAX;
	h->page_size = 4096;
	h->session_id = 0x5e5510aabbccddeeull;
	h->nr_channels = 3;
	h->channel_idx = 1;
	h->nr_vcpus = 2;
	h->features = WIRE_FEAT_ALL;
	h->codecs = WIRE_CODECS_ALL;
	h->tsc_khz = 2994374;
	h->xsave_size = 4096;
	strcpy(h->cpu_vendor, "AuthenticAMD");
	h->nr_regions = 2;
	h->regions[0] = (struct wire_region){ 0, 16u << 20 };
	h->regions[1] = (struct wire_region){ 1ull << 32, 8u << 20 };
}

/* A full handshake over buf; returns 0 or the first failing step's error. */
static inline int handshake(struct wire_stream *src, struct wire_stream *dst,
			    const struct wire_hello *src_hello, const struct wire_hello *dst_hello,
			    uint8_t *buf)
{
	struct wire_hello got;
	struct wire_hello_ack ack, got_ack;
	struct wire_error err;
	struct wire_hdr h;
	ssize_t len;
	int ret;

	wire_stream_init(src, WIRE_ROLE_SOURCE, src_hello->page_size);
	wire_stream_init(dst, WIRE_ROLE_DEST, dst_hello->page_size);
	len = wire_enc_hello(src, buf, WIRE_MAX_MSG, src_hello);
	if (len < 0)
		return len;
	ret = recv_msg(dst, buf, &h);
	ret = ret ? ret : wire_dec_hello(&h, buf + WIRE_HDR_SIZE, &got);
	ret = ret ? ret : wire_negotiate(dst_hello, &got, &ack, &err);
	if (ret)
		return ret;
	len = wire_enc_hello_ack(dst, buf, WIRE_MAX_MSG, &ack);
	if (len < 0)
		return len;
	wire_stream_establish(dst, &ack);
	ret = recv_msg(src, buf, &h);
	ret = ret ? ret : wire_dec_hello_ack(&h, buf + WIRE_HDR_SIZE, &got_ack);
	ret = ret ? ret : wire_check_ack(src_hello, &got_ack, &err);
	if (ret)
		return ret;
	wire_stream_establish(src, &got_ack);
	return 0;
}

#endif
