// SPDX-License-Identifier: GPL-2.0
/*
 * Helpers for the vmdirty.ko selftests (see vmdirty_util.h).
 */
#include <dirent.h>
#include <fcntl.h>
#include <limits.h>
#include <sched.h>
#include <time.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <linux/capability.h>

#include "vmdirty_util.h"

int write_file(const char *path, const char *s)
{
	int fd = open(path, O_WRONLY | O_CLOEXEC);
	ssize_t n;

	if (fd < 0)
		return -errno;
	n = write(fd, s, strlen(s));
	close(fd);
	return n == (ssize_t)strlen(s) ? 0 : n < 0 ? -errno : -EIO;
}

int vmdirty_open(void)
{
	int fd = open("/dev/" VMDIRTY_DEVICE_NAME, O_RDWR | O_CLOEXEC);

	return fd < 0 ? -errno : fd;
}

int vmdirty_attach(int fd, int vm_fd, struct vmdirty_attach *out)
{
	struct vmdirty_attach arg = VMDIRTY_ARG(vmdirty_attach);
	int ret;

	arg.vm_fd = vm_fd;
	ret = __vmdirty_ioctl(fd, VMDIRTY_IOC_ATTACH, &arg);
	if (!ret && out)
		*out = arg;
	return ret;
}

struct vmdirty_shm_header *vmdirty_map(int fd, size_t size)
{
	void *p = mmap(NULL, size, PROT_READ, MAP_SHARED, fd, 0);

	return p == MAP_FAILED ? NULL : p;
}

int vmdirty_harvest(int fd, uint32_t flags, struct vmdirty_harvest *out)
{
	struct vmdirty_harvest arg = VMDIRTY_ARG(vmdirty_harvest);
	int ret;

	arg.flags = flags;
	ret = __vmdirty_ioctl(fd, VMDIRTY_IOC_HARVEST, &arg);
	if (!ret && out)
		*out = arg;
	return ret;
}

int vmdirty_set_drain(int fd, uint32_t flags, uint32_t min_us, uint32_t max_us,
		      uint32_t high_pct)
{
	struct vmdirty_drain arg = VMDIRTY_ARG(vmdirty_drain);

	arg.flags = flags;
	arg.min_interval_us = min_us;
	arg.max_interval_us = max_us;
	arg.high_pct = high_pct;
	return __vmdirty_ioctl(fd, VMDIRTY_IOC_SET_DRAIN, &arg);
}

bool vmdirty_module_path(char *path, size_t len)
{
	const char *env = getenv("VMDIRTY_KO");
	char dir[PATH_MAX - 32];
	int up;

	if (env) {
		snprintf(path, len, "%s", env);
		return !access(path, R_OK);
	}
	if (!getcwd(dir, sizeof(dir)))
		return false;
	for (up = 0; up < 8; up++) {
		char *slash;

		snprintf(path, len, "%s/kmod/vmdirty.ko", dir);
		if (!access(path, R_OK))
			return true;
		slash = strrchr(dir, '/');
		if (!slash || slash == dir)
			break;
		*slash = 0;
	}
	return false;
}

bool vmdirty_debug_module_path(const char *ko, char *path, size_t len)
{
	const char *env = getenv("VMDIRTY_DEBUG_KO");
	const char *kmod = strstr(ko, "kmod/vmdirty.ko");

	if (env && *env)
		snprintf(path, len, "%s", env);
	else if (kmod)
		snprintf(path, len, "%.*sbuild/kmod-debug/kmod/vmdirty.ko",
			 (int)(kmod - ko), ko);
	else
		return false;
	return !access(path, R_OK);
}

int vmdirty_module_load(const char *path)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC), ret;

	if (fd < 0)
		return -errno;
	ret = syscall(SYS_finit_module, fd, "", 0) ? -errno : 0;
	close(fd);
	return ret;
}

int vmdirty_module_unload(void)
{
	return syscall(SYS_delete_module, "vmdirty", O_NONBLOCK) ? -errno : 0;
}

bool vmdirty_module_loaded(void)
{
	return !access("/sys/module/vmdirty", F_OK);
}

uint64_t vmdirty_shm_count(struct vmdirty_shm_header *h,
			   const struct vmdirty_shm_slot *slot, unsigned int set)
{
	const uint64_t *bitmap = vmdirty_shm_bitmap(h, slot, set);
	uint64_t w, n = 0;

	for (w = 0; w < (slot->npages + 63) / 64; w++)
		n += __builtin_popcountll(bitmap[w]);
	return n;
}

