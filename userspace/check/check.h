/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Checking a guest from outside, in a memory dump, so that a migration by
 * either VMM is checked the same way:
 *
 *   dump.c      the dump formats: raw from gpa 0 (QEMU's pmemsave, vmdirty
 *               dest --dump-mem) and ELF cores with PT_LOADs by physical
 *               address (QEMU's dump-guest-memory)
 *   memcheck.c  the guest's content rule (guest_abi.h): every vCPU's
 *               version table and data pages, as GUEST_CMD_VERIFY checks
 *               them from inside, plus what only a stopped guest's memory
 *               shows (the page being rewritten, the write count)
 */
#ifndef VMDIRTY_CHECK_H
#define VMDIRTY_CHECK_H

#include <stddef.h>
#include <stdint.h>

#include "vmm/guest_abi.h"

#define DUMP_MAX_RANGES	1024
#define CHECK_ERR_MAX	256

enum dump_format { DUMP_RAW, DUMP_ELF };

struct dump_range {
	uint64_t gpa, len, off;		/* guest-physical [gpa, gpa + len) at file offset off */
};

struct dump {
	enum dump_format format;
	const uint8_t *data;		/* the whole file */
	size_t size;
	size_t map_size;		/* mmap'd by dump_open, 0 if the caller's buffer */
	unsigned int nr;
	struct dump_range r[DUMP_MAX_RANGES];
};

/* Opens and maps a dump file; 0, or -errno with err saying why. */
int dump_open(const char *path, struct dump *d, char *err, size_t errlen);
/* The same over a buffer the caller keeps (unit tests). */
int dump_parse(const void *data, size_t size, struct dump *d, char *err, size_t errlen);
void dump_close(struct dump *d);
/* [gpa, gpa + len) if one range of the dump holds all of it, else NULL. */
const void *dump_ptr(const struct dump *d, uint64_t gpa, uint64_t len);
const char *dump_format_name(enum dump_format f);

struct memcheck_vcpu {
	uint64_t data_pages, written;	/* pages in its slice, pages with a version */
	uint64_t writes, ops, errors;	/* its mailbox counters */
	uint64_t reports;		/* progress reports sent (debug-console ticks) */
	uint64_t bad, inflight;		/* pages that failed, pages caught mid-rewrite */
};

struct memcheck {
	uint32_t nr_vcpus, boot;	/* from the mailbox */
	uint64_t mem_size, tsc_khz;
	uint64_t checked;		/* pages whose content was checked */
	uint64_t bad;			/* pages or tables that broke the rule */
	uint64_t inflight;		/* pages caught mid-rewrite, consistent with it */
	uint64_t ops, writes;		/* all vCPUs' mailbox counters */
	unsigned int problems;		/* everything that failed, bad pages included */
	char first[CHECK_ERR_MAX];	/* the first, in words */
	struct memcheck_vcpu vcpu[GUEST_MAX_VCPUS];
};

/*
 * Checks the guest in d, which must have been stopped when dumped.
 * 0: clean; 1: problems (r->first says the first); -EINVAL: no readable
 * mailbox at all (r->first says why).
 */
int memcheck_run(const struct dump *d, struct memcheck *r);

#endif
