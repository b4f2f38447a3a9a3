/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Live migration, pre-copy: the source side (source.c, its channel senders
 * in sender.c, the switchover in switch_src.c) and the destination side
 * (dest.c, switch_dst.c).  The wire format is Documentation/protocol.rst;
 * the handover and its states are Documentation/migration.rst.  Pages move
 * over transport channels (wire/transport.h), encoded by wire/codec.h.
 *
 * The guarantee: at most one copy of the guest ever runs, and a failure
 * never destroys the last copy.  Until the source commits (COMMIT, sent
 * only once the destination reported READY: everything loaded and checked,
 * nothing running), every failure leaves the VM running on the source.
 * After it, the source never resumes on its own: the destination decides,
 * and while its answer is missing the source stays paused (UNCERTAIN) and
 * asks it again (QUERY) until it learns the outcome.
 */
#ifndef VMDIRTY_MIGRATE_H
#define VMDIRTY_MIGRATE_H

#include <pthread.h>
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
/* The destination holds a READY copy this long for a COMMIT (or a QUERY). */
#define MIGRATE_DEFAULT_HOLD_MS		60000
/* Uncertain: the source asks the destination again this often. */
#define MIGRATE_RESOLVE_EVERY_MS	2000

/* How a migration ended, for the source (exit status 0, 1, 3). */
enum migrate_outcome {
	MIGRATE_NOT_MIGRATED,	/* the VM runs on the source */
	MIGRATE_MIGRATED,	/* the guest runs on the destination; the source's copy is gone */
	MIGRATE_UNCERTAIN,	/* committed, no answer: paused here, nothing known to run */
};

/*
 * Where the source is, and the operator's requests.  Shared between
 * migrate_source() and the caller's threads (control socket, signals);
 * migrate_ctl_*() take the lock.  The commit happens under it, so a cancel
 * either comes before the commit (and wins) or finds it done.
 */
enum migrate_phase {
	MIGRATE_IDLE,
	MIGRATE_PRECOPY,	/* rounds, vCPUs running */
	MIGRATE_SWITCHING,	/* paused, final pages and state, waiting for READY */
	MIGRATE_COMMITTED,	/* COMMIT sent: the destination decides */
	MIGRATE_IN_DOUBT,	/* committed, no answer: asking the destination */
	MIGRATE_DONE,
};

struct migrate_ctl {
	pthread_mutex_t lock;
	pthread_cond_t cond;
	enum migrate_phase phase;
	bool cancel;		/* before the commit: give up, the VM stays here */
	bool resolve_now;	/* in doubt: ask the destination now */
	bool force_resume;	/* in doubt: the operator says the destination never ran it */
	bool give_up;		/* in doubt: stop asking and return MIGRATE_UNCERTAIN */
	char why[256];		/* the cancel's reason */
};

void migrate_ctl_init(struct migrate_ctl *c);
void migrate_ctl_destroy(struct migrate_ctl *c);
/*
 * Cancel the migration in progress.  0: it will stop and the VM keeps
 * running here; -EALREADY: too late, the source committed (the destination
 * decides); -ENOENT: no migration in progress.
 */
int migrate_ctl_cancel(struct migrate_ctl *c, const char *why);
/* In doubt only (else -EINVAL): ask now / resume here on the operator's word / give up. */
int migrate_ctl_resolve(struct migrate_ctl *c);
int migrate_ctl_force_resume(struct migrate_ctl *c);
int migrate_ctl_give_up(struct migrate_ctl *c);
enum migrate_phase migrate_ctl_phase(struct migrate_ctl *c);
const char *migrate_phase_name(enum migrate_phase p);

/*
 * Where a round's sending time went, summed over its channels (so with
 * several channels the parts add up to more than the round's wall time).
 */
struct migrate_round_time {
	uint64_t read_ns;		/* reading pages: zero check, hashes, copies */
	uint64_t scan_ns;		/* of read_ns, finding the zero pages */
	uint64_t comp_ns;		/* compressing */
	uint64_t send_ns;		/* the kernel taking the bytes (sendmsg copying) */
	uint64_t link_ns;		/* waiting for the link: full socket buffer,
					 * --bandwidth, zero-copy completions */
	uint64_t cap_ns;		/* of link_ns, --bandwidth's waits */
	uint64_t cpu_wait_ns;		/* runnable, waiting for a CPU (schedstat) */
	uint64_t cpu_ns;		/* on a CPU (schedstat) */
};

