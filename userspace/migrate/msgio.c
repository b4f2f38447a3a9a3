// SPDX-License-Identifier: GPL-2.0
/*
 * Message I/O over a transport channel.
 */
#include <errno.h>
#include <stdlib.h>

#include "migrate/msgio.h"
#include "wire/record.h"

int msgbuf_init(struct msgbuf *m)
{
	m->buf = malloc(WIRE_MAX_MSG);
	if (!m->buf)
		return -ENOMEM;
	m->payload = m->buf + WIRE_HDR_SIZE;
	return 0;
}

void msgbuf_release(struct msgbuf *m)
{
	free(m->buf);
	m->buf = NULL;
}

int msg_send(struct transport_chan *ch, const void *buf, ssize_t len)
{
	struct iovec iov = { .iov_base = (void *)buf, .iov_len = len };
	transport_ticket_t t;

	if (len < 0)
		return (int)len;
	return transport_send(ch, &iov, 1, TRANSPORT_SEND_COPY, &t);
}

int msg_recv(struct transport_chan *ch, struct wire_stream *s, struct msgbuf *m,
	     uint32_t timeout_ms, struct wire_error *err)
{
	int ret;

	ret = transport_poll_recv(ch, timeout_ms ? (int)timeout_ms : -1);
	if (ret <= 0)
		return ret ? ret : -ETIMEDOUT;
	ret = transport_recv(ch, m->buf, WIRE_HDR_SIZE);
	if (ret)
		return ret;
	ret = wire_hdr_parse(m->buf, &m->hdr);
	if (ret)
		return ret;
	ret = transport_recv(ch, m->buf + WIRE_HDR_SIZE, m->hdr.len);
	if (ret)
		return ret;
	ret = wire_recv_check(s, &m->hdr, m->payload);
	if (ret)
		return ret;
	record_input(m->hdr.type, m->buf, WIRE_HDR_SIZE + m->hdr.len);
	if (m->hdr.type == WIRE_ERROR) {
		struct wire_error tmp;

		if (!err)
			err = &tmp;
		ret = wire_dec_error(&m->hdr, m->payload, err);
		return ret ? ret : -ECONNABORTED;
	}
	return 0;
}

void msg_send_error(struct transport_chan *ch, struct wire_stream *s, const struct wire_error *e)
{
	uint8_t buf[WIRE_HDR_SIZE + WIRE_MAX_TEXT + 64];

	msg_send(ch, buf, wire_enc_error(s, buf, sizeof(buf), e));
}
