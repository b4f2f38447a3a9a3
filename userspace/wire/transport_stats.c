// SPDX-License-Identifier: GPL-2.0
/*
 * Channel statistics: one channel's, sums of several, and their JSON.
 */
#include <string.h>

#include "wire/transport_priv.h"

static void span_add(struct transport_stats *sum, const struct transport_stats *st)
{
	if (st->first_ns && (!sum->first_ns || st->first_ns < sum->first_ns))
		sum->first_ns = st->first_ns;
	if (st->last_ns > sum->last_ns)
		sum->last_ns = st->last_ns;
}

void transport_stats_add(struct transport_stats *sum, const struct transport_stats *st)
{
	sum->bytes_sent += st->bytes_sent;
	sum->bytes_received += st->bytes_received;
	sum->sends += st->sends;
	sum->send_calls += st->send_calls;
	sum->recv_calls += st->recv_calls;
	sum->zc_sends += st->zc_sends;
	sum->zc_bytes += st->zc_bytes;
	sum->zc_completions += st->zc_completions;
	sum->zc_copied += st->zc_copied;
	sum->zc_enobufs += st->zc_enobufs;
	sum->zc_stopped += st->zc_stopped;
	sum->copied_sends += st->copied_sends;
	sum->notifications += st->notifications;
	sum->waits += st->waits;
	sum->send_ns += st->send_ns;
	sum->full_ns += st->full_ns;
	sum->recv_ns += st->recv_ns;
	sum->wait_ns += st->wait_ns;
	span_add(sum, st);
}

void transport_get_stats(const struct transport_chan *ch, struct transport_stats *st)
{
	memset(st, 0, sizeof(*st));
	if (!ch)
		return;
	transport_stats_add(st, &ch->tx);
	transport_stats_add(st, &ch->rx);
}

double transport_stats_mibps(const struct transport_stats *st)
{
	uint64_t span = st->last_ns - st->first_ns;

	if (!st->first_ns || !span)
		return 0;
	return (double)(st->bytes_sent + st->bytes_received) / (1 << 20) / (span / 1e9);
}

void transport_stats_json(FILE *f, const struct transport_stats *st)
{
	fprintf(f, "{\"bytes_sent\": %llu, \"bytes_received\": %llu, \"sends\": %llu, "
		"\"send_calls\": %llu, \"recv_calls\": %llu, \"zc_sends\": %llu, "
		"\"zc_bytes\": %llu, \"zc_completions\": %llu, \"zc_copied\": %llu, "
		"\"zc_enobufs\": %llu, \"zc_stopped\": %llu, \"copied_sends\": %llu, "
		"\"notifications\": %llu, "
		"\"waits\": %llu, \"send_s\": %.6f, \"full_s\": %.6f, \"recv_s\": %.6f, \"wait_s\": %.6f, "
		"\"active_s\": %.6f, \"mib_per_s\": %.1f}",
		(unsigned long long)st->bytes_sent, (unsigned long long)st->bytes_received,
		(unsigned long long)st->sends, (unsigned long long)st->send_calls,
		(unsigned long long)st->recv_calls, (unsigned long long)st->zc_sends,
		(unsigned long long)st->zc_bytes, (unsigned long long)st->zc_completions,
		(unsigned long long)st->zc_copied, (unsigned long long)st->zc_enobufs,
		(unsigned long long)st->zc_stopped, (unsigned long long)st->copied_sends,
		(unsigned long long)st->notifications,
		(unsigned long long)st->waits, st->send_ns / 1e9, st->full_ns / 1e9, st->recv_ns / 1e9,
		st->wait_ns / 1e9,
		st->first_ns ? (st->last_ns - st->first_ns) / 1e9 : 0.0,
		transport_stats_mibps(st));
}
