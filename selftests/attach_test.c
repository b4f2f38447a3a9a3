// SPDX-License-Identifier: GPL-2.0
/*
 * ATTACH, the shared region, HARVEST and SET_DRAIN plumbing on bare KVM VMs
 * (a dirty ring, one memslot, vCPUs that never run): what a session looks
 * like, and every rejected input (one test per case) changing nothing.
 */
#include <fcntl.h>
#include <linux/capability.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "ksft_compat.h"
#include "vmdirty_util.h"

FIXTURE(session) {
	struct bare_vm vm;
	int fd;
	struct vmdirty_attach attach;
	struct vmdirty_shm_header *hdr;
};

FIXTURE_SETUP(session)
{
	self->hdr = NULL;
	BARE_SESSION_SETUP(self, 2);
}

FIXTURE_TEARDOWN(session)
{
	if (self->hdr)
		munmap(self->hdr, self->attach.region_size);
	if (self->fd >= 0)
		close(self->fd);
	bare_vm_destroy(&self->vm);
}

static void attach_and_map(struct __test_metadata *_metadata,
			   FIXTURE_DATA(session) *self)
{
	ASSERT_EQ(0, vmdirty_attach(self->fd, self->vm.vm_fd, &self->attach));
	self->hdr = vmdirty_map(self->fd, self->attach.region_size);
	ASSERT_NE(NULL, self->hdr) TH_LOG("mmap: %s", strerror(errno));
}

TEST_F(session, attach)
{
	struct vmdirty_info info = VMDIRTY_ARG(vmdirty_info);
	struct vmdirty_shm_header *h;
	struct vmdirty_shm_slot *slot;
	unsigned int set;

	attach_and_map(_metadata, self);
	h = self->hdr;
	EXPECT_EQ(0, self->attach.region_size % getpagesize());
	EXPECT_EQ(1, self->attach.nr_slots);
	EXPECT_EQ(1, self->attach.layout_gen);
	EXPECT_NE(0, self->attach.session_id);

	vmdirty_ioctl(self->fd, VMDIRTY_IOC_GET_INFO, &info);
	EXPECT_EQ(1, info.attached);
	EXPECT_EQ(self->attach.session_id, info.session_id);
	EXPECT_EQ(self->attach.region_size, info.region_size);
	EXPECT_EQ(1, info.layout_gen);

	EXPECT_EQ(VMDIRTY_SHM_MAGIC, h->magic);
	EXPECT_EQ(VMDIRTY_ABI_VERSION, h->abi_version);
	EXPECT_EQ(sizeof(*h), h->header_size);
	EXPECT_EQ(self->attach.region_size, h->region_size);
	EXPECT_EQ(1, h->nr_slots);
	EXPECT_EQ(sizeof(struct vmdirty_shm_slot), h->slot_size);
	EXPECT_EQ(sizeof(struct vmdirty_shm_vcpu), h->vcpu_size);
	EXPECT_EQ(ioctl(self->vm.vm_fd, KVM_CHECK_EXTENSION, KVM_CAP_MAX_VCPUS),
		  h->max_vcpus);
	EXPECT_EQ(0, h->seq);
	EXPECT_EQ(1, h->snapshot);
	EXPECT_EQ(1, h->layout_gen);
	EXPECT_EQ(0, h->flags);
	EXPECT_EQ(0, h->harvests | h->drains | h->entries | h->resets);

	slot = vmdirty_shm_slots(h);
	EXPECT_EQ(0, slot->as_id);
	EXPECT_EQ(0, slot->id);
	EXPECT_EQ(VMDIRTY_SLOT_LOG_DIRTY, slot->flags);
	EXPECT_EQ((1 << 20) / 4096, slot->base_gfn);
	EXPECT_EQ((1 << 20) / 4096, slot->npages);
	EXPECT_EQ((uintptr_t)self->vm.slots[0].mem, slot->userspace_addr);
	for (set = 0; set < 2; set++) {
		EXPECT_LE(h->vcpus_offset + h->max_vcpus * h->vcpu_size,
			  slot->bitmap_offset[set]);
		EXPECT_GE(h->region_size, slot->summary_offset[set] + 8);
		EXPECT_EQ(0, slot->bitmap_offset[set] % 8);
		EXPECT_EQ(0, vmdirty_shm_count(h, slot, set));
	}
	/* Nothing seen before the first walk. */
	EXPECT_EQ(0, vmdirty_shm_vcpus(h)[0].present);
}

