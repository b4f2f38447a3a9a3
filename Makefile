# SPDX-License-Identifier: GPL-2.0
#
# vmdirty: the module (kmod/, built by Kbuild), the migration agent
# (userspace/) and the kselftest suite (selftests/).
#
#   make              build vmdirty.ko for the test host's kernel, the agent,
#                     the unit tests and the selftests
#   make test         everything, then unit tests here and the selftests in a
#                     stock kernel booted under qemu (KERNEL=6.12 for the
#                     bookworm-backports kernel, or KVER=<release>)
#   make demo         a live migration in the test host, module loaded
#   make bench        the benchmarks, in the test host
#   make deps         install the Debian packages all of this needs
#   make KDIR=/lib/modules/$(uname -r)/build module    on a real host
#   make check        checkpatch, sparse and W=1 on kmod/

# Lazily expanded: resolved only once deps are there.
KERNEL ?=
KVER ?= $(shell scripts/kver.sh $(KERNEL))
KDIR ?= /usr/src/linux-headers-$(KVER)
BUILD := $(CURDIR)/build
KSFT := $(BUILD)/ksft

export KSFT BUILD

all: module userspace selftests

module:
	$(MAKE) -C $(KDIR) M=$(CURDIR) W=1 modules

userspace: $(KSFT)/.extracted
	$(MAKE) -C userspace

# The kernel-side test helpers (selftests/kmod) are built here, never by
# `module` or `install`: they are not for hosts.
selftests: userspace $(KSFT)/.extracted
	$(MAKE) -C selftests
	$(MAKE) -C $(KDIR) M=$(CURDIR)/selftests/kmod W=1 modules

$(KSFT)/.extracted: scripts/ksft.sh
	scripts/ksft.sh $(KSFT)

deps:
	scripts/deps.sh $(KERNEL)

# Install what is missing first, then build and test in a fresh make, so
# that the kernel version is resolved from what is now installed.
test:
	@scripts/deps.sh --check $(KERNEL) 2>/dev/null || scripts/deps.sh $(KERNEL)
	@$(MAKE) --no-print-directory _test

_test: all
	@scripts/run-tests.sh -k $(KVER)

demo:
	@scripts/deps.sh --check $(KERNEL) 2>/dev/null || scripts/deps.sh $(KERNEL)
	@$(MAKE) --no-print-directory _demo

_demo: all
	@scripts/demo.sh -k $(KVER)

bench:
	@scripts/deps.sh --check $(KERNEL) 2>/dev/null || scripts/deps.sh $(KERNEL)
	@$(MAKE) --no-print-directory _bench

_bench: all
	@scripts/bench.sh -k $(KVER)

# Kernel style gates for kmod/.
check: $(KSFT)/.extracted
	$(KSFT)/scripts/checkpatch.pl --no-tree --strict --ignore FILE_PATH_CHANGES,SPDX_LICENSE_TAG \
		--show-types -f $(filter-out %.mod.c,$(wildcard kmod/*.c)) kmod/*.h \
		include/uapi/linux/vmdirty.h
	$(MAKE) -C $(KDIR) M=$(CURDIR) W=1 C=2 CF="-D__CHECK_ENDIAN__" modules

install: module
	$(MAKE) -C $(KDIR) M=$(CURDIR) modules_install

clean:
	-$(MAKE) -C $(KDIR) M=$(CURDIR) clean 2>/dev/null
	-$(MAKE) -C $(KDIR) M=$(CURDIR)/selftests/kmod clean 2>/dev/null
	-$(MAKE) -C userspace clean
	-$(MAKE) -C selftests clean
	rm -rf $(BUILD)

# Resolve KVER once deps.sh may have installed a kernel.
.PHONY: _test _demo _bench all module userspace selftests deps test demo bench check install clean
