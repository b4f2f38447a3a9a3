// SPDX-License-Identifier: GPL-2.0
/*
 * vmdirty: self-tests a DEBUG build runs at load time (make module DEBUG=1),
 * each group ending in one "<group> self-tests: pass" or "FAIL" line that
 * the test host counts (selftests/vm/run-suite.sh): on a session with a
 * made-up layout and a ring that is plain memory, the batch ordering (order,
 * duplicates, dropped entries, what KVM's reset merges), the pending bits
 * reaching the live set and the swap of the two bit sets; the netlink dump
 * generation's wrap; and the VM file test of kernels without file_is_kvm()
 * (compat.h) against look-alike files this module makes itself.
 */
#include <linux/anon_inodes.h>
#include <linux/completion.h>
#include <linux/file.h>
#include <linux/kthread.h>
#include <linux/kvm_host.h>
#include <linux/slab.h>
#include <linux/vmalloc.h>

#include "session.h"
#include "vmdirty.h"

#define RING_SIZE	512
#define BATCH_START	400	/* the batch wraps around the ring's end */
#define BATCH_LEN	300

static const struct {
	u32 key;
	u64 npages;
} vmdirty_selftest_layout[] = {
	{ 0 << 16 | 0, 5000 },
	{ 0 << 16 | 3, 100 },
	{ 1 << 16 | 0, 64 },
};

static u32 vmdirty_selftest_rand(u32 *state)
{
	*state = *state * 1103515245 + 12345;
	return *state >> 8;
}

/* 80% valid entries, often repeated; the rest outside a slot or unknown. */
static void vmdirty_selftest_fill(struct kvm_dirty_gfn *ring, u32 seed)
{
	u32 i, r, state = seed;

	for (i = 0; i < BATCH_LEN; i++) {
		struct kvm_dirty_gfn *e = &ring[(BATCH_START + i) % RING_SIZE];
		u32 which = vmdirty_selftest_rand(&state) % ARRAY_SIZE(vmdirty_selftest_layout);

		r = vmdirty_selftest_rand(&state) % 10;
		e->flags = KVM_DIRTY_GFN_F_DIRTY;
		e->slot = vmdirty_selftest_layout[which].key;
		e->offset = vmdirty_selftest_rand(&state) % vmdirty_selftest_layout[which].npages;
		if (r == 8)
			e->offset += vmdirty_selftest_layout[which].npages;
		else if (r == 9)
			e->slot = 0 << 16 | 7;
	}
}

/* Rounds of KVM's reset (kvm_dirty_ring_reset) over the batch. */
static u32 vmdirty_selftest_rounds(const struct kvm_dirty_gfn *ring)
{
	u64 cur_offset = 0, mask = 0;
	u32 i, rounds = 0, cur_slot = 0;

	for (i = 0; i < BATCH_LEN; i++) {
		const struct kvm_dirty_gfn *e = &ring[(BATCH_START + i) % RING_SIZE];
		s64 delta = e->offset - cur_offset;

		if (rounds && e->slot == cur_slot) {
			if (delta >= 0 && delta < 64) {
				mask |= 1ULL << delta;
				continue;
			}
			if (delta > -64 && delta < 0 && (mask << -delta >> -delta) == mask) {
				mask = (mask << -delta) | 1;
				cur_offset = e->offset;
				continue;
			}
		}
		rounds++;
		cur_slot = e->slot;
		cur_offset = e->offset;
		mask = 1;
	}
	return rounds;
}

static bool vmdirty_selftest_bit(struct vmdirty_session *s, u32 key, u64 offset,
				 u64 *bit)
{
	int idx = vmdirty_slots_find(s, key, offset);

	if (idx < 0)
		return false;
	*bit = s->slots[idx].first_bit + offset;
	return true;
}

static bool vmdirty_selftest_zero(const struct vmdirty_bits *b, u64 nr_bits)
{
	return !memchr_inv(b->bitmap, 0, (nr_bits / 64 + nr_bits / 4096) * 8);
}

