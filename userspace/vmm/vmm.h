/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The VMM library: real KVM guests for the migration agent and the tests.
 *
 *   vm.c       VM, guest RAM (anonymous with THP, or a memfd), memslots, irqchip, dirty ring setup
 *   vcpu.c     vCPUs, KVM_RUN, commands, the userspace dirty-ring reaper
 *   cpu.c      CPUID, long mode (GDT, IDT, page tables, sregs, XCR0), direct boot
 *   image.c    the guest image (ELF32, multiboot v1): check, load, multiboot boot
 *   runner.c   one thread per vCPU: pause/resume, throttle, hooks, stats
 *   state.c    vCPU and VM state save/restore (migration)
 *   payload.S  the guest image (vmm/guest/, the file QEMU boots), embedded
 *   guest_cmdline.c  the guest's command-line parser (also in the guest)
 *
 * All int-returning functions return 0 (or a count/status >= 0) on success
 * and -errno on failure.  Guest layout and commands: guest_abi.h.
 *
 * Threads: a vCPU is driven by one thread at a time (KVM_RUN, post, state);
 * vcpu_ring_reap may run on any thread as long as one thread reaps a ring;
 * vm_reset_dirty_rings must be called by a thread of the process that
 * created the VM (KVM checks the mm).
 *
 * Deviations from /work/brief/VMM-API.md (additions unless said):
 * - progress hook: an extra now_ns argument (host CLOCK_MONOTONIC of the exit).
 * - vcpu_state.idx and vm_state.nr_vcpus/mem_size, so a restore into the
 *   wrong vCPU or a VM of another shape is refused.
 * - struct vm: manual_protect holds the KVM_DIRTY_LOG_* flags enabled
 *   (INITIALLY_SET when KVM offers it), ring_acq_rel says which ring cap.
 * - vm_runner_free(); vm_runner_stop() on a paused runner does not run the
 *   guest again.  vm_runner_stats() has per-vCPU stats (first/last report).
 * - vcpu_scratch(v, &gpa); vm_slot_gfn(), vm_mem_hash(), vm_copy_memory(),
 *   vm_check_cap(), vcpu_exit_name(), vmm_now_ns().
 * - GUEST_PORT_IDLE: a vCPU run with no command posted reports it
 *   (vcpu_run_cmd returns -ENOMSG).
 * - Two boots of one image: vm_load_guest() (direct) and vm_boot_multiboot().
 * - GUEST_PORT_DEBUGCON bytes go to vm_set_debugcon()'s fd as they come.
 */
#ifndef VMDIRTY_VMM_H
#define VMDIRTY_VMM_H

#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <linux/kvm.h>

#include "vmm/guest_abi.h"

#define VM_MAX_SLOTS	64
#define VM_MAX_VCPUS	GUEST_MAX_VCPUS
#define VM_MIN_MEM	(GUEST_WORK_BASE + GUEST_LARGE_PAGE_SIZE)
#define VM_MAX_MEM	GUEST_MAX_MEM

struct vm_config {
	unsigned int nr_vcpus;	/* 1..VM_MAX_VCPUS */
	uint64_t mem_size;	/* multiple of 2 MiB, VM_MIN_MEM..VM_MAX_MEM */
	uint64_t slot_size;	/* 0: one slot; else a multiple of 4 KiB, the last slot takes the rest */
	uint32_t ring_entries;	/* 0: no dirty ring; else a power of 2 >= 256 */
	bool manual_protect;	/* KVM_CAP_MANUAL_DIRTY_LOG_PROTECT2, bitmap mode */
	bool log_dirty;		/* create slots with KVM_MEM_LOG_DIRTY_PAGES */
	bool ram_memfd;		/* guest RAM in a memfd (shareable) instead of anonymous THP memory */
	bool ram_incoming;	/* anonymous RAM a migration fills: small pages until vm_ram_hugepages() */
};

struct vm_slot {
	uint32_t id;		/* KVM slot id (as_id 0) */
	uint64_t gpa, size;
	uint8_t *hva;
	uint32_t flags;		/* KVM_MEM_* as last set */
};

