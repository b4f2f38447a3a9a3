// SPDX-License-Identifier: GPL-2.0
/*
 * vCPUs: creation (kvm_run and dirty-ring mappings), posting commands into
 * the mailbox, KVM_RUN and its exits, and the userspace dirty-ring reaper.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

#include "vmm/vmm.h"
#include "vmm/vmm_int.h"

int vcpu_create(struct vm *vm, unsigned int idx, struct vcpu **out)
{
	long page = sysconf(_SC_PAGESIZE);
	struct vcpu *v;
	int r;

	v = calloc(1, sizeof(*v));
	if (!v)
		return -ENOMEM;
	v->vm = vm;
	v->idx = idx;
	v->mb = &vm->mb->vcpu[idx];
	v->run = MAP_FAILED;
	v->fd = ioctl_retry(vm->fd, KVM_CREATE_VCPU, (void *)(unsigned long)idx);
	if (v->fd < 0) {
		r = -errno;
		goto err;
	}
	r = ioctl_retry(vm->kvm_fd, KVM_GET_VCPU_MMAP_SIZE, 0);
	if (r < (int)sizeof(struct kvm_run)) {
		r = r < 0 ? -errno : -EINVAL;
		goto err;
	}
	v->run_size = r;
	v->run = mmap(NULL, v->run_size, PROT_READ | PROT_WRITE, MAP_SHARED, v->fd, 0);
	if (v->run == MAP_FAILED) {
		r = -errno;
		goto err;
	}
	if (vm->ring_entries) {
		v->ring = mmap(NULL, (size_t)vm->ring_entries * sizeof(struct kvm_dirty_gfn),
			       PROT_READ | PROT_WRITE, MAP_SHARED, v->fd,
			       KVM_DIRTY_LOG_PAGE_OFFSET * page);
		if (v->ring == MAP_FAILED) {
			v->ring = NULL;
			r = -errno;
			goto err;
		}
		v->ring_entries = vm->ring_entries;
	}
	r = cpu_init_vcpu(v);
	if (r)
		goto err;
	*out = v;
	return 0;
err:
	vcpu_destroy(v);
	return r;
}

void vcpu_destroy(struct vcpu *v)
{
	if (!v)
		return;
	if (v->ring)
		munmap(v->ring, (size_t)v->ring_entries * sizeof(struct kvm_dirty_gfn));
	if (v->run != MAP_FAILED)
		munmap(v->run, v->run_size);
	if (v->fd >= 0)
		close(v->fd);
	free(v);
}

int vcpu_post(struct vcpu *v, uint32_t cmd, const uint64_t args[GUEST_CMD_ARGS])
{
	struct guest_vcpu_mailbox *m = v->mb;
	uint64_t seq;

	if (cmd == GUEST_CMD_NONE || cmd > GUEST_CMD_MAX)
		return -EINVAL;
	if (m->cmd_seq != m->done_seq)
		return -EBUSY;	/* the last command has not finished */
	m->cmd = cmd;
	memcpy(m->args, args, sizeof(m->args));
	m->stop = 0;
	seq = m->cmd_seq + 1;
	/* Publish the arguments before the sequence number the guest polls. */
	__atomic_store_n(&m->cmd_seq, seq, __ATOMIC_RELEASE);
	v->posted_seq = seq;
	return 0;
}

int vcpu_nudge(struct vcpu *v)
{
	/* Fixed delivery, physical destination: the vCPU's APIC id is its index. */
	struct kvm_msi msi = {
		.address_lo = 0xfee00000u | (v->idx << 12),
		.data = GUEST_TIMER_VECTOR,
	};

	return ioctl(v->vm->fd, KVM_SIGNAL_MSI, &msi) < 0 ? -errno : 0;
}

void *vcpu_scratch(struct vcpu *v, uint64_t *gpa)
{
	uint64_t g = GUEST_SCRATCH_BASE + (uint64_t)v->idx * GUEST_SCRATCH_SIZE;

	if (gpa)
		*gpa = g;
	return v->vm->mem + g;
}

int vcpu_run(struct vcpu *v)
{
	int r = ioctl(v->fd, KVM_RUN, 0) < 0 ? -errno : 0;

	/*
	 * -EINTR comes after KVM finished a pending exit's I/O (6.1
	 * kvm_arch_vcpu_ioctl_run(): complete_userspace_io before the
	 * immediate_exit and signal checks), or from a vCPU waiting for SIPI,
	 * which has none.
	 */
	if (!r)
		v->exit_pending = true;
	else if (r == -EINTR)
		v->exit_pending = false;
	return r;
}

