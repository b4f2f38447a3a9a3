// SPDX-License-Identifier: GPL-2.0
/*
 * The VMM library's inputs and edges: every rejected configuration and
 * command gets its error and changes nothing; ring entries of a VM with
 * several memslots name the right pages; a guest exception is reported
 * with its vector; the bitmap mode logs what the guest wrote; the pages
 * found populated (round 0 skips the rest unread) include every page the
 * guest wrote, in anonymous and in memfd RAM.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "vmm/vmm.h"
#include "ksft_compat.h"

#define MEM_SIZE	(32ULL << 20)

static bool have_kvm(void)
{
	return !access("/dev/kvm", R_OK | W_OK);
}

TEST(create_rejects_bad_config)
{
	static const struct {
		struct vm_config cfg;
		int err;
	} bad[] = {
		{ { .nr_vcpus = 0, .mem_size = MEM_SIZE }, -EINVAL },
		{ { .nr_vcpus = VM_MAX_VCPUS + 1, .mem_size = MEM_SIZE }, -EINVAL },
		{ { .nr_vcpus = 1, .mem_size = MEM_SIZE + 4096 }, -EINVAL },
		{ { .nr_vcpus = 1, .mem_size = VM_MIN_MEM - GUEST_LARGE_PAGE_SIZE }, -EINVAL },
		{ { .nr_vcpus = 1, .mem_size = VM_MAX_MEM + GUEST_LARGE_PAGE_SIZE }, -EINVAL },
		{ { .nr_vcpus = 1, .mem_size = MEM_SIZE, .slot_size = 4096 + 512 }, -EINVAL },
		{ { .nr_vcpus = 1, .mem_size = MEM_SIZE, .slot_size = 4096 }, -E2BIG },
		{ { .nr_vcpus = 1, .mem_size = MEM_SIZE, .ring_entries = 1000 }, -EINVAL },
		{ { .nr_vcpus = 1, .mem_size = MEM_SIZE, .ring_entries = 128 }, -EINVAL },
		{ { .nr_vcpus = 1, .mem_size = MEM_SIZE, .ring_entries = 4096,
		    .manual_protect = true }, -EINVAL },
	};
	struct vm *vm;
	unsigned int i;

	/* Checked before /dev/kvm is opened: runs anywhere. */
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		vm = (struct vm *)1;
		EXPECT_EQ(bad[i].err, vm_create(&bad[i].cfg, &vm)) {
			TH_LOG("case %u", i);
		}
		EXPECT_EQ(NULL, vm);
	}
}

TEST(create_rejects_ring_larger_than_kvm_allows)
{
	struct vm_config cfg = { .nr_vcpus = 1, .mem_size = MEM_SIZE, .ring_entries = 1U << 24 };
	struct vm *vm;

	if (!have_kvm())
		SKIP(return, "no /dev/kvm");
	if (vm_check_cap(NULL, KVM_CAP_DIRTY_LOG_RING) <= 0)
		SKIP(return, "no dirty ring");
	EXPECT_EQ(-E2BIG, vm_create(&cfg, &vm));
	EXPECT_EQ(NULL, vm);
}

FIXTURE(api) {
	struct vm *vm;
};

FIXTURE_SETUP(api)
{
	struct vm_config cfg = { .nr_vcpus = 1, .mem_size = MEM_SIZE };

	self->vm = NULL;
	if (!have_kvm())
		SETUP_SKIP("no /dev/kvm");
	ASSERT_EQ(0, vm_create(&cfg, &self->vm));
	ASSERT_EQ(0, vm_load_guest(self->vm));
}

FIXTURE_TEARDOWN(api)
{
	vm_destroy(self->vm);
}

