// SPDX-License-Identifier: GPL-2.0
/*
 * The wire protocol: every message type round trip, the handshake and its
 * rejections, and malformed input of every kind (truncated, extended,
 * corrupted at every byte, forged with valid checksums).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

/* The 6.1 harness and its fixture macros define functions without prototypes. */
#pragma GCC diagnostic ignored "-Wmissing-prototypes"
#include "kselftest_harness.h"

#include "wire/codec.h"
#include "wire/digest.h"
#include "wire/proto.h"
#include "vmm/vmm.h"
#include "wire_util.h"

/* Offsets in the HELLO body (protocol.rst). */
#define HELLO_PAGE_SIZE		4
#define HELLO_SESSION		8
#define HELLO_NR_CHANNELS	16
#define HELLO_CHANNEL_IDX	18
#define HELLO_NR_VCPUS		20
#define HELLO_CODECS		28
#define HELLO_XSAVE		40
#define HELLO_VENDOR		44
#define HELLO_NR_REGIONS	56
#define HELLO_REGIONS		60

static uint8_t *alloc_msg(void)
{
	return calloc(1, WIRE_MAX_MSG + 64);
}

static void fill_vcpu(struct vcpu_state *st, uint64_t *seed)
{
	memset(st, 0, sizeof(*st));
	rnd_fill(&st->regs, sizeof(st->regs), seed);
	st->sregs.cs.base = rnd_next(seed);
	st->sregs.cs.selector = 0x10;
	st->sregs.cs.l = 1;
	st->sregs.cr0 = 0x80050033;
	st->sregs.efer = 0xd01;
	st->xcrs.nr_xcrs = 1;
	st->xcrs.xcrs[0].value = 7;
	st->mp_state.mp_state = KVM_MP_STATE_RUNNABLE;
	st->nr_msrs = 1;
	st->msrs[0].index = 0x10;
	st->msrs[0].data = rnd_next(seed);
	st->xsave_size = 4096;
	st->xsave = calloc(1, 4096);
	rnd_fill(st->xsave, 4096, seed);
}

static void fill_vm(struct vm_state *st)
{
	memset(st, 0, sizeof(*st));
	st->clock.clock = 123456789;
	st->clock.flags = KVM_CLOCK_TSC_STABLE;
	st->pic[0].chip_id = KVM_IRQCHIP_PIC_MASTER;
	st->pic[1].chip_id = KVM_IRQCHIP_PIC_SLAVE;
	st->ioapic.chip_id = KVM_IRQCHIP_IOAPIC;
	st->pic[0].chip.pic.imr = 0xfb;
	st->ioapic.chip.ioapic.base_address = 0xfec00000;
	st->tsc_khz = 2994374;
	st->nr_vcpus = 2;
	st->mem_size = 24 << 20;
}

/*
 * Encode one message of type into buf the way a real session would, and
 * leave in *rx the state of the stream that receives it.
 */
static ssize_t build(uint8_t type, uint8_t *buf, struct wire_stream *rx)
{
	struct wire_stream src, dst, *tx;
	struct wire_hello hello;
	uint8_t *tmp = alloc_msg();
	ssize_t len = -1;

	make_hello(&hello);
	if (type == WIRE_HELLO || type == WIRE_HELLO_ACK || type == WIRE_ERROR ||
	    type == WIRE_QUERY || type == WIRE_OUTCOME) {
		wire_stream_init(&src, WIRE_ROLE_SOURCE, 4096);
		wire_stream_init(&dst, WIRE_ROLE_DEST, 4096);
	} else if (handshake(&src, &dst, &hello, &hello, tmp)) {
		goto out;
	}
	tx = type == WIRE_HELLO_ACK || type == WIRE_ERROR || type == WIRE_READY ||
	     type == WIRE_STARTED || type == WIRE_OUTCOME || type == WIRE_ROUND_ACK ? &dst : &src;
	*rx = tx == &src ? dst : src;

	switch (type) {
	case WIRE_HELLO:
		len = wire_enc_hello(tx, buf, WIRE_MAX_MSG, &hello);
		break;
	case WIRE_HELLO_ACK: {
		struct wire_hello_ack ack = { WIRE_VERSION_MAX, WIRE_FEAT_RAM_HASH, 7, 3, 1,
					      hello.session_id };

		len = wire_enc_hello_ack(tx, buf, WIRE_MAX_MSG, &ack);
		break;
	}
	case WIRE_ERROR: {
		struct wire_error e;

		wire_error_set(&e, WIRE_ERR_LAYOUT, EINVAL, "layout differs at region %d", 1);
		len = wire_enc_error(tx, buf, WIRE_MAX_MSG, &e);
		break;
	}
	case WIRE_PAGES: {
		struct wire_tx_config cfg = { .page_size = 4096, .codec = WIRE_CODEC_RAW };
		uint64_t gfns[] = { 0, 1, 2, 3 }, seed = 1;
		struct wire_txmsg m;
		struct wire_tx *t;
		uint8_t *mem = calloc(4, 4096);

		fill_page(mem + 4096, 4096, C_TEXT, 1, &seed);
		fill_page(mem + 3 * 4096, 4096, C_RANDOM, 3, &seed);
		if (!wire_txmsg_init(&m) && !wire_tx_create(&cfg, &t)) {
			len = wire_tx_pages(t, tx, &m, mem, 0, gfns, 4);
			if (len > 0)
				memcpy(buf, m.buf, len);
			wire_tx_destroy(t);
			wire_txmsg_release(&m);
		}
		free(mem);
		break;
	}
	case WIRE_ROUND_END:
		len = wire_enc_round_end(tx, buf, WIRE_MAX_MSG, 0);
		break;
	case WIRE_VCPU_STATE: {
		struct vcpu_state st;
		uint64_t seed = 7;

		fill_vcpu(&st, &seed);
		st.idx = 1;
		len = wire_enc_vcpu_state(tx, buf, WIRE_MAX_MSG, &st);
		free(st.xsave);
		break;
	}
	case WIRE_VM_STATE: {
		struct vm_state st;

		fill_vm(&st);
		len = wire_enc_vm_state(tx, buf, WIRE_MAX_MSG, &st);
		break;
	}
	case WIRE_COMPLETE: {
		struct wire_complete c = { 3, WIRE_COMPLETE_HASH, 2, 100, 5000, 0x5eed, 0xabcdef };

		len = wire_enc_complete(tx, buf, WIRE_MAX_MSG, &c);
		break;
	}
	case WIRE_READY: {
		struct wire_ready r = { WIRE_READY_HASH_CHECKED, 0x5eed, 0xabcdef, 1, 2, 3 };

		len = wire_enc_ready(tx, buf, WIRE_MAX_MSG, &r);
		break;
	}
	case WIRE_COMMIT: {
		struct wire_commit c = { hello.session_id };

		len = wire_enc_commit(tx, buf, WIRE_MAX_MSG, &c);
		break;
	}
	case WIRE_STARTED: {
		struct wire_started st = { 12345, 23456 };

		len = wire_enc_started(tx, buf, WIRE_MAX_MSG, &st);
		break;
	}
	case WIRE_QUERY: {
		struct wire_query q = { hello.session_id, WIRE_QUERY_COMMIT };

		len = wire_enc_query(tx, buf, WIRE_MAX_MSG, &q);
		break;
	}
	case WIRE_OUTCOME: {
		struct wire_outcome_msg o = { hello.session_id, WIRE_OUTCOME_DISCARDED };

		len = wire_enc_outcome(tx, buf, WIRE_MAX_MSG, &o);
		break;
	}
	case WIRE_ROUND_ACK: {
		struct wire_round_ack a = { 4, 1000 };

		len = wire_enc_round_ack(tx, buf, WIRE_MAX_MSG, &a);
		break;
	}
	}
out:
	free(tmp);
	return len;
}