/* One pre-copy round as it happened, for the report. */
struct migrate_round {
	uint32_t round;
	uint64_t pages;			/* pages sent (zero markers included) */
	uint64_t zero_pages;
	uint64_t wire_bytes;		/* PAGES bytes on the wire */
	uint64_t ns;			/* sending the round */
	uint64_t end_ns;		/* when its sending ended (CLOCK_MONOTONIC) */
	uint64_t harvest_ns;		/* the harvest that produced its set */
	uint64_t kick_ns;		/* after it: the vCPUs kicked out of KVM_RUN and
					 * back (a pause's latency); UINT64_MAX: all
					 * asleep, untimed */
	uint64_t ack_wait_ns;		/* after it: waiting for its ROUND_ACK
					 * (round 0: from the switch probe's end) */
	uint64_t pad_ns;		/* then idle, to ROUND_MIN_NS (source.c) */
	struct migrate_round_time time;	/* the senders' */
	uint64_t dirty_after;		/* harvested after it: the next set */
	uint64_t expected_downtime_ns;
	uint64_t bound_downtime_ns;	/* the same were the link no faster than --bandwidth */
	uint64_t expected_fixed_ns;	/* of it, the switchover's costs besides the pages */
	unsigned int throttle;		/* percent, during the round */
	int nice;			/* the senders' highest nice value in it */
	uint64_t guest_cpu_ns;		/* CPU time the vCPU threads took meanwhile */
	uint64_t host_cpu_ns;		/* CPU time the host's CPUs were busy meanwhile (/proc/stat) */
	bool final;			/* stop-and-copy */
};

/*
 * The downtime, from the source's pause to the destination's resume, in
 * parts (each also estimated before the pause, in expected).
 */
struct migrate_downtime {
	uint64_t harvest_ns;		/* the final harvest */
	uint64_t pages_ns;		/* the final round */
	uint64_t state_ns;		/* vCPU and VM state saved and sent */
	uint64_t ram_hash_ns;		/* --verify-ram only: both sides' full hash */
	uint64_t apply_ns;		/* destination: COMPLETE until READY (last pages
					 * applied, checks, state loaded); for the
					 * estimate, the drain time ROUND_ACK measured */
	uint64_t commit_ns;		/* READY and COMMIT on the wire (the round trip) */
	uint64_t resume_ns;		/* destination: COMMIT until the vCPUs ran */
	uint64_t total_ns;
};

/*
 * The handover's steps, when each happened on this side (CLOCK_MONOTONIC,
 * 0: not reached).  Source: pausing, COMPLETE sent, READY received, COMMIT
 * sent, STARTED received.  Destination: COMPLETE received, the last pages
 * applied, READY sent, COMMIT received, the guest running.  On one host
 * the two sides' lines show each message's flight.
 */
enum migrate_step {
	MIGRATE_AT_PAUSE,
	MIGRATE_AT_COMPLETE,
	MIGRATE_AT_APPLIED,
	MIGRATE_AT_READY,
	MIGRATE_AT_COMMIT,
	MIGRATE_AT_STARTED,
	MIGRATE_NR_STEPS,
};

