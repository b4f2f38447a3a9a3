// SPDX-License-Identifier: GPL-2.0
/*
 * The guest image: an ELF32 multiboot v1 kernel (vmm/guest/), checked and
 * loaded by its program headers as QEMU's multiboot loader does, and booted
 * the multiboot way: a multiboot information block with the memory map and
 * command line, the BSP in 32-bit protected mode at the ELF entry, the APs
 * left in KVM's wait-for-SIPI state for the guest to start.
 */
#include <elf.h>
#include <errno.h>
#include <string.h>
#include <sys/ioctl.h>

#include "vmm/vmm.h"
#include "vmm/vmm_int.h"

#define MB_HEADER_MAGIC		0x1badb002u
#define MB_HEADER_SEARCH	8192	/* the header is in the file's first 8 KiB */
#define MB_HEADER_SUPPORTED	0x00000003u	/* page-aligned modules, memory info */
#define MB_HEADER_REQUIRED	0x0000ffffu	/* bits a loader must honour or refuse */
#define MB_LOADER_MAGIC		0x2badb002u

#define MBI_F_MEM		(1u << 0)
#define MBI_F_CMDLINE		(1u << 2)
#define MBI_F_MMAP		(1u << 6)
#define MBI_F_LOADER_NAME	(1u << 9)

/* Where the info block goes: GUEST_LOADER_GPA .. GUEST_LOADER_END (guest_abi.h). */
#define MBI_GPA			GUEST_LOADER_GPA
#define MBI_MMAP_GPA		(GUEST_LOADER_GPA + 0x100)
#define MBI_NAME_GPA		(GUEST_LOADER_GPA + 0x200)
#define MBI_CMDLINE_GPA		(GUEST_LOADER_GPA + 0x400)

#define CR0_PE			(1ULL << 0)
#define CR0_ET			(1ULL << 4)

struct mb_info {
	uint32_t flags, mem_lower, mem_upper, boot_device, cmdline;
	uint32_t mods_count, mods_addr, syms[4];
	uint32_t mmap_length, mmap_addr;
	uint32_t drives_length, drives_addr, config_table, boot_loader_name;
};

struct mb_mmap {
	uint32_t size;
	uint64_t addr, len;
	uint32_t type;
} __attribute__((packed));

_Static_assert(sizeof(struct mb_mmap) == 24, "multiboot mmap entry");

static int bad(const char **why, const char *what, int err)
{
	if (why)
		*why = what;
	return err;
}

static const Elf32_Phdr *phdr(const void *elf, unsigned int i)
{
	const Elf32_Ehdr *eh = elf;

	return (const Elf32_Phdr *)((const uint8_t *)elf + eh->e_phoff + i * sizeof(Elf32_Phdr));
}

static int check_multiboot(const uint8_t *elf, size_t size, struct vmm_image *img,
			   const char **why)
{
	size_t off, end = size < MB_HEADER_SEARCH ? size : MB_HEADER_SEARCH;
	uint32_t h[3];

	for (off = 0; off + sizeof(h) <= end; off += 4) {
		memcpy(h, elf + off, sizeof(h));
		if (h[0] != MB_HEADER_MAGIC || h[0] + h[1] + h[2])
			continue;
		if (h[1] & MB_HEADER_REQUIRED & ~MB_HEADER_SUPPORTED)
			return bad(why, "its multiboot header asks for what this loader lacks (video mode?)",
				   -ENOEXEC);
		if (h[1] & ~MB_HEADER_REQUIRED)
			return bad(why, "its multiboot header asks for address fields; load by ELF headers",
				   -ENOEXEC);
		img->mb_flags = h[1];
		return 0;
	}
	return bad(why, "no multiboot header in its first 8 KiB", -ENOEXEC);
}

