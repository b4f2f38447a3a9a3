/* SPDX-License-Identifier: GPL-2.0 */
/*
 * When pre-copy stops: the expected downtime against the limit, auto-converge
 * (vCPU throttling, QEMU's cpu-throttle) and the bounds after which the
 * migration is cancelled.  Pure logic: no clock, no I/O.
 */
#ifndef VMDIRTY_CONVERGE_H
#define VMDIRTY_CONVERGE_H

#include <stdbool.h>
#include <stdint.h>

/* QEMU's defaults: downtime-limit 300 ms, cpu-throttle-initial 20,
 * cpu-throttle-increment 10, max-cpu-throttle 99, throttle-trigger-threshold 50. */
#define CONVERGE_DOWNTIME_MS		300
#define CONVERGE_THROTTLE_INITIAL	20
#define CONVERGE_THROTTLE_INCREMENT	10
#define CONVERGE_THROTTLE_MAX		99
#define CONVERGE_TRIGGER_PCT		50
#define CONVERGE_MAX_ROUNDS		30
#define CONVERGE_MAX_SECONDS		300
/*
 * Not QEMU's: once the rest fits, up to this many more rounds while each
 * leaves at most CONVERGE_SHRINK_PCT of what it sent dirty and the pages
 * are at least 1/CONVERGE_PAGES_SHARE of the pause (converge.c).
 */
#define CONVERGE_SHRINK_ROUNDS		2
#define CONVERGE_SHRINK_PCT		50
#define CONVERGE_PAGES_SHARE		3

struct converge_params {
	uint64_t downtime_ns;		/* expected downtime allowed */
	unsigned int max_rounds;	/* cancel after this many rounds */
	uint64_t max_ns;		/* cancel after this much pre-copy time */
	bool auto_converge;
	unsigned int throttle_initial;	/* percent */
	unsigned int throttle_increment;
	unsigned int throttle_max;
	unsigned int trigger_pct;	/* throttle when dirtied > this % of sent */
	bool yielding;			/* the senders leave the CPU to the guest (--nice) */
	unsigned int shrink_rounds;	/* rounds after the rest fits (0: stop, QEMU's way) */
};

/* What one pre-copy round did, and what the harvest after it found. */
struct converge_round {
	uint64_t pages;			/* pages sent with content (not zero markers) */
	uint64_t zero_pages;		/* pages sent as zero markers */
	uint64_t ns;			/* time the round took */
	uint64_t uncapped_ns;		/* of ns, all but --bandwidth's waits (0: all of ns) */
	uint64_t scan_ns;		/* of uncapped_ns, finding the zero pages */
	uint64_t wire_bytes;		/* the round's bytes on the wire */
	uint64_t cap_bps;		/* --bandwidth, bytes/s (0: none) */
	uint64_t cap_tokens;		/* bytes the cap lets go at once now (its bucket) */
	uint64_t cpu_wait_ns;		/* of ns, the senders runnable but waiting for a CPU */
	uint64_t guest_cpu_ns;		/* CPU time the guest's vCPUs took during the round */
	uint64_t others_cpu_ns;		/* CPU time the host gave anything but the senders (0: unknown) */
	uint64_t dirty_pages;		/* harvested after it: next round's set */
	uint64_t fixed_ns;		/* the switchover's costs besides the pages */
};

enum converge_action {
	CONVERGE_CONTINUE,		/* another round */
	CONVERGE_STOP_AND_COPY,		/* the rest fits in the downtime */
	CONVERGE_CANCEL,		/* bounds exceeded: keep the VM here */
};

struct converge_state {
	unsigned int round;		/* rounds completed */
	uint64_t elapsed_ns;		/* pre-copy time so far */
	unsigned int throttle;		/* percent the vCPUs should sleep */
	unsigned int high_rounds;	/* consecutive rounds dirtying too fast */
	bool yield_over;		/* auto-converge's first step: the senders yield no more */
	uint64_t page_rate;		/* pages/s the link carried last round */
	uint64_t page_ps;		/* a page's cost without the cap's waits, ps */
	uint64_t page_bytes;		/* a page's bytes on the wire */
	uint64_t expected_pages_ns;	/* the final round, for dirty_pages (no cap in the pause) */
	uint64_t expected_downtime_ns;	/* fixed_ns + expected_pages_ns */
	uint64_t bound_downtime_ns;	/* the same were the link no faster than the cap: ends pre-copy */
	bool fixed_over;		/* stopped although the fixed costs exceed the limit */
	unsigned int shrink_rounds;	/* rounds run although the rest fitted */
	bool shrinking;			/* the last decision was one of those */
	char why[160];			/* for CANCEL: a sentence for the user */
};

void converge_params_default(struct converge_params *p);
void converge_init(struct converge_state *s);
enum converge_action converge_next(struct converge_state *s, const struct converge_params *p,
				   const struct converge_round *r);

#endif
