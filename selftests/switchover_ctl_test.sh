#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# The operator's controls over a migration: cancel over the control socket
# in pre-copy and in the switchover (the VM keeps running on the source),
# and after the commit (refused: "too late"); SIGINT and SIGTERM likewise;
# a failed migration keeps the VM until a signal (not one second); and the
# exit status of each outcome (0 migrated, 1 not migrated, 3 in doubt).
set -u
. "$(dirname "$0")/lib/migrate.sh"
. "$(dirname "$0")/lib/switchover.sh"

echo "TAP version 13"
echo "1..7"

# A slow link: pre-copy lasts seconds, time enough to act in it.
slow="--bandwidth 1"

# phase_is PHASE: the source's status says that phase.
phase_is() {
	"$agent" migrate "$sw_sctl" status 2>/dev/null | grep -q "\"phase\":\"$1\""
}

# field_ms NAME EXPR OP MS: the source's report's field EXPR (json(), ms)
# against MS by awk's OP; written down for the test's line.
field_ms() {
	local v
	v=$(json "$tmp/$1.src" "$2")
	echo "$2 $v ms" >>"$tmp/$1.src.checks"
	[ -n "$v" ] && awk -v v="$v" -v m="$4" "BEGIN { exit !(v $3 m) }"
}

# sw_begin NAME IDX "SOURCE FAILPOINT" "DEST FAILPOINT" SOURCE-ARGS...:
# both agents in namespaces, the migration requested in the background.
sw_begin() {
	local name=$1 idx=$2 sfp=$3 dfp=$4
	shift 4
	mig_netns "sc$idx" "$idx" || return 1
	sw_sif=vm${idx}s
	sw_dif=vm${idx}d
	sw_sctl=$tmp/$name.sctl
	sw_dctl=$tmp/$name.dctl
	# shellcheck disable=SC2086
	VMDIRTY_FAILPOINT=$dfp ip netns exec "$dst_ns" "$agent" dest --json --listen "$dst_ip:4800" \
		--run-for 2 --control "$sw_dctl" $sw_dst_t >"$tmp/$name.dst" 2>"$tmp/$name.dstlog" &
	sw_dpid=$!
	wait_for 30 grep -q "waiting for a migration" "$tmp/$name.dstlog" || return 1
	# shellcheck disable=SC2086
	VMDIRTY_FAILPOINT=$sfp ip netns exec "$src_ns" "$agent" source --to "$dst_ip:4800" \
		--control "$sw_sctl" $sw_vm --backend $sw_be --quiet $sw_src_t "$@" \
		>"$tmp/$name.srclog" 2>&1 &
	sw_spid=$!
	wait_for 30 test -S "$sw_sctl" || return 1
	"$agent" migrate "$sw_sctl" >"$tmp/$name.src" 2>&1 &
	sw_mpid=$!
}

name=cancel-pre-copy
sw_why=""
if sw_begin $name 71 "" "" $slow; then
	sw_check wait_for 30 phase_is pre-copy
	"$agent" migrate "$sw_sctl" cancel >"$tmp/$name.cancel" 2>&1
	sw_check grep -q "^ok: cancelling" "$tmp/$name.cancel"
	sw_check wait_for 30 grep -q '"outcome":"not-migrated"' "$tmp/$name.src"
	sw_check grep -q "cancelled by the operator" "$tmp/$name.src"
	sw_check wait_for 10 src_is running
	sw_check wait_for 30 grep -q "the source gave up" "$tmp/$name.dst"
	sw_said="'cancel' in pre-copy: the VM keeps running on the source, the destination was told"
	sw_end $name "$sw_why"
else
	notok "$name: agents did not start"; dump $name
fi

name=cancel-switching
sw_why=""
if sw_begin $name 72 "src-state:sleep=3000" ""; then
	sw_check wait_for 60 grep -q "failpoint src-state" "$tmp/$name.srclog"
	sw_check phase_is switching
	"$agent" migrate "$sw_sctl" cancel >"$tmp/$name.cancel" 2>&1
	sw_check grep -q "^ok: cancelling" "$tmp/$name.cancel"
	sw_check wait_for 30 grep -q '"outcome":"not-migrated"' "$tmp/$name.src"
	sw_check wait_for 10 src_is running
	sw_check wait_for 30 not dst_is running
	sw_check not grep -q "the guest runs here" "$tmp/$name.dstlog"
	sw_said="'cancel' with the vCPUs paused, before the commit: the VM resumed on the source, the destination discarded"
	sw_end $name "$sw_why"
else
	notok "$name: agents did not start"; dump $name
fi