const char *vcpu_exit_name(uint32_t reason)
{
	static const char *const names[] = {
		[KVM_EXIT_UNKNOWN] = "UNKNOWN",
		[KVM_EXIT_EXCEPTION] = "EXCEPTION",
		[KVM_EXIT_IO] = "IO",
		[KVM_EXIT_HYPERCALL] = "HYPERCALL",
		[KVM_EXIT_DEBUG] = "DEBUG",
		[KVM_EXIT_HLT] = "HLT",
		[KVM_EXIT_MMIO] = "MMIO",
		[KVM_EXIT_IRQ_WINDOW_OPEN] = "IRQ_WINDOW_OPEN",
		[KVM_EXIT_SHUTDOWN] = "SHUTDOWN",
		[KVM_EXIT_FAIL_ENTRY] = "FAIL_ENTRY",
		[KVM_EXIT_INTR] = "INTR",
		[KVM_EXIT_SET_TPR] = "SET_TPR",
		[KVM_EXIT_TPR_ACCESS] = "TPR_ACCESS",
		[KVM_EXIT_NMI] = "NMI",
		[KVM_EXIT_INTERNAL_ERROR] = "INTERNAL_ERROR",
		[KVM_EXIT_SYSTEM_EVENT] = "SYSTEM_EVENT",
		[KVM_EXIT_X86_RDMSR] = "X86_RDMSR",
		[KVM_EXIT_X86_WRMSR] = "X86_WRMSR",
		[KVM_EXIT_DIRTY_RING_FULL] = "DIRTY_RING_FULL",
	};

	if (reason < sizeof(names) / sizeof(names[0]) && names[reason])
		return names[reason];
	return "?";
}

static void report_exit(struct vcpu *v, const char *what)
{
	struct kvm_regs regs;
	struct kvm_run *run = v->run;

	if (ioctl(v->fd, KVM_GET_REGS, &regs) == 0)
		v->last_exit_rip = regs.rip;
	fprintf(stderr, "vmm: vcpu %u: %s: exit %u (%s) at rip %#llx", v->idx, what,
		run->exit_reason, vcpu_exit_name(run->exit_reason),
		(unsigned long long)v->last_exit_rip);
	if (run->exit_reason == KVM_EXIT_IO)
		fprintf(stderr, ", port %#x size %u dir %u", run->io.port, run->io.size,
			run->io.direction);
	else if (run->exit_reason == KVM_EXIT_INTERNAL_ERROR)
		fprintf(stderr, ", suberror %u", run->internal.suberror);
	else if (run->exit_reason == KVM_EXIT_FAIL_ENTRY)
		fprintf(stderr, ", hw reason %#llx",
			(unsigned long long)run->fail_entry.hardware_entry_failure_reason);
	fputc('\n', stderr);
}

int vcpu_io_value(const struct vcpu *v, uint32_t *value)
{
	const struct kvm_run *run = v->run;

	if (run->io.direction != KVM_EXIT_IO_OUT || run->io.size != 4 || run->io.count != 1)
		return -EIO;
	memcpy(value, (const uint8_t *)run + run->io.data_offset, sizeof(*value));
	return 0;
}

/*
 * Debug-console bytes as they come (KVM passes rep outsb on one byte at a
 * time), unbuffered: a reader sees each tick when the guest writes it.  A
 * reader gone or slow is the reader's loss; the guest goes on.  A tick
 * outside a line is the guest's progress report (guest_abi.h): true.
 */
static bool debugcon_out(struct vcpu *v)
{
	const struct kvm_run *run = v->run;
	const uint8_t *p = (const uint8_t *)run + run->io.data_offset;
	size_t n = (size_t)run->io.count * run->io.size, i;
	int fd = __atomic_load_n(&v->vm->debugcon_fd, __ATOMIC_RELAXED);
	bool tick = false;

	for (i = 0; i < n; i++) {
		if (v->debugcon_line)
			v->debugcon_line = p[i] != '\n';
		else if (p[i] >= 'A' && p[i] <= 'Z')
			v->debugcon_line = true;
		else if (guest_debugcon_tick_vcpu((char)p[i]) == (int)v->idx)
			tick = true;
	}
	__atomic_fetch_add(&v->vm->debugcon_bytes, n, __ATOMIC_RELAXED);
	while (fd >= 0 && n) {
		ssize_t w = write(fd, p, n);

		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0) {
			__atomic_fetch_add(&v->vm->debugcon_errors, 1, __ATOMIC_RELAXED);
			break;
		}
		p += w;
		n -= (size_t)w;
	}
	return tick;
}

/* GUEST_ERR_BOOT: the reason, NUL-terminated within its field or cut there. */
static void report_boot_error(struct vcpu *v)
{
	const char *e = v->vm->mb->boot_error;

	fprintf(stderr, "vmm: vcpu %u: the guest did not boot: %.*s\n", v->idx,
		(int)strnlen(e, sizeof(v->vm->mb->boot_error)), e);
}