struct vcpu {
	struct vm *vm;
	unsigned int idx;	/* == KVM vcpu id == APIC id */
	int fd;
	struct kvm_run *run;
	struct kvm_dirty_gfn *ring;	/* NULL without the dirty ring */
	uint32_t ring_entries;
	struct guest_vcpu_mailbox *mb;	/* this vCPU's mailbox slot (host pointer) */
	uint64_t posted_seq;	/* cmd_seq of the last vcpu_post */
	uint64_t last_exit_rip;	/* RIP at the last unexpected exit, for reports */
	bool debugcon_line;	/* inside a line on the debug console (not ticks) */
	/*
	 * KVM_RUN's last return was an exit: KVM finishes its I/O (advances
	 * RIP) only on the next KVM_RUN (vcpu_complete_io()).  Written by the
	 * thread that runs the vCPU, read by a saver once it is paused.
	 */
	bool exit_pending;
	size_t run_size;
};

struct vm {
	int kvm_fd, fd, mem_fd;	/* mem_fd: -1 for anonymous RAM */
	uint8_t *mem;		/* gpa == offset */
	uint64_t mem_size;
	unsigned int nr_slots;
	struct vm_slot slots[VM_MAX_SLOTS];
	unsigned int nr_vcpus;
	struct vcpu *vcpus[VM_MAX_VCPUS];
	uint32_t ring_entries;	/* 0: no ring */
	bool ring_acq_rel;	/* KVM_CAP_DIRTY_LOG_RING_ACQ_REL (else plain DIRTY_LOG_RING) */
	uint64_t manual_protect;	/* KVM_DIRTY_LOG_* flags enabled, 0 if off */
	uint64_t tsc_khz;	/* KVM_GET_TSC_KHZ of vCPU 0, 0 if unknown */
	struct guest_mailbox *mb;	/* host pointer into guest RAM */
	int debugcon_fd;	/* GUEST_PORT_DEBUGCON bytes go here; -1: dropped */
	uint64_t debugcon_bytes, debugcon_errors;
	struct vm_config cfg;
	/* CPU setup, cpu.c */
	struct kvm_cpuid2 *cpuid;	/* what every vCPU got (KVM_GET_SUPPORTED_CPUID, fixed up) */
	uint32_t features;	/* GUEST_F_* the guest may use */
	uint64_t xcr0;		/* XCR0 loaded at guest entry */
	uint32_t xsave_size;	/* KVM_CAP_XSAVE2, or sizeof(struct kvm_xsave) */
	bool xsave2;		/* KVM_GET_XSAVE2 is there */
	/* state.c: the MSRs saved and restored, probed at vm_create */
	uint32_t nr_msrs;
	uint32_t msr_index[64];
};

/* VM lifetime (vm.c). */
int vm_create(const struct vm_config *cfg, struct vm **out);
void vm_destroy(struct vm *vm);
int vm_set_dirty_logging(struct vm *vm, bool enable);
uint64_t vm_work_pages(const struct vm *vm);
/* gfn of ring entry (slot, offset), or -EINVAL if it names no page of ours. */
int64_t vm_slot_gfn(const struct vm *vm, uint32_t slot, uint64_t offset);
/* xxh3-64 of guest RAM [gpa, gpa + len). */
uint64_t vm_mem_hash(const struct vm *vm, uint64_t gpa, uint64_t len);
/*
 * Which guest pages may hold data: bit g of bits (mem_size / 4 KiB bits,
 * zeroed by the caller) set for every page with backing memory (memfd:
 * SEEK_DATA; anonymous: present or swapped in /proc/self/pagemap, whole
 * huge pages included).  A page without backing has never been written and
 * reads as zero: round 0 of a migration and the destination's apply skip
 * such pages.  Returns the pages set.
 */
int64_t vm_mem_populated(const struct vm *vm, uint64_t *bits);
int vm_reset_dirty_rings(struct vm *vm);	/* KVM_RESET_DIRTY_RINGS, returns the count */
/* Anonymous RAM: huge pages for what the guest touches from now on (no-op for a memfd). */
int vm_ram_hugepages(struct vm *vm);
/* KVM_CHECK_EXTENSION on the VM (or /dev/kvm when vm is NULL): value or -errno. */
int vm_check_cap(const struct vm *vm, long cap);

