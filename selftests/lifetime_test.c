// SPDX-License-Identifier: GPL-2.0
/*
 * Lifetimes and races on bare KVM VMs: the VM fd closed while attached, the
 * VMM process gone while another process holds the session, vCPUs created
 * and memslots changed after ATTACH, two threads harvesting at once, and
 * rmmod refused while a session exists.
 */
#include <dirent.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/netlink.h>
#include <poll.h>
#include <pthread.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "ksft_compat.h"
#include "vmdirty_util.h"

static bool dir_exists(const char *path)
{
	struct stat st;

	return !stat(path, &st) && S_ISDIR(st.st_mode);
}

FIXTURE(life) {
	struct bare_vm vm;
	int fd;
};

/* The tests make their VMs themselves. */
FIXTURE_SETUP(life)
{
	BARE_SESSION_SETUP(self, -1);
}

FIXTURE_TEARDOWN(life)
{
	if (self->fd >= 0)
		close(self->fd);
	bare_vm_destroy(&self->vm);
}

/*
 * The session holds the VM: KVM's debugfs directory of the VM (removed when
 * the VM is destroyed) outlives every fd of the VMM, and goes with the
 * session.
 */
TEST_F(life, vm_fd_closed_while_attached)
{
	struct vmdirty_harvest h;
	char dir[PATH_MAX];

	if (!debugfs_ready())
		SKIP(return, "no debugfs");
	ASSERT_EQ(0, bare_vm_simple(&self->vm, 2));
	kvm_debugfs_dir(dir, sizeof(dir), self->vm.vm_fd);
	ASSERT_TRUE(dir_exists(dir)) TH_LOG("%s", dir);
	ASSERT_EQ(0, vmdirty_attach(self->fd, self->vm.vm_fd, NULL));

	bare_vm_destroy(&self->vm);
	EXPECT_TRUE(dir_exists(dir));
	ASSERT_EQ(0, vmdirty_harvest(self->fd, 0, &h));
	EXPECT_EQ(2, h.nr_vcpus);
	EXPECT_EQ(0, h.reset);

	close(self->fd);
	self->fd = -1;
	EXPECT_FALSE(dir_exists(dir));
}

/* What the VMM child tells the parent: who it was. */
struct vmm_report {
	pid_t pid;
	int vm_fd;
};

/*
 * The VMM creates the VM, attaches, hands the session to another process
 * over SCM_RIGHTS and exits.  KVM cannot be asked to reset without the VM's
 * mm: HARVEST says ESRCH and keeps what it collected, draining refuses to
 * start; the session still reads, and closing it frees the VM.
 */
