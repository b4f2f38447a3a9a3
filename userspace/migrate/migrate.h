/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Live migration, pre-copy: the source side (source.c, its channel senders
 * in sender.c) and the destination side (dest.c).  The wire format is
 * Documentation/protocol.rst; pages move over transport channels
 * (wire/transport.h), encoded by wire/codec.h.
 *
 * The source's guarantee: until the destination confirms that the guest runs
 * there, every failure (peer gone, timeout, protocol error, no convergence,
 * cancel) leaves the VM running on the source, vCPUs resumed and unthrottled.
 */
#ifndef VMDIRTY_MIGRATE_H
#define VMDIRTY_MIGRATE_H

#include <stdbool.h>
#include <stdint.h>

#include "migrate/converge.h"
#include "track/track.h"
#include "vmm/vmm.h"
#include "wire/codec.h"
#include "wire/transport.h"

#define MIGRATE_MAX_DESTS	16
#define MIGRATE_MAX_CHANNELS	16
#define MIGRATE_DEFAULT_TIMEOUT_MS	10000

/*
 * Where a round's sending time went, summed over its channels (so with
 * several channels the parts add up to more than the round's wall time).
 */
struct migrate_round_time {
	uint64_t read_ns;		/* reading pages: zero check, hashes, copies */
	uint64_t comp_ns;		/* compressing */
	uint64_t send_ns;		/* the kernel taking the bytes (sendmsg copying) */
	uint64_t link_ns;		/* waiting for the link: full socket buffer,
					 * --bandwidth, zero-copy completions */
};

/* One pre-copy round as it happened, for the report. */
struct migrate_round {
	uint32_t round;
	uint64_t pages;			/* pages sent (zero markers included) */
	uint64_t zero_pages;
	uint64_t wire_bytes;		/* PAGES bytes on the wire */
	uint64_t ns;			/* sending the round */
	uint64_t harvest_ns;		/* the harvest that produced its set */
	struct migrate_round_time time;	/* the senders' */
	uint64_t dirty_after;		/* harvested after it: the next set */
	uint64_t expected_downtime_ns;
	unsigned int throttle;		/* percent, during the round */
	bool final;			/* stop-and-copy */
};

/* Everything a final report and --json need. */
struct migrate_report {
	bool ok;			/* destination confirmed */
	bool cancelled;			/* no convergence or cancel request */
	char error[WIRE_MAX_TEXT + 256];	/* why not, in words */
	const char *role;		/* "source" or "destination" */
	char backend[16];
	char backend_why[160];
	char codec_name[32];
	char transport[16];
	unsigned int channels;
	char peers[MIGRATE_MAX_CHANNELS][64];
	uint64_t mem_bytes;
	unsigned int nr_vcpus;
	uint64_t total_ns;		/* first connect to confirmation */
	uint64_t precopy_ns;		/* rounds before the pause */
	uint64_t downtime_ns;		/* vCPUs paused here until confirmed */
	uint64_t final_send_ns;		/* inside downtime: last pages and state */
	uint64_t hash_ns;		/* inside downtime: the RAM hash */
	uint64_t confirm_wait_ns;	/* inside downtime: waiting for the peer */
	uint64_t ram_hash;
	bool hash_checked;
	unsigned int nr_rounds;
	struct migrate_round *rounds;	/* nr_rounds, malloc'd */
	unsigned int max_throttle;
	uint64_t pages, zero_pages, wire_bytes, raw_bytes;
	struct wire_tx_stats codec;	/* all channels */
	struct transport_stats net[MIGRATE_MAX_CHANNELS];
	struct transport_stats net_total;
	/* Destination: how pages were applied (wire/apply.h). */
	uint64_t apply_data, apply_zero, apply_stale;
	/* The guest, seen from here. */
	uint64_t guest_ops_start;	/* source: migration start; destination: the switch */
	uint64_t guest_ops_end;		/* source: the pause; destination: the end of its run */
	uint64_t guest_errors;		/* self-check failures it reported */
	int64_t guest_bad_pages;	/* destination: its full memory check, -1 if not run */
	uint64_t guest_max_gap_ns;	/* source: longest time without a progress report */
};

void migrate_report_free(struct migrate_report *r);

/* Progress, once per round, for a terminal line. */
struct migrate_progress {
	uint32_t round;
	uint64_t dirty_pages;		/* set of the round just sent */
	uint64_t next_dirty;		/* harvested after it */
	uint64_t pages_sent, wire_bytes;
	double mibps;			/* page bytes/s of the round, MiB */
	uint64_t expected_downtime_ns;
	unsigned int throttle;
};

struct migrate_source_opts {
	const char *to[MIGRATE_MAX_DESTS];
	unsigned int nr_to;
	unsigned int channels;		/* round robin over to[] */
	enum wire_codec codec;
	int level;
	bool adaptive;			/* skip compression where it does not pay */
	struct transport_opts net;
	uint64_t bandwidth;		/* bytes/s, 0 = unlimited */
	struct converge_params conv;
	bool verify;			/* RAM hash checked by the destination */
	uint32_t confirm_timeout_ms;	/* for the destination to resume the guest */
	void (*progress)(void *ctx, const struct migrate_progress *p);
	void *progress_ctx;
	volatile int *cancel;		/* set non-zero (any thread) to cancel */
};

void migrate_source_opts_init(struct migrate_source_opts *o);

/*
 * Migrate vm, running under r and tracked by t (created, not started), to
 * the destination(s).  0: the destination runs the guest; the runner here is
 * stopped (paused for good) and the VM must not run again.  < 0: the VM
 * runs here as before; rep->error says why.
 */
int migrate_source(struct vm *vm, struct vm_runner *r, struct tracker *t,
		   const struct migrate_source_opts *o, struct migrate_report *rep);

struct migrate_dest_opts {
	const char *listen[MIGRATE_MAX_DESTS];
	unsigned int nr_listen;
	struct transport_opts net;
	uint32_t accept_timeout_ms;	/* 0: wait forever for the first channel */
	enum track_backend backend;	/* for the VM created here */
	uint64_t mem_size;		/* 0: take the source's; else must match */
	unsigned int nr_vcpus;		/* likewise */
	const struct vm_runner_hooks *hooks; /* for the runner started here */
	void (*listening)(void *ctx, const char *addr, int port);
	void *listening_ctx;
};

void migrate_dest_opts_init(struct migrate_dest_opts *o);

/*
 * Wait for one incoming migration, receive it, resume the guest and
 * confirm.  0: *vm runs under *r (the caller stops and frees both).
 * < 0: nothing runs; rep->error says why.
 */
int migrate_dest(const struct migrate_dest_opts *o, struct vm **vm, struct vm_runner **r,
		 struct migrate_report *rep);

/* HELLO's description of vm (hello.c); the caller adds session, channels, features. */
void migrate_hello_vm(const struct vm *vm, struct wire_hello *h);
/* vm's memslots as wire regions, vm->nr_slots of them. */
void migrate_vm_regions(const struct vm *vm, struct wire_region *r);

#endif
