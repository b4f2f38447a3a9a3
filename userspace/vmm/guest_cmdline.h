/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The guest's command line (multiboot boot): what it runs, parsed by the
 * same code in the guest and in the agent, which checks what it will pass
 * (--append included) before it boots anything.  Freestanding like
 * guest_abi.h: guest_cmdline.c is compiled into the payload and into
 * libvmdirty.a.
 *
 *   [NAME] workload=random rate=66 seed=1 hot=256 vcpus=1 tsc_khz=2500000 debugcon=1
 *
 * A first word without '=' is the loader's name for the image (QEMU and
 * GRUB pass the file name) and is skipped.  Every key is optional, none may
 * be given twice, and anything else is an error the guest reports.
 */
#ifndef VMDIRTY_GUEST_CMDLINE_H
#define VMDIRTY_GUEST_CMDLINE_H

#include <stdint.h>

#define GUEST_CMDLINE_MAX	1024	/* bytes, NUL included */
#define GUEST_CMDLINE_ERR_MAX	96	/* an error message, NUL included */

struct guest_config {
	uint32_t workload;	/* workload=idle|seq|random|hotset (GUEST_WL_*); random */
	uint32_t vcpus;		/* vcpus=N: vCPUs it starts and expects, 1..GUEST_MAX_VCPUS; 1 */
	uint64_t rate;		/* rate=MB/s (10^6 bytes, 3 decimals, as vmdirty --rate) in bytes/s; 0: none */
	uint64_t hot;		/* hot=PAGES: the hotset's pages, shared by all vCPUs; 256 */
	uint64_t seed;		/* seed=N: vCPU i's workload gets seed + i, as the agent posts it; 1 */
	uint64_t tsc_khz;	/* tsc_khz=KHZ: the TSC rate; 0 (not given): calibrate on the PIT */
	uint32_t debugcon;	/* debugcon=0|1: progress records on the debug console; 1 */
};

void guest_config_init(struct guest_config *c);
/*
 * Parses s (NUL-terminated) into c, which holds the defaults on entry.
 * 0, or -22 (EINVAL) with err (errlen bytes, NUL-terminated) saying why.
 */
int guest_cmdline_parse(const char *s, struct guest_config *c, char *err, unsigned int errlen);
/* "idle", "seq", "random", "hotset", or NULL. */
const char *guest_workload_name(uint32_t workload);
/* Writes v in decimal at dst (at most 20 bytes, no NUL); returns the length. */
unsigned int guest_put_u64(char *dst, uint64_t v);

#endif
