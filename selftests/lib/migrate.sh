# SPDX-License-Identifier: GPL-2.0
#
# Helpers for the end-to-end migration tests: run a destination and a
# source agent (on loopback, or in network namespaces joined by veth),
# keep their JSON reports, and judge them.  Sourced, not run.
#
# Every check reads the agents' own reports: the source's page digest (every
# page as it last sent it) must equal the destination's (every page as it
# applied it; checked before READY), the source must say it migrated, the
# guest's operation counter must rise on the destination, and the guest's
# own checks (self-checks while it runs, then a full memory check) must find
# nothing.

ksft_skip=4
here=$(cd "$(dirname "$0")" && pwd)
agent=${VMDIRTY:-}
for a in "$here/vmdirty" "$here/../../vmdirty"; do
	[ -n "$agent" ] || [ ! -x "$a" ] || agent=$a
done
if [ -z "$agent" ]; then
	echo "# no agent next to the tests or in build/ (set VMDIRTY)"
	exit 1
fi
if [ "$(id -u)" -ne 0 ] || [ ! -c /dev/kvm ]; then
	echo "# SKIP: needs root and /dev/kvm"
	exit $ksft_skip
fi

tmp=$(mktemp -d)
n=0
failed=0
netns_made=""
trap 'mig_cleanup' EXIT

# Every agent proves it holds this key (TLS 1.3, every channel encrypted)
# unless a case gives its own --key or --insecure.
if ! "$agent" genkey "$tmp/key" >/dev/null; then
	echo "# vmdirty genkey failed"
	exit 1
fi
export VMDIRTY_KEY=$tmp/key

mig_cleanup() {
	jobs -p | xargs -r kill -9 2>/dev/null
	for ns in $netns_made; do
		ip netns del "$ns" 2>/dev/null
	done
	rm -rf "$tmp"
}

# json FILE EXPR: a field of a report, e.g. json src.json '["guest"]["errors"]'.
json() {
	python3 -c 'import json, sys; d = json.load(open(sys.argv[1])); v = eval("d" + sys.argv[2]); print(str(v).lower() if isinstance(v, bool) else v)' "$1" "$2" 2>/dev/null
}

ok() {
	n=$((n + 1))
	echo "ok $n $*"
}

notok() {
	n=$((n + 1))
	failed=$((failed + 1))
	echo "not ok $n $*"
}

skip() {
	n=$((n + 1))
	echo "ok $n $1 # SKIP $2"
}

# Show a case's logs, prefixed, when it failed.
dump() {
	local f
	for f in "$tmp/$1".*; do
		[ -s "$f" ] || continue
		echo "# --- $(basename "$f")"
		sed 's/^/#   /' "$f" | tail -n 40
	done
}

# Two namespaces joined by a veth pair: $1-src (10.88.$2.1) and $1-dst
# (10.88.$2.2).  Sets src_ns, dst_ns, dst_ip.
mig_netns() {
	src_ns=$1-src-$$
	dst_ns=$1-dst-$$
	dst_ip=10.88.$2.2
	ip netns add "$src_ns" && ip netns add "$dst_ns" || return 1
	netns_made="$netns_made $src_ns $dst_ns"
	ip link add vm$2s netns "$src_ns" type veth peer name vm$2d netns "$dst_ns" || return 1
	ip -n "$src_ns" addr add 10.88.$2.1/24 dev vm$2s
	ip -n "$dst_ns" addr add "$dst_ip"/24 dev vm$2d
	ip -n "$src_ns" link set vm$2s up
	ip -n "$dst_ns" link set vm$2d up
	ip -n "$src_ns" link set lo up
	ip -n "$dst_ns" link set lo up
}

# in_ns NS CMD...: CMD in namespace NS, or here if NS is empty.
in_ns() {
	local ns=$1
	shift
	if [ -n "$ns" ]; then
		ip netns exec "$ns" "$@"
	else
		"$@"
	fi
}

# wait_for SECONDS CMD...: poll CMD every 0.2 s.
wait_for() {
	local i n=$(($1 * 5))
	shift
	for i in $(seq "$n"); do
		"$@" && return 0
		sleep 0.2
	done
	return 1
}