TEST_F(api, post_and_run_reject_misuse)
{
	uint64_t args[GUEST_CMD_ARGS] = { GUEST_WORK_BASE, 1, 1, 1 };
	struct vcpu *v = self->vm->vcpus[0];
	uint32_t fetch = 0;

	EXPECT_EQ(-EINVAL, vcpu_post(v, GUEST_CMD_NONE, args));
	EXPECT_EQ(-EINVAL, vcpu_post(v, GUEST_CMD_MAX + 1, args));
	EXPECT_EQ(-ENOMSG, vcpu_run_cmd(v, NULL, NULL));
	ASSERT_EQ(0, vcpu_post(v, GUEST_CMD_WRITE_RANGE, args));
	EXPECT_EQ(-EBUSY, vcpu_post(v, GUEST_CMD_WRITE_RANGE, args));
	EXPECT_EQ(0, vcpu_run_cmd(v, NULL, NULL));
	/* Done: nothing left to run. */
	EXPECT_EQ(-ENOMSG, vcpu_run_cmd(v, NULL, NULL));
	/* No ring on this VM. */
	EXPECT_EQ(-ENODEV, vcpu_ring_reap(v, &fetch, true, NULL, NULL));
	EXPECT_EQ(-ENODEV, vm_reset_dirty_rings(self->vm));
	/* Slots and offsets that name no page. */
	EXPECT_EQ(-EINVAL, vm_slot_gfn(self->vm, 1, 0));
	EXPECT_EQ(-EINVAL, vm_slot_gfn(self->vm, 1U << 16, 0));
	EXPECT_EQ(-EINVAL, vm_slot_gfn(self->vm, 0, MEM_SIZE / GUEST_PAGE_SIZE));
	EXPECT_EQ(7, vm_slot_gfn(self->vm, 0, 7));
}

/* The guest checks its arguments and writes nothing when they are bad. */
TEST_F(api, guest_rejects_bad_arguments)
{
	const uint64_t end = MEM_SIZE, w = GUEST_WORK_BASE;
	static const struct {
		uint32_t cmd;
		uint64_t args[4];
	} bad[] = {
		{ GUEST_CMD_WRITE_RANGE, { GUEST_CODE_BASE, 1, 1, 1 } },	/* the VMM's area */
		{ GUEST_CMD_WRITE_RANGE, { MEM_SIZE, 1, 1, 1 } },		/* beyond RAM */
		{ GUEST_CMD_WRITE_RANGE, { GUEST_WORK_BASE + 4, 1, 1, 1 } },	/* unaligned */
		{ GUEST_CMD_WRITE_RANGE, { GUEST_WORK_BASE, 2, 0, 1 } },	/* stride 0 */
		{ GUEST_CMD_WRITE_RANGE, { GUEST_WORK_BASE, (MEM_SIZE - GUEST_WORK_BASE) / 4096 + 1, 1, 1 } },
		{ GUEST_CMD_WRITE_RANGE, { GUEST_WORK_BASE, 3, 1ULL << 62, 1 } },	/* overflow */
		{ GUEST_CMD_WRITE_RANDOM, { GUEST_WORK_BASE, 0, 1, 1 } },	/* no pages */
		{ GUEST_CMD_WRITE_RANDOM, { GUEST_WORK_BASE + 8, 1, 1, 1 } },	/* unaligned */
		{ GUEST_CMD_WRITE_RANDOM, { GUEST_WORK_BASE, (MEM_SIZE - GUEST_WORK_BASE) / 4096 + 1, 1, 1 } },
		{ GUEST_CMD_WRITE_LIST, { MEM_SIZE - 8, 2, 0, 0 } },		/* list beyond RAM */
		{ GUEST_CMD_WRITE_LIST, { GUEST_SCRATCH_BASE + 4, 1, 0, 0 } },	/* unaligned list */
	};
	struct vcpu *v = self->vm->vcpus[0];
	uint64_t hash = vm_mem_hash(self->vm, w, end - w);
	unsigned int i;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		uint64_t args[GUEST_CMD_ARGS] = {};

		memcpy(args, bad[i].args, sizeof(bad[i].args));
		ASSERT_EQ(0, vcpu_post(v, bad[i].cmd, args));
		EXPECT_EQ(-ERANGE, vcpu_run_cmd(v, NULL, NULL)) {
			TH_LOG("case %u", i);
		}
	}
	EXPECT_EQ(hash, vm_mem_hash(self->vm, w, end - w));
	EXPECT_EQ(0, v->mb->errors);
}

