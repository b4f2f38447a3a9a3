// SPDX-License-Identifier: GPL-2.0
/*
 * The wire protocol: per-channel state, header, checksums, and the round
 * and completion messages (the handshake is in hello.c).
 * Documentation/protocol.rst is the specification; this file follows it
 * field by field.  Checksums are XXH3-64 (see the document for why).
 */
#include <errno.h>
#include <string.h>
/* XXH3_state_t on the stack. */
#define XXH_STATIC_LINKING_ONLY
#include <xxhash.h>
#if defined(__x86_64__)
/* libxxhash's run-time AVX2/AVX-512 choice: 3.5x the SSE2 build in cache. */
#include <xxh_x86dispatch.h>
#endif

#include "wire/buf.h"
#include "wire/internal.h"
#include "wire/proto.h"

#define HDR_HCSUM_OFF	20

void wire_stream_init(struct wire_stream *s, enum wire_role role, uint32_t page_size)
{
	memset(s, 0, sizeof(*s));
	s->role = role;
	s->page_size = page_size;
}

/* The sending and the receiving thread may both set and test it. */
bool wire_stream_failed(const struct wire_stream *s)
{
	return __atomic_load_n(&s->failed, __ATOMIC_RELAXED);
}

void wire_stream_establish(struct wire_stream *s, const struct wire_hello_ack *ack)
{
	s->version = ack->version;
	s->features = ack->features;
	s->codecs = ack->codecs;
}

static bool is_handshake(uint8_t type)
{
	return type == WIRE_HELLO || type == WIRE_HELLO_ACK || type == WIRE_ERROR;
}

/* Sent instead of a handshake, on a connection of their own. */
static bool is_query(uint8_t type)
{
	return type == WIRE_QUERY || type == WIRE_OUTCOME;
}

/* The header version a message of type carries on s. */
static uint16_t hdr_version(const struct wire_stream *s, uint8_t type)
{
	if (is_handshake(type))
		return WIRE_HELLO_VERSION;
	if (is_query(type))
		return WIRE_QUERY_VERSION;
	return s->version;
}

/* Which side sends a type; ERROR goes both ways. */
static bool sent_by(enum wire_role role, uint8_t type)
{
	switch (type) {
	case WIRE_ERROR:
		return true;
	case WIRE_HELLO_ACK:
	case WIRE_READY:
	case WIRE_STARTED:
	case WIRE_OUTCOME:
	case WIRE_ROUND_ACK:
		return role == WIRE_ROLE_DEST;
	case WIRE_HELLO:
	case WIRE_PAGES:
	case WIRE_ROUND_END:
	case WIRE_VCPU_STATE:
	case WIRE_VM_STATE:
	case WIRE_COMPLETE:
	case WIRE_COMMIT:
	case WIRE_QUERY:
		return role == WIRE_ROLE_SOURCE;
	}
	return false;
}

/* May s, in its current state, send (tx) or receive (!tx) a message of type? */
static bool allowed(const struct wire_stream *s, uint8_t type, bool tx)
{
	enum wire_role peer = s->role == WIRE_ROLE_SOURCE ? WIRE_ROLE_DEST : WIRE_ROLE_SOURCE;

	if (wire_stream_failed(s) || !sent_by(tx ? s->role : peer, type))
		return false;
	if (type == WIRE_ERROR)
		return true;
	if (type == WIRE_HELLO || type == WIRE_HELLO_ACK)
		return s->version == 0;
	/* A QUERY opens its connection; the OUTCOME answers it, and that is all. */
	if (type == WIRE_QUERY)
		return s->version == 0 && (tx ? s->tx_seq : s->rx_seq) == 0;
	if (type == WIRE_OUTCOME)
		return s->version == 0 && (tx ? s->tx_seq : s->rx_seq) == 0;
	return s->version != 0;
}

static uint32_t hdr_hash(const uint8_t *hdr)
{
	uint8_t tmp[WIRE_HDR_SIZE];

	memcpy(tmp, hdr, WIRE_HDR_SIZE);
	memset(tmp + HDR_HCSUM_OFF, 0, 4);
	return (uint32_t)XXH3_64bits(tmp, WIRE_HDR_SIZE);
}

