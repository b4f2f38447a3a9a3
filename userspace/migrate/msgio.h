/* SPDX-License-Identifier: GPL-2.0 */
/*
 * One protocol message on one channel: encode-and-send for the small
 * control messages, and receive-and-check for everything.
 */
#ifndef VMDIRTY_MSGIO_H
#define VMDIRTY_MSGIO_H

#include <stddef.h>
#include <stdint.h>

#include "wire/proto.h"
#include "wire/transport.h"

/* A receive buffer big enough for any message. */
struct msgbuf {
	uint8_t *buf;			/* WIRE_MAX_MSG bytes */
	struct wire_hdr hdr;
	const uint8_t *payload;		/* buf + WIRE_HDR_SIZE */
};

int msgbuf_init(struct msgbuf *m);
void msgbuf_release(struct msgbuf *m);

/* Send len bytes of an encoded message by copy (control messages). */
int msg_send(struct transport_chan *ch, const void *buf, ssize_t len);

/*
 * Wait up to timeout_ms (0: no limit) for the next message to start
 * arriving (-ETIMEDOUT if it does not), then receive it whole and check it against s
 * (checksum, sequence, what this role may receive).  A received ERROR is
 * decoded into *err (if not NULL) and returns -ECONNABORTED.  Other errors:
 * the transport's (-ENODATA: peer closed) or the decoder's.
 */
int msg_recv(struct transport_chan *ch, struct wire_stream *s, struct msgbuf *m,
	     uint32_t timeout_ms, struct wire_error *err);

/* Encode e on s and send it, best effort (the channel may be broken). */
void msg_send_error(struct transport_chan *ch, struct wire_stream *s, const struct wire_error *e);

#endif
