// SPDX-License-Identifier: GPL-2.0
/*
 * vmdirty.ko is loaded and answers on /dev/vmdirty: the device node, the
 * ABI version, and the input checks of every ioctl that need no VM (one
 * test per rejected case), on a session that is not attached.
 */
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <linux/vmdirty.h>

#include "ksft_compat.h"
#include "vmdirty_util.h"

FIXTURE(dev) {
	int fd;
};

FIXTURE_SETUP(dev)
{
	self->fd = open("/dev/" VMDIRTY_DEVICE_NAME, O_RDWR | O_CLOEXEC);
	if (self->fd < 0 && errno == ENOENT)
		SETUP_SKIP("vmdirty.ko is not loaded");
	ASSERT_LE(0, self->fd) TH_LOG("open /dev/vmdirty: %s", strerror(errno));
}

FIXTURE_TEARDOWN(dev)
{
	if (self->fd >= 0)
		close(self->fd);
}

TEST_F(dev, is_misc_char_device)
{
	struct stat st;

	ASSERT_EQ(0, fstat(self->fd, &st));
	EXPECT_TRUE(S_ISCHR(st.st_mode));
	EXPECT_EQ(10, major(st.st_rdev)); /* MISC_MAJOR */
	EXPECT_EQ(0600, st.st_mode & 0777);
}

TEST_F(dev, get_info)
{
	struct vmdirty_info info = { .size = sizeof(info) };

	ASSERT_EQ(0, ioctl(self->fd, VMDIRTY_IOC_GET_INFO, &info));
	EXPECT_EQ(VMDIRTY_ABI_VERSION, info.abi_version);
	EXPECT_EQ(sizeof(info), info.size);
	EXPECT_EQ(0, info.attached);
	EXPECT_EQ(0, info.region_size);
}

TEST_F(dev, get_info_rejects_flags)
{
	struct vmdirty_info info = { .size = sizeof(info), .flags = 1 };

	EXPECT_EQ(-1, ioctl(self->fd, VMDIRTY_IOC_GET_INFO, &info));
	EXPECT_EQ(EINVAL, errno);
	EXPECT_EQ(0, info.abi_version);
}

TEST_F(dev, get_info_rejects_reserved)
{
	struct vmdirty_info info = { .size = sizeof(info) };

	info.reserved[2] = 1;
	EXPECT_EQ(-1, ioctl(self->fd, VMDIRTY_IOC_GET_INFO, &info));
	EXPECT_EQ(EINVAL, errno);
}

TEST_F(dev, get_info_rejects_pad)
{
	struct vmdirty_info info = { .size = sizeof(info), .pad = 1 };

	EXPECT_EQ(-1, ioctl(self->fd, VMDIRTY_IOC_GET_INFO, &info));
	EXPECT_EQ(EINVAL, errno);
}

TEST_F(dev, get_info_rejects_size_mismatch)
{
	struct vmdirty_info info = { .size = sizeof(info) - 8 };

	EXPECT_EQ(-1, ioctl(self->fd, VMDIRTY_IOC_GET_INFO, &info));
	EXPECT_EQ(EINVAL, errno);
}

TEST_F(dev, get_info_rejects_short_struct)
{
	unsigned long cmd = _IOWR(VMDIRTY_IOC_MAGIC, 0x00, __u64[2]);
	__u64 small[2] = { 16, 0 };

	EXPECT_EQ(-1, ioctl(self->fd, cmd, small));
	EXPECT_EQ(EINVAL, errno);
}

TEST_F(dev, get_info_rejects_nonzero_tail)
{
	struct {
		struct vmdirty_info info;
		__u64 tail;
	} big = { .info.size = sizeof(big), .tail = 1 };
	unsigned long cmd = _IOWR(VMDIRTY_IOC_MAGIC, 0x00, big);

	EXPECT_EQ(-1, ioctl(self->fd, cmd, &big));
	EXPECT_EQ(E2BIG, errno);
}

