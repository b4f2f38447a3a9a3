#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# What `make bench` runs: boot the test host (selftests/vm/testhost.sh), load
# kvm_amd (nested=1) and the freshly built vmdirty.ko, run every benchmark
# section, unload the module.  The whole output is also kept in
# build/bench-results/bench-<time>.txt.
#
# usage: bench.sh [-k KVER] [-q] [-p PASSES] [-r RINGS] [-t SECONDS] [-s SECTION]...
#   -q          quick mode (smaller guests, fewer points and repetitions);
#               also BENCH_QUICK=1 in the environment
#   -p PASSES   the QEMU comparison migrates every row this many times at
#               each rate and shows each row's median (default 3, quick 1:
#               one pass is about 25 minutes)
#   -s SECTION  run only these sections (default: all, in the order below),
#               e.g. -s qemu: only QEMU against vmdirty (scripts/bench_qemu.py)
#   -r RINGS    the harvest section's ring sizes, comma-separated (default
#               65536,4096: each a run of its own, about 45 and 25 minutes)
#   -t SECONDS  test-host timeout (default 14400, quick 4500, and 2700 more
#               for each pass after the first: the QEMU comparison migrates
#               a 512 MiB guest 30 times a pass, and the harvest section
#               runs at two ring sizes)
#
# Adding a benchmark: write a function bench_<name> (it runs from the top of
# the tree, with $quick set to 1 or empty) and add <name> to HOST_SECTIONS
# (runs here, natively) or SECTIONS (runs inside the test host).  A failing
# section is reported and the others still run.
set -u

# Sections run on this machine first (no KVM needed, native speed), then
# those that need KVM and the module, inside the test host.
HOST_SECTIONS=(codec net)
SECTIONS=(harvest nettls migrate profile qemu)

# The page codecs per core on the guest workloads' own content (native).
bench_codec() {
	build/userspace/bench/guest_codec_bench ${quick:+--mib 32 --secs 0.3}
}

# Plain send against MSG_ZEROCOPY and io_uring send_zc, 1 and 4 channels,
# loopback (native).  On loopback the kernel copies zero-copy sends anyway.
# Each also with TLS 1.3 (--crypto): records by the kernel (kTLS; this
# machine's kernel may have none, then the row says so) and by GnuTLS, each
# against the unencrypted run of the same backend and channels.
bench_net() {
	build/vmdirty netbench ${quick:+--mib 256} --crypto none,ktls,gnutls
}

# The kernel's TLS where it surely is: the test host's stock kernel (its
# tls module).  TCG emulates AES-NI and PCLMUL, so encryption costs far more
# there against a copy than on hardware: the native rows above are the
# better guide for GnuTLS; these show kTLS against GnuTLS in one kernel.
bench_nettls() {
	ip link set lo up
	build/vmdirty netbench --mib ${quick:+64}${quick:-256} --backend plain,zerocopy \
		--channels 1,4 --crypto none,ktls,gnutls
}