TEST_F(api, guest_exception_is_reported)
{
	uint64_t args[GUEST_CMD_ARGS] = { GUEST_WORK_BASE, 0, 1, 1 };
	struct vcpu *v = self->vm->vcpus[0];
	struct kvm_regs regs;

	ASSERT_EQ(0, vcpu_post(v, GUEST_CMD_WRITE_RANGE, args));
	/* Jump to an address the page tables do not map: #PF on the fetch. */
	ASSERT_EQ(0, ioctl(v->fd, KVM_GET_REGS, &regs));
	regs.rip = 1ULL << 30;
	ASSERT_EQ(0, ioctl(v->fd, KVM_SET_REGS, &regs));
	EXPECT_EQ(-EFAULT, vcpu_run_cmd(v, NULL, NULL));
	EXPECT_EQ(GUEST_ERR_EXCEPTION, v->mb->err_code);
	EXPECT_EQ(14, v->mb->err_info[0]);
	EXPECT_EQ(1ULL << 30, v->mb->err_info[2]);
	EXPECT_EQ(1ULL << 30, v->mb->err_info[3]);
	EXPECT_EQ(1ULL << 30, v->last_exit_rip);
	/* vm_load_guest starts it afresh. */
	ASSERT_EQ(0, vm_load_guest(self->vm));
	args[1] = 4;
	ASSERT_EQ(0, vcpu_post(v, GUEST_CMD_WRITE_RANGE, args));
	EXPECT_EQ(0, vcpu_run_cmd(v, NULL, NULL));
}

/* Four slots: ring entries name (slot, offset), and that maps back to the gfn written. */
struct slot_log {
	struct vm *vm;
	uint64_t n, bad, seen[4];
	uint32_t slots_seen;
};

static void on_entry(void *ctx, uint32_t slot, uint64_t offset)
{
	struct slot_log *l = ctx;
	int64_t gfn = vm_slot_gfn(l->vm, slot, offset);
	unsigned int k;

	l->n++;
	if (gfn < 0) {
		l->bad++;
		return;
	}
	for (k = 0; k < 4; k++)
		if ((uint64_t)gfn == (GUEST_WORK_BASE >> 12) + k * 2048 + 5)
			l->seen[k]++, l->slots_seen |= 1U << slot;
}

TEST(ring_entries_across_slots)
{
	struct vm_config cfg = {
		.nr_vcpus = 1, .mem_size = MEM_SIZE, .slot_size = 8ULL << 20,
		.ring_entries = 4096, .log_dirty = true,
	};
	struct slot_log l = {};
	uint64_t list_gpa, *list, args[GUEST_CMD_ARGS] = {};
	struct vm *vm;
	uint32_t fetch = 0;
	unsigned int k;

	if (!have_kvm())
		SKIP(return, "no /dev/kvm");
	if (vm_check_cap(NULL, KVM_CAP_DIRTY_LOG_RING) <= 0)
		SKIP(return, "no dirty ring");
	ASSERT_EQ(0, vm_create(&cfg, &vm));
	ASSERT_EQ(4, vm->nr_slots);
	ASSERT_EQ(0, vm_load_guest(vm));
	l.vm = vm;
	/* One page 8 MiB apart from the next: one in each slot (the first after the VMM's area). */
	list = vcpu_scratch(vm->vcpus[0], &list_gpa);
	for (k = 0; k < 4; k++)
		list[k] = GUEST_WORK_BASE + (k * 2048 + 5) * GUEST_PAGE_SIZE;
	args[0] = list_gpa;
	args[1] = 4;
	ASSERT_EQ(0, vcpu_post(vm->vcpus[0], GUEST_CMD_WRITE_LIST, args));
	ASSERT_EQ(0, vcpu_run_cmd(vm->vcpus[0], NULL, NULL));
	ASSERT_LT(0, vcpu_ring_reap(vm->vcpus[0], &fetch, true, on_entry, &l));
	EXPECT_EQ(0, l.bad);
	for (k = 0; k < 4; k++)
		EXPECT_EQ(1, l.seen[k]);
	EXPECT_EQ(0xf, l.slots_seen);
	/* Logging off: a write is not logged. */
	ASSERT_LE(0, vm_reset_dirty_rings(vm));
	ASSERT_EQ(0, vm_set_dirty_logging(vm, false));
	for (k = 0; k < vm->nr_slots; k++)
		EXPECT_EQ(0, vm->slots[k].flags & KVM_MEM_LOG_DIRTY_PAGES);
	memset(l.seen, 0, sizeof(l.seen));
	ASSERT_EQ(0, vcpu_post(vm->vcpus[0], GUEST_CMD_WRITE_LIST, args));
	ASSERT_EQ(0, vcpu_run_cmd(vm->vcpus[0], NULL, NULL));
	vcpu_ring_reap(vm->vcpus[0], &fetch, true, on_entry, &l);
	for (k = 0; k < 4; k++)
		EXPECT_EQ(0, l.seen[k]);
	vm_destroy(vm);
}

