// SPDX-License-Identifier: GPL-2.0
/*
 * The VM the agent hosts, from options to running vCPUs.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli.h"
#include "vmhost.h"

enum {
	OPT_MEM = VMHOST_OPT_BASE,
	OPT_VCPUS,
	OPT_WORKLOAD,
	OPT_RATE,
	OPT_HOT,
	OPT_SEED,
	OPT_BACKEND,
	OPT_RING,
	OPT_DRAIN,
	OPT_KERNEL,
	OPT_APPEND,
	OPT_DIRECT,
	OPT_DEBUGCON,
	OPT_RAM,
};

/* A multiboot guest is up once every vCPU runs its workload; nested TCG is slow. */
#define BOOT_TIMEOUT_NS		(60ULL * 1000000000ULL)
#define KERNEL_MAX		(64 << 20)

const struct option vmhost_long_options[] = {
	{ "mem", required_argument, NULL, OPT_MEM },
	{ "vcpus", required_argument, NULL, OPT_VCPUS },
	{ "workload", required_argument, NULL, OPT_WORKLOAD },
	{ "rate", required_argument, NULL, OPT_RATE },
	{ "hot-pages", required_argument, NULL, OPT_HOT },
	{ "seed", required_argument, NULL, OPT_SEED },
	{ "backend", required_argument, NULL, OPT_BACKEND },
	{ "ring-entries", required_argument, NULL, OPT_RING },
	{ "drain", no_argument, NULL, OPT_DRAIN },
	{ "kernel", required_argument, NULL, OPT_KERNEL },
	{ "append", required_argument, NULL, OPT_APPEND },
	{ "direct", no_argument, NULL, OPT_DIRECT },
	{ "debugcon", required_argument, NULL, OPT_DEBUGCON },
	{ "ram", required_argument, NULL, OPT_RAM },
	{ NULL, 0, NULL, 0 },
};

void vmhost_opts_init(struct vmhost_opts *o)
{
	memset(o, 0, sizeof(*o));
	o->vcpus = 2;
	o->mem_mib = 256;
	o->workload = GUEST_WL_RANDOM;
	o->hot_pages = 256;
	o->seed = 1;
	o->backend = TRACK_AUTO;
}

int vmhost_parse_opt(struct vmhost_opts *o, int opt, const char *arg)
{
	uint64_t v;
	double d;

	switch (opt) {
	case OPT_MEM:
		if (cli_u64("mem", arg, VM_MIN_MEM >> 20, VM_MAX_MEM >> 20, &o->mem_mib))
			return -1;
		if (o->mem_mib % 2) {
			fprintf(stderr, "vmdirty: --mem: %s MiB is not a multiple of 2 MiB\n", arg);
			return -1;
		}
		return 1;
	case OPT_VCPUS:
		if (cli_u64("vcpus", arg, 1, VM_MAX_VCPUS, &v))
			return -1;
		o->vcpus = v;
		return 1;
	case OPT_WORKLOAD:
		for (unsigned int i = 0; i <= GUEST_WL_MAX; i++)
			if (!strcmp(arg, guest_workload_name(i))) {
				o->workload = i;
				return 1;
			}
		fprintf(stderr, "vmdirty: --workload: '%s': idle, seq, random or hotset\n", arg);
		return -1;
	case OPT_RATE:
		/* MB/s as the issue and QEMU's dirty-limit name it: 10^6 bytes, to 1 kB/s. */
		if (cli_num("rate", arg, 0, 1000000, &d))
			return -1;
		o->rate = (uint64_t)(d * 1000 + 0.5) * 1000;
		return 1;
	case OPT_HOT:
		return cli_u64("hot-pages", arg, 1, UINT32_MAX, &o->hot_pages) ? -1 : 1;
	case OPT_SEED:
		return cli_u64("seed", arg, 0, UINT64_MAX, &o->seed) ? -1 : 1;
	case OPT_BACKEND:
		if (track_backend_parse(arg, &o->backend)) {
			fprintf(stderr, "vmdirty: --backend: '%s': auto, bitmap, ring or kmod\n", arg);
			return -1;
		}
		return 1;
	case OPT_RING:
		if (cli_u64("ring-entries", arg, 256, 65536, &v))
			return -1;
		if (v & (v - 1)) {
			fprintf(stderr, "vmdirty: --ring-entries: %s is not a power of two\n", arg);
			return -1;
		}
		o->ring_entries = v;
		return 1;
	case OPT_DRAIN:
		o->track.kmod_drain = true;
		return 1;
	case OPT_KERNEL:
		o->kernel = arg;
		return 1;
	case OPT_APPEND:
		o->append = arg;
		return 1;
	case OPT_DIRECT:
		o->direct = true;
		return 1;
	case OPT_DEBUGCON:
		o->debugcon = arg;
		return 1;
	case OPT_RAM:
		return cli_ram(arg, &o->ram_memfd) ? -1 : 1;
	}
	return 0;
}

