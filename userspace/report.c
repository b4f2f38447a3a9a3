// SPDX-License-Identifier: GPL-2.0
/*
 * Migration reports, for people and for tools.
 */
#include <inttypes.h>
#include <string.h>

#include "report.h"

#define MIB (1024.0 * 1024.0)

static double ms(uint64_t ns)
{
	return ns / 1e6;
}

static double mibps(uint64_t bytes, uint64_t ns)
{
	return ns ? bytes / MIB / (ns / 1e9) : 0;
}

void report_progress(void *ctx, const struct migrate_progress *p)
{
	FILE *f = ctx;
	char exp[32];

	if (p->expected_downtime_ns == UINT64_MAX)
		snprintf(exp, sizeof(exp), "unknown");
	else
		snprintf(exp, sizeof(exp), "%.0f ms", ms(p->expected_downtime_ns));
	fprintf(f, "round %u: %" PRIu64 " pages sent (%.1f MiB on the wire, %.1f MiB/s), "
		"%" PRIu64 " dirty since, expected downtime %s, throttle %u%%\n",
		p->round, p->pages_sent, p->wire_bytes / MIB, p->mibps, p->next_dirty, exp,
		p->throttle);
	fflush(f);
}

static double ratio(uint64_t a, uint64_t b)
{
	return b ? (double)a / b : 0;
}

