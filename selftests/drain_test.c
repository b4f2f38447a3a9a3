// SPDX-License-Identifier: GPL-2.0
/*
 * Background draining: a guest that dirties several times its ring's size
 * takes no KVM_EXIT_DIRTY_RING_FULL with draining on, and some with it off;
 * either way every written page ends up in the bitmap.  Also: the drain
 * worker's counters and adaptive interval, seen in the region and netlink.
 */
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "ksft_compat.h"
#include "vmdirty_guest.h"
#include "vmdirty_nl.h"

#define MEM_SIZE	(64ULL << 20)
#define NPAGES		(MEM_SIZE / GUEST_PAGE_SIZE)
#define WORK_PFN	(GUEST_WORK_BASE / GUEST_PAGE_SIZE)
#define RING		4096

FIXTURE(drain) {
	struct guest_session gs;
	struct gfn_set bits;
	unsigned int exits;
};

FIXTURE_SETUP(drain)
{
	struct vm_config cfg = {
		.nr_vcpus = 1, .mem_size = MEM_SIZE, .ring_entries = RING, .log_dirty = true,
	};
	const char *what;
	int r;

	r = guest_session_setup(&self->gs, &cfg, true, &what);
	if (r == GUEST_SESSION_SKIP)
		SETUP_SKIP("%s", what);
	ASSERT_EQ(0, r) TH_LOG("%s: %s", what, strerror(-r));
	ASSERT_EQ(0, gfn_set_init(&self->bits, NPAGES));
}

FIXTURE_TEARDOWN(drain)
{
	guest_session_teardown(&self->gs);
	gfn_set_free(&self->bits);
}

/* The vCPU thread's fallback: count the exit, collect without swapping. */
static int on_ring_full(struct vcpu *v, void *arg)
{
	FIXTURE_DATA(drain) *self = arg;

	self->exits++;
	return vmdirty_harvest(self->gs.fd, VMDIRTY_HARVEST_NO_SWAP, NULL);
}

/*
 * One pass of whole-work-area writes (several ring sizes), then a harvest:
 * every work page must be in the snapshot.  Returns the pages written.
 */
static uint64_t write_all_and_check(struct __test_metadata *_metadata,
				    FIXTURE_DATA(drain) *self)
{
	uint64_t work = vm_work_pages(self->gs.vm), gfn, missing = 0;
	uint64_t args[GUEST_CMD_ARGS] = { GUEST_WORK_BASE, work, 1, 1 };
	struct vmdirty_harvest h;

	self->exits = 0;
	EXPECT_EQ(0, vcpu_post(self->gs.vm->vcpus[0], GUEST_CMD_WRITE_RANGE, args));
	EXPECT_EQ(0, vcpu_run_cmd(self->gs.vm->vcpus[0], on_ring_full, self));
	EXPECT_EQ(0, vmdirty_harvest(self->gs.fd, 0, &h));
	gfn_set_clear(&self->bits);
	shm_to_gfn_set(self->gs.hdr, h.snapshot, &self->bits);
	for (gfn = WORK_PFN; gfn < WORK_PFN + work; gfn++)
		missing += !self->bits.in[gfn];
	EXPECT_EQ(0, missing);
	EXPECT_EQ(self->bits.count, h.pages);
	EXPECT_EQ(self->gs.hdr->entries, self->gs.hdr->resets);
	return work;
}

TEST_F_TIMEOUT(drain, no_ring_full_with_draining, 300)
{
	static struct vmdirty_nl_session all[16];
	struct vmdirty_nl nl;
	uint64_t pages, drains;
	unsigned int i, n;
	bool found = false;

	ASSERT_EQ(0, vmdirty_set_drain(self->gs.fd, VMDIRTY_DRAIN_ENABLE, 500, 5000, 25));
	pages = write_all_and_check(_metadata, self);
	drains = self->gs.hdr->drains;
	TH_LOG("draining on: %llu pages (%.1f rings), %u ring-full exits, %llu drains",
	       (unsigned long long)pages, (double)pages / RING, self->exits,
	       (unsigned long long)drains);
	EXPECT_LE(3 * RING, pages);
	EXPECT_EQ(0, self->exits);
	EXPECT_LT(0, drains);

	/* Netlink tells the same: draining, within its bounds. */
	ASSERT_EQ(0, vmdirty_nl_open(&nl));
	ASSERT_EQ(0, vmdirty_nl_dump(&nl, -1, all, 16, &n, NULL));
	vmdirty_nl_close(&nl);
	for (i = 0; i < n && i < 16; i++) {
		if (all[i].owner_pid != (uint32_t)getpid())
			continue;
		found = true;
		EXPECT_EQ(VMDIRTY_SESSION_F_DRAINING, all[i].flags);
		EXPECT_LE(500, all[i].drain_interval_us);
		EXPECT_GE(5000, all[i].drain_interval_us);
		EXPECT_LE(drains, all[i].drains);
	}
	EXPECT_TRUE(found);
}

TEST_F_TIMEOUT(drain, ring_full_without_draining, 300)
{
	uint64_t pages = write_all_and_check(_metadata, self);

	TH_LOG("draining off: %llu pages (%.1f rings), %u ring-full exits",
	       (unsigned long long)pages, (double)pages / RING, self->exits);
	/* Each exit frees the ring up to its soft limit (size - 64). */
	EXPECT_LE(pages / RING, self->exits);
	EXPECT_EQ(0, self->gs.hdr->drains - self->exits);
}

/* Draining, then off: exits come back; on again: gone. */
TEST_F_TIMEOUT(drain, toggle, 300)
{
	ASSERT_EQ(0, vmdirty_set_drain(self->gs.fd, VMDIRTY_DRAIN_ENABLE, 500, 5000, 0));
	write_all_and_check(_metadata, self);
	EXPECT_EQ(0, self->exits);
	ASSERT_EQ(0, vmdirty_set_drain(self->gs.fd, 0, 0, 0, 0));
	write_all_and_check(_metadata, self);
	EXPECT_LT(0, self->exits);
	ASSERT_EQ(0, vmdirty_set_drain(self->gs.fd, VMDIRTY_DRAIN_ENABLE, 500, 5000, 0));
	write_all_and_check(_metadata, self);
	EXPECT_EQ(0, self->exits);
}

TEST_HARNESS_MAIN