/* Does the command line text carry key= as one of its words? */
static bool has_key(const char *text, const char *key)
{
	size_t n = strlen(key);

	for (const char *p = text; p && *p; p = strchr(p, ' ')) {
		while (*p == ' ')
			p++;
		if (!strncmp(p, key, n))
			return true;
	}
	return false;
}

int vmhost_cmdline(const struct vmhost_opts *o, uint64_t tsc_khz, char *buf, size_t len)
{
	size_t n;

	n = snprintf(buf, len, "workload=%s rate=%" PRIu64 ".%03" PRIu64 " seed=%" PRIu64
		     " hot=%" PRIu64 " vcpus=%u", guest_workload_name(o->workload),
		     o->rate / 1000000, o->rate / 1000 % 1000, o->seed, o->hot_pages, o->vcpus);
	if (n < len && tsc_khz && !(o->append && has_key(o->append, "tsc_khz=")))
		n += snprintf(buf + n, len - n, " tsc_khz=%" PRIu64, tsc_khz);
	/* Each byte on the debug console is an exit: records only if --debugcon reads them. */
	if (n < len && !(o->append && has_key(o->append, "debugcon=")))
		n += snprintf(buf + n, len - n, " debugcon=%d", !!o->debugcon);
	if (n < len && o->append)
		n += snprintf(buf + n, len - n, " %s", o->append);
	return n < len ? 0 : -E2BIG;
}

int vmhost_check(const struct vmhost_opts *o)
{
	char line[GUEST_CMDLINE_MAX], err[GUEST_CMDLINE_ERR_MAX];
	struct guest_config c;

	if (o->track.kmod_drain && o->backend != TRACK_KMOD && o->backend != TRACK_AUTO) {
		fprintf(stderr, "vmdirty: --drain needs the kmod backend\n");
		return -1;
	}
	if (o->direct && (o->kernel || o->append)) {
		fprintf(stderr, "vmdirty: --direct boots the built-in guest: no --kernel or --append\n");
		return -1;
	}
	if (o->direct)
		return 0;
	/* What the guest would refuse at boot is refused here, with its words. */
	guest_config_init(&c);
	if (vmhost_cmdline(o, 1000000, line, sizeof(line))) {
		fprintf(stderr, "vmdirty: the guest's command line is longer than %d bytes\n",
			GUEST_CMDLINE_MAX - 1);
		return -1;
	}
	if (guest_cmdline_parse(line, &c, err, sizeof(err))) {
		fprintf(stderr, "vmdirty: the guest's command line: %s\n", err);
		return -1;
	}
	return 0;
}

int vmhost_open_debugcon(const char *path)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);

	return fd < 0 ? -errno : fd;
}

