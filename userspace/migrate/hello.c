// SPDX-License-Identifier: GPL-2.0
/*
 * What both sides put in HELLO about their VM: layout, vCPUs, CPU.
 */
#include <string.h>

#include "migrate/migrate.h"

/* CPUID.0's vendor string from the CPUID the vCPUs got; "" if absent. */
static void cpu_vendor(const struct vm *vm, char out[13])
{
	out[0] = 0;
	for (unsigned int i = 0; vm->cpuid && i < vm->cpuid->nent; i++) {
		const struct kvm_cpuid_entry2 *e = &vm->cpuid->entries[i];

		if (e->function == 0 && e->index == 0) {
			memcpy(out, &e->ebx, 4);
			memcpy(out + 4, &e->edx, 4);
			memcpy(out + 8, &e->ecx, 4);
			out[12] = 0;
			return;
		}
	}
}

void migrate_hello_vm(const struct vm *vm, struct wire_hello *h)
{
	memset(h, 0, sizeof(*h));
	h->ver_min = WIRE_VERSION_MIN;
	h->ver_max = WIRE_VERSION_MAX;
	h->page_size = 4096;
	h->nr_vcpus = vm->nr_vcpus;
	h->tsc_khz = vm->tsc_khz;
	h->xsave_size = vm->xsave_size;
	cpu_vendor(vm, h->cpu_vendor);
	h->nr_regions = vm->nr_slots;
	for (unsigned int i = 0; i < vm->nr_slots; i++) {
		h->regions[i].gpa = vm->slots[i].gpa;
		h->regions[i].size = vm->slots[i].size;
	}
}

void migrate_vm_regions(const struct vm *vm, struct wire_region *r)
{
	for (unsigned int i = 0; i < vm->nr_slots; i++) {
		r[i].gpa = vm->slots[i].gpa;
		r[i].size = vm->slots[i].size;
	}
}
