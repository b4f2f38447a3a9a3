// SPDX-License-Identifier: GPL-2.0
/*
 * vmdirty-codec-bench: per-core throughput and ratio of the page codecs on
 * guest-like memory or on a file (e.g. a guest RAM image), and the delta
 * experiment that decides whether an xbzrle-like encoding earns its place.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <lz4.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "wire/bench.h"
#include "wire/codec.h"

#define PS	4096

static void usage(FILE *f)
{
	fprintf(f, "usage: vmdirty-codec-bench [-s MIB] [-m ZERO%%,TEXT%%] [-b PAGES] [-t SECS]\n"
		   "                            [-f FILE] [-d]\n"
		   "  -s  guest-like memory to generate (default 256 MiB)\n"
		   "  -m  share of zero and text-like pages, the rest random (default 25,40)\n"
		   "  -b  pages per batch (default 256)\n"
		   "  -t  seconds per codec at least (default 1)\n"
		   "  -f  use FILE's contents (e.g. a guest RAM image) instead\n"
		   "  -d  also run the delta (xbzrle-like) experiment\n");
}

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
	return ts.tv_sec + ts.tv_nsec * 1e-9;
}

/*
 * What a delta against the last sent version would save: for every
 * non-zero page, a new version is made either by one 8-byte store (what
 * the WRITE_* guest commands do) or by rewriting the page (what the guest
 * workloads do).  Batches of the new versions are lz4-compressed as they
 * are, and as XOR deltas against the old versions (zero runs compress to
 * nothing: the cheapest xbzrle).
 */
static void delta_experiment(const uint8_t *mem, size_t npages, unsigned int batch)
{
	static const char *const modes[] = { "one 8-byte store per page", "whole page rewritten" };
	size_t bl = (size_t)batch * PS;
	uint8_t *old = malloc(bl), *new = malloc(bl), *x = malloc(bl);
	char *out = malloc(LZ4_compressBound(bl));
	uint64_t seed = 1;

	printf("\ndelta experiment (lz4, batches of %u data pages):\n", batch);
	printf("%-28s %12s %12s %12s %12s\n", "new versions", "plain ratio", "delta ratio",
	       "plain MiB/s", "delta MiB/s");
	for (int mode = 0; mode < 2; mode++) {
		uint64_t plain = 0, delta = 0, raw = 0;
		double tp = 0, td = 0, t0;
		size_t i = 0;

		while (i < npages) {
			unsigned int n = 0;

			for (; i < npages && n < batch; i++) {
				const uint8_t *p = mem + i * PS;

				if (wire_is_zero(p, PS))
					continue;
				memcpy(old + (size_t)n * PS, p, PS);
				memcpy(new + (size_t)n * PS, p, PS);
				seed = seed * 6364136223846793005ull + 1442695040888963407ull;
				if (mode == 0)
					memcpy(new + (size_t)n * PS + (seed >> 33) % (PS / 8) * 8, &seed, 8);
				else	/* another page's content: as different as a rewrite */
					memcpy(new + (size_t)n * PS, mem + ((i * 7919) % npages) * PS, PS);
				n++;
			}
			if (!n)
				break;
			t0 = now_s();
			plain += LZ4_compress_default((char *)new, out, n * PS, LZ4_compressBound(bl));
			tp += now_s() - t0;
			t0 = now_s();
			for (size_t k = 0; k < (size_t)n * PS / 8; k++)
				((uint64_t *)x)[k] = ((uint64_t *)old)[k] ^ ((uint64_t *)new)[k];
			delta += LZ4_compress_default((char *)x, out, n * PS, LZ4_compressBound(bl));
			td += now_s() - t0;
			raw += (uint64_t)n * PS;
		}
		if (!raw)
			break;
		printf("%-28s %12.4f %12.4f %12.0f %12.0f\n", modes[mode], (double)plain / raw,
		       (double)delta / raw, raw / 1048576.0 / tp, raw / 1048576.0 / td);
	}
	free(old);
	free(new);
	free(x);
	free(out);
}

int main(int argc, char **argv)
{
	unsigned int size_mib = 256, zero_pct = 25, text_pct = 40, batch = 256;
	struct wire_bench_result res[16];
	const char *file = NULL, *active;
	double secs = 1;
	bool delta = false;
	uint8_t *mem;
	size_t len;
	int opt, n;

	while ((opt = getopt(argc, argv, "s:m:b:t:f:dh")) != -1) {
		switch (opt) {
		case 's':
			size_mib = strtoul(optarg, NULL, 0);
			break;
		case 'm':
			if (sscanf(optarg, "%u,%u", &zero_pct, &text_pct) != 2 ||
			    zero_pct + text_pct > 100) {
				usage(stderr);
				return 2;
			}
			break;
		case 'b':
			batch = strtoul(optarg, NULL, 0);
			break;
		case 't':
			secs = strtod(optarg, NULL);
			break;
		case 'f':
			file = optarg;
			break;
		case 'd':
			delta = true;
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (file) {
		int fd = open(file, O_RDONLY);
		struct stat sb;

		if (fd < 0 || fstat(fd, &sb)) {
			perror(file);
			return 1;
		}
		len = sb.st_size / PS * PS;
		mem = len ? mmap(NULL, len, PROT_READ, MAP_PRIVATE | MAP_POPULATE, fd, 0) : MAP_FAILED;
		close(fd);
		if (mem == MAP_FAILED) {
			fprintf(stderr, "%s: cannot map %zu bytes\n", file, len);
			return 1;
		}
	} else {
		len = (size_t)size_mib << 20;
		mem = aligned_alloc(PS, len);
		if (!size_mib || !mem) {
			fprintf(stderr, "cannot allocate %u MiB\n", size_mib);
			return 1;
		}
		wire_bench_fill(mem, len, PS, zero_pct, text_pct, 1);
	}
	wire_zero_impls(&(unsigned int){ 0 }, &active);
	printf("%zu MiB of %s, batches of %u pages, one thread, zero detection: %s\n",
	       len >> 20, file ? file : "guest-like pages", batch, active);
	if (!file)
		printf("mix: %u%% zero, %u%% text-like, %u%% random pages\n", zero_pct, text_pct,
		       100 - zero_pct - text_pct);
	n = wire_bench_run(mem, len, PS, batch, secs, res, 16);
	if (n < 0) {
		fprintf(stderr, "benchmark: %s\n", strerror(-n));
		return 1;
	}
	wire_bench_print(stdout, res, n);
	printf("(MiB/s of guest memory per core, zero pages included; ratio = wire bytes / guest\n"
	       " bytes; data = encoded bytes / bytes of non-zero pages)\n");
	if (delta)
		delta_experiment(mem, len / PS, batch);
	return 0;
}