bool vmdirty_shm_consistent(struct vmdirty_shm_header *h,
			    const struct vmdirty_shm_slot *slot, unsigned int set)
{
	const uint64_t *bitmap = vmdirty_shm_bitmap(h, slot, set);
	const uint64_t *summary = vmdirty_shm_summary(h, slot, set);
	uint64_t w, words = (slot->npages + 63) / 64;

	for (w = 0; w < words; w++)
		if (bitmap[w] && !vmdirty_test_bit(summary, w))
			return false;
	if (slot->npages % 64 && bitmap[words - 1] >> (slot->npages % 64))
		return false;
	return true;
}

bool bare_vm_supported(void)
{
	int kvm = open("/dev/kvm", O_RDWR | O_CLOEXEC);
	int ret;

	if (kvm < 0)
		return false;
	ret = ioctl(kvm, KVM_CHECK_EXTENSION, KVM_CAP_DIRTY_LOG_RING_ACQ_REL);
	if (ret <= 0)
		ret = ioctl(kvm, KVM_CHECK_EXTENSION, KVM_CAP_DIRTY_LOG_RING);
	close(kvm);
	return ret > 0;
}

static int bare_vm_enable_ring(struct bare_vm *vm, uint32_t entries)
{
	struct kvm_enable_cap cap = {
		.cap = KVM_CAP_DIRTY_LOG_RING_ACQ_REL,
		.args[0] = (uint64_t)entries * sizeof(struct kvm_dirty_gfn),
	};

	if (ioctl(vm->kvm_fd, KVM_CHECK_EXTENSION, cap.cap) <= 0)
		cap.cap = KVM_CAP_DIRTY_LOG_RING;
	return ioctl(vm->vm_fd, KVM_ENABLE_CAP, &cap) < 0 ? -errno : 0;
}

int bare_vm_create(struct bare_vm *vm, uint32_t ring_entries)
{
	int ret;

	memset(vm, 0, sizeof(*vm));
	vm->vm_fd = -1;
	vm->kvm_fd = open("/dev/kvm", O_RDWR | O_CLOEXEC);
	if (vm->kvm_fd < 0)
		return -errno;
	vm->vm_fd = ioctl(vm->kvm_fd, KVM_CREATE_VM, 0);
	if (vm->vm_fd < 0) {
		ret = -errno;
		goto err;
	}
	if (ring_entries) {
		ret = bare_vm_enable_ring(vm, ring_entries);
		if (ret)
			goto err;
		vm->ring_entries = ring_entries;
	}
	return 0;
err:
	bare_vm_destroy(vm);
	return ret;
}

static int bare_vm_set_slot(struct bare_vm *vm, uint32_t slot, uint64_t gpa,
			    uint64_t size, void *mem)
{
	struct kvm_userspace_memory_region region = {
		.slot = slot,
		.flags = size ? KVM_MEM_LOG_DIRTY_PAGES : 0,
		.guest_phys_addr = gpa,
		.memory_size = size,
		.userspace_addr = (uintptr_t)mem,
	};

	return ioctl(vm->vm_fd, KVM_SET_USER_MEMORY_REGION, &region) < 0 ? -errno : 0;
}

static struct bare_slot *bare_vm_find_slot(struct bare_vm *vm, uint32_t slot)
{
	unsigned int i;

	for (i = 0; i < vm->nr_slots; i++)
		if (vm->slots[i].slot == slot && vm->slots[i].size)
			return &vm->slots[i];
	return NULL;
}

int bare_vm_add_slot(struct bare_vm *vm, uint32_t slot, uint64_t gpa, uint64_t size)
{
	struct bare_slot *s;
	void *mem;
	int ret;

	if (vm->nr_slots == BARE_VM_MAX_SLOTS)
		return -ENOSPC;
	mem = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (mem == MAP_FAILED)
		return -errno;
	ret = bare_vm_set_slot(vm, slot, gpa, size, mem);
	if (ret) {
		munmap(mem, size);
		return ret;
	}
	s = &vm->slots[vm->nr_slots++];
	s->slot = slot;
	s->gpa = gpa;
	s->size = size;
	s->mem = mem;
	return 0;
}

int bare_vm_del_slot(struct bare_vm *vm, uint32_t slot)
{
	struct bare_slot *s = bare_vm_find_slot(vm, slot);
	int ret;

	if (!s)
		return -ENOENT;
	ret = bare_vm_set_slot(vm, slot, s->gpa, 0, s->mem);
	if (ret)
		return ret;
	munmap(s->mem, s->size);
	s->size = 0;
	s->mem = NULL;
	return 0;
}