/*
 * PAGES as the destination takes it: decoded, then every page of an exact
 * batch checked against its hash (the data is outside pcsum).
 */
static int check_pages(struct wire_stream *rx, const struct wire_hdr *h, const uint8_t *p)
{
	struct wire_batch *b = malloc(sizeof(*b));
	struct wire_rx *dec;
	int ret;

	if (!b || wire_rx_create(4096, &dec)) {
		free(b);
		return -ENOMEM;
	}
	ret = wire_rx_pages(dec, rx, h, p, b);
	for (unsigned int i = 0; !ret && i < b->n; i++)
		if (b->data[i] && b->exact && wire_page_hash(b->data[i], 4096) != b->hash[i])
			ret = -EBADMSG;
	wire_rx_destroy(dec);
	free(b);
	return ret;
}

/* Decode a checked message with the decoder of its type. */
static int decode(struct wire_stream *rx, const struct wire_hdr *h, const uint8_t *p)
{
	static struct wire_hello hello;
	struct wire_hello_ack ack;
	struct wire_error e;
	struct wire_round_end re;
	struct vcpu_state vs;
	struct vm_state ms;
	struct wire_complete c;
	struct wire_ready rd;
	struct wire_commit cm;
	struct wire_started sd;
	struct wire_query q;
	struct wire_outcome_msg o;
	struct wire_round_ack ra;
	int ret;

	switch (h->type) {
	case WIRE_HELLO:
		return wire_dec_hello(h, p, &hello);
	case WIRE_HELLO_ACK:
		return wire_dec_hello_ack(h, p, &ack);
	case WIRE_ERROR:
		return wire_dec_error(h, p, &e);
	case WIRE_PAGES:
		return check_pages(rx, h, p);
	case WIRE_ROUND_END:
		return wire_dec_round_end(rx, h, p, &re);
	case WIRE_VCPU_STATE:
		ret = wire_dec_vcpu_state(h, p, &vs);
		if (!ret)
			free(vs.xsave);
		return ret;
	case WIRE_VM_STATE:
		return wire_dec_vm_state(h, p, &ms);
	case WIRE_COMPLETE:
		return wire_dec_complete(h, p, &c);
	case WIRE_READY:
		return wire_dec_ready(h, p, &rd);
	case WIRE_COMMIT:
		return wire_dec_commit(h, p, &cm);
	case WIRE_STARTED:
		return wire_dec_started(h, p, &sd);
	case WIRE_QUERY:
		return wire_dec_query(h, p, &q);
	case WIRE_OUTCOME:
		return wire_dec_outcome(h, p, &o);
	case WIRE_ROUND_ACK:
		return wire_dec_round_ack(h, p, &ra);
	}
	return -EINVAL;
}

/* Type 9 was version 1's CONFIRM: no message of it exists any more. */
static bool type_exists(uint8_t t)
{
	return t != 9;
}

TEST(every_type_builds_and_decodes)
{
	uint8_t *buf = alloc_msg();

	for (uint8_t t = 1; t <= WIRE_TYPE_MAX; t++) {
		if (!type_exists(t))
			continue;
		struct wire_stream rx;
		struct wire_hdr h;
		ssize_t len = build(t, buf, &rx);

		ASSERT_LT(0, len) TH_LOG("type %u", t);
		ASSERT_EQ(len, WIRE_HDR_SIZE + msg_len(buf));
		ASSERT_EQ(0, recv_msg(&rx, buf, &h));
		ASSERT_EQ(t, h.type);
		ASSERT_EQ(0, decode(&rx, &h, buf + WIRE_HDR_SIZE)) TH_LOG("type %u", t);
	}
	free(buf);
}

/* Any one byte changed anywhere: the header or the payload checksum catches it. */
TEST(corrupted_bytes_rejected)
{
	static const uint8_t flips[] = { 0x01, 0x80, 0xff };
	uint8_t *buf = alloc_msg(), *copy = alloc_msg();

	for (uint8_t t = 1; t <= WIRE_TYPE_MAX; t++) {
		if (!type_exists(t))
			continue;
		struct wire_stream rx;
		ssize_t len = build(t, buf, &rx);

		ASSERT_LT(0, len);
		for (ssize_t pos = 0; pos < len; pos++)
			for (size_t f = 0; f < sizeof(flips); f++) {
				struct wire_stream r = rx;
				struct wire_hdr h;
				int ret;

				memcpy(copy, buf, len);
				copy[pos] ^= flips[f];
				ret = recv_msg(&r, copy, &h);
				/* PAGES data: the page hashes catch it, before it is applied. */
				if (!ret && t == WIRE_PAGES)
					ret = check_pages(&r, &h, copy + WIRE_HDR_SIZE);
				ASSERT_EQ(-EBADMSG, ret)
					TH_LOG("type %u byte %zd ^%#x", t, pos, flips[f]);
			}
	}
	free(buf);
	free(copy);
}

/* Cut at every length, checksums made valid: the typed decoder rejects it. */
TEST(truncated_payload_rejected)
{
	uint8_t *buf = alloc_msg(), *copy = alloc_msg();

	for (uint8_t t = 1; t <= WIRE_TYPE_MAX; t++) {
		if (!type_exists(t))
			continue;
		struct wire_stream rx;
		ssize_t len = build(t, buf, &rx);
		uint32_t plen = len - WIRE_HDR_SIZE;

		ASSERT_LT(0, len);
		for (uint32_t cut = 0; cut < plen; cut++) {
			struct wire_stream r = rx;
			struct wire_hdr h;

			memcpy(copy, buf, len);
			reseal(copy, cut);
			ASSERT_EQ(0, recv_msg(&r, copy, &h));
			ASSERT_EQ(-EBADMSG, decode(&r, &h, copy + WIRE_HDR_SIZE))
				TH_LOG("type %u cut at %u of %u", t, cut, plen);
		}
		/* Trailing bytes are as bad as missing ones. */
		for (uint32_t extra = 1; extra <= 16; extra++) {
			struct wire_stream r = rx;
			struct wire_hdr h;

			memcpy(copy, buf, len);
			memset(copy + len, 0, extra);
			reseal(copy, plen + extra);
			ASSERT_EQ(0, recv_msg(&r, copy, &h));
			ASSERT_EQ(-EBADMSG, decode(&r, &h, copy + WIRE_HDR_SIZE))
				TH_LOG("type %u with %u extra", t, extra);
		}
	}
	free(buf);
	free(copy);
}

TEST(encoder_needs_room)
{
	uint8_t *buf = alloc_msg(), *small = alloc_msg();
	struct wire_stream src;
	struct wire_hello hello;
	ssize_t len;

	make_hello(&hello);
	wire_stream_init(&src, WIRE_ROLE_SOURCE, 4096);
	len = wire_enc_hello(&src, buf, WIRE_MAX_MSG, &hello);
	ASSERT_LT(0, len);
	for (size_t cap = 0; cap < (size_t)len; cap++) {
		wire_stream_init(&src, WIRE_ROLE_SOURCE, 4096);
		ASSERT_EQ(-ENOSPC, wire_enc_hello(&src, small, cap, &hello));
	}
	wire_stream_init(&src, WIRE_ROLE_SOURCE, 4096);
	ASSERT_EQ(len, wire_enc_hello(&src, small, len, &hello));
	ASSERT_EQ(0, memcmp(buf, small, len));
	free(buf);
	free(small);
}

