// SPDX-License-Identifier: GPL-2.0
/*
 * LSM policy on the VM file applies to the resets vmdirty.ko asks KVM for:
 * a BPF LSM program on the file_ioctl hook that refuses KVM_RESET_DIRTY_RINGS
 * (assembled here, attached to bpf_lsm_file_ioctl found in the kernel's
 * BTF) makes HARVEST fail with EPERM, from the VM's process and from
 * another one, with nothing swapped and nothing lost: once the program is
 * gone, the next harvest has the pages.  Before: the module called the VM
 * file's unlocked_ioctl directly, past security_file_ioctl().
 */
#include <fcntl.h>
#include <linux/bpf.h>
#include <linux/btf.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "ksft_compat.h"
#include "vmdirty_guest.h"

#define MEM_SIZE	(16ULL << 20)
#define WORK_PFN	(GUEST_WORK_BASE / GUEST_PAGE_SIZE)

static int sys_bpf(int cmd, union bpf_attr *attr)
{
	return syscall(__NR_bpf, cmd, attr, sizeof(*attr));
}

/* Is the BPF LSM among the active ones? */
static bool bpf_lsm_active(void)
{
	char buf[256] = "";
	int fd = open("/sys/kernel/security/lsm", O_RDONLY | O_CLOEXEC);

	if (fd < 0) {
		mount("securityfs", "/sys/kernel/security", "securityfs", 0, NULL);
		fd = open("/sys/kernel/security/lsm", O_RDONLY | O_CLOEXEC);
	}
	if (fd < 0)
		return false;
	if (read(fd, buf, sizeof(buf) - 1) < 0)
		buf[0] = 0;
	close(fd);
	return strstr(buf, "bpf") != NULL;
}

/* Bytes of the type data that follows a struct btf_type of @kind. */
static size_t btf_extra(uint32_t kind, uint32_t vlen)
{
	switch (kind) {
	case BTF_KIND_INT:		return sizeof(uint32_t);
	case BTF_KIND_ARRAY:		return sizeof(struct btf_array);
	case BTF_KIND_STRUCT:
	case BTF_KIND_UNION:		return vlen * sizeof(struct btf_member);
	case BTF_KIND_ENUM:		return vlen * sizeof(struct btf_enum);
	case BTF_KIND_FUNC_PROTO:	return vlen * sizeof(struct btf_param);
	case BTF_KIND_VAR:		return sizeof(struct btf_var);
	case BTF_KIND_DATASEC:		return vlen * sizeof(struct btf_var_secinfo);
	case BTF_KIND_DECL_TAG:		return sizeof(struct btf_decl_tag);
	case BTF_KIND_ENUM64:		return vlen * sizeof(struct btf_enum64);
	default:			return 0;
	}
}