/* Bitmap mode (manual protect): KVM_GET_DIRTY_LOG shows the guest's writes. */
TEST(bitmap_mode_logs_guest_writes)
{
	struct vm_config cfg = { .nr_vcpus = 1, .mem_size = MEM_SIZE, .manual_protect = true };
	uint64_t args[GUEST_CMD_ARGS] = { GUEST_WORK_BASE + 64 * GUEST_PAGE_SIZE, 10, 3, 1 };
	uint64_t *bitmap, gfn, k;
	struct kvm_dirty_log log = { .slot = 0 };
	struct kvm_clear_dirty_log clear = { .slot = 0 };
	struct vm *vm;

	if (!have_kvm())
		SKIP(return, "no /dev/kvm");
	ASSERT_EQ(0, vm_create(&cfg, &vm));
	EXPECT_TRUE(vm->manual_protect & KVM_DIRTY_LOG_MANUAL_PROTECT_ENABLE);
	ASSERT_EQ(0, vm_load_guest(vm));
	ASSERT_EQ(0, vm_set_dirty_logging(vm, true));
	bitmap = calloc(MEM_SIZE / GUEST_PAGE_SIZE / 64, 8);
	ASSERT_NE(NULL, bitmap);
	log.dirty_bitmap = bitmap;
	/* With INITIALLY_SET everything starts dirty: clear it all first. */
	ASSERT_EQ(0, ioctl(vm->fd, KVM_GET_DIRTY_LOG, &log));
	clear.first_page = 0;
	clear.num_pages = MEM_SIZE / GUEST_PAGE_SIZE;
	clear.dirty_bitmap = bitmap;
	ASSERT_EQ(0, ioctl(vm->fd, KVM_CLEAR_DIRTY_LOG, &clear));

	ASSERT_EQ(0, vcpu_post(vm->vcpus[0], GUEST_CMD_WRITE_RANGE, args));
	ASSERT_EQ(0, vcpu_run_cmd(vm->vcpus[0], NULL, NULL));
	memset(bitmap, 0, MEM_SIZE / GUEST_PAGE_SIZE / 8);
	ASSERT_EQ(0, ioctl(vm->fd, KVM_GET_DIRTY_LOG, &log));
	for (gfn = GUEST_WORK_BASE / GUEST_PAGE_SIZE; gfn < MEM_SIZE / GUEST_PAGE_SIZE; gfn++) {
		bool want = false;

		for (k = 0; k < 10; k++)
			want |= gfn == GUEST_WORK_BASE / GUEST_PAGE_SIZE + 64 + 3 * k;
		EXPECT_EQ(want, !!(bitmap[gfn / 64] & (1ULL << (gfn % 64)))) {
			TH_LOG("gfn %#llx", (unsigned long long)gfn);
		}
	}
	free(bitmap);
	vm_destroy(vm);
}

/*
 * vm_mem_populated(): a page it leaves out is sent as zero unread, so every
 * page the guest wrote must be in it (an off-by-one in the pagemap offset
 * or bit would lose them), and a 2 MiB region nobody touched must not (or
 * round 0 reads all RAM).  Anonymous RAM may count a whole huge page for
 * one write; a memfd counts exactly the pages written.
 */
FIXTURE(ram) {
	struct vm *vm;
};

FIXTURE_VARIANT(ram) {
	bool memfd, incoming;
};

FIXTURE_VARIANT_ADD(ram, anon) {
	.memfd = false,
};

FIXTURE_VARIANT_ADD(ram, memfd) {
	.memfd = true,
};

FIXTURE_VARIANT_ADD(ram, incoming) {
	.incoming = true,
};

FIXTURE_SETUP(ram)
{
	struct vm_config cfg = { .nr_vcpus = 1, .mem_size = MEM_SIZE, .ram_memfd = variant->memfd,
				 .ram_incoming = variant->incoming };

	self->vm = NULL;
	if (!have_kvm())
		SKIP(return, "no /dev/kvm");
	ASSERT_EQ(0, vm_create(&cfg, &self->vm));
	ASSERT_EQ(variant->memfd, self->vm->mem_fd >= 0);
	if (!variant->memfd)	/* where a huge page can back each 2 MiB of the guest */
		ASSERT_EQ(0, (uintptr_t)self->vm->mem % GUEST_LARGE_PAGE_SIZE);
	ASSERT_EQ(0, vm_load_guest(self->vm));
}

FIXTURE_TEARDOWN(ram)
{
	vm_destroy(self->vm);
}