# Harvest plus reset per pre-copy round: bitmap, the ring reaper as QEMU
# does it and sorted as the module does, vmdirty.ko.  Twice, every mode with
# the same ring each time: KVM's largest (what the agent gives vmdirty.ko,
# and where ordering a batch pays most), then QEMU's usual 4096 entries at
# the large dirty sets the README compares.
bench_harvest() {
	local rc=0 ring
	for ring in ${harvest_rings//,/ }; do
		if [ "$ring" = 65536 ]; then
			build/userspace/bench/harvest_bench --verbose --ring 65536 \
				${quick:+--quick} || rc=1
		elif [ -n "$quick" ]; then
			build/userspace/bench/harvest_bench --verbose --ring "$ring" --quick \
				--vcpus 1 || rc=1
		else
			build/userspace/bench/harvest_bench --verbose --ring "$ring" --vcpus 1 \
				--sizes 16384,65536,262144 || rc=1
		fi
	done
	return $rc
}

# Whole migrations per codec, channel count and transport, per workload,
# against raw over one plain channel in the same run.
bench_migrate() {
	python3 scripts/bench_migrate.py ${quick:+--quick}
}

# One migration of the QEMU comparison's profile, sampled with perf: where
# the time goes, per round and per symbol.
bench_profile() {
	scripts/profile_migration.sh ring
}

# QEMU's own migration against vmdirty's, one guest file, three dirty rates
# (Documentation/guest.rst; the table also goes to build/bench-results/).
bench_qemu() {
	python3 scripts/bench_qemu.py ${quick:+--quick} --passes "$passes"
}

run_section() {
	local s=$1 start
	echo
	echo "=== $s"
	start=$(date +%s)
	if ! "bench_$s"; then
		echo "=== $s: FAILED"
		return 1
	fi
	echo "=== $s: $(($(date +%s) - start)) s"
}

top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top" || exit 2

if [ "${1:-}" = "--inside" ]; then
	shift
	quick=""
	[ "${1:-}" = "-q" ] && { quick=1; shift; }
	passes=1
	[ "${1:-}" = "-p" ] && { passes=$2; shift 2; }
	harvest_rings=65536,4096
	[ "${1:-}" = "-r" ] && { harvest_rings=$2; shift 2; }
	echo "# bench: Linux $(uname -r), $(nproc) CPUs, $(awk '/MemTotal/ {print int($2/1024)}' /proc/meminfo) MiB${quick:+, quick mode}"
	if ! modprobe kvm_amd nested=1 || [ ! -c /dev/kvm ]; then
		echo "bench: kvm_amd did not load, no /dev/kvm" >&2
		exit 1
	fi
	if insmod kmod/vmdirty.ko && [ -c /dev/vmdirty ]; then
		echo "# bench: vmdirty.ko loaded"
	else
		echo "# bench: vmdirty.ko did not load; the kmod rows will say so"
	fi
	rc=0
	for s in "$@"; do
		run_section "$s" || rc=1
	done
	if grep -q '^vmdirty ' /proc/modules && ! rmmod vmdirty; then
		echo "bench: rmmod vmdirty failed" >&2
		rc=1
	fi
	exit $rc
fi

kver=""
quick=${BENCH_QUICK:-}
[ "$quick" = 0 ] && quick=""
timeout=""
rings=""
passes=""
sel=()
while getopts "k:qp:r:t:s:h" opt; do
	case $opt in
	k) kver=$OPTARG ;;
	q) quick=1 ;;
	p) [[ $OPTARG =~ ^[1-9][0-9]*$ ]] || { echo "bench: bad -p '$OPTARG'" >&2; exit 2; }
	   passes=$OPTARG ;;
	r) [[ $OPTARG =~ ^[0-9]+(,[0-9]+)*$ ]] || { echo "bench: bad -r '$OPTARG'" >&2; exit 2; }
	   rings=$OPTARG ;;
	t) timeout=$OPTARG ;;
	s) sel+=("$OPTARG") ;;
	*) sed -n '3,27p' "$0" | sed 's/^# \{0,1\}//'; exit 2 ;;
	esac
done
[ ${#sel[@]} -gt 0 ] || sel=("${HOST_SECTIONS[@]}" "${SECTIONS[@]}")
here_sel=()
vm_sel=()
for s in "${sel[@]}"; do
	declare -F "bench_$s" >/dev/null ||
		{ echo "bench: no section '$s' (have: ${HOST_SECTIONS[*]} ${SECTIONS[*]})" >&2; exit 2; }
	if [[ " ${HOST_SECTIONS[*]} " == *" $s "* ]]; then
		here_sel+=("$s")
	else
		vm_sel+=("$s")
	fi
done
[ -n "$kver" ] || kver=$(scripts/kver.sh) || exit 2
[ -n "$passes" ] || passes=$([ -n "$quick" ] && echo 1 || echo 3)
if [ -z "$timeout" ]; then
	timeout=14400
	[ -z "$quick" ] || timeout=4500
	timeout=$((timeout + (passes - 1) * 2700))
fi

mkdir -p build/bench-results
out=build/bench-results/bench-$(date +%Y%m%d-%H%M%S).txt
rc=0
: >"$out"
if [ ${#here_sel[@]} -gt 0 ]; then
	echo "# bench: on this machine: $(uname -r), $(nproc) CPUs" | tee -a "$out"
	for s in "${here_sel[@]}"; do
		run_section "$s" 2>&1 | tee -a "$out"
		[ "${PIPESTATUS[0]}" -eq 0 ] || rc=1
	done
fi
if [ ${#vm_sel[@]} -gt 0 ]; then
	selftests/vm/testhost.sh -k "$kver" -t "$timeout" -- \
		scripts/bench.sh --inside ${quick:+-q} -p "$passes" ${rings:+-r "$rings"} "${vm_sel[@]}" |
		tee -a "$out"
	[ "${PIPESTATUS[0]}" -eq 0 ] || rc=1
fi
# The QEMU comparison's table and JSON, apart (the guest's files do not outlive it).
if grep -q '^=== qemu-vs-vmdirty table begin' "$out"; then
	base=${out%.txt}
	sed -n '/^=== qemu-vs-vmdirty table begin/,/^=== qemu-vs-vmdirty table end/p' "$out" |
		sed '1d;$d' >"$base-qemu.txt"
	sed -n 's/^=== qemu-vs-vmdirty json //p' "$out" >"$base-qemu.json"
	echo "bench: QEMU against vmdirty in $base-qemu.txt and $base-qemu.json"
fi
echo "bench: results in $out (status $rc)"
exit "$rc"