int bare_vm_move_slot(struct bare_vm *vm, uint32_t slot, uint64_t gpa)
{
	struct bare_slot *s = bare_vm_find_slot(vm, slot);
	int ret;

	if (!s)
		return -ENOENT;
	ret = bare_vm_set_slot(vm, slot, gpa, s->size, s->mem);
	if (!ret)
		s->gpa = gpa;
	return ret;
}

int bare_vm_add_vcpu(struct bare_vm *vm)
{
	unsigned int i = vm->nr_vcpus;
	void *ring;
	int fd, page = getpagesize();

	if (i == BARE_VM_MAX_VCPUS)
		return -ENOSPC;
	fd = ioctl(vm->vm_fd, KVM_CREATE_VCPU, i);
	if (fd < 0)
		return -errno;
	if (vm->ring_entries) {
		ring = mmap(NULL, vm->ring_entries * sizeof(struct kvm_dirty_gfn),
			    PROT_READ | PROT_WRITE, MAP_SHARED, fd,
			    (off_t)KVM_DIRTY_LOG_PAGE_OFFSET * page);
		if (ring == MAP_FAILED) {
			close(fd);
			return -errno;
		}
		vm->ring[i] = ring;
	}
	vm->vcpu_fd[i] = fd;
	vm->nr_vcpus++;
	return 0;
}

void bare_vm_destroy(struct bare_vm *vm)
{
	unsigned int i;

	for (i = 0; i < vm->nr_vcpus; i++) {
		if (vm->ring[i])
			munmap(vm->ring[i], vm->ring_entries * sizeof(struct kvm_dirty_gfn));
		close(vm->vcpu_fd[i]);
	}
	vm->nr_vcpus = 0;
	if (vm->vm_fd >= 0)
		close(vm->vm_fd);
	vm->vm_fd = -1;
	for (i = 0; i < vm->nr_slots; i++)
		if (vm->slots[i].size)
			munmap(vm->slots[i].mem, vm->slots[i].size);
	vm->nr_slots = 0;
	if (vm->kvm_fd >= 0)
		close(vm->kvm_fd);
	vm->kvm_fd = -1;
}

int bare_vm_simple(struct bare_vm *vm, unsigned int nr_vcpus)
{
	unsigned int i;
	int ret;

	ret = bare_vm_create(vm, 4096);
	if (ret)
		return ret;
	ret = bare_vm_add_slot(vm, 0, 1 << 20, 1 << 20);
	for (i = 0; !ret && i < nr_vcpus; i++)
		ret = bare_vm_add_vcpu(vm);
	if (ret)
		bare_vm_destroy(vm);
	return ret;
}

void kvm_debugfs_dir(char *buf, size_t len, int vm_fd)
{
	snprintf(buf, len, "/sys/kernel/debug/kvm/%d-%d", gettid(), vm_fd);
}

bool debugfs_ready(void)
{
	struct stat st;

	if (!stat("/sys/kernel/debug/kvm", &st))
		return true;
	mount("debugfs", "/sys/kernel/debug", "debugfs", 0, NULL);
	return !stat("/sys/kernel/debug/kvm", &st);
}

int send_fd(int sock, int fd)
{
	char data = 0, cbuf[CMSG_SPACE(sizeof(int))] = { 0 };
	struct iovec iov = { .iov_base = &data, .iov_len = 1 };
	struct msghdr msg = {
		.msg_iov = &iov, .msg_iovlen = 1,
		.msg_control = cbuf, .msg_controllen = sizeof(cbuf),
	};
	struct cmsghdr *cmsg = CMSG_FIRSTHDR(&msg);

	cmsg->cmsg_level = SOL_SOCKET;
	cmsg->cmsg_type = SCM_RIGHTS;
	cmsg->cmsg_len = CMSG_LEN(sizeof(int));
	memcpy(CMSG_DATA(cmsg), &fd, sizeof(int));
	return sendmsg(sock, &msg, 0) == 1 ? 0 : -errno;
}

int recv_fd(int sock)
{
	char data, cbuf[CMSG_SPACE(sizeof(int))];
	struct iovec iov = { .iov_base = &data, .iov_len = 1 };
	struct msghdr msg = {
		.msg_iov = &iov, .msg_iovlen = 1,
		.msg_control = cbuf, .msg_controllen = sizeof(cbuf),
	};
	struct cmsghdr *cmsg;
	int fd;

	if (recvmsg(sock, &msg, MSG_CMSG_CLOEXEC) != 1)
		return -errno ?: -EIO;
	cmsg = CMSG_FIRSTHDR(&msg);
	if (!cmsg || cmsg->cmsg_type != SCM_RIGHTS)
		return -EPROTO;
	memcpy(&fd, CMSG_DATA(cmsg), sizeof(int));
	return fd;
}

