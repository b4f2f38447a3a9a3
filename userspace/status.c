// SPDX-License-Identifier: GPL-2.0
/*
 * vmdirty status: the module's sessions and per-vCPU counters, read over
 * generic netlink (nl.c).  --watch refreshes them, shows per-vCPU dirty
 * rates between refreshes and prints session events as they arrive.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <linux/vmdirty.h>

#include "cmd.h"
#include "nl.h"

struct status_opts {
	bool json, watch;
	unsigned int interval_ms;
	unsigned long count;		/* watch: refreshes, 0 = until interrupted */
};

/* The previous refresh, for rates. */
struct status_prev {
	struct vmdirty_genl_session *s;
	size_t n;
	uint64_t ns;
};

static volatile sig_atomic_t status_stop;

static void status_sigint(int sig)
{
	status_stop = 1;
}

static uint64_t mono_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + ts.tv_nsec;
}

static void status_usage(FILE *f)
{
	fprintf(f,
		"usage: vmdirty status [--json] [--watch [--interval MS] [--count N]]\n"
		"  The vmdirty.ko sessions (generic netlink family \"%s\"), with per-vCPU\n"
		"  ring counters.\n"
		"  --json          one JSON object (with --watch: one per line)\n"
		"  --watch         refresh every --interval ms (default 1000), with per-vCPU\n"
		"                  dirty rates, and print session events as they arrive\n"
		"  --count N       with --watch: stop after N refreshes\n",
		VMDIRTY_GENL_NAME);
}

/* Rate of vCPU idx of session s since the previous refresh, or -1. */
static double vcpu_rate(const struct status_prev *prev, const struct vmdirty_genl_session *s,
			const struct vmdirty_genl_vcpu *v, uint64_t now)
{
	if (!prev || !prev->s || now <= prev->ns)
		return -1;
	for (size_t i = 0; i < prev->n; i++) {
		const struct vmdirty_genl_session *p = &prev->s[i];

		if (p->id != s->id)
			continue;
		for (unsigned int j = 0; j < p->nr_vcpu_entries; j++)
			if (p->vcpus[j].idx == v->idx && v->entries >= p->vcpus[j].entries)
				return (double)(v->entries - p->vcpus[j].entries) * 1e9 /
				       (double)(now - prev->ns);
	}
	return -1;
}

static void flags_text(uint32_t flags, char *buf, size_t len)
{
	snprintf(buf, len, "%s%s%s%s", flags & VMDIRTY_SESSION_F_DRAINING ? " draining" : "",
		 flags & VMDIRTY_SESSION_F_STALE ? " layout-stale" : "",
		 flags & VMDIRTY_SESSION_F_CONFLICT ? " ring-conflict" : "",
		 flags & ~(VMDIRTY_SESSION_F_DRAINING | VMDIRTY_SESSION_F_STALE |
			   VMDIRTY_SESSION_F_CONFLICT) ? " +unknown" : "");
}

static void print_session_text(const struct vmdirty_genl_session *s,
			       const struct status_prev *prev, uint64_t now)
{
	char fl[64];

	flags_text(s->flags, fl, sizeof(fl));
	printf("session %" PRIu32 ": owner pid %" PRIu32 ", VM pid %" PRIu32
	       ", %" PRIu32 " vCPUs, %" PRIu32 " slots, %" PRIu64 " pages tracked, layout gen %" PRIu32 "%s%s%s\n",
	       s->id, s->owner_pid, s->vm_pid, s->nr_vcpus, s->nr_slots, s->tracked_pages,
	       s->layout_gen, fl[0] ? " [" : "", fl[0] ? fl + 1 : "", fl[0] ? "]" : "");
	printf("  harvests %" PRIu64 ", drains %" PRIu64 ", entries %" PRIu64 ", resets %" PRIu64
	       ", dropped %" PRIu64 ", live %" PRIu64 " pages",
	       s->harvests, s->drains, s->entries, s->resets, s->dropped, s->live_pages);
	if (s->flags & VMDIRTY_SESSION_F_DRAINING)
		printf(", drain interval %" PRIu32 " us", s->drain_interval_us);
	printf("\n");
	if (!s->nr_vcpu_entries)
		return;
	printf("  %5s %6s %15s %14s %12s %14s\n", "vcpu", "id", "ring used/size",
	       "entries", "last", "entries/s");
	for (unsigned int i = 0; i < s->nr_vcpu_entries; i++) {
		const struct vmdirty_genl_vcpu *v = &s->vcpus[i];
		double r = vcpu_rate(prev, s, v, now);
		char ring[32];

		snprintf(ring, sizeof(ring), "%" PRIu32 "/%" PRIu32, v->ring_used, v->ring_size);
		printf("  %5" PRIu32 " %6" PRIu32 " %15s %14" PRIu64 " %12" PRIu64, v->idx, v->id,
		       ring, v->entries, v->last_entries);
		if (r >= 0)
			printf(" %14.0f\n", r);
		else
			printf(" %14s\n", "-");
	}
}

