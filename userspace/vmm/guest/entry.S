/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Payload entry, exception stubs and the two interrupt handlers.  The
 * payload is compiled without SSE, so xmm14/xmm15/ymm15 belong to the
 * FPU-state check (guest.h) and nothing here may touch them.
 */
	.code64
	.section .text.entry, "ax"

/* The host starts every vCPU here: rdi = vCPU index, rsp = its stack top. */
	.globl _start
_start:
	xorl %ebp, %ebp
	call guest_main
1:	hlt
	jmp 1b

/* Exceptions: push a zero error code where the CPU pushes none. */
	.macro EXC vec, has_err
exc_\vec:
	.if \has_err == 0
	pushq $0
	.endif
	pushq $\vec
	jmp exc_common
	.endm

	.irp v, 0,1,2,3,4,5,6,7,9,15,16,18,19,20,22,23,24,25,26,27,28,31
	EXC \v, 0
	.endr
	.irp v, 8,10,11,12,13,14,17,21,29,30
	EXC \v, 1
	.endr

/* Stack: vector, error code, rip, cs, rflags, rsp, ss.  Never returns. */
exc_common:
	movq (%rsp), %rdi
	movq 8(%rsp), %rsi
	movq 16(%rsp), %rdx
	movq %cr2, %rcx
	movq %rsp, %r8
	andq $-16, %rsp
	call guest_exception
2:	hlt
	jmp 2b

/*
 * sleep: sti; hlt, with interrupts disabled around it.  The timer may fire
 * between the two (when the deadline is close), and sti's one-instruction
 * shadow is what should hold it off until hlt has begun.  Not every
 * platform honours it: nested SVM under QEMU's TCG delivered it right after
 * sti, the handler returned to the hlt, and with the deadline spent the
 * vCPU halted for good.  So the handler itself steps over a hlt it
 * interrupted before it ran (guest_timer_irq below): the wakeup cannot be
 * lost whichever way the platform goes.
 */
	.globl guest_safe_halt
guest_safe_halt:
	sti
	.globl guest_halt_insn
guest_halt_insn:
	hlt
	cli
	ret

/* The TSC-deadline timer only wakes a hlt: acknowledge it (x2APIC EOI). */
	.globl guest_timer_irq
guest_timer_irq:
	pushq %rax
	pushq %rcx
	pushq %rdx
	/* Interrupted at guest_halt_insn, before hlt ran: skip it (1 byte). */
	leaq guest_halt_insn(%rip), %rax
	cmpq %rax, 24(%rsp)
	jne 1f
	incq 24(%rsp)
1:	movl $0x80b, %ecx
	xorl %eax, %eax
	xorl %edx, %edx
	wrmsr
	popq %rdx
	popq %rcx
	popq %rax
	iretq

/* A spurious interrupt needs no EOI. */
	.globl guest_spurious_irq
guest_spurious_irq:
	iretq

	.section .rodata
	.balign 8
	.globl guest_exc_table
guest_exc_table:
	.irp v, 0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,21,22,23,24,25,26,27,28,29,30,31
	.quad exc_\v
	.endr

	.section .note.GNU-stack, "", @progbits
