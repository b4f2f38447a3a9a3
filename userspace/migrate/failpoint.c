// SPDX-License-Identifier: GPL-2.0
/*
 * VMDIRTY_FAILPOINT (failpoint.h).
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "migrate/failpoint.h"

/* The action for name in spec, or NULL. */
static const char *find(const char *spec, const char *name, size_t *alen)
{
	size_t n = strlen(name);

	while (*spec) {
		size_t len = strcspn(spec, ",");

		if (len >= n && !strncmp(spec, name, n) && (len == n || spec[n] == ':')) {
			if (len == n) {
				*alen = 0;
				return "";
			}
			*alen = len - n - 1;
			return spec + n + 1;
		}
		spec += len;
		if (*spec)
			spec++;
	}
	return NULL;
}

int migrate_failpoint(const char *name)
{
	static const char *spec;
	static int loaded;
	const char *action;
	size_t alen;

	if (!__atomic_load_n(&loaded, __ATOMIC_ACQUIRE)) {
		spec = getenv("VMDIRTY_FAILPOINT");
		__atomic_store_n(&loaded, 1, __ATOMIC_RELEASE);
	}
	if (!spec || !(action = find(spec, name, &alen)))
		return 0;
	fprintf(stderr, "vmdirty: failpoint %s: %.*s\n", name, alen ? (int)alen : 4,
		alen ? action : "stop");
	fflush(NULL);
	if (alen == 4 && !strncmp(action, "exit", 4))
		_exit(99);
	if (alen == 4 && !strncmp(action, "fail", 4))
		return -EIO;
	if (alen > 6 && !strncmp(action, "sleep=", 6)) {
		/* This thread only: the control socket and the others go on. */
		usleep(strtoul(action + 6, NULL, 10) * 1000);
		return 0;
	}
	raise(SIGSTOP);
	return 0;
}
