/* SPDX-License-Identifier: GPL-2.0 */
/* Message framing helpers shared by proto.c and state.c (private to wire/). */
#ifndef VMDIRTY_WIRE_INTERNAL_H
#define VMDIRTY_WIRE_INTERNAL_H

#include "wire/buf.h"
#include "wire/proto.h"

/* Check that s may send type and point w at the payload space of buf. */
int wire_msg_start(struct wire_stream *s, uint8_t type, void *buf, size_t cap, struct wbuf *w);
/* Header and checksums for the payload w wrote; message length or -ENOSPC. */
ssize_t wire_msg_finish(struct wire_stream *s, uint8_t type, void *buf, const struct wbuf *w);
/* Reader over the payload of a checked message of the given type. */
int wire_msg_begin(const struct wire_hdr *h, uint8_t type, const void *p, struct rbuf *r);

#endif