/* Everything a final report and --json need. */
struct migrate_report {
	bool ok;			/* the guest runs on the destination */
	bool cancelled;			/* no convergence or cancel request */
	enum migrate_outcome outcome;	/* source */
	char outcome_why[256];		/* how it was decided, in words */
	uint64_t session_id;
	char error[WIRE_MAX_TEXT + 256];	/* why not, in words */
	const char *role;		/* "source" or "destination" */
	char backend[16];
	char backend_why[160];
	char codec_name[32];
	char transport[16];		/* the send backend channel 0 uses */
	char security[256];		/* what protects the channels, in words */
	enum transport_crypto crypto;
	unsigned int channels;
	char peers[MIGRATE_MAX_CHANNELS][64];
	int nice[MIGRATE_MAX_CHANNELS];	/* source: each sender's as pre-copy starts */
	int nice_final[MIGRATE_MAX_CHANNELS];	/* and in the final round */
	int yield_over_round;		/* source, --nice: the senders yield no more
					 * from this round on (auto-converge); -1: never */
	uint64_t mem_bytes;
	unsigned int nr_vcpus;
	/*
	 * CLOCK_MONOTONIC at the report's time zero (the first connect), so
	 * that a reader on the same host can place the report on its own
	 * clock (a console's timestamps, say); process start-up is not in it.
	 */
	uint64_t clock_start_ns;
	uint64_t at_ns[MIGRATE_NR_STEPS];	/* the handover's steps (enum migrate_step) */
	uint64_t total_ns;		/* first connect to confirmation (source: STARTED) */
	uint64_t precopy_ns;		/* rounds before the pause */
	uint64_t downtime_ns;		/* the source's pause to the destination's resume */
	struct migrate_downtime down;	/* its parts, as measured */
	struct migrate_downtime expected;	/* and as the estimate that ended pre-copy saw them */
	/* Parts split: pausing, collecting; saving, sending; waiting, checking, loading. */
	uint64_t pause_ns, collect_ns;
	uint64_t state_save_ns;
	/* The switch probe, the quicker of two: pausing the vCPUs, saving their
	 * and the VM's state, of the save the reads (what loading takes), and
	 * resuming (until every vCPU thread is on its way into KVM_RUN). */
	uint64_t probe_pause_ns, probe_save_ns, probe_load_ns, probe_resume_ns;
	uint64_t apply_wait_ns, apply_check_ns, apply_restore_ns;
	/* COMPLETE and READY in flight; READY to COMMIT here; COMMIT in flight. */
	uint64_t commit_flights_ns, commit_decide_ns, commit_owd_ns;
	/* There, COMMIT received to STARTED sent (STARTED's hold_ns; 0: not said). */
	uint64_t commit_hold_ns;
	bool fixed_over;		/* the estimate's fixed parts alone exceeded --downtime */
	unsigned int shrink_rounds;	/* rounds run after the rest fitted (--shrink-rounds) */
	uint64_t probe_ns;		/* the guest's stall when the switchover's costs were timed */
	uint64_t release_ns;		/* after STARTED: the kernel letting go of lent pages */
	uint64_t setup_ns;		/* first connect to dirty tracking started (source) */
	uint64_t connect_ns;		/* its parts: channels, handshakes, sender threads */
	uint64_t hash_speed_ns;		/* --verify-ram: timing the hash */
	uint64_t track_start_ns;	/* and dirty tracking on */
	uint64_t probe_wall_ns;		/* the switch probe after round 0, its gap included */
	uint64_t teardown_ns;		/* STARTED (or the failure) to the report (source) */
	uint64_t digest;		/* page digest, both sides equal */
	uint64_t ram_hash;		/* --verify-ram */
	bool hash_checked;
	uint64_t pages_changed;		/* destination: pages that changed while being sent */
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
	/* Destination: a source that committed without hearing back may still ask. */
	bool answer_pending;
};

void migrate_report_free(struct migrate_report *r);
/* The apply part and its split, as the destination measured it (READY). */
void migrate_report_apply(struct migrate_report *r, uint64_t wait_ns, uint64_t check_ns,
			  uint64_t restore_ns);

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
	unsigned int nice;		/* the senders' nice value (0-19) */
	enum wire_codec codec;
	int level;
	bool adaptive;			/* skip compression where it does not pay */
	struct transport_opts net;
	uint64_t bandwidth;		/* bytes/s, 0 = unlimited */
	struct converge_params conv;
	bool verify_ram;		/* also a full RAM hash at the switch (O(RAM) in the downtime) */
	uint32_t ready_timeout_ms;	/* COMPLETE sent until READY (0: 3 x the network timeout) */
	uint32_t commit_timeout_ms;	/* COMMIT sent until STARTED, then in doubt (0: likewise) */
	uint32_t resolve_every_ms;	/* in doubt: ask again this often */
	void (*progress)(void *ctx, const struct migrate_progress *p);
	void *progress_ctx;
	/* Messages for the operator (phase changes, in doubt): one line each. */
	void (*log)(void *ctx, const char *line);
	void *log_ctx;
	struct migrate_ctl *ctl;	/* optional: cancel and resolve from other threads */
};

void migrate_source_opts_init(struct migrate_source_opts *o);

