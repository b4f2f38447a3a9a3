// SPDX-License-Identifier: GPL-2.0
/*
 * What a session costs the host, and who pays: the shared region and the
 * private bit sets are charged to the memory cgroup of the process that
 * attaches, bounded by the module parameter max_session_mb (ATTACH fails
 * with EFBIG beyond it), and only slots that log dirty pages get bitmaps.
 * Bare VMs with large slots of reserved-only memory (MAP_NORESERVE, never
 * touched): KVM allocates little for them, the module a lot.
 */
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include "ksft_compat.h"
#include "vmdirty_util.h"

#define PARAM		"/sys/module/vmdirty/parameters/max_session_mb"
#define BIG_SLOT	(64ULL << 30)	/* 16M pages: 2 MiB per bit set */
#define BIG_GPA		(4ULL << 30)

/* A slot of @size bytes of reserved-only memory; its address or NULL. */
static void *big_slot(struct bare_vm *vm, uint32_t slot, uint64_t gpa, uint64_t size,
		      uint32_t flags)
{
	struct kvm_userspace_memory_region r = {
		.slot = slot, .flags = flags, .guest_phys_addr = gpa, .memory_size = size,
	};
	void *mem = mmap(NULL, size, PROT_READ | PROT_WRITE,
			 MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);

	if (mem == MAP_FAILED)
		return NULL;
	r.userspace_addr = (uintptr_t)mem;
	if (ioctl(vm->vm_fd, KVM_SET_USER_MEMORY_REGION, &r)) {
		munmap(mem, size);
		return NULL;
	}
	return mem;
}

static int read_file(const char *path, char *buf, size_t len)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	ssize_t n;

	if (fd < 0)
		return -errno;
	n = read(fd, buf, len - 1);
	close(fd);
	if (n < 0)
		return -errno;
	buf[n] = 0;
	return 0;
}

FIXTURE(bounds) {
	struct bare_vm vm;
	void *mem;
	int fd;
};

FIXTURE_SETUP(bounds)
{
	self->mem = NULL;
	BARE_SESSION_SETUP(self, 1);
}

FIXTURE_TEARDOWN(bounds)
{
	if (self->fd >= 0)
		close(self->fd);
	bare_vm_destroy(&self->vm);
	if (self->mem)
		munmap(self->mem, BIG_SLOT);
}

/* --- The memory cgroup ----------------------------------------------------- */

#define CG_ROOT		"/tmp/vmdirty-cgroup2"
#define CG		CG_ROOT "/attach"

/* A cgroup v2 child with the memory controller, and this process in it. */
static int cg_enter(void)
{
	char buf[64];
	int ret;

	mkdir(CG_ROOT, 0755);
	if (access(CG_ROOT "/cgroup.controllers", F_OK) &&
	    mount("none", CG_ROOT, "cgroup2", 0, NULL))
		return -errno;
	ret = write_file(CG_ROOT "/cgroup.subtree_control", "+memory");
	if (ret)
		return ret;
	if (mkdir(CG, 0755) && errno != EEXIST)
		return -errno;
	snprintf(buf, sizeof(buf), "%d", getpid());
	return write_file(CG "/cgroup.procs", buf);
}

static void cg_leave(void)
{
	char buf[64];

	snprintf(buf, sizeof(buf), "%d", getpid());
	write_file(CG_ROOT "/cgroup.procs", buf);
	rmdir(CG);
}

static long long cg_current(void)
{
	char buf[64];

	return read_file(CG "/memory.current", buf, sizeof(buf)) ? -1 : atoll(buf);
}

/*
 * ATTACH, from inside a memory cgroup, of a VM with 16M pages: the session
 * needs two shared bit sets (the region) and two private ones, 2 MiB each.
 * Before: the region came from vmalloc_user(), charged to no one; only the
 * private scratch set was.
 */