TEST_F(session, attach_twice)
{
	struct vmdirty_attach again;

	attach_and_map(_metadata, self);
	EXPECT_EQ(-EBUSY, vmdirty_attach(self->fd, self->vm.vm_fd, &again));
	EXPECT_EQ(1, self->hdr->layout_gen);
}

/* Two collectors of one VM's rings would each see half of it. */
TEST_F(session, attach_second_session_same_vm)
{
	int other = vmdirty_open();
	struct vmdirty_info info = VMDIRTY_ARG(vmdirty_info);

	ASSERT_LE(0, other);
	attach_and_map(_metadata, self);
	EXPECT_EQ(-EBUSY, vmdirty_attach(other, self->vm.vm_fd, NULL));
	vmdirty_ioctl(other, VMDIRTY_IOC_GET_INFO, &info);
	EXPECT_EQ(0, info.attached);
	/* Once the first session is gone, the VM is free again. */
	munmap(self->hdr, self->attach.region_size);
	self->hdr = NULL;
	close(self->fd);
	self->fd = -1;
	EXPECT_EQ(0, vmdirty_attach(other, self->vm.vm_fd, NULL));
	close(other);
}

TEST_F(session, attach_vm_without_ring)
{
	struct bare_vm plain;
	struct vmdirty_info info = VMDIRTY_ARG(vmdirty_info);

	ASSERT_EQ(0, bare_vm_create(&plain, 0));
	ASSERT_EQ(0, bare_vm_add_slot(&plain, 0, 0, 1 << 20));
	EXPECT_EQ(-ENXIO, vmdirty_attach(self->fd, plain.vm_fd, NULL));
	vmdirty_ioctl(self->fd, VMDIRTY_IOC_GET_INFO, &info);
	EXPECT_EQ(0, info.attached);
	bare_vm_destroy(&plain);
}

TEST_F(session, attach_kvm_system_fd)
{
	EXPECT_EQ(-EINVAL, vmdirty_attach(self->fd, self->vm.kvm_fd, NULL));
}

TEST_F(session, attach_vcpu_fd)
{
	EXPECT_EQ(-EINVAL, vmdirty_attach(self->fd, self->vm.vcpu_fd[0], NULL));
}

/* Each rejected field is the only thing wrong: the same call then works. */
TEST_F(session, attach_rejects_flags)
{
	struct vmdirty_attach a = VMDIRTY_ARG(vmdirty_attach);

	a.vm_fd = self->vm.vm_fd;
	a.flags = 1U << 31;
	EXPECT_EQ(-EINVAL, __vmdirty_ioctl(self->fd, VMDIRTY_IOC_ATTACH, &a));
	a.flags = 0;
	EXPECT_EQ(0, __vmdirty_ioctl(self->fd, VMDIRTY_IOC_ATTACH, &a));
}

TEST_F(session, attach_rejects_pad)
{
	struct vmdirty_attach a = VMDIRTY_ARG(vmdirty_attach);

	a.vm_fd = self->vm.vm_fd;
	a.pad = 1;
	EXPECT_EQ(-EINVAL, __vmdirty_ioctl(self->fd, VMDIRTY_IOC_ATTACH, &a));
	a.pad = 0;
	EXPECT_EQ(0, __vmdirty_ioctl(self->fd, VMDIRTY_IOC_ATTACH, &a));
}

TEST_F(session, attach_rejects_pad2)
{
	struct vmdirty_attach a = VMDIRTY_ARG(vmdirty_attach);

	a.vm_fd = self->vm.vm_fd;
	a.pad2 = 1;
	EXPECT_EQ(-EINVAL, __vmdirty_ioctl(self->fd, VMDIRTY_IOC_ATTACH, &a));
	a.pad2 = 0;
	EXPECT_EQ(0, __vmdirty_ioctl(self->fd, VMDIRTY_IOC_ATTACH, &a));
}

