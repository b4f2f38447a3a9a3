# SPDX-License-Identifier: GPL-2.0
#
# vmdirty: the module (kmod/, built by Kbuild), the migration agent
# (userspace/) and the kselftest suite (selftests/).
#
#   make              build vmdirty.ko for the test host's kernel, the agent,
#                     the unit tests and the selftests
#   make test         everything, then unit tests here and the selftests in a
#                     stock kernel booted under qemu (KERNEL=6.12 for the
#                     bookworm-backports kernel, KERNEL=7 for trixie-backports'
#                     7.x built in a trixie chroot, or KVER=<release>)
#   make test-debug   the module's selftests under a debug build of Debian's
#                     6.1 (KASAN, lockdep, kmemleak; DEBUG_KERNEL=kcsan: KCSAN)
#   make test-mttcg   the concurrency selftests with a host thread per CPU
#   make test-install make install and make dkms-install, in the test host
#   make demo         a live migration in the test host, module loaded
#   make bench        the benchmarks, in the test host
#   make deps         install the Debian packages all of this needs
#   make KDIR=/lib/modules/$(uname -r)/build module    on a real host
#   make install      on a real host: module (running kernel), agent, header
#   make dkms-install on a real host: the module under DKMS (dkms.conf)
#   make check        checkpatch, sparse and W=1 on kmod/

# Lazily expanded: resolved only once deps are there.
KERNEL ?=
VMDIRTY_KCACHE ?= /var/cache/vmdirty
# A kernel not installed here lives under a root of its own (boot/,
# lib/modules/, usr/src/): trixie-backports' 7.x in the chroot that builds
# for it (scripts/trixie.sh).
ifeq ($(KERNEL),7)
KROOT ?= $(VMDIRTY_KCACHE)/trixie
endif
KROOT ?=
KVER ?= $(shell VMDIRTY_KROOT=$(KROOT) scripts/kver.sh $(KERNEL))
KDIR ?= $(KROOT)/usr/src/linux-headers-$(KVER)
BUILD := $(CURDIR)/build
KSFT := $(BUILD)/ksft

export KSFT BUILD VMDIRTY_KCACHE

all: module module-debug userspace selftests

ifeq ($(KERNEL),7)
# Its headers want trixie's gcc-14: built in the chroot.
module:
	scripts/trixie.sh module $(KVER) $(CURDIR)
else
module:
	$(MAKE) -C $(KDIR) M=$(CURDIR) W=1 modules
endif