name=cancel-too-late
sw_why=""
# The destination's thread held 1.2 s once the guest runs there, and 1.5 s
# more before STARTED (2.7 s in all, under the source's 4 s commit
# timeout): neither is downtime.
if sw_begin $name 73 "" "dst-resumed:sleep=1200,dst-started:sleep=1500"; then
	sw_check wait_for 60 grep -q "failpoint dst-resumed" "$tmp/$name.dstlog"
	"$agent" migrate "$sw_sctl" cancel >"$tmp/$name.cancel" 2>&1
	sw_check grep -q "^error: too late" "$tmp/$name.cancel"
	sw_check wait_for 30 grep -q '"outcome":"migrated"' "$tmp/$name.src"
	sw_check wait_for 30 grep -q '"ok":true' "$tmp/$name.dst"
	sw_check field_ms $name '["downtime_parts"]["resume_ms"]' '<' 1000
	sw_check field_ms $name '["commit_parts"]["owd_ms"]' '<' 1000
	sw_check field_ms $name '["commit_hold_ms"]' '>=' 2700
	sw_said="'cancel' after the commit: refused as too late, the migration completed (STARTED 2.7 s late; $(tr '\n' ' ' <"$tmp/$name.src.checks" 2>/dev/null))"
	sw_end $name "$sw_why"
else
	notok "$name: agents did not start"; dump $name
fi

name=sigint-pre-copy
sw_why=""
if sw_begin $name 74 "" "" $slow; then
	sw_check wait_for 30 phase_is pre-copy
	kill -INT "$sw_spid"
	sw_check wait_for 30 grep -q '"outcome":"not-migrated"' "$tmp/$name.src"
	sw_check grep -q "cancelled by SIGINT" "$tmp/$name.src"
	sw_check wait_for 10 src_is running
	# Outside a migration, SIGTERM stops the agent: memory check, exit 1.
	kill -TERM "$sw_spid"
	wait "$sw_spid"
	rc=$?
	sw_check test $rc -eq 1
	sw_check grep -q "memory check: 0 bad pages" "$tmp/$name.srclog"
	sw_said="SIGINT in pre-copy cancelled it (the VM kept running), SIGTERM then stopped the agent: exit 1, memory clean"
	sw_end $name "$sw_why"
else
	notok "$name: agents did not start"; dump $name
fi

name=sigterm-too-late
sw_why=""
if sw_begin $name 75 "" "dst-started:sleep=3000"; then
	sw_check wait_for 60 grep -q "failpoint dst-started" "$tmp/$name.dstlog"
	kill -TERM "$sw_spid"
	sw_check wait_for 10 grep -q "a signal cannot undo it" "$tmp/$name.srclog"
	sw_check wait_for 30 grep -q '"outcome":"migrated"' "$tmp/$name.src"
	wait "$sw_spid"
	rc=$?
	sw_check test $rc -eq 0
	sw_said="SIGTERM after the commit: refused, the migration completed, exit 0"
	sw_end $name "$sw_why"
else
	notok "$name: agents did not start"; dump $name
fi

# Nobody listens: the migration fails, and the VM stays until a signal.
name=stay-until-signal
# Not through in_ns: $! must be the agent itself.
# shellcheck disable=SC2086
"$agent" source --to 127.0.0.1:4899 --after 0.3 $sw_vm --backend $sw_be --quiet \
	--timeout 500 >"$tmp/$name.srclog" 2>&1 &
spid=$!
sw_why=""
sw_check wait_for 60 grep -q "runs on here, until SIGINT or SIGTERM" "$tmp/$name.srclog"
sleep 3
sw_check kill -0 $spid
kill -TERM $spid
wait $spid
rc=$?
sw_check test $rc -eq 1
sw_check grep -q "keeps running here: [1-9]" "$tmp/$name.srclog"
sw_check grep -q "memory check: 0 bad pages" "$tmp/$name.srclog"
if [ -z "$sw_why" ]; then
	ok "$name: the VM kept running on the source until SIGTERM, exit 1, memory clean"
else
	notok "$name: $sw_why"; dump $name
fi

# In doubt, the operator stops asking: the agent exits 3, nothing ran.
name=give-up-exit-3
sw_why=""
if sw_begin $name 76 "" "dst-commit:stop"; then
	sw_stopped=$sw_dpid
	sw_check wait_for 60 stopped "$sw_dpid"
	kill9 "$sw_dpid"
	sw_check wait_for 60 src_is in-doubt
	"$agent" migrate "$sw_sctl" give-up >"$tmp/$name.giveup" 2>&1
	sw_check grep -q "^ok" "$tmp/$name.giveup"
	wait "$sw_spid"
	rc=$?
	sw_check test $rc -eq 3
	sw_check grep -q '"outcome":"in-doubt"' "$tmp/$name.src"
	sw_said="in doubt, 'give-up': the agent exited 3 with the VM paused, nothing ran"
	sw_end $name "$sw_why"
else
	notok "$name: agents did not start"; dump $name
fi

mig_done
