#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Faults after the pause: one agent killed (SIGKILL) at each message of the
# handover (final round, state, READY, COMMIT, STARTED).  After each, exactly
# one copy of the guest runs, or, where the outcome is in doubt, none does
# until the operator's documented command brings exactly one up; the copy
# that runs checks clean; vmdirty.ko keeps no session; both agents say what
# happened.  lib/switchover.sh has the mechanics, Documentation/migration.rst
# the expected outcome of each case.
set -u
. "$(dirname "$0")/lib/migrate.sh"
. "$(dirname "$0")/lib/switchover.sh"

echo "TAP version 13"
echo "1..10"

i=40
for phase in final-round state; do
	# The source stopped with the vCPUs paused, before the message goes out.
	name=$phase-kill-dest
	i=$((i + 1))
	sw_why=""
	if ! sw_start $name $i src src-$phase; then
		notok "$name: agents did not reach the failpoint"; dump $name; continue
	fi
	kill9 "$sw_dpid"
	sw_continue
	sw_check wait_for 60 src_is running
	sw_check grep -q "resumes here" "$tmp/$name.srclog"
	sw_said="destination killed before COMMIT: the VM resumed on the source"
	sw_end $name "$sw_why"

	name=$phase-kill-src
	i=$((i + 1))
	sw_why=""
	if ! sw_start $name $i src src-$phase; then
		notok "$name: agents did not reach the failpoint"; dump $name; continue
	fi
	kill9 "$sw_spid"
	# The guest lived in the killed agent: the destination must not run its
	# partial copy, and discards it.
	sw_check wait_for 60 dst_is gone
	sw_check grep -q '"ok":false' "$tmp/$name.dst"
	sw_check sh -c "! grep -q 'the guest runs here' '$tmp/$name.dstlog'"
	sw_said="source killed before READY: the guest died with its agent, the destination discarded the partial copy and ran nothing"
	sw_end $name "$sw_why"
done

# READY: the destination stopped with everything loaded, before it says so.
name=ready-kill-dest
i=$((i + 1))
sw_why=""
if sw_start $name $i dst dst-ready; then
	kill9 "$sw_dpid"
	sw_check wait_for 60 src_is running
	sw_said="destination killed before READY: the VM resumed on the source"
	sw_end $name "$sw_why"
else
	notok "$name: agents did not reach the failpoint"; dump $name
fi

name=ready-kill-src
i=$((i + 1))
sw_why=""
if sw_start $name $i dst dst-ready; then
	kill9 "$sw_spid"
	sw_continue
	# A verified copy whose source vanished before committing: it holds,
	# runs nothing, and the operator's start (the source is known dead)
	# brings exactly one up.
	sw_check wait_for 30 sh -c "[ \"\$(awk '{print \$3}' /proc/$sw_dpid/stat)\" != T ]"
	sw_check wait_for 30 grep -q "went silent after READY" "$tmp/$name.dstlog"
	sw_check sh -c "! grep -q 'the guest runs here' '$tmp/$name.dstlog'"
	"$agent" migrate "$sw_dctl" start >"$tmp/$name.start" 2>&1
	sw_check grep -q "^ok" "$tmp/$name.start"
	sw_check wait_for 30 dst_is running
	sw_said="source killed at READY: nothing ran until 'vmdirty migrate DEST start' ran the held copy there"
	sw_end $name "$sw_why"
else
	notok "$name: agents did not reach the failpoint"; dump $name
fi

# COMMIT: the destination got it and stopped before acting on it.
name=commit-kill-dest
i=$((i + 1))
sw_why=""
if sw_start $name $i dst dst-commit; then
	kill9 "$sw_dpid"
	sw_check wait_for 60 src_is in-doubt
	sw_check grep -q "IN DOUBT" "$tmp/$name.srclog"
	# Nothing runs: the source is paused, the destination is gone.
	sw_check sh -c "! kill -0 $sw_dpid 2>/dev/null"
	"$agent" migrate "$sw_sctl" resolve >"$tmp/$name.resolve" 2>&1
	sw_check grep -q "^ok" "$tmp/$name.resolve"
	sleep 2
	sw_check src_is in-doubt
	"$agent" migrate "$sw_sctl" force-resume >"$tmp/$name.force" 2>&1
	sw_check grep -q "^ok" "$tmp/$name.force"
	sw_check wait_for 30 src_is running
	sw_said="destination killed on COMMIT: in doubt, nothing ran; resolve could not reach it, force-resume ran the source's copy"
	sw_end $name "$sw_why"
else
	notok "$name: agents did not reach the failpoint"; dump $name
fi

# COMMIT sent: the source killed right after it.
name=commit-kill-src
i=$((i + 1))
sw_why=""
sw_run_for=6
if sw_start $name $i src src-commit; then
	kill9 "$sw_spid"
	sw_check wait_for 30 dst_is running
	sw_check grep -q "committed (COMMIT from the source)" "$tmp/$name.dstlog"
	sw_said="source killed after COMMIT: the destination runs the guest"
	sw_end $name "$sw_why"
else
	notok "$name: agents did not reach the failpoint"; dump $name
fi

# STARTED: the guest runs on the destination, which stops before saying so.
name=started-kill-dest
i=$((i + 1))
sw_why=""
sw_run_for=3
if sw_start $name $i dst dst-started; then
	kill9 "$sw_dpid"
	sw_check wait_for 60 src_is in-doubt
	sw_check sh -c "! kill -0 $sw_dpid 2>/dev/null"
	"$agent" migrate "$sw_sctl" force-resume >"$tmp/$name.force" 2>&1
	sw_check grep -q "^ok" "$tmp/$name.force"
	sw_check wait_for 30 src_is running
	sw_said="destination killed after resuming: in doubt, nothing ran; force-resume ran the source's copy"
	sw_end $name "$sw_why"
else
	notok "$name: agents did not reach the failpoint"; dump $name
fi

name=started-kill-src
i=$((i + 1))
sw_why=""
sw_run_for=6
if sw_start $name $i dst dst-started; then
	kill9 "$sw_spid"
	sw_continue
	sw_check wait_for 30 dst_is running
	sw_said="source killed while the destination resumed: the destination runs the guest"
	sw_end $name "$sw_why"
else
	notok "$name: agents did not reach the failpoint"; dump $name
fi

mig_done