/* XXH3-64 of len bytes of iov, starting skip bytes in. */
static uint64_t iov_hash(const struct iovec *iov, unsigned int niov, size_t skip, size_t len)
{
	XXH3_state_t st;
	unsigned int i = 0;

	while (i < niov && skip >= iov[i].iov_len)
		skip -= iov[i++].iov_len;
	if (i == niov || len == 0)
		return XXH3_64bits(NULL, 0);
	if (iov[i].iov_len - skip >= len)
		return XXH3_64bits((const uint8_t *)iov[i].iov_base + skip, len);
	XXH3_64bits_reset(&st);
	for (; i < niov && len; i++, skip = 0) {
		size_t n = iov[i].iov_len - skip;

		if (n > len)
			n = len;
		XXH3_64bits_update(&st, (const uint8_t *)iov[i].iov_base + skip, n);
		len -= n;
	}
	return XXH3_64bits_digest(&st);
}

/*
 * Fill the header at iov[0].iov_base for the payload that follows it in
 * iov (the header's own WIRE_HDR_SIZE bytes first).
 */
static size_t seal(struct wire_stream *s, uint8_t type, uint8_t flags,
		   const struct iovec *iov, unsigned int niov, size_t csum_len)
{
	uint8_t *hdr = iov[0].iov_base;
	size_t len = 0;
	uint32_t hcsum;
	struct wbuf w;

	for (unsigned int i = 0; i < niov; i++)
		len += iov[i].iov_len;
	len -= WIRE_HDR_SIZE;
	wb_init(&w, hdr, WIRE_HDR_SIZE);
	wb_u32(&w, WIRE_MAGIC);
	wb_u16(&w, hdr_version(s, type));
	wb_u8(&w, type);
	wb_u8(&w, flags);
	wb_u32(&w, len);
	wb_u32(&w, csum_len);
	wb_u32(&w, s->tx_seq++);
	wb_u32(&w, 0);
	wb_u64(&w, iov_hash(iov, niov, WIRE_HDR_SIZE, csum_len));
	hcsum = htole32(hdr_hash(hdr));
	memcpy(hdr + HDR_HCSUM_OFF, &hcsum, 4);
	if (type == WIRE_ERROR)
		__atomic_store_n(&s->failed, true, __ATOMIC_RELAXED);
	return WIRE_HDR_SIZE + len;
}

int wire_hdr_parse(const void *buf, struct wire_hdr *h)
{
	struct rbuf r;
	uint32_t magic, hcsum;

	rb_init(&r, buf, WIRE_HDR_SIZE);
	magic = rb_u32(&r);
	h->version = rb_u16(&r);
	h->type = rb_u8(&r);
	h->flags = rb_u8(&r);
	h->len = rb_u32(&r);
	h->csum_len = rb_u32(&r);
	h->seq = rb_u32(&r);
	hcsum = rb_u32(&r);
	h->pcsum = rb_u64(&r);
	if (magic != WIRE_MAGIC || hcsum != hdr_hash(buf))
		return -EBADMSG;
	/* HELLO, HELLO_ACK and ERROR keep version 1 headers whatever is negotiated. */
	if ((h->version < WIRE_VERSION_MIN || h->version > WIRE_VERSION_MAX) &&
	    h->version != WIRE_HELLO_VERSION)
		return -EPROTONOSUPPORT;
	if (h->version == WIRE_HELLO_VERSION && h->type != WIRE_HELLO &&
	    h->type != WIRE_HELLO_ACK && h->type != WIRE_ERROR && h->type <= WIRE_TYPE_MAX)
		return -EPROTONOSUPPORT;
	if (h->type == 0 || h->type > WIRE_TYPE_MAX || h->type == 9 || (h->flags & ~WIRE_HF_ALL))
		return -EPROTO;
	if (h->len > WIRE_MAX_PAYLOAD)
		return -EMSGSIZE;
	if (h->csum_len > h->len)
		return -EBADMSG;
	/* PAGES data is covered by its page hashes, everything else by pcsum. */
	if (h->type == WIRE_PAGES ? !(h->flags & WIRE_HF_TAIL_UNCHECKED) :
				    (h->flags & WIRE_HF_TAIL_UNCHECKED) != 0)
		return -EPROTO;
	if (!(h->flags & WIRE_HF_TAIL_UNCHECKED) && h->csum_len != h->len)
		return -EBADMSG;
	return 0;
}