TEST(header_fields_checked)
{
	uint8_t *buf = alloc_msg(), *c = alloc_msg();
	struct wire_stream rx;
	struct wire_hdr h;
	ssize_t len = build(WIRE_ROUND_END, buf, &rx);

	ASSERT_LT(0, len);
	ASSERT_EQ(0, wire_hdr_parse(buf, &h));
	ASSERT_EQ(WIRE_VERSION_MAX, h.version);
	ASSERT_EQ(WIRE_ROUND_END, h.type);
	ASSERT_EQ(0, h.flags);
	ASSERT_EQ(24, h.len);
	ASSERT_EQ(24, h.csum_len);
	ASSERT_EQ(1, h.seq);
	/* The magic spells VMDW in byte order. */
	ASSERT_EQ(0, memcmp(buf, "VMDW", 4));

#define FORGE(stmt, expect) do {				\
		memcpy(c, buf, len);				\
		stmt;						\
		fix_hcsum(c);					\
		ASSERT_EQ(expect, wire_hdr_parse(c, &h));	\
	} while (0)

	FORGE(put32(c + H_MAGIC, 0x57444d57), -EBADMSG);
	FORGE(put16(c + H_VERSION, 0), -EPROTONOSUPPORT);
	FORGE(put16(c + H_VERSION, WIRE_VERSION_MAX + 1), -EPROTONOSUPPORT);
	FORGE(c[H_TYPE] = 0, -EPROTO);
	FORGE(c[H_TYPE] = 9, -EPROTO);				/* version 1's CONFIRM */
	FORGE(c[H_TYPE] = WIRE_TYPE_MAX + 1, -EPROTO);
	FORGE(c[H_TYPE] = 0xff, -EPROTO);
	FORGE(c[H_FLAGS] = 0x02, -EPROTO);
	FORGE(c[H_FLAGS] = 0x80, -EPROTO);
	FORGE(put32(c + H_LEN, WIRE_MAX_PAYLOAD + 1), -EMSGSIZE);
	FORGE(put32(c + H_LEN, UINT32_MAX), -EMSGSIZE);
	FORGE(put32(c + H_CSUM_LEN, 25), -EBADMSG);
	FORGE(put32(c + H_CSUM_LEN, 23), -EBADMSG);
	/* Unchecked tails exist for PAGES only, and PAGES always has one. */
	FORGE((c[H_FLAGS] = WIRE_HF_TAIL_UNCHECKED, put32(c + H_CSUM_LEN, 8)), -EPROTO);
	FORGE(c[H_TYPE] = WIRE_PAGES, -EPROTO);
	FORGE((put32(c + H_LEN, WIRE_MAX_PAYLOAD), put32(c + H_CSUM_LEN, WIRE_MAX_PAYLOAD)), 0);
#undef FORGE
	free(buf);
	free(c);
}

TEST(sequence_role_and_state_enforced)
{
	uint8_t *buf = alloc_msg(), *c = alloc_msg();
	struct wire_stream rx, r;
	struct wire_hello hello;
	struct wire_hdr h;
	ssize_t len = build(WIRE_ROUND_END, buf, &rx);

	ASSERT_LT(0, len);
	/* A skipped or repeated message. */
	memcpy(c, buf, len);
	put32(c + H_SEQ, 2);
	fix_hcsum(c);
	r = rx;
	ASSERT_EQ(-EPROTO, recv_msg(&r, c, &h));
	r = rx;
	ASSERT_EQ(0, recv_msg(&r, buf, &h));
	ASSERT_EQ(-EPROTO, recv_msg(&r, buf, &h));

	/* A destination never receives STARTED, a source never PAGES. */
	len = build(WIRE_STARTED, buf, &rx);
	ASSERT_LT(0, len);
	r = rx;
	r.role = WIRE_ROLE_DEST;
	ASSERT_EQ(-EPROTO, recv_msg(&r, buf, &h));

	/* Session messages before the handshake, HELLO after it. */
	len = build(WIRE_PAGES, buf, &rx);
	ASSERT_LT(0, len);
	wire_stream_init(&r, WIRE_ROLE_DEST, 4096);
	r.rx_seq = rx.rx_seq;
	ASSERT_EQ(-EPROTO, recv_msg(&r, buf, &h));
	len = build(WIRE_HELLO, buf, &rx);
	ASSERT_LT(0, len);
	r = rx;
	r.version = WIRE_VERSION_MAX;
	ASSERT_EQ(-EPROTO, recv_msg(&r, buf, &h));
	/* A QUERY opens a connection of its own: never on an established channel. */
	len = build(WIRE_QUERY, buf, &rx);
	ASSERT_LT(0, len);
	r = rx;
	r.version = WIRE_VERSION_MAX;
	ASSERT_EQ(-EPROTO, recv_msg(&r, buf, &h));
	r = rx;
	ASSERT_EQ(0, recv_msg(&r, buf, &h));
	ASSERT_EQ(WIRE_QUERY_VERSION, h.version);
	/* ... and only once: a second one on the same connection is refused. */
	put32(buf + H_SEQ, 1);
	fix_hcsum(buf);
	ASSERT_EQ(-EPROTO, recv_msg(&r, buf, &h));

	/* After an ERROR, nothing more is accepted or sent. */
	len = build(WIRE_ERROR, buf, &rx);
	ASSERT_LT(0, len);
	r = rx;
	ASSERT_EQ(0, recv_msg(&r, buf, &h));
	ASSERT_TRUE(r.failed);
	make_hello(&hello);
	ASSERT_EQ(-EINVAL, wire_enc_hello(&r, c, WIRE_MAX_MSG, &hello));

	/* Encoders refuse what their role may not send. */
	wire_stream_init(&r, WIRE_ROLE_DEST, 4096);
	ASSERT_EQ(-EINVAL, wire_enc_hello(&r, c, WIRE_MAX_MSG, &hello));
	/* A decoder given another type's header. */
	len = build(WIRE_COMPLETE, buf, &rx);
	ASSERT_EQ(0, recv_msg(&rx, buf, &h));
	ASSERT_EQ(-EINVAL, wire_dec_ready(&h, buf + WIRE_HDR_SIZE, &(struct wire_ready){}));
	free(buf);
	free(c);
}

