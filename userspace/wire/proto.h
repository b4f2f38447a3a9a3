/* SPDX-License-Identifier: GPL-2.0 */
/*
 * vmdirty's migration wire protocol: message framing, the control messages,
 * the PAGES framing and the per-channel protocol state.  The format is
 * specified in Documentation/protocol.rst; everything on the wire is
 * little-endian and written field by field (never a host struct).
 *
 * Return values: encoders return the message length (header included) or
 * -EINVAL (bad argument) / -ENOSPC (buffer too small).  Decoders return 0 or
 *   -EBADMSG          corrupted: checksum, impossible length, count or value
 *   -EMSGSIZE         declared length above WIRE_MAX_PAYLOAD
 *   -EPROTONOSUPPORT  version outside what we speak or what was negotiated
 *   -EPROTO           well formed, but not allowed here (sequence, role,
 *                     round, codec or feature not negotiated, bad totals)
 * and never leave a partially decoded result that the caller could apply.
 */
#ifndef VMDIRTY_WIRE_PROTO_H
#define VMDIRTY_WIRE_PROTO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <sys/uio.h>

#define WIRE_MAGIC		0x57444d56u	/* "VMDW" as bytes on the wire */
#define WIRE_VERSION_MIN	2
#define WIRE_VERSION_MAX	2
#define WIRE_HELLO_VERSION	1	/* header version of HELLO, HELLO_ACK, ERROR */
#define WIRE_QUERY_VERSION	2	/* header version of QUERY and OUTCOME */

#define WIRE_HDR_SIZE		32
#define WIRE_PAGES_META		16	/* PAGES body before the descriptors */
#define WIRE_DESC_SIZE		8
#define WIRE_HASH_SIZE		8	/* a data page's hash in PAGES */
#define WIRE_MAX_BATCH		512	/* descriptors in one PAGES message */
#define WIRE_MAX_DATA		(2u << 20)	/* raw page bytes in one PAGES message */
#define WIRE_MAX_PAYLOAD	(WIRE_MAX_DATA + 12288)
#define WIRE_MAX_MSG		(WIRE_HDR_SIZE + WIRE_MAX_PAYLOAD)
#define WIRE_MAX_IOV		(2 + WIRE_MAX_BATCH)

#define WIRE_PAGE_SIZE_MIN	4096
#define WIRE_PAGE_SIZE_MAX	65536
#define WIRE_MAX_REGIONS	256
#define WIRE_MAX_CHANNELS	64
#define WIRE_MAX_VCPUS		1024
#define WIRE_MAX_TEXT		1024
#define WIRE_MAX_XSAVE		65536
#define WIRE_MAX_MSRS		256
#define WIRE_GFN_BITS		56

enum wire_type {
	WIRE_HELLO = 1,
	WIRE_HELLO_ACK,
	WIRE_ERROR,
	WIRE_PAGES,
	WIRE_ROUND_END,
	WIRE_VCPU_STATE,
	WIRE_VM_STATE,
	WIRE_COMPLETE,
	/* 9: version 1's CONFIRM, replaced by the two-phase handover below */
	WIRE_READY = 10,
	WIRE_COMMIT,
	WIRE_STARTED,
	WIRE_QUERY,
	WIRE_OUTCOME,
	WIRE_ROUND_ACK,
	WIRE_TYPE_MAX = WIRE_ROUND_ACK,
};

/* Header flags. */
#define WIRE_HF_TAIL_UNCHECKED	0x01	/* pcsum covers only payload[0, csum_len) */
#define WIRE_HF_ALL		WIRE_HF_TAIL_UNCHECKED

enum wire_codec {
	WIRE_CODEC_RAW = 0,
	WIRE_CODEC_LZ4 = 1,
	WIRE_CODEC_ZSTD = 2,
	WIRE_NR_CODECS,
};
#define WIRE_CODEC_BIT(c)	(1u << (c))
#define WIRE_CODECS_ALL		(WIRE_CODEC_BIT(WIRE_NR_CODECS) - 1)

enum wire_page_kind {
	WIRE_PAGE_ZERO = 1,	/* no payload: the page is all zeros */
	WIRE_PAGE_DATA = 2,	/* page_size bytes in the (decoded) data */
};

/* PAGES codec flags. */
#define WIRE_PF_RESET		0x01	/* reset the codec stream before this batch */
#define WIRE_PF_EXACT		0x02	/* the data is exactly what was hashed */
#define WIRE_PF_ALL		(WIRE_PF_RESET | WIRE_PF_EXACT)