int vcpu_handle_exit(struct vcpu *v, int (*ring_full)(struct vcpu *v, void *ctx), void *ctx)
{
	struct kvm_run *run = v->run;
	struct guest_vcpu_mailbox *m = v->mb;
	uint32_t value;
	int r;

	switch (run->exit_reason) {
	case KVM_EXIT_IO:
		if (run->io.port == GUEST_PORT_DEBUGCON) {
			if (run->io.direction != KVM_EXIT_IO_OUT || run->io.size != 1)
				break;
			return debugcon_out(v) ? VCPU_EXIT_PROGRESS : VCPU_EXIT_DEBUGCON;
		}
		if (vcpu_io_value(v, &value))
			break;
		switch (run->io.port) {
		case GUEST_PORT_DONE:
			return VCPU_EXIT_DONE;
		case GUEST_PORT_PROGRESS:
			return VCPU_EXIT_PROGRESS;
		case GUEST_PORT_IDLE:
			return -ENOMSG;
		case GUEST_PORT_ERROR:
			if (value == GUEST_ERR_BOOT) {
				report_boot_error(v);
				return -ENOEXEC;
			}
			if (value != GUEST_ERR_EXCEPTION)
				return VCPU_EXIT_ERROR;
			fprintf(stderr,
				"vmm: vcpu %u: guest exception %llu error code %#llx at rip %#llx cr2 %#llx\n",
				v->idx, (unsigned long long)m->err_info[0],
				(unsigned long long)m->err_info[1],
				(unsigned long long)m->err_info[2],
				(unsigned long long)m->err_info[3]);
			v->last_exit_rip = m->err_info[2];
			return -EFAULT;
		}
		break;
	case KVM_EXIT_DIRTY_RING_FULL:
		if (!ring_full)
			return -ENOSPC;
		r = ring_full(v, ctx);
		return r < 0 ? r : VCPU_EXIT_RING_FULL;
	case KVM_EXIT_INTR:
		return -EINTR;
	}
	report_exit(v, "unexpected exit");
	return -EIO;
}

int vcpu_run_cmd(struct vcpu *v, int (*ring_full)(struct vcpu *v, void *ctx), void *ctx)
{
	struct guest_vcpu_mailbox *m = v->mb;
	int r;

	if (m->cmd_seq == m->done_seq)
		return -ENOMSG;
	for (;;) {
		r = vcpu_run(v);
		/* An AP that left wait-for-SIPI (multiboot boot): run it again. */
		if (r == -EAGAIN)
			continue;
		if (r)
			return r;
		r = vcpu_handle_exit(v, ring_full, ctx);
		if (r < 0)
			return r;
		if (r != VCPU_EXIT_DONE)
			continue;
		if (m->done_seq != m->cmd_seq) {
			report_exit(v, "DONE without finishing the command");
			return -EIO;
		}
		if (m->status < 0)
			return m->status < -4095 ? -EIO : (int)m->status;
		return m->status > 0x7fffffff ? 0x7fffffff : (int)m->status;
	}
}

int vcpu_ring_reap(struct vcpu *v, uint32_t *fetch, bool collect,
		   void (*fn)(void *ctx, uint32_t slot, uint64_t offset), void *ctx)
{
	uint32_t mask = v->ring_entries - 1, n;

	if (!v->ring)
		return -ENODEV;
	/* KVM cannot have more than ring_entries entries outstanding. */
	for (n = 0; n < v->ring_entries; n++) {
		struct kvm_dirty_gfn *e = &v->ring[*fetch & mask];
		uint32_t slot;
		uint64_t offset;

		/*
		 * Acquire pairs with the smp_wmb() in kvm_dirty_ring_push()
		 * between writing slot/offset and setting DIRTY: once we see
		 * DIRTY, slot and offset are this entry's.  01 is dirty; 00 is not yet written;
		 * 1X was harvested before and waits for KVM's reset.
		 */
		if ((__atomic_load_n(&e->flags, __ATOMIC_ACQUIRE) & KVM_DIRTY_GFN_F_MASK) !=
		    KVM_DIRTY_GFN_F_DIRTY)
			break;
		slot = e->slot;
		offset = e->offset;
		if (fn)
			fn(ctx, slot, offset);
		/*
		 * Release pairs with the smp_load_acquire() in
		 * kvm_dirty_gfn_harvested() (KVM_RESET_DIRTY_RINGS): our reads
		 * of slot/offset are done before KVM may reuse the entry.
		 */
		if (collect)
			__atomic_store_n(&e->flags, KVM_DIRTY_GFN_F_RESET, __ATOMIC_RELEASE);
		(*fetch)++;
	}
	return (int)n;
}