static void print_session_json(const struct vmdirty_genl_session *s,
			       const struct status_prev *prev, uint64_t now)
{
	printf("{\"id\":%" PRIu32 ",\"flags\":%" PRIu32 ",\"draining\":%s,\"stale\":%s,\"conflict\":%s"
	       ",\"owner_pid\":%" PRIu32 ",\"vm_pid\":%" PRIu32 ",\"layout_gen\":%" PRIu32
	       ",\"nr_slots\":%" PRIu32 ",\"nr_vcpus\":%" PRIu32 ",\"drain_interval_us\":%" PRIu32
	       ",\"tracked_pages\":%" PRIu64 ",\"harvests\":%" PRIu64 ",\"drains\":%" PRIu64
	       ",\"entries\":%" PRIu64 ",\"resets\":%" PRIu64 ",\"dropped\":%" PRIu64
	       ",\"live_pages\":%" PRIu64,
	       s->id, s->flags, s->flags & VMDIRTY_SESSION_F_DRAINING ? "true" : "false",
	       s->flags & VMDIRTY_SESSION_F_STALE ? "true" : "false",
	       s->flags & VMDIRTY_SESSION_F_CONFLICT ? "true" : "false", s->owner_pid, s->vm_pid,
	       s->layout_gen, s->nr_slots, s->nr_vcpus, s->drain_interval_us, s->tracked_pages,
	       s->harvests, s->drains, s->entries, s->resets, s->dropped, s->live_pages);
	if (s->has_vcpus) {
		printf(",\"vcpus\":[");
		for (unsigned int i = 0; i < s->nr_vcpu_entries; i++) {
			const struct vmdirty_genl_vcpu *v = &s->vcpus[i];
			double r = vcpu_rate(prev, s, v, now);

			printf("%s{\"idx\":%" PRIu32 ",\"id\":%" PRIu32 ",\"ring_size\":%" PRIu32
			       ",\"ring_used\":%" PRIu32 ",\"entries\":%" PRIu64
			       ",\"last_entries\":%" PRIu64, i ? "," : "", v->idx, v->id,
			       v->ring_size, v->ring_used, v->entries, v->last_entries);
			if (r >= 0)
				printf(",\"entries_per_s\":%.0f", r);
			printf("}");
		}
		printf("]");
	}
	printf("}");
}

static void print_sessions(const struct status_opts *o, struct vmdirty_genl_session *s, size_t n,
			   const struct status_prev *prev, uint64_t now)
{
	if (o->json) {
		printf("{");
		if (o->watch)
			printf("\"time_ns\":%" PRIu64 ",", now);
		printf("\"sessions\":[");
		for (size_t i = 0; i < n; i++) {
			printf("%s", i ? "," : "");
			print_session_json(&s[i], prev, now);
		}
		printf("]}\n");
	} else {
		if (o->watch)
			printf("--- %.3f s\n", now / 1e9);
		if (!n)
			printf("no sessions\n");
		for (size_t i = 0; i < n; i++)
			print_session_text(&s[i], prev, now);
	}
	fflush(stdout);
}

static void print_event(void *ctx, enum vmdirty_genl_event ev, const struct vmdirty_genl_session *s)
{
	const struct status_opts *o = ctx;

	if (o->json) {
		printf("{\"event\":\"%s\",\"session\":", vmdirty_genl_event_name(ev));
		print_session_json(s, NULL, 0);
		printf("}\n");
	} else {
		printf("event: %s, session %" PRIu32 " (owner pid %" PRIu32 ", VM pid %" PRIu32
		       ", layout gen %" PRIu32 ")\n", vmdirty_genl_event_name(ev), s->id,
		       s->owner_pid, s->vm_pid, s->layout_gen);
	}
	fflush(stdout);
}

static int open_or_explain(struct vmdirty_genl **nl)
{
	int ret = vmdirty_genl_open(nl);

	if (ret == -ENOENT) {
		if (access("/dev/" VMDIRTY_DEVICE_NAME, F_OK) == 0)
			fprintf(stderr, "vmdirty status: /dev/%s exists but the module has no generic "
				"netlink family \"%s\" (a module without netlink reporting?)\n",
				VMDIRTY_DEVICE_NAME, VMDIRTY_GENL_NAME);
		else
			fprintf(stderr, "vmdirty status: the vmdirty module is not loaded (no generic "
				"netlink family \"%s\"); load it with 'insmod kmod/vmdirty.ko' or "
				"'modprobe vmdirty'\n", VMDIRTY_GENL_NAME);
	} else if (ret < 0) {
		fprintf(stderr, "vmdirty status: generic netlink: %s\n", strerror(-ret));
	}
	return ret;
}