/* Features (HELLO offers, HELLO_ACK chooses). */
#define WIRE_FEAT_RAM_HASH	0x01	/* COMPLETE may carry a hash of all RAM (opt-in) */
#define WIRE_FEAT_RAW_UNCHECKED	0x02	/* batches may lack EXACT: pages read in place */
#define WIRE_FEAT_STARTED_HOLD	0x04	/* STARTED says how long the destination held it */
#define WIRE_FEAT_ALL		(WIRE_FEAT_RAM_HASH | WIRE_FEAT_RAW_UNCHECKED | \
				 WIRE_FEAT_STARTED_HOLD)

/* ERROR codes. */
enum wire_err {
	WIRE_ERR_VERSION = 1,	/* no common protocol version */
	WIRE_ERR_PAGE_SIZE,
	WIRE_ERR_LAYOUT,	/* guest-physical memory regions differ */
	WIRE_ERR_VCPUS,
	WIRE_ERR_CPU,		/* CPU vendor or xsave size incompatible */
	WIRE_ERR_FEATURES,	/* no common codec, bad feature set */
	WIRE_ERR_SESSION,	/* session id or channel index/count wrong */
	WIRE_ERR_PROTOCOL,	/* malformed or unexpected message */
	WIRE_ERR_CHECKSUM,
	WIRE_ERR_CODEC,		/* decompression failed */
	WIRE_ERR_STATE,		/* vCPU or VM state rejected */
	WIRE_ERR_INCOMPLETE,	/* pages or totals missing at COMPLETE */
	WIRE_ERR_HASH,		/* RAM hash mismatch */
	WIRE_ERR_INTERNAL,
	WIRE_ERR_CANCELLED,	/* the source gave up: discard everything */
	WIRE_ERR_DISCARDED,	/* the destination discarded its copy: it never runs it */
	WIRE_ERR_MAX = WIRE_ERR_DISCARDED,
};

struct wire_hdr {
	uint16_t version;
	uint8_t type;
	uint8_t flags;
	uint32_t len;		/* payload bytes after the header */
	uint32_t csum_len;	/* payload bytes covered by pcsum */
	uint32_t seq;
	uint64_t pcsum;
};

struct wire_region {
	uint64_t gpa, size;
};

struct wire_hello {
	uint16_t ver_min, ver_max;
	uint32_t page_size;
	uint64_t session_id;	/* non-zero, binds the channels of one migration */
	uint16_t nr_channels, channel_idx;
	uint32_t nr_vcpus;
	uint32_t features;	/* WIRE_FEAT_* */
	uint32_t codecs;	/* WIRE_CODEC_BIT() set; RAW always */
	uint64_t tsc_khz;	/* informational: the destination may scale */
	uint32_t xsave_size;
	char cpu_vendor[13];	/* CPUID.0 vendor, NUL-terminated; "" = unknown */
	uint32_t nr_regions;
	struct wire_region regions[WIRE_MAX_REGIONS];
};

struct wire_hello_ack {
	uint16_t version;
	uint32_t features, codecs;
	uint16_t nr_channels, channel_idx;
	uint64_t session_id;
};

struct wire_error {
	uint32_t code;		/* enum wire_err */
	uint32_t err;		/* the sender's positive errno, informational */
	char text[WIRE_MAX_TEXT + 1];
};

struct wire_round_end {
	uint32_t round;
	uint64_t pages, bytes;	/* PAGES sent on this channel in the round */
};

#define WIRE_COMPLETE_HASH	0x01
struct wire_complete {
	uint32_t last_round;
	uint32_t flags;
	uint32_t nr_vcpus;
	uint64_t total_pages, total_bytes;	/* all channels, all rounds */
	uint64_t digest;	/* wire_digest_sum() of every page as last sent */
	uint64_t ram_hash;	/* WIRE_COMPLETE_HASH: wire_ram_hash() at the pause */
};

/* The destination has everything, checked and loaded, and does not run it yet. */
#define WIRE_READY_HASH_CHECKED	0x01
struct wire_ready {
	uint32_t flags;
	uint64_t digest;	/* the destination's own */
	uint64_t ram_hash;	/* what it computed, with HASH_CHECKED */
	uint64_t wait_ns;	/* COMPLETE until every channel ended the last round */
	uint64_t check_ns;	/* totals, digest (and RAM hash) */
	uint64_t restore_ns;	/* vCPU and VM state loaded */
};

/* The source's decision: run it there.  It never resumes its own copy after this. */
struct wire_commit {
	uint64_t session_id;
};

/* The guest runs on the destination. */
struct wire_started {
	uint64_t resume_ns;	/* COMMIT received until the vCPUs ran */
	/*
	 * COMMIT received until STARTED sent, at least resume_ns: what
	 * COMMIT's round trip spent there, so that the rest is the flights.
	 * 0 without WIRE_FEAT_STARTED_HOLD (the encoder writes 0 then).
	 */
	uint64_t hold_ns;
};

