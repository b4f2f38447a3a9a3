// SPDX-License-Identifier: GPL-2.0
/*
 * vCPU and VM state save/restore, the way a migration uses it: a workload
 * runs in VM A, A is paused, its state saved, its RAM copied into VM B, the
 * state restored into B's vCPUs, and B runs on.  The guest must not notice:
 * its progress counter goes on from where it stopped, its self-checks (page
 * content against the version table) and its SSE/AVX register counter stay
 * clean, and the guest RAM of A and B hash equal at the switch.  A broken
 * XSAVE image must be noticed by the guest, and a destination that does not
 * match the source is refused before anything is changed.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <time.h>
#include <unistd.h>

#include "vmm/vmm.h"
#include "ksft_compat.h"

#define MEM_SIZE	(32ULL << 20)
#define NR_VCPUS	2
#define WAIT_S		60	/* nested KVM under TCG is slow: generous */
#define TIMEOUT_S	300	/* per test, for the harness */

/* The FXSAVE image keeps xmm15 at byte 400; XSAVE's YMM_Hi128 part of ymm15 at 576 + 240. */
#define XSAVE_XMM15	400
#define XSAVE_YMMH15	(576 + 240)

static struct vm *new_vm(struct __test_metadata *_metadata, unsigned int nr_vcpus,
			 uint64_t mem_size)
{
	struct vm_config cfg = { .nr_vcpus = nr_vcpus, .mem_size = mem_size };
	struct vm *vm = NULL;
	int r = vm_create(&cfg, &vm);

	EXPECT_EQ(0, r) {
		TH_LOG("vm_create: %s", strerror(-r));
	}
	return vm;
}

static void post_workload(struct __test_metadata *_metadata, struct vm *vm, uint64_t kind,
			  uint64_t rate)
{
	unsigned int i;

	for (i = 0; i < vm->nr_vcpus; i++) {
		uint64_t args[GUEST_CMD_ARGS] = { kind, rate, 0, 0x5eed + i };

		ASSERT_EQ(0, vcpu_post(vm->vcpus[i], GUEST_CMD_WORKLOAD, args));
	}
}

/* Waits until every vCPU reported at least n times in this runner. */
static bool wait_reports(struct vm_runner *r, uint64_t n)
{
	time_t end = time(NULL) + WAIT_S;
	struct vm_runner_stats st;
	unsigned int i;

	do {
		bool all = true;

		vm_runner_stats(r, &st);
		for (i = 0; i < st.nr_vcpus; i++)
			all &= st.vcpu[i].reports >= n;
		if (all)
			return true;
		usleep(20000);
	} while (time(NULL) < end);
	return false;
}

/* Host-side check of every page the workload wrote, with the guest's generator. */
static uint64_t host_verify(struct vm *vm, uint64_t *checked)
{
	uint64_t bad = 0, p;
	unsigned int i;

	*checked = 0;
	for (i = 0; i < vm->nr_vcpus; i++) {
		struct guest_vcpu_mailbox *m = vm->vcpus[i]->mb;
		uint64_t table = GUEST_WORK_BASE + m->wl_first * GUEST_PAGE_SIZE;
		uint64_t data = table + m->wl_table_pages * GUEST_PAGE_SIZE;
		const uint32_t *versions = (const uint32_t *)(vm->mem + table);

		if (!m->wl_ready)
			return ~0ULL;
		for (p = 0; p < m->wl_data_pages; p++) {
			if (!versions[p])
				continue;
			(*checked)++;
			bad += guest_page_check((const uint64_t *)(vm->mem + data +
								   p * GUEST_PAGE_SIZE),
						m->wl_first + m->wl_table_pages + p,
						versions[p]) >= 0;
		}
	}
	return bad;
}

static bool any_halted(struct vm *vm)
{
	struct kvm_mp_state mp;
	unsigned int i;

	for (i = 0; i < vm->nr_vcpus; i++)
		if (!ioctl(vm->vcpus[i]->fd, KVM_GET_MP_STATE, &mp) &&
		    mp.mp_state == KVM_MP_STATE_HALTED)
			return true;
	return false;
}

struct switch_result {
	uint64_t ops_at_switch[NR_VCPUS], fpu_at_switch[NR_VCPUS];
	uint32_t mp_state[NR_VCPUS];
	uint64_t hash_a, hash_a_later, hash_b;
};

