/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The multiboot way in (guest_abi.h): the multiboot v1 header, the BSP's
 * 32-bit entry, the APs' real-mode trampoline, and the 64-bit stubs both
 * jump to.  What they leave to C (boot.c): the real GDT, TSS and IDT, page
 * tables for RAM only, FPU/XSAVE, the x2APIC, the command line.
 *
 * The BSP maps the first 4 GiB with 2 MiB pages at GUEST_PML4_GPA before it
 * knows the RAM size: every 32-bit pointer a loader may have handed over
 * stays reachable until boot.c has read what it needs and rebuilt the
 * tables for RAM only.  The APs come up one at a time on the final tables.
 */
#include "guest_abi.h"

#define MB_HEADER_MAGIC	0x1badb002
#define MB_HEADER_FLAGS	0x00000003	/* modules page-aligned, memory info wanted */

#define CR0_PE		0x00000001
#define CR0_PG		0x80000000
#define CR4_PAE		0x00000020
#define MSR_EFER	0xc0000080
#define EFER_LME	0x00000100

#define PT_TABLE	0x23		/* present, writable, accessed */
#define PT_LARGE	0xe3		/* ... dirty, 2 MiB page */

/* The loader searches the file's first 8 KiB; guest.ld puts this right after the payload header. */
	.section .multiboot, "a"
	.balign 4
	.long MB_HEADER_MAGIC, MB_HEADER_FLAGS, -(MB_HEADER_MAGIC + MB_HEADER_FLAGS)

	.section .text.boot, "ax"

/* The ELF entry: eax = multiboot magic, ebx = info, flat 32-bit segments, no paging, IF = 0. */
	.code32
	.globl mb_entry
mb_entry:
	cli
	cld
	movl %eax, guest_mb_magic
	movl %ebx, guest_mb_info
	/* The loader leaves esp undefined: vCPU 0's stack, as in long mode. */
	movl $(GUEST_STACK_BASE + GUEST_STACK_SIZE), %esp
	/* The legacy PICs' vectors overlap the exceptions: mask them before any sti. */
	movb $0xff, %al
	outb %al, $0xa1
	outb %al, $0x21

	/* PML4 and PDPT cleared, then 4 GiB: PDPT[0..3] -> 4 PDs of 512 large pages. */
	movl $GUEST_PML4_GPA, %edi
	xorl %eax, %eax
	movl $2048, %ecx
	rep stosl
	movl $(GUEST_PDPT_GPA | PT_TABLE), GUEST_PML4_GPA
	movl $GUEST_PDPT_GPA, %edi
	movl $(GUEST_PD_GPA | PT_TABLE), %eax
	movl $4, %ecx
1:	movl %eax, (%edi)
	movl $0, 4(%edi)
	addl $8, %edi
	addl $0x1000, %eax
	loop 1b
	movl $GUEST_PD_GPA, %edi
	movl $PT_LARGE, %eax
	movl $2048, %ecx
2:	movl %eax, (%edi)
	movl $0, 4(%edi)
	addl $8, %edi
	addl $0x200000, %eax
	loop 2b

	lgdt boot_gdt_desc
	call enter_long_mode
	ljmp $GUEST_SEL_CODE, $bsp_entry64

/* PAE, CR3, EFER.LME, then paging: long mode, still in a 32-bit segment. */
enter_long_mode:
	movl %cr4, %eax
	orl $CR4_PAE, %eax
	movl %eax, %cr4
	movl $GUEST_PML4_GPA, %eax
	movl %eax, %cr3
	movl $MSR_EFER, %ecx
	rdmsr
	orl $EFER_LME, %eax
	wrmsr
	movl %cr0, %eax
	orl $(CR0_PG | CR0_PE), %eax
	movl %eax, %cr0
	ret

	.code64
bsp_entry64:
	movl $GUEST_SEL_DATA, %eax
	movl %eax, %ds
	movl %eax, %es
	movl %eax, %ss
	movl %eax, %fs
	movl %eax, %gs
	movq $(GUEST_STACK_BASE + GUEST_STACK_SIZE), %rsp
	xorl %ebp, %ebp
	call guest_mb_main
1:	cli
	hlt
	jmp 1b

/* An AP, from the trampoline: the stack boot.c chose for it. */
	.globl guest_ap_entry64
guest_ap_entry64:
	movl $GUEST_SEL_DATA, %eax
	movl %eax, %ds
	movl %eax, %es
	movl %eax, %ss
	movl %eax, %fs
	movl %eax, %gs
	movq guest_ap_rsp(%rip), %rsp
	xorl %ebp, %ebp
	call guest_ap_main
1:	cli
	hlt
	jmp 1b

/*
 * The AP trampoline, copied to GUEST_TRAMPOLINE_GPA (SIPI vector 0x08) and
 * run there in real mode with CS = 0x0800: position independent but for
 * the linear addresses it computes from that base.  Its own GDT: the
 * 64-bit code and data selectors of the real one, and a 32-bit code
 * segment for the step through protected mode.
 */
#define TR(x)		(GUEST_TRAMPOLINE_GPA + (x) - guest_trampoline)
#define TR_SEL_CODE32	0x18

	.code16
	.globl guest_trampoline
guest_trampoline:
	cli
	cld
	movw %cs, %ax
	movw %ax, %ds
	lgdtl tr_gdt_desc - guest_trampoline
	movl %cr0, %eax
	orl $CR0_PE, %eax
	movl %eax, %cr0
	ljmpl $TR_SEL_CODE32, $TR(tr_pm32)

	.code32
tr_pm32:
	movl $GUEST_SEL_DATA, %eax
	movl %eax, %ds
	movl %eax, %es
	movl %eax, %ss
	movl %cr4, %eax
	orl $CR4_PAE, %eax
	movl %eax, %cr4
	movl $GUEST_PML4_GPA, %eax
	movl %eax, %cr3
	movl $MSR_EFER, %ecx
	rdmsr
	orl $EFER_LME, %eax
	wrmsr
	movl %cr0, %eax
	orl $CR0_PG, %eax
	movl %eax, %cr0
	ljmp $GUEST_SEL_CODE, $guest_ap_entry64

	.balign 8
tr_gdt:
	.quad 0
	.quad GUEST_GDT_CODE64
	.quad GUEST_GDT_DATA
	.quad 0x00cf9b000000ffff	/* TR_SEL_CODE32: flat 32-bit code */
tr_gdt_desc:
	.word 4 * 8 - 1
	.long TR(tr_gdt)
	.globl guest_trampoline_end
guest_trampoline_end:

	.section .rodata
	.balign 8
boot_gdt:
	.quad 0
	.quad GUEST_GDT_CODE64
	.quad GUEST_GDT_DATA
boot_gdt_desc:
	.word 3 * 8 - 1
	.long boot_gdt

	.section .note.GNU-stack, "", @progbits
