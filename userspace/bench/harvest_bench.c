// SPDX-License-Identifier: GPL-2.0
/*
 * harvest_bench: the cost of one pre-copy round's harvest plus reset, per
 * round and per dirty page, for the three trackers side by side in one run:
 *
 *   bitmap         KVM_GET_DIRTY_LOG + KVM_CLEAR_DIRTY_LOG (manual protect)
 *   ring           userspace ring reaper + KVM_RESET_DIRTY_RINGS (QEMU-style)
 *   ring-sorted    the same reaper, each batch rewritten in gfn order before
 *                  the reset, as the module does: the fair baseline for it
 *   kmod           vmdirty.ko, gfn-sorted resets
 *   kmod-unsorted  vmdirty.ko, VMDIRTY_HARVEST_UNSORTED
 *
 * A round: every vCPU writes its share of the dirty set in its own slice of
 * the work area (random: distinct random pages, in random order; seq: one
 * contiguous run), then the tracker harvests.  The round's cost is the
 * harvest plus the ring-full exits handled while the guest wrote (that is
 * harvest work too).  Each mode runs on its own VM with the same seeds, so
 * every mode sees the same dirty sets; the four VMs live at once and take
 * turns round by round.  The median of a few rounds per
 * point is reported (TCG makes each large round take seconds of guest
 * writes, about 70 us per page: a full run is about 15M page writes).
 * Ratios compare against the best of bitmap, ring and ring-sorted in the
 * same run, and against ring-sorted alone: absolute times are inflated by
 * TCG in the test host, ratios are what to compare.  Every mode runs with
 * the same ring size (--ring).
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/utsname.h>
#include <unistd.h>

#include "track/backend.h"	/* track_now_ns() */
#include "track/track.h"
#include "vmm/vmm.h"

#define MAX_SIZES	8
#define MAX_REPS	15
#define MAX_VCFG	2
#define LIST_MAX	(GUEST_SCRATCH_SIZE / 8)
#define WORK_FIRST	(GUEST_WORK_BASE >> 12)
/* Points this large take seconds of guest time per round under TCG. */
#define BIG_SIZE	65536

enum { PAT_RANDOM, PAT_SEQ, NR_PATS };
static const char *const pat_names[NR_PATS] = { "random", "seq" };

struct mode {
	const char *name;
	enum track_backend backend;
	bool unsorted;
};

static const struct mode modes[] = {
	{ "bitmap", TRACK_BITMAP, false },
	{ "ring", TRACK_RING, false },
	{ "ring-sorted", TRACK_RING_SORTED, false },
	{ "kmod", TRACK_KMOD, false },
	{ "kmod-unsorted", TRACK_KMOD, true },
};
#define NR_MODES (sizeof(modes) / sizeof(modes[0]))
enum { M_BITMAP, M_RING, M_RING_SORTED, M_KMOD, M_KMOD_UNSORTED };

struct opts {
	uint64_t mem_mib;
	uint32_t ring;
	unsigned int reps, reps_big;	/* rounds per point; for sizes >= BIG_SIZE */
	unsigned int nr_sizes;
	uint64_t sizes[MAX_SIZES];
	unsigned int nr_vcfg;
	unsigned int vcfg[MAX_VCFG];
	bool verbose;
	const char *csv;
};

/* One point of the table for one mode. */
struct cell {
	bool done;
	const char *err;		/* why the mode could not run */
	unsigned int n;
	double cost[MAX_REPS];		/* ns: harvest + ring-full handling */
	double rf[MAX_REPS];		/* ring-full exits in the round */
	double rf_ns[MAX_REPS];
	double pages[MAX_REPS];		/* dirty pages in the log */
	double kernel[MAX_REPS];	/* kmod: the module's own duration */
	double total[MAX_REPS];		/* harvest alone */
};

static struct cell cells[MAX_VCFG][NR_PATS][MAX_SIZES][NR_MODES];
static char kmod_why[256];

/* One vCPU's share of a round. */
struct job {
	struct vcpu *v;
	struct tracker *t;
	int pat;
	uint64_t first, n;		/* pages of the slice it writes in */
	uint64_t k;			/* pages to write this round */
	uint32_t *perm;			/* random: a permutation of [0, n) */
	uint64_t rng;
	int ret;
};