# start_dest NAME NS ARGS...: a destination in the background, its report
# in $tmp/NAME.dst, its log in $tmp/NAME.dstlog.  Returns once it listens.
start_dest() {
	local name=$1 ns=$2 i
	local cmd=("$agent" dest --json --run-for 1)
	shift 2
	# Not through a function: $! must be the agent itself (ip netns exec
	# execs it), so that a test can kill it.
	[ -z "$ns" ] || cmd=(ip netns exec "$ns" "${cmd[@]}")
	"${cmd[@]}" "$@" >"$tmp/$name.dst" 2>"$tmp/$name.dstlog" &
	dest_pid=$!
	for i in $(seq 300); do
		grep -q "waiting for a migration" "$tmp/$name.dstlog" && return 0
		kill -0 $dest_pid 2>/dev/null || return 1
		sleep 0.1
	done
	return 1
}

wait_dest() {
	wait "$dest_pid"
	dest_rc=$?
}

# run_source NAME NS ARGS...: a source in the foreground, report in
# $tmp/NAME.src.  After a failed migration it keeps the VM a second (--stay
# 1, unless ARGS say otherwise) and checks the guest's memory.
run_source() {
	local name=$1 ns=$2 stay="--stay 1"
	shift 2
	[[ " $* " == *" --stay "* ]] && stay=""
	# shellcheck disable=SC2086
	in_ns "$ns" timeout 600 "$agent" source --json --quiet $stay "$@" >"$tmp/$name.src" \
		2>"$tmp/$name.srclog"
	src_rc=$?
}

# The verdict on a migration that should have worked, from both reports.
# Prints nothing and returns 0, or says why not.
judge_migrated() {
	local name=$1 s=$tmp/$1.src d=$tmp/$1.dst
	local sh dh start end why

	[ "$src_rc" -eq 0 ] || { echo "source exit $src_rc: $(json "$s" '["error"]')"; return 1; }
	[ "$dest_rc" -eq 0 ] || { echo "destination exit $dest_rc: $(json "$d" '["error"]')"; return 1; }
	[ "$(json "$s" '["outcome"]')" = migrated ] ||
		{ echo "source says $(json "$s" '["outcome"]')"; return 1; }
	sh=$(json "$s" '["digest"]')
	dh=$(json "$d" '["digest"]')
	[ -n "$sh" ] && [ "$sh" != 0000000000000000 ] && [ "$sh" = "$dh" ] ||
		{ echo "page digest at the source $sh, on the destination $dh"; return 1; }
	start=$(json "$d" '["guest"]["ops_start"]')
	end=$(json "$d" '["guest"]["ops_end"]')
	[ "$end" -gt "$start" ] 2>/dev/null ||
		{ echo "guest did not progress on the destination ($start -> $end)"; return 1; }
	[ "$(json "$d" '["guest"]["errors"]')" = 0 ] || { echo "guest self-check errors"; return 1; }
	[ "$(json "$d" '["guest"]["bad_pages"]')" = 0 ] || { echo "guest memory check failed"; return 1; }
	# The source's time accounts for itself: its setup is its parts, and its
	# total (to STARTED) holds setup, pre-copy and the pause; the harvest,
	# state, apply and commit parts hold their splits, the probe's reads its save (catches
	# a part timed outside its window, a total that stops before the resume,
	# a split the destination measured but the source did not keep).
	why=$(python3 - "$s" "$d" <<'PY'
import json, os, sys, time
r = json.load(open(sys.argv[1]))
dr = json.load(open(sys.argv[2]))
ap = r['apply_parts']
dp = dr['apply_parts']
sv = r['state_parts']['save_ms']
pp = r['probe_parts']
if abs(ap['wait_ms'] + ap['check_ms'] + ap['restore_ms'] - r['downtime_parts']['apply_ms']) > 0.01 \
        or ap['restore_ms'] <= 0 or ap != dp:
    print('apply %.3f ms, its parts %s here, %s there' % (r['downtime_parts']['apply_ms'], ap, dp))
elif not 0 < r['harvest_parts']['pause_ms'] + r['harvest_parts']['collect_ms'] <= \
        r['downtime_parts']['harvest_ms'] + 0.002:
    print('pause and final harvest %.3f ms, its parts %s' % (r['downtime_parts']['harvest_ms'],
                                                          r['harvest_parts']))
elif abs(sum(r['commit_parts'].values()) - r['downtime_parts']['commit_ms']) > 0.01 \
        or r['commit_parts']['decide_ms'] <= 0:
    print('commit %.3f ms, its parts %s' % (r['downtime_parts']['commit_ms'], r['commit_parts']))
elif not 0 < sv <= r['downtime_parts']['state_ms']:
    print('state %.3f ms, of it saving %.3f' % (r['downtime_parts']['state_ms'], sv))
elif not 0 < pp['reads_ms'] <= pp['save_ms']:
    print('switch probe: save %.3f ms, of it reads %.3f' % (pp['save_ms'], pp['reads_ms']))
p = r['setup_parts']
parts = p['connect_ms'] + p['hash_speed_ms'] + p['track_start_ms']
# Time zero on CLOCK_MONOTONIC, this test's clock: its total (and the
# source's teardown) ends just before the report was written, when the file
# changed last (the destination's runs the guest --run-for seconds more).
mono = time.monotonic() - time.time()
ends = [(x['clock_start_ns'] / 1e9 + (x['total_ms'] + x.get('teardown_ms', 0)) / 1e3,
         os.path.getmtime(f) + mono, slack) for x, f, slack in ((r, sys.argv[1], 10), (dr, sys.argv[2], 120))]
if not all(w - slack < e <= w + 0.05 for e, w, slack in ends):
    print('time zero: the totals end at %s s, the reports were written at %s s (CLOCK_MONOTONIC)' % (
        ['%.3f' % e for e, _, _ in ends], ['%.3f' % w for _, w, _ in ends]))
elif abs(parts - r['setup_ms']) > 1:
    print('setup %.1f ms, its parts %.1f' % (r['setup_ms'], parts))
elif r['total_ms'] + 1 < r['setup_ms'] + r['precopy_ms'] + r['downtime_ms']:
    print('total %.1f ms < setup %.1f + pre-copy %.1f + downtime %.1f' % (
        r['total_ms'], r['setup_ms'], r['precopy_ms'], r['downtime_ms']))
elif r['teardown_ms'] <= 0:
    print('no teardown time after STARTED')
elif not 0 < r['probe_ms'] <= r['probe_wall_ms'] <= r['precopy_ms'] - r['rounds'][0]['ms']:
    print('switch probe: stall %.1f ms, %.1f ms in all, not in pre-copy after round 0' % (
        r['probe_ms'], r['probe_wall_ms']))
PY
) && [ -z "$why" ] || { echo "report times: ${why:-unreadable}"; return 1; }
	# Encrypted unless the case asked for --insecure (and was warned).
	if [ "$(json "$s" '["encryption"]')" = none ] || [ "$(json "$d" '["encryption"]')" = none ]; then
		grep -q "WARNING: --insecure" "$tmp/$1.srclog" ||
			{ echo "no encryption, and no --insecure"; return 1; }
	fi
	return 0
}