/*
 * The guest image (vmm/guest/): one ELF32 file, a multiboot v1 kernel whose
 * single segment starts with the payload header at GUEST_CODE_BASE for the
 * direct boot.  The agent embeds the very file make builds and prints
 * (build/vmdirty-guest.elf), which qemu -kernel boots too.
 */
extern const uint8_t vmm_guest_image_start[], vmm_guest_image_end[];

struct vmm_image {
	uint32_t entry;		/* the ELF entry: the 32-bit multiboot entry */
	uint32_t mb_flags;	/* the multiboot header's flags */
	uint64_t lo, hi;	/* gpa range its segments occupy, bss included */
	uint64_t file_end;	/* end of the file bytes of the lowest segment */
};

/*
 * Checks an image for a guest of mem_size bytes, as a multiboot loader
 * would: a little-endian ELF32 i386 executable, PT_LOAD segments inside the
 * file and inside RAM from 1 MiB, the entry in one of them, and a valid
 * multiboot header in the first 8 KiB whose required flags it can honour.
 * 0, or -ENOEXEC/-E2BIG with *why (if not NULL) saying what is wrong.
 */
int vmm_image_check(const void *elf, size_t size, uint64_t mem_size, struct vmm_image *img,
		    const char **why);
/* vmm_image_check, then the segments into mem (gpa == offset), bss zeroed. */
int vmm_image_load(const void *elf, size_t size, uint8_t *mem, uint64_t mem_size,
		   struct vmm_image *img, const char **why);

/*
 * Direct boot of the built-in image (cpu.c): payload, GDT/IDT, page tables,
 * mailbox; every vCPU in long mode at the payload's entry, waiting for
 * commands.
 */
int vm_load_guest(struct vm *vm);
/*
 * Multiboot boot (image.c), as qemu -kernel does it: the image, a multiboot
 * information block (memory map, cmdline, loader name) at GUEST_LOADER_GPA,
 * the BSP in flat 32-bit protected mode at the ELF entry with eax =
 * 0x2badb002 and ebx = the block.  The APs stay in KVM's wait-for-SIPI
 * state: the guest starts them, fills the mailbox and posts its own
 * workload from cmdline (guest_cmdline.h).  0 or -errno with *why.
 */
int vm_boot_multiboot(struct vm *vm, const void *elf, size_t size, const char *cmdline,
		      const char **why);
/*
 * The multiboot information vm_boot_multiboot() writes into guest RAM mem
 * (gpa == offset, at least GUEST_WORK_BASE bytes): its gpa, or -E2BIG.
 */
int vmm_multiboot_info(uint8_t *mem, uint64_t mem_size, const char *cmdline);
/* Where GUEST_PORT_DEBUGCON bytes go from now on (-1: nowhere); not closed by the VM. */
void vm_set_debugcon(struct vm *vm, int fd);
/* Guest RAM to fd from offset 0, raw (gpa == offset), like QEMU's pmemsave. */
int vm_dump_memory(const struct vm *vm, int fd);

/* vCPUs (vcpu.c). */
int vcpu_post(struct vcpu *v, uint32_t cmd, const uint64_t args[GUEST_CMD_ARGS]);
/*
 * Wake the guest from a sleep (the timer's vector through KVM_SIGNAL_MSI):
 * it sees a stop request now rather than at its next deadline.  Harmless
 * when it is not asleep: the guest's sleep loop only checks the time again.
 */
int vcpu_nudge(struct vcpu *v);
/* Host pointer (and gpa) of v's scratch area, GUEST_SCRATCH_SIZE bytes. */
void *vcpu_scratch(struct vcpu *v, uint64_t *gpa);
int vcpu_run(struct vcpu *v);	/* one KVM_RUN; -EINTR when kicked */
/*
 * Run until the guest reports DONE for the posted command; returns its
 * status (>= 0) or -errno.  KVM_EXIT_DIRTY_RING_FULL calls ring_full(v, ctx)
 * (NULL: return -ENOSPC), a negative return ends the run with it.  Progress
 * reports and non-fatal self-check errors are counted in the mailbox and
 * passed over.  -ENOMSG: nothing was posted; -EFAULT: guest exception;
 * -EIO: unexpected exit (reported on stderr with reason and RIP); a negative
 * guest status (bad arguments) is returned as is.
 */
