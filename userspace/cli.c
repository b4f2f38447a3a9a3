// SPDX-License-Identifier: GPL-2.0
/*
 * Command-line numbers and choices.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

int cli_num(const char *name, const char *arg, double min, double max, double *v)
{
	char *end;

	errno = 0;
	*v = strtod(arg, &end);
	if (errno || end == arg || *end || *v != *v || *v < min || *v > max) {
		fprintf(stderr, "vmdirty: --%s: '%s' is not a number in %g..%g\n", name, arg, min,
			max);
		return -1;
	}
	return 0;
}

int cli_u64(const char *name, const char *arg, uint64_t min, uint64_t max, uint64_t *v)
{
	char *end;
	unsigned long long x;

	errno = 0;
	x = strtoull(arg, &end, 0);
	if (errno || end == arg || *end || arg[0] == '-' || x < min || x > max) {
		fprintf(stderr, "vmdirty: --%s: '%s' is not a number in %" PRIu64 "..%" PRIu64 "\n",
			name, arg, min, max);
		return -1;
	}
	*v = x;
	return 0;
}

int cli_ram(const char *arg, bool *memfd)
{
	if (strcmp(arg, "anon") && strcmp(arg, "memfd")) {
		fprintf(stderr, "vmdirty: --ram: '%s': anon or memfd\n", arg);
		return -1;
	}
	*memfd = !strcmp(arg, "memfd");
	return 0;
}
