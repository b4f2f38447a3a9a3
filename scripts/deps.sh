#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
#
# Install the Debian packages vmdirty needs to build, test and demo, and
# only those that are missing.  Kernel versions are whatever Debian ships
# today; nothing here names one.
#
# usage: deps.sh [--check] [KERNEL_SERIES]
#   --check        exit 1 if something is missing, install nothing
#   KERNEL_SERIES  "6.12" also installs bookworm-backports' kernel and
#                  headers, for `make test KERNEL=6.12`; "7" makes the trixie
#                  chroot with trixie-backports' 7.x kernel, headers and
#                  gcc-14 (scripts/trixie.sh), for `make test KERNEL=7`;
#                  "debug" what building a kernel needs, for `make test-debug`
set -eu

check=0
if [ "${1:-}" = "--check" ]; then
	check=1
	shift
fi
series=${1:-}

pkgs="build-essential make gcc pkg-config git
      linux-image-amd64 linux-headers-amd64 linux-source-6.1
      qemu-system-x86 busybox-static cpio kmod xz-utils zstd iproute2
      libnl-genl-3-dev libzstd-dev liblz4-dev liburing-dev libxxhash-dev
      sparse python3 perl linux-perf dkms"
case $series in
7) pkgs="$pkgs debootstrap" ;;
debug) pkgs="$pkgs flex bison bc libelf-dev libssl-dev" ;;
esac

missing=""
for p in $pkgs; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" ||
		missing="$missing $p"
done

here=$(cd "$(dirname "$0")" && pwd)
need_series=0
if [ -n "$series" ] && [ "$series" != debug ] && ! "$here/kver.sh" "$series" >/dev/null 2>&1; then
	need_series=1
fi
# linux-headers-amd64 may lag behind a kernel installed some other way:
# make sure the newest stock kernel has headers of exactly its version.
if [ -z "$missing" ] && ! "$here/kver.sh" >/dev/null 2>&1; then
	missing="linux-headers-amd64"
fi

if [ -z "$missing" ] && [ $need_series -eq 0 ]; then
	exit 0
fi
if [ $check -eq 1 ]; then
	echo "deps: missing:${missing}${series:+ kernel $series}" >&2
	exit 1
fi
if [ "$(id -u)" -ne 0 ]; then
	echo "deps: missing:$missing; run 'make deps' as root" >&2
	exit 1
fi

export DEBIAN_FRONTEND=noninteractive
apt_get() { apt-get -o Dpkg::Use-Pty=0 -o APT::Color=0 "$@"; }

echo "deps: installing:$missing${series:+ (kernel $series)}"
apt_get update -qq
if [ -n "$missing" ]; then
	apt_get install -y -qq --no-install-recommends $missing >/dev/null
fi

if [ $need_series -eq 1 ]; then
	case $series in
	6.12)
		list=/etc/apt/sources.list.d/vmdirty-bookworm-backports.sources
		if ! grep -rqs "bookworm-backports" /etc/apt/sources.list /etc/apt/sources.list.d; then
			mirror=$(grep -hs '^URIs:' /etc/apt/sources.list.d/debian.sources |
				 grep -v security | head -n1 | awk '{print $2}')
			[ -n "$mirror" ] || mirror=http://deb.debian.org/debian
			printf 'Types: deb\nURIs: %s\nSuites: bookworm-backports\nComponents: main\nSigned-By: /usr/share/keyrings/debian-archive-keyring.gpg\n' \
				"$mirror" >"$list"
			apt_get update -qq
		fi
		apt_get install -y -qq --no-install-recommends -t bookworm-backports \
			linux-image-amd64 linux-headers-amd64 >/dev/null
		;;
	7)
		"$here/trixie.sh" setup >/dev/null
		;;
	*)
		echo "deps: no known source for kernel series $series (try 6.12 or 7)" >&2
		exit 1
		;;
	esac
fi
[ "$series" = debug ] || "$here/kver.sh" $series >/dev/null