/*
 * Runs the workload in A, pauses, moves everything to B, and starts B's
 * runner.  corrupt(), if given, damages the saved vCPU states first.
 */
static void migrate(struct __test_metadata *_metadata, struct vm *a, struct vm *b,
		    struct vm_runner **rb, struct switch_result *res, uint64_t kind,
		    void (*corrupt)(struct vcpu_state *s, unsigned int n))
{
	struct vcpu_state s[NR_VCPUS];
	struct vm_runner *ra;
	struct vm_state vs;
	unsigned int i;

	ASSERT_EQ(0, vm_load_guest(a));
	post_workload(_metadata, a, kind, 0);
	ASSERT_EQ(0, vm_runner_start(a, NULL, &ra));
	ASSERT_TRUE(wait_reports(ra, 5));
	ASSERT_EQ(0, vm_runner_pause(ra));
	/* An idle guest is to be caught asleep: pause again until one is. */
	for (i = 0; kind == GUEST_WL_IDLE && i < 100 && !any_halted(a); i++) {
		ASSERT_EQ(0, vm_runner_resume(ra));
		usleep(3000 + i * 100);
		ASSERT_EQ(0, vm_runner_pause(ra));
	}

	ASSERT_EQ(0, vm_save_state(a, &vs));
	for (i = 0; i < NR_VCPUS; i++) {
		ASSERT_EQ(0, vcpu_save_state(a->vcpus[i], &s[i]));
		res->mp_state[i] = s[i].mp_state.mp_state;
		res->ops_at_switch[i] = a->vcpus[i]->mb->ops;
		res->fpu_at_switch[i] = a->vcpus[i]->mb->fpu_counter;
		ASSERT_LT(0, res->ops_at_switch[i]);
	}
	res->hash_a = vm_mem_hash(a, 0, a->mem_size);
	ASSERT_EQ(0, vm_copy_memory(b, a));
	res->hash_b = vm_mem_hash(b, 0, b->mem_size);
	if (corrupt)
		corrupt(s, NR_VCPUS);
	ASSERT_EQ(0, vm_restore_state(b, &vs));
	for (i = 0; i < NR_VCPUS; i++) {
		ASSERT_EQ(0, vcpu_restore_state(b->vcpus[i], &s[i]));
		vcpu_state_release(&s[i]);
	}
	/* A stays put while paused (and is never run again). */
	usleep(200000);
	res->hash_a_later = vm_mem_hash(a, 0, a->mem_size);
	ASSERT_EQ(0, vm_runner_stop(ra));
	vm_runner_free(ra);

	ASSERT_EQ(0, vm_runner_start(b, NULL, rb));
}

FIXTURE(mig) {
	struct vm *a, *b;
	struct vm_runner *rb;
	struct switch_result res;
};

FIXTURE_SETUP(mig)
{
	self->a = self->b = NULL;
	self->rb = NULL;
	if (access("/dev/kvm", R_OK | W_OK))
		SETUP_SKIP("no /dev/kvm");
	self->a = new_vm(_metadata, NR_VCPUS, MEM_SIZE);
	self->b = new_vm(_metadata, NR_VCPUS, MEM_SIZE);
	ASSERT_NE(NULL, self->a);
	ASSERT_NE(NULL, self->b);
}

FIXTURE_TEARDOWN(mig)
{
	vm_runner_free(self->rb);
	vm_destroy(self->b);
	vm_destroy(self->a);
}

