// SPDX-License-Identifier: GPL-2.0
/*
 * The VM the agent hosts, from options to running vCPUs.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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
};

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
	{ NULL, 0, NULL, 0 },
};

static const char *const workloads[] = {
	[GUEST_WL_IDLE] = "idle",
	[GUEST_WL_SEQ] = "seq",
	[GUEST_WL_RANDOM] = "random",
	[GUEST_WL_HOTSET] = "hotset",
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
			if (!strcmp(arg, workloads[i])) {
				o->workload = i;
				return 1;
			}
		fprintf(stderr, "vmdirty: --workload: '%s': idle, seq, random or hotset\n", arg);
		return -1;
	case OPT_RATE:
		/* MB/s as the issue and QEMU's dirty-limit name it: 10^6 bytes. */
		if (cli_u64("rate", arg, 0, 1000000, &v))
			return -1;
		o->rate = v * 1000000;
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
	}
	return 0;
}

int vmhost_check(const struct vmhost_opts *o)
{
	if (o->track.kmod_drain && o->backend != TRACK_KMOD && o->backend != TRACK_AUTO) {
		fprintf(stderr, "vmdirty: --drain needs the kmod backend\n");
		return -1;
	}
	return 0;
}

int vmhost_start(const struct vmhost_opts *o, struct vmhost *h)
{
	struct vm_config cfg = {
		.nr_vcpus = o->vcpus,
		.mem_size = o->mem_mib << 20,
		.ring_entries = o->ring_entries,
	};
	struct vm_runner_hooks hooks = { .ring_full = tracker_runner_ring_full };
	int ret;

	memset(h, 0, sizeof(*h));
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
	ret = vm_load_guest(h->vm);
	if (ret) {
		fprintf(stderr, "vmdirty: cannot load the guest: %s\n", strerror(-ret));
		goto err;
	}
	ret = tracker_create_opts(h->backend, h->vm, &o->track, &h->trk);
	if (ret) {
		fprintf(stderr, "vmdirty: %s tracking: %s\n", track_backend_name(h->backend),
			strerror(-ret));
		goto err;
	}
	for (unsigned int i = 0; i < h->vm->nr_vcpus; i++) {
		uint64_t args[GUEST_CMD_ARGS] = { o->workload, o->rate, o->hot_pages,
						  o->seed + i };

		ret = vcpu_post(h->vm->vcpus[i], GUEST_CMD_WORKLOAD, args);
		if (ret) {
			fprintf(stderr, "vmdirty: vCPU %u: %s\n", i, strerror(-ret));
			goto err;
		}
	}
	hooks.ctx = h->trk;
	ret = vm_runner_start(h->vm, &hooks, &h->runner);
	if (ret) {
		fprintf(stderr, "vmdirty: cannot start the vCPUs: %s\n", strerror(-ret));
		goto err;
	}
	return 0;
err:
	vmhost_free(h);
	return ret;
}

int vmhost_adopt(struct vmhost *h, struct vm *vm, struct vm_runner *r, enum track_backend b)
{
	memset(h, 0, sizeof(*h));
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
	memset(h, 0, sizeof(*h));
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
