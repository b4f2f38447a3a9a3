/* SPDX-License-Identifier: GPL-2.0 */
/* The guest image (vmm/guest/, the ELF32 file QEMU boots too) inside libvmdirty.a. */
	.section .rodata
	.balign 4096
	.globl vmm_guest_image_start
vmm_guest_image_start:
	.incbin GUEST_IMAGE
	.globl vmm_guest_image_end
vmm_guest_image_end:

	.section .note.GNU-stack, "", @progbits