TEST_F(dev, get_info_accepts_zero_tail)
{
	struct {
		struct vmdirty_info info;
		__u64 tail;
	} big = { .info.size = sizeof(big) };
	unsigned long cmd = _IOWR(VMDIRTY_IOC_MAGIC, 0x00, big);

	ASSERT_EQ(0, ioctl(self->fd, cmd, &big));
	EXPECT_EQ(VMDIRTY_ABI_VERSION, big.info.abi_version);
}

TEST_F(dev, unknown_ioctl)
{
	EXPECT_EQ(-1, ioctl(self->fd, _IO(VMDIRTY_IOC_MAGIC, 0x7f)));
	EXPECT_EQ(ENOTTY, errno);
}

/*
 * Numbers past the end of the ioctl table, in every direction and with a
 * real argument size: -ENOTTY, before any entry is looked at.  The bug it
 * catches: the bound off by one (> for >=), which calls through the entry
 * past vmdirty_ioctls[] (a KASAN global-out-of-bounds report under make
 * test-debug, a wild call otherwise).  array_index_nospec() itself only
 * acts under speculation: no test can see it.
 */
TEST_F(dev, ioctl_number_past_table)
{
	static const unsigned int nrs[] = { 0x04, 0x05, 0x40, 0x80, 0xff };
	struct vmdirty_info info = VMDIRTY_ARG(vmdirty_info);
	unsigned int i;

	for (i = 0; i < sizeof(nrs) / sizeof(nrs[0]); i++) {
		unsigned int nr = nrs[i];

		EXPECT_EQ(-ENOTTY, sys_ioctl(self->fd, _IOWR(VMDIRTY_IOC_MAGIC, nr,
							      struct vmdirty_info), &info))
			TH_LOG("_IOWR nr %#x", nr);
		EXPECT_EQ(-ENOTTY, sys_ioctl(self->fd, _IOW(VMDIRTY_IOC_MAGIC, nr,
							     struct vmdirty_info), &info))
			TH_LOG("_IOW nr %#x", nr);
		EXPECT_EQ(-ENOTTY, sys_ioctl(self->fd, _IOR(VMDIRTY_IOC_MAGIC, nr,
							     struct vmdirty_info), &info))
			TH_LOG("_IOR nr %#x", nr);
		EXPECT_EQ(-ENOTTY, sys_ioctl(self->fd, _IO(VMDIRTY_IOC_MAGIC, nr), NULL))
			TH_LOG("_IO nr %#x", nr);
	}
	/* The last number in the table is still an ioctl (not attached yet). */
	EXPECT_EQ(-ENOTCONN, vmdirty_set_drain(self->fd, 0, 0, 0, 0));
}

TEST_F(dev, get_info_features)
{
	struct vmdirty_info info = VMDIRTY_ARG(vmdirty_info);

	vmdirty_ioctl(self->fd, VMDIRTY_IOC_GET_INFO, &info);
	EXPECT_EQ(VMDIRTY_FEAT_SORTED_RESET | VMDIRTY_FEAT_DRAIN |
		  VMDIRTY_FEAT_FOREIGN_MM, info.features);
	EXPECT_EQ(0, info.layout_gen);
	EXPECT_EQ(0, info.session_id);
	EXPECT_EQ(0, info.pad | info.reserved[0] | info.reserved[1] | info.reserved[2]);
}

/* The right number with the wrong direction is not the ioctl. */
TEST_F(dev, wrong_direction)
{
	struct vmdirty_info info = VMDIRTY_ARG(vmdirty_info);

	EXPECT_EQ(-ENOTTY, sys_ioctl(self->fd, _IOR(VMDIRTY_IOC_MAGIC, 0x00,
						      struct vmdirty_info), &info));
	EXPECT_EQ(-ENOTTY, sys_ioctl(self->fd, _IOWR(VMDIRTY_IOC_MAGIC, 0x03,
						      struct vmdirty_drain), &info));
}

