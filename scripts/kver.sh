#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
# Print the release of the Debian kernel the test host boots: the newest
# installed /boot/vmlinuz-* that has its modules and its headers, optionally
# restricted to a series given as $1 (e.g. "6.12").  Debian moves these
# versions forward, so nothing here names one.
#
# The kernel is looked for under a root directory: $VMDIRTY_KROOT if set,
# the trixie chroot of scripts/trixie.sh for series "7" (its kernel is never
# installed on this bookworm machine), else /.
series=${1:-}
root=${VMDIRTY_KROOT:-}
if [ -z "$root" ] && [ "$series" = 7 ]; then
	root=${VMDIRTY_KCACHE:-/var/cache/vmdirty}/trixie
fi
best=""
for k in "$root"/boot/vmlinuz-*; do
	[ -e "$k" ] || continue
	v=${k#"$root"/boot/vmlinuz-}
	case $v in *-amd64) ;; *) continue ;; esac
	[ -z "$series" ] || case $v in "$series".*|"$series"-*) ;; *) continue ;; esac
	[ -d "$root/lib/modules/$v/kernel" ] || continue
	[ -d "$root/usr/src/linux-headers-$v" ] || continue
	best=$(printf '%s\n%s\n' "$best" "$v" | sed '/^$/d' | sort -V | tail -n1)
done
if [ -z "$best" ]; then
	echo "kver: no Debian kernel${series:+ $series} with modules and headers installed${root:+ in $root} (make deps${series:+ KERNEL=$series})" >&2
	exit 1
fi
# Without a series, prefer the stock (non-backports) kernel.  Today's
# backports name their release like "6.12.95+deb12-amd64": only the package
# version ("6.12.95-1~bpo12+1") says bpo.
is_bpo() {
	case $1 in *bpo*) return 0 ;; esac
	dpkg-query -W -f='${Version}' "linux-image-$1" 2>/dev/null | grep -q bpo
}
if [ -z "$series" ] && [ -z "$root" ]; then
	stock=$(ls /boot/vmlinuz-*-amd64 2>/dev/null | sed 's|/boot/vmlinuz-||' |
		while read -r v; do
			is_bpo "$v" && continue
			[ -d "/usr/src/linux-headers-$v" ] && echo "$v"
		done | sort -V | tail -n1)
	[ -z "$stock" ] || best=$stock
fi
echo "$best"