static bool vmdirty_selftest_one(struct vmdirty_session *s, u32 seed)
{
	struct kvm_dirty_gfn *ring, *in;
	struct vmdirty_bits *live = &s->sets[s->live];
	struct vmdirty_collect c = {};
	u64 bit, prev = 0, distinct = 0, groups = 0, set_bits = 0, w;
	u32 i, d = 0, u;
	bool ok = false;

	ring = kcalloc(RING_SIZE, sizeof(*ring), GFP_KERNEL);
	in = kcalloc(RING_SIZE, sizeof(*ring), GFP_KERNEL);
	if (!ring || !in)
		goto out;
	vmdirty_selftest_fill(ring, seed);
	memcpy(in, ring, RING_SIZE * sizeof(*ring));

	/* What the batch should become: the scratch set serves as the oracle. */
	for (i = 0; i < BATCH_LEN; i++) {
		const struct kvm_dirty_gfn *e = &in[(BATCH_START + i) % RING_SIZE];

		if (!vmdirty_selftest_bit(s, e->slot, e->offset, &bit))
			d++;
		else
			distinct += vmdirty_bits_set(&s->scratch, bit);
	}
	for (w = 0; w < s->nr_bits / 64; w++)
		if (s->scratch.bitmap[w])
			groups += 1;
	vmdirty_bits_clear(&s->scratch);

	vmdirty_batch_order(s, ring, RING_SIZE - 1, BATCH_START, BATCH_LEN, &c);
	vmdirty_shm_account(s, &c);
	/* What a verified reset does next: pending to live. */
	c.new_pages = vmdirty_shm_publish(s);

	if (c.entries != BATCH_LEN || c.dropped != d || c.new_pages != distinct) {
		pr_err("selftest %u: counts %llu/%llu/%llu, want %u/%u/%llu\n", seed,
		       c.entries, c.dropped, c.new_pages, BATCH_LEN, d, distinct);
		goto out;
	}
	/* Dropped entries first, unchanged and in their order. */
	for (i = 0, u = 0; i < BATCH_LEN && u < d; i++) {
		const struct kvm_dirty_gfn *e = &in[(BATCH_START + i) % RING_SIZE];
		const struct kvm_dirty_gfn *o = &ring[(BATCH_START + u) % RING_SIZE];

		if (vmdirty_selftest_bit(s, e->slot, e->offset, &bit))
			continue;
		if (o->slot != e->slot || o->offset != e->offset) {
			pr_err("selftest %u: dropped entry %u moved\n", seed, u);
			goto out;
		}
		u++;
	}
	/* Then distinct pages, ascending, each in the live set. */
	for (i = d; i < d + distinct; i++) {
		const struct kvm_dirty_gfn *o = &ring[(BATCH_START + i) % RING_SIZE];

		if (!vmdirty_selftest_bit(s, o->slot, o->offset, &bit) ||
		    (i > d && bit <= prev) ||
		    !(live->bitmap[bit / 64] & BIT_ULL(bit % 64))) {
			pr_err("selftest %u: entry %u out of order or not set\n", seed, i);
			goto out;
		}
		prev = bit;
	}
	/* Then copies of the last one. */
	for (; i < BATCH_LEN; i++) {
		const struct kvm_dirty_gfn *o = &ring[(BATCH_START + i) % RING_SIZE];
		const struct kvm_dirty_gfn *l = &ring[(BATCH_START + d + distinct - 1) % RING_SIZE];

		if (o->slot != l->slot || o->offset != l->offset) {
			pr_err("selftest %u: duplicate %u is not a copy\n", seed, i);
			goto out;
		}
	}
	for (w = 0; w < s->nr_bits / 64; w++)
		set_bits += hweight64(live->bitmap[w]);
	if (set_bits != distinct || !vmdirty_selftest_zero(&s->scratch, s->nr_bits) ||
	    s->scratch.lo < s->scratch.hi) {
		pr_err("selftest %u: live set or scratch wrong\n", seed);
		goto out;
	}
	/* KVM's reset takes at most one round per 64-page group, plus drops. */
	if (vmdirty_selftest_rounds(ring) > groups + d) {
		pr_err("selftest %u: %u reset rounds for %llu groups\n", seed,
		       vmdirty_selftest_rounds(ring), groups);
		goto out;
	}

	vmdirty_shm_swap(s);
	if (s->hdr->snapshot != (s->live ^ 1) || s->hdr->seq & 1 ||
	    s->hdr->snapshot_pages != distinct || s->hdr->live_pages ||
	    !vmdirty_selftest_zero(&s->sets[s->live], s->nr_bits)) {
		pr_err("selftest %u: swap\n", seed);
		goto out;
	}
	ok = true;
out:
	kfree(in);
	kfree(ring);
	return ok;
}

/*
 * The dump generation skips 0 when it wraps: genl_dump_check_consistent()
 * reads 0 as "not set yet" and would miss the change that made it 0.
 */
static bool vmdirty_selftest_gen(void)
{
	u32 saved;
	bool ok;

	mutex_lock(&vmdirty_sessions_lock);
	saved = vmdirty_sessions_gen;
	vmdirty_sessions_gen = U32_MAX;
	vmdirty_sessions_changed();
	ok = vmdirty_sessions_gen == 1;
	vmdirty_sessions_gen = saved;
	mutex_unlock(&vmdirty_sessions_lock);
	if (!ok)
		pr_err("selftest: the dump generation wrapped to 0\n");
	pr_info("dump generation self-tests: %s\n", ok ? "pass" : "FAIL");
	return ok;
}