TEST(hello_round_trip)
{
	uint8_t *buf = alloc_msg();
	struct wire_stream src, dst;
	struct wire_hello in, out;
	struct wire_hdr h;

	make_hello(&in);
	wire_stream_init(&src, WIRE_ROLE_SOURCE, 4096);
	wire_stream_init(&dst, WIRE_ROLE_DEST, 4096);
	ASSERT_EQ(WIRE_HDR_SIZE + HELLO_REGIONS + 2 * 16,
		  wire_enc_hello(&src, buf, WIRE_MAX_MSG, &in));
	ASSERT_EQ(0, recv_msg(&dst, buf, &h));
	ASSERT_EQ(WIRE_HELLO_VERSION, h.version);
	ASSERT_EQ(0, wire_dec_hello(&h, buf + WIRE_HDR_SIZE, &out));
	ASSERT_EQ(in.ver_min, out.ver_min);
	ASSERT_EQ(in.ver_max, out.ver_max);
	ASSERT_EQ(in.page_size, out.page_size);
	ASSERT_EQ(in.session_id, out.session_id);
	ASSERT_EQ(in.nr_channels, out.nr_channels);
	ASSERT_EQ(in.channel_idx, out.channel_idx);
	ASSERT_EQ(in.nr_vcpus, out.nr_vcpus);
	ASSERT_EQ(in.features, out.features);
	ASSERT_EQ(in.codecs, out.codecs);
	ASSERT_EQ(in.tsc_khz, out.tsc_khz);
	ASSERT_EQ(in.xsave_size, out.xsave_size);
	ASSERT_STREQ(in.cpu_vendor, out.cpu_vendor);
	ASSERT_EQ(in.nr_regions, out.nr_regions);
	for (uint32_t i = 0; i < in.nr_regions; i++) {
		ASSERT_EQ(in.regions[i].gpa, out.regions[i].gpa);
		ASSERT_EQ(in.regions[i].size, out.regions[i].size);
	}
	/* Little-endian on the wire, field by field. */
	ASSERT_EQ(4096, get32(buf + WIRE_HDR_SIZE + HELLO_PAGE_SIZE));
	ASSERT_EQ(0, memcmp(buf + WIRE_HDR_SIZE + HELLO_VENDOR, "AuthenticAMD", 12));
	free(buf);
}

TEST(hello_fields_validated)
{
	uint8_t *buf = alloc_msg(), *c = alloc_msg();
	struct wire_stream src, dst;
	struct wire_hello in, out;
	uint8_t *p = c + WIRE_HDR_SIZE;
	struct wire_hdr h;
	ssize_t len;

	make_hello(&in);
	wire_stream_init(&src, WIRE_ROLE_SOURCE, 4096);
	len = wire_enc_hello(&src, buf, WIRE_MAX_MSG, &in);
	ASSERT_LT(0, len);

#define BAD_HELLO(stmt) do {						\
		struct wire_stream r;					\
									\
		memcpy(c, buf, len);					\
		stmt;							\
		reseal(c, len - WIRE_HDR_SIZE);				\
		wire_stream_init(&r, WIRE_ROLE_DEST, 4096);		\
		ASSERT_EQ(0, recv_msg(&r, c, &h));			\
		ASSERT_EQ(-EBADMSG, wire_dec_hello(&h, p, &out));	\
	} while (0)

	BAD_HELLO(put16(p, 0));					/* ver_min 0 */
	BAD_HELLO(put16(p, 1); put16(p + 2, 0));		/* min > max */
	BAD_HELLO(put32(p + HELLO_PAGE_SIZE, 2048));
	BAD_HELLO(put32(p + HELLO_PAGE_SIZE, 4097));
	BAD_HELLO(put32(p + HELLO_PAGE_SIZE, 131072));
	BAD_HELLO(put64(p + HELLO_SESSION, 0));
	BAD_HELLO(put16(p + HELLO_NR_CHANNELS, 0));
	BAD_HELLO(put16(p + HELLO_NR_CHANNELS, WIRE_MAX_CHANNELS + 1));
	BAD_HELLO(put16(p + HELLO_CHANNEL_IDX, 3));
	BAD_HELLO(put32(p + HELLO_NR_VCPUS, 0));
	BAD_HELLO(put32(p + HELLO_NR_VCPUS, WIRE_MAX_VCPUS + 1));
	BAD_HELLO(put32(p + HELLO_CODECS, WIRE_CODEC_BIT(WIRE_CODEC_LZ4)));
	BAD_HELLO(put32(p + HELLO_XSAVE, 100));
	BAD_HELLO(put32(p + HELLO_XSAVE, WIRE_MAX_XSAVE + 4));
	BAD_HELLO(p[HELLO_VENDOR] = 7);
	BAD_HELLO(p[HELLO_VENDOR + 3] = 0);			/* text after the NUL */
	BAD_HELLO(put32(p + HELLO_NR_REGIONS, 0));
	BAD_HELLO(put32(p + HELLO_NR_REGIONS, 3));		/* more than sent */
	BAD_HELLO(put32(p + HELLO_NR_REGIONS, 1));		/* fewer than sent */
	BAD_HELLO(put32(p + HELLO_NR_REGIONS, WIRE_MAX_REGIONS + 1));
	BAD_HELLO(put32(p + HELLO_NR_REGIONS, UINT32_MAX));
	BAD_HELLO(put64(p + HELLO_REGIONS, 100));		/* unaligned gpa */
	BAD_HELLO(put64(p + HELLO_REGIONS + 8, 0));		/* empty region */
	BAD_HELLO(put64(p + HELLO_REGIONS + 8, 4095));		/* unaligned size */
	BAD_HELLO(put64(p + HELLO_REGIONS + 16, 4096));		/* overlaps region 0 */
	BAD_HELLO(put64(p + HELLO_REGIONS + 24, -4096ull));	/* wraps around */
#undef BAD_HELLO

	/* The encoder refuses to send what the decoder would refuse. */
	in.nr_regions = 0;
	ASSERT_EQ(-EINVAL, wire_enc_hello(&src, c, WIRE_MAX_MSG, &in));
	make_hello(&in);
	in.page_size = 8192;
	ASSERT_EQ(-EINVAL, wire_enc_hello(&src, c, WIRE_MAX_MSG, &in));

	/* A peer that also speaks newer versions may append fields. */
	make_hello(&in);
	in.ver_max = WIRE_VERSION_MAX + 1;
	wire_stream_init(&src, WIRE_ROLE_SOURCE, 4096);
	len = wire_enc_hello(&src, c, WIRE_MAX_MSG, &in);
	ASSERT_LT(0, len);
	memset(c + len, 0xaa, 32);
	reseal(c, len - WIRE_HDR_SIZE + 32);
	wire_stream_init(&dst, WIRE_ROLE_DEST, 4096);
	ASSERT_EQ(0, recv_msg(&dst, c, &h));
	ASSERT_EQ(0, wire_dec_hello(&h, p, &out));
	ASSERT_EQ(WIRE_VERSION_MAX + 1, out.ver_max);
	free(buf);
	free(c);
}

TEST(handshake_agrees)
{
	uint8_t *buf = alloc_msg();
	struct wire_stream src, dst;
	struct wire_hello a, b;

	make_hello(&a);
	make_hello(&b);
	ASSERT_EQ(0, handshake(&src, &dst, &a, &b, buf));
	ASSERT_EQ(WIRE_VERSION_MAX, src.version);
	ASSERT_EQ(WIRE_VERSION_MAX, dst.version);
	ASSERT_EQ(WIRE_FEAT_ALL, src.features);
	ASSERT_EQ(WIRE_CODECS_ALL, dst.codecs);
	ASSERT_EQ(1, src.tx_seq);
	ASSERT_EQ(1, src.rx_seq);

	/* Intersections; pages read in place need no RAM hash: the digest covers them. */
	b.codecs = WIRE_CODEC_BIT(WIRE_CODEC_RAW) | WIRE_CODEC_BIT(WIRE_CODEC_LZ4);
	a.codecs = WIRE_CODEC_BIT(WIRE_CODEC_RAW) | WIRE_CODEC_BIT(WIRE_CODEC_ZSTD);
	b.features = WIRE_FEAT_RAW_UNCHECKED;
	ASSERT_EQ(0, handshake(&src, &dst, &a, &b, buf));
	ASSERT_EQ(WIRE_CODEC_BIT(WIRE_CODEC_RAW), src.codecs);
	ASSERT_EQ(WIRE_FEAT_RAW_UNCHECKED, src.features);

	/* Unknown offered bits from a newer peer are ignored, not echoed. */
	make_hello(&a);
	make_hello(&b);
	a.features |= 0x80000000;
	a.codecs |= 0x100;
	ASSERT_EQ(0, handshake(&src, &dst, &a, &b, buf));
	ASSERT_EQ(WIRE_FEAT_ALL, dst.features);
	ASSERT_EQ(WIRE_CODECS_ALL, dst.codecs);
	free(buf);
}