# The DEBUG build (-DDEBUG, in-kernel self-tests at load time), from a copy
# of the sources in build/kmod-debug: the test host loads it once before
# the suite (selftests/vm/run-suite.sh).
DEBUG_SRC := $(BUILD)/kmod-debug
debug-src:
	@rm -rf $(DEBUG_SRC) && mkdir -p $(DEBUG_SRC)/kmod
	@cp Kbuild $(DEBUG_SRC)/ && cp kmod/Kbuild kmod/*.[ch] $(DEBUG_SRC)/kmod/ && cp -r include $(DEBUG_SRC)/

module-debug: debug-src
ifeq ($(KERNEL),7)
	scripts/trixie.sh module $(KVER) $(DEBUG_SRC) DEBUG=1
else
	$(MAKE) -C $(KDIR) M=$(DEBUG_SRC) W=1 DEBUG=1 modules
endif

userspace: $(KSFT)/.extracted
	$(MAKE) -C userspace

# The kernel-side test helpers (selftests/kmod) are built here, never by
# `module` or `install`: they are not for hosts.  On 7.x in the trixie
# chroot, as the module is (its headers want gcc-14).
selftests: userspace $(KSFT)/.extracted
	$(MAKE) -C selftests
ifeq ($(KERNEL),7)
	scripts/trixie.sh helpers $(KVER) $(CURDIR)
else
	$(MAKE) -C $(KDIR) M=$(CURDIR)/selftests/kmod W=1 modules
endif

$(KSFT)/.extracted: scripts/ksft.sh
	scripts/ksft.sh $(KSFT)

deps:
	scripts/deps.sh $(KERNEL)

# Install what is missing first, then build and test in a fresh make, so
# that the kernel version is resolved from what is now installed.
test:
	@scripts/deps.sh --check $(KERNEL) 2>/dev/null || scripts/deps.sh $(KERNEL)
	@$(MAKE) --no-print-directory _test

# The module's own selftests (the rest test the agent in userspace).
MODULE_TESTS := module_test attach_test attach_fault_test compat_test harvest_test drain_test \
	lifetime_test netlink_test race_test track_test dirty_ring_test \
	bounds_test collector_test lsm_test
# TESTS= picks selftests (default: all; on 7.x the module's, see README).
ifeq ($(KERNEL),7)
TESTS ?= $(MODULE_TESTS)
endif
TESTS ?=
# Ours alone: userspace/Makefile has a TESTS of its own (its unit tests),
# which a TESTS= on the command line would override there too.
MAKEOVERRIDES := $(filter-out TESTS=%,$(MAKEOVERRIDES))

_test: all
	@scripts/run-tests.sh -k $(KVER) $(if $(KROOT),-K $(KROOT)) $(TESTS)

# A debug kernel built from linux-source-6.1 (cached), the DEBUG module
# built against it, the module's selftests run under it.
DEBUG_KERNEL ?= kasan
test-debug:
	@scripts/deps.sh --check debug 2>/dev/null || scripts/deps.sh debug
	@$(MAKE) --no-print-directory userspace selftests
	@scripts/test-debug.sh $(DEBUG_KERNEL) $(or $(TESTS),$(MODULE_TESTS))

# The concurrency selftests with multi-threaded TCG (a host thread per
# guest CPU: real parallelism, the races single-threaded TCG serialises).
test-mttcg:
	@scripts/deps.sh --check $(KERNEL) 2>/dev/null || scripts/deps.sh $(KERNEL)
	@$(MAKE) --no-print-directory _test-mttcg

# make install and make dkms-install done for real in the test host, and
# what they installed loaded (selftests/install_test.sh; minutes of gcc
# under TCG, so not part of make test).
test-install:
	@scripts/deps.sh --check 2>/dev/null || scripts/deps.sh
	@$(MAKE) --no-print-directory _test-install

# Outside the kselftest runner: its per-test timeout (settings, 600 s) is
# shorter than DKMS's compile under TCG.  The test loads the suite's module
# again at its end.
_test-install: SHELL := /bin/bash
_test-install: all
	@mkdir -p $(BUILD)/test-results
	@selftests/vm/testhost.sh -k $(KVER) -t 1800 -- env VMDIRTY_INSTALL_TEST=1 \
		sh -c 'modprobe kvm_amd; insmod kmod/vmdirty.ko; selftests/install_test.sh' | \
		tee $(BUILD)/test-results/install.ktap; \
	rc=$${PIPESTATUS[0]}; \
	awk -f scripts/ktap-summary.awk $(BUILD)/test-results/install.ktap | \
		{ read p f s; echo "$$s skipped"; echo "$$p passed, $$f failed"; [ $$f -eq 0 ]; } && [ $$rc -eq 0 ]

MTTCG_RUNS ?= 1
_test-mttcg: all
	@scripts/test-mttcg.sh -r $(MTTCG_RUNS) -k $(KVER) $(if $(KROOT),-K $(KROOT))

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
	$(MAKE) --no-print-directory debug-src
	$(MAKE) -C $(KDIR) M=$(DEBUG_SRC) W=1 C=2 CF="-D__CHECK_ENDIAN__" DEBUG=1 modules

# On a hypervisor host, for the running kernel (HOST_KVER= for another):
# the module into /lib/modules/KVER/updates (depmod run), the agent into
# $(PREFIX)/sbin, the UAPI header into $(PREFIX)/include/linux.
PREFIX ?= /usr/local
HOST_KVER ?= $(shell uname -r)
HOST_KDIR ?= /lib/modules/$(HOST_KVER)/build
# What `make` built is installed; the agent is built first if it is missing.
$(BUILD)/vmdirty:
	$(MAKE) userspace

# Kbuild skips depmod where the headers have no System.map (Debian's):
# run it here, or modprobe cannot find the module.
install: $(BUILD)/vmdirty
	$(MAKE) -C $(HOST_KDIR) M=$(CURDIR) W=1 modules
	$(MAKE) -C $(HOST_KDIR) M=$(CURDIR) W=1 INSTALL_MOD_DIR=updates \
		$(if $(DESTDIR),INSTALL_MOD_PATH=$(DESTDIR)) modules_install
	depmod $(if $(DESTDIR),-b $(DESTDIR)) $(HOST_KVER)
	install -D -m 755 $(BUILD)/vmdirty $(DESTDIR)$(PREFIX)/sbin/vmdirty
	install -D -m 644 include/uapi/linux/vmdirty.h $(DESTDIR)$(PREFIX)/include/linux/vmdirty.h

uninstall:
	rm -f $(DESTDIR)/lib/modules/$(HOST_KVER)/updates/kmod/vmdirty.ko
	-depmod $(if $(DESTDIR),-b $(DESTDIR)) $(HOST_KVER)
	rm -f $(DESTDIR)$(PREFIX)/sbin/vmdirty $(DESTDIR)$(PREFIX)/include/linux/vmdirty.h

# DKMS rebuilds the module for every kernel the host installs (dkms.conf).
DKMS_VERSION := $(shell sed -n 's/^PACKAGE_VERSION="\(.*\)"/\1/p' dkms.conf)
DKMS_SRC := $(DESTDIR)/usr/src/vmdirty-$(DKMS_VERSION)
dkms-install:
	rm -rf $(DKMS_SRC) && mkdir -p $(DKMS_SRC)/kmod
	cp dkms.conf Kbuild $(DKMS_SRC)/
	cp kmod/Kbuild kmod/*.[ch] $(DKMS_SRC)/kmod/
	cp -r include $(DKMS_SRC)/
	dkms install vmdirty/$(DKMS_VERSION) -k $(HOST_KVER)

dkms-uninstall:
	-dkms remove vmdirty/$(DKMS_VERSION) --all
	rm -rf $(DKMS_SRC)

clean:
	-$(MAKE) -C $(KDIR) M=$(CURDIR) clean 2>/dev/null
	-$(MAKE) -C $(KDIR) M=$(CURDIR)/selftests/kmod clean 2>/dev/null
	-$(MAKE) -C userspace clean
	-$(MAKE) -C selftests clean
	rm -rf $(BUILD)

# Resolve KVER once deps.sh may have installed a kernel.
.PHONY: _test _demo _bench all module module-debug debug-src userspace selftests deps test demo bench \
	check install uninstall dkms-install dkms-uninstall test-debug test-mttcg _test-mttcg \
	test-install _test-install clean