TEST_F(dev, other_magic)
{
	struct vmdirty_info info = VMDIRTY_ARG(vmdirty_info);

	EXPECT_EQ(-ENOTTY, sys_ioctl(self->fd, _IOWR(0xD8, 0x00, struct vmdirty_info),
				     &info));
}

static void expect_unattached(struct __test_metadata *_metadata, int fd)
{
	struct vmdirty_info info = VMDIRTY_ARG(vmdirty_info);

	vmdirty_ioctl(fd, VMDIRTY_IOC_GET_INFO, &info);
	EXPECT_EQ(0, info.attached);
	EXPECT_EQ(0, info.region_size);
}

TEST_F(dev, harvest_before_attach)
{
	struct vmdirty_harvest h = VMDIRTY_ARG(vmdirty_harvest);

	EXPECT_EQ(-ENOTCONN, __vmdirty_ioctl(self->fd, VMDIRTY_IOC_HARVEST, &h));
	EXPECT_EQ(0, h.seq);
	expect_unattached(_metadata, self->fd);
}

TEST_F(dev, harvest_no_swap_before_attach)
{
	EXPECT_EQ(-ENOTCONN, vmdirty_harvest(self->fd, VMDIRTY_HARVEST_NO_SWAP, NULL));
}

TEST_F(dev, drain_before_attach)
{
	EXPECT_EQ(-ENOTCONN, vmdirty_set_drain(self->fd, VMDIRTY_DRAIN_ENABLE, 0, 0, 0));
	expect_unattached(_metadata, self->fd);
}

TEST_F(dev, drain_stop_before_attach)
{
	EXPECT_EQ(-ENOTCONN, vmdirty_set_drain(self->fd, 0, 0, 0, 0));
}

TEST_F(dev, mmap_before_attach)
{
	void *p = mmap(NULL, 4096, PROT_READ, MAP_SHARED, self->fd, 0);

	EXPECT_EQ(MAP_FAILED, p);
	EXPECT_EQ(ENOTCONN, errno);
}

/* Argument checks come first: the same answer attached or not. */
TEST_F(dev, harvest_rejects_unknown_flags)
{
	EXPECT_EQ(-EINVAL, vmdirty_harvest(self->fd, ~VMDIRTY_HARVEST_FLAGS_ALL, NULL));
	EXPECT_EQ(-EINVAL, vmdirty_harvest(self->fd, 1U << 31, NULL));
}

TEST_F(dev, harvest_rejects_reserved)
{
	struct vmdirty_harvest h = VMDIRTY_ARG(vmdirty_harvest);

	h.reserved[2] = 1;
	EXPECT_EQ(-EINVAL, __vmdirty_ioctl(self->fd, VMDIRTY_IOC_HARVEST, &h));
}

TEST_F(dev, harvest_rejects_size_mismatch)
{
	struct vmdirty_harvest h = { .size = sizeof(h) + 8 };

	EXPECT_EQ(-EINVAL, __vmdirty_ioctl(self->fd, VMDIRTY_IOC_HARVEST, &h));
}

TEST_F(dev, harvest_rejects_short_struct)
{
	unsigned long cmd = _IOWR(VMDIRTY_IOC_MAGIC, 0x02, __u64[4]);
	__u64 small[4] = { 32 };

	EXPECT_EQ(-EINVAL, sys_ioctl(self->fd, cmd, small));
}

TEST_F(dev, harvest_rejects_nonzero_tail)
{
	struct {
		struct vmdirty_harvest h;
		__u64 tail;
	} big = { .h.size = sizeof(big), .tail = 1 };

	EXPECT_EQ(-E2BIG, sys_ioctl(self->fd, _IOWR(VMDIRTY_IOC_MAGIC, 0x02, big), &big));
}

