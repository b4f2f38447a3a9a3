#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# The 7.x kernel of trixie-backports, for `make test KERNEL=7`.  Its headers
# want trixie's gcc-14, so vmdirty.ko for it is built in a trixie chroot
# (debootstrap), cached under $VMDIRTY_KCACHE (default /var/cache/vmdirty).
# The kernel image and modules are unpacked into the same chroot (never
# installed on this bookworm machine): the chroot is the kernel root the test
# host boots from (testhost.sh -K ROOT; the guest keeps bookworm's userspace).
#
# usage: trixie.sh setup           make or update the chroot; print its root
#        trixie.sh root            print the root if it is ready (else exit 1)
#        trixie.sh module KVER SRCDIR [VAR=VALUE...]
#                                  build SRCDIR/kmod/vmdirty.ko in the chroot
#                                  for KVER (e.g. DEBUG=1)
#        trixie.sh helpers KVER SRCDIR
#                                  build the selftests' kernel-side helpers
#                                  (SRCDIR/selftests/kmod/*.ko) the same way
set -euo pipefail

cache=${VMDIRTY_KCACHE:-/var/cache/vmdirty}
root=$cache/trixie
top=$(cd "$(dirname "$0")/.." && pwd)
log() { echo "trixie: $*" >&2; }

mirror() {
	local m
	m=$(grep -hs '^URIs:' /etc/apt/sources.list.d/*.sources |
		grep -v security | head -n1 | awk '{print $2}')
	echo "${m:-http://deb.debian.org/debian}"
}

in_root() { LC_ALL=C DEBIAN_FRONTEND=noninteractive chroot "$root" "$@"; }
apt_root() { in_root apt-get -o Dpkg::Use-Pty=0 -o APT::Color=0 -qq "$@"; }

setup() {
	local m kpkg kver
	mkdir -p "$cache"
	exec 9>"$cache/.trixie.lock"
	flock 9
	command -v debootstrap >/dev/null || { log "debootstrap missing (make deps KERNEL=7)"; exit 2; }
	m=$(mirror)
	if [ ! -e "$root/.debootstrapped" ]; then
		log "debootstrap trixie into $root (once)"
		rm -rf "$root"
		debootstrap --variant=minbase trixie "$root" "$m" >"$cache/trixie-debootstrap.log" 2>&1 ||
			{ tail -n 20 "$cache/trixie-debootstrap.log" >&2; exit 1; }
		touch "$root/.debootstrapped"
	fi
	# A debootstrap chroot has no /etc/hosts; apt and gcc need none.
	printf 'Types: deb\nURIs: %s\nSuites: trixie trixie-updates trixie-backports\nComponents: main\nSigned-By: /usr/share/keyrings/debian-archive-keyring.gpg\n' \
		"$m" >"$root/etc/apt/sources.list.d/debian.sources"
	rm -f "$root/etc/apt/sources.list"
	apt_root update
	# Headers (and so gcc-14 and kbuild) installed; the image only unpacked.
	apt_root install -y --no-install-recommends make gcc libc6-dev kmod xz-utils >/dev/null
	apt_root install -y --no-install-recommends -t trixie-backports linux-headers-amd64 >/dev/null
	kpkg=$(in_root dpkg-query -W -f='${Depends}' linux-headers-amd64 |
		grep -o 'linux-headers-[0-9][^ ,]*-amd64' | head -n1)
	kver=${kpkg#linux-headers-}
	if [ ! -d "$root/lib/modules/$kver/kernel" ] || [ ! -e "$root/boot/vmlinuz-$kver" ]; then
		# 7.x splits the image: linux-image-KVER depends on the kernel
		# (linux-binary-KVER) and its modules (linux-modules-KVER).
		pkgs="linux-image-$kver $(in_root apt-cache depends -t trixie-backports "linux-image-$kver" |
			awk -v k="$kver" '/Depends:/ && $2 ~ /^linux-(binary|modules)-/ &&
				substr($2, length($2) - length(k) + 1) == k {print $2}' | tr '\n' ' ')"
		log "unpacking $pkgs"
		rm -rf "$root/var/tmp/kimage"
		mkdir -p "$root/var/tmp/kimage"
		chown _apt "$root/var/tmp/kimage" 2>/dev/null || chmod 777 "$root/var/tmp/kimage"
		in_root sh -c "cd /var/tmp/kimage && apt-get -qq download -t trixie-backports $pkgs"
		for deb in "$root"/var/tmp/kimage/*.deb; do
			dpkg-deb -x "$deb" "$root"
		done
		rm -rf "$root/var/tmp/kimage"
		# 7.x keeps the image beside its modules; the postinst we skip
		# would link it into /boot.
		[ -e "$root/boot/vmlinuz-$kver" ] || [ ! -e "$root/lib/modules/$kver/vmlinuz" ] ||
			ln -s "../lib/modules/$kver/vmlinuz" "$root/boot/vmlinuz-$kver"
		[ -d "$root/lib/modules/$kver/kernel" ] && [ -e "$root/boot/vmlinuz-$kver" ] ||
			{ log "no kernel or modules in $pkgs"; exit 1; }
		in_root depmod "$kver"
	fi
	echo "$root"
}

case ${1:-} in
setup) setup ;;
root)
	[ -e "$root/.debootstrapped" ] && ls "$root"/boot/vmlinuz-* >/dev/null 2>&1 || exit 1
	echo "$root"
	;;
module | helpers)
	what=$1
	kver=${2:?usage: trixie.sh $what KVER SRCDIR}
	srcdir=$(cd "${3:?usage: trixie.sh $what KVER SRCDIR}" && pwd)
	shift 3
	[ -d "$root/usr/src/linux-headers-$kver" ] || { log "no headers for $kver (make deps KERNEL=7)"; exit 2; }
	# One build at a time: make -j runs module, module-debug and the
	# helpers at once, and they share the directory below.
	exec 9>"$cache/.trixie-build.lock"
	flock 9
	# The sources copied in (with the UAPI header both include), built
	# there, the .ko brought back.
	src=$root/var/tmp/vmdirty-src
	rm -rf "$src"
	if [ "$what" = module ]; then
		dir=kmod mdir=/var/tmp/vmdirty-src
		mkdir -p "$src/$dir"
		cp "$srcdir/Kbuild" "$src/"
		cp "$srcdir/$dir"/*.h "$src/$dir/"
	else
		dir=selftests/kmod mdir=/var/tmp/vmdirty-src/selftests/kmod
		mkdir -p "$src/$dir"
	fi
	cp -r "$srcdir/include" "$src/"
	cp "$srcdir/$dir"/Kbuild "$srcdir/$dir"/*.c "$src/$dir/"
	rm -f "$src/$dir"/*.mod.c	# kbuild's, from a build of SRCDIR itself
	# objtool reads /proc: a private mount namespace gives the chroot one
	# that goes away with the build.
	LC_ALL=C unshare --mount --propagation private sh -c \
		'mount -t proc proc "$0/proc" && exec chroot "$0" "$@"' "$root" \
		make -C "/usr/src/linux-headers-$kver" M="$mdir" W=1 "$@" modules
	for ko in "$src/$dir"/*.ko; do
		cp "$ko" "$srcdir/$dir/"
		# Kbuild here would take this .ko for its own (newer than its
		# objects, same command): forget how it was made, so the next
		# build relinks.
		rm -f "$srcdir/$dir/.$(basename "$ko").cmd"
	done
	;;
*)
	sed -n '3,18p' "$0" | sed 's/^# \{0,1\}//'
	exit 2
	;;
esac