int wire_payload_verify(const struct wire_hdr *h, const void *payload)
{
	if (XXH3_64bits(payload, h->csum_len) != h->pcsum)
		return -EBADMSG;
	return 0;
}

int wire_recv_check(struct wire_stream *s, const struct wire_hdr *h, const void *payload)
{
	int ret;

	ret = wire_payload_verify(h, payload);
	if (ret)
		return ret;
	if (!allowed(s, h->type, false) || h->seq != s->rx_seq)
		return -EPROTO;
	if (h->version != hdr_version(s, h->type))
		return -EPROTONOSUPPORT;
	s->rx_seq++;
	if (h->type == WIRE_ERROR)
		__atomic_store_n(&s->failed, true, __ATOMIC_RELAXED);
	return 0;
}

/* Seal a message whose payload was written right after the header in buf. */
ssize_t wire_msg_finish(struct wire_stream *s, uint8_t type, void *buf, const struct wbuf *w)
{
	struct iovec iov = { .iov_base = buf, .iov_len = WIRE_HDR_SIZE + w->len };

	if (w->overflow)
		return -ENOSPC;
	return seal(s, type, 0, &iov, 1, w->len);
}

int wire_msg_start(struct wire_stream *s, uint8_t type, void *buf, size_t cap, struct wbuf *w)
{
	if (!allowed(s, type, true))
		return -EINVAL;
	if (cap < WIRE_HDR_SIZE)
		return -ENOSPC;
	cap -= WIRE_HDR_SIZE;
	wb_init(w, (uint8_t *)buf + WIRE_HDR_SIZE, cap < WIRE_MAX_PAYLOAD ? cap : WIRE_MAX_PAYLOAD);
	return 0;
}

/* Payload of a message of type whose header passed wire_recv_check(). */
int wire_msg_begin(const struct wire_hdr *h, uint8_t type, const void *p, struct rbuf *r)
{
	if (h->type != type)
		return -EINVAL;
	rb_init(r, p, h->len);
	return 0;
}

/* ---- PAGES, ROUND_END ---- */

void wire_pages_desc(const struct wire_pages *pg, unsigned int i, uint64_t *gfn, uint8_t *kind)
{
	uint64_t d;

	memcpy(&d, pg->desc + (size_t)i * WIRE_DESC_SIZE, WIRE_DESC_SIZE);
	d = le64toh(d);
	*gfn = d & ((1ull << WIRE_GFN_BITS) - 1);
	*kind = d >> WIRE_GFN_BITS;
}

void wire_desc_put(void *at, uint64_t gfn, uint8_t kind)
{
	uint64_t d = htole64(gfn | (uint64_t)kind << WIRE_GFN_BITS);

	memcpy(at, &d, WIRE_DESC_SIZE);
}

void wire_hash_put(void *at, uint64_t hash)
{
	uint64_t h = htole64(hash);

	memcpy(at, &h, WIRE_HASH_SIZE);
}

uint64_t wire_pages_hash(const struct wire_pages *pg, unsigned int k)
{
	uint64_t h;

	memcpy(&h, pg->hashes + (size_t)k * WIRE_HASH_SIZE, WIRE_HASH_SIZE);
	return le64toh(h);
}

/* PAGES bytes under pcsum: meta, descriptors, hashes. */
static size_t pages_meta(uint16_t nr_pages, uint16_t nr_data)
{
	return WIRE_PAGES_META + (size_t)nr_pages * WIRE_DESC_SIZE +
	       (size_t)nr_data * WIRE_HASH_SIZE;
}