/*
 * Migrate vm, running under r and tracked by t (created, not started), to
 * the destination(s).  0: the destination runs the guest; the runner here is
 * stopped (paused for good) and the VM must not run again.  < 0 and
 * rep->outcome == MIGRATE_NOT_MIGRATED: the VM runs here as before;
 * rep->error says why.  -EINPROGRESS and MIGRATE_UNCERTAIN: the operator
 * gave up asking (migrate_ctl_give_up()) while in doubt: the VM is paused
 * here and must not run again unless the destination is known never to
 * have run it.
 */
int migrate_source(struct vm *vm, struct vm_runner *r, struct tracker *t,
		   const struct migrate_source_opts *o, struct migrate_report *rep);

struct migrate_dest_opts {
	const char *listen[MIGRATE_MAX_DESTS];
	unsigned int nr_listen;
	struct transport_opts net;
	uint32_t accept_timeout_ms;	/* 0: wait forever for the first channel */
	uint32_t hold_ms;		/* READY: keep the copy this long for a COMMIT */
	enum track_backend backend;	/* for the VM created here */
	uint64_t mem_size;		/* 0: take the source's; else must match */
	unsigned int nr_vcpus;		/* likewise */
	bool ram_memfd;			/* the VM's RAM in a memfd (vm_config) */
	/*
	 * This destination's own limits, checked before anything is sized:
	 * guest RAM (0: the host's MemAvailable when the HELLO comes) and
	 * vCPUs (0: the host's online CPUs).
	 */
	uint64_t max_mem;
	unsigned int max_vcpus;
	const struct vm_runner_hooks *hooks; /* for the runner started here */
	int debugcon_fd;		/* the guest's debug console (vm_set_debugcon), -1: none */
	void (*listening)(void *ctx, const char *addr, int port);
	void *listening_ctx;
	void (*log)(void *ctx, const char *line);
	void *log_ctx;
	struct migrate_dest_ctl *ctl;	/* optional: the operator's start/discard */
};

void migrate_dest_opts_init(struct migrate_dest_opts *o);

/*
 * The operator's word on a destination that holds a READY copy whose source
 * went silent: start it (the source is known to be gone for good: its
 * agent, and the VM in it, died before committing) or discard it.
 */
struct migrate_dest_ctl {
	pthread_mutex_t lock;
	bool start, discard;
	char state[32];		/* for status */
};
void migrate_dest_ctl_init(struct migrate_dest_ctl *c);
void migrate_dest_ctl_destroy(struct migrate_dest_ctl *c);
/* 0, or -EINVAL when there is no held copy to act on. */
int migrate_dest_ctl_start(struct migrate_dest_ctl *c);
int migrate_dest_ctl_discard(struct migrate_dest_ctl *c);

/*
 * After migrate_dest() the destination keeps answering its source's QUERY
 * about the session (on the same addresses) as long as this lives.
 */
struct migrate_answerer;
/* Wait until the session's source asked, for at most ms (0: forever); true if it did. */
bool migrate_answerer_wait(struct migrate_answerer *a, uint64_t ms);
void migrate_answerer_close(struct migrate_answerer *a);

/*
 * Wait for one incoming migration, receive it, load it, report READY and,
 * on COMMIT, resume the guest.  0: *vm runs under *r (the caller stops and
 * frees both).  < 0: nothing runs; rep->error says why.  Either way *ans
 * (if not NULL on return) answers QUERY until closed; rep->answer_pending
 * says that the source may still need the answer.
 */
int migrate_dest(const struct migrate_dest_opts *o, struct vm **vm, struct vm_runner **r,
		 struct migrate_answerer **ans, struct migrate_report *rep);

/*
 * Ask the destination at addr what became of session (QUERY with
 * WIRE_QUERY_COMMIT if commit).  0 and *outcome (enum wire_outcome), or
 * -errno (unreachable, refused, bad answer).
 */
int migrate_query(const char *addr, const struct transport_opts *net, uint64_t session,
		  bool commit, uint32_t *outcome);

/* HELLO's description of vm (hello.c); the caller adds session, channels, features. */
void migrate_hello_vm(const struct vm *vm, struct wire_hello *h);
/* vm's memslots as wire regions, vm->nr_slots of them. */
void migrate_vm_regions(const struct vm *vm, struct wire_region *r);

#endif