static int negotiate(const struct wire_hello *local, const struct wire_hello *peer,
		     struct wire_error *err)
{
	struct wire_hello_ack ack;

	memset(err, 0, sizeof(*err));
	return wire_negotiate(local, peer, &ack, err);
}

TEST(mismatches_rejected_with_clear_error)
{
	struct wire_hello dst, src;
	struct wire_error err;

	make_hello(&dst);

	make_hello(&src);
	src.ver_min = WIRE_VERSION_MAX + 1;
	src.ver_max = WIRE_VERSION_MAX + 2;
	ASSERT_EQ(-EPROTONOSUPPORT, negotiate(&dst, &src, &err));
	ASSERT_EQ(WIRE_ERR_VERSION, err.code);
	ASSERT_STREQ("protocol version: we speak 2..2, peer offers 3..4", err.text);
	/* Version 1 (no two-phase handover) is not spoken any more. */
	make_hello(&src);
	src.ver_min = src.ver_max = 1;
	ASSERT_EQ(-EPROTONOSUPPORT, negotiate(&dst, &src, &err));
	ASSERT_STREQ("protocol version: we speak 2..2, peer offers 1..1", err.text);

	make_hello(&src);
	src.page_size = 8192;
	ASSERT_EQ(-EINVAL, negotiate(&dst, &src, &err));
	ASSERT_EQ(WIRE_ERR_PAGE_SIZE, err.code);
	ASSERT_STREQ("page size: ours 4096, peer's 8192", err.text);

	make_hello(&src);
	src.regions[1].size += 4096;
	ASSERT_EQ(-EINVAL, negotiate(&dst, &src, &err));
	ASSERT_EQ(WIRE_ERR_LAYOUT, err.code);
	ASSERT_NE(NULL, strstr(err.text, "first difference at region 1"));

	make_hello(&src);
	src.nr_regions = 1;
	ASSERT_EQ(-EINVAL, negotiate(&dst, &src, &err));
	ASSERT_EQ(WIRE_ERR_LAYOUT, err.code);

	make_hello(&src);
	src.nr_vcpus = 4;
	ASSERT_EQ(-EINVAL, negotiate(&dst, &src, &err));
	ASSERT_EQ(WIRE_ERR_VCPUS, err.code);

	make_hello(&src);
	strcpy(src.cpu_vendor, "GenuineIntel");
	ASSERT_EQ(-EINVAL, negotiate(&dst, &src, &err));
	ASSERT_EQ(WIRE_ERR_CPU, err.code);
	ASSERT_STREQ("CPU vendor: ours AuthenticAMD, peer's GenuineIntel", err.text);

	make_hello(&src);
	src.xsave_size = 8192;
	ASSERT_EQ(-EINVAL, negotiate(&dst, &src, &err));
	ASSERT_EQ(WIRE_ERR_CPU, err.code);

	/* Later channels must join the session channel 0 opened. */
	make_hello(&src);
	src.session_id++;
	ASSERT_EQ(-EINVAL, negotiate(&dst, &src, &err));
	ASSERT_EQ(WIRE_ERR_SESSION, err.code);
	make_hello(&src);
	src.nr_channels = 4;
	ASSERT_EQ(-EINVAL, negotiate(&dst, &src, &err));
	ASSERT_EQ(WIRE_ERR_SESSION, err.code);
	/* A destination that does not know the session yet takes any. */
	dst.session_id = 0;
	dst.nr_channels = 0;
	ASSERT_EQ(0, negotiate(&dst, &src, &err));
}

/* The rejection travels: ERROR encodes and decodes with code and text. */
TEST(error_round_trip)
{
	uint8_t *buf = alloc_msg(), *c = alloc_msg();
	struct wire_stream src, dst;
	struct wire_hello a, b, peer;
	struct wire_hello_ack ack;
	struct wire_error err, got;
	struct wire_hdr h;
	ssize_t len;

	make_hello(&a);
	make_hello(&b);
	a.page_size = 8192;
	wire_stream_init(&src, WIRE_ROLE_SOURCE, 8192);
	wire_stream_init(&dst, WIRE_ROLE_DEST, 4096);
	ASSERT_LT(0, wire_enc_hello(&src, buf, WIRE_MAX_MSG, &a));
	ASSERT_EQ(0, recv_msg(&dst, buf, &h));
	ASSERT_EQ(0, wire_dec_hello(&h, buf + WIRE_HDR_SIZE, &peer));
	ASSERT_EQ(-EINVAL, wire_negotiate(&b, &peer, &ack, &err));
	len = wire_enc_error(&dst, buf, WIRE_MAX_MSG, &err);
	ASSERT_LT(0, len);
	ASSERT_TRUE(dst.failed);
	ASSERT_EQ(0, recv_msg(&src, buf, &h));
	ASSERT_EQ(0, wire_dec_error(&h, buf + WIRE_HDR_SIZE, &got));
	ASSERT_EQ(WIRE_ERR_PAGE_SIZE, got.code);
	ASSERT_EQ(EINVAL, got.err);
	ASSERT_STREQ("page size: ours 4096, peer's 8192", got.text);
	ASSERT_STREQ("page-size", wire_err_name(got.code));

#define BAD_ERROR(stmt, expect) do {						\
		memcpy(c, buf, len);						\
		stmt;								\
		reseal(c, msg_len(c));						\
		ASSERT_EQ(0, wire_hdr_parse(c, &h));				\
		ASSERT_EQ(expect, wire_dec_error(&h, c + WIRE_HDR_SIZE, &got));	\
	} while (0)
	BAD_ERROR(put32(c + WIRE_HDR_SIZE, 0), -EBADMSG);		/* code 0 */
	BAD_ERROR(put16(c + WIRE_HDR_SIZE + 10, 1), -EBADMSG);		/* reserved */
	BAD_ERROR(c[WIRE_HDR_SIZE + 14] = 0, -EBADMSG);			/* NUL in text */
	BAD_ERROR(put16(c + WIRE_HDR_SIZE + 8, WIRE_MAX_TEXT + 1), -EBADMSG);
	/* A code from a newer peer is still an error to show. */
	BAD_ERROR(put32(c + WIRE_HDR_SIZE, 99), 0);
	ASSERT_EQ(99, got.code);
	ASSERT_STREQ("unknown", wire_err_name(99));
#undef BAD_ERROR

	/* Overlong text is cut at WIRE_MAX_TEXT, and still decodes. */
	memset(err.text, 0, sizeof(err.text));
	wire_error_set(&err, WIRE_ERR_INTERNAL, -EIO, "%2000s", "x");
	ASSERT_EQ(WIRE_MAX_TEXT, strlen(err.text));
	wire_stream_init(&dst, WIRE_ROLE_DEST, 4096);
	wire_stream_init(&src, WIRE_ROLE_SOURCE, 4096);
	ASSERT_LT(0, wire_enc_error(&dst, buf, WIRE_MAX_MSG, &err));
	ASSERT_EQ(0, recv_msg(&src, buf, &h));
	ASSERT_EQ(0, wire_dec_error(&h, buf + WIRE_HDR_SIZE, &got));
	ASSERT_EQ(EIO, got.err);
	ASSERT_EQ(WIRE_MAX_TEXT, strlen(got.text));
	free(buf);
	free(c);
}