TEST_F_TIMEOUT(mig, workload_continues_in_another_vm, TIMEOUT_S)
{
	struct vm_runner_stats st;
	uint64_t checked, bad;
	unsigned int i;

	TH_LOG("guest features: %s%s, xsave %u bytes, %u MSRs migrated, tsc %llu kHz",
	       self->a->features & GUEST_F_AVX ? "avx " : "sse ",
	       self->a->features & GUEST_F_TSC_DEADLINE ? "tsc-deadline" : "no-timer",
	       self->a->xsave_size, self->a->nr_msrs, (unsigned long long)self->a->tsc_khz);
	migrate(_metadata, self->a, self->b, &self->rb, &self->res, GUEST_WL_RANDOM, NULL);
	EXPECT_EQ(self->res.hash_a, self->res.hash_b);
	EXPECT_EQ(self->res.hash_a, self->res.hash_a_later);

	ASSERT_TRUE(wait_reports(self->rb, 5));
	ASSERT_EQ(0, vm_runner_stop(self->rb));
	vm_runner_stats(self->rb, &st);
	for (i = 0; i < NR_VCPUS; i++) {
		struct guest_vcpu_mailbox *m = self->b->vcpus[i]->mb;

		EXPECT_TRUE(st.vcpu[i].finished);
		EXPECT_EQ(0, st.vcpu[i].status);
		/* It went on from where it stopped, and checked itself on the way. */
		EXPECT_LT(self->res.ops_at_switch[i], m->ops);
		EXPECT_LT(self->res.fpu_at_switch[i], m->fpu_counter);
		EXPECT_LT(0, m->checks);
		EXPECT_EQ(0, m->errors) {
			TH_LOG("vcpu %u: error %llu: %#llx %#llx %#llx", i,
			       (unsigned long long)m->err_code,
			       (unsigned long long)m->err_info[0],
			       (unsigned long long)m->err_info[1],
			       (unsigned long long)m->err_info[2]);
		}
		TH_LOG("vcpu %u: %llu ops in A, %llu after B, %llu self-checks", i,
		       (unsigned long long)self->res.ops_at_switch[i],
		       (unsigned long long)m->ops, (unsigned long long)m->checks);
	}
	/* The guest's full check, and the host's, of everything written. */
	for (i = 0; i < NR_VCPUS; i++) {
		uint64_t args[GUEST_CMD_ARGS] = {};

		ASSERT_EQ(0, vcpu_post(self->b->vcpus[i], GUEST_CMD_VERIFY, args));
		EXPECT_EQ(0, vcpu_run_cmd(self->b->vcpus[i], NULL, NULL));
	}
	bad = host_verify(self->b, &checked);
	EXPECT_EQ(0, bad);
	EXPECT_LT(100, checked);
}

/*
 * An idle guest sleeps in hlt on its TSC-deadline timer almost all the
 * time, so it is paused asleep: only a restored LAPIC, timer mode and
 * deadline (in that order) wake it in B.
 */
TEST_F_TIMEOUT(mig, sleeping_guest_wakes_in_another_vm, TIMEOUT_S)
{
	struct vm_runner_stats st;
	unsigned int i, halted = 0;

	if (!(self->a->features & GUEST_F_TSC_DEADLINE))
		SKIP(return, "no TSC-deadline timer: the idle guest spins");
	migrate(_metadata, self->a, self->b, &self->rb, &self->res, GUEST_WL_IDLE, NULL);
	for (i = 0; i < NR_VCPUS; i++)
		halted += self->res.mp_state[i] == KVM_MP_STATE_HALTED;
	ASSERT_LE(1, halted);
	ASSERT_TRUE(wait_reports(self->rb, 5));
	ASSERT_EQ(0, vm_runner_stop(self->rb));
	vm_runner_stats(self->rb, &st);
	for (i = 0; i < NR_VCPUS; i++) {
		EXPECT_LT(self->res.ops_at_switch[i], self->b->vcpus[i]->mb->ops);
		EXPECT_EQ(0, self->b->vcpus[i]->mb->errors);
		EXPECT_EQ(0, st.vcpu[i].status);
	}
	TH_LOG("%u of %u vCPUs were halted at the switch", halted, NR_VCPUS);
}

static void corrupt_fpu(struct vcpu_state *s, unsigned int n)
{
	/* vCPU 0: the low lane (xmm15); vCPU 1: the upper lane of ymm15 if kept. */
	s[0].xsave->region[XSAVE_XMM15 / 4] ^= 0x10;
	s[1].xsave->region[XSAVE_YMMH15 / 4] ^= 0x10;
}

