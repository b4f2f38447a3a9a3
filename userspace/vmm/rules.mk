# SPDX-License-Identifier: GPL-2.0
#
# The guest payload: freestanding 64-bit code with its own flags, linked at
# GUEST_CODE_BASE (vmm/guest/guest.ld), flattened by objcopy and embedded
# into libvmdirty.a by vmm/payload.S.  Included by userspace/Makefile.

GUEST_DIR := vmm/guest
GUEST_OUT := $(O)/vmm/guest
GUEST_SRCS := $(wildcard $(GUEST_DIR)/*.c $(GUEST_DIR)/*.S)
GUEST_OBJS := $(GUEST_SRCS:$(GUEST_DIR)/%=$(GUEST_OUT)/%.o)

# No SSE in compiled code: xmm14/15 and ymm15 are the FPU-state check's.
# No red zone: interrupts arrive on the same stack.
GUEST_CFLAGS := -std=gnu11 -O2 -Wall -Wextra -Werror -Wno-unused-parameter \
	-ffreestanding -fno-pic -fno-pie -mno-red-zone -mgeneral-regs-only \
	-mcmodel=small -fno-stack-protector -fno-asynchronous-unwind-tables \
	-fno-unwind-tables -fcf-protection=none -fno-strict-aliasing \
	-I$(GUEST_DIR) -Ivmm -MMD -MP
GUEST_LDFLAGS := -nostdlib -static -no-pie -Wl,-T,$(GUEST_DIR)/guest.ld \
	-Wl,--build-id=none -Wl,-z,noexecstack -Wl,--no-warn-rwx-segments

$(GUEST_OUT)/%.c.o: $(GUEST_DIR)/%.c
	@mkdir -p $(dir $@)
	$(CC) $(GUEST_CFLAGS) -c $< -o $@

$(GUEST_OUT)/%.S.o: $(GUEST_DIR)/%.S
	@mkdir -p $(dir $@)
	$(CC) $(GUEST_CFLAGS) -c $< -o $@

$(GUEST_OUT)/guest.elf: $(GUEST_OBJS) $(GUEST_DIR)/guest.ld
	$(CC) $(GUEST_LDFLAGS) $(GUEST_OBJS) -lgcc -o $@

$(GUEST_OUT)/guest.bin: $(GUEST_OUT)/guest.elf
	objcopy -O binary $< $@

LIB_OBJS += $(O)/vmm/payload.o
$(O)/vmm/payload.o: $(GUEST_OUT)/guest.bin
$(O)/vmm/payload.o: CPPFLAGS += -DGUEST_BIN='"$(GUEST_OUT)/guest.bin"'
