#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# How a host installs vmdirty.ko, done for real on the running kernel (in
# the test host its root is a throwaway overlay): `make dkms-install` (DKMS
# builds the module from /usr/src/vmdirty-VERSION for this kernel), then
# `modprobe vmdirty` must load that very build and bring /dev/vmdirty; then
# `make dkms-uninstall` must leave modprobe nothing to find.  The same for
# `make install` (module into /lib/modules/KVER/updates, agent, header) and
# `make uninstall`.  The module the suite runs against is loaded again at
# the end.  The bug each part catches: a dkms.conf or install rule that
# builds or installs no loadable module (a wrong BUILT_MODULE_LOCATION or
# MAKE line, modules_install to a path depmod does not index).
#
# Runs only in the test host (VMDIRTY_TESTHOST=1, set by guest-init.sh),
# whose writes all go to a tmpfs overlay: anywhere else it would install on
# the machine; and only when asked (VMDIRTY_INSTALL_TEST=1, `make
# test-install`): DKMS compiles the module under TCG, about 7 minutes.  Needs root, dkms and the running kernel's headers
# (/lib/modules/$(uname -r)/build); skips otherwise.
set -u
ksft_skip=4
here=$(cd "$(dirname "$0")" && pwd)
top=$here
while [ "$top" != / ] && [ ! -e "$top/dkms.conf" ]; do
	top=$(dirname "$top")
done
kver=$(uname -r)
if [ "${VMDIRTY_TESTHOST:-}" != 1 ]; then
	echo "SKIP: not in the test host (it would install on this machine)"
	exit $ksft_skip
fi
if [ "${VMDIRTY_INSTALL_TEST:-}" != 1 ]; then
	echo "SKIP: make test-install runs this (minutes of gcc under TCG)"
	exit $ksft_skip
fi
if [ "$(id -u)" -ne 0 ] || ! command -v dkms >/dev/null; then
	echo "SKIP: needs root and dkms"
	exit $ksft_skip
fi
if [ ! -e "$top/dkms.conf" ]; then
	echo "SKIP: no source tree (dkms.conf) above $here"
	exit $ksft_skip
fi
if [ ! -e "/lib/modules/$kver/build/Makefile" ]; then
	echo "SKIP: no headers for $kver"
	exit $ksft_skip
fi
suite_ko=${VMDIRTY_KO:-$top/kmod/vmdirty.ko}
case $suite_ko in /*) ;; *) suite_ko=$top/$suite_ko ;; esac
# The module is built in the tree (in the overlay), the agent is there.
logs=$(mktemp -d)

n=0
failed=0
check() {
	local t0=$SECONDS
	n=$((n + 1))
	if eval "$2"; then
		echo "ok $n $1 ($((SECONDS - t0)) s)"
	else
		echo "not ok $n $1 ($((SECONDS - t0)) s)"
		failed=$((failed + 1))
	fi
}
# Whatever happens (a failed step, the runner's timeout), the suite's
# module is loaded again for the tests after this one.
restore() {
	rmmod vmdirty 2>/dev/null
	insmod "$suite_ko"
}
trap 'restore; exit 1' TERM INT

echo "TAP version 13"
echo "1..10"
rmmod vmdirty 2>/dev/null

mk() { make --no-print-directory -C "$top" "$@"; }

check "make dkms-install" 'mk dkms-install >"$logs/dkms.log" 2>&1 || { sed "s/^/# /" "$logs/dkms.log" | tail -n 20; false; }'
check "dkms status: installed for $kver" 'dkms status vmdirty -k "$kver" | grep -q installed'
check "modprobe loads the DKMS build" \
	'modprobe vmdirty && [ -c /dev/vmdirty ] && modinfo -n vmdirty | grep -q /updates/dkms/'
rmmod vmdirty 2>/dev/null
check "make dkms-uninstall: nothing left to load" \
	'mk dkms-uninstall >/dev/null 2>&1 && ! modinfo vmdirty >/dev/null 2>&1'

check "make install" 'mk install >"$logs/install.log" 2>&1 || { sed "s/^/# /" "$logs/install.log" | tail -n 20; false; }'
check "modprobe loads the installed module" \
	'modprobe vmdirty && [ -c /dev/vmdirty ] && modinfo -n vmdirty | grep -q "/lib/modules/$kver/updates/"'
check "the installed agent talks to it" \
	'/usr/local/sbin/vmdirty version | grep -q "vmdirty.ko: ABI"'
check "the UAPI header compiles on its own" \
	'echo "#include <linux/vmdirty.h>" | gcc -I/usr/local/include -fsyntax-only -x c -'
rmmod vmdirty 2>/dev/null
check "make uninstall: nothing left" \
	'mk uninstall >/dev/null 2>&1 && ! modinfo vmdirty >/dev/null 2>&1 && [ ! -e /usr/local/sbin/vmdirty ]'

check "the suite's module is back" 'restore && [ -c /dev/vmdirty ]'
rm -rf "$logs"
[ $failed -eq 0 ]
