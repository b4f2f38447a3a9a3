// SPDX-License-Identifier: GPL-2.0
/*
 * ATTACH failing at each step after its first allocation, then the same
 * file attached again, harvested, mapped and released: every error path
 * must leave the session as if ATTACH had never run.  A pointer an error
 * path freed and did not clear is freed again by a second ATTACH failing
 * at the first step (the cleanup frees whatever is non-NULL, and that
 * ATTACH allocates nothing that would overwrite it), or used by the
 * harvest and the release after the good ATTACH: under make test-debug
 * that is a KASAN report (on a stock kernel, most likely an oops), and a
 * leak is kmemleak's.  For example, dropping "s->worker = NULL" from
 * vmdirty_session_unbuild() makes the second failure destroy the freed
 * worker again.  One variant per step:
 *
 *   vcpus    the vCPU array not allocated (id and credentials held)
 *   slots    the layout recorded, then failed
 *   region   every region page allocated, the mapping not made
 *   private  the region and the scratch set made, the pending set not
 *   worker   everything made, the worker too, then failed
 *
 * The steps are failed by the DEBUG build's fail_attach parameter
 * (kmod/fault.c); the session memory cap, the one real trigger among
 * them, is bounds_test's session_memory_capped.  Under make test the
 * suite runs against the normal module: these tests load the DEBUG build
 * in its place ($VMDIRTY_DEBUG_KO, or build/kmod-debug/kmod/vmdirty.ko
 * beside kmod/vmdirty.ko) and put the normal one back after each test.
 */
#include <fcntl.h>
#include <limits.h>
#include <sys/mman.h>
#include <unistd.h>

#include "ksft_compat.h"
#include "vmdirty_util.h"

#define FAIL_ATTACH	"/sys/module/vmdirty/parameters/fail_attach"

static int write_param(const char *s)
{
	return write_file(FAIL_ATTACH, s);
}

/* Unload whatever vmdirty is loaded (a release may still be finishing). */
static int unload(void)
{
	int i, ret;

	for (i = 0; i < 100 && (ret = vmdirty_module_unload()) == -EWOULDBLOCK; i++)
		usleep(20000);
	return ret;
}

FIXTURE(fault) {
	struct bare_vm vm;
	int fd;
	char ko[PATH_MAX];	/* to load back after the test, if swapped */
	bool swapped;
};

FIXTURE_VARIANT(fault) {
	const char *step;	/* enum vmdirty_fault, as the parameter takes it */
};

FIXTURE_VARIANT_ADD(fault, vcpus) { .step = "1" };
FIXTURE_VARIANT_ADD(fault, slots) { .step = "2" };
FIXTURE_VARIANT_ADD(fault, region) { .step = "3" };
FIXTURE_VARIANT_ADD(fault, private) { .step = "4" };
FIXTURE_VARIANT_ADD(fault, worker) { .step = "5" };

/* The normal module back in place of the DEBUG one; 0 or -errno. */
static int swap_back(FIXTURE_DATA(fault) *self)
{
	int ret;

	if (self->fd >= 0)
		close(self->fd);
	self->fd = -1;
	ret = unload();
	return ret ? ret : vmdirty_module_load(self->ko);
}

FIXTURE_SETUP(fault)
{
	char debug[PATH_MAX];
	int ret;

	self->swapped = false;
	self->fd = -1;
	/*
	 * Skip before the swap, and after it put the normal module back before
	 * failing: the teardown runs only after a complete setup, and the
	 * tests after this one need the module they were started with.
	 */
	if (!bare_vm_supported())
		SETUP_SKIP("no /dev/kvm with a dirty ring");
	if (!vmdirty_module_loaded())
		SETUP_SKIP("vmdirty.ko is not loaded");
	if (!access(FAIL_ATTACH, F_OK)) {
		/* The DEBUG module is the one loaded: nothing to swap. */
		BARE_SESSION_SETUP(self, 2);
		return;
	}
	if (!vmdirty_module_path(self->ko, sizeof(self->ko)) ||
	    !vmdirty_debug_module_path(self->ko, debug, sizeof(debug)))
		SETUP_SKIP("no DEBUG vmdirty.ko to load (make module-debug)");
	/* The VM first: it needs no module, and fails before the swap. */
	ret = bare_vm_simple(&self->vm, 2);
	ASSERT_EQ(0, ret) TH_LOG("bare VM: %s", strerror(-ret));
	ASSERT_EQ(0, unload());
	self->swapped = true;
	ret = vmdirty_module_load(debug);
	if (!ret && access(FAIL_ATTACH, W_OK))
		ret = -errno;
	if (!ret) {
		self->fd = vmdirty_open();
		ret = self->fd < 0 ? self->fd : 0;
	}
	if (ret)
		TEST_ASSERT(!swap_back(self), "reloading %s", self->ko);
	ASSERT_EQ(0, ret) TH_LOG("the DEBUG module %s: %s", debug, strerror(-ret));
}