void report_text(FILE *f, const struct migrate_report *r)
{
	const struct transport_stats *n = &r->net_total;
	const struct wire_tx_stats *c = &r->codec;

	if (r->ok)
		fprintf(f, "migration (%s): succeeded\n", r->role);
	else if (!strcmp(r->role, "source") && r->outcome == MIGRATE_UNCERTAIN)
		fprintf(f, "migration (%s): IN DOUBT: %s\n", r->role, r->outcome_why);
	else
		fprintf(f, "migration (%s): FAILED: %s\n", r->role, r->error);
	if (!strcmp(r->role, "source") && r->outcome_why[0])
		fprintf(f, "  outcome          %s: %s\n",
			r->outcome == MIGRATE_MIGRATED ? "migrated" :
			r->outcome == MIGRATE_UNCERTAIN ? "in doubt" : "not migrated, the VM runs here",
			r->outcome_why);
	if (r->session_id)
		fprintf(f, "  session          %016" PRIx64 "\n", r->session_id);
	fprintf(f, "  guest            %.0f MiB, %u vCPUs\n", r->mem_bytes / MIB, r->nr_vcpus);
	if (r->backend[0])
		/* The reason names the backend it picked. */
		fprintf(f, "  dirty tracking   %s\n", r->backend_why[0] ? r->backend_why : r->backend);
	fprintf(f, "  channels         %u (%s transport)", r->channels,
		r->transport[0] ? r->transport : "?");
	for (unsigned int i = 0; i < r->channels && i < MIGRATE_MAX_CHANNELS; i++)
		if (r->peers[i][0])
			fprintf(f, "%s%s", i ? ", " : ": ", r->peers[i]);
	fprintf(f, "\n");
	if (r->security[0])
		fprintf(f, "  security         %s\n", r->security);
	fprintf(f, "  total time       %.1f ms", ms(r->total_ns));
	if (r->precopy_ns)
		fprintf(f, " (pre-copy %.1f ms in %u rounds)", ms(r->precopy_ns),
			r->nr_rounds ? r->nr_rounds - 1 : 0);
	fprintf(f, "\n");
	if (r->downtime_ns) {
		const struct migrate_downtime *d = &r->down, *e = &r->expected;

		fprintf(f, "  downtime         %.1f ms, pause to resume there (estimated %.1f ms)\n",
			ms(r->downtime_ns), ms(e->total_ns));
		fprintf(f, "    %-30s %9s %9s\n", "part", "ms", "estimate");
		fprintf(f, "    %-30s %9.1f %9.1f\n", "pause and final harvest", ms(d->harvest_ns), ms(e->harvest_ns));
		fprintf(f, "      of which pausing %.1f ms, collecting the dirty log %.1f ms\n",
			ms(r->pause_ns), ms(r->collect_ns));
		fprintf(f, "    %-30s %9.1f %9.1f\n", "final pages", ms(d->pages_ns), ms(e->pages_ns));
		fprintf(f, "    %-30s %9.1f %9.1f\n", "vCPU and VM state", ms(d->state_ns), ms(e->state_ns));
		fprintf(f, "      of which saving it %.1f ms\n", ms(r->state_save_ns));
		if (d->ram_hash_ns || e->ram_hash_ns)
			fprintf(f, "    %-30s %9.1f %9.1f\n", "RAM hash (--verify-ram)", ms(d->ram_hash_ns),
				ms(e->ram_hash_ns));
		fprintf(f, "    %-30s %9.1f %9.1f\n", "apply, check, load (there)", ms(d->apply_ns), ms(e->apply_ns));
		fprintf(f, "      of which waiting for the last pages %.1f ms, checking %.1f ms, loading %.1f ms\n",
			ms(r->apply_wait_ns), ms(r->apply_check_ns), ms(r->apply_restore_ns));
		fprintf(f, "    %-30s %9.1f %9.1f\n", "READY, COMMIT on the wire", ms(d->commit_ns), ms(e->commit_ns));
		fprintf(f, "      of which COMPLETE and READY in flight %.1f ms, READY to COMMIT %.1f ms, COMMIT in flight %.1f ms (held there %.1f ms)\n",
			ms(r->commit_flights_ns), ms(r->commit_decide_ns), ms(r->commit_owd_ns),
			ms(r->commit_hold_ns));
		fprintf(f, "    %-30s %9.1f %9.1f\n", "resume (there)", ms(d->resume_ns), ms(e->resume_ns));
	}
	if (r->probe_ns)
		fprintf(f, "  switch probe     the guest paused %.1f ms (of %.1f) after round 0 to time the pause, the state save and the resume\n",
			ms(r->probe_ns), ms(r->probe_wall_ns));
	if (r->setup_ns) {
		char hash_speed[64] = "";

		if (r->hash_speed_ns)
			snprintf(hash_speed, sizeof(hash_speed), " timing the RAM hash %.1f,",
				 ms(r->hash_speed_ns));
		fprintf(f, "  setup            %.1f ms before round 0: connect and handshake %.1f,%s dirty tracking on %.1f\n",
			ms(r->setup_ns), ms(r->connect_ns), hash_speed, ms(r->track_start_ns));
	}
	if (r->teardown_ns)
		fprintf(f, "  teardown         %.1f ms after the total (threads, sockets, dirty tracking off)\n",
			ms(r->teardown_ns));
	if (r->fixed_over)
		fprintf(f, "  downtime limit   the switchover's fixed costs alone were expected to exceed it\n");
	if (r->shrink_rounds)
		fprintf(f, "  pre-copy         %u round%s more after the rest fitted, to shrink the pause\n",
			r->shrink_rounds, r->shrink_rounds == 1 ? "" : "s");
	if (r->guest_ops_end > r->guest_ops_start)
		fprintf(f, "  guest progress   %" PRIu64 " -> %" PRIu64 " operations %s\n",
			r->guest_ops_start, r->guest_ops_end,
			r->ok && !strcmp(r->role, "source") ? "(start to pause)" : "");
	if (r->guest_max_gap_ns)
		fprintf(f, "  longest stall    %.1f ms between two of the guest's progress reports before the pause\n",
			ms(r->guest_max_gap_ns));
	if (r->apply_stale)
		fprintf(f, "  applied by round %" PRIu64 " pages skipped: a newer round had arrived first\n",
			r->apply_stale);
	if (r->guest_bad_pages >= 0)
		fprintf(f, "  guest memory check %" PRId64 " bad pages\n", r->guest_bad_pages);
	if (r->digest)
		fprintf(f, "  page digest      %016" PRIx64 " (equal on both sides)\n", r->digest);
	if (r->ram_hash)
		fprintf(f, "  RAM hash         %016" PRIx64 "%s\n", r->ram_hash,
			r->hash_checked ? " (checked by the destination)" : "");
	if (r->pages_changed)
		fprintf(f, "  changed in flight %" PRIu64 " pages differed from their hash (written while sent; sent again later)\n",
			r->pages_changed);
	fprintf(f, "  pages            %" PRIu64 " sent, %" PRIu64 " zero, %.1f MiB on the wire\n",
		r->pages, r->zero_pages, r->wire_bytes / MIB);
	if (c->raw_bytes)
		fprintf(f, "  codec            %s: %.1f MiB of data pages -> %.1f MiB (ratio %.2f), %.0f MiB/s per core compressing, %" PRIu64 " batches sent raw\n",
			r->codec_name, c->raw_bytes / MIB, (c->wire_bytes) / MIB,
			ratio(c->wire_bytes, c->raw_bytes + c->zero_pages * 16),
			c->comp_ns ? c->comp_bytes / MIB / (c->comp_ns / 1e9) : 0,
			c->fallbacks + c->skipped + c->link_probes);
	if (c->raw_bytes && strcmp(r->codec_name, "raw"))
		fprintf(f, "  codec choice     link %.1f MiB/s per channel (%s), compressor %.1f MiB/s per channel at ratio %.2f; raw: %" PRIu64 " did not pay, %" PRIu64 " did not shrink, %" PRIu64 " measured the link\n",
			c->link_bps / MIB / (r->channels ? r->channels : 1),
			!c->link_bps ? "unknown: compressing while it saves 10%" :
			c->link_measured ? "TCP's delivery rate" : "--bandwidth",
			c->speed / MIB, c->ratio, c->skipped, c->fallbacks, c->link_probes);
	if (n->zc_sends)
		fprintf(f, "  zero copy        %" PRIu64 " sends, %" PRIu64 " completions, %" PRIu64 " copied by the kernel, %" PRIu64 " ENOBUFS\n",
			n->zc_sends, n->zc_completions, n->zc_copied, n->zc_enobufs);
	if (n->zc_stopped)
		fprintf(f, "  zero copy off    on %" PRIu64 " channel%s: the kernel copied every zero-copy send (loopback, veth), so they sent by copy (--zerocopy-always keeps asking)\n",
			n->zc_stopped, n->zc_stopped == 1 ? "" : "s");
	if (r->yield_over_round >= 0)
		fprintf(f, "  auto-converge    senders at nice 0 from round %d (the guest dirtied too fast while they yielded)\n",
			r->yield_over_round);
	if (r->max_throttle)
		fprintf(f, "  auto-converge    vCPUs throttled up to %u%%\n", r->max_throttle);
	if (r->guest_errors)
		fprintf(f, "  guest self-check %" PRIu64 " ERRORS\n", r->guest_errors);
	if (r->nr_rounds) {
		fprintf(f, "  round      pages       zero   wire MiB       ms    MiB/s  dirty after  exp. downtime  throttle\n");
		for (unsigned int i = 0; i < r->nr_rounds; i++) {
			const struct migrate_round *x = &r->rounds[i];

			fprintf(f, "  %5u%s %10" PRIu64 " %10" PRIu64 " %10.2f %8.1f %8.1f ", x->round,
				x->final ? "*" : " ", x->pages, x->zero_pages, x->wire_bytes / MIB,
				ms(x->ns), mibps(x->pages * 4096, x->ns));
			if (x->final)
				fprintf(f, "%12s %14s %8s\n", "-", "(final)", "-");
			else
				fprintf(f, "%12" PRIu64 " %11.0f ms %7u%%\n", x->dirty_after,
					x->expected_downtime_ns == UINT64_MAX ? -1 :
					ms(x->expected_downtime_ns), x->throttle);
		}
	}
	if (r->nr_rounds) {
		fprintf(f, "  round   where the time went, ms (channels summed): harvest   read pages   compress   send   wait for link   then: ack   idle\n");
		for (unsigned int i = 0; i < r->nr_rounds; i++) {
			const struct migrate_round *x = &r->rounds[i];

			fprintf(f, "  %5u%s %50.1f %12.1f %10.1f %6.1f %15.1f %11.1f %6.1f\n", x->round,
				x->final ? "*" : " ", ms(x->harvest_ns), ms(x->time.read_ns),
				ms(x->time.comp_ns), ms(x->time.send_ns), ms(x->time.link_ns),
				ms(x->ack_wait_ns), ms(x->pad_ns));
		}
	}
	if (r->channels > 1)
		for (unsigned int i = 0; i < r->channels && i < MIGRATE_MAX_CHANNELS; i++)
			fprintf(f, "  channel %-2u       %s: %.1f MiB, %.1f MiB/s\n", i, r->peers[i],
				(r->net[i].bytes_sent + r->net[i].bytes_received) / MIB,
				transport_stats_mibps(&r->net[i]));
	fflush(f);
}