/* The vmlinux BTF id of function @name, or -errno. */
static int vmlinux_func_id(const char *name)
{
	static char buf[32 << 20];
	const struct btf_header *h = (void *)buf;
	const char *types, *end, *strs;
	ssize_t len, got;
	int fd, id;

	fd = open("/sys/kernel/btf/vmlinux", O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	/* A sysfs binary file: it comes a page or so per read. */
	for (len = 0; len < (ssize_t)sizeof(buf); len += got) {
		got = read(fd, buf + len, sizeof(buf) - len);
		if (got <= 0)
			break;
	}
	close(fd);
	if (len < (ssize_t)sizeof(*h) || h->magic != BTF_MAGIC)
		return -EPROTO;
	types = buf + h->hdr_len + h->type_off;
	end = types + h->type_len;
	strs = buf + h->hdr_len + h->str_off;
	for (id = 1; types < end; id++) {
		const struct btf_type *t = (const void *)types;
		uint32_t kind = BTF_INFO_KIND(t->info);

		if (kind == BTF_KIND_FUNC && !strcmp(strs + t->name_off, name))
			return id;
		types += sizeof(*t) + btf_extra(kind, BTF_INFO_VLEN(t->info));
	}
	return -ENOENT;
}

/*
 * int file_ioctl(struct file *file, unsigned int cmd, unsigned long arg):
 * r0 = cmd == KVM_RESET_DIRTY_RINGS ? -EPERM : 0.  Returns the link fd
 * (the program stays attached while it is open), or -errno.
 */
static int deny_reset(char *log, size_t loglen)
{
	struct bpf_insn insns[] = {
		{ .code = BPF_LDX | BPF_MEM | BPF_DW, .dst_reg = BPF_REG_2,
		  .src_reg = BPF_REG_1, .off = 8 },
		{ .code = BPF_ALU64 | BPF_MOV | BPF_K, .dst_reg = BPF_REG_0, .imm = 0 },
		{ .code = BPF_JMP | BPF_JNE | BPF_K, .dst_reg = BPF_REG_2, .off = 1,
		  .imm = KVM_RESET_DIRTY_RINGS },
		{ .code = BPF_ALU64 | BPF_MOV | BPF_K, .dst_reg = BPF_REG_0, .imm = -EPERM },
		{ .code = BPF_JMP | BPF_EXIT },
	};
	union bpf_attr attr;
	int id, prog, link;

	id = vmlinux_func_id("bpf_lsm_file_ioctl");
	if (id < 0)
		return id;
	memset(&attr, 0, sizeof(attr));
	attr.prog_type = BPF_PROG_TYPE_LSM;
	attr.expected_attach_type = BPF_LSM_MAC;
	attr.insns = (uintptr_t)insns;
	attr.insn_cnt = sizeof(insns) / sizeof(insns[0]);
	attr.license = (uintptr_t)"GPL";
	attr.attach_btf_id = id;
	attr.log_buf = (uintptr_t)log;
	attr.log_size = loglen;
	attr.log_level = 1;
	prog = sys_bpf(BPF_PROG_LOAD, &attr);
	if (prog < 0)
		return -errno;
	memset(&attr, 0, sizeof(attr));
	attr.raw_tracepoint.prog_fd = prog;
	link = sys_bpf(BPF_RAW_TRACEPOINT_OPEN, &attr);
	if (link < 0)
		link = -errno;
	close(prog);
	return link;
}

TEST(reset_goes_through_lsm)
{
	struct vm_config cfg = {
		.nr_vcpus = 1, .mem_size = MEM_SIZE, .ring_entries = 4096, .log_dirty = true,
	};
	uint64_t gpas[32], harvests;
	struct vmdirty_shm_header *hdr;
	struct vmdirty_attach a;
	struct vmdirty_harvest h;
	struct gfn_set bits;
	char log[4096] = "";
	int fd, link, status, k;
	struct vm *vm;
	pid_t pid;

	fd = vmdirty_open();
	if (fd == -ENOENT)
		SKIP(return, "vmdirty.ko is not loaded");
	ASSERT_LE(0, fd);
	if (access("/dev/kvm", R_OK | W_OK) ||
	    vm_check_cap(NULL, KVM_CAP_DIRTY_LOG_RING_ACQ_REL) <= 0)
		SKIP(return, "no /dev/kvm with KVM_CAP_DIRTY_LOG_RING_ACQ_REL");
	if (!bpf_lsm_active())
		SKIP(return, "the BPF LSM is not active");
	ASSERT_EQ(0, vm_create(&cfg, &vm));
	ASSERT_EQ(0, vm_load_guest(vm));
	ASSERT_EQ(0, vmdirty_attach(fd, vm->fd, &a));
	hdr = vmdirty_map(fd, a.region_size);
	ASSERT_NE(NULL, hdr);
	ASSERT_EQ(0, vmdirty_harvest(fd, 0, &h));
	ASSERT_EQ(0, gfn_set_init(&bits, MEM_SIZE / GUEST_PAGE_SIZE));
	for (k = 0; k < 32; k++)
		gpas[k] = GUEST_WORK_BASE + (100 + 3 * k) * GUEST_PAGE_SIZE;
	ASSERT_EQ(0, vcpu_post_list(vm->vcpus[0], gpas, 32));
	ASSERT_EQ(0, vcpu_run_cmd(vm->vcpus[0], NULL, NULL));

	link = deny_reset(log, sizeof(log));
	ASSERT_LE(0, link) TH_LOG("attaching the BPF LSM program: %s\n%s", strerror(-link), log);
	/* The policy holds for the VMM itself... */
	EXPECT_EQ(-EPERM, vm_reset_dirty_rings(vm));
	/* ... and for the module's resets, from the VM's process and another one. */
	harvests = hdr->harvests;
	EXPECT_EQ(-EPERM, vmdirty_harvest(fd, 0, &h));
	pid = fork();
	ASSERT_LE(0, pid);
	if (!pid)
		_exit(-vmdirty_harvest(fd, 0, NULL));
	ASSERT_EQ(pid, waitpid(pid, &status, 0));
	ASSERT_TRUE(WIFEXITED(status));
	EXPECT_EQ(EPERM, WEXITSTATUS(status)) TH_LOG("from another process: %s",
						     strerror(WEXITSTATUS(status)));
	EXPECT_EQ(harvests, hdr->harvests) TH_LOG("a harvest without its reset swapped");
	close(link);

	/* Nothing lost: the refused harvests' pages come with the next one. */
	ASSERT_EQ(0, vmdirty_harvest(fd, 0, &h));
	EXPECT_LE(32, h.reset);
	shm_to_gfn_set(hdr, h.snapshot, &bits);
	for (k = 0; k < 32; k++)
		EXPECT_TRUE(bits.in[gpas[k] / GUEST_PAGE_SIZE]);
	gfn_set_free(&bits);
	munmap(hdr, a.region_size);
	close(fd);
	vm_destroy(vm);
}

TEST_HARNESS_MAIN
