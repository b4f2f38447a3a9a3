# SPDX-License-Identifier: GPL-2.0
#
# Faults after the pause, one at each message of the handover, for
# switchover_kill_test.sh and switchover_net_test.sh.  Sourced after
# lib/migrate.sh.
#
# Each case runs a destination and a source agent in two network namespaces
# joined by a veth pair, stops one of them at a named step with a failpoint
# (VMDIRTY_FAILPOINT, userspace/migrate/failpoint.h: the agent sends itself
# SIGSTOP there), injects the fault while it is stopped (SIGKILL of either
# agent, the link down, or netem delaying it past the timeouts), lets it go
# on, and then checks, from the agents' own control sockets and reports:
#  - exactly one copy of the guest runs (or, only where the outcome is in
#    doubt, none does until the documented command brings exactly one up);
#  - that copy's memory checks clean (the guest's own full check when its
#    agent stops it);
#  - vmdirty.ko has no session left;
#  - both agents said what happened.
# The expected outcome of every case is the table in
# Documentation/migration.rst ("Faults after the pause").

sw_vm="--mem 16 --vcpus 1 --workload random --rate 4"
sw_be=ring
grep -q '^vmdirty ' /proc/modules && sw_be=kmod
# Timeouts short enough for the faults to play out in seconds.
sw_src_t="--timeout 2000 --ready-timeout 4000 --commit-timeout 4000 --resolve-every 500"
sw_dst_t="--timeout 2000 --hold 3 --answer-for 30"

# State of a stopped process: T.
stopped() {
	[ "$(awk '{print $3}' "/proc/$1/stat" 2>/dev/null)" = T ]
}

# The source's state from its control socket: running, migrating, migrated,
# in-doubt; "gone" once the agent exited.
src_state() {
	local st
	st=$("$agent" migrate "$sw_sctl" status 2>/dev/null) || { echo gone; return; }
	sed -n 's/.*"state":"\([a-z-]*\)".*/\1/p' <<<"$st"
}

# The destination's: waiting, ready, holding, running, discarded; "gone".
dst_state() {
	local st
	kill -0 "$sw_dpid" 2>/dev/null || { echo gone; return; }
	st=$("$agent" migrate "$sw_dctl" status 2>/dev/null) || { echo gone; return; }
	sed -n 's/.*"state":"\([a-z-]*\)".*/\1/p' <<<"$st"
}

src_is() { [ "$(src_state)" = "$1" ]; }
# SIGKILL, and reap it quietly.
kill9() { { kill -9 "$1"; wait "$1"; } 2>/dev/null; true; }
not() { ! "$@"; }
# The source's report of the migration request says it migrated.
src_migrated() { grep -q '"outcome":"migrated"' "$tmp/$1.src"; }
dst_is() { [ "$(dst_state)" = "$1" ]; }

# No vmdirty.ko session left (the tracker detached, or its fd closed).
no_session() {
	[ "$sw_be" = kmod ] || return 0
	"$agent" status --json 2>/dev/null | python3 -c '
import json, sys
d = json.load(sys.stdin)
sys.exit(1 if d.get("sessions") else 0)'
}

# Stop the source agent (quit), which runs the guest's memory check if the
# VM ran here; 0 if the check found nothing (or the VM did not run here).
quit_source() {
	"$agent" migrate "$sw_sctl" quit >/dev/null 2>&1
	wait_for 60 sh -c "! kill -0 $sw_spid 2>/dev/null"
	wait "$sw_spid" 2>/dev/null
}

# link_down / link_up / delay_on / delay_off: the veth pair, both ends.
link_down() {
	ip -n "$src_ns" link set "$sw_sif" down
	ip -n "$dst_ns" link set "$sw_dif" down
}
link_up() {
	ip -n "$src_ns" link set "$sw_sif" up
	ip -n "$dst_ns" link set "$sw_dif" up
}
delay_on() {
	ip netns exec "$src_ns" tc qdisc add dev "$sw_sif" root netem delay "$1"
	ip netns exec "$dst_ns" tc qdisc add dev "$sw_dif" root netem delay "$1"
}
delay_off() {
	ip netns exec "$src_ns" tc qdisc del dev "$sw_sif" root 2>/dev/null
	ip netns exec "$dst_ns" tc qdisc del dev "$sw_dif" root 2>/dev/null
}