/* Out fields hold anything on input. */
TEST_F(session, attach_ignores_out_fields)
{
	struct vmdirty_attach a = VMDIRTY_ARG(vmdirty_attach);

	a.vm_fd = self->vm.vm_fd;
	a.region_size = ~0ULL;
	a.layout_gen = 77;
	a.nr_slots = 5;
	a.session_id = 9;
	EXPECT_EQ(0, __vmdirty_ioctl(self->fd, VMDIRTY_IOC_ATTACH, &a));
	EXPECT_EQ(1, a.nr_slots);
	EXPECT_EQ(1, a.layout_gen);
}

TEST_F(session, attach_rejects_reserved)
{
	struct vmdirty_attach a = VMDIRTY_ARG(vmdirty_attach);

	a.vm_fd = self->vm.vm_fd;
	a.reserved[2] = 1;
	EXPECT_EQ(-EINVAL, __vmdirty_ioctl(self->fd, VMDIRTY_IOC_ATTACH, &a));
	a.reserved[2] = 0;
	EXPECT_EQ(0, __vmdirty_ioctl(self->fd, VMDIRTY_IOC_ATTACH, &a));
}

TEST_F(session, attach_rejects_size)
{
	struct vmdirty_attach a = VMDIRTY_ARG(vmdirty_attach);

	a.vm_fd = self->vm.vm_fd;
	a.size = 0;
	EXPECT_EQ(-EINVAL, __vmdirty_ioctl(self->fd, VMDIRTY_IOC_ATTACH, &a));
	a.size = sizeof(a);
	EXPECT_EQ(0, __vmdirty_ioctl(self->fd, VMDIRTY_IOC_ATTACH, &a));
}

TEST_F(session, mmap_writable)
{
	void *p;

	ASSERT_EQ(0, vmdirty_attach(self->fd, self->vm.vm_fd, &self->attach));
	p = mmap(NULL, self->attach.region_size, PROT_READ | PROT_WRITE, MAP_SHARED,
		 self->fd, 0);
	EXPECT_EQ(MAP_FAILED, p);
	EXPECT_EQ(EPERM, errno);
}

TEST_F(session, mmap_executable)
{
	void *p;

	ASSERT_EQ(0, vmdirty_attach(self->fd, self->vm.vm_fd, &self->attach));
	p = mmap(NULL, self->attach.region_size, PROT_READ | PROT_EXEC, MAP_SHARED,
		 self->fd, 0);
	EXPECT_EQ(MAP_FAILED, p);
	EXPECT_EQ(EPERM, errno);
}

TEST_F(session, mmap_private)
{
	void *p;

	ASSERT_EQ(0, vmdirty_attach(self->fd, self->vm.vm_fd, &self->attach));
	p = mmap(NULL, self->attach.region_size, PROT_READ, MAP_PRIVATE, self->fd, 0);
	EXPECT_EQ(MAP_FAILED, p);
	EXPECT_EQ(EINVAL, errno);
}

TEST_F(session, mmap_past_region)
{
	void *p;

	ASSERT_EQ(0, vmdirty_attach(self->fd, self->vm.vm_fd, &self->attach));
	p = mmap(NULL, self->attach.region_size + getpagesize(), PROT_READ,
		 MAP_SHARED, self->fd, 0);
	EXPECT_EQ(MAP_FAILED, p);
	EXPECT_EQ(EINVAL, errno);
}

TEST_F(session, mmap_offset_past_region)
{
	void *p;

	ASSERT_EQ(0, vmdirty_attach(self->fd, self->vm.vm_fd, &self->attach));
	p = mmap(NULL, getpagesize(), PROT_READ, MAP_SHARED, self->fd,
		 self->attach.region_size);
	EXPECT_EQ(MAP_FAILED, p);
	EXPECT_EQ(EINVAL, errno);
}