TEST(ack_checked_by_source)
{
	struct wire_hello sent;
	struct wire_hello_ack ack, good;
	struct wire_error err;

	make_hello(&sent);
	good = (struct wire_hello_ack){ WIRE_VERSION_MAX, WIRE_FEAT_ALL, WIRE_CODECS_ALL, 3, 1,
					 sent.session_id };
	ASSERT_EQ(0, wire_check_ack(&sent, &good, &err));

	ack = good;
	ack.version = WIRE_VERSION_MAX + 1;
	ASSERT_EQ(-EPROTONOSUPPORT, wire_check_ack(&sent, &ack, &err));
	ASSERT_EQ(WIRE_ERR_VERSION, err.code);
	ack = good;
	sent.features = WIRE_FEAT_RAM_HASH;
	ASSERT_EQ(-EPROTO, wire_check_ack(&sent, &ack, &err));
	ASSERT_EQ(WIRE_ERR_FEATURES, err.code);
	make_hello(&sent);
	sent.features = WIRE_FEAT_RAM_HASH;
	ack.features = WIRE_FEAT_RAW_UNCHECKED;		/* chosen, not offered */
	ASSERT_EQ(-EPROTO, wire_check_ack(&sent, &ack, &err));
	make_hello(&sent);
	ack = good;
	sent.codecs = WIRE_CODEC_BIT(WIRE_CODEC_RAW);
	ASSERT_EQ(-EPROTO, wire_check_ack(&sent, &ack, &err));
	make_hello(&sent);
	ack.channel_idx = 2;
	ASSERT_EQ(-EPROTO, wire_check_ack(&sent, &ack, &err));
	ASSERT_EQ(WIRE_ERR_SESSION, err.code);
	ack = good;
	ack.session_id ^= 1;
	ASSERT_EQ(-EPROTO, wire_check_ack(&sent, &ack, &err));
}

TEST(ack_fields_validated)
{
	uint8_t *buf = alloc_msg(), *c = alloc_msg();
	struct wire_hello_ack out;
	struct wire_stream rx;
	struct wire_hdr h;
	uint8_t *p = c + WIRE_HDR_SIZE;
	ssize_t len = build(WIRE_HELLO_ACK, buf, &rx);

	ASSERT_LT(0, len);
	ASSERT_EQ(0, recv_msg(&rx, buf, &h));
	ASSERT_EQ(0, wire_dec_hello_ack(&h, buf + WIRE_HDR_SIZE, &out));
	ASSERT_EQ(WIRE_VERSION_MAX, out.version);
	ASSERT_EQ(WIRE_FEAT_RAM_HASH, out.features);
	ASSERT_EQ(7, out.codecs);
	ASSERT_EQ(3, out.nr_channels);
	ASSERT_EQ(1, out.channel_idx);
#define BAD_ACK(stmt) do {							\
		memcpy(c, buf, len);						\
		stmt;								\
		reseal(c, len - WIRE_HDR_SIZE);					\
		ASSERT_EQ(0, wire_hdr_parse(c, &h));				\
		ASSERT_EQ(-EBADMSG, wire_dec_hello_ack(&h, p, &out));		\
	} while (0)
	BAD_ACK(put16(p, 0));
	BAD_ACK(put16(p + 2, 1));
	BAD_ACK(put32(p + 4, 0x100));
	BAD_ACK(put32(p + 8, 0x8));
	BAD_ACK(put32(p + 8, WIRE_CODEC_BIT(WIRE_CODEC_LZ4)));
#undef BAD_ACK
	free(buf);
	free(c);
}

TEST(round_end_accounts)
{
	uint8_t *buf = alloc_msg(), *c = alloc_msg();
	struct wire_stream rx, r;
	struct wire_round_end re;
	struct wire_hdr h;
	ssize_t plen, len;

	/* PAGES then ROUND_END from the same source stream. */
	{
		struct wire_hello hello;
		struct wire_stream s, d;
		struct wire_tx_config cfg = { .page_size = 4096, .codec = WIRE_CODEC_RAW };
		struct wire_txmsg m;
		struct wire_tx *t;
		struct wire_pages pg;
		uint64_t gfns[] = { 5, 9 };
		uint8_t *mem = calloc(16, 4096);

		make_hello(&hello);
		ASSERT_EQ(0, handshake(&s, &d, &hello, &hello, c));
		ASSERT_EQ(0, wire_txmsg_init(&m));
		ASSERT_EQ(0, wire_tx_create(&cfg, &t));
		mem[9 * 4096] = 1;
		plen = wire_tx_pages(t, &s, &m, mem, 0, gfns, 2);
		ASSERT_EQ(WIRE_HDR_SIZE + WIRE_PAGES_META + 16 + WIRE_HASH_SIZE + 4096, plen);
		ASSERT_EQ(-EINVAL, wire_enc_round_end(&s, buf, WIRE_MAX_MSG, 1));
		len = wire_enc_round_end(&s, buf, WIRE_MAX_MSG, 0);
		ASSERT_EQ(WIRE_HDR_SIZE + 24, len);
		ASSERT_EQ(1, s.tx_round);

		ASSERT_EQ(0, recv_msg(&d, m.buf, &h));
		ASSERT_EQ(0, wire_dec_pages(&d, &h, m.buf + WIRE_HDR_SIZE, &pg));
		rx = d;
		r = rx;
		ASSERT_EQ(0, recv_msg(&r, buf, &h));
		ASSERT_EQ(0, wire_dec_round_end(&r, &h, buf + WIRE_HDR_SIZE, &re));
		ASSERT_EQ(0, re.round);
		ASSERT_EQ(2, re.pages);
		ASSERT_EQ(plen, re.bytes);
		ASSERT_EQ(1, r.rx_round);
		ASSERT_EQ(0, r.rx_round_pages);
		ASSERT_EQ(2, r.rx_pages);
		/* The next round's pages must say round 1. */
		ASSERT_EQ(-EINVAL, wire_tx_pages(t, &s, &m, mem, 0, gfns, 2));
		ASSERT_LT(0, wire_tx_pages(t, &s, &m, mem, 1, gfns, 2));
		ASSERT_EQ(0, recv_msg(&r, m.buf, &h));
		ASSERT_EQ(0, wire_dec_pages(&r, &h, m.buf + WIRE_HDR_SIZE, &pg));
		ASSERT_EQ(1, pg.round);
		wire_tx_destroy(t);
		wire_txmsg_release(&m);
		free(mem);
	}
#define BAD_RE(stmt, expect) do {						\
		memcpy(c, buf, len);						\
		stmt;								\
		reseal(c, len - WIRE_HDR_SIZE);					\
		r = rx;								\
		ASSERT_EQ(0, recv_msg(&r, c, &h));				\
		ASSERT_EQ(expect, wire_dec_round_end(&r, &h, c + WIRE_HDR_SIZE, &re)); \
		ASSERT_EQ(0, r.rx_round);					\
	} while (0)
	BAD_RE(put32(c + WIRE_HDR_SIZE, 1), -EPROTO);		/* wrong round */
	BAD_RE(put32(c + WIRE_HDR_SIZE + 4, 1), -EBADMSG);	/* reserved */
	BAD_RE(put64(c + WIRE_HDR_SIZE + 8, 3), -EPROTO);	/* a page lost */
	BAD_RE(put64(c + WIRE_HDR_SIZE + 8, 1), -EPROTO);	/* a page too many */
	BAD_RE(put64(c + WIRE_HDR_SIZE + 16, 1), -EPROTO);	/* bytes */