int vmdirty_worker_pid(uint32_t session_id)
{
	char want[32], path[300], comm[32];
	struct dirent *d;
	int pid = -ESRCH;
	DIR *dir;

	snprintf(want, sizeof(want), "vmdirty/%u\n", session_id);
	dir = opendir("/proc");
	if (!dir)
		return -errno;
	while (pid < 0 && (d = readdir(dir))) {
		ssize_t n;
		int fd;

		if (d->d_name[0] < '1' || d->d_name[0] > '9')
			continue;
		snprintf(path, sizeof(path), "/proc/%s/comm", d->d_name);
		fd = open(path, O_RDONLY | O_CLOEXEC);
		if (fd < 0)
			continue;
		n = read(fd, comm, sizeof(comm) - 1);
		close(fd);
		if (n > 0) {
			comm[n] = 0;
			if (!strcmp(comm, want))
				pid = atoi(d->d_name);
		}
	}
	closedir(dir);
	return pid;
}

int drop_cap(int cap)
{
	struct __user_cap_header_struct hdr = { .version = _LINUX_CAPABILITY_VERSION_3 };
	struct __user_cap_data_struct data[2];

	if (syscall(SYS_capget, &hdr, data))
		return -errno;
	data[cap / 32].effective &= ~(1U << (cap % 32));
	data[cap / 32].permitted &= ~(1U << (cap % 32));
	return syscall(SYS_capset, &hdr, data) ? -errno : 0;
}

int pin_task(int tid, int cpu)
{
	cpu_set_t set;

	CPU_ZERO(&set);
	CPU_SET(cpu, &set);
	return sched_setaffinity(tid, sizeof(set), &set) ? -errno : 0;
}

static uint64_t hold_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void *cpu_hold_fn(void *arg)
{
	struct sched_param sp = { .sched_priority = 50 };
	struct cpu_hold *h = arg;
	uint64_t start;

	h->err = pin_task(0, h->cpu);
	if (!h->err && sched_setscheduler(0, SCHED_FIFO, &sp))
		h->err = -errno;
	__atomic_store_n(&h->ready, true, __ATOMIC_RELEASE);
	if (h->err)
		return NULL;
	start = hold_now_ms();
	while (hold_now_ms() - start < h->spin_ms) {
		if (h->check(h->ctx)) {
			h->done = h->while_spinning = true;
			return NULL;
		}
	}
	while (hold_now_ms() - start < h->timeout_ms) {
		if (h->check(h->ctx)) {
			h->done = true;
			return NULL;
		}
		usleep(1000);
	}
	return NULL;
}

#define RT_RUNTIME	"/proc/sys/kernel/sched_rt_runtime_us"

/* RT throttling would hand the CPU to the worker after 0.95 s: off. */
static void rt_throttle(struct cpu_hold *h, bool on)
{
	int fd = open(RT_RUNTIME, O_RDWR | O_CLOEXEC);
	ssize_t n;

	if (fd < 0)
		return;
	if (!on) {
		n = read(fd, h->rt_runtime, sizeof(h->rt_runtime) - 1);
		h->rt_runtime[n > 0 ? n : 0] = 0;
		n = pwrite(fd, "-1", 2, 0);
	} else if (h->rt_runtime[0]) {
		n = pwrite(fd, h->rt_runtime, strlen(h->rt_runtime), 0);
	}
	(void)n;
	close(fd);
}

int cpu_hold_start(struct cpu_hold *h)
{
	int ret;

	h->done = h->while_spinning = false;
	h->err = 0;
	h->rt_runtime[0] = 0;
	rt_throttle(h, false);
	h->ready = false;
	ret = -pthread_create(&h->th, NULL, cpu_hold_fn, h);
	if (ret) {
		rt_throttle(h, true);
		return ret;
	}
	/* Owning its CPU before the caller goes on. */
	while (!__atomic_load_n(&h->ready, __ATOMIC_ACQUIRE))
		usleep(1000);
	return 0;
}

int cpu_hold_join(struct cpu_hold *h)
{
	pthread_join(h->th, NULL);
	rt_throttle(h, true);
	if (h->err)
		return h->err;
	return h->done ? 0 : -ETIMEDOUT;
}
