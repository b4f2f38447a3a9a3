#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Build (or reuse) a debug kernel from Debian's linux-source-6.1 for
# `make test-debug`: x86_64_defconfig plus what the test host needs
# (debug-kernel/base.config), lockdep, atomic-sleep and kmemleak checks
# (debug.config) and one sanitizer flavour: kasan.config or kcsan.config
# (gcc-12 cannot have both: KCSAN depends on !KASAN).
#
# The result is a kernel directory the test host boots (testhost.sh -K):
#   DIR/boot/vmlinuz-KVER, DIR/lib/modules/KVER/, and DIR/build, the object
#   tree vmdirty.ko is built against (make KDIR=DIR/build).
# DIR is printed on stdout.  It is cached under $VMDIRTY_KCACHE (default
# /var/cache/vmdirty) by flavour and by a hash of the source package, the
# config fragments and the compiler, so a second run reuses it.  The build
# runs at nice 10 with -j$(nproc): the machine is shared (run the script
# under `nice -n 19` for 19: nice adds to the caller's niceness).
#
# usage: debug-kernel.sh kasan|kcsan
set -euo pipefail

flavour=${1:-kasan}
here=$(cd "$(dirname "$0")" && pwd)
frag=$here/debug-kernel
[ -r "$frag/$flavour.config" ] || { echo "debug-kernel: no flavour '$flavour' (kasan, kcsan)" >&2; exit 2; }
tarball=$(ls /usr/src/linux-source-6.1.tar.* 2>/dev/null | head -n1)
[ -n "$tarball" ] || { echo "debug-kernel: linux-source-6.1 missing (make deps)" >&2; exit 2; }

cache=${VMDIRTY_KCACHE:-/var/cache/vmdirty}
stamp=$( (stat -c '%n %s %Y' "$tarball"; cat "$frag/base.config" "$frag/debug.config" \
	"$frag/$flavour.config"; gcc --version | head -n1) | md5sum | cut -c1-12)
dir=$cache/debug-kernel/$flavour-$stamp
if [ -e "$dir/.done" ]; then
	echo "$dir"
	exit 0
fi

log() { echo "debug-kernel: $*" >&2; }
mkdir -p "$cache/debug-kernel"
exec 9>"$cache/debug-kernel/.lock"
flock 9
[ -e "$dir/.done" ] && { echo "$dir"; exit 0; }

# One extracted source tree serves every flavour (objects go to DIR/build).
src=$cache/debug-kernel/src-$( (stat -c '%n %s %Y' "$tarball") | md5sum | cut -c1-12)
if [ ! -e "$src/.extracted" ]; then
	log "extracting $tarball"
	rm -rf "$src" "$src.tmp"
	mkdir -p "$src.tmp"
	nice -n 10 tar xf "$tarball" -C "$src.tmp" --strip-components=1
	touch "$src.tmp/.extracted"
	mv "$src.tmp" "$src"
fi

start=$(date +%s)
# An interrupted build of the same flavour is picked up where it stopped:
# kbuild rebuilds only objects whose config symbols changed.
if [ ! -d "$dir/build" ]; then
	# (|| true: no earlier build is no error under pipefail, which ended
	# the first build of a flavour here without a word.)
	prev=$(ls -d "$cache/debug-kernel/$flavour"-*/build 2>/dev/null | head -n1 || true)
	mkdir -p "$dir"
	if [ -n "$prev" ] && [ ! -e "${prev%/build}/.done" ]; then
		mv "$prev" "$dir/build" && rm -rf "${prev%/build}"
	fi
fi
mkdir -p "$dir/build"
kmake() { nice -n 10 make -s -C "$src" O="$dir/build" "$@"; }
log "configuring $flavour in $dir"
kmake x86_64_defconfig >/dev/null
(cd "$dir/build" && "$src/scripts/kconfig/merge_config.sh" -m .config \
	"$frag/base.config" "$frag/debug.config" "$frag/$flavour.config" >/dev/null)
kmake olddefconfig >/dev/null
# merge_config only warns when a symbol did not take: refuse instead, so a
# flavour never silently runs without its sanitizer.  base.config's trims
# (=n) are best effort.
missing=0
for f in "$frag/base.config" "$frag/debug.config" "$frag/$flavour.config"; do
	while IFS= read -r line; do
		case $line in CONFIG_*=n) sym=${line%%=*}
			[ "$f" = "$frag/base.config" ] && continue
			grep -q "^$sym=" "$dir/build/.config" && { log "$sym still set"; missing=1; } ;;
		CONFIG_*) grep -qxF "$line" "$dir/build/.config" || { log "not taken: $line"; missing=1; } ;;
		esac
	done <"$f"
done
[ $missing -eq 0 ] || { log "config fragments did not apply"; exit 1; }

log "building $flavour (nice 10, -j$(nproc))"
kmake -j"$(nproc)" bzImage modules
kver=$(kmake -s kernelrelease)
kmake INSTALL_MOD_PATH="$dir" INSTALL_MOD_STRIP=1 modules_install >/dev/null
mkdir -p "$dir/boot"
cp "$dir/build/arch/x86/boot/bzImage" "$dir/boot/vmlinuz-$kver"
cp "$dir/build/System.map" "$dir/boot/System.map-$kver"
cp "$dir/build/.config" "$dir/boot/config-$kver"
# The module tree points at the object tree, as a headers package would.
rm -f "$dir/lib/modules/$kver/build" "$dir/lib/modules/$kver/source"
echo "$(( $(date +%s) - start ))" >"$dir/build-seconds"
touch "$dir/.done"
log "built $kver in $(cat "$dir/build-seconds") s"
echo "$dir"