/* The image file for --kernel, whole; NULL with a message. */
static void *read_kernel(const char *path, size_t *size)
{
	struct stat st;
	void *buf = NULL;
	size_t got = 0;
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	if (fd < 0 || fstat(fd, &st) < 0) {
		fprintf(stderr, "vmdirty: --kernel %s: %s\n", path, strerror(errno));
		goto out;
	}
	if (!S_ISREG(st.st_mode) || st.st_size <= 0 || st.st_size > KERNEL_MAX) {
		fprintf(stderr, "vmdirty: --kernel %s: not a regular file of 1 byte to %d MiB\n",
			path, KERNEL_MAX >> 20);
		goto out;
	}
	buf = malloc(st.st_size);
	while (buf && got < (size_t)st.st_size) {
		ssize_t n = read(fd, (char *)buf + got, st.st_size - got);

		if (n <= 0) {
			fprintf(stderr, "vmdirty: --kernel %s: %s\n", path,
				n ? strerror(errno) : "shorter than it was");
			free(buf);
			buf = NULL;
			break;
		}
		got += n;
	}
	*size = got;
out:
	if (fd >= 0)
		close(fd);
	return buf;
}

/* The guest as the multiboot loader leaves it: only the BSP runs, at the ELF entry. */
static int boot_multiboot(const struct vmhost_opts *o, struct vmhost *h)
{
	const void *image = vmm_guest_image_start;
	size_t size = vmm_guest_image_end - vmm_guest_image_start;
	void *file = NULL;
	const char *why = "";
	int ret;

	if (o->kernel) {
		file = read_kernel(o->kernel, &size);
		if (!file)
			return -EINVAL;
		image = file;
	}
	ret = vmhost_cmdline(o, h->vm->tsc_khz, h->cmdline, sizeof(h->cmdline));
	if (!ret)
		ret = vm_boot_multiboot(h->vm, image, size, h->cmdline, &why);
	if (ret)
		fprintf(stderr, "vmdirty: cannot boot %s: %s (%s)\n",
			o->kernel ? o->kernel : "the built-in guest", why, strerror(-ret));
	free(file);
	return ret;
}

/* The direct boot: the VMM sets the guest up and posts the workload itself. */
static int boot_direct(const struct vmhost_opts *o, struct vmhost *h)
{
	int ret = vm_load_guest(h->vm);

	if (ret) {
		fprintf(stderr, "vmdirty: cannot load the guest: %s\n", strerror(-ret));
		return ret;
	}
	for (unsigned int i = 0; i < h->vm->nr_vcpus; i++) {
		uint64_t args[GUEST_CMD_ARGS] = { o->workload, o->rate, o->hot_pages,
						  o->seed + i };

		ret = vcpu_post(h->vm->vcpus[i], GUEST_CMD_WORKLOAD, args);
		if (ret) {
			fprintf(stderr, "vmdirty: vCPU %u: %s\n", i, strerror(-ret));
			return ret;
		}
	}
	return 0;
}

/*
 * A multiboot guest is up when its mailbox is filled in and every vCPU has
 * begun its workload; a boot error ends a vCPU's run (the VMM printed why).
 */
static int wait_booted(struct vmhost *h)
{
	const struct guest_mailbox *mb = h->vm->mb;
	uint64_t deadline = vmm_now_ns() + BOOT_TIMEOUT_NS;
	struct vm_runner_stats st;

	for (;;) {
		bool up = __atomic_load_n(&mb->magic, __ATOMIC_ACQUIRE) == GUEST_MAILBOX_MAGIC &&
			  mb->nr_vcpus == h->vm->nr_vcpus;

		for (unsigned int i = 0; up && i < h->vm->nr_vcpus; i++)
			up = __atomic_load_n(&mb->vcpu[i].wl_ready, __ATOMIC_ACQUIRE);
		if (up)
			return 0;
		vm_runner_stats(h->runner, &st);
		if (st.finished) {
			fprintf(stderr, "vmdirty: the guest stopped while booting\n");
			return -ENOEXEC;
		}
		if (vmm_now_ns() > deadline) {
			fprintf(stderr, "vmdirty: the guest did not boot in %llu s\n",
				BOOT_TIMEOUT_NS / 1000000000ULL);
			return -ETIMEDOUT;
		}
		usleep(10000);
	}
}

