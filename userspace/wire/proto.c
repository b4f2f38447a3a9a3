// SPDX-License-Identifier: GPL-2.0
/*
 * The wire protocol: header, checksums, handshake and round messages.
 * Documentation/protocol.rst is the specification; this file follows it
 * field by field.  Checksums are XXH3-64 (see the document for why).
 */
#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
/* XXH3_state_t on the stack. */
#define XXH_STATIC_LINKING_ONLY
#include <xxhash.h>

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

/* Which side sends a type; ERROR goes both ways. */
static bool sent_by(enum wire_role role, uint8_t type)
{
	switch (type) {
	case WIRE_ERROR:
		return true;
	case WIRE_HELLO_ACK:
	case WIRE_CONFIRM:
		return role == WIRE_ROLE_DEST;
	default:
		return role == WIRE_ROLE_SOURCE;
	}
}

/* May s, in its current state, send (tx) or receive (!tx) a message of type? */
static bool allowed(const struct wire_stream *s, uint8_t type, bool tx)
{
	enum wire_role peer = s->role == WIRE_ROLE_SOURCE ? WIRE_ROLE_DEST : WIRE_ROLE_SOURCE;

	if (s->failed || !sent_by(tx ? s->role : peer, type))
		return false;
	if (type == WIRE_ERROR)
		return true;
	if (type == WIRE_HELLO || type == WIRE_HELLO_ACK)
		return s->version == 0;
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
	wb_u16(&w, is_handshake(type) ? WIRE_HELLO_VERSION : s->version);
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
		s->failed = true;
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
	if (h->version < WIRE_VERSION_MIN || h->version > WIRE_VERSION_MAX)
		return -EPROTONOSUPPORT;
	if (h->type == 0 || h->type > WIRE_TYPE_MAX || (h->flags & ~WIRE_HF_ALL))
		return -EPROTO;
	if (h->len > WIRE_MAX_PAYLOAD)
		return -EMSGSIZE;
	if (h->csum_len > h->len)
		return -EBADMSG;
	if (!(h->flags & WIRE_HF_TAIL_UNCHECKED) && h->csum_len != h->len)
		return -EBADMSG;
	if ((h->flags & WIRE_HF_TAIL_UNCHECKED) && h->type != WIRE_PAGES)
		return -EPROTO;
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
	if (h->version != (is_handshake(h->type) ? WIRE_HELLO_VERSION : s->version))
		return -EPROTONOSUPPORT;
	if ((h->flags & WIRE_HF_TAIL_UNCHECKED) && !(s->features & WIRE_FEAT_RAW_UNCHECKED))
		return -EPROTO;
	s->rx_seq++;
	if (h->type == WIRE_ERROR)
		s->failed = true;
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

static bool is_pow2(uint64_t v)
{
	return v && !(v & (v - 1));
}

/* ---- HELLO ---- */

static int hello_valid(const struct wire_hello *h)
{
	uint64_t end = 0;

	if (h->ver_min == 0 || h->ver_min > h->ver_max)
		return -EINVAL;
	if (!is_pow2(h->page_size) || h->page_size < WIRE_PAGE_SIZE_MIN ||
	    h->page_size > WIRE_PAGE_SIZE_MAX)
		return -EINVAL;
	if (!h->session_id || !h->nr_channels || h->nr_channels > WIRE_MAX_CHANNELS ||
	    h->channel_idx >= h->nr_channels)
		return -EINVAL;
	if (!h->nr_vcpus || h->nr_vcpus > WIRE_MAX_VCPUS)
		return -EINVAL;
	if (!(h->codecs & WIRE_CODEC_BIT(WIRE_CODEC_RAW)))
		return -EINVAL;
	if (h->xsave_size && (h->xsave_size < 4096 || h->xsave_size > WIRE_MAX_XSAVE))
		return -EINVAL;
	if (!h->nr_regions || h->nr_regions > WIRE_MAX_REGIONS)
		return -EINVAL;
	for (uint32_t i = 0; i < h->nr_regions; i++) {
		const struct wire_region *rg = &h->regions[i];

		if (!rg->size || (rg->gpa | rg->size) & (h->page_size - 1) ||
		    rg->gpa < end || rg->gpa + rg->size < rg->gpa ||
		    (rg->gpa + rg->size - 1) >> 12 >> WIRE_GFN_BITS)
			return -EINVAL;
		end = rg->gpa + rg->size;
	}
	/* Printable vendor string, NUL-padded. */
	for (int i = 0, nul = 0; i < 12; i++) {
		char c = h->cpu_vendor[i];

		if (nul ? c != 0 : (c != 0 && (c < 0x20 || c > 0x7e)))
			return -EINVAL;
		nul |= !c;
	}
	return h->cpu_vendor[12] ? -EINVAL : 0;
}

ssize_t wire_enc_hello(struct wire_stream *s, void *buf, size_t cap, const struct wire_hello *h)
{
	struct wbuf w;
	int ret;

	if (hello_valid(h) || h->page_size != s->page_size)
		return -EINVAL;
	ret = wire_msg_start(s, WIRE_HELLO, buf, cap, &w);
	if (ret)
		return ret;
	wb_u16(&w, h->ver_min);
	wb_u16(&w, h->ver_max);
	wb_u32(&w, h->page_size);
	wb_u64(&w, h->session_id);
	wb_u16(&w, h->nr_channels);
	wb_u16(&w, h->channel_idx);
	wb_u32(&w, h->nr_vcpus);
	wb_u32(&w, h->features);
	wb_u32(&w, h->codecs);
	wb_u64(&w, h->tsc_khz);
	wb_u32(&w, h->xsave_size);
	wb_bytes(&w, h->cpu_vendor, 12);
	wb_u32(&w, h->nr_regions);
	for (uint32_t i = 0; i < h->nr_regions; i++) {
		wb_u64(&w, h->regions[i].gpa);
		wb_u64(&w, h->regions[i].size);
	}
	return wire_msg_finish(s, WIRE_HELLO, buf, &w);
}

int wire_dec_hello(const struct wire_hdr *h, const void *p, struct wire_hello *out)
{
	struct wire_hello v;
	struct rbuf r;
	int ret;

	ret = wire_msg_begin(h, WIRE_HELLO, p, &r);
	if (ret)
		return ret;
	memset(&v, 0, sizeof(v));
	v.ver_min = rb_u16(&r);
	v.ver_max = rb_u16(&r);
	v.page_size = rb_u32(&r);
	v.session_id = rb_u64(&r);
	v.nr_channels = rb_u16(&r);
	v.channel_idx = rb_u16(&r);
	v.nr_vcpus = rb_u32(&r);
	v.features = rb_u32(&r);
	v.codecs = rb_u32(&r);
	v.tsc_khz = rb_u64(&r);
	v.xsave_size = rb_u32(&r);
	rb_bytes(&r, v.cpu_vendor, 12);
	v.nr_regions = rb_u32(&r);
	if (r.bad || v.nr_regions > WIRE_MAX_REGIONS)
		return -EBADMSG;
	for (uint32_t i = 0; i < v.nr_regions; i++) {
		v.regions[i].gpa = rb_u64(&r);
		v.regions[i].size = rb_u64(&r);
	}
	/*
	 * The HELLO body up to the regions is frozen for every version; a
	 * peer that also speaks newer versions may append fields we skip.
	 */
	if (r.bad || (!rb_done(&r) && v.ver_max <= WIRE_VERSION_MAX))
		return -EBADMSG;
	if (hello_valid(&v))
		return -EBADMSG;
	*out = v;
	return 0;
}

static bool same_layout(const struct wire_hello *a, const struct wire_hello *b)
{
	if (a->nr_regions != b->nr_regions)
		return false;
	for (uint32_t i = 0; i < a->nr_regions; i++)
		if (a->regions[i].gpa != b->regions[i].gpa ||
		    a->regions[i].size != b->regions[i].size)
			return false;
	return true;
}

/* Both masks offered: keep what both know; unchecked raw needs the hash. */
static uint32_t common_features(uint32_t a, uint32_t b)
{
	uint32_t f = a & b & WIRE_FEAT_ALL;

	if (!(f & WIRE_FEAT_RAM_HASH))
		f &= ~WIRE_FEAT_RAW_UNCHECKED;
	return f;
}

int wire_negotiate(const struct wire_hello *local, const struct wire_hello *peer,
		   struct wire_hello_ack *ack, struct wire_error *err)
{
	uint16_t lo = local->ver_min > peer->ver_min ? local->ver_min : peer->ver_min;
	uint16_t hi = local->ver_max < peer->ver_max ? local->ver_max : peer->ver_max;

	if (lo < WIRE_VERSION_MIN)
		lo = WIRE_VERSION_MIN;
	if (hi > WIRE_VERSION_MAX)
		hi = WIRE_VERSION_MAX;
	if (lo > hi) {
		wire_error_set(err, WIRE_ERR_VERSION, EPROTONOSUPPORT,
			       "protocol version: we speak %u..%u, peer offers %u..%u",
			       local->ver_min, local->ver_max, peer->ver_min, peer->ver_max);
		return -EPROTONOSUPPORT;
	}
	if (local->page_size != peer->page_size) {
		wire_error_set(err, WIRE_ERR_PAGE_SIZE, EINVAL,
			       "page size: ours %u, peer's %u", local->page_size, peer->page_size);
		return -EINVAL;
	}
	if (!same_layout(local, peer)) {
		uint32_t i = 0;

		while (i < local->nr_regions && i < peer->nr_regions &&
		       local->regions[i].gpa == peer->regions[i].gpa &&
		       local->regions[i].size == peer->regions[i].size)
			i++;
		wire_error_set(err, WIRE_ERR_LAYOUT, EINVAL,
			       "memory layout: %u regions here, %u from peer; first difference at region %u (ours %#llx+%#llx, peer's %#llx+%#llx)",
			       local->nr_regions, peer->nr_regions, i,
			       i < local->nr_regions ? (unsigned long long)local->regions[i].gpa : 0ull,
			       i < local->nr_regions ? (unsigned long long)local->regions[i].size : 0ull,
			       i < peer->nr_regions ? (unsigned long long)peer->regions[i].gpa : 0ull,
			       i < peer->nr_regions ? (unsigned long long)peer->regions[i].size : 0ull);
		return -EINVAL;
	}
	if (local->nr_vcpus != peer->nr_vcpus) {
		wire_error_set(err, WIRE_ERR_VCPUS, EINVAL,
			       "vCPUs: ours %u, peer's %u", local->nr_vcpus, peer->nr_vcpus);
		return -EINVAL;
	}
	if (local->cpu_vendor[0] && peer->cpu_vendor[0] &&
	    strcmp(local->cpu_vendor, peer->cpu_vendor)) {
		wire_error_set(err, WIRE_ERR_CPU, EINVAL, "CPU vendor: ours %s, peer's %s",
			       local->cpu_vendor, peer->cpu_vendor);
		return -EINVAL;
	}
	if (local->xsave_size && peer->xsave_size > local->xsave_size) {
		wire_error_set(err, WIRE_ERR_CPU, EINVAL,
			       "xsave area: peer's %u bytes do not fit our %u",
			       peer->xsave_size, local->xsave_size);
		return -EINVAL;
	}
	if ((local->session_id && local->session_id != peer->session_id) ||
	    (local->nr_channels && local->nr_channels != peer->nr_channels)) {
		wire_error_set(err, WIRE_ERR_SESSION, EINVAL,
			       "session %#llx with %u channels expected, peer says %#llx with %u",
			       (unsigned long long)local->session_id, local->nr_channels,
			       (unsigned long long)peer->session_id, peer->nr_channels);
		return -EINVAL;
	}
	memset(ack, 0, sizeof(*ack));
	ack->version = hi;
	ack->features = common_features(local->features, peer->features);
	ack->codecs = local->codecs & peer->codecs & WIRE_CODECS_ALL;
	ack->nr_channels = peer->nr_channels;
	ack->channel_idx = peer->channel_idx;
	ack->session_id = peer->session_id;
	return 0;
}

ssize_t wire_enc_hello_ack(struct wire_stream *s, void *buf, size_t cap,
			   const struct wire_hello_ack *a)
{
	struct wbuf w;
	int ret;

	ret = wire_msg_start(s, WIRE_HELLO_ACK, buf, cap, &w);
	if (ret)
		return ret;
	wb_u16(&w, a->version);
	wb_u16(&w, 0);
	wb_u32(&w, a->features);
	wb_u32(&w, a->codecs);
	wb_u16(&w, a->nr_channels);
	wb_u16(&w, a->channel_idx);
	wb_u64(&w, a->session_id);
	return wire_msg_finish(s, WIRE_HELLO_ACK, buf, &w);
}

int wire_dec_hello_ack(const struct wire_hdr *h, const void *p, struct wire_hello_ack *out)
{
	struct wire_hello_ack v;
	struct rbuf r;
	uint16_t rsvd;
	int ret;

	ret = wire_msg_begin(h, WIRE_HELLO_ACK, p, &r);
	if (ret)
		return ret;
	v.version = rb_u16(&r);
	rsvd = rb_u16(&r);
	v.features = rb_u32(&r);
	v.codecs = rb_u32(&r);
	v.nr_channels = rb_u16(&r);
	v.channel_idx = rb_u16(&r);
	v.session_id = rb_u64(&r);
	if (!rb_done(&r) || rsvd || !v.version || (v.features & ~WIRE_FEAT_ALL) ||
	    (v.codecs & ~WIRE_CODECS_ALL) || !(v.codecs & WIRE_CODEC_BIT(WIRE_CODEC_RAW)))
		return -EBADMSG;
	*out = v;
	return 0;
}

int wire_check_ack(const struct wire_hello *sent, const struct wire_hello_ack *ack,
		   struct wire_error *err)
{
	if (ack->version < sent->ver_min || ack->version > sent->ver_max ||
	    ack->version < WIRE_VERSION_MIN || ack->version > WIRE_VERSION_MAX) {
		wire_error_set(err, WIRE_ERR_VERSION, EPROTONOSUPPORT,
			       "peer chose version %u, we offered %u..%u",
			       ack->version, sent->ver_min, sent->ver_max);
		return -EPROTONOSUPPORT;
	}
	if ((ack->features & ~common_features(sent->features, WIRE_FEAT_ALL)) ||
	    (ack->codecs & ~sent->codecs)) {
		wire_error_set(err, WIRE_ERR_FEATURES, EPROTO,
			       "peer chose features %#x codecs %#x, we offered %#x %#x",
			       ack->features, ack->codecs, sent->features, sent->codecs);
		return -EPROTO;
	}
	if ((ack->features & WIRE_FEAT_RAW_UNCHECKED) && !(ack->features & WIRE_FEAT_RAM_HASH)) {
		wire_error_set(err, WIRE_ERR_FEATURES, EPROTO,
			       "unchecked raw pages chosen without the RAM hash");
		return -EPROTO;
	}
	if (ack->session_id != sent->session_id || ack->channel_idx != sent->channel_idx ||
	    ack->nr_channels != sent->nr_channels) {
		wire_error_set(err, WIRE_ERR_SESSION, EPROTO,
			       "acknowledged session %#llx channel %u/%u, we sent %#llx channel %u/%u",
			       (unsigned long long)ack->session_id, ack->channel_idx, ack->nr_channels,
			       (unsigned long long)sent->session_id, sent->channel_idx,
			       sent->nr_channels);
		return -EPROTO;
	}
	return 0;
}

/* ---- ERROR ---- */

static const char *const err_names[] = {
	[WIRE_ERR_VERSION] = "version",
	[WIRE_ERR_PAGE_SIZE] = "page-size",
	[WIRE_ERR_LAYOUT] = "layout",
	[WIRE_ERR_VCPUS] = "vcpus",
	[WIRE_ERR_CPU] = "cpu",
	[WIRE_ERR_FEATURES] = "features",
	[WIRE_ERR_SESSION] = "session",
	[WIRE_ERR_PROTOCOL] = "protocol",
	[WIRE_ERR_CHECKSUM] = "checksum",
	[WIRE_ERR_CODEC] = "codec",
	[WIRE_ERR_STATE] = "state",
	[WIRE_ERR_INCOMPLETE] = "incomplete",
	[WIRE_ERR_HASH] = "hash",
	[WIRE_ERR_INTERNAL] = "internal",
	[WIRE_ERR_CANCELLED] = "cancelled",
};

const char *wire_err_name(uint32_t code)
{
	if (code > WIRE_ERR_MAX || !err_names[code])
		return "unknown";
	return err_names[code];
}

void wire_error_set(struct wire_error *e, uint32_t code, int err, const char *fmt, ...)
{
	va_list ap;

	if (!e)
		return;
	e->code = code;
	e->err = err < 0 ? -err : err;
	va_start(ap, fmt);
	vsnprintf(e->text, sizeof(e->text), fmt, ap);
	va_end(ap);
}

ssize_t wire_enc_error(struct wire_stream *s, void *buf, size_t cap, const struct wire_error *e)
{
	size_t n = strnlen(e->text, sizeof(e->text));
	struct wbuf w;
	int ret;

	if (!e->code || n > WIRE_MAX_TEXT)
		return -EINVAL;
	ret = wire_msg_start(s, WIRE_ERROR, buf, cap, &w);
	if (ret)
		return ret;
	wb_u32(&w, e->code);
	wb_u32(&w, e->err);
	wb_u16(&w, n);
	wb_u16(&w, 0);
	wb_bytes(&w, e->text, n);
	return wire_msg_finish(s, WIRE_ERROR, buf, &w);
}

int wire_dec_error(const struct wire_hdr *h, const void *p, struct wire_error *out)
{
	const uint8_t *text;
	uint16_t n, rsvd;
	uint32_t code, err;
	struct rbuf r;
	int ret;

	ret = wire_msg_begin(h, WIRE_ERROR, p, &r);
	if (ret)
		return ret;
	code = rb_u32(&r);
	err = rb_u32(&r);
	n = rb_u16(&r);
	rsvd = rb_u16(&r);
	if (r.bad || rsvd || !code || n > WIRE_MAX_TEXT)
		return -EBADMSG;
	text = rb_take(&r, n);
	if (!rb_done(&r) || memchr(text, 0, n))
		return -EBADMSG;
	/* Unknown codes from a newer peer are still errors: keep the code. */
	out->code = code;
	out->err = err;
	memcpy(out->text, text, n);
	out->text[n] = 0;
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

ssize_t wire_seal_pages(struct wire_stream *s, const struct wire_pages *pg,
			const struct iovec *iov, unsigned int niov, bool unchecked)
{
	size_t meta = WIRE_PAGES_META + (size_t)pg->nr_pages * WIRE_DESC_SIZE;
	size_t total = 0, len;
	struct wbuf w;

	for (unsigned int i = 0; i < niov; i++)
		total += iov[i].iov_len;
	if (!allowed(s, WIRE_PAGES, true) || pg->round != s->tx_round ||
	    !pg->nr_pages || pg->nr_pages > WIRE_MAX_BATCH || pg->nr_data > pg->nr_pages ||
	    pg->codec >= WIRE_NR_CODECS || !(s->codecs & WIRE_CODEC_BIT(pg->codec)) ||
	    (pg->cflags & ~WIRE_PF_ALL) || iov[0].iov_len < WIRE_HDR_SIZE + meta ||
	    total != WIRE_HDR_SIZE + meta + pg->data_len ||
	    (unchecked && (pg->codec != WIRE_CODEC_RAW ||
			   !(s->features & WIRE_FEAT_RAW_UNCHECKED))))
		return -EINVAL;
	wb_init(&w, (uint8_t *)iov[0].iov_base + WIRE_HDR_SIZE, WIRE_PAGES_META);
	wb_u32(&w, pg->round);
	wb_u8(&w, pg->codec);
	wb_u8(&w, pg->cflags);
	wb_u16(&w, 0);
	wb_u16(&w, pg->nr_pages);
	wb_u16(&w, pg->nr_data);
	wb_u32(&w, pg->data_len);
	len = seal(s, WIRE_PAGES, unchecked ? WIRE_HF_TAIL_UNCHECKED : 0, iov, niov,
		   unchecked ? meta : meta + pg->data_len);
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
	v.data = rb_take(&r, v.data_len);
	if (!rb_done(&r))
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
	if (h->flags & WIRE_HF_TAIL_UNCHECKED) {
		if (v.codec != WIRE_CODEC_RAW ||
		    h->csum_len != WIRE_PAGES_META + (size_t)v.nr_pages * WIRE_DESC_SIZE)
			return -EBADMSG;
	}
	if (!(s->codecs & WIRE_CODEC_BIT(v.codec)) || v.round != s->rx_round)
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

/* ---- COMPLETE, CONFIRM ---- */

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
	v.ram_hash = rb_u64(&r);
	if (!rb_done(&r) || rsvd || (v.flags & ~WIRE_COMPLETE_HASH) ||
	    (!(v.flags & WIRE_COMPLETE_HASH) && v.ram_hash) ||
	    !v.nr_vcpus || v.nr_vcpus > WIRE_MAX_VCPUS)
		return -EBADMSG;
	*out = v;
	return 0;
}

ssize_t wire_enc_confirm(struct wire_stream *s, void *buf, size_t cap, const struct wire_confirm *c)
{
	struct wbuf w;
	int ret;

	if (c->flags & ~WIRE_CONFIRM_HASH_CHECKED)
		return -EINVAL;
	ret = wire_msg_start(s, WIRE_CONFIRM, buf, cap, &w);
	if (ret)
		return ret;
	wb_u32(&w, c->status);
	wb_u32(&w, c->flags);
	wb_u64(&w, c->ram_hash);
	return wire_msg_finish(s, WIRE_CONFIRM, buf, &w);
}

int wire_dec_confirm(const struct wire_hdr *h, const void *p, struct wire_confirm *out)
{
	struct wire_confirm v;
	struct rbuf r;
	int ret;

	ret = wire_msg_begin(h, WIRE_CONFIRM, p, &r);
	if (ret)
		return ret;
	v.status = rb_u32(&r);
	v.flags = rb_u32(&r);
	v.ram_hash = rb_u64(&r);
	if (!rb_done(&r) || (v.flags & ~WIRE_CONFIRM_HASH_CHECKED))
		return -EBADMSG;
	*out = v;
	return 0;
}

/* ---- RAM hash ---- */

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
