// SPDX-License-Identifier: GPL-2.0
/*
 * The VM: /dev/kvm, the VM fd, guest RAM mapped once (gpa == offset:
 * anonymous memory with transparent huge pages as QEMU has it, or a memfd),
 * memslots over it, the in-kernel irqchip, the dirty ring or the
 * manual-protect bitmap mode, and the vCPUs.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <xxhash.h>

#include "vmm/vmm.h"
#include "vmm/vmm_int.h"

int vm_check_cap(const struct vm *vm, long cap)
{
	int fd, r;

	if (vm) {
		r = ioctl_retry(vm->fd, KVM_CHECK_EXTENSION, (void *)cap);
		return r < 0 ? -errno : r;
	}
	fd = open("/dev/kvm", O_RDWR | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	r = ioctl_retry(fd, KVM_CHECK_EXTENSION, (void *)cap);
	r = r < 0 ? -errno : r;
	close(fd);
	return r;
}

static int check_config(const struct vm_config *cfg)
{
	if (!cfg->nr_vcpus || cfg->nr_vcpus > VM_MAX_VCPUS)
		return -EINVAL;
	if (cfg->mem_size < VM_MIN_MEM || cfg->mem_size > VM_MAX_MEM ||
	    cfg->mem_size % GUEST_LARGE_PAGE_SIZE)
		return -EINVAL;
	if (cfg->slot_size % GUEST_PAGE_SIZE)
		return -EINVAL;
	if (cfg->slot_size && (cfg->mem_size + cfg->slot_size - 1) / cfg->slot_size > VM_MAX_SLOTS)
		return -E2BIG;
	if (cfg->ring_entries &&
	    (cfg->ring_entries & (cfg->ring_entries - 1) || cfg->ring_entries < 256))
		return -EINVAL;
	/* On x86 KVM the ring and the bitmap log exclude each other. */
	if (cfg->ring_entries && cfg->manual_protect)
		return -EINVAL;
	return 0;
}

/* Before any vCPU exists: KVM refuses the ring afterwards. */
static int enable_ring(struct vm *vm, uint32_t entries)
{
	struct kvm_enable_cap cap = { .args[0] = (uint64_t)entries * sizeof(struct kvm_dirty_gfn) };
	int max;

	max = vm_check_cap(vm, KVM_CAP_DIRTY_LOG_RING_ACQ_REL);
	if (max > 0) {
		cap.cap = KVM_CAP_DIRTY_LOG_RING_ACQ_REL;
		vm->ring_acq_rel = true;
	} else {
		max = vm_check_cap(vm, KVM_CAP_DIRTY_LOG_RING);
		if (max <= 0)
			return -EOPNOTSUPP;
		cap.cap = KVM_CAP_DIRTY_LOG_RING;
	}
	if (cap.args[0] > (uint64_t)max)
		return -E2BIG;
	if (ioctl_retry(vm->fd, KVM_ENABLE_CAP, &cap) < 0)
		return -errno;
	vm->ring_entries = entries;
	return 0;
}

static int enable_manual_protect(struct vm *vm)
{
	struct kvm_enable_cap cap = { .cap = KVM_CAP_MANUAL_DIRTY_LOG_PROTECT2 };
	int caps = vm_check_cap(vm, KVM_CAP_MANUAL_DIRTY_LOG_PROTECT2);

	if (caps <= 0)
		return -EOPNOTSUPP;
	/* INITIALLY_SET: no write-protect pass when logging starts. */
	cap.args[0] = caps & (KVM_DIRTY_LOG_MANUAL_PROTECT_ENABLE | KVM_DIRTY_LOG_INITIALLY_SET);
	if (ioctl_retry(vm->fd, KVM_ENABLE_CAP, &cap) < 0)
		return -errno;
	vm->manual_protect = cap.args[0];
	return 0;
}

static int set_slot(struct vm *vm, struct vm_slot *s, uint32_t flags)
{
	struct kvm_userspace_memory_region r = {
		.slot = s->id,
		.flags = flags,
		.guest_phys_addr = s->gpa,
		.memory_size = s->size,
		.userspace_addr = (uintptr_t)s->hva,
	};

	if (ioctl_retry(vm->fd, KVM_SET_USER_MEMORY_REGION, &r) < 0)
		return -errno;
	s->flags = flags;
	return 0;
}