static void *job_run(void *arg)
{
	struct job *j = arg;
	uint64_t args[GUEST_CMD_ARGS] = { 0 }, gpa;
	uint64_t *list = vcpu_scratch(j->v, &gpa);

	j->ret = 0;
	if (!j->k)
		return NULL;
	if (j->pat == PAT_SEQ) {
		uint64_t start = guest_rand_below(&j->rng, j->n - j->k + 1);

		args[0] = (j->first + start) << 12;
		args[1] = j->k;
		args[2] = 1;
		args[3] = 1;
		j->ret = vcpu_post(j->v, GUEST_CMD_WRITE_RANGE, args);
		if (!j->ret)
			j->ret = vcpu_run_cmd(j->v, tracker_ring_full_cb, j->t);
		return NULL;
	}
	/* Partial Fisher-Yates: k distinct pages of the slice, random order. */
	for (uint64_t i = 0; i < j->k; i++) {
		uint64_t r = i + guest_rand_below(&j->rng, j->n - i);
		uint32_t x = j->perm[i];

		j->perm[i] = j->perm[r];
		j->perm[r] = x;
	}
	for (uint64_t done = 0; done < j->k && !j->ret; ) {
		uint64_t c = j->k - done < LIST_MAX ? j->k - done : LIST_MAX;

		for (uint64_t i = 0; i < c; i++)
			list[i] = (j->first + j->perm[done + i]) << 12;
		args[0] = gpa;
		args[1] = c;
		j->ret = vcpu_post(j->v, GUEST_CMD_WRITE_LIST, args);
		if (!j->ret)
			j->ret = vcpu_run_cmd(j->v, tracker_ring_full_cb, j->t);
		done += c;
	}
	return NULL;
}

