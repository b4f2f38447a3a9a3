// SPDX-License-Identifier: GPL-2.0
/* VCPU_STATE and VM_STATE bodies. */
#include <stdlib.h>

#include "fuzz.h"
#include "vmm/vmm.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct wire_hdr h = fuzz_hdr(WIRE_VCPU_STATE, size);
	struct vcpu_state vs;
	struct vm_state ms;

	if (!wire_dec_vcpu_state(&h, data, &vs))
		free(vs.xsave);
	h.type = WIRE_VM_STATE;
	wire_dec_vm_state(&h, data, &ms);
	return 0;
}