/*
 * Anonymous RAM, 2 MiB aligned and MADV_HUGEPAGE, as QEMU maps it: a guest's
 * first write to a 2 MiB region then costs one host fault instead of 512
 * (shmem's THP is off by default, so a memfd never gets huge pages).
 * RAM that a migration fills (ram_incoming) starts on small pages: a page
 * arriving in an untouched region would have the host clear all 2 MiB of
 * it, which for a guest with data spread thin is clearing all RAM (in the
 * test host 3.4 s of a 4-5 s round 0, against 0.9 s on small pages).
 * MADV_DONTFORK: a fork must not make KVM's pages copy-on-write.
 */
static int map_anonymous(struct vm *vm)
{
	size_t align = GUEST_LARGE_PAGE_SIZE, len = vm->mem_size + align;
	uint8_t *p, *mem;

	p = mmap(NULL, len, PROT_READ | PROT_WRITE,
		 MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (p == MAP_FAILED)
		return -errno;
	mem = (uint8_t *)(((uintptr_t)p + align - 1) & ~(uintptr_t)(align - 1));
	if (mem > p)
		munmap(p, mem - p);
	munmap(mem + vm->mem_size, p + len - (mem + vm->mem_size));
	vm->mem = mem;
	/* EINVAL: a kernel without THP; the guest still runs, on small pages. */
	if (madvise(mem, vm->mem_size, vm->cfg.ram_incoming ? MADV_NOHUGEPAGE : MADV_HUGEPAGE) < 0 &&
	    errno != EINVAL)
		return -errno;
	if (madvise(mem, vm->mem_size, MADV_DONTFORK) < 0)
		return -errno;
	return 0;
}

static int map_memfd(struct vm *vm)
{
	vm->mem_fd = memfd_create("vmdirty-guest", MFD_CLOEXEC);
	if (vm->mem_fd < 0)
		return -errno;
	if (ftruncate(vm->mem_fd, vm->mem_size) < 0)
		return -errno;
	vm->mem = mmap(NULL, vm->mem_size, PROT_READ | PROT_WRITE, MAP_SHARED, vm->mem_fd, 0);
	if (vm->mem == MAP_FAILED) {
		vm->mem = NULL;
		return -errno;
	}
	return 0;
}

int vm_ram_hugepages(struct vm *vm)
{
	if (vm->mem_fd >= 0)
		return 0;
	if (madvise(vm->mem, vm->mem_size, MADV_HUGEPAGE) < 0 && errno != EINVAL)
		return -errno;
	return 0;
}

static int create_memory(struct vm *vm)
{
	uint64_t slot_size = vm->cfg.slot_size ? vm->cfg.slot_size : vm->mem_size;
	uint64_t gpa;
	int r;

	r = vm->cfg.ram_memfd ? map_memfd(vm) : map_anonymous(vm);
	if (r)
		return r;
	for (gpa = 0; gpa < vm->mem_size; gpa += slot_size) {
		struct vm_slot *s = &vm->slots[vm->nr_slots];

		s->id = vm->nr_slots;
		s->gpa = gpa;
		s->size = vm->mem_size - gpa < slot_size ? vm->mem_size - gpa : slot_size;
		s->hva = vm->mem + gpa;
		r = set_slot(vm, s, vm->cfg.log_dirty ? KVM_MEM_LOG_DIRTY_PAGES : 0);
		if (r)
			return r;
		vm->nr_slots++;
	}
	return 0;
}

int vm_create(const struct vm_config *cfg, struct vm **out)
{
	struct vm *vm;
	unsigned int i;
	int r;

	*out = NULL;
	r = check_config(cfg);
	if (r)
		return r;
	vm = calloc(1, sizeof(*vm));
	if (!vm)
		return -ENOMEM;
	vm->cfg = *cfg;
	vm->mem_size = cfg->mem_size;
	vm->fd = vm->mem_fd = vm->debugcon_fd = -1;

	vm->kvm_fd = open("/dev/kvm", O_RDWR | O_CLOEXEC);
	if (vm->kvm_fd < 0) {
		r = -errno;
		goto err;
	}
	if (ioctl(vm->kvm_fd, KVM_GET_API_VERSION, 0) != KVM_API_VERSION) {
		r = -EOPNOTSUPP;
		goto err;
	}
	r = ioctl_retry(vm->kvm_fd, KVM_CREATE_VM, 0);
	if (r < 0) {
		r = -errno;
		goto err;
	}
	vm->fd = r;
	r = vm_check_cap(vm, KVM_CAP_MAX_VCPUS);
	if (r > 0 && cfg->nr_vcpus > (unsigned int)r) {
		r = -E2BIG;
		goto err;
	}
	if (cfg->ring_entries) {
		r = enable_ring(vm, cfg->ring_entries);
		if (r)
			goto err;
	}
	if (cfg->manual_protect) {
		r = enable_manual_protect(vm);
		if (r)
			goto err;
	}
	/* The local APICs are KVM's, so their state is real and migrates. */
	if (ioctl_retry(vm->fd, KVM_CREATE_IRQCHIP, 0) < 0) {
		r = -errno;
		goto err;
	}
	r = create_memory(vm);
	if (r)
		goto err;
	vm->mb = (struct guest_mailbox *)(vm->mem + GUEST_MAILBOX_GPA);
	r = cpu_init_vm(vm);
	if (r)
		goto err;
	for (i = 0; i < cfg->nr_vcpus; i++) {
		r = vcpu_create(vm, i, &vm->vcpus[i]);
		if (r)
			goto err;
		vm->nr_vcpus++;
	}
	r = state_init_vm(vm);
	if (r)
		goto err;
	*out = vm;
	return 0;
err:
	vm_destroy(vm);
	return r;
}

void vm_destroy(struct vm *vm)
{
	unsigned int i;

	if (!vm)
		return;
	for (i = 0; i < vm->nr_vcpus; i++)
		vcpu_destroy(vm->vcpus[i]);
	if (vm->fd >= 0)
		close(vm->fd);
	if (vm->mem)
		munmap(vm->mem, vm->mem_size);
	if (vm->mem_fd >= 0)
		close(vm->mem_fd);
	if (vm->kvm_fd >= 0)
		close(vm->kvm_fd);
	free(vm->cpuid);
	free(vm);
}

int vm_set_dirty_logging(struct vm *vm, bool enable)
{
	unsigned int i;
	int r;

	for (i = 0; i < vm->nr_slots; i++) {
		struct vm_slot *s = &vm->slots[i];
		uint32_t flags = enable ? s->flags | KVM_MEM_LOG_DIRTY_PAGES :
					  s->flags & ~KVM_MEM_LOG_DIRTY_PAGES;

		if (flags == s->flags)
			continue;
		r = set_slot(vm, s, flags);
		if (r)
			return r;
	}
	return 0;
}

uint64_t vm_work_pages(const struct vm *vm)
{
	return (vm->mem_size - GUEST_WORK_BASE) / GUEST_PAGE_SIZE;
}

int64_t vm_slot_gfn(const struct vm *vm, uint32_t slot, uint64_t offset)
{
	const struct vm_slot *s;

	/* as_id (high 16 bits) is always 0: no SMM address space here. */
	if (slot >= vm->nr_slots)
		return -EINVAL;
	s = &vm->slots[slot];
	if (offset >= s->size / GUEST_PAGE_SIZE)
		return -EINVAL;
	return (int64_t)(s->gpa / GUEST_PAGE_SIZE + offset);
}

uint64_t vm_mem_hash(const struct vm *vm, uint64_t gpa, uint64_t len)
{
	if (gpa > vm->mem_size || len > vm->mem_size - gpa)
		return 0;
	return XXH3_64bits(vm->mem + gpa, len);
}

static void set_bits(uint64_t *bits, uint64_t first, uint64_t end)
{
	for (; first < end && first % 64; first++)
		bits[first / 64] |= 1ull << (first % 64);
	for (; first + 64 <= end; first += 64)
		bits[first / 64] = ~0ull;
	for (; first < end; first++)
		bits[first / 64] |= 1ull << (first % 64);
}

static int64_t memfd_populated(const struct vm *vm, uint64_t *bits)
{
	uint64_t pages = 0;
	off_t data = 0, hole;

	/* shmem answers SEEK_DATA/SEEK_HOLE from its page cache: one call per extent. */
	for (;;) {
		data = lseek(vm->mem_fd, data, SEEK_DATA);
		if (data < 0)
			return errno == ENXIO ? (int64_t)pages : -errno;
		hole = lseek(vm->mem_fd, data, SEEK_HOLE);
		if (hole < 0)
			return -errno;
		if ((uint64_t)hole > vm->mem_size)
			hole = vm->mem_size;
		set_bits(bits, data / GUEST_PAGE_SIZE,
			 (hole + GUEST_PAGE_SIZE - 1) / GUEST_PAGE_SIZE);
		pages += (hole + GUEST_PAGE_SIZE - 1) / GUEST_PAGE_SIZE - data / GUEST_PAGE_SIZE;
		if ((uint64_t)hole >= vm->mem_size)
			return pages;
		data = hole;
	}
}

/* Documentation/admin-guide/mm/pagemap.rst */
#define PM_PRESENT	(1ull << 63)
#define PM_SWAP		(1ull << 62)
#define PAGEMAP_CHUNK	8192

/*
 * Anonymous RAM: /proc/self/pagemap, one entry per host page.  A page is
 * taken to hold data unless it is neither present nor swapped (a migration
 * entry counts as swapped).  A present zero page is counted too: it is
 * read and found zero, which costs time but never loses data.
 */
static int64_t anon_populated(const struct vm *vm, uint64_t *bits)
{
	uint64_t npages = vm->mem_size / GUEST_PAGE_SIZE, pages = 0, *pm;
	uint64_t first = (uintptr_t)vm->mem / GUEST_PAGE_SIZE;
	int64_t ret = 0;
	int fd;

	if (sysconf(_SC_PAGESIZE) != GUEST_PAGE_SIZE)
		return -EOPNOTSUPP;
	pm = malloc(PAGEMAP_CHUNK * sizeof(*pm));
	if (!pm)
		return -ENOMEM;
	fd = open("/proc/self/pagemap", O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		ret = -errno;
		goto out;
	}
	for (uint64_t g = 0; g < npages;) {
		uint64_t n = npages - g < PAGEMAP_CHUNK ? npages - g : PAGEMAP_CHUNK;
		ssize_t got = pread(fd, pm, n * sizeof(*pm), (first + g) * sizeof(*pm));

		if (got <= 0 || got % sizeof(*pm)) {
			ret = got < 0 ? -errno : -EIO;
			goto out;
		}
		n = got / sizeof(*pm);
		for (uint64_t i = 0; i < n; i++, g++) {
			if (!(pm[i] & (PM_PRESENT | PM_SWAP)))
				continue;
			bits[g / 64] |= 1ull << (g % 64);
			pages++;
		}
	}
	ret = pages;
out:
	if (fd >= 0)
		close(fd);
	free(pm);
	return ret;
}

int64_t vm_mem_populated(const struct vm *vm, uint64_t *bits)
{
	return vm->mem_fd >= 0 ? memfd_populated(vm, bits) : anon_populated(vm, bits);
}

int vm_copy_memory(struct vm *dst, const struct vm *src)
{
	if (dst->mem_size != src->mem_size)
		return -EINVAL;
	memcpy(dst->mem, src->mem, dst->mem_size);
	return 0;
}

int vm_reset_dirty_rings(struct vm *vm)
{
	int r;

	if (!vm->ring_entries)
		return -ENODEV;
	r = ioctl_retry(vm->fd, KVM_RESET_DIRTY_RINGS, 0);
	return r < 0 ? -errno : r;
}

void vm_set_debugcon(struct vm *vm, int fd)
{
	__atomic_store_n(&vm->debugcon_fd, fd, __ATOMIC_RELAXED);
}

int vm_dump_memory(const struct vm *vm, int fd)
{
	uint64_t off = 0;

	while (off < vm->mem_size) {
		ssize_t n = pwrite(fd, vm->mem + off, vm->mem_size - off, (off_t)off);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return n ? -errno : -EIO;
		off += n;
	}
	return 0;
}
