// SPDX-License-Identifier: GPL-2.0
/*
 * VMDIRTY_RECORD (record.h).
 */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "wire/record.h"

/* Per kind and process: enough variety, little volume. */
#define RECORD_PER_KIND	4
#define RECORD_MAX_LEN	(256u << 10)	/* scripts/fuzz.sh's -max_len */

static const char *record_dir(void)
{
	static const char *dir;
	static int loaded;

	if (!__atomic_load_n(&loaded, __ATOMIC_ACQUIRE)) {
		dir = getenv("VMDIRTY_RECORD");
		if (dir && !*dir)
			dir = NULL;
		__atomic_store_n(&loaded, 1, __ATOMIC_RELEASE);
	}
	return dir;
}

bool record_on(void)
{
	return record_dir() != NULL;
}

void record_input(unsigned int kind, const void *buf, size_t len)
{
	static unsigned int taken[RECORD_NR_KINDS];
	const char *dir = record_dir();
	char path[512];
	unsigned int n;
	int fd;

	if (!dir || kind >= RECORD_NR_KINDS || !len || len > RECORD_MAX_LEN)
		return;
	n = __atomic_fetch_add(&taken[kind], 1, __ATOMIC_RELAXED);
	if (n >= RECORD_PER_KIND)
		return;
	snprintf(path, sizeof(path), "%s/%u-%d-%u", dir, kind, (int)getpid(), n);
	fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
	if (fd < 0)
		return;
	/* Best effort: a short write only makes a shorter seed. */
	if (write(fd, buf, len) < 0)
		n = 0;
	close(fd);
}