int vmhost_start(const struct vmhost_opts *o, struct vmhost *h)
{
	struct vm_config cfg = {
		.nr_vcpus = o->vcpus,
		.mem_size = o->mem_mib << 20,
		.ring_entries = o->ring_entries,
		.ram_memfd = o->ram_memfd,
	};
	struct vm_runner_hooks hooks = { .ring_full = tracker_runner_ring_full };
	int ret;

	memset(h, 0, sizeof(*h));
	h->debugcon_fd = -1;
	h->backend = o->backend;
	if (h->backend == TRACK_AUTO)
		h->backend = track_pick_auto(h->why, sizeof(h->why));
	else
		snprintf(h->why, sizeof(h->why), "%s, as asked", track_backend_name(h->backend));
	ret = track_vm_config(h->backend, &cfg);
	if (ret) {
		fprintf(stderr, "vmdirty: %s tracking: %s\n", track_backend_name(h->backend),
			strerror(-ret));
		return ret;
	}
	ret = vm_create(&cfg, &h->vm);
	if (ret) {
		fprintf(stderr, "vmdirty: cannot create the VM: %s\n", strerror(-ret));
		return ret;
	}
	if (o->debugcon) {
		h->debugcon_fd = vmhost_open_debugcon(o->debugcon);
		if (h->debugcon_fd < 0) {
			ret = h->debugcon_fd;
			fprintf(stderr, "vmdirty: --debugcon %s: %s\n", o->debugcon, strerror(-ret));
			goto err;
		}
		vm_set_debugcon(h->vm, h->debugcon_fd);
	}
	ret = o->direct ? boot_direct(o, h) : boot_multiboot(o, h);
	if (ret)
		goto err;
	ret = tracker_create_opts(h->backend, h->vm, &o->track, &h->trk);
	if (ret) {
		fprintf(stderr, "vmdirty: %s tracking: %s\n", track_backend_name(h->backend),
			strerror(-ret));
		goto err;
	}
	hooks.ctx = h->trk;
	ret = vm_runner_start(h->vm, &hooks, &h->runner);
	if (ret) {
		fprintf(stderr, "vmdirty: cannot start the vCPUs: %s\n", strerror(-ret));
		goto err;
	}
	if (!o->direct) {
		ret = wait_booted(h);
		if (ret)
			goto err;
	}
	return 0;
err:
	/* A guest that did not boot has APs that never will: no waiting for them to finish. */
	if (h->runner) {
		vm_runner_free(h->runner);
		h->runner = NULL;
	}
	vmhost_free(h);
	return ret;
}

int vmhost_adopt(struct vmhost *h, struct vm *vm, struct vm_runner *r, enum track_backend b)
{
	memset(h, 0, sizeof(*h));
	h->debugcon_fd = -1;
	h->vm = vm;
	h->runner = r;
	h->backend = b;
	return 0;
}

void vmhost_free(struct vmhost *h)
{
	if (h->runner) {
		vm_runner_stop(h->runner);
		vm_runner_free(h->runner);
	}
	if (h->trk)
		tracker_destroy(h->trk);
	if (h->vm)
		vm_destroy(h->vm);
	if (h->debugcon_fd >= 0)
		close(h->debugcon_fd);
	memset(h, 0, sizeof(*h));
	h->debugcon_fd = -1;
}

uint64_t vmhost_ops(const struct vmhost *h)
{
	uint64_t ops = 0;

	for (unsigned int i = 0; i < h->vm->nr_vcpus; i++)
		ops += __atomic_load_n(&h->vm->mb->vcpu[i].ops, __ATOMIC_RELAXED);
	return ops;
}

int64_t vmhost_verify(struct vmhost *h)
{
	int64_t bad = 0;
	int ret;

	if (h->runner) {
		ret = vm_runner_stop(h->runner);
		vm_runner_free(h->runner);
		h->runner = NULL;
		if (ret)
			return ret;
	}
	for (unsigned int i = 0; i < h->vm->nr_vcpus; i++) {
		struct vcpu *v = h->vm->vcpus[i];

		ret = vcpu_post(v, GUEST_CMD_VERIFY, (uint64_t[GUEST_CMD_ARGS]){ 0 });
		if (!ret)
			ret = vcpu_run_cmd(v, h->trk ? tracker_ring_full_cb : NULL, h->trk);
		if (ret < 0)
			return ret;
		bad += ret;
	}
	return bad;
}