TEST_F(life, vmm_exits_while_attached)
{
	struct vmdirty_shm_header *hdr;
	struct vmdirty_info info = VMDIRTY_ARG(vmdirty_info);
	struct vmm_report rep;
	char dir[PATH_MAX];
	int sv[2], status, session;
	pid_t pid;

	if (!debugfs_ready())
		SKIP(return, "no debugfs");
	ASSERT_EQ(0, socketpair(AF_UNIX, SOCK_DGRAM, 0, sv));
	pid = fork();
	ASSERT_LE(0, pid);
	if (!pid) {
		struct bare_vm vm;

		close(sv[0]);
		if (bare_vm_simple(&vm, 2) || vmdirty_attach(self->fd, vm.vm_fd, NULL))
			_exit(1);
		rep.pid = getpid();
		rep.vm_fd = vm.vm_fd;
		if (write(sv[1], &rep, sizeof(rep)) != sizeof(rep) || send_fd(sv[1], self->fd))
			_exit(2);
		_exit(0);
	}
	close(sv[1]);
	ASSERT_EQ(sizeof(rep), read(sv[0], &rep, sizeof(rep)));
	session = recv_fd(sv[0]);
	close(sv[0]);
	ASSERT_LE(0, session);
	ASSERT_EQ(pid, waitpid(pid, &status, 0));
	ASSERT_TRUE(WIFEXITED(status) && !WEXITSTATUS(status));
	/* Our own copy of the fd (inherited before ATTACH) is the same file. */
	close(self->fd);
	self->fd = session;

	snprintf(dir, sizeof(dir), "/sys/kernel/debug/kvm/%d-%d", rep.pid, rep.vm_fd);
	EXPECT_TRUE(dir_exists(dir)) TH_LOG("%s", dir);

	vmdirty_ioctl(session, VMDIRTY_IOC_GET_INFO, &info);
	ASSERT_EQ(1, info.attached);
	hdr = vmdirty_map(session, info.region_size);
	ASSERT_NE(NULL, hdr);

	EXPECT_EQ(-ESRCH, vmdirty_harvest(session, 0, NULL));
	EXPECT_EQ(-ESRCH, vmdirty_harvest(session, VMDIRTY_HARVEST_NO_SWAP, NULL));
	EXPECT_EQ(0, hdr->seq);
	EXPECT_EQ(-ESRCH, vmdirty_set_drain(session, VMDIRTY_DRAIN_ENABLE, 0, 0, 0));
	/* The walk itself happened: both vCPUs are in the table. */
	EXPECT_EQ(1, vmdirty_shm_vcpus(hdr)[1].present);

	munmap(hdr, info.region_size);
	close(session);
	self->fd = -1;
	EXPECT_FALSE(dir_exists(dir));
}

TEST_F(life, vcpus_created_after_attach)
{
	struct vmdirty_attach a;
	struct vmdirty_shm_header *hdr;
	struct vmdirty_harvest h;
	unsigned int i;

	ASSERT_EQ(0, bare_vm_simple(&self->vm, 0));
	ASSERT_EQ(0, vmdirty_attach(self->fd, self->vm.vm_fd, &a));
	hdr = vmdirty_map(self->fd, a.region_size);
	ASSERT_NE(NULL, hdr);
	ASSERT_EQ(0, vmdirty_harvest(self->fd, 0, &h));
	EXPECT_EQ(0, h.nr_vcpus);

	for (i = 0; i < 3; i++)
		ASSERT_EQ(0, bare_vm_add_vcpu(&self->vm));
	ASSERT_EQ(0, vmdirty_harvest(self->fd, 0, &h));
	EXPECT_EQ(3, h.nr_vcpus);
	for (i = 0; i < 3; i++) {
		EXPECT_EQ(1, vmdirty_shm_vcpus(hdr)[i].present);
		EXPECT_EQ(i, vmdirty_shm_vcpus(hdr)[i].vcpu_id);
	}
	munmap(hdr, a.region_size);
}

/* Layout changes after ATTACH: stale once, layout_gen bumped once. */
static void expect_stale_after(struct __test_metadata *_metadata, int fd,
			       struct vmdirty_shm_header *hdr, bool stale)
{
	struct vmdirty_info info = VMDIRTY_ARG(vmdirty_info);
	struct vmdirty_harvest h;

	ASSERT_EQ(0, vmdirty_harvest(fd, 0, &h));
	EXPECT_EQ(stale ? VMDIRTY_STATUS_LAYOUT_STALE : 0, h.status);
	EXPECT_EQ(stale ? 2 : 1, h.layout_gen);
	EXPECT_EQ(h.status, hdr->flags);
	EXPECT_EQ(h.layout_gen, hdr->layout_gen);
	vmdirty_ioctl(fd, VMDIRTY_IOC_GET_INFO, &info);
	EXPECT_EQ(h.layout_gen, info.layout_gen);
	/* Nothing new: the generation stays. */
	ASSERT_EQ(0, vmdirty_harvest(fd, VMDIRTY_HARVEST_NO_SWAP, &h));
	EXPECT_EQ(stale ? 2 : 1, h.layout_gen);
}