FIXTURE_TEARDOWN(fault)
{
	write_param("0");
	bare_vm_destroy(&self->vm);
	if (self->swapped)
		TEST_ASSERT(!swap_back(self), "reloading %s", self->ko);
	else if (self->fd >= 0)
		close(self->fd);
}

/* ATTACH fails at the variant's step; the file says it is not attached. */
static void attach_fails(struct __test_metadata *_metadata, FIXTURE_DATA(fault) *self)
{
	struct vmdirty_info info = VMDIRTY_ARG(vmdirty_info);

	EXPECT_EQ(-ENOMEM, vmdirty_attach(self->fd, self->vm.vm_fd, NULL));
	vmdirty_ioctl(self->fd, VMDIRTY_IOC_GET_INFO, &info);
	EXPECT_EQ(0, info.attached);
	EXPECT_EQ(0, info.session_id);
	EXPECT_EQ(0, info.region_size);
	EXPECT_EQ(-ENOTCONN, vmdirty_harvest(self->fd, 0, NULL));
	EXPECT_EQ(NULL, vmdirty_map(self->fd, 4096));
	EXPECT_EQ(ENOTCONN, errno);
}

/*
 * At the step, then at the first one (whose cleanup frees anything the
 * first left behind), then a good ATTACH on the same file: a whole session,
 * two harvests, the region as the harvests left it, and the release.
 */
TEST_F(fault, fail_then_attach)
{
	struct vmdirty_attach a;
	struct vmdirty_harvest h;
	struct vmdirty_shm_header *hdr;
	int other;

	ASSERT_EQ(0, write_param(variant->step));
	attach_fails(_metadata, self);
	ASSERT_EQ(0, write_param("1"));
	attach_fails(_metadata, self);
	ASSERT_EQ(0, write_param("0"));

	ASSERT_EQ(0, vmdirty_attach(self->fd, self->vm.vm_fd, &a));
	EXPECT_NE(0, a.session_id);
	EXPECT_EQ(1, a.nr_slots);
	hdr = vmdirty_map(self->fd, a.region_size);
	ASSERT_NE(NULL, hdr) TH_LOG("mmap: %s", strerror(errno));
	EXPECT_EQ(VMDIRTY_SHM_MAGIC, hdr->magic);
	EXPECT_EQ(1, hdr->nr_slots);
	EXPECT_EQ((uintptr_t)self->vm.slots[0].mem, vmdirty_shm_slots(hdr)[0].userspace_addr);
	ASSERT_EQ(0, vmdirty_harvest(self->fd, 0, &h));
	EXPECT_EQ(2, h.nr_vcpus);
	EXPECT_EQ(0, h.status);
	ASSERT_EQ(0, vmdirty_harvest(self->fd, VMDIRTY_HARVEST_NO_SWAP, &h));
	EXPECT_EQ(2, hdr->seq);
	EXPECT_EQ(1, hdr->harvests);
	EXPECT_EQ(1, vmdirty_shm_vcpus(hdr)[1].present);
	/* A second session on the same VM is still refused: the id was kept. */
	other = vmdirty_open();
	ASSERT_LE(0, other);
	EXPECT_EQ(-EBUSY, vmdirty_attach(other, self->vm.vm_fd, NULL));
	close(other);
	munmap(hdr, a.region_size);
	close(self->fd);
	self->fd = -1;
}

/*
 * The failed session released at once, and the VM then attached by a
 * new file: the failure left no id registered for the VM (EBUSY) and
 * nothing that the release would free twice.
 */
TEST_F(fault, fail_then_release)
{
	int other;

	ASSERT_EQ(0, write_param(variant->step));
	attach_fails(_metadata, self);
	ASSERT_EQ(0, write_param("0"));
	close(self->fd);
	self->fd = -1;
	other = vmdirty_open();
	ASSERT_LE(0, other);
	EXPECT_EQ(0, vmdirty_attach(other, self->vm.vm_fd, NULL));
	EXPECT_EQ(0, vmdirty_harvest(other, 0, NULL));
	close(other);
}

TEST_HARNESS_MAIN