ssize_t wire_seal_pages(struct wire_stream *s, const struct wire_pages *pg,
			const struct iovec *iov, unsigned int niov)
{
	size_t meta = pages_meta(pg->nr_pages, pg->nr_data);
	size_t total = 0, len;
	struct wbuf w;

	for (unsigned int i = 0; i < niov; i++)
		total += iov[i].iov_len;
	if (!allowed(s, WIRE_PAGES, true) || pg->round != s->tx_round ||
	    !pg->nr_pages || pg->nr_pages > WIRE_MAX_BATCH || pg->nr_data > pg->nr_pages ||
	    pg->codec >= WIRE_NR_CODECS || !(s->codecs & WIRE_CODEC_BIT(pg->codec)) ||
	    (pg->cflags & ~WIRE_PF_ALL) || iov[0].iov_len < WIRE_HDR_SIZE + meta ||
	    total != WIRE_HDR_SIZE + meta + pg->data_len ||
	    (!(pg->cflags & WIRE_PF_EXACT) && !(s->features & WIRE_FEAT_RAW_UNCHECKED)))
		return -EINVAL;
	wb_init(&w, (uint8_t *)iov[0].iov_base + WIRE_HDR_SIZE, WIRE_PAGES_META);
	wb_u32(&w, pg->round);
	wb_u8(&w, pg->codec);
	wb_u8(&w, pg->cflags);
	wb_u16(&w, 0);
	wb_u16(&w, pg->nr_pages);
	wb_u16(&w, pg->nr_data);
	wb_u32(&w, pg->data_len);
	len = seal(s, WIRE_PAGES, WIRE_HF_TAIL_UNCHECKED, iov, niov, meta);
	s->tx_round_pages += pg->nr_pages;
	s->tx_round_bytes += len;
	s->tx_pages += pg->nr_pages;
	s->tx_bytes += len;
	return len;
}

int wire_dec_pages(struct wire_stream *s, const struct wire_hdr *h, const void *p,
		   struct wire_pages *out)
{
	struct wire_pages v;
	uint32_t ndata = 0;
	uint64_t raw_len;
	uint16_t rsvd;
	struct rbuf r;
	int ret;

	ret = wire_msg_begin(h, WIRE_PAGES, p, &r);
	if (ret)
		return ret;
	v.round = rb_u32(&r);
	v.codec = rb_u8(&r);
	v.cflags = rb_u8(&r);
	rsvd = rb_u16(&r);
	v.nr_pages = rb_u16(&r);
	v.nr_data = rb_u16(&r);
	v.data_len = rb_u32(&r);
	if (r.bad || rsvd || (v.cflags & ~WIRE_PF_ALL) || v.codec >= WIRE_NR_CODECS ||
	    !v.nr_pages || v.nr_pages > WIRE_MAX_BATCH || v.nr_data > v.nr_pages)
		return -EBADMSG;
	v.desc = rb_take(&r, (size_t)v.nr_pages * WIRE_DESC_SIZE);
	v.hashes = rb_take(&r, (size_t)v.nr_data * WIRE_HASH_SIZE);
	v.data = rb_take(&r, v.data_len);
	if (!rb_done(&r) || h->csum_len != pages_meta(v.nr_pages, v.nr_data))
		return -EBADMSG;
	for (unsigned int i = 0; i < v.nr_pages; i++) {
		uint64_t gfn;
		uint8_t kind;

		wire_pages_desc(&v, i, &gfn, &kind);
		if (kind != WIRE_PAGE_ZERO && kind != WIRE_PAGE_DATA)
			return -EBADMSG;
		ndata += kind == WIRE_PAGE_DATA;
	}
	raw_len = (uint64_t)v.nr_data * s->page_size;
	if (ndata != v.nr_data || raw_len > WIRE_MAX_DATA)
		return -EBADMSG;
	if (v.codec == WIRE_CODEC_RAW ? v.data_len != raw_len || (v.cflags & WIRE_PF_RESET)
				      : !v.data_len || v.data_len >= raw_len)
		return -EBADMSG;
	if (!(s->codecs & WIRE_CODEC_BIT(v.codec)) || v.round != s->rx_round ||
	    (!(v.cflags & WIRE_PF_EXACT) && !(s->features & WIRE_FEAT_RAW_UNCHECKED)))
		return -EPROTO;
	s->rx_round_pages += v.nr_pages;
	s->rx_round_bytes += WIRE_HDR_SIZE + h->len;
	s->rx_pages += v.nr_pages;
	s->rx_bytes += WIRE_HDR_SIZE + h->len;
	*out = v;
	return 0;
}