/* A part of the region, at an offset inside it, is fine. */
TEST_F(session, mmap_last_page)
{
	size_t page = getpagesize();
	void *p;

	ASSERT_EQ(0, vmdirty_attach(self->fd, self->vm.vm_fd, &self->attach));
	p = mmap(NULL, page, PROT_READ, MAP_SHARED, self->fd,
		 self->attach.region_size - page);
	ASSERT_NE(MAP_FAILED, p);
	munmap(p, page);
}

TEST_F(session, mprotect_write)
{
	attach_and_map(_metadata, self);
	EXPECT_EQ(-1, mprotect(self->hdr, self->attach.region_size, PROT_READ | PROT_WRITE));
	EXPECT_EQ(EACCES, errno);
	EXPECT_EQ(VMDIRTY_SHM_MAGIC, self->hdr->magic);
}

TEST_F(session, mprotect_exec)
{
	attach_and_map(_metadata, self);
	EXPECT_EQ(-1, mprotect(self->hdr, self->attach.region_size, PROT_READ | PROT_EXEC));
	EXPECT_EQ(EACCES, errno);
}

TEST_F(session, harvest_idle)
{
	struct vmdirty_shm_vcpu *v;
	struct vmdirty_harvest h;
	unsigned int i;

	attach_and_map(_metadata, self);
	ASSERT_EQ(0, vmdirty_harvest(self->fd, 0, &h));
	EXPECT_EQ(0, h.entries);
	EXPECT_EQ(0, h.reset);
	EXPECT_EQ(0, h.pages);
	EXPECT_EQ(0, h.dropped);
	EXPECT_EQ(2, h.seq);
	EXPECT_EQ(0, h.snapshot);
	EXPECT_EQ(1, h.layout_gen);
	EXPECT_EQ(0, h.status);
	EXPECT_EQ(2, h.nr_vcpus);
	EXPECT_EQ(0, h.reserved[0] | h.reserved[1] | h.reserved[2] | h.reserved[3]);
	EXPECT_EQ(2, self->hdr->seq);
	EXPECT_EQ(0, self->hdr->snapshot);
	EXPECT_EQ(1, self->hdr->harvests);

	v = vmdirty_shm_vcpus(self->hdr);
	for (i = 0; i < 2; i++) {
		EXPECT_EQ(1, v[i].present);
		EXPECT_EQ(i, v[i].vcpu_id);
		EXPECT_EQ(4096, v[i].ring_size);
		EXPECT_EQ(0, v[i].ring_used);
		EXPECT_NE(0, v[i].last_ns);
	}
	EXPECT_EQ(0, v[2].present);

	ASSERT_EQ(0, vmdirty_harvest(self->fd, VMDIRTY_HARVEST_UNSORTED, &h));
	EXPECT_EQ(4, h.seq);
	EXPECT_EQ(1, h.snapshot);
	EXPECT_EQ(2, self->hdr->harvests);
}

/* Results of an earlier call in the out fields are no error. */
TEST_F(session, harvest_reuses_argument)
{
	struct vmdirty_harvest h = VMDIRTY_ARG(vmdirty_harvest);

	attach_and_map(_metadata, self);
	vmdirty_ioctl(self->fd, VMDIRTY_IOC_HARVEST, &h);
	vmdirty_ioctl(self->fd, VMDIRTY_IOC_HARVEST, &h);
	EXPECT_EQ(4, h.seq);
}

TEST_F(session, harvest_no_swap)
{
	struct vmdirty_harvest h;

	attach_and_map(_metadata, self);
	ASSERT_EQ(0, vmdirty_harvest(self->fd, VMDIRTY_HARVEST_NO_SWAP, &h));
	EXPECT_EQ(0, h.seq);
	EXPECT_EQ(1, h.snapshot);
	EXPECT_EQ(0, self->hdr->harvests);
	EXPECT_EQ(1, self->hdr->drains);
}

