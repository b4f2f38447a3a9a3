// SPDX-License-Identifier: GPL-2.0
/*
 * vmdirty.ko is loaded and answers on /dev/vmdirty: the device node, the
 * ABI version, and GET_INFO's input checks.
 */
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <linux/vmdirty.h>

#include "ksft_compat.h"

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

	info.reserved[3] = 1;
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

TEST_HARNESS_MAIN
