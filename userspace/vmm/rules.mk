# SPDX-License-Identifier: GPL-2.0
#
# The guest: freestanding 64-bit code with its own flags, linked at
# GUEST_CODE_BASE (vmm/guest/guest.ld), then converted to the ELF32 file
# that QEMU's multiboot loader takes (it refuses ELF64): $(GUEST_IMAGE).
# The agent embeds that very file (vmm/payload.S) and boots it either way
# (vm_load_guest, vm_boot_multiboot).  Included by userspace/Makefile.

GUEST_DIR := vmm/guest
GUEST_OUT := $(O)/vmm/guest
GUEST_IMAGE := $(BUILD)/vmdirty-guest.elf
GUEST_SRCS := $(wildcard $(GUEST_DIR)/*.c $(GUEST_DIR)/*.S)
GUEST_OBJS := $(GUEST_SRCS:$(GUEST_DIR)/%=$(GUEST_OUT)/%.o)
# Shared with the host: the command-line parser (the agent checks --append).
GUEST_OBJS += $(GUEST_OUT)/guest_cmdline.c.o

# No SSE in compiled code: xmm14/15 and ymm15 are the FPU-state check's.
# No red zone: interrupts arrive on the same stack.
GUEST_CFLAGS := -std=gnu11 -O2 -Wall -Wextra -Werror -Wno-unused-parameter \
	-ffreestanding -fno-pic -fno-pie -mno-red-zone -mgeneral-regs-only \
	-mcmodel=small -fno-stack-protector -fno-asynchronous-unwind-tables \
	-fno-unwind-tables -fcf-protection=none -fno-strict-aliasing \
	-I$(GUEST_DIR) -Ivmm -I. -MMD -MP
GUEST_LDFLAGS := -nostdlib -static -no-pie -Wl,-T,$(GUEST_DIR)/guest.ld \
	-Wl,--build-id=none -Wl,-z,noexecstack -Wl,--no-warn-rwx-segments \
	-Wl,-z,max-page-size=0x1000

$(GUEST_OUT)/%.c.o: $(GUEST_DIR)/%.c
	@mkdir -p $(dir $@)
	$(CC) $(GUEST_CFLAGS) -c $< -o $@

$(GUEST_OUT)/guest_cmdline.c.o: vmm/guest_cmdline.c
	@mkdir -p $(dir $@)
	$(CC) $(GUEST_CFLAGS) -c $< -o $@

$(GUEST_OUT)/%.S.o: $(GUEST_DIR)/%.S
	@mkdir -p $(dir $@)
	$(CC) $(GUEST_CFLAGS) -c $< -o $@

$(GUEST_OUT)/guest64.elf: $(GUEST_OBJS) $(GUEST_DIR)/guest.ld
	$(CC) $(GUEST_LDFLAGS) $(GUEST_OBJS) -lgcc -o $@

$(GUEST_IMAGE): $(GUEST_OUT)/guest64.elf
	objcopy -O elf32-i386 $< $@
	@echo "guest image: $@ (qemu-system-x86_64 -kernel $@ -append 'workload=random rate=10')"

LIB_OBJS += $(O)/vmm/payload.o
$(O)/vmm/payload.o: $(GUEST_IMAGE)
$(O)/vmm/payload.o: CPPFLAGS += -DGUEST_IMAGE='"$(GUEST_IMAGE)"'
