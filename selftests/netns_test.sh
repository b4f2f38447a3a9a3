#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Transport channels across two network namespaces joined by a veth pair:
# the agent listens in one on an IPv4 and an IPv6 address, sends from the
# other with each backend over both, and every byte is checked.  Then the
# link goes down mid-stream: no reset reaches the sender, which must give up
# on its own timeout.  Over veth, as on loopback, the kernel copies
# zero-copy sends after all; the test checks that it said so.
#
# Needs root and the agent (build/vmdirty, or $VMDIRTY).
set -u
ksft_skip=4
here=$(cd "$(dirname "$0")" && pwd)
agent=${VMDIRTY:-}
for a in "$here/vmdirty" "$here/../../vmdirty"; do
	[ -n "$agent" ] || [ ! -x "$a" ] || agent=$a
done
if [ "$(id -u)" -ne 0 ]; then
	echo "SKIP: needs root for network namespaces"
	exit $ksft_skip
fi
if [ -z "$agent" ]; then
	echo "FAIL: no agent next to the tests or in build/ (set VMDIRTY)"
	exit 1
fi

src=vmdt-src-$$
dst=vmdt-dst-$$
tmp=$(mktemp -d)
cleanup() {
	ip netns del "$src" 2>/dev/null
	ip netns del "$dst" 2>/dev/null
	rm -rf "$tmp"
}
trap cleanup EXIT

if ! ip netns add "$src" 2>"$tmp/err" || ! ip netns add "$dst" 2>>"$tmp/err"; then
	echo "SKIP: ip netns add: $(cat "$tmp/err")"
	exit $ksft_skip
fi
set -e
ip link add vsrc netns "$src" type veth peer name vdst netns "$dst"
ip -n "$src" addr add 10.77.0.1/24 dev vsrc
ip -n "$dst" addr add 10.77.0.2/24 dev vdst
ip -n "$src" addr add fd77::1/64 dev vsrc nodad
ip -n "$dst" addr add fd77::2/64 dev vdst nodad
for ns in "$src" "$dst"; do
	ip -n "$ns" link set lo up
done
ip -n "$src" link set vsrc up
ip -n "$dst" link set vdst up
set +e

addrs="10.77.0.2:7000,[fd77::2]:7000"
rc=0
n=0
echo "TAP version 13"
echo "1..4"

# The JSON's totals: zc_sends zc_completions zc_copied bytes_sent.
zc_counts() {
	python3 -c '
import json, sys
s = json.load(open(sys.argv[1]))["runs"][0]["stats"]
print(s["zc_sends"], s["zc_completions"], s["zc_copied"], s["bytes_sent"])' "$1"
}

for backend in plain zerocopy uring; do
	n=$((n + 1))
	ip netns exec "$dst" "$agent" netbench --listen "$addrs" --channels 4 --verify \
		--timeout-ms 10000 >"$tmp/dst.out" 2>&1 &
	rpid=$!
	ip netns exec "$src" "$agent" netbench --connect "$addrs" --channels 4 \
		--backend "$backend" --mib 32 --msg-kib 128 --verify --timeout-ms 10000 \
		--json "$tmp/src.json" >"$tmp/src.out" 2>&1
	src_rc=$?
	wait $rpid
	dst_rc=$?
	sed 's/^/# /' "$tmp/src.out" "$tmp/dst.out"
	if [ $src_rc -ne 0 ] || [ $dst_rc -ne 0 ]; then
		echo "not ok $n $backend: 4 channels over IPv4 and IPv6 (sender $src_rc, receiver $dst_rc)"
		rc=1
		continue
	fi
	read -r zs zc zcopied sent < <(zc_counts "$tmp/src.json")
	if [ "$sent" -lt $((32 << 20)) ]; then
		echo "not ok $n $backend: only $sent bytes sent"
		rc=1
	elif [ "$backend" != plain ] &&
	     { [ "$zs" -eq 0 ] || [ "$zc" -ne "$zs" ] || [ "$zcopied" -ne "$zc" ]; }; then
		echo "not ok $n $backend: $zs zero-copy sends, $zc completed, $zcopied copied (veth copies all)"
		rc=1
	else
		echo "ok $n $backend: 4 channels over IPv4 and IPv6, $sent bytes checked ($zs zero-copy, $zcopied copied)"
	fi
done

# A peer that vanishes without a word: the link drops every packet.
n=$((n + 1))
ip netns exec "$dst" "$agent" netbench --listen 10.77.0.2:7001 --channels 1 \
	--timeout-ms 1000 >"$tmp/dst.out" 2>&1 &
rpid=$!
start=$(date +%s)
ip netns exec "$src" "$agent" netbench --connect 10.77.0.2:7001 --channels 1 \
	--backend zerocopy --mib 100000 --timeout-ms 1000 >"$tmp/src.out" 2>&1 &
spid=$!
# Cut the link only once the channel is up: under TCG the listener can
# take seconds to start.
for _ in $(seq 300); do
	ip netns exec "$src" ss -Htn state established dst 10.77.0.2:7001 | grep -q . && break
	sleep 0.1
done
start=$(date +%s)
sleep 0.5
ip -n "$dst" link set vdst down
wait $spid
src_rc=$?
wait $rpid
dst_rc=$?
took=$(($(date +%s) - start))
sed 's/^/# /' "$tmp/src.out" "$tmp/dst.out"
if [ $src_rc -eq 0 ] || [ $dst_rc -eq 0 ] || [ $took -gt 30 ] ||
   ! grep -qE "no progress|still pending|timed out" "$tmp/src.out"; then
	echo "not ok $n silent peer: sender $src_rc, receiver $dst_rc after ${took}s"
	rc=1
else
	echo "ok $n silent peer: both sides gave up after ${took}s"
fi
exit $rc