int vcpu_run_cmd(struct vcpu *v, int (*ring_full)(struct vcpu *v, void *ctx), void *ctx);
/*
 * The userspace dirty-ring reaper, the way QEMU does it: walk v's ring from
 * *fetch while entries are DIRTY (01, load-acquire of flags), call fn for
 * each, and if collect, mark it harvested (store-release of RESET: 01 ->
 * 1X); *fetch advances past every entry visited.  Returns the count.  With
 * collect == false it only peeks (the caller keeps a separate cursor).
 * -ENODEV without a ring.
 */
int vcpu_ring_reap(struct vcpu *v, uint32_t *fetch, bool collect,
		   void (*fn)(void *ctx, uint32_t slot, uint64_t offset), void *ctx);
/* One-line description of an exit reason, for reports. */
const char *vcpu_exit_name(uint32_t reason);

/*
 * Running a VM with threads (runner.c), for the agent.  One thread per
 * vCPU, each running whatever command its vCPU has posted (or was in the
 * middle of: a migration destination after vcpu_restore_state).  Hooks run
 * on vCPU threads, never under the runner's lock.
 */
#define VM_RUNNER_KICK_SIGNAL	SIGUSR1	/* taken over by vm_runner_start() */
#define VM_RUNNER_EXIT_REASONS	64

struct vm_runner;

struct vm_runner_hooks {
	/* KVM_EXIT_DIRTY_RING_FULL: harvest and reset; < 0 ends that vCPU (NULL: -ENOSPC). */
	int (*ring_full)(void *ctx, struct vcpu *v);
	/* A progress report: the guest's op counter, host CLOCK_MONOTONIC time of the exit. */
	void (*progress)(void *ctx, struct vcpu *v, uint64_t ops, uint64_t now_ns);
	void *ctx;
};

struct vm_runner_vcpu_stats {
	uint64_t exits[VM_RUNNER_EXIT_REASONS];	/* by KVM exit reason */
	uint64_t kicks;			/* KVM_RUN ended by a kick (-EINTR) */
	uint64_t reports;		/* progress reports */
	uint64_t first_report_ns, last_report_ns;	/* CLOCK_MONOTONIC */
	uint64_t max_gap_ns;		/* longest time between two reports (pauses included) */
	uint64_t ops, guest_errors;	/* the guest's counters (mailbox) */
	bool finished;			/* the command ended (or failed): status */
	int status;			/* DONE status, or -errno */
};

struct vm_runner_stats {
	unsigned int nr_vcpus, finished;
	unsigned int throttle_pct;
	uint64_t exits[VM_RUNNER_EXIT_REASONS];
	uint64_t kicks, ring_full, reports, ops, guest_errors;
	uint64_t max_gap_ns;		/* the longest of any vCPU */
	uint64_t throttle_ns;		/* total time vCPU threads slept for the throttle */
	struct vm_runner_vcpu_stats vcpu[VM_MAX_VCPUS];
};

int vm_runner_start(struct vm *vm, const struct vm_runner_hooks *h, struct vm_runner **out);
/*
 * The threads start parked, as if paused, without entering KVM_RUN: a
 * migration destination creates them before it may run the guest, so that
 * running it later costs a wakeup, not a thread creation.
 */
int vm_runner_start_paused(struct vm *vm, const struct vm_runner_hooks *h,
			   struct vm_runner **out);
/* Returns once every vCPU is out of KVM_RUN and parked (kicked, not polled). */
int vm_runner_pause(struct vm_runner *r);
int vm_runner_resume(struct vm_runner *r);
/*
 * Resumes, then waits until every vCPU's thread has left its park (is about
 * to enter KVM_RUN): *ns is how long that took, by the last thread's own
 * reading of the clock (the thread woken may keep the waiter off its CPU
 * for a while, running the guest).  -ETIMEDOUT after timeout_ms (the guest
 * runs all the same; *ns is then the wait).
 */
