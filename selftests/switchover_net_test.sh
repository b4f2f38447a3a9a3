#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Faults after the pause: the link between the agents goes down, or netem
# delays it past the timeouts, at each message of the handover (final
# round, state, READY, COMMIT, STARTED).  After each, exactly one copy of
# the guest runs (where the outcome was in doubt, once the link is back and
# the source asked the destination, which kept its answer); it checks
# clean; vmdirty.ko keeps no session; both agents say what happened.
# lib/switchover.sh has the mechanics, Documentation/migration.rst the
# expected outcome of each case.
set -u
. "$(dirname "$0")/lib/migrate.sh"
. "$(dirname "$0")/lib/switchover.sh"

have_netem() {
	modprobe sch_netem 2>/dev/null || [ -d /sys/module/sch_netem ]
}

echo "TAP version 13"
echo "1..10"
sw_dst_t="--timeout 2000 --hold 3 --answer-for 15"
netem=1
have_netem || netem=0

# fault NAME: the link down, or 5 s of delay each way (past every timeout).
fault_on() {
	case $1 in
	*-link-down) link_down ;;
	*-delay) delay_on 5000ms ;;
	esac
}
fault_off() {
	case $1 in
	*-link-down) link_up ;;
	*-delay) delay_off ;;
	esac
}

i=60
for phase in final-round state; do
	for f in link-down delay; do
		name=$phase-$f
		i=$((i + 1))
		sw_why=""
		if [ $f = delay ] && [ $netem -eq 0 ]; then
			skip "$name" "no sch_netem"
			continue
		fi
		if ! sw_start $name $i src src-$phase; then
			notok "$name: agents did not reach the failpoint"; dump $name; continue
		fi
		fault_on $name
		sw_continue
		# No READY in time: the source resumes and tells the destination,
		# which discards (on the message, or on its idle timeout).
		sw_check wait_for 60 src_is running
		fault_off $name
		sw_check wait_for 60 sh -c "! kill -0 $sw_dpid 2>/dev/null"
		sw_check sh -c "! grep -q 'the guest runs here' '$tmp/$name.dstlog'"
		sw_said="no READY in time: the VM resumed on the source, the destination discarded"
		sw_end $name "$sw_why"
	done
done

for f in link-down delay; do
	name=ready-$f
	i=$((i + 1))
	sw_why=""
	if [ $f = delay ] && [ $netem -eq 0 ]; then
		skip "$name" "no sch_netem"
		continue
	fi
	if ! sw_start $name $i dst dst-ready; then
		notok "$name: agents did not reach the failpoint"; dump $name; continue
	fi
	fault_on $name
	sw_continue
	# READY lost or late: the source resumes; the destination's hold ends
	# and it discards, keeping the answer for a source that might ask.
	sw_check wait_for 60 src_is running
	sw_check wait_for 30 grep -q "discarded:" "$tmp/$name.dstlog"
	sw_check sh -c "! grep -q 'the guest runs here' '$tmp/$name.dstlog'"
	fault_off $name
	sw_said="READY lost or late: the VM resumed on the source, the destination's hold ended and it discarded"
	sw_end $name "$sw_why"
done

for f in link-down delay; do
	name=commit-$f
	i=$((i + 1))
	sw_why=""
	if [ $f = delay ] && [ $netem -eq 0 ]; then
		skip "$name" "no sch_netem"
		continue
	fi
	# Stopped with READY in hand, before COMMIT goes out.
	if ! sw_start $name $i src src-ready; then
		notok "$name: agents did not reach the failpoint"; dump $name; continue
	fi
	fault_on $name
	sw_continue
	# COMMIT lost or late: in doubt, nothing runs; the destination's hold
	# ends and it discards; once the link is back the source asks, hears
	# "discarded", and resumes.
	sw_check wait_for 30 src_is in-doubt
	sw_check wait_for 30 grep -q "discarded:" "$tmp/$name.dstlog"
	sw_check not dst_is running
	fault_off $name
	sw_check wait_for 60 src_is running
	sw_check grep -q "says the session is discarded" "$tmp/$name.srclog"
	sw_said="COMMIT lost or late: in doubt, nothing ran; the destination discarded at the end of its hold, and the source resumed on its answer"
	sw_end $name "$sw_why"
done

for f in link-down delay; do
	name=started-$f
	i=$((i + 1))
	sw_why=""
	sw_run_for=20
	if [ $f = delay ] && [ $netem -eq 0 ]; then
		skip "$name" "no sch_netem"
		continue
	fi
	if ! sw_start $name $i dst dst-started; then
		notok "$name: agents did not reach the failpoint"; dump $name; continue
	fi
	fault_on $name
	sw_continue
	# STARTED lost or late: the guest runs there; the source, in doubt,
	# stays paused until the answer (late STARTED, or QUERY: running).
	sw_check wait_for 30 src_is in-doubt
	sw_check dst_is running
	fault_off $name
	sw_check wait_for 60 src_migrated $name
	sw_check dst_is running
	sw_said="STARTED lost or late: in doubt with the guest running there only; resolved to migrated once the source heard back"
	sw_end $name "$sw_why"
done

mig_done
