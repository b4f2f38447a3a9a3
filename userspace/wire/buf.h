/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Little-endian field writer and reader for the wire format (private to
 * userspace/wire/).  Both keep a sticky error flag so that an encoder or
 * decoder reads as a plain list of fields and checks once at the end;
 * a reader past the end yields zeros and never touches memory it was not
 * given.
 */
#ifndef VMDIRTY_WIRE_BUF_H
#define VMDIRTY_WIRE_BUF_H

#include <endian.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

struct wbuf {
	uint8_t *p;
	size_t len, cap;
	bool overflow;
};

struct rbuf {
	const uint8_t *p;
	size_t len, off;
	bool bad;
};

static inline void wb_init(struct wbuf *w, void *p, size_t cap)
{
	w->p = p;
	w->len = 0;
	w->cap = cap;
	w->overflow = false;
}

static inline uint8_t *wb_reserve(struct wbuf *w, size_t n)
{
	uint8_t *at;

	if (w->overflow || n > w->cap - w->len) {
		w->overflow = true;
		return NULL;
	}
	at = w->p + w->len;
	w->len += n;
	return at;
}

static inline void wb_bytes(struct wbuf *w, const void *src, size_t n)
{
	uint8_t *at = wb_reserve(w, n);

	if (at && n)
		memcpy(at, src, n);
}

static inline void wb_u8(struct wbuf *w, uint8_t v)
{
	wb_bytes(w, &v, 1);
}

static inline void wb_u16(struct wbuf *w, uint16_t v)
{
	v = htole16(v);
	wb_bytes(w, &v, 2);
}

static inline void wb_u32(struct wbuf *w, uint32_t v)
{
	v = htole32(v);
	wb_bytes(w, &v, 4);
}

static inline void wb_u64(struct wbuf *w, uint64_t v)
{
	v = htole64(v);
	wb_bytes(w, &v, 8);
}

static inline void rb_init(struct rbuf *r, const void *p, size_t len)
{
	r->p = p;
	r->len = len;
	r->off = 0;
	r->bad = false;
}

static inline size_t rb_left(const struct rbuf *r)
{
	return r->len - r->off;
}

/* Pointer to the next n bytes, or NULL (and the reader goes bad). */
static inline const uint8_t *rb_take(struct rbuf *r, size_t n)
{
	const uint8_t *at;

	if (r->bad || n > rb_left(r)) {
		r->bad = true;
		return NULL;
	}
	at = r->p + r->off;
	r->off += n;
	return at;
}

static inline void rb_bytes(struct rbuf *r, void *dst, size_t n)
{
	const uint8_t *at = rb_take(r, n);

	if (at)
		memcpy(dst, at, n);
	else
		memset(dst, 0, n);
}

static inline uint8_t rb_u8(struct rbuf *r)
{
	uint8_t v;

	rb_bytes(r, &v, 1);
	return v;
}

static inline uint16_t rb_u16(struct rbuf *r)
{
	uint16_t v;

	rb_bytes(r, &v, 2);
	return le16toh(v);
}

static inline uint32_t rb_u32(struct rbuf *r)
{
	uint32_t v;

	rb_bytes(r, &v, 4);
	return le32toh(v);
}

static inline uint64_t rb_u64(struct rbuf *r)
{
	uint64_t v;

	rb_bytes(r, &v, 8);
	return le64toh(v);
}

/* A reader is good when nothing over-ran and every byte was consumed. */
static inline bool rb_done(const struct rbuf *r)
{
	return !r->bad && r->off == r->len;
}

#endif