TEST_F_TIMEOUT(mig, broken_xsave_restore_is_detected, TIMEOUT_S)
{
	struct guest_vcpu_mailbox *m0 = self->b->vcpus[0]->mb, *m1 = self->b->vcpus[1]->mb;

	migrate(_metadata, self->a, self->b, &self->rb, &self->res, GUEST_WL_RANDOM,
		corrupt_fpu);
	ASSERT_TRUE(wait_reports(self->rb, 2));
	ASSERT_EQ(0, vm_runner_stop(self->rb));
	EXPECT_LT(0, m0->errors);
	EXPECT_EQ(GUEST_ERR_FPU, m0->err_code);
	if (self->b->features & GUEST_F_AVX) {
		EXPECT_LT(0, m1->errors);
		EXPECT_EQ(GUEST_ERR_FPU, m1->err_code);
	} else {
		TH_LOG("no AVX: only the xmm15 half is checked");
	}
}

/* A destination that does not match is refused, and left as it was. */
TEST(restore_refuses_mismatched_vm)
{
	struct vm *a, *fewer, *bigger, *b;
	struct vcpu_state s0, s1, bad;
	struct kvm_regs before, after;
	struct vm_state vs;

	if (access("/dev/kvm", R_OK | W_OK))
		SKIP(return, "no /dev/kvm");
	a = new_vm(_metadata, NR_VCPUS, MEM_SIZE);
	fewer = new_vm(_metadata, 1, MEM_SIZE);
	bigger = new_vm(_metadata, NR_VCPUS, 2 * MEM_SIZE);
	b = new_vm(_metadata, NR_VCPUS, MEM_SIZE);
	ASSERT_TRUE(a && fewer && bigger && b);
	ASSERT_EQ(0, vm_load_guest(a));
	ASSERT_EQ(0, vm_load_guest(b));
	ASSERT_EQ(0, vm_save_state(a, &vs));
	ASSERT_EQ(0, vcpu_save_state(a->vcpus[0], &s0));
	ASSERT_EQ(0, vcpu_save_state(a->vcpus[1], &s1));

	EXPECT_EQ(-EINVAL, vm_restore_state(fewer, &vs));
	EXPECT_EQ(-EINVAL, vm_restore_state(bigger, &vs));
	EXPECT_EQ(-EINVAL, vm_copy_memory(bigger, a));
	EXPECT_EQ(-EINVAL, vm_copy_memory(fewer, bigger));

	ASSERT_EQ(0, ioctl(b->vcpus[0]->fd, KVM_GET_REGS, &before));
	/* vCPU 1's state into vCPU 0: a different APIC ID. */
	EXPECT_EQ(-EINVAL, vcpu_restore_state(b->vcpus[0], &s1));
	/* An XSAVE image larger than this KVM's. */
	bad = s0;
	bad.xsave_size = b->xsave_size + 64;
	EXPECT_EQ(-EINVAL, vcpu_restore_state(b->vcpus[0], &bad));
	bad = s0;
	bad.xsave = NULL;
	EXPECT_EQ(-EINVAL, vcpu_restore_state(b->vcpus[0], &bad));
	/* An MSR this KVM does not migrate; a reserved field set; too many. */
	bad = s0;
	ASSERT_LT(0, bad.nr_msrs);
	bad.msrs[0].index = 0x12345678;
	EXPECT_EQ(-EOPNOTSUPP, vcpu_restore_state(b->vcpus[0], &bad));
	bad = s0;
	bad.msrs[0].reserved = 1;
	EXPECT_EQ(-EINVAL, vcpu_restore_state(b->vcpus[0], &bad));
	bad = s0;
	bad.nr_msrs = VCPU_MAX_MSRS + 1;
	EXPECT_EQ(-EINVAL, vcpu_restore_state(b->vcpus[0], &bad));
	bad = s0;
	bad.xcrs.flags = 1;
	EXPECT_EQ(-EINVAL, vcpu_restore_state(b->vcpus[0], &bad));
	ASSERT_EQ(0, ioctl(b->vcpus[0]->fd, KVM_GET_REGS, &after));
	EXPECT_EQ(0, memcmp(&before, &after, sizeof(before)));
	/* The matching one is taken. */
	EXPECT_EQ(0, vm_restore_state(b, &vs));
	EXPECT_EQ(0, vcpu_restore_state(b->vcpus[0], &s0));
	EXPECT_EQ(0, vcpu_restore_state(b->vcpus[1], &s1));

	vcpu_state_release(&s0);
	vcpu_state_release(&s1);
	vm_destroy(b);
	vm_destroy(bigger);
	vm_destroy(fewer);
	vm_destroy(a);
}

TEST_HARNESS_MAIN