void report_json_str(FILE *f, const char *s)
{
	fputc('"', f);
	for (; *s; s++) {
		unsigned char ch = *s;

		if (ch == '"' || ch == '\\')
			fprintf(f, "\\%c", ch);
		else if (ch < 0x20)
			fprintf(f, "\\u%04x", ch);
		else
			fputc(ch, f);
	}
	fputc('"', f);
}

static const char *const step_names[MIGRATE_NR_STEPS] = {
	[MIGRATE_AT_PAUSE] = "pause",
	[MIGRATE_AT_COMPLETE] = "complete",
	[MIGRATE_AT_APPLIED] = "applied",
	[MIGRATE_AT_READY] = "ready",
	[MIGRATE_AT_COMMIT] = "commit",
	[MIGRATE_AT_STARTED] = "started",
};

static void json_downtime(FILE *f, const char *name, const struct migrate_downtime *d)
{
	fprintf(f, ",\"%s\":{\"harvest_ms\":%.3f,\"pages_ms\":%.3f,\"state_ms\":%.3f,"
		"\"ram_hash_ms\":%.3f,\"apply_ms\":%.3f,\"commit_ms\":%.3f,\"resume_ms\":%.3f,"
		"\"total_ms\":%.3f}", name, ms(d->harvest_ns), ms(d->pages_ns), ms(d->state_ns),
		ms(d->ram_hash_ns), ms(d->apply_ns), ms(d->commit_ns), ms(d->resume_ns),
		ms(d->total_ns));
}