TEST_F(session, harvest_attached_rejects_flags)
{
	attach_and_map(_metadata, self);
	EXPECT_EQ(-EINVAL, vmdirty_harvest(self->fd, VMDIRTY_HARVEST_UNSORTED << 1, NULL));
	EXPECT_EQ(0, self->hdr->seq);
	EXPECT_EQ(0, self->hdr->harvests | self->hdr->drains);
}

TEST_F(session, harvest_attached_rejects_reserved)
{
	struct vmdirty_harvest h = VMDIRTY_ARG(vmdirty_harvest);

	attach_and_map(_metadata, self);
	h.reserved[0] = 1;
	EXPECT_EQ(-EINVAL, __vmdirty_ioctl(self->fd, VMDIRTY_IOC_HARVEST, &h));
	EXPECT_EQ(0, self->hdr->seq);
	EXPECT_EQ(0, h.seq);
}

/* From a process that is not the VM's: the session's worker resets. */
TEST_F(session, harvest_from_other_process)
{
	struct vmdirty_harvest h;
	pid_t pid;
	int status;

	attach_and_map(_metadata, self);
	pid = fork();
	ASSERT_LE(0, pid);
	if (!pid)
		_exit(vmdirty_harvest(self->fd, 0, &h) || h.nr_vcpus != 2 ? 1 : 0);
	ASSERT_EQ(pid, waitpid(pid, &status, 0));
	EXPECT_TRUE(WIFEXITED(status) && !WEXITSTATUS(status));
	EXPECT_EQ(1, self->hdr->harvests);
	EXPECT_EQ(2, self->hdr->seq);
}

TEST_F(session, drain_start_stop)
{
	uint64_t drains;

	attach_and_map(_metadata, self);
	ASSERT_EQ(0, vmdirty_set_drain(self->fd, VMDIRTY_DRAIN_ENABLE, 0, 0, 0));
	usleep(200000);
	drains = __atomic_load_n(&self->hdr->drains, __ATOMIC_RELAXED);
	EXPECT_LT(0, drains);
	/* Retune while running. */
	ASSERT_EQ(0, vmdirty_set_drain(self->fd, VMDIRTY_DRAIN_ENABLE,
				       VMDIRTY_DRAIN_MIN_US, VMDIRTY_DRAIN_MIN_US, 90));
	ASSERT_EQ(0, vmdirty_set_drain(self->fd, 0, 0, 0, 0));
	drains = __atomic_load_n(&self->hdr->drains, __ATOMIC_RELAXED);
	usleep(100000);
	EXPECT_EQ(drains, __atomic_load_n(&self->hdr->drains, __ATOMIC_RELAXED));
	/* Stopping twice is fine. */
	EXPECT_EQ(0, vmdirty_set_drain(self->fd, 0, 0, 0, 0));
}

TEST_F(session, drain_limits_accepted)
{
	attach_and_map(_metadata, self);
	EXPECT_EQ(0, vmdirty_set_drain(self->fd, VMDIRTY_DRAIN_ENABLE,
				       VMDIRTY_DRAIN_MIN_US, VMDIRTY_DRAIN_MAX_US, 1));
	EXPECT_EQ(0, vmdirty_set_drain(self->fd, VMDIRTY_DRAIN_ENABLE,
				       VMDIRTY_DRAIN_MAX_US, 0, 0));
	EXPECT_EQ(0, vmdirty_set_drain(self->fd, VMDIRTY_DRAIN_ENABLE, 0,
				       VMDIRTY_DRAIN_MIN_US, 0));
}

TEST_F(session, drain_rejects_min_too_small)
{
	attach_and_map(_metadata, self);
	EXPECT_EQ(-EINVAL, vmdirty_set_drain(self->fd, VMDIRTY_DRAIN_ENABLE,
					     VMDIRTY_DRAIN_MIN_US - 1, 0, 0));
	EXPECT_EQ(0, self->hdr->drains);
}

TEST_F(session, drain_rejects_max_too_large)
{
	attach_and_map(_metadata, self);
	EXPECT_EQ(-EINVAL, vmdirty_set_drain(self->fd, VMDIRTY_DRAIN_ENABLE, 0,
					     VMDIRTY_DRAIN_MAX_US + 1, 0));
}