# sw_start NAME IDX SIDE FAILPOINT: both agents, the failpoint on SIDE (src
# or dst), the migration requested; returns once the stopped agent is
# stopped there.  Sets sw_spid, sw_dpid, sw_mpid, sw_sctl, sw_dctl.
sw_start() {
	local name=$1 idx=$2 side=$3 fp=$4 sfp="" dfp="" stopped_pid

	mig_netns "sw$idx" "$idx" || return 1
	sw_sif=vm${idx}s
	sw_dif=vm${idx}d
	sw_sctl=$tmp/$name.sctl
	sw_dctl=$tmp/$name.dctl
	[ "$side" = src ] && sfp="$fp:stop"
	[ "$side" = dst ] && dfp="$fp:stop"
	# shellcheck disable=SC2086
	VMDIRTY_FAILPOINT=$dfp ip netns exec "$dst_ns" "$agent" dest --json --listen "$dst_ip:4700" \
		--run-for "${sw_run_for:-3}" --control "$sw_dctl" $sw_dst_t \
		>"$tmp/$name.dst" 2>"$tmp/$name.dstlog" &
	sw_dpid=$!
	wait_for 30 grep -q "waiting for a migration" "$tmp/$name.dstlog" || return 1
	# shellcheck disable=SC2086
	VMDIRTY_FAILPOINT=$sfp ip netns exec "$src_ns" "$agent" source --to "$dst_ip:4700" \
		--control "$sw_sctl" $sw_vm --backend $sw_be --quiet $sw_src_t \
		>"$tmp/$name.srclog" 2>&1 &
	sw_spid=$!
	wait_for 30 test -S "$sw_sctl" || return 1
	"$agent" migrate "$sw_sctl" >"$tmp/$name.src" 2>&1 &
	sw_mpid=$!
	stopped_pid=$sw_spid
	[ "$side" = dst ] && stopped_pid=$sw_dpid
	sw_stopped=$stopped_pid
	wait_for 120 stopped "$stopped_pid"
}

# Let the stopped agent go on (if it still lives).
sw_continue() {
	kill -CONT "$sw_stopped" 2>/dev/null
	true
}

# The migration request's report: its "outcome" ("" while it runs).
sw_outcome() {
	json "$tmp/$1.src" '["outcome"]'
}

# sw_end NAME RESULT: clean up a case, check memory and sessions, one KTAP line.
sw_end() {
	local name=$1 why=$2 sbad dbad

	delay_off
	link_up 2>/dev/null
	if src_is in-doubt; then
		"$agent" migrate "$sw_sctl" give-up >/dev/null 2>&1
		why="${why:+$why; }left in doubt"
		quit_source
	elif src_is running; then
		quit_source
	else
		{ kill -9 "$sw_spid"; wait "$sw_spid"; } 2>/dev/null
	fi
	wait_for 60 sh -c "! kill -0 $sw_dpid 2>/dev/null"
	{ kill -9 "$sw_dpid" "$sw_mpid"; wait "$sw_dpid" "$sw_mpid"; } 2>/dev/null
	# Whichever copy ran checks its memory when its agent stops it.
	if grep -q "memory check: [1-9]" "$tmp/$name.srclog" "$tmp/$name.dstlog"; then
		why="${why:+$why; }a memory check found bad pages"
	fi
	if ! no_session; then
		why="${why:+$why; }a vmdirty.ko session is left"
	fi
	ip netns del "$src_ns" 2>/dev/null
	ip netns del "$dst_ns" 2>/dev/null
	if [ -z "$why" ]; then
		ok "$name: $sw_said"
	else
		notok "$name: $why"
		dump "$name"
	fi
}

# sw_case NAME SIDE FAILPOINT BODY SAID: one case.  BODY (a function) acts
# on the stopped agents and folds its checks in with sw_check; SAID is the
# result line when they all hold.
sw_idx=${sw_idx:-40}
sw_case() {
	local name=$1 side=$2 fp=$3 body=$4
	sw_idx=$((sw_idx + 1))
	sw_why=""
	if ! sw_start "$name" "$sw_idx" "$side" "$fp"; then
		notok "$name: agents did not reach the failpoint"
		dump "$name"
		return
	fi
	"$body" "$name"
	sw_said=$5
	sw_end "$name" "$sw_why"
}

# sw_check CMD...: fold a check into the case's verdict.
sw_check() {
	if ! "$@"; then
		sw_why="${sw_why:+$sw_why; }failed: $*"
	fi
}

# One copy: the source's VM runs, the destination's does not.
on_source() {
	src_is running && ! dst_is running
}
# One copy: the destination's runs, the source's is gone or migrated.
on_dest() {
	dst_is running && ! src_is running
}