#undef BAD_RE
	free(buf);
	free(c);
}

TEST(complete_round_trip)
{
	uint8_t *buf = alloc_msg(), *c = alloc_msg();
	struct wire_stream src, dst;
	struct wire_hello hello;
	struct wire_complete in = { 7, WIRE_COMPLETE_HASH, 2, 123456, 987654321,
				    0x99aabbccddeeff00, 0x1122334455667788 }, out;
	struct wire_hdr h;
	ssize_t len;

	make_hello(&hello);
	ASSERT_EQ(0, handshake(&src, &dst, &hello, &hello, buf));
	len = wire_enc_complete(&src, buf, WIRE_MAX_MSG, &in);
	ASSERT_EQ(WIRE_HDR_SIZE + 48, len);
	memcpy(c, buf, len);
	ASSERT_EQ(0, recv_msg(&dst, buf, &h));
	ASSERT_EQ(0, wire_dec_complete(&h, buf + WIRE_HDR_SIZE, &out));
	ASSERT_EQ(in.last_round, out.last_round);
	ASSERT_EQ(in.flags, out.flags);
	ASSERT_EQ(in.nr_vcpus, out.nr_vcpus);
	ASSERT_EQ(in.total_pages, out.total_pages);
	ASSERT_EQ(in.total_bytes, out.total_bytes);
	ASSERT_EQ(in.digest, out.digest);
	ASSERT_EQ(in.ram_hash, out.ram_hash);
	ASSERT_EQ(0x99aabbccddeeff00ull, get64(c + WIRE_HDR_SIZE + 32));
#define BAD_C(off, val) do {							\
		memcpy(buf, c, len);						\
		put32(buf + WIRE_HDR_SIZE + (off), val);			\
		reseal(buf, len - WIRE_HDR_SIZE);				\
		ASSERT_EQ(0, wire_hdr_parse(buf, &h));				\
		ASSERT_EQ(-EBADMSG, wire_dec_complete(&h, buf + WIRE_HDR_SIZE, &out)); \
	} while (0)
	BAD_C(4, 3);		/* unknown flag */
	BAD_C(4, 0);		/* hash without the flag */
	BAD_C(8, 0);		/* no vCPUs */
	BAD_C(12, 1);		/* reserved */
#undef BAD_C
	/* The encoder does not send a hash the session did not negotiate. */
	dst.features = 0;
	src.features = 0;
	ASSERT_EQ(-EINVAL, wire_enc_complete(&src, buf, WIRE_MAX_MSG, &in));
	in.flags = 0;
	ASSERT_EQ(-EINVAL, wire_enc_complete(&src, buf, WIRE_MAX_MSG, &in));
	free(buf);
	free(c);
}

/*
 * The handover's messages: each round trip keeps every field, and each
 * rejects every unknown flag, reserved bit and impossible value (catches a
 * decoder that ignores one, and an encoder that sends what it would refuse).
 */
TEST(handover_messages_validated)
{
	uint8_t *buf = alloc_msg(), *c = alloc_msg();
	struct wire_stream rx, r;
	struct wire_hdr h;
	ssize_t len;

#define ROUND_TRIP(type, st, dec) do {						\
		len = build(type, buf, &rx);					\
		ASSERT_LT(0, len);						\
		r = rx;								\
		ASSERT_EQ(0, recv_msg(&r, buf, &h));				\
		ASSERT_EQ(0, dec(&h, buf + WIRE_HDR_SIZE, &st));		\
	} while (0)
#define BAD(dec, st, stmt) do {							\
		memcpy(c, buf, len);						\
		stmt;								\
		reseal(c, len - WIRE_HDR_SIZE);					\
		ASSERT_EQ(0, wire_hdr_parse(c, &h));				\
		ASSERT_EQ(-EBADMSG, dec(&h, c + WIRE_HDR_SIZE, &st));		\
	} while (0)
	{
		struct wire_ready rd;

		ROUND_TRIP(WIRE_READY, rd, wire_dec_ready);
		ASSERT_EQ(WIRE_READY_HASH_CHECKED, rd.flags);
		ASSERT_EQ(0x5eed, rd.digest);
		ASSERT_EQ(0xabcdef, rd.ram_hash);
		ASSERT_EQ(1, rd.wait_ns);
		ASSERT_EQ(2, rd.check_ns);
		ASSERT_EQ(3, rd.restore_ns);
		ASSERT_EQ(WIRE_HDR_SIZE + 48, len);
		BAD(wire_dec_ready, rd, put32(c + WIRE_HDR_SIZE, 2));	/* unknown flag */
		BAD(wire_dec_ready, rd, put32(c + WIRE_HDR_SIZE, 0));	/* hash, no flag */
		BAD(wire_dec_ready, rd, put32(c + WIRE_HDR_SIZE + 4, 1));	/* reserved */
		rd.flags = 0;
		ASSERT_EQ(-EINVAL, wire_enc_ready(&rx, c, WIRE_MAX_MSG, &rd));
	}
	{
		struct wire_commit cm;

		ROUND_TRIP(WIRE_COMMIT, cm, wire_dec_commit);
		ASSERT_EQ(0x5e5510aabbccddeeull, cm.session_id);
		BAD(wire_dec_commit, cm, put64(c + WIRE_HDR_SIZE, 0));	/* no session */
		BAD(wire_dec_commit, cm, put64(c + WIRE_HDR_SIZE + 8, 1));	/* reserved */
		cm.session_id = 0;
		ASSERT_EQ(-EINVAL, wire_enc_commit(&rx, c, WIRE_MAX_MSG, &cm));
	}
	{
		struct wire_started sd;

		ROUND_TRIP(WIRE_STARTED, sd, wire_dec_started);
		ASSERT_EQ(12345, sd.resume_ns);
		ASSERT_EQ(23456, sd.hold_ns);
		/* Held for less than the resume it says it waited for. */
		BAD(wire_dec_started, sd, put64(c + WIRE_HDR_SIZE + 8, 12344));
	}
	{
		struct wire_round_ack a;

		ROUND_TRIP(WIRE_ROUND_ACK, a, wire_dec_round_ack);
		ASSERT_EQ(4, a.round);
		ASSERT_EQ(1000, a.pages);
		BAD(wire_dec_round_ack, a, put32(c + WIRE_HDR_SIZE + 4, 1));	/* reserved */
	}
	{
		struct wire_query q;

		ROUND_TRIP(WIRE_QUERY, q, wire_dec_query);
		ASSERT_EQ(0x5e5510aabbccddeeull, q.session_id);
		ASSERT_EQ(WIRE_QUERY_COMMIT, q.flags);
		BAD(wire_dec_query, q, put64(c + WIRE_HDR_SIZE, 0));
		BAD(wire_dec_query, q, put32(c + WIRE_HDR_SIZE + 8, 2));	/* unknown flag */
		BAD(wire_dec_query, q, put32(c + WIRE_HDR_SIZE + 12, 1));	/* reserved */
		q.flags = 4;
		wire_stream_init(&r, WIRE_ROLE_SOURCE, 4096);
		ASSERT_EQ(-EINVAL, wire_enc_query(&r, c, WIRE_MAX_MSG, &q));
	}
	{
		struct wire_outcome_msg o;

		ROUND_TRIP(WIRE_OUTCOME, o, wire_dec_outcome);
		ASSERT_EQ(WIRE_OUTCOME_DISCARDED, o.outcome);
		ASSERT_STREQ("discarded", wire_outcome_name(o.outcome));
		BAD(wire_dec_outcome, o, put64(c + WIRE_HDR_SIZE, 0));
		BAD(wire_dec_outcome, o, put32(c + WIRE_HDR_SIZE + 8, 0));
		BAD(wire_dec_outcome, o, put32(c + WIRE_HDR_SIZE + 8, WIRE_OUTCOME_MAX + 1));
		BAD(wire_dec_outcome, o, put32(c + WIRE_HDR_SIZE + 12, 1));	/* reserved */
		o.outcome = 0;
		wire_stream_init(&r, WIRE_ROLE_DEST, 4096);
		ASSERT_EQ(-EINVAL, wire_enc_outcome(&r, c, WIRE_MAX_MSG, &o));
	}
