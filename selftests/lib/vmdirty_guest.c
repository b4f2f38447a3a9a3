// SPDX-License-Identifier: GPL-2.0
/*
 * Guest-side helpers for the vmdirty.ko selftests (see vmdirty_guest.h).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "vmdirty_guest.h"

int guest_session_setup(struct guest_session *gs, const struct vm_config *cfg,
			bool attach, const char **what)
{
	int ret;

	gs->vm = NULL;
	gs->hdr = NULL;
	gs->fd = vmdirty_open();
	*what = "vmdirty.ko is not loaded";
	if (gs->fd == -ENOENT)
		return GUEST_SESSION_SKIP;
	*what = "open /dev/vmdirty";
	if (gs->fd < 0)
		return gs->fd;
	*what = "no /dev/kvm with KVM_CAP_DIRTY_LOG_RING_ACQ_REL";
	if (access("/dev/kvm", R_OK | W_OK) ||
	    vm_check_cap(NULL, KVM_CAP_DIRTY_LOG_RING_ACQ_REL) <= 0)
		return GUEST_SESSION_SKIP;
	*what = "vm_create";
	ret = vm_create(cfg, &gs->vm);
	if (ret)
		return ret;
	*what = "vm_load_guest";
	ret = vm_load_guest(gs->vm);
	if (ret)
		return ret < 0 ? ret : -EINVAL;
	*what = "ATTACH and mmap";
	return attach ? guest_session_attach(gs) : 0;
}

int guest_session_attach(struct guest_session *gs)
{
	int ret = vmdirty_attach(gs->fd, gs->vm->fd, &gs->attach);

	if (ret)
		return ret;
	gs->hdr = vmdirty_map(gs->fd, gs->attach.region_size);
	return gs->hdr ? 0 : -errno;
}

void guest_session_close(struct guest_session *gs)
{
	if (gs->hdr)
		munmap(gs->hdr, gs->attach.region_size);
	gs->hdr = NULL;
	if (gs->fd >= 0)
		close(gs->fd);
	gs->fd = -1;
}

void guest_session_teardown(struct guest_session *gs)
{
	guest_session_close(gs);
	vm_destroy(gs->vm);
	gs->vm = NULL;
}

static void *vcpu_thread_fn(void *arg)
{
	struct vcpu_thread *t = arg;

	t->ret = vcpu_run_cmd(t->v, t->ring_full, t->ctx);
	return NULL;
}

int vcpu_thread_start(struct vcpu_thread *t, struct vcpu *v,
		      int (*ring_full)(struct vcpu *v, void *ctx), void *ctx)
{
	t->v = v;
	t->ring_full = ring_full;
	t->ctx = ctx;
	t->ret = 0;
	return -pthread_create(&t->th, NULL, vcpu_thread_fn, t);
}

int vcpu_thread_join(struct vcpu_thread *t)
{
	pthread_join(t->th, NULL);
	return t->ret;
}

int vm_run_posted(struct vm *vm, int (*ring_full)(struct vcpu *v, void *ctx), void *ctx)
{
	struct vcpu_thread t[VM_MAX_VCPUS];
	bool started[VM_MAX_VCPUS] = { 0 };
	unsigned int i;
	int ret = 0, r;

	for (i = 0; i < vm->nr_vcpus; i++) {
		struct vcpu *v = vm->vcpus[i];

		if (v->mb->cmd_seq == v->mb->done_seq)
			continue;
		r = vcpu_thread_start(&t[i], v, ring_full, ctx);
		if (r) {
			ret = ret ?: r;
			continue;
		}
		started[i] = true;
	}
	for (i = 0; i < vm->nr_vcpus; i++) {
		if (!started[i])
			continue;
		r = vcpu_thread_join(&t[i]);
		if (r < 0 && !ret)
			ret = r;
	}
	return ret;
}

int vcpu_post_list(struct vcpu *v, const uint64_t *gpas, uint64_t n)
{
	uint64_t gpa, args[GUEST_CMD_ARGS] = { 0 };
	uint64_t *list = vcpu_scratch(v, &gpa);

	if (n * sizeof(uint64_t) > GUEST_SCRATCH_SIZE)
		return -E2BIG;
	memcpy(list, gpas, n * sizeof(uint64_t));
	args[0] = gpa;
	args[1] = n;
	return vcpu_post(v, GUEST_CMD_WRITE_LIST, args);
}

int gfn_set_init(struct gfn_set *s, uint64_t npages)
{
	memset(s, 0, sizeof(*s));
	s->in = calloc(npages, 1);
	if (!s->in)
		return -ENOMEM;
	s->npages = npages;
	return 0;
}

void gfn_set_free(struct gfn_set *s)
{
	free(s->in);
	s->in = NULL;
}

void gfn_set_clear(struct gfn_set *s)
{
	memset(s->in, 0, s->npages);
	s->count = s->entries = s->bad = 0;
}

void gfn_set_add(struct gfn_set *s, int64_t gfn)
{
	s->entries++;
	if (gfn < 0 || (uint64_t)gfn >= s->npages) {
		s->bad++;
		return;
	}
	if (!s->in[gfn]++)
		s->count++;
	if (!s->in[gfn])	/* saturate, stay in the set */
		s->in[gfn] = 255;
}