ssize_t wire_enc_round_end(struct wire_stream *s, void *buf, size_t cap, uint32_t round)
{
	struct wbuf w;
	ssize_t len;
	int ret;

	if (round != s->tx_round)
		return -EINVAL;
	ret = wire_msg_start(s, WIRE_ROUND_END, buf, cap, &w);
	if (ret)
		return ret;
	wb_u32(&w, round);
	wb_u32(&w, 0);
	wb_u64(&w, s->tx_round_pages);
	wb_u64(&w, s->tx_round_bytes);
	len = wire_msg_finish(s, WIRE_ROUND_END, buf, &w);
	if (len > 0) {
		s->tx_round++;
		s->tx_round_pages = 0;
		s->tx_round_bytes = 0;
	}
	return len;
}

int wire_dec_round_end(struct wire_stream *s, const struct wire_hdr *h, const void *p,
		       struct wire_round_end *out)
{
	struct wire_round_end v;
	uint32_t rsvd;
	struct rbuf r;
	int ret;

	ret = wire_msg_begin(h, WIRE_ROUND_END, p, &r);
	if (ret)
		return ret;
	v.round = rb_u32(&r);
	rsvd = rb_u32(&r);
	v.pages = rb_u64(&r);
	v.bytes = rb_u64(&r);
	if (!rb_done(&r) || rsvd)
		return -EBADMSG;
	if (v.round != s->rx_round || v.pages != s->rx_round_pages ||
	    v.bytes != s->rx_round_bytes)
		return -EPROTO;
	s->rx_round++;
	s->rx_round_pages = 0;
	s->rx_round_bytes = 0;
	*out = v;
	return 0;
}

/* ---- ROUND_ACK ---- */

ssize_t wire_enc_round_ack(struct wire_stream *s, void *buf, size_t cap,
			   const struct wire_round_ack *a)
{
	struct wbuf w;
	int ret;

	ret = wire_msg_start(s, WIRE_ROUND_ACK, buf, cap, &w);
	if (ret)
		return ret;
	wb_u32(&w, a->round);
	wb_u32(&w, 0);
	wb_u64(&w, a->pages);
	return wire_msg_finish(s, WIRE_ROUND_ACK, buf, &w);
}

int wire_dec_round_ack(const struct wire_hdr *h, const void *p, struct wire_round_ack *out)
{
	struct wire_round_ack v;
	uint32_t rsvd;
	struct rbuf r;
	int ret;

	ret = wire_msg_begin(h, WIRE_ROUND_ACK, p, &r);
	if (ret)
		return ret;
	v.round = rb_u32(&r);
	rsvd = rb_u32(&r);
	v.pages = rb_u64(&r);
	if (!rb_done(&r) || rsvd)
		return -EBADMSG;
	*out = v;
	return 0;
}

/* ---- COMPLETE, READY, COMMIT, STARTED ---- */

ssize_t wire_enc_complete(struct wire_stream *s, void *buf, size_t cap, const struct wire_complete *c)
{
	struct wbuf w;
	int ret;

	if ((c->flags & ~WIRE_COMPLETE_HASH) || (!(c->flags & WIRE_COMPLETE_HASH) && c->ram_hash))
		return -EINVAL;
	if ((c->flags & WIRE_COMPLETE_HASH) && !(s->features & WIRE_FEAT_RAM_HASH))
		return -EINVAL;
	ret = wire_msg_start(s, WIRE_COMPLETE, buf, cap, &w);
	if (ret)
		return ret;
	wb_u32(&w, c->last_round);
	wb_u32(&w, c->flags);
	wb_u32(&w, c->nr_vcpus);
	wb_u32(&w, 0);
	wb_u64(&w, c->total_pages);
	wb_u64(&w, c->total_bytes);
	wb_u64(&w, c->digest);
	wb_u64(&w, c->ram_hash);
	return wire_msg_finish(s, WIRE_COMPLETE, buf, &w);
}