# migrated NAME: 0 if NAME migrated as it should (judge_migrated); else one
# "not ok" with the reason, and NAME's logs.
migrated() {
	local why

	why=$(judge_migrated "$1") && return 0
	notok "$1: $why"
	dump "$1"
	return 1
}

# mig_case NAME NS_SRC NS_DST DEST_ADDR "DEST ARGS" SOURCE ARGS...: one
# migration expected to succeed; one KTAP result.
mig_case() {
	local name=$1 sns=$2 dns=$3 addr=$4 dargs=$5
	shift 5
	# shellcheck disable=SC2086
	if ! start_dest "$name" "$dns" --listen "$addr" $dargs; then
		notok "$name: destination did not start"
		dump "$name"
		return
	fi
	run_source "$name" "$sns" --to "$addr" "$@"
	wait_dest
	migrated "$name" &&
		ok "$name: encryption $(json "$tmp/$name.src" '["encryption"]'), $(json "$tmp/$name.src" '["rounds"].__len__()') rounds, downtime $(json "$tmp/$name.src" '["downtime_ms"]') ms, digest $(json "$tmp/$name.src" '["digest"]') equal, guest $(json "$tmp/$name.dst" '["guest"]["ops_start"]') -> $(json "$tmp/$name.dst" '["guest"]["ops_end"]') ops"
}

# vms PID: the KVM VMs process PID holds (its anon_inode:kvm-vm descriptors).
vms() {
	local n
	n=$(ls -l "/proc/$1/fd" 2>/dev/null | grep -c 'anon_inode:kvm-vm')
	echo "${n:-0}"
}

# The VM must still run on the source after a failed migration: the source
# says so on its log with the guest's progress during its --stay.
source_kept_running() {
	local ops
	ops=$(sed -n 's/.*keeps running here: \([0-9]*\) guest operations.*/\1/p' "$tmp/$1.srclog")
	[ -n "$ops" ] && [ "$ops" -gt 0 ]
}

mig_done() {
	echo "# $failed of $n failed"
	[ "$failed" -eq 0 ]
}
