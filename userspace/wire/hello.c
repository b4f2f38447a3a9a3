// SPDX-License-Identifier: GPL-2.0
/*
 * The handshake: HELLO, HELLO_ACK, ERROR, and the comparison of the two
 * sides that decides between an ACK and a clear ERROR (protocol.rst,
 * "HELLO").
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "wire/internal.h"

static bool is_pow2(uint64_t v)
{
	return v && !(v & (v - 1));
}

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

/*
 * Both masks offered: keep what both know.  Raw pages sent by reference are
 * covered end to end by the page digest, whatever else is chosen.
 */
static uint32_t common_features(uint32_t a, uint32_t b)
{
	return a & b & WIRE_FEAT_ALL;
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
	[WIRE_ERR_DISCARDED] = "discarded",
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