static struct vmdirty_shm_header *attach_map(struct __test_metadata *_metadata,
					     int fd, int vm_fd, size_t *size)
{
	struct vmdirty_attach a;
	struct vmdirty_shm_header *hdr;

	EXPECT_EQ(0, vmdirty_attach(fd, vm_fd, &a));
	hdr = vmdirty_map(fd, a.region_size);
	EXPECT_NE(NULL, hdr);
	*size = a.region_size;
	return hdr;
}

/*
 * Memslot changes after ATTACH, one variant each, on one setup: a bare VM
 * with its 1 MiB slot 0 at 1 MiB, a session attached and mapped, the change,
 * then the next harvest must report the layout stale.
 */
FIXTURE(memslot) {
	struct bare_vm vm;
	int fd;
	struct vmdirty_shm_header *hdr;
	size_t size;
	void *mem;		/* new backing a change made, unmapped at the end */
};

FIXTURE_VARIANT(memslot) {
	/* Changes slot 0 of @vm; may leave new backing in *mem.  0 or -errno. */
	int (*change)(struct bare_vm *vm, void **mem);
};

/* Slot 0 as bare_vm_simple() made it, with @flags and @mem (NULL: its own). */
static int slot0_set(struct bare_vm *vm, uint32_t flags, void *mem)
{
	struct kvm_userspace_memory_region r = {
		.slot = 0,
		.flags = flags,
		.guest_phys_addr = 1 << 20,
		.memory_size = 1 << 20,
		.userspace_addr = (uintptr_t)(mem ?: vm->slots[0].mem),
	};

	return ioctl(vm->vm_fd, KVM_SET_USER_MEMORY_REGION, &r) ? -errno : 0;
}

static int slot_added(struct bare_vm *vm, void **mem)
{
	return bare_vm_add_slot(vm, 1, 4 << 20, 1 << 20);
}

static int slot_removed(struct bare_vm *vm, void **mem)
{
	return bare_vm_del_slot(vm, 0);
}

static int slot_moved(struct bare_vm *vm, void **mem)
{
	return bare_vm_move_slot(vm, 0, 8 << 20);
}

/*
 * Dirty logging off and on again: writes in between were logged nowhere,
 * so the session's bits would miss them.  Before, only base_gfn and npages
 * were compared and this counted as no change at all.
 */
static int slot_flags_only(struct bare_vm *vm, void **mem)
{
	return slot0_set(vm, 0, NULL) ?: slot0_set(vm, KVM_MEM_LOG_DIRTY_PAGES, NULL);
}

/* Logging turned off and left off: the slot's writes are not logged any more. */
static int slot_logging_off(struct bare_vm *vm, void **mem)
{
	return slot0_set(vm, 0, NULL);
}

/*
 * Deleted and created again at the same place and size, on new memory: the
 * region would go on publishing the old address.  Before: not noticed.
 */