TEST_F(dev, drain_rejects_unknown_flags)
{
	EXPECT_EQ(-EINVAL, vmdirty_set_drain(self->fd, ~VMDIRTY_DRAIN_FLAGS_ALL, 0, 0, 0));
}

TEST_F(dev, drain_rejects_pad)
{
	struct vmdirty_drain d = VMDIRTY_ARG(vmdirty_drain);

	d.flags = VMDIRTY_DRAIN_ENABLE;
	d.pad = 1;
	EXPECT_EQ(-EINVAL, __vmdirty_ioctl(self->fd, VMDIRTY_IOC_SET_DRAIN, &d));
}

TEST_F(dev, drain_rejects_reserved)
{
	struct vmdirty_drain d = VMDIRTY_ARG(vmdirty_drain);

	d.reserved[0] = 1;
	EXPECT_EQ(-EINVAL, __vmdirty_ioctl(self->fd, VMDIRTY_IOC_SET_DRAIN, &d));
}

TEST_F(dev, drain_rejects_size_mismatch)
{
	struct vmdirty_drain d = { .size = 8 };

	EXPECT_EQ(-EINVAL, __vmdirty_ioctl(self->fd, VMDIRTY_IOC_SET_DRAIN, &d));
}

TEST_F(dev, drain_rejects_nonzero_tail)
{
	struct {
		struct vmdirty_drain d;
		__u64 tail;
	} big = { .d.size = sizeof(big), .tail = ~0ULL };

	EXPECT_EQ(-E2BIG, sys_ioctl(self->fd, _IOW(VMDIRTY_IOC_MAGIC, 0x03, big), &big));
}

/* ATTACH's own checks precede any look at vm_fd (here: not open). */
TEST_F(dev, attach_rejects_flags)
{
	struct vmdirty_attach a = VMDIRTY_ARG(vmdirty_attach);

	a.vm_fd = -1;
	a.flags = 1;
	EXPECT_EQ(-EINVAL, __vmdirty_ioctl(self->fd, VMDIRTY_IOC_ATTACH, &a));
	expect_unattached(_metadata, self->fd);
}

TEST_F(dev, attach_bad_fd)
{
	struct vmdirty_attach a = VMDIRTY_ARG(vmdirty_attach);

	a.vm_fd = -1;
	EXPECT_EQ(-EBADF, __vmdirty_ioctl(self->fd, VMDIRTY_IOC_ATTACH, &a));
	a.vm_fd = 1000000;
	EXPECT_EQ(-EBADF, __vmdirty_ioctl(self->fd, VMDIRTY_IOC_ATTACH, &a));
	expect_unattached(_metadata, self->fd);
}

TEST_F(dev, attach_rejects_size_mismatch)
{
	struct vmdirty_attach a = { .size = sizeof(a) - 4, .vm_fd = -1 };

	EXPECT_EQ(-EINVAL, __vmdirty_ioctl(self->fd, VMDIRTY_IOC_ATTACH, &a));
}

TEST_F(dev, attach_rejects_nonzero_tail)
{
	struct {
		struct vmdirty_attach a;
		__u64 tail;
	} big = { .a.size = sizeof(big), .a.vm_fd = -1, .tail = 1 };

	EXPECT_EQ(-E2BIG, sys_ioctl(self->fd, _IOWR(VMDIRTY_IOC_MAGIC, 0x01, big), &big));
}

/* Not a KVM VM: a regular file, and this very session. */
TEST_F(dev, attach_not_kvm)
{
	int null = open("/dev/null", O_RDWR);

	ASSERT_LE(0, null);
	EXPECT_EQ(-EINVAL, vmdirty_attach(self->fd, null, NULL));
	EXPECT_EQ(-EINVAL, vmdirty_attach(self->fd, self->fd, NULL));
	close(null);
	expect_unattached(_metadata, self->fd);
}

TEST_HARNESS_MAIN
