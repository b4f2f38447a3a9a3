/* SPDX-License-Identifier: GPL-2.0 */
/*
 * A hosted VM: the guest the agent runs (VMM, workload, runner) and the
 * dirty tracker that watches it, built from command-line options.
 */
#ifndef VMDIRTY_VMHOST_H
#define VMDIRTY_VMHOST_H

#include <getopt.h>
#include <stdbool.h>
#include <stdint.h>

#include "track/track.h"
#include "vmm/guest_cmdline.h"
#include "vmm/vmm.h"

struct vmhost_opts {
	unsigned int vcpus;
	uint64_t mem_mib;
	unsigned int workload;		/* GUEST_WL_* */
	uint64_t rate;			/* dirty-rate limit, bytes/s, 0 = none */
	uint64_t hot_pages;
	uint64_t seed;
	enum track_backend backend;
	struct track_opts track;
	unsigned int ring_entries;	/* per vCPU; 0 = TRACK_RING_DEFAULT */
	/* How the guest boots: multiboot (kernel, or the built-in image) or direct. */
	const char *kernel;		/* NULL: the built-in vmdirty-guest.elf */
	const char *append;		/* more of its command line */
	bool direct;			/* the VMM sets the built-in guest up (no multiboot) */
	const char *debugcon;		/* the guest's debug console goes to this file or FIFO */
	bool ram_memfd;			/* --ram memfd */
};

struct vmhost {
	struct vm *vm;
	struct tracker *trk;
	struct vm_runner *runner;
	enum track_backend backend;
	char why[160];			/* how the backend was picked */
	char cmdline[GUEST_CMDLINE_MAX];	/* what a multiboot guest was given */
	int debugcon_fd;
};

void vmhost_opts_init(struct vmhost_opts *o);

/* getopt_long entries for the VM and tracker options, and their parser. */
#define VMHOST_OPT_BASE	0x1000
extern const struct option vmhost_long_options[];
#define VMHOST_USAGE_RAM \
	"  --ram KIND           guest RAM: anon (anonymous, transparent huge pages, as QEMU's)\n" \
	"                       or memfd (shareable, small pages) (default anon)\n"
#define VMHOST_USAGE \
	"  --mem MiB            guest RAM (default 256)\n" \
	"  --vcpus N            vCPUs, one thread each (default 2)\n" \
	"  --workload KIND      idle, seq, random or hotset (default random)\n" \
	"  --rate MB/s          the guest's dirty-rate limit, e.g. 2.5, 0 for none (default 0)\n" \
	"  --hot-pages N        hotset: pages most writes go to (default 256)\n" \
	"  --seed N             workload seed\n" \
	"  --backend NAME       dirty tracking: auto, bitmap, ring or kmod (default auto)\n" \
	"  --ring-entries N     dirty ring entries per vCPU (default: ring 4096, kmod 65536)\n" \
	"  --drain              kmod: drain the rings in the background\n" \
	"  --kernel FILE        the guest image to boot, multiboot (default: the built-in\n" \
	"                       copy of build/vmdirty-guest.elf, the file qemu -kernel boots)\n" \
	"  --append TEXT        more of the guest's command line (key=value, Documentation/guest.rst)\n" \
	"  --direct             the VMM sets the built-in guest up itself (no multiboot)\n" \
	"  --debugcon PATH      the guest's debug console (progress records) to a file or FIFO\n" \
	VMHOST_USAGE_RAM
/* 1 if opt was ours (parsed into o), 0 if not, -1 on a bad value (message printed). */
int vmhost_parse_opt(struct vmhost_opts *o, int opt, const char *arg);
/* 0, or -1 with a message: options that do not go together, a bad guest command line. */
int vmhost_check(const struct vmhost_opts *o);
/*
 * The multiboot guest's command line for o (guest_cmdline.h): the workload
 * options, tsc_khz (when not 0 and --append has none), then --append.
 * 0, or -E2BIG.
 */
int vmhost_cmdline(const struct vmhost_opts *o, uint64_t tsc_khz, char *buf, size_t len);
/* Opens a --debugcon PATH for writing (a FIFO waits for its reader); fd or -errno. */
int vmhost_open_debugcon(const char *path);

/* Create the VM and tracker, load the guest, post the workload, start the vCPUs. */
int vmhost_start(const struct vmhost_opts *o, struct vmhost *h);
/* A hosted VM around a VM that arrived by migration (already running under r). */
int vmhost_adopt(struct vmhost *h, struct vm *vm, struct vm_runner *r, enum track_backend b);
void vmhost_free(struct vmhost *h);
/* The guest's operation count, all vCPUs (from the mailbox). */
uint64_t vmhost_ops(const struct vmhost *h);
/*
 * Stop the workload and run the guest's full self-check on every vCPU's
 * slice; the number of pages that failed, or -errno.
 */
int64_t vmhost_verify(struct vmhost *h);

#endif
