#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# make demo: a live migration of a running guest between two agents, with
# vmdirty.ko tracking the dirty pages.  Where this machine can load the
# module (and has /dev/kvm), it runs here; otherwise inside the test host
# (a stock Debian kernel under qemu with nested KVM, see README.md).
#
# The two agents sit in two network namespaces joined by a veth pair, as
# two hosts on a migration network would: the destination listens, the
# source runs a 256 MiB guest with 2 vCPUs writing random pages (in the test
# host 64 MiB at 10 MB/s a vCPU: under TCG, whose emulated AES-NI keeps an
# encrypted channel at about 7 MiB/s, 256 MiB at 40 MB/s never converged), and after
# two seconds moves it over two zstd channels.  Both hold the same key (made
# here with `vmdirty genkey`, as an operator would make one and copy it to
# both hosts): every channel is TLS 1.3, authenticated and encrypted.  Both
# print their reports.
#
# usage: demo.sh [-k KVER] [--here] [--inside] [SOURCE OPTIONS...]
set -u
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top" || exit 2
kver=""
where=auto
while [ $# -gt 0 ]; do
	case $1 in
	-k) kver=$2; shift 2 ;;
	--here) where=here; shift ;;
	--inside) where=inside; shift ;;
	*) break ;;
	esac
done

can_run_here() {
	[ -c /dev/kvm ] || return 1
	grep -q '^vmdirty ' /proc/modules && return 0
	[ "$(id -u)" -eq 0 ] && [ -e "/lib/modules/$(uname -r)" ] &&
		[ "$(modinfo -F vermagic kmod/vmdirty.ko 2>/dev/null | cut -d' ' -f1)" = "$(uname -r)" ]
}

if [ $where = auto ]; then
	if can_run_here; then
		where=here
	else
		[ -n "$kver" ] || kver=$(scripts/kver.sh) || exit 2
		echo "demo: this machine cannot load vmdirty.ko here; running it in the test host (Debian $kver under qemu, nested KVM)"
		exec selftests/vm/testhost.sh -k "$kver" -t 900 -- scripts/demo.sh --inside "$@"
	fi
fi

agent=$top/build/vmdirty
loaded_here=0
keydir=$(mktemp -d)
cleanup() {
	rm -rf "$keydir"
	jobs -p | xargs -r kill 2>/dev/null
	ip netns del vmdirty-demo-src 2>/dev/null
	ip netns del vmdirty-demo-dst 2>/dev/null
	[ $loaded_here -eq 0 ] || rmmod vmdirty
}
trap cleanup EXIT

if [ $where = inside ]; then
	modprobe kvm_amd nested=1 2>/dev/null || modprobe kvm_intel nested=1 || exit 1
fi
if ! grep -q '^vmdirty ' /proc/modules; then
	insmod kmod/vmdirty.ko || exit 1
	loaded_here=1
fi
echo "== vmdirty.ko loaded: $($agent version | tail -n1)"

ip netns add vmdirty-demo-src && ip netns add vmdirty-demo-dst || exit 1
ip link add vd-src netns vmdirty-demo-src type veth peer name vd-dst netns vmdirty-demo-dst
ip -n vmdirty-demo-src addr add 192.0.2.1/24 dev vd-src
ip -n vmdirty-demo-dst addr add 192.0.2.2/24 dev vd-dst
for ns in vmdirty-demo-src vmdirty-demo-dst; do
	ip -n $ns link set lo up
done
ip -n vmdirty-demo-src link set vd-src up
ip -n vmdirty-demo-dst link set vd-dst up

"$agent" genkey "$keydir/key" >"$keydir/id" || exit 1
sed 's/^/== key: /' "$keydir/id"
mem=256 rate=40
[ $where = inside ] && mem=64 rate=4
# The destination makes the VM ahead when told its size, unless the
# source's options below change it (it would refuse that source).
size="--mem $mem --vcpus 2"
case " $* " in *" --mem"*|*" --vcpus"*) size="" ;; esac
echo "== destination (192.0.2.2): waiting"
# shellcheck disable=SC2086
ip netns exec vmdirty-demo-dst "$agent" dest --listen 192.0.2.2:4444 --run-for 3 --key "$keydir/key" \
	$size >/var/tmp/vmdirty-demo-dest.txt 2>&1 &
dpid=$!
for _ in $(seq 100); do
	grep -q "waiting" /var/tmp/vmdirty-demo-dest.txt 2>/dev/null && break
	sleep 0.1
done

echo "== source (192.0.2.1): a $mem MiB guest, 2 vCPUs, random writer; migrating in 2 s"
( sleep 3; echo "== vmdirty status (the module's sessions, over generic netlink):";
  "$agent" status | sed 's/^/   /' ) &
ip netns exec vmdirty-demo-src "$agent" source --to 192.0.2.2:4444 --after 2 \
	--mem $mem --vcpus 2 --workload random --rate $rate --backend kmod --drain \
	--channels 2 --codec zstd:-1 --key "$keydir/key" "$@"
src_rc=$?
wait $dpid
dst_rc=$?
echo "== destination report"
cat /var/tmp/vmdirty-demo-dest.txt
rm -f /var/tmp/vmdirty-demo-dest.txt
echo "== source exit $src_rc, destination exit $dst_rc"
[ $src_rc -eq 0 ] && [ $dst_rc -eq 0 ]