TEST_F(bounds, region_charged_to_memcg)
{
	struct vmdirty_attach a;
	long long before, after;
	int ret;

	self->mem = big_slot(&self->vm, 1, BIG_GPA, BIG_SLOT, KVM_MEM_LOG_DIRTY_PAGES);
	ASSERT_NE(NULL, self->mem);
	ret = cg_enter();
	if (ret)
		SKIP(return, "no memory cgroup: %s", strerror(-ret));
	before = cg_current();
	ret = vmdirty_attach(self->fd, self->vm.vm_fd, &a);
	after = cg_current();
	close(self->fd);
	self->fd = -1;
	usleep(100000);
	TH_LOG("ATTACH: %s; region %llu bytes; cgroup charged %lld bytes, %lld left after close",
	       strerror(-ret), (unsigned long long)a.region_size, after - before,
	       cg_current() - before);
	cg_leave();
	ASSERT_EQ(0, ret);
	ASSERT_LE(0, before);
	/* The region and at least one private set of the same size. */
	EXPECT_LE((long long)a.region_size * 3 / 2, after - before);
}

/* --- The bound ------------------------------------------------------------ */

TEST_F(bounds, session_memory_capped)
{
	char old[32];
	int ret;

	ASSERT_EQ(0, read_file(PARAM, old, sizeof(old))) TH_LOG("no %s", PARAM);
	self->mem = big_slot(&self->vm, 1, BIG_GPA, BIG_SLOT, KVM_MEM_LOG_DIRTY_PAGES);
	ASSERT_NE(NULL, self->mem);
	/* 8 MiB is about what this VM needs: 4 bit sets of 2 MiB and tables. */
	ASSERT_EQ(0, write_file(PARAM, "4"));
	ret = vmdirty_attach(self->fd, self->vm.vm_fd, NULL);
	EXPECT_EQ(0, write_file(PARAM, old));
	EXPECT_EQ(-EFBIG, ret) TH_LOG("ATTACH over the bound: %s", strerror(-ret));
	/* Nothing was kept: the same file attaches once the bound allows it. */
	ASSERT_EQ(0, vmdirty_attach(self->fd, self->vm.vm_fd, NULL));
	ASSERT_EQ(0, vmdirty_harvest(self->fd, 0, NULL));
}

/* Values that are no bound at all are refused. */
TEST_F(bounds, session_memory_cap_rejects_zero)
{
	char old[32], now[32];

	ASSERT_EQ(0, read_file(PARAM, old, sizeof(old))) TH_LOG("no %s", PARAM);
	EXPECT_EQ(-EINVAL, write_file(PARAM, "0"));
	EXPECT_EQ(-EINVAL, write_file(PARAM, "-1"));
	ASSERT_EQ(0, read_file(PARAM, now, sizeof(now)));
	EXPECT_STREQ(old, now);
}

/*
 * A big slot that does not log dirty pages (ROM, device memory): no entry
 * can name it, it gets no bitmap.  Before: two bit sets for it in the
 * region and two private ones, 8 MiB for nothing.
 */
TEST_F(bounds, unlogged_slot_has_no_bitmap)
{
	struct vmdirty_shm_header *hdr;
	struct vmdirty_shm_slot *slot;
	struct vmdirty_attach a;
	struct vmdirty_harvest h;

	self->mem = big_slot(&self->vm, 1, BIG_GPA, BIG_SLOT, 0);
	ASSERT_NE(NULL, self->mem);
	ASSERT_EQ(0, vmdirty_attach(self->fd, self->vm.vm_fd, &a));
	TH_LOG("region of %llu bytes", (unsigned long long)a.region_size);
	/* Tables (a vCPU entry for each of up to 4096) and 1 MiB's bits. */
	EXPECT_GT(1 << 20, a.region_size);
	hdr = vmdirty_map(self->fd, a.region_size);
	ASSERT_NE(NULL, hdr);
	ASSERT_EQ(2, hdr->nr_slots);
	slot = vmdirty_shm_slots(hdr);
	EXPECT_EQ(VMDIRTY_SLOT_LOG_DIRTY, slot[0].flags);
	EXPECT_NE(0, slot[0].bitmap_offset[0]);
	EXPECT_EQ(0, slot[1].flags);
	EXPECT_EQ(BIG_SLOT >> 12, slot[1].npages);
	EXPECT_EQ(0, slot[1].bitmap_offset[0]);
	EXPECT_EQ(0, slot[1].bitmap_offset[1]);
	EXPECT_EQ(0, slot[1].summary_offset[0]);
	EXPECT_EQ(0, slot[1].summary_offset[1]);
	ASSERT_EQ(0, vmdirty_harvest(self->fd, 0, &h));
	EXPECT_EQ(0, h.status);
	munmap(hdr, a.region_size);
}

TEST_HARNESS_MAIN
