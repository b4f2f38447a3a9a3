// SPDX-License-Identifier: GPL-2.0
/*
 * What the kernel knows of a channel's link: TCP's delivery rate estimate
 * (tcp_rate.c), from TCP_INFO.  Apart from transport.c because the
 * kernel's struct tcp_info (<linux/tcp.h>, with the rate fields) and
 * glibc's <netinet/tcp.h> cannot be included together.
 */
#include <errno.h>
#include <netinet/in.h>
#include <stddef.h>
#include <string.h>
#include <sys/socket.h>

#include <linux/tcp.h>

#include "wire/transport_priv.h"

int transport_link(struct transport_chan *ch, struct transport_link *out)
{
	struct tcp_info ti;
	socklen_t len = sizeof(ti);

	if (!ch || !out)
		return tp_err(-EINVAL, "link: no channel");
	memset(out, 0, sizeof(*out));
	memset(&ti, 0, sizeof(ti));
	if (getsockopt(ch->fd, IPPROTO_TCP, TCP_INFO, &ti, &len) < 0)
		return tp_err(-errno, "%s: TCP_INFO: %s", ch->peer, strerror(errno));
	/* Kernels before 4.9 have no delivery rate. */
	if (len < offsetof(struct tcp_info, tcpi_delivery_rate) + sizeof(ti.tcpi_delivery_rate))
		return tp_err(-EOPNOTSUPP, "%s: TCP_INFO has no delivery rate", ch->peer);
	out->delivery_bps = ti.tcpi_delivery_rate;
	out->app_limited = ti.tcpi_delivery_rate_app_limited;
	out->rtt_us = ti.tcpi_rtt;
	if (len >= offsetof(struct tcp_info, tcpi_delivered) + sizeof(ti.tcpi_delivered))
		out->delivered = ti.tcpi_delivered;
	return 0;
}