#undef BAD
#undef ROUND_TRIP
	free(buf);
	free(c);
}

TEST(pages_fields_validated)
{
	uint8_t *buf = alloc_msg(), *c = alloc_msg();
	struct wire_stream rx, r;
	struct wire_pages pg;
	struct wire_hdr h;
	uint8_t *p = c + WIRE_HDR_SIZE;
	ssize_t len = build(WIRE_PAGES, buf, &rx);
	uint64_t gfn;
	uint8_t kind;

	/* 4 pages: 0 zero, 1 text, 2 zero, 3 random; raw, copied: exact. */
	ASSERT_EQ(WIRE_HDR_SIZE + WIRE_PAGES_META + 4 * 8 + 2 * WIRE_HASH_SIZE + 2 * 4096, len);
	r = rx;
	ASSERT_EQ(0, recv_msg(&r, buf, &h));
	ASSERT_EQ(0, wire_dec_pages(&r, &h, buf + WIRE_HDR_SIZE, &pg));
	ASSERT_EQ(4, pg.nr_pages);
	ASSERT_EQ(2, pg.nr_data);
	ASSERT_EQ(WIRE_CODEC_RAW, pg.codec);
	ASSERT_EQ(WIRE_PF_EXACT, pg.cflags);
	ASSERT_EQ(wire_page_hash(pg.data + 4096, 4096), wire_pages_hash(&pg, 1));
	ASSERT_EQ(WIRE_HF_TAIL_UNCHECKED, h.flags);
	ASSERT_EQ(WIRE_PAGES_META + 4 * 8 + 2 * WIRE_HASH_SIZE, h.csum_len);
	wire_pages_desc(&pg, 0, &gfn, &kind);
	ASSERT_EQ(0, gfn);
	ASSERT_EQ(WIRE_PAGE_ZERO, kind);
	wire_pages_desc(&pg, 3, &gfn, &kind);
	ASSERT_EQ(3, gfn);
	ASSERT_EQ(WIRE_PAGE_DATA, kind);

#define BAD_PAGES(stmt, expect) do {						\
		memcpy(c, buf, len);						\
		stmt;								\
		reseal_tail(c, msg_len(c), get32(buf + H_CSUM_LEN));		\
		r = rx;								\
		ASSERT_EQ(0, recv_msg(&r, c, &h));				\
		ASSERT_EQ(expect, wire_dec_pages(&r, &h, p, &pg));		\
		if (expect)							\
			ASSERT_EQ(0, r.rx_round_pages);				\
	} while (0)
	BAD_PAGES(put32(p, 1), -EPROTO);			/* not the open round */
	BAD_PAGES(p[4] = WIRE_NR_CODECS, -EBADMSG);		/* unknown codec */
	BAD_PAGES(p[5] |= 0x04, -EBADMSG);			/* unknown codec flag */
	BAD_PAGES(p[5] |= WIRE_PF_RESET, -EBADMSG);		/* reset on raw */
	BAD_PAGES(put16(p + 6, 1), -EBADMSG);			/* reserved */
	BAD_PAGES(put16(p + 8, 0), -EBADMSG);			/* no pages */
	BAD_PAGES(put16(p + 8, 3), -EBADMSG);			/* fewer than sent */
	BAD_PAGES(put16(p + 8, WIRE_MAX_BATCH + 1), -EBADMSG);
	BAD_PAGES(put16(p + 8, UINT16_MAX), -EBADMSG);
	BAD_PAGES(put16(p + 10, 1), -EBADMSG);			/* nr_data vs kinds */
	BAD_PAGES(put16(p + 10, 5), -EBADMSG);			/* nr_data > nr_pages */
	BAD_PAGES(put32(p + 12, 4096), -EBADMSG);		/* raw size wrong */
	BAD_PAGES(put32(p + 12, UINT32_MAX), -EBADMSG);
	/* The checksum must cover exactly meta, descriptors and hashes. */
	for (int d = -8; d <= 8; d += 16) {
		memcpy(c, buf, len);
		reseal_tail(c, msg_len(c), get32(buf + H_CSUM_LEN) + d);
		r = rx;
		ASSERT_EQ(0, recv_msg(&r, c, &h));
		ASSERT_EQ(-EBADMSG, wire_dec_pages(&r, &h, p, &pg));
	}
	/* Not exact: only where pages read in place were negotiated. */
	BAD_PAGES(p[5] = 0, 0);
	rx.features = 0;
	BAD_PAGES(p[5] = 0, -EPROTO);
	rx.features = WIRE_FEAT_ALL;
	BAD_PAGES(p[16 + 7] = 0, -EBADMSG);			/* kind 0 */
	BAD_PAGES(p[16 + 7] = 3, -EBADMSG);			/* kind 3 */
	BAD_PAGES(p[16 + 7] = 0xff, -EBADMSG);
	BAD_PAGES(p[16 + 7] = WIRE_PAGE_DATA, -EBADMSG);	/* kinds vs nr_data */
	/* Compressed must be smaller than raw, and a negotiated codec. */
	BAD_PAGES(p[4] = WIRE_CODEC_LZ4, -EBADMSG);
	BAD_PAGES((p[4] = WIRE_CODEC_ZSTD, put32(p + 12, 8191), put32(c + H_LEN, msg_len(c) - 1)),
		  0);
	rx.codecs = WIRE_CODEC_BIT(WIRE_CODEC_RAW);
	BAD_PAGES((p[4] = WIRE_CODEC_ZSTD, put32(p + 12, 8191), put32(c + H_LEN, msg_len(c) - 1)),
		  -EPROTO);
#undef BAD_PAGES
	free(buf);
	free(c);
}

TEST(ram_hash)
{
	struct wire_region rg[] = { { 0, 3 << 20 }, { 8 << 20, (2 << 20) + 4096 } };
	size_t size = (10 << 20) + 4096;
	uint8_t *mem = calloc(1, size);
	uint64_t h1, h2, h3, seed = 3;

	rnd_fill(mem, size, &seed);
	ASSERT_EQ(0, wire_ram_hash(mem, rg, 2, 1, &h1));
	ASSERT_EQ(0, wire_ram_hash(mem, rg, 2, 3, &h2));
	ASSERT_EQ(h1, h2);
	/* Outside the regions does not count, inside does, to the last byte. */
	mem[5 << 20] ^= 1;
	ASSERT_EQ(0, wire_ram_hash(mem, rg, 2, 2, &h2));
	ASSERT_EQ(h1, h2);
	mem[size - 1] ^= 1;
	ASSERT_EQ(0, wire_ram_hash(mem, rg, 2, 16, &h3));
	ASSERT_NE(h1, h3);
	free(mem);
}

TEST_HARNESS_MAIN