TEST_F(session, drain_rejects_min_above_max)
{
	attach_and_map(_metadata, self);
	EXPECT_EQ(-EINVAL, vmdirty_set_drain(self->fd, VMDIRTY_DRAIN_ENABLE, 2000, 1000, 0));
}

TEST_F(session, drain_rejects_high_pct)
{
	attach_and_map(_metadata, self);
	EXPECT_EQ(-EINVAL, vmdirty_set_drain(self->fd, VMDIRTY_DRAIN_ENABLE, 0, 0, 91));
}

TEST_F(session, drain_stop_rejects_parameters)
{
	attach_and_map(_metadata, self);
	EXPECT_EQ(-EINVAL, vmdirty_set_drain(self->fd, 0, 1000, 0, 0));
	EXPECT_EQ(-EINVAL, vmdirty_set_drain(self->fd, 0, 0, 0, 50));
}

/* A rejected retune leaves the running drain as it was. */
TEST_F(session, drain_bad_retune_keeps_running)
{
	uint64_t drains;

	attach_and_map(_metadata, self);
	ASSERT_EQ(0, vmdirty_set_drain(self->fd, VMDIRTY_DRAIN_ENABLE, 1000, 1000, 0));
	EXPECT_EQ(-EINVAL, vmdirty_set_drain(self->fd, VMDIRTY_DRAIN_ENABLE, 10, 0, 0));
	drains = __atomic_load_n(&self->hdr->drains, __ATOMIC_RELAXED);
	usleep(100000);
	EXPECT_LT(drains, __atomic_load_n(&self->hdr->drains, __ATOMIC_RELAXED));
}

/* --- Who may attach ------------------------------------------------------ */

/* ATTACH from a child (another mm) holding the VM fd; its result. */
static int attach_from_child(FIXTURE_DATA(session) *self, bool drop)
{
	int status;
	pid_t pid = fork();

	if (pid < 0)
		return -errno;
	if (!pid) {
		int ret;

		if (drop && drop_cap(CAP_SYS_ADMIN))
			_exit(200);
		ret = vmdirty_attach(self->fd, self->vm.vm_fd, NULL);
		_exit(-ret);
	}
	if (waitpid(pid, &status, 0) != pid || !WIFEXITED(status))
		return -ECHILD;
	return -WEXITSTATUS(status);
}

/*
 * KVM lets only the VM's own process use the VM fd (kvm_vm_ioctl() checks
 * the mm), and a session resets its rings with that process's mm: so does
 * ATTACH, unless the caller has CAP_SYS_ADMIN.  Before: any holder of the
 * VM fd attached.
 */
TEST_F(session, attach_other_process_needs_cap_sys_admin)
{
	struct vmdirty_info info = VMDIRTY_ARG(vmdirty_info);

	EXPECT_EQ(-EPERM, attach_from_child(self, true));
	vmdirty_ioctl(self->fd, VMDIRTY_IOC_GET_INFO, &info);
	EXPECT_EQ(0, info.attached);
	/* An administrator's tool may. */
	EXPECT_EQ(0, attach_from_child(self, false));
	vmdirty_ioctl(self->fd, VMDIRTY_IOC_GET_INFO, &info);
	EXPECT_EQ(1, info.attached);
}

/* The VM's own process needs no capability. */
TEST_F(session, attach_own_vm_without_caps)
{
	int status;
	pid_t pid = fork();

	ASSERT_LE(0, pid);
	if (!pid) {
		struct bare_vm vm;

		if (drop_cap(CAP_SYS_ADMIN) || bare_vm_simple(&vm, 1))
			_exit(200);
		_exit(-vmdirty_attach(self->fd, vm.vm_fd, NULL));
	}
	ASSERT_EQ(pid, waitpid(pid, &status, 0));
	ASSERT_TRUE(WIFEXITED(status));
	EXPECT_EQ(0, WEXITSTATUS(status)) TH_LOG("ATTACH: %s", strerror(WEXITSTATUS(status)));
}

TEST_HARNESS_MAIN