int vmm_image_check(const void *elf, size_t size, uint64_t mem_size, struct vmm_image *img,
		    const char **why)
{
	const Elf32_Ehdr *eh = elf;
	unsigned int i, loads = 0;
	bool entry_ok = false;

	memset(img, 0, sizeof(*img));
	img->lo = UINT64_MAX;
	if (size < sizeof(*eh) || memcmp(eh->e_ident, ELFMAG, SELFMAG))
		return bad(why, "not an ELF file", -ENOEXEC);
	if (eh->e_ident[EI_CLASS] != ELFCLASS32 || eh->e_ident[EI_DATA] != ELFDATA2LSB ||
	    eh->e_ident[EI_VERSION] != EV_CURRENT)
		return bad(why, "not a little-endian ELF32 file (multiboot kernels are ELF32)",
			   -ENOEXEC);
	if (eh->e_type != ET_EXEC || eh->e_machine != EM_386 || eh->e_version != EV_CURRENT)
		return bad(why, "not an i386 executable", -ENOEXEC);
	if (eh->e_phentsize != sizeof(Elf32_Phdr) || !eh->e_phnum || eh->e_phnum > 16 ||
	    eh->e_phoff > size || (size - eh->e_phoff) / sizeof(Elf32_Phdr) < eh->e_phnum)
		return bad(why, "bad program headers", -ENOEXEC);
	for (i = 0; i < eh->e_phnum; i++) {
		const Elf32_Phdr *ph = phdr(elf, i);
		uint64_t lo = ph->p_paddr, hi = lo + ph->p_memsz;

		if (ph->p_type != PT_LOAD || !ph->p_memsz)
			continue;
		if (ph->p_filesz > ph->p_memsz || ph->p_offset > size ||
		    ph->p_filesz > size - ph->p_offset)
			return bad(why, "a segment reaches beyond the file", -ENOEXEC);
		/* Below 1 MiB is the loader's and the guest's boot tables'. */
		if (lo < GUEST_CODE_BASE || hi > mem_size)
			return bad(why, "a segment lies outside RAM above 1 MiB", -E2BIG);
		if (lo < img->lo) {
			img->lo = lo;
			img->file_end = lo + ph->p_filesz;
		}
		if (hi > img->hi)
			img->hi = hi;
		if (eh->e_entry >= lo && eh->e_entry < lo + ph->p_filesz)
			entry_ok = true;
		loads++;
	}
	if (!loads)
		return bad(why, "no loadable segment", -ENOEXEC);
	if (!entry_ok)
		return bad(why, "its entry point is in no loaded segment", -ENOEXEC);
	img->entry = eh->e_entry;
	return check_multiboot(elf, size, img, why);
}

int vmm_image_load(const void *elf, size_t size, uint8_t *mem, uint64_t mem_size,
		   struct vmm_image *img, const char **why)
{
	const Elf32_Ehdr *eh = elf;
	unsigned int i;
	int r;

	r = vmm_image_check(elf, size, mem_size, img, why);
	if (r)
		return r;
	for (i = 0; i < eh->e_phnum; i++) {
		const Elf32_Phdr *ph = phdr(elf, i);

		if (ph->p_type != PT_LOAD || !ph->p_memsz)
			continue;
		memcpy(mem + ph->p_paddr, (const uint8_t *)elf + ph->p_offset, ph->p_filesz);
		memset(mem + ph->p_paddr + ph->p_filesz, 0, ph->p_memsz - ph->p_filesz);
	}
	return 0;
}

/* QEMU's PC layout, as SeaBIOS reports it: the guest sees the same map either way. */
static uint32_t build_mmap(struct mb_mmap *m, uint64_t mem_size)
{
	const struct mb_mmap map[] = {
		{ 20, 0, 0x9fc00, 1 },
		{ 20, 0x9fc00, 0x400, 2 },
		{ 20, 0xf0000, 0x10000, 2 },
		{ 20, 0x100000, mem_size - 0x100000, 1 },
	};

	memcpy(m, map, sizeof(map));
	return sizeof(map);
}