static int status_watch(struct vmdirty_genl *nl, const struct status_opts *o)
{
	struct status_prev prev = { 0 };
	struct sigaction sa = { .sa_handler = status_sigint };
	unsigned long refreshes = 0;
	int ret;

	ret = vmdirty_genl_subscribe(nl);
	if (ret < 0) {
		fprintf(stderr, "vmdirty status: joining the \"%s\" group: %s\n",
			VMDIRTY_GENL_MCGRP, strerror(-ret));
		return ret;
	}
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	while (!status_stop) {
		struct vmdirty_genl_session *s = NULL;
		uint64_t now, next;
		size_t n = 0;

		ret = vmdirty_genl_list(nl, true, &s, &n);
		if (ret < 0) {
			fprintf(stderr, "vmdirty status: listing sessions: %s%s\n", strerror(-ret),
				ret == -ENOENT || ret == -EINVAL ? " (module unloaded?)" : "");
			break;
		}
		now = mono_ns();
		print_sessions(o, s, n, &prev, now);
		vmdirty_genl_free(prev.s, prev.n);
		prev = (struct status_prev){ .s = s, .n = n, .ns = now };
		if (o->count && ++refreshes >= o->count)
			break;
		next = now + o->interval_ms * 1000000ull;
		while (!status_stop && (now = mono_ns()) < next) {
			struct pollfd p = { .fd = vmdirty_genl_event_fd(nl), .events = POLLIN };

			if (poll(&p, 1, (int)((next - now + 999999) / 1000000)) > 0) {
				ret = vmdirty_genl_read_events(nl, print_event, (void *)o);
				if (ret == -ENOBUFS)
					fprintf(stderr, "vmdirty status: events lost (socket buffer full)\n");
				else if (ret < 0)
					fprintf(stderr, "vmdirty status: reading events: %s\n",
						strerror(-ret));
			}
		}
		ret = 0;
	}
	vmdirty_genl_free(prev.s, prev.n);
	return ret;
}

int cmd_status(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "json", no_argument, NULL, 'j' },
		{ "watch", no_argument, NULL, 'w' },
		{ "interval", required_argument, NULL, 'i' },
		{ "count", required_argument, NULL, 'n' },
		{ "help", no_argument, NULL, 'h' },
		{ 0 }
	};
	struct status_opts o = { .interval_ms = 1000 };
	struct vmdirty_genl *nl = NULL;
	char *end;
	int c, ret;

	optind = 1;
	while ((c = getopt_long(argc, argv, "jwi:n:h", longopts, NULL)) != -1) {
		switch (c) {
		case 'j': o.json = true; break;
		case 'w': o.watch = true; break;
		case 'i':
			errno = 0;
			o.interval_ms = strtoul(optarg, &end, 10);
			if (errno || *end || o.interval_ms < 10 || o.interval_ms > 3600000) {
				fprintf(stderr, "vmdirty status: --interval wants 10..3600000 ms\n");
				return 2;
			}
			break;
		case 'n':
			errno = 0;
			o.count = strtoul(optarg, &end, 10);
			if (errno || *end || !*optarg) {
				fprintf(stderr, "vmdirty status: --count wants a number\n");
				return 2;
			}
			break;
		case 'h':
			status_usage(stdout);
			return 0;
		default:
			status_usage(stderr);
			return 2;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "vmdirty status: unexpected argument '%s'\n", argv[optind]);
		status_usage(stderr);
		return 2;
	}
	if ((o.count || o.interval_ms != 1000) && !o.watch) {
		fprintf(stderr, "vmdirty status: --interval and --count need --watch\n");
		return 2;
	}

	if (open_or_explain(&nl) < 0)
		return 1;
	if (o.watch) {
		ret = status_watch(nl, &o);
	} else {
		struct vmdirty_genl_session *s = NULL;
		size_t n = 0;

		ret = vmdirty_genl_list(nl, true, &s, &n);
		if (ret < 0)
			fprintf(stderr, "vmdirty status: listing sessions: %s\n", strerror(-ret));
		else
			print_sessions(&o, s, n, NULL, mono_ns());
		vmdirty_genl_free(s, n);
	}
	vmdirty_genl_close(nl);
	return ret < 0 ? 1 : 0;
}