/* Every channel ended round; the destination applied all of it. */
struct wire_round_ack {
	uint32_t round;
	uint64_t pages;		/* pages applied so far, all channels */
};

/*
 * QUERY and OUTCOME travel on a connection of their own, instead of a
 * handshake: the source asks what became of a session whose COMMIT was
 * not answered, and with QUERY_COMMIT commits it if the destination still
 * holds it.  The destination's answer is final.
 */
#define WIRE_QUERY_COMMIT	0x01
struct wire_query {
	uint64_t session_id;
	uint32_t flags;
};

enum wire_outcome {
	WIRE_OUTCOME_RUNNING = 1,	/* committed: the guest runs (or ran) there */
	WIRE_OUTCOME_DISCARDED,		/* never ran there and never will */
	WIRE_OUTCOME_UNKNOWN,		/* no such session here */
	WIRE_OUTCOME_HOLDING,		/* loaded, waiting for COMMIT (query without COMMIT) */
	WIRE_OUTCOME_MAX = WIRE_OUTCOME_HOLDING,
};

struct wire_outcome_msg {
	uint64_t session_id;
	uint32_t outcome;	/* enum wire_outcome */
};

/* A decoded PAGES message: pointers into the received payload. */
struct wire_pages {
	uint32_t round;
	uint8_t codec, cflags;
	uint16_t nr_pages, nr_data;
	uint32_t data_len;
	const uint8_t *desc;	/* nr_pages little-endian u64 */
	const uint8_t *hashes;	/* nr_data little-endian u64, one per DATA page */
	const uint8_t *data;
};

enum wire_role { WIRE_ROLE_SOURCE = 1, WIRE_ROLE_DEST };

/*
 * Per-channel protocol state: sequence numbers, negotiated session and the
 * page/byte accounting that ROUND_END and COMPLETE check.  One per TCP
 * channel per side.  One thread may send and another receive at the same
 * time (tx_* and rx_* are disjoint, failed is atomic); two senders or two
 * receivers must be serialized by the caller, and messages must go out in
 * the order they were encoded (seq).
 */
struct wire_stream {
	enum wire_role role;
	uint32_t page_size;
	uint16_t version;		/* 0 until established */
	bool failed;			/* ERROR sent or received: wire_stream_failed() */
	uint32_t features, codecs;
	uint32_t tx_seq, rx_seq;
	uint32_t tx_round, rx_round;	/* the open round */
	uint64_t tx_round_pages, tx_round_bytes;
	uint64_t rx_round_pages, rx_round_bytes;
	uint64_t tx_pages, tx_bytes;	/* PAGES totals, all rounds */
	uint64_t rx_pages, rx_bytes;
};

void wire_stream_init(struct wire_stream *s, enum wire_role role, uint32_t page_size);
void wire_stream_establish(struct wire_stream *s, const struct wire_hello_ack *ack);
bool wire_stream_failed(const struct wire_stream *s);

/*
 * Framing.  A receiver reads WIRE_HDR_SIZE bytes and wire_hdr_parse()s them
 * (magic, header checksum, version, type, flags, len <= WIRE_MAX_PAYLOAD),
 * reads h->len more bytes, and passes them to wire_recv_check() (payload
 * checksum, sequence, role and state, negotiated version) before any
 * wire_dec_*().  wire_payload_verify() is the payload checksum alone.
 */
int wire_hdr_parse(const void *buf, struct wire_hdr *h);
int wire_payload_verify(const struct wire_hdr *h, const void *payload);
int wire_recv_check(struct wire_stream *s, const struct wire_hdr *h, const void *payload);

/* Handshake. */
ssize_t wire_enc_hello(struct wire_stream *s, void *buf, size_t cap, const struct wire_hello *h);
int wire_dec_hello(const struct wire_hdr *h, const void *p, struct wire_hello *out);
int wire_negotiate(const struct wire_hello *local, const struct wire_hello *peer,
		   struct wire_hello_ack *ack, struct wire_error *err);
ssize_t wire_enc_hello_ack(struct wire_stream *s, void *buf, size_t cap,
			   const struct wire_hello_ack *a);
int wire_dec_hello_ack(const struct wire_hdr *h, const void *p, struct wire_hello_ack *out);
int wire_check_ack(const struct wire_hello *sent, const struct wire_hello_ack *ack,
		   struct wire_error *err);

