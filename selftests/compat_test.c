// SPDX-License-Identifier: GPL-2.0
/*
 * What ATTACH takes for a KVM VM, on every kernel vmdirty.ko builds for.
 * From 6.18 file_is_kvm() is exported to KVM's vendor modules only, and the
 * module recognises a VM file by itself (kmod/compat.h): an anonymous-inode
 * file named exactly "kvm-vm" whose operations belong to KVM.  Each test
 * here hands it a file that shares all but one of those traits, and checks
 * that ATTACH says -EINVAL and leaves the session unattached (it would
 * otherwise take the file's private data for a struct kvm).  On 6.1 and
 * 6.12 the same tests hold file_is_kvm() to the same answers, and a DEBUG
 * build of the module cross-checks its own test against file_is_kvm().
 */
#include <fcntl.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "ksft_compat.h"
#include "vmdirty_util.h"

FIXTURE(compat) {
	struct bare_vm vm;
	int fd;
};

FIXTURE_SETUP(compat)
{
	BARE_SESSION_SETUP(self, 1);
}

FIXTURE_TEARDOWN(compat)
{
	if (self->fd >= 0)
		close(self->fd);
	bare_vm_destroy(&self->vm);
}

static void expect_rejected(struct __test_metadata *_metadata, int session,
			    int fd, const char *what)
{
	struct vmdirty_info info = VMDIRTY_ARG(vmdirty_info);
	char link[64], name[128] = "";
	ssize_t n;

	snprintf(link, sizeof(link), "/proc/self/fd/%d", fd);
	n = readlink(link, name, sizeof(name) - 1);
	if (n > 0)
		name[n] = '\0';
	EXPECT_EQ(-EINVAL, vmdirty_attach(session, fd, NULL))
		TH_LOG("%s (%s) taken for a VM", what, name);
	vmdirty_ioctl(session, VMDIRTY_IOC_GET_INFO, &info);
	EXPECT_EQ(0, info.attached);
}

/*
 * The real VM file is taken (the refusals below would pass on a module that
 * took nothing), and it is the "anon_inode:kvm-vm" the fallback looks for.
 */
TEST_F(compat, vm_file_taken)
{
	char link[64], name[64] = "";

	snprintf(link, sizeof(link), "/proc/self/fd/%d", self->vm.vm_fd);
	ASSERT_LT(0, readlink(link, name, sizeof(name) - 1));
	EXPECT_STREQ("anon_inode:kvm-vm", name);
	EXPECT_EQ(0, vmdirty_attach(self->fd, self->vm.vm_fd, NULL));
}

/* KVM's own, "anon_inode:kvm-vm-stats": a name compare by prefix takes it. */
TEST_F(compat, vm_stats_fd)
{
	int stats = ioctl(self->vm.vm_fd, KVM_GET_STATS_FD, NULL);

	if (stats < 0)
		SKIP(return, "KVM_GET_STATS_FD: %s", strerror(errno));
	expect_rejected(_metadata, self->fd, stats, "the VM's stats fd");
	close(stats);
}

/* KVM's own, "anon_inode:kvm-vcpu:0": owned by KVM, another name. */
TEST_F(compat, vcpu_fd)
{
	expect_rejected(_metadata, self->fd, self->vm.vcpu_fd[0], "a vCPU fd");
}

/* KVM's own device file ("anon_inode:kvm-vfio"), made through the VM. */
TEST_F(compat, device_fd)
{
	struct kvm_create_device dev = { .type = KVM_DEV_TYPE_VFIO };

	if (ioctl(self->vm.vm_fd, KVM_CREATE_DEVICE, &dev) < 0)
		SKIP(return, "KVM_CREATE_DEVICE vfio: %s", strerror(errno));
	expect_rejected(_metadata, self->fd, dev.fd, "a KVM device fd");
	close(dev.fd);
}

/* /dev/kvm itself: KVM's operations, but a character device. */
TEST_F(compat, kvm_system_fd)
{
	expect_rejected(_metadata, self->fd, self->vm.kvm_fd, "/dev/kvm");
}

/* An anonymous inode that is not KVM's ("anon_inode:[eventfd]"). */
TEST_F(compat, other_anon_inode)
{
	int efd = eventfd(0, EFD_CLOEXEC);

	ASSERT_LE(0, efd);
	expect_rejected(_metadata, self->fd, efd, "an eventfd");
	close(efd);
}

/* A regular file whose path ends in kvm-vm. */
TEST_F(compat, file_named_kvm_vm)
{
	char path[] = "/tmp/kvm-vm";
	int f = open(path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);

	ASSERT_LE(0, f);
	unlink(path);
	expect_rejected(_metadata, self->fd, f, "a file called kvm-vm");
	close(f);
}

/* The VM of another session still attaches after every refusal. */
TEST_F(compat, refusals_change_nothing)
{
	int efd = eventfd(0, EFD_CLOEXEC);

	ASSERT_LE(0, efd);
	EXPECT_EQ(-EINVAL, vmdirty_attach(self->fd, efd, NULL));
	EXPECT_EQ(-EINVAL, vmdirty_attach(self->fd, self->vm.vcpu_fd[0], NULL));
	EXPECT_EQ(0, vmdirty_attach(self->fd, self->vm.vm_fd, NULL));
	close(efd);
}

TEST_HARNESS_MAIN