static bool vmdirty_selftest_batches(void)
{
	struct vmdirty_session *s;
	bool ok = false;
	u32 i;

	s = vmdirty_session_create();
	if (!s)
		return false;
	s->max_vcpus = 1;
	s->nr_slots = ARRAY_SIZE(vmdirty_selftest_layout);
	s->slots = kcalloc(s->nr_slots, sizeof(*s->slots), GFP_KERNEL);
	if (!s->slots)
		goto out_free;
	for (i = 0; i < s->nr_slots; i++) {
		s->slots[i].key = vmdirty_selftest_layout[i].key;
		s->slots[i].flags = VMDIRTY_SLOT_LOG_DIRTY;
		s->slots[i].npages = vmdirty_selftest_layout[i].npages;
	}
	if (vmdirty_shm_alloc(s))
		goto out_shm;

	mutex_lock(&s->lock);
	for (ok = true, i = 1; ok && i <= 32; i++) {
		ok = vmdirty_selftest_one(s, i);
		vmdirty_shm_swap(s);
	}
	mutex_unlock(&s->lock);
out_shm:
	/* Frees what it allocated, even in part. */
	vmdirty_shm_free(s);
out_free:
	kfree(s->slots);
	s->slots = NULL;
	mutex_destroy(&s->lock);
	kfree(s);
	pr_info("batch order self-tests: %s\n", ok ? "pass" : "FAIL");
	return ok;
}

static const struct file_operations vmdirty_selftest_fops = {
	.owner = THIS_MODULE,
};

static const struct file_operations vmdirty_selftest_fops_anon = {};

/* Made, and taken for a VM file (or not made at all): a failure. */
static bool vmdirty_selftest_lookalike(const char *name,
				       const struct file_operations *fops)
{
	struct file *f = anon_inode_getfile(name, fops, NULL, O_RDWR);
	bool taken;

	if (IS_ERR(f)) {
		pr_err("selftest: anon_inode_getfile(%s): %ld\n", name, PTR_ERR(f));
		return true;
	}
	taken = vmdirty_file_is_kvm_vm(f);
	if (taken)
		pr_err("selftest: %s (%ps) taken for a VM file\n", name, fops);
	/*
	 * Released now, while fops still exist: vmdirty_selftest_vm_file_thread().
	 * 6.1's __fput_sync() is for kernel threads only (a BUG_ON).
	 */
	if (WARN_ON_ONCE(!(current->flags & PF_KTHREAD)))
		fput(f);
	else
		__fput_sync(f);
	return taken;
}

/*
 * Named like a VM file but not KVM's, and KVM's other names: each one kept
 * out by one of the checks (the owner, the exact name).  A real VM file is
 * taken: selftests/compat_test.c, with the fallback in use on 7.x and held
 * to file_is_kvm() by DEBUG builds on 6.1 and 6.12.
 */
static bool vmdirty_selftest_vm_file(void)
{
	bool ok = true;

	ok &= !vmdirty_selftest_lookalike("kvm-vm", &vmdirty_selftest_fops);
	if (!IS_BUILTIN(CONFIG_KVM))
		ok &= !vmdirty_selftest_lookalike("kvm-vm", &vmdirty_selftest_fops_anon);
	ok &= !vmdirty_selftest_lookalike("kvm-vm-stats", &vmdirty_selftest_fops);
	ok &= !vmdirty_selftest_lookalike("kvm-vcpu:0", &vmdirty_selftest_fops);
	ok &= !vmdirty_selftest_lookalike("kvm-v", &vmdirty_selftest_fops);
	pr_info("VM file self-tests: %s\n", ok ? "pass" : "FAIL");
	return ok;
}

struct vmdirty_selftest_job {
	struct completion done;
	bool ok;
};

/*
 * The look-alike files' operations are this module's.  Released from
 * insmod's own context, fput() leaves the release to its return to
 * userspace (task_work), after an init that fails later (its netlink family
 * taken, say) has freed the module, operations and all: __fput() then
 * oopsed under KASAN (make test-debug, lifetime_test's
 * failed_init_shows_nothing).  A kernel thread of their own releases them at
 * once (__fput_sync(), which 6.1 allows kernel threads only), and leaves no
 * code of ours running once it completes.
 */
static int vmdirty_selftest_vm_file_thread(void *arg)
{
	struct vmdirty_selftest_job *job = arg;

	job->ok = vmdirty_selftest_vm_file();
	kthread_complete_and_exit(&job->done, 0);
}

static bool vmdirty_selftest_vm_file_run(void)
{
	struct vmdirty_selftest_job job = { .ok = false };
	struct task_struct *t;

	init_completion(&job.done);
	t = kthread_run(vmdirty_selftest_vm_file_thread, &job, "vmdirty-selftest");
	if (IS_ERR(t)) {
		pr_err("selftest: VM file thread: %pe\n", t);
		pr_info("VM file self-tests: FAIL\n");
		return false;
	}
	wait_for_completion(&job.done);
	return job.ok;
}

bool vmdirty_selftest(void)
{
	bool ok = true;

	ok &= vmdirty_selftest_batches();
	ok &= vmdirty_selftest_gen();
	ok &= vmdirty_selftest_vm_file_run();
	return ok;
}