ssize_t wire_enc_error(struct wire_stream *s, void *buf, size_t cap, const struct wire_error *e);
int wire_dec_error(const struct wire_hdr *h, const void *p, struct wire_error *out);
void wire_error_set(struct wire_error *e, uint32_t code, int err, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
const char *wire_err_name(uint32_t code);

/* Rounds. */
/* Validates and accounts one PAGES message of the open round. */
int wire_dec_pages(struct wire_stream *s, const struct wire_hdr *h, const void *p,
		   struct wire_pages *out);
void wire_pages_desc(const struct wire_pages *pg, unsigned int i, uint64_t *gfn, uint8_t *kind);
/*
 * PAGES encoding, for the batch encoder (codec.c): iov[0] starts with
 * WIRE_HDR_SIZE + WIRE_PAGES_META bytes for the header and meta, followed
 * by the descriptors written with wire_desc_put() and the data pages'
 * hashes (wire_hash_put()); the rest of iov[0] and iov[1..niov) hold
 * data_len bytes of data.  The checksum covers meta, descriptors and
 * hashes; the data is covered by the page hashes.  A batch without
 * WIRE_PF_EXACT (pages read in place, which may change between the hash
 * and the send) needs WIRE_FEAT_RAW_UNCHECKED.  Fills header and meta,
 * accounts the pages in the open round and returns the message length.
 */
void wire_desc_put(void *at, uint64_t gfn, uint8_t kind);
void wire_hash_put(void *at, uint64_t hash);
uint64_t wire_pages_hash(const struct wire_pages *pg, unsigned int k);
ssize_t wire_seal_pages(struct wire_stream *s, const struct wire_pages *pg,
			const struct iovec *iov, unsigned int niov);
ssize_t wire_enc_round_end(struct wire_stream *s, void *buf, size_t cap, uint32_t round);
int wire_dec_round_end(struct wire_stream *s, const struct wire_hdr *h, const void *p,
		       struct wire_round_end *out);

ssize_t wire_enc_round_ack(struct wire_stream *s, void *buf, size_t cap,
			   const struct wire_round_ack *a);
int wire_dec_round_ack(const struct wire_hdr *h, const void *p, struct wire_round_ack *out);

/* Stop-and-copy and the two-phase handover (channel 0). */
ssize_t wire_enc_complete(struct wire_stream *s, void *buf, size_t cap, const struct wire_complete *c);
int wire_dec_complete(const struct wire_hdr *h, const void *p, struct wire_complete *out);
ssize_t wire_enc_ready(struct wire_stream *s, void *buf, size_t cap, const struct wire_ready *r);
int wire_dec_ready(const struct wire_hdr *h, const void *p, struct wire_ready *out);
ssize_t wire_enc_commit(struct wire_stream *s, void *buf, size_t cap, const struct wire_commit *c);
int wire_dec_commit(const struct wire_hdr *h, const void *p, struct wire_commit *out);
ssize_t wire_enc_started(struct wire_stream *s, void *buf, size_t cap, const struct wire_started *st);
int wire_dec_started(const struct wire_hdr *h, const void *p, struct wire_started *out);

/* QUERY and OUTCOME: on a fresh stream (never established), one each. */
ssize_t wire_enc_query(struct wire_stream *s, void *buf, size_t cap, const struct wire_query *q);
int wire_dec_query(const struct wire_hdr *h, const void *p, struct wire_query *out);
ssize_t wire_enc_outcome(struct wire_stream *s, void *buf, size_t cap,
			 const struct wire_outcome_msg *o);
int wire_dec_outcome(const struct wire_hdr *h, const void *p, struct wire_outcome_msg *out);
const char *wire_outcome_name(uint32_t outcome);

/*
 * vCPU and VM state (state.c): vmm's structs (vmm/vmm.h), as vcpu_save_state()
 * and vm_save_state() fill them and the restore functions take them.
 */
struct vcpu_state;
struct vm_state;
ssize_t wire_enc_vcpu_state(struct wire_stream *s, void *buf, size_t cap,
			    const struct vcpu_state *st);
/* Allocates st->xsave: release with vcpu_state_release(). */
int wire_dec_vcpu_state(const struct wire_hdr *h, const void *p, struct vcpu_state *st);
ssize_t wire_enc_vm_state(struct wire_stream *s, void *buf, size_t cap, const struct vm_state *st);
int wire_dec_vm_state(const struct wire_hdr *h, const void *p, struct vm_state *st);

/*
 * Hash of all guest RAM (WIRE_FEAT_RAM_HASH): XXH3-64 over the little-endian
 * XXH3-64 of every WIRE_HASH_CHUNK of each region in order, so that nthreads
 * can share the work.  mem is the host address of gpa 0.
 */
#define WIRE_HASH_CHUNK		(1u << 20)
int wire_ram_hash(const uint8_t *mem, const struct wire_region *r, unsigned int nr,
		  unsigned int nthreads, uint64_t *hash);

#endif
