/* SPDX-License-Identifier: GPL-2.0 */
/* The guest payload (vmm/guest/, flat binary) inside libvmdirty.a. */
	.section .rodata
	.balign 4096
	.globl vmm_payload_start
vmm_payload_start:
	.incbin GUEST_BIN
	.globl vmm_payload_end
vmm_payload_end:

	.section .note.GNU-stack, "", @progbits