static int slot_recreated_new_backing(struct bare_vm *vm, void **mem)
{
	int ret;

	*mem = mmap(NULL, 1 << 20, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (*mem == MAP_FAILED) {
		*mem = NULL;
		return -errno;
	}
	ret = bare_vm_del_slot(vm, 0);
	return ret ?: slot0_set(vm, KVM_MEM_LOG_DIRTY_PAGES, *mem);
}

FIXTURE_VARIANT_ADD(memslot, added) { .change = slot_added };
FIXTURE_VARIANT_ADD(memslot, removed) { .change = slot_removed };
FIXTURE_VARIANT_ADD(memslot, moved) { .change = slot_moved };
FIXTURE_VARIANT_ADD(memslot, flags_only) { .change = slot_flags_only };
FIXTURE_VARIANT_ADD(memslot, logging_off) { .change = slot_logging_off };
FIXTURE_VARIANT_ADD(memslot, recreated_new_backing) { .change = slot_recreated_new_backing };

FIXTURE_SETUP(memslot)
{
	self->hdr = NULL;
	self->mem = NULL;
	BARE_SESSION_SETUP(self, 1);
	self->hdr = attach_map(_metadata, self->fd, self->vm.vm_fd, &self->size);
	ASSERT_NE(NULL, self->hdr);
	ASSERT_EQ((uintptr_t)self->vm.slots[0].mem,
		  vmdirty_shm_slots(self->hdr)[0].userspace_addr);
}

FIXTURE_TEARDOWN(memslot)
{
	if (self->hdr)
		munmap(self->hdr, self->size);
	if (self->fd >= 0)
		close(self->fd);
	bare_vm_destroy(&self->vm);
	if (self->mem)
		munmap(self->mem, 1 << 20);
}

TEST_F(memslot, reported_stale)
{
	int ret = variant->change(&self->vm, &self->mem);

	ASSERT_EQ(0, ret) TH_LOG("the change: %s", strerror(-ret));
	expect_stale_after(_metadata, self->fd, self->hdr, true);
}

/* Every address space is recorded (x86: 1 is SMM), sorted by (as, id). */
TEST_F(life, all_address_spaces)
{
	struct vmdirty_shm_header *hdr;
	struct vmdirty_shm_slot *slots;
	size_t size;

	ASSERT_EQ(0, bare_vm_create(&self->vm, 4096));
	if (ioctl(self->vm.vm_fd, KVM_CHECK_EXTENSION, KVM_CAP_MULTI_ADDRESS_SPACE) < 2)
		SKIP(return, "one address space");
	ASSERT_EQ(0, bare_vm_add_slot(&self->vm, 1 << 16 | 0, 0, 1 << 20));
	ASSERT_EQ(0, bare_vm_add_slot(&self->vm, 3, 16 << 20, 2 << 20));
	ASSERT_EQ(0, bare_vm_add_slot(&self->vm, 1, 4 << 20, 1 << 20));
	hdr = attach_map(_metadata, self->fd, self->vm.vm_fd, &size);
	ASSERT_NE(NULL, hdr);
	ASSERT_EQ(3, hdr->nr_slots);
	slots = vmdirty_shm_slots(hdr);
	EXPECT_EQ(0, slots[0].as_id);
	EXPECT_EQ(1, slots[0].id);
	EXPECT_EQ(0, slots[1].as_id);
	EXPECT_EQ(3, slots[1].id);
	EXPECT_EQ(512, slots[1].npages);
	EXPECT_EQ(1, slots[2].as_id);
	EXPECT_EQ(0, slots[2].id);
	EXPECT_EQ(0, slots[2].base_gfn);
	/* Each slot's bitmaps lie apart from the others'. */
	EXPECT_LE(slots[0].bitmap_offset[0] + 256 / 8, slots[1].bitmap_offset[0]);
	EXPECT_LE(slots[1].bitmap_offset[0] + 512 / 8, slots[2].bitmap_offset[0]);
	munmap(hdr, size);
}

struct harvester {
	int fd;
	unsigned int rounds;
	int err;
	uint64_t last_seq;
	bool odd_seq;
};

static void *harvest_loop(void *arg)
{
	struct harvester *t = arg;
	struct vmdirty_harvest h = { 0 };
	unsigned int i;

	for (i = 0; i < t->rounds && !t->err; i++) {
		t->err = vmdirty_harvest(t->fd, i % 3 == 2 ? VMDIRTY_HARVEST_NO_SWAP : 0, &h);
		if (h.seq & 1 || h.seq < t->last_seq)
			t->odd_seq = true;
		t->last_seq = h.seq;
	}
	return NULL;
}

/* Harvests serialise: every swap counted once, seq always even. */
TEST_F(life, two_threads_harvest)
{
	struct harvester t[2] = {
		{ .fd = self->fd, .rounds = 300 }, { .fd = self->fd, .rounds = 300 },
	};
	struct vmdirty_shm_header *hdr;
	pthread_t th[2];
	size_t size;
	int i;

	ASSERT_EQ(0, bare_vm_simple(&self->vm, 2));
	hdr = attach_map(_metadata, self->fd, self->vm.vm_fd, &size);
	ASSERT_NE(NULL, hdr);
	ASSERT_EQ(0, vmdirty_set_drain(self->fd, VMDIRTY_DRAIN_ENABLE,
				       VMDIRTY_DRAIN_MIN_US, VMDIRTY_DRAIN_MIN_US, 0));
	for (i = 0; i < 2; i++)
		ASSERT_EQ(0, pthread_create(&th[i], NULL, harvest_loop, &t[i]));
	for (i = 0; i < 2; i++) {
		pthread_join(th[i], NULL);
		EXPECT_EQ(0, t[i].err);
		EXPECT_FALSE(t[i].odd_seq);
	}
	EXPECT_EQ(400, hdr->harvests);
	EXPECT_EQ(800, hdr->seq);
	munmap(hdr, size);
}

/* --- rmmod ---------------------------------------------------------------- */

FIXTURE(rmmod) {
	char ko[PATH_MAX];
	int fd;
};

FIXTURE_SETUP(rmmod)
{
	self->fd = -1;
	if (!vmdirty_module_loaded())
		SETUP_SKIP("vmdirty.ko is not loaded");
	if (!vmdirty_module_path(self->ko, sizeof(self->ko)))
		SETUP_SKIP("kmod/vmdirty.ko not found (set VMDIRTY_KO)");
	self->fd = vmdirty_open();
	ASSERT_LE(0, self->fd);
}

/*
 * Whatever happened, the module is loaded again for the tests after us (and
 * the helper that takes its family's name is gone, if a check failed first).
 */
FIXTURE_TEARDOWN(rmmod)
{
	if (self->fd >= 0)
		close(self->fd);
	syscall(SYS_delete_module, "vmdirty_squat", O_NONBLOCK);
	if (!vmdirty_module_loaded())
		TEST_ASSERT(!vmdirty_module_load(self->ko), "reloading %s", self->ko);
}

TEST_F(rmmod, refused_while_session_open)
{
	struct bare_vm vm = { .vm_fd = -1, .kvm_fd = -1 };
	int i, ret;

	/* Unattached: the open file alone pins the module. */
	EXPECT_EQ(-EWOULDBLOCK, vmdirty_module_unload());
	EXPECT_TRUE(vmdirty_module_loaded());
	if (bare_vm_supported()) {
		ASSERT_EQ(0, bare_vm_simple(&vm, 1));
		ASSERT_EQ(0, vmdirty_attach(self->fd, vm.vm_fd, NULL));
		bare_vm_destroy(&vm);
		EXPECT_EQ(-EWOULDBLOCK, vmdirty_module_unload());
	}
	close(self->fd);
	self->fd = -1;
	/* The release may still be finishing on another CPU: retry briefly. */
	for (i = 0; i < 50 && (ret = vmdirty_module_unload()) == -EWOULDBLOCK; i++)
		usleep(20000);
	EXPECT_EQ(0, ret);
	EXPECT_FALSE(vmdirty_module_loaded());
	ASSERT_EQ(0, vmdirty_module_load(self->ko));
	EXPECT_TRUE(vmdirty_module_loaded());
	self->fd = vmdirty_open();
	EXPECT_LE(0, self->fd);
}

/* selftests/kmod/vmdirty_squat.ko, beside the tree's kmod/vmdirty.ko. */
static bool find_squatter(const char *ko, char *path, size_t len)
{
	const char *kmod = strstr(ko, "kmod/vmdirty.ko");

	if (!kmod)
		return false;
	snprintf(path, len, "%.*sselftests/kmod/vmdirty_squat.ko", (int)(kmod - ko), ko);
	return !access(path, R_OK);
}

/* uevents naming the vmdirty misc device within @ms; -errno on error. */
static int vmdirty_uevents(int sk, int ms, char *first, size_t len)
{
	struct pollfd p = { .fd = sk, .events = POLLIN };
	char buf[4096];
	int n = 0;

	while (poll(&p, 1, ms) > 0) {
		ssize_t got = recv(sk, buf, sizeof(buf) - 1, 0);

		if (got < 0)
			return -errno;
		buf[got] = 0;
		/* "ACTION@DEVPATH" first, then KEY=VALUE strings. */
		if (strstr(buf, "/misc/" VMDIRTY_DEVICE_NAME) && !n++)
			snprintf(first, len, "%.*s", (int)len - 1, buf);
	}
	return n;
}

/*
 * vmdirty.ko whose init fails (its netlink family name taken) showed
 * nothing meanwhile: no /dev/vmdirty came and went, since no file could be
 * opened on a module about to be freed.  Before: the device was registered
 * first and removed when the family failed.  Loads @ko with the family
 * taken, then the tree's module again.
 */
static void failed_init(struct __test_metadata *_metadata, FIXTURE_DATA(rmmod) *self,
			const char *ko)
{
	struct sockaddr_nl sa = { .nl_family = AF_NETLINK, .nl_groups = 1 };
	char squat[PATH_MAX], first[256] = "";
	int i, ret, sk, events;

	if (!find_squatter(self->ko, squat, sizeof(squat)))
		SKIP(return, "selftests/kmod/vmdirty_squat.ko not built");
	close(self->fd);
	self->fd = -1;
	for (i = 0; i < 50 && (ret = vmdirty_module_unload()) == -EWOULDBLOCK; i++)
		usleep(20000);
	ASSERT_EQ(0, ret);
	ASSERT_EQ(0, vmdirty_module_load(squat));
	sk = socket(AF_NETLINK, SOCK_DGRAM | SOCK_CLOEXEC, NETLINK_KOBJECT_UEVENT);
	ASSERT_LE(0, sk);
	ASSERT_EQ(0, bind(sk, (struct sockaddr *)&sa, sizeof(sa)));

	ret = vmdirty_module_load(ko);
	events = vmdirty_uevents(sk, 300, first, sizeof(first));
	close(sk);
	EXPECT_EQ(0, syscall(SYS_delete_module, "vmdirty_squat", O_NONBLOCK));
	/*
	 * genl_register_family()'s -EEXIST; newer module loaders make an
	 * init's -EEXIST -EBUSY (kernel/module/main.c, do_init_module():
	 * -EEXIST means "already loaded" to userspace), as 7.3 does.
	 */
	EXPECT_TRUE(ret == -EEXIST || ret == -EBUSY)
		TH_LOG("loading with the family taken: %s", strerror(-ret));
	EXPECT_FALSE(vmdirty_module_loaded());
	EXPECT_EQ(0, events) TH_LOG("%d uevents of /dev/%s, the first: %s", events,
				    VMDIRTY_DEVICE_NAME, first);
	/* And it loads once the name is free. */
	ASSERT_EQ(0, vmdirty_module_load(self->ko));
	self->fd = vmdirty_open();
	EXPECT_LE(0, self->fd);
}

TEST_F(rmmod, failed_init_shows_nothing)
{
	failed_init(_metadata, self, self->ko);
}

/*
 * The same with the DEBUG build, whose init runs its self-tests before the
 * family: their look-alike VM files (kmod/selftest.c), whose operations are
 * the module's, were released by fput() on insmod's return to userspace,
 * after the failed init had freed the module: __fput() oopsed on the freed
 * operations (under KASAN, in make test-debug; a page fault without it).
 * The kernel log check of the test host fails the run on that oops.
 */
TEST_F(rmmod, failed_init_of_debug_build_frees_nothing_in_use)
{
	char debug[PATH_MAX];

	if (!vmdirty_debug_module_path(self->ko, debug, sizeof(debug)))
		SKIP(return, "no DEBUG build of the module (make module-debug)");
	failed_init(_metadata, self, debug);
}

TEST_HARNESS_MAIN