void report_json(FILE *f, const struct migrate_report *r)
{
	const struct wire_tx_stats *c = &r->codec;

	fprintf(f, "{\"role\":\"%s\",\"ok\":%s,\"cancelled\":%s,\"error\":", r->role,
		r->ok ? "true" : "false", r->cancelled ? "true" : "false");
	report_json_str(f, r->error);
	fprintf(f, ",\"backend\":");
	report_json_str(f, r->backend);
	fprintf(f, ",\"codec\":");
	report_json_str(f, r->codec_name);
	fprintf(f, ",\"transport\":");
	report_json_str(f, r->transport);
	fprintf(f, ",\"encryption\":\"%s\",\"security\":",
		r->crypto == TRANSPORT_CRYPTO_KERNEL ? "ktls" :
		r->crypto == TRANSPORT_CRYPTO_USER ? "userspace" : "none");
	report_json_str(f, r->security);
	fprintf(f, ",\"mem_bytes\":%" PRIu64 ",\"vcpus\":%u,\"channels\":%u", r->mem_bytes,
		r->nr_vcpus, r->channels);
	fprintf(f, ",\"outcome\":\"%s\",\"outcome_why\":",
		r->outcome == MIGRATE_MIGRATED ? "migrated" :
		r->outcome == MIGRATE_UNCERTAIN ? "in-doubt" : "not-migrated");
	report_json_str(f, r->outcome_why);
	fprintf(f, ",\"session\":\"%016" PRIx64 "\"", r->session_id);
	fprintf(f, ",\"clock_start_ns\":%" PRIu64, r->clock_start_ns);
	fprintf(f, ",\"timeline_ms\":{");
	for (unsigned int i = 0; i < MIGRATE_NR_STEPS; i++)
		fprintf(f, "%s\"%s\":%.3f", i ? "," : "", step_names[i],
			r->at_ns[i] && r->at_ns[i] >= r->clock_start_ns ?
			ms(r->at_ns[i] - r->clock_start_ns) : -1.0);
	fprintf(f, "}");
	fprintf(f, ",\"total_ms\":%.3f,\"precopy_ms\":%.3f,\"downtime_ms\":%.3f",
		ms(r->total_ns), ms(r->precopy_ns), ms(r->downtime_ns));
	json_downtime(f, "downtime_parts", &r->down);
	json_downtime(f, "downtime_expected", &r->expected);
	fprintf(f, ",\"harvest_parts\":{\"pause_ms\":%.3f,\"collect_ms\":%.3f}", ms(r->pause_ns),
		ms(r->collect_ns));
	fprintf(f, ",\"commit_parts\":{\"flights_ms\":%.3f,\"decide_ms\":%.3f,\"owd_ms\":%.3f}",
		ms(r->commit_flights_ns), ms(r->commit_decide_ns), ms(r->commit_owd_ns));
	fprintf(f, ",\"commit_hold_ms\":%.3f", ms(r->commit_hold_ns));
	fprintf(f, ",\"state_parts\":{\"save_ms\":%.3f,\"send_ms\":%.3f}", ms(r->state_save_ns),
		ms(r->down.state_ns > r->state_save_ns ? r->down.state_ns - r->state_save_ns : 0));
	fprintf(f, ",\"probe_parts\":{\"pause_ms\":%.3f,\"save_ms\":%.3f,\"reads_ms\":%.3f,"
		"\"resume_ms\":%.3f}", ms(r->probe_pause_ns), ms(r->probe_save_ns),
		ms(r->probe_load_ns), ms(r->probe_resume_ns));
	fprintf(f, ",\"apply_parts\":{\"wait_ms\":%.3f,\"check_ms\":%.3f,\"restore_ms\":%.3f}",
		ms(r->apply_wait_ns), ms(r->apply_check_ns), ms(r->apply_restore_ns));
	fprintf(f, ",\"probe_ms\":%.3f,\"release_ms\":%.3f", ms(r->probe_ns), ms(r->release_ns));
	fprintf(f, ",\"setup_ms\":%.3f,\"teardown_ms\":%.3f", ms(r->setup_ns), ms(r->teardown_ns));
	fprintf(f, ",\"setup_parts\":{\"connect_ms\":%.3f,\"hash_speed_ms\":%.3f,\"track_start_ms\":%.3f}",
		ms(r->connect_ns), ms(r->hash_speed_ns), ms(r->track_start_ns));
	fprintf(f, ",\"probe_wall_ms\":%.3f", ms(r->probe_wall_ns));
	fprintf(f, ",\"fixed_over\":%s,\"shrink_rounds\":%u,\"digest\":\"%016" PRIx64 "\",\"pages_changed\":%" PRIu64,
		r->fixed_over ? "true" : "false", r->shrink_rounds, r->digest, r->pages_changed);
	fprintf(f, ",\"ram_hash\":\"%016" PRIx64 "\",\"hash_checked\":%s", r->ram_hash,
		r->hash_checked ? "true" : "false");
	fprintf(f, ",\"pages\":%" PRIu64 ",\"zero_pages\":%" PRIu64 ",\"wire_bytes\":%" PRIu64,
		r->pages, r->zero_pages, r->wire_bytes);
	fprintf(f, ",\"codec_stats\":{\"batches\":%" PRIu64 ",\"data_pages\":%" PRIu64
		",\"raw_bytes\":%" PRIu64 ",\"wire_bytes\":%" PRIu64 ",\"raw_batches\":%" PRIu64
		",\"lz4_batches\":%" PRIu64 ",\"zstd_batches\":%" PRIu64 ",\"fallbacks\":%" PRIu64
		",\"skipped\":%" PRIu64 ",\"link_probes\":%" PRIu64 ",\"comp_bytes\":%" PRIu64
		",\"comp_ms\":%.3f,\"comp_mibps\":%.1f,\"ratio_est\":%.4f,\"link_mibps\":%.1f"
		",\"link_measured\":%s}",
		c->batches, c->data_pages, c->raw_bytes, c->wire_bytes,
		c->by_codec[WIRE_CODEC_RAW], c->by_codec[WIRE_CODEC_LZ4], c->by_codec[WIRE_CODEC_ZSTD],
		c->fallbacks, c->skipped, c->link_probes, c->comp_bytes, ms(c->comp_ns),
		c->speed / MIB, c->ratio, c->link_bps / MIB, c->link_measured ? "true" : "false");
	fprintf(f, ",\"net\":");
	transport_stats_json(f, &r->net_total);
	fprintf(f, ",\"channel_stats\":[");
	for (unsigned int i = 0; i < r->channels && i < MIGRATE_MAX_CHANNELS; i++) {
		fprintf(f, "%s{\"peer\":", i ? "," : "");
		report_json_str(f, r->peers[i]);
		fprintf(f, ",\"mibps\":%.3f,\"nice\":%d,\"nice_final\":%d,\"stats\":",
			transport_stats_mibps(&r->net[i]), r->nice[i], r->nice_final[i]);
		transport_stats_json(f, &r->net[i]);
		fprintf(f, "}");
	}
	fprintf(f, "],\"max_throttle\":%u,\"yield_over_round\":%d", r->max_throttle,
		r->yield_over_round);
	fprintf(f, ",\"apply\":{\"data\":%" PRIu64 ",\"zero\":%" PRIu64 ",\"stale\":%" PRIu64 "}",
		r->apply_data, r->apply_zero, r->apply_stale);
	fprintf(f, ",\"guest\":{\"ops_start\":%" PRIu64 ",\"ops_end\":%" PRIu64
		",\"errors\":%" PRIu64 ",\"bad_pages\":%" PRId64 ",\"max_gap_ms\":%.3f}",
		r->guest_ops_start, r->guest_ops_end, r->guest_errors, r->guest_bad_pages,
		ms(r->guest_max_gap_ns));
	fprintf(f, ",\"rounds\":[");
	for (unsigned int i = 0; i < r->nr_rounds; i++) {
		const struct migrate_round *x = &r->rounds[i];

		fprintf(f, "%s{\"round\":%u,\"final\":%s,\"pages\":%" PRIu64 ",\"zero_pages\":%" PRIu64
			",\"wire_bytes\":%" PRIu64 ",\"ms\":%.3f,\"harvest_ms\":%.3f,\"kick_ms\":%.3f"
			",\"ack_wait_ms\":%.3f,\"pad_ms\":%.3f,\"dirty_after\":%" PRIu64
			",\"expected_downtime_ms\":%.3f,\"bound_downtime_ms\":%.3f,\"expected_fixed_ms\":%.3f"
			",\"throttle\":%u,\"nice\":%d,\"read_ms\":%.3f,\"scan_ms\":%.3f"
			",\"comp_ms\":%.3f,\"send_ms\":%.3f,\"link_ms\":%.3f,\"cap_ms\":%.3f"
			",\"cpu_wait_ms\":%.3f,\"cpu_ms\":%.3f,\"guest_cpu_ms\":%.3f,\"host_cpu_ms\":%.3f}",
			i ? "," : "", x->round, x->final ? "true" : "false", x->pages, x->zero_pages,
			x->wire_bytes, ms(x->ns), ms(x->harvest_ns),
			x->kick_ns == UINT64_MAX ? -1.0 : ms(x->kick_ns), ms(x->ack_wait_ns),
			ms(x->pad_ns), x->dirty_after,
			x->expected_downtime_ns == UINT64_MAX ? -1.0 : ms(x->expected_downtime_ns),
			x->bound_downtime_ns == UINT64_MAX ? -1.0 : ms(x->bound_downtime_ns),
			ms(x->expected_fixed_ns), x->throttle, x->nice, ms(x->time.read_ns), ms(x->time.scan_ns), ms(x->time.comp_ns), ms(x->time.send_ns),
			ms(x->time.link_ns), ms(x->time.cap_ns), ms(x->time.cpu_wait_ns),
			ms(x->time.cpu_ns), ms(x->guest_cpu_ns), ms(x->host_cpu_ns));
	}
	fprintf(f, "]}\n");
	fflush(f);
}
