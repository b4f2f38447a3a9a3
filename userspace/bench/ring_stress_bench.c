// SPDX-License-Identifier: GPL-2.0
/*
 * ring_stress_bench: race_test's load with no vmdirty.ko, the control for
 * the guest faults seen under multi-threaded TCG (README, make test-mttcg).
 * Two vCPUs write random pages of a 2048-page stamp area, as race_test's
 * writers do; the main thread reaps both rings in userspace and resets them
 * (KVM_RESET_DIRTY_RINGS, as QEMU's reaper does) every 0-1 ms, a full ring
 * is reaped on its vCPU's thread, and every 20th pass maps, touches and
 * unmaps 2 MiB of anonymous memory in the VMM's mm.  Prints what it did;
 * exits 1 if a vCPU failed (a guest that faulted: "unexpected exit ...
 * SHUTDOWN", "guest exception 14"), 2 if the VM could not be made.
 *
 * usage: ring_stress_bench [SECONDS] [--memfd]
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include "vmm/vmm.h"

#define NR_VCPUS	2
#define STAMP_PAGES	2048

struct stress {
	struct vm *vm;
	pthread_mutex_t lock;	/* one reaper at a time (vmm.h) */
	uint32_t fetch[NR_VCPUS];
	unsigned long entries, resets, full;
	volatile bool stop;
};

struct writer {
	struct stress *s;
	struct vcpu *v;
	pthread_t th;
	unsigned int commands;
	int err;
};

static void count_entry(void *ctx, uint32_t slot, uint64_t offset)
{
	struct stress *s = ctx;

	s->entries++;
}

static void reap_all(struct stress *s)
{
	pthread_mutex_lock(&s->lock);
	for (unsigned int i = 0; i < NR_VCPUS; i++)
		vcpu_ring_reap(s->vm->vcpus[i], &s->fetch[i], true, count_entry, s);
	vm_reset_dirty_rings(s->vm);
	s->resets++;
	pthread_mutex_unlock(&s->lock);
}

static int ring_full(struct vcpu *v, void *ctx)
{
	struct stress *s = ctx;

	s->full++;
	reap_all(s);
	return 0;
}

static void *writer_fn(void *arg)
{
	struct writer *w = arg;

	while (!w->s->stop && !w->err) {
		uint64_t args[GUEST_CMD_ARGS] = {
			GUEST_WORK_BASE, STAMP_PAGES, 400, 7919 * w->v->idx + w->commands,
		};

		w->err = vcpu_post(w->v, GUEST_CMD_WRITE_RANDOM, args);
		if (!w->err)
			w->err = vcpu_run_cmd(w->v, ring_full, w->s);
		w->commands++;
	}
	return NULL;
}

int main(int argc, char **argv)
{
	struct vm_config cfg = {
		.nr_vcpus = NR_VCPUS, .mem_size = 32ULL << 20, .ring_entries = 4096,
		.log_dirty = true, .ram_memfd = argc > 2 && !strcmp(argv[2], "--memfd"),
	};
	struct stress s = { .lock = PTHREAD_MUTEX_INITIALIZER };
	int seconds = argc > 1 ? atoi(argv[1]) : 4, ret, status = 0;
	struct writer w[NR_VCPUS];
	struct timespec t0, t;
	unsigned int i, pass;

	ret = vm_create(&cfg, &s.vm);
	if (!ret)
		ret = vm_load_guest(s.vm);
	if (ret) {
		fprintf(stderr, "ring_stress: VM: %s\n", strerror(-ret));
		return 2;
	}
	for (i = 0; i < NR_VCPUS; i++) {
		w[i] = (struct writer){ .s = &s, .v = s.vm->vcpus[i] };
		if (pthread_create(&w[i].th, NULL, writer_fn, &w[i])) {
			fprintf(stderr, "ring_stress: thread: %s\n", strerror(errno));
			return 2;
		}
	}
	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (pass = 0;; pass++) {
		clock_gettime(CLOCK_MONOTONIC, &t);
		if (t.tv_sec - t0.tv_sec >= seconds)
			break;
		reap_all(&s);
		if (pass % 20 == 0) {
			void *p = mmap(NULL, 2 << 20, PROT_READ | PROT_WRITE,
				       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

			if (p != MAP_FAILED) {
				memset(p, 1, 2 << 20);
				munmap(p, 2 << 20);
			}
		}
		usleep(rand() % 1000);
	}
	s.stop = true;
	for (i = 0; i < NR_VCPUS; i++) {
		pthread_join(w[i].th, NULL);
		if (w[i].err) {
			fprintf(stderr, "ring_stress: vcpu %u: %s\n", i, strerror(-w[i].err));
			status = 1;
		}
	}
	printf("ring_stress: %u+%u commands, %lu entries, %lu resets, %lu ring-full exits: %s\n",
	       w[0].commands, w[1].commands, s.entries, s.resets, s.full,
	       status ? "a vCPU failed" : "ok");
	vm_destroy(s.vm);
	return status;
}