/* Flat 32-bit protected mode, no paging, interrupts off: the multiboot machine state. */
static int bsp_protected_mode(struct vcpu *v, uint32_t entry)
{
	struct kvm_segment code = {
		.base = 0, .limit = 0xffffffff, .selector = 0x08, .type = 0xb, .present = 1,
		.s = 1, .db = 1, .g = 1,
	};
	struct kvm_segment data = code;
	struct kvm_sregs sregs;
	struct kvm_regs regs;

	if (ioctl_retry(v->fd, KVM_GET_SREGS, &sregs) < 0)
		return -errno;
	data.selector = 0x10;
	data.type = 0x3;
	sregs.cs = code;
	sregs.ds = sregs.es = sregs.fs = sregs.gs = sregs.ss = data;
	sregs.cr0 = CR0_PE | CR0_ET;
	sregs.cr3 = 0;
	sregs.cr4 = 0;
	sregs.efer = 0;
	/* The kernel must load its own: no GDT, the real-mode IVT. */
	sregs.gdt.base = 0;
	sregs.gdt.limit = 0;
	sregs.idt.base = 0;
	sregs.idt.limit = 0x3ff;
	if (ioctl_retry(v->fd, KVM_SET_SREGS, &sregs) < 0)
		return -errno;
	memset(&regs, 0, sizeof(regs));
	regs.rip = entry;
	regs.rax = MB_LOADER_MAGIC;
	regs.rbx = MBI_GPA;
	regs.rflags = 0x2;
	if (ioctl_retry(v->fd, KVM_SET_REGS, &regs) < 0)
		return -errno;
	return 0;
}

int vmm_multiboot_info(uint8_t *mem, uint64_t mem_size, const char *cmdline)
{
	struct mb_info *mbi = (struct mb_info *)(mem + MBI_GPA);
	size_t len = strlen(cmdline);

	if (len >= GUEST_LOADER_END - MBI_CMDLINE_GPA)
		return -E2BIG;
	memset(mbi, 0, sizeof(*mbi));
	mbi->flags = MBI_F_MEM | MBI_F_CMDLINE | MBI_F_MMAP | MBI_F_LOADER_NAME;
	/* KiB below 640 KiB and from 1 MiB; the map has RAM beyond 4 GiB. */
	mbi->mem_lower = 640;
	mbi->mem_upper = (uint32_t)((mem_size > (4ULL << 30) ? 4ULL << 30 : mem_size) / 1024 - 1024);
	mbi->mmap_addr = MBI_MMAP_GPA;
	mbi->mmap_length = build_mmap((struct mb_mmap *)(mem + MBI_MMAP_GPA), mem_size);
	memcpy(mem + MBI_NAME_GPA, "vmdirty", sizeof("vmdirty"));
	mbi->boot_loader_name = MBI_NAME_GPA;
	memcpy(mem + MBI_CMDLINE_GPA, cmdline, len + 1);
	mbi->cmdline = MBI_CMDLINE_GPA;
	return MBI_GPA;
}

int vm_boot_multiboot(struct vm *vm, const void *elf, size_t size, const char *cmdline,
		      const char **why)
{
	struct vmm_image img;
	unsigned int i;
	int r;

	if (strlen(cmdline) >= GUEST_LOADER_END - MBI_CMDLINE_GPA)
		return bad(why, "command line too long", -E2BIG);
	/* A fresh start for everything below the work area, as in a direct boot. */
	memset(vm->mem, 0, GUEST_WORK_BASE);
	r = vmm_image_load(elf, size, vm->mem, vm->mem_size, &img, why);
	if (r)
		return r;
	if (img.lo < GUEST_CODE_BASE || img.hi > GUEST_WORK_BASE)
		return bad(why, "the image does not fit below the work area", -E2BIG);
	vmm_multiboot_info(vm->mem, vm->mem_size, cmdline);

	/* Only the BSP runs; with the in-kernel LAPIC, KVM keeps the APs waiting for SIPI. */
	r = bsp_protected_mode(vm->vcpus[0], img.entry);
	if (r)
		return bad(why, "cannot set up the boot vCPU", r);
	for (i = 0; i < vm->nr_vcpus; i++)
		vm->vcpus[i]->posted_seq = 0;
	return 0;
}