TEST_F(ram, populated_holds_every_written_page)
{
	/* 37 pages, stride 5, from 8 MiB + 3 pages: several 2 MiB regions, odd offsets. */
	const uint64_t first = (8ULL << 20) / GUEST_PAGE_SIZE + 3, n = 37, stride = 5;
	uint64_t args[GUEST_CMD_ARGS] = { first * GUEST_PAGE_SIZE, n, stride, 1 };
	const uint64_t npages = MEM_SIZE / GUEST_PAGE_SIZE, huge = GUEST_LARGE_PAGE_SIZE / GUEST_PAGE_SIZE;
	uint64_t *bits, g, host = npages - huge + 7;
	int64_t set;

	bits = calloc(npages / 64, sizeof(*bits));
	ASSERT_NE(NULL, bits);
	ASSERT_EQ(0, vcpu_post(self->vm->vcpus[0], GUEST_CMD_WRITE_RANGE, args));
	ASSERT_EQ(0, vcpu_run_cmd(self->vm->vcpus[0], NULL, NULL));
	self->vm->mem[host * GUEST_PAGE_SIZE + 100] = 1;	/* the host writes one too */
	set = vm_mem_populated(self->vm, bits);
	ASSERT_LT(0, set);
	for (g = 0; g < n; g++)
		EXPECT_TRUE(bits[(first + g * stride) / 64] & (1ULL << ((first + g * stride) % 64))) {
			TH_LOG("guest-written gfn %#llx not populated", (unsigned long long)(first + g * stride));
		}
	EXPECT_TRUE(bits[host / 64] & (1ULL << (host % 64)));
	/* 4-6 MiB: below the writes, above what the loader wrote; nobody touched it. */
	for (g = (4ULL << 20) / GUEST_PAGE_SIZE; g < (6ULL << 20) / GUEST_PAGE_SIZE; g++)
		EXPECT_FALSE(bits[g / 64] & (1ULL << (g % 64))) {
			TH_LOG("untouched gfn %#llx populated", (unsigned long long)g);
			break;
		}
	/* Small pages: exactly the pages written (the host's neighbour stays out). */
	if (variant->memfd || variant->incoming)
		EXPECT_FALSE(bits[(host + 1) / 64] & (1ULL << ((host + 1) % 64)));
	TH_LOG("%s: %lld of %llu pages populated",
	       variant->memfd ? "memfd" : variant->incoming ? "incoming" : "anon",
	       (long long)set, (unsigned long long)npages);
	free(bits);
}

/*
 * RAM a migration fills: one arriving page costs one small page, not a
 * cleared 2 MiB (the destination's round 0 was 4x slower with huge pages);
 * once the guest runs there, its new writes get huge pages again.  Catches
 * MADV_HUGEPAGE on incoming RAM, and a vm_ram_hugepages() that does nothing.
 */
TEST(incoming_ram_small_pages_then_huge)
{
	struct vm_config cfg = { .nr_vcpus = 1, .mem_size = MEM_SIZE, .ram_incoming = true };
	const uint64_t npages = MEM_SIZE / GUEST_PAGE_SIZE, huge = GUEST_LARGE_PAGE_SIZE / GUEST_PAGE_SIZE;
	uint64_t *bits;
	struct vm *vm;
	char thp[64] = "";
	FILE *f;

	if (!have_kvm())
		SKIP(return, "no /dev/kvm");
	f = fopen("/sys/kernel/mm/transparent_hugepage/enabled", "r");
	if (!f || !fgets(thp, sizeof(thp), f) || strstr(thp, "[never]")) {
		if (f)
			fclose(f);
		SKIP(return, "no transparent huge pages here");
	}
	fclose(f);
	ASSERT_EQ(0, vm_create(&cfg, &vm));
	bits = calloc(npages / 64, sizeof(*bits));
	ASSERT_NE(NULL, bits);
	vm->mem[(npages - 2 * huge) * GUEST_PAGE_SIZE] = 1;	/* as a page arriving */
	EXPECT_EQ(1, vm_mem_populated(vm, bits));
	ASSERT_EQ(0, vm_ram_hugepages(vm));
	memset(bits, 0, npages / 8);
	vm->mem[(npages - huge) * GUEST_PAGE_SIZE] = 1;	/* as the guest, running here */
	EXPECT_EQ(1 + huge, vm_mem_populated(vm, bits));
	free(bits);
	vm_destroy(vm);
}

TEST_HARNESS_MAIN