int wire_dec_complete(const struct wire_hdr *h, const void *p, struct wire_complete *out)
{
	struct wire_complete v;
	uint32_t rsvd;
	struct rbuf r;
	int ret;

	ret = wire_msg_begin(h, WIRE_COMPLETE, p, &r);
	if (ret)
		return ret;
	v.last_round = rb_u32(&r);
	v.flags = rb_u32(&r);
	v.nr_vcpus = rb_u32(&r);
	rsvd = rb_u32(&r);
	v.total_pages = rb_u64(&r);
	v.total_bytes = rb_u64(&r);
	v.digest = rb_u64(&r);
	v.ram_hash = rb_u64(&r);
	if (!rb_done(&r) || rsvd || (v.flags & ~WIRE_COMPLETE_HASH) ||
	    (!(v.flags & WIRE_COMPLETE_HASH) && v.ram_hash) ||
	    !v.nr_vcpus || v.nr_vcpus > WIRE_MAX_VCPUS)
		return -EBADMSG;
	*out = v;
	return 0;
}

ssize_t wire_enc_ready(struct wire_stream *s, void *buf, size_t cap, const struct wire_ready *rd)
{
	struct wbuf w;
	int ret;

	if ((rd->flags & ~WIRE_READY_HASH_CHECKED) ||
	    (!(rd->flags & WIRE_READY_HASH_CHECKED) && rd->ram_hash))
		return -EINVAL;
	ret = wire_msg_start(s, WIRE_READY, buf, cap, &w);
	if (ret)
		return ret;
	wb_u32(&w, rd->flags);
	wb_u32(&w, 0);
	wb_u64(&w, rd->digest);
	wb_u64(&w, rd->ram_hash);
	wb_u64(&w, rd->wait_ns);
	wb_u64(&w, rd->check_ns);
	wb_u64(&w, rd->restore_ns);
	return wire_msg_finish(s, WIRE_READY, buf, &w);
}

int wire_dec_ready(const struct wire_hdr *h, const void *p, struct wire_ready *out)
{
	struct wire_ready v;
	uint32_t rsvd;
	struct rbuf r;
	int ret;

	ret = wire_msg_begin(h, WIRE_READY, p, &r);
	if (ret)
		return ret;
	v.flags = rb_u32(&r);
	rsvd = rb_u32(&r);
	v.digest = rb_u64(&r);
	v.ram_hash = rb_u64(&r);
	v.wait_ns = rb_u64(&r);
	v.check_ns = rb_u64(&r);
	v.restore_ns = rb_u64(&r);
	if (!rb_done(&r) || rsvd || (v.flags & ~WIRE_READY_HASH_CHECKED) ||
	    (!(v.flags & WIRE_READY_HASH_CHECKED) && v.ram_hash))
		return -EBADMSG;
	*out = v;
	return 0;
}

ssize_t wire_enc_commit(struct wire_stream *s, void *buf, size_t cap, const struct wire_commit *c)
{
	struct wbuf w;
	int ret;

	if (!c->session_id)
		return -EINVAL;
	ret = wire_msg_start(s, WIRE_COMMIT, buf, cap, &w);
	if (ret)
		return ret;
	wb_u64(&w, c->session_id);
	wb_u64(&w, 0);
	return wire_msg_finish(s, WIRE_COMMIT, buf, &w);
}

int wire_dec_commit(const struct wire_hdr *h, const void *p, struct wire_commit *out)
{
	struct wire_commit v;
	uint64_t rsvd;
	struct rbuf r;
	int ret;

	ret = wire_msg_begin(h, WIRE_COMMIT, p, &r);
	if (ret)
		return ret;
	v.session_id = rb_u64(&r);
	rsvd = rb_u64(&r);
	if (!rb_done(&r) || rsvd || !v.session_id)
		return -EBADMSG;
	*out = v;
	return 0;
}