/* All vCPUs write their share of total pages at once. */
static int run_round(struct job *jobs, unsigned int nr, uint64_t total)
{
	pthread_t th[VM_MAX_VCPUS];
	int ret = 0;

	for (unsigned int i = 0; i < nr; i++) {
		jobs[i].k = total * (i + 1) / nr - total * i / nr;
		if (jobs[i].k > jobs[i].n)
			jobs[i].k = jobs[i].n;
		if (pthread_create(&th[i], NULL, job_run, &jobs[i]))
			return -EAGAIN;
	}
	for (unsigned int i = 0; i < nr; i++) {
		pthread_join(th[i], NULL);
		if (jobs[i].ret && !ret)
			ret = jobs[i].ret < 0 ? jobs[i].ret : -EIO;
	}
	return ret;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

static double median(const double *v, unsigned int n)
{
	double s[MAX_REPS];

	if (!n)
		return 0;
	memcpy(s, v, n * sizeof(*s));
	qsort(s, n, sizeof(*s), cmp_double);
	return n % 2 ? s[n / 2] : (s[n / 2 - 1] + s[n / 2]) / 2;
}

static uint64_t work_pages_of(uint64_t mem_mib)
{
	return (mem_mib << 20 >> 12) - WORK_FIRST;
}

static unsigned int reps_for(const struct opts *o, uint64_t size)
{
	return size >= BIG_SIZE ? o->reps_big : o->reps;
}

/* One mode's VM and tracker for the vCPU count being measured. */
struct bench_vm {
	const struct mode *md;
	struct vm *vm;
	struct tracker *t;
	struct job jobs[VM_MAX_VCPUS];
	const char *err;		/* set once the mode failed: skip it */
};

static void bvm_fail(struct bench_vm *b, const char *what, int ret)
{
	fprintf(stderr, "harvest_bench: %s: %s: %s%s%s\n", b->md->name, what, strerror(-ret),
		b->t && tracker_error(b->t)[0] ? ", " : "", b->t ? tracker_error(b->t) : "");
	b->err = what;
}

static void bvm_destroy(struct bench_vm *b)
{
	for (unsigned int i = 0; i < VM_MAX_VCPUS; i++)
		free(b->jobs[i].perm);
	tracker_destroy(b->t);
	vm_destroy(b->vm);
	b->t = NULL;
	b->vm = NULL;
}

/* VM, tracker, first harvest (everything), one short warm-up round. */
static void bvm_setup(struct bench_vm *b, const struct opts *o, unsigned int nr_vcpus)
{
	struct vm_config cfg = {
		.nr_vcpus = nr_vcpus, .mem_size = o->mem_mib << 20, .ring_entries = o->ring,
	};
	struct track_opts to = { .kmod_unsorted = b->md->unsorted };
	uint64_t work = work_pages_of(o->mem_mib);
	struct dirty_log log;
	int ret;

	if (b->md->backend == TRACK_KMOD && kmod_why[0]) {
		b->err = "module not available";
		return;
	}
	ret = track_vm_config(b->md->backend, &cfg);
	if (!ret)
		ret = vm_create(&cfg, &b->vm);
	if (!ret)
		ret = vm_load_guest(b->vm);
	if (!ret)
		ret = tracker_create_opts(b->md->backend, b->vm, &to, &b->t);
	if (ret < 0) {
		bvm_fail(b, "VM setup failed", ret);
		return;
	}
	ret = tracker_start(b->t);
	if (!ret)
		ret = tracker_harvest(b->t, &log);
	if (ret < 0) {
		bvm_fail(b, "start failed", ret);
		return;
	}
	for (unsigned int i = 0; i < nr_vcpus; i++) {
		struct job *j = &b->jobs[i];

		guest_slice(work, nr_vcpus, i, &j->first, &j->n);
		j->first += WORK_FIRST;
		j->v = b->vm->vcpus[i];
		j->t = b->t;
		j->pat = PAT_SEQ;
		j->perm = malloc(j->n * sizeof(uint32_t));
		if (!j->perm) {
			bvm_fail(b, "VM setup failed", -ENOMEM);
			return;
		}
		for (uint64_t k = 0; k < j->n; k++)
			j->perm[k] = (uint32_t)k;
	}
	/* A short round first: the path from vCPU to harvest is warm. */
	ret = run_round(b->jobs, nr_vcpus, 4096);
	if (!ret)
		ret = tracker_harvest(b->t, &log);
	if (ret < 0) {
		bvm_fail(b, "warm-up failed", ret);
		return;
	}
}

/* One measured round of size pages into cell c. */
static void bvm_round(struct bench_vm *b, struct cell *c, uint64_t size, uint64_t *guest_ns)
{
	struct dirty_log log;
	uint64_t g0 = track_now_ns();
	int ret;

	ret = run_round(b->jobs, b->vm->nr_vcpus, size);
	*guest_ns += track_now_ns() - g0;
	if (!ret)
		ret = tracker_harvest(b->t, &log);
	if (ret < 0) {
		bvm_fail(b, "round failed", ret);
		return;
	}
	if (log.count < size || log.count > size + 64)
		fprintf(stderr, "harvest_bench: %s: %" PRIu64 " pages written, the log has %" PRIu64 "\n",
			b->md->name, size, log.count);
	c->cost[c->n] = (double)(log.total_ns + log.ring_full_ns);
	c->total[c->n] = (double)log.total_ns;
	c->rf[c->n] = (double)log.ring_full;
	c->rf_ns[c->n] = (double)log.ring_full_ns;
	c->pages[c->n] = (double)log.count;
	c->kernel[c->n] = (double)log.kernel_ns;
	c->n++;
}

/*
 * Every mode's VM lives at once and the modes take turns round by round,
 * so that a change in the machine's load (TCG, other test hosts) hits all
 * of them alike and the ratios stay fair.
 */
static int bench_vcfg(const struct opts *o, unsigned int vc)
{
	static struct bench_vm bvms[NR_MODES];
	uint64_t work = work_pages_of(o->mem_mib);
	int ret = 0;

	for (unsigned int m = 0; m < NR_MODES; m++) {
		memset(&bvms[m], 0, sizeof(bvms[m]));
		bvms[m].md = &modes[m];
		bvm_setup(&bvms[m], o, o->vcfg[vc]);
		if (bvms[m].err && bvms[m].vm)
			bvm_destroy(&bvms[m]);
	}
	for (int p = 0; p < NR_PATS; p++) {
		for (unsigned int s = 0; s < o->nr_sizes; s++) {
			uint64_t size = o->sizes[s] < work ? o->sizes[s] : work;
			uint64_t guest_ns[NR_MODES] = { 0 };

			/* Same dirty sets for every mode: seeds depend on the point only. */
			for (unsigned int m = 0; m < NR_MODES; m++) {
				for (unsigned int i = 0; i < o->vcfg[vc]; i++) {
					bvms[m].jobs[i].pat = p;
					bvms[m].jobs[i].rng = 0x5eed0000ull + p * 1000 + s * 10 + i;
				}
			}
			for (unsigned int r = 0; r < reps_for(o, size); r++) {
				for (unsigned int m = 0; m < NR_MODES; m++) {
					if (bvms[m].err)
						continue;
					bvm_round(&bvms[m], &cells[vc][p][s][m], size, &guest_ns[m]);
					if (bvms[m].err) {
						bvm_destroy(&bvms[m]);
						ret = -EIO;
					}
				}
			}
			for (unsigned int m = 0; m < NR_MODES; m++) {
				struct cell *c = &cells[vc][p][s][m];

				if (bvms[m].err) {
					c->err = bvms[m].err;
					continue;
				}
				c->done = true;
				if (o->verbose) {
					double pg = median(c->pages, c->n);

					fprintf(stderr, "# %u vCPU %-13s %-6s %7" PRIu64 ": %5.0f ns/page = harvest %5.0f (kernel %5.0f) + ring-full %5.0f; guest writes %.1f us/page\n",
						o->vcfg[vc], modes[m].name, pat_names[p], size,
						median(c->cost, c->n) / pg, median(c->total, c->n) / pg,
						median(c->kernel, c->n) / pg, median(c->rf_ns, c->n) / pg,
						guest_ns[m] / 1000.0 / (double)(size * c->n));
				}
			}
		}
	}
	for (unsigned int m = 0; m < NR_MODES; m++)
		bvm_destroy(&bvms[m]);
	return ret;
}

static void print_table(const struct opts *o)
{
	uint64_t mem_pages = o->mem_mib << 20 >> 12, work = work_pages_of(o->mem_mib);
	unsigned int never_slower_bad = 0, half_bad = 0, half_rows = 0, rows = 0;
	unsigned int sorted_rows = 0, sorted_wins = 0;
	double sorted_min = 0, sorted_max = 0;
	char bad1[1024] = "", bad2[1024] = "";
	FILE *csv = NULL;

	if (o->csv) {
		csv = fopen(o->csv, "w");
		if (csv)
			fprintf(csv, "vcpus,pattern,dirty,pct,mode,round_ns,ns_per_page,ring_full,ring_full_ns,kernel_ns\n");
	}
	printf("\nharvest + reset per round, ring of %u entries for every mode: median of %u rounds (%u for %u+ dirty pages),\n"
	       "us per round and ns per dirty page; rf = ring-full exits per round (the time their handlers took,\n"
	       "summed over vCPU threads, is in the cost); best = kmod / min(bitmap, ring, ring-sorted),\n"
	       "/sort = kmod / ring-sorted, at the same point\n\n",
	       o->ring, o->reps, o->reps_big, BIG_SIZE);
	printf("%-6s %2s %7s %6s | %15s | %20s | %20s | %34s | %27s\n",
	       "", "", "dirty", "", "bitmap", "ring", "ring-sorted", "kmod", "kmod-unsorted");
	printf("%-6s %2s %7s %6s | %8s %6s | %8s %6s %4s | %8s %6s %4s | %8s %6s %4s %6s %6s | %8s %6s %4s %6s\n",
	       "pattern", "vc", "pages", "%mem", "us", "ns/pg", "us", "ns/pg", "rf", "us", "ns/pg", "rf",
	       "us", "ns/pg", "rf", "best", "/sort", "us", "ns/pg", "rf", "best");
	for (unsigned int vc = 0; vc < o->nr_vcfg; vc++) {
		for (int p = 0; p < NR_PATS; p++) {
			for (unsigned int s = 0; s < o->nr_sizes; s++) {
				struct cell *c = cells[vc][p][s];
				uint64_t size = o->sizes[s] < work ? o->sizes[s] : work;
				double pct = 100.0 * (double)size / (double)mem_pages;
				double cost[NR_MODES], best = 0;

				for (unsigned int m = 0; m < NR_MODES; m++)
					cost[m] = c[m].done ? median(c[m].cost, c[m].n) : 0;
				for (unsigned int m = M_BITMAP; m <= M_RING_SORTED; m++)
					if (c[m].done && (!best || cost[m] < best))
						best = cost[m];
				if (!c[M_BITMAP].done || !c[M_RING].done || !c[M_RING_SORTED].done)
					best = 0;
				printf("%-6s %2u %7" PRIu64 " %5.1f%% |", pat_names[p], o->vcfg[vc], size, pct);
				for (unsigned int m = 0; m < NR_MODES; m++) {
					static const int width[NR_MODES] = { 15, 20, 20, 34, 27 };
					double pg = c[m].done ? median(c[m].pages, c[m].n) : 0;

					if (!c[m].done) {
						printf(" %*s |", width[m], c[m].err ? c[m].err : "not run");
						continue;
					}
					printf(" %8.1f %6.0f", cost[m] / 1000, cost[m] / pg);
					if (m != M_BITMAP)
						printf(" %4.0f", median(c[m].rf, c[m].n));
					if (m >= M_KMOD) {
						if (best > 0)
							printf(" %6.2f", cost[m] / best);
						else
							printf(" %6s", "-");
					}
					if (m == M_KMOD) {
						if (c[M_RING_SORTED].done)
							printf(" %6.2f", cost[m] / cost[M_RING_SORTED]);
						else
							printf(" %6s", "-");
					}
					printf(" |");
					if (csv)
						fprintf(csv, "%u,%s,%" PRIu64 ",%.2f,%s,%.0f,%.1f,%.0f,%.0f,%.0f\n",
							o->vcfg[vc], pat_names[p], size, pct, modes[m].name,
							cost[m], cost[m] / pg, median(c[m].rf, c[m].n),
							median(c[m].rf_ns, c[m].n), median(c[m].kernel, c[m].n));
				}
				printf("\n");
				if (c[M_KMOD].done && c[M_RING_SORTED].done) {
					double r = cost[M_KMOD] / cost[M_RING_SORTED];

					sorted_min = sorted_rows ? (r < sorted_min ? r : sorted_min) : r;
					sorted_max = sorted_rows ? (r > sorted_max ? r : sorted_max) : r;
					sorted_rows++;
					sorted_wins += r < 1;
				}
				/* The targets, for sorted kmod. */
				if (c[M_KMOD].done && best > 0) {
					char pt[64];

					rows++;
					snprintf(pt, sizeof(pt), " %s/%uvc/%" PRIu64 " (%.2f)", pat_names[p],
						 o->vcfg[vc], size, cost[M_KMOD] / best);
					if (cost[M_KMOD] > best) {
						never_slower_bad++;
						if (strlen(bad1) + strlen(pt) < sizeof(bad1))
							strcat(bad1, pt);
					}
					if (pct >= 10.0) {
						half_rows++;
						snprintf(pt, sizeof(pt), " %s/%uvc/%" PRIu64 " (%.2f)", pat_names[p],
							 o->vcfg[vc], size, cost[M_KMOD] / cost[M_RING]);
						if (cost[M_KMOD] > cost[M_RING] / 2) {
							half_bad++;
							if (strlen(bad2) + strlen(pt) < sizeof(bad2))
								strcat(bad2, pt);
						}
					}
				}
			}
		}
	}
	if (csv)
		fclose(csv);
	printf("\n");
	if (!rows) {
		printf("targets: not measured (%s)\n", kmod_why[0] ? kmod_why : "no kmod rows");
		return;
	}
	printf("target 1, kmod never slower than min(bitmap, ring, ring-sorted): %s (%u of %u points slower%s%s)\n",
	       never_slower_bad ? "NOT MET" : "met", never_slower_bad, rows,
	       never_slower_bad ? ":" : "", bad1);
	if (half_rows)
		printf("target 2, kmod <= 0.5 x ring at >= 10%% of memory dirty: %s (%u of %u points above%s%s)\n",
		       half_bad ? "NOT MET" : "met", half_bad, half_rows, half_bad ? ":" : "", bad2);
	else
		printf("target 2, kmod <= 0.5 x ring at >= 10%% of memory dirty: no point at >= 10%%\n");
	if (sorted_rows)
		printf("kmod against ring-sorted: %.2f to %.2f x its cost, cheaper at %u of %u points\n",
		       sorted_min, sorted_max, sorted_wins, sorted_rows);
}

static void usage(FILE *f)
{
	fprintf(f,
		"usage: harvest_bench [--quick] [--mem MiB] [--ring N] [--reps N] [--reps-big N]\n"
		"                     [--sizes a,b,...] [--vcpus a,b] [--csv FILE] [--verbose]\n"
		"  defaults: --mem 1024 --ring %u --reps 3 --reps-big 2 --vcpus 1,2\n"
		"            --sizes 1024,4096,16384,65536,262144\n"
		"  --reps-big: rounds for dirty sets of %d pages or more (seconds of TCG each)\n"
		"  --quick:  --mem 256 --sizes 1024,8192,32768 (32768 pages = half of RAM)\n"
		"  sizes above the work area are capped to it\n", TRACK_RING_DEFAULT, BIG_SIZE);
}

static int parse_list(const char *s, uint64_t *out, unsigned int max, unsigned int *n)
{
	char *end;

	*n = 0;
	while (*s) {
		if (*n == max)
			return -E2BIG;
		errno = 0;
		out[(*n)++] = strtoull(s, &end, 0);
		if (errno || end == s || !out[*n - 1])
			return -EINVAL;
		s = *end == ',' ? end + 1 : end;
		if (*end && *end != ',')
			return -EINVAL;
	}
	return *n ? 0 : -EINVAL;
}

int main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "quick", no_argument, NULL, 'q' },
		{ "mem", required_argument, NULL, 'm' },
		{ "ring", required_argument, NULL, 'r' },
		{ "reps", required_argument, NULL, 'n' },
		{ "reps-big", required_argument, NULL, 'b' },
		{ "sizes", required_argument, NULL, 's' },
		{ "vcpus", required_argument, NULL, 'v' },
		{ "csv", required_argument, NULL, 'c' },
		{ "verbose", no_argument, NULL, 'V' },
		{ "help", no_argument, NULL, 'h' },
		{ 0 }
	};
	struct opts o = {
		.mem_mib = 1024, .ring = TRACK_RING_DEFAULT, .reps = 3, .reps_big = 2,
		.nr_sizes = 5, .sizes = { 1024, 4096, 16384, 65536, 262144 },
		.nr_vcfg = 2, .vcfg = { 1, 2 },
	};
	uint64_t v[MAX_SIZES];
	char auto_why[256];
	struct utsname u;
	unsigned int n;
	int c, ret = 0;

	while ((c = getopt_long(argc, argv, "qm:r:n:b:s:v:c:Vh", longopts, NULL)) != -1) {
		switch (c) {
		case 'q':
			o.mem_mib = 256;
			o.nr_sizes = 3;
			o.sizes[0] = 1024;
			o.sizes[1] = 8192;
			o.sizes[2] = 32768;
			break;
		case 'm':
			o.mem_mib = strtoull(optarg, NULL, 0);
			if (o.mem_mib < 8 || o.mem_mib % 2 || o.mem_mib > 16384) {
				fprintf(stderr, "harvest_bench: --mem wants an even MiB count, 8..16384\n");
				return 2;
			}
			break;
		case 'r':
			o.ring = (uint32_t)strtoul(optarg, NULL, 0);
			break;
		case 'n':
			o.reps = (unsigned int)strtoul(optarg, NULL, 0);
			if (!o.reps || o.reps > MAX_REPS) {
				fprintf(stderr, "harvest_bench: --reps wants 1..%d\n", MAX_REPS);
				return 2;
			}
			break;
		case 'b':
			o.reps_big = (unsigned int)strtoul(optarg, NULL, 0);
			if (!o.reps_big || o.reps_big > MAX_REPS) {
				fprintf(stderr, "harvest_bench: --reps-big wants 1..%d\n", MAX_REPS);
				return 2;
			}
			break;
		case 's':
			if (parse_list(optarg, o.sizes, MAX_SIZES, &o.nr_sizes)) {
				fprintf(stderr, "harvest_bench: bad --sizes\n");
				return 2;
			}
			break;
		case 'v':
			if (parse_list(optarg, v, MAX_VCFG, &n) || v[0] > 32 || (n > 1 && v[1] > 32)) {
				fprintf(stderr, "harvest_bench: bad --vcpus (at most 2 values, each 1..32)\n");
				return 2;
			}
			o.nr_vcfg = n;
			for (unsigned int i = 0; i < n; i++)
				o.vcfg[i] = (unsigned int)v[i];
			break;
		case 'c':
			o.csv = optarg;
			break;
		case 'V':
			o.verbose = true;
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}

	track_pick_auto(auto_why, sizeof(auto_why));
	if (!track_kmod_usable(kmod_why, sizeof(kmod_why), NULL))
		printf("harvest_bench: kmod rows: module not available: %s\n", kmod_why);
	else
		kmod_why[0] = '\0';
	uname(&u);
	printf("harvest_bench: guest %" PRIu64 " MiB (%" PRIu64 " pages, work area %" PRIu64 "), ring %u entries per vCPU,\n"
	       "  host %s %s, %ld CPUs; auto pick would be %s\n",
	       o.mem_mib, o.mem_mib << 20 >> 12, work_pages_of(o.mem_mib), o.ring, u.sysname,
	       u.release, sysconf(_SC_NPROCESSORS_ONLN), auto_why);
	fflush(stdout);

	for (unsigned int vc = 0; vc < o.nr_vcfg; vc++) {
		int r = bench_vcfg(&o, vc);

		if (r < 0 && !ret)
			ret = r;
	}
	print_table(&o);
	return ret < 0 ? 1 : 0;
}