int vm_runner_resume_wait(struct vm_runner *r, uint64_t timeout_ms, uint64_t *ns);
/*
 * Kicks every running vCPU out of KVM_RUN once (it goes straight back) and
 * waits until each thread is back from KVM_RUN and any exit it was
 * handling, where a pause would park it: *ns is the latency a pause would
 * see now, under whatever else the host is doing, by the last thread's own
 * reading of the clock (as vm_runner_resume_wait()).  -ETIMEDOUT after
 * timeout_ms; -EAGAIN, timing nothing, when no vCPU is in or on its way to
 * KVM_RUN (all parked: paused, asleep for the throttle, or done).
 */
int vm_runner_kick_wait(struct vm_runner *r, uint64_t timeout_ms, uint64_t *ns);
/* 0..99: the share of wall time each vCPU sleeps (auto-converge, like QEMU's cpu-throttle). */
int vm_runner_throttle(struct vm_runner *r, unsigned int pct);
/*
 * Running: sets every vCPU's mailbox stop flag, waits (up to 60 s, else
 * -ETIMEDOUT) until all commands are done, joins the threads.  Paused: joins
 * the threads without running the guest again (a migration source after the
 * switch).  Stats stay readable until vm_runner_free().
 */
int vm_runner_stop(struct vm_runner *r);
void vm_runner_free(struct vm_runner *r);	/* stops (as if paused) if needed */
void vm_runner_stats(struct vm_runner *r, struct vm_runner_stats *st);
/* CPU time of the running vCPU threads, guest mode included (0 where unknown). */
uint64_t vm_runner_cpu_ns(struct vm_runner *r);
uint64_t vmm_now_ns(void);	/* CLOCK_MONOTONIC, the runner's clock */
/* CLOCK_REALTIME ms from now, for pthread_cond_timedwait(). */
struct timespec vmm_deadline_ms(uint64_t ms);

/*
 * vCPU and VM state (state.c), for migration.  On the destination, in this
 * order: vm_create() with the source's config, guest RAM copied in,
 * vm_restore_state() (the TSC rate first), vcpu_restore_state() for each
 * vCPU, then run.  Save with every vCPU out of KVM_RUN (runner paused).
 */
#define VCPU_MAX_MSRS	64

struct vcpu_state {
	uint32_t idx;			/* the vCPU it was saved from */
	struct kvm_regs regs;
	struct kvm_sregs sregs;
	uint32_t xsave_size;
	struct kvm_xsave *xsave;	/* xsave_size bytes (KVM_CAP_XSAVE2) */
	struct kvm_xcrs xcrs;
	struct kvm_lapic_state lapic;
	struct kvm_vcpu_events events;
	struct kvm_debugregs debugregs;
	struct kvm_mp_state mp_state;
	uint32_t nr_msrs;
	struct kvm_msr_entry msrs[VCPU_MAX_MSRS];	/* incl. MSR_IA32_TSC */
};

struct vm_state {
	uint32_t nr_vcpus;		/* restore refuses a VM that differs */
	uint64_t mem_size;
	struct kvm_clock_data clock;
	struct kvm_irqchip pic[2], ioapic;
	uint64_t tsc_khz;
};

/* Completes a pending IO exit first, so RIP is where the guest continues. */
int vcpu_save_state(struct vcpu *v, struct vcpu_state *s);
/* That first step alone (a KVM_RUN that returns at once): for timing the rest. */
int vcpu_complete_io(struct vcpu *v);
/* -EINVAL/-EOPNOTSUPP, with v untouched, for state this vCPU cannot take. */
int vcpu_restore_state(struct vcpu *v, const struct vcpu_state *s);
void vcpu_state_release(struct vcpu_state *s);
int vm_save_state(struct vm *vm, struct vm_state *s);
int vm_restore_state(struct vm *vm, const struct vm_state *s);
/* Guest RAM of src into dst (same size), e.g. for a migration in one process. */
int vm_copy_memory(struct vm *dst, const struct vm *src);

/* Helpers shared with the unit tests (no KVM). */
/* Fills the identity page tables for mem_size bytes into low (guest RAM from gpa 0). */
int vmm_build_page_tables(uint8_t *low, uint64_t mem_size);
/* Checks a loaded payload's header (image: its file bytes); returns their size. */
int vmm_payload_check(const void *image, size_t size, const struct guest_payload_hdr **hdr);

#endif