struct peek_ctx {
	struct vm *vm;
	struct gfn_set *all, *mine;
};

static void peek_entry(void *arg, uint32_t slot, uint64_t offset)
{
	struct peek_ctx *c = arg;
	int64_t gfn = vm_slot_gfn(c->vm, slot, offset);

	gfn_set_add(c->all, gfn);
	if (c->mine)
		gfn_set_add(c->mine, gfn);
}

int vm_peek_rings(struct vm *vm, uint32_t *cursor, struct gfn_set *all,
		  struct gfn_set *per_vcpu)
{
	unsigned int i;
	int n, total = 0;

	for (i = 0; i < vm->nr_vcpus; i++) {
		struct peek_ctx c = {
			.vm = vm, .all = all, .mine = per_vcpu ? &per_vcpu[i] : NULL,
		};

		n = vcpu_ring_reap(vm->vcpus[i], &cursor[i], false, peek_entry, &c);
		if (n < 0)
			return n;
		total += n;
	}
	return total;
}

void shm_to_gfn_set(struct vmdirty_shm_header *hdr, unsigned int set, struct gfn_set *s)
{
	struct vmdirty_shm_slot *slot = vmdirty_shm_slots(hdr);
	uint32_t i;
	uint64_t p;

	for (i = 0; i < hdr->nr_slots; i++, slot++) {
		const uint64_t *bitmap = vmdirty_shm_bitmap(hdr, slot, set);

		for (p = 0; p < slot->npages; p++)
			if (vmdirty_test_bit(bitmap, p))
				gfn_set_add(s, slot->base_gfn + p);
	}
}

bool guest_bookkeeping_page(uint64_t gfn, uint64_t mem_size, unsigned int nr_vcpus)
{
	uint64_t gpa = gfn * GUEST_PAGE_SIZE;
	uint64_t pt_end = GUEST_PD_GPA + ((mem_size + (1ULL << 30) - 1) >> 30) * GUEST_PAGE_SIZE;

	return (gpa >= GUEST_GDT_GPA && gpa <= GUEST_IDT_GPA) ||
	       (gpa >= GUEST_MAILBOX_GPA && gpa < GUEST_MAILBOX_GPA + GUEST_MAILBOX_SIZE) ||
	       (gpa >= GUEST_PML4_GPA && gpa < pt_end) ||
	       (gpa >= GUEST_CODE_BASE && gpa < GUEST_CODE_BASE + GUEST_CODE_MAX) ||
	       (gpa >= GUEST_STACK_BASE && gpa < GUEST_STACK_BASE + nr_vcpus * GUEST_STACK_SIZE) ||
	       (gpa >= GUEST_SCRATCH_BASE &&
		gpa < GUEST_SCRATCH_BASE + nr_vcpus * GUEST_SCRATCH_SIZE);
}