ssize_t wire_enc_started(struct wire_stream *s, void *buf, size_t cap, const struct wire_started *st)
{
	struct wbuf w;
	int ret;

	ret = wire_msg_start(s, WIRE_STARTED, buf, cap, &w);
	if (ret)
		return ret;
	wb_u64(&w, st->resume_ns);
	wb_u64(&w, s->features & WIRE_FEAT_STARTED_HOLD ? st->hold_ns : 0);
	return wire_msg_finish(s, WIRE_STARTED, buf, &w);
}

int wire_dec_started(const struct wire_hdr *h, const void *p, struct wire_started *out)
{
	struct wire_started v;
	struct rbuf r;
	int ret;

	ret = wire_msg_begin(h, WIRE_STARTED, p, &r);
	if (ret)
		return ret;
	v.resume_ns = rb_u64(&r);
	v.hold_ns = rb_u64(&r);
	/* Unnegotiated, hold_ns must be 0: the receiver checks (it knows the features). */
	if (!rb_done(&r) || (v.hold_ns && v.hold_ns < v.resume_ns))
		return -EBADMSG;
	*out = v;
	return 0;
}

/* ---- QUERY, OUTCOME ---- */

ssize_t wire_enc_query(struct wire_stream *s, void *buf, size_t cap, const struct wire_query *q)
{
	struct wbuf w;
	int ret;

	if (!q->session_id || (q->flags & ~WIRE_QUERY_COMMIT))
		return -EINVAL;
	ret = wire_msg_start(s, WIRE_QUERY, buf, cap, &w);
	if (ret)
		return ret;
	wb_u64(&w, q->session_id);
	wb_u32(&w, q->flags);
	wb_u32(&w, 0);
	return wire_msg_finish(s, WIRE_QUERY, buf, &w);
}

int wire_dec_query(const struct wire_hdr *h, const void *p, struct wire_query *out)
{
	struct wire_query v;
	uint32_t rsvd;
	struct rbuf r;
	int ret;

	ret = wire_msg_begin(h, WIRE_QUERY, p, &r);
	if (ret)
		return ret;
	v.session_id = rb_u64(&r);
	v.flags = rb_u32(&r);
	rsvd = rb_u32(&r);
	if (!rb_done(&r) || rsvd || !v.session_id || (v.flags & ~WIRE_QUERY_COMMIT))
		return -EBADMSG;
	*out = v;
	return 0;
}

ssize_t wire_enc_outcome(struct wire_stream *s, void *buf, size_t cap,
			 const struct wire_outcome_msg *o)
{
	struct wbuf w;
	int ret;

	if (!o->session_id || !o->outcome || o->outcome > WIRE_OUTCOME_MAX)
		return -EINVAL;
	ret = wire_msg_start(s, WIRE_OUTCOME, buf, cap, &w);
	if (ret)
		return ret;
	wb_u64(&w, o->session_id);
	wb_u32(&w, o->outcome);
	wb_u32(&w, 0);
	return wire_msg_finish(s, WIRE_OUTCOME, buf, &w);
}

int wire_dec_outcome(const struct wire_hdr *h, const void *p, struct wire_outcome_msg *out)
{
	struct wire_outcome_msg v;
	uint32_t rsvd;
	struct rbuf r;
	int ret;

	ret = wire_msg_begin(h, WIRE_OUTCOME, p, &r);
	if (ret)
		return ret;
	v.session_id = rb_u64(&r);
	v.outcome = rb_u32(&r);
	rsvd = rb_u32(&r);
	if (!rb_done(&r) || rsvd || !v.session_id || !v.outcome || v.outcome > WIRE_OUTCOME_MAX)
		return -EBADMSG;
	*out = v;
	return 0;
}

const char *wire_outcome_name(uint32_t outcome)
{
	static const char *const names[] = {
		[WIRE_OUTCOME_RUNNING] = "running",
		[WIRE_OUTCOME_DISCARDED] = "discarded",
		[WIRE_OUTCOME_UNKNOWN] = "unknown",
		[WIRE_OUTCOME_HOLDING] = "holding",
	};

	return outcome && outcome <= WIRE_OUTCOME_MAX ? names[outcome] : "invalid";
}
