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

# Before the commit, the destination dies: the source resumes.
dest_dies_source_resumes() {
	kill9 "$sw_dpid"
	sw_continue
	sw_check wait_for 60 src_is running
	sw_check grep -q "resumes here" "$tmp/$1.srclog"
}

# Before READY, the source dies, and the guest with it: the destination
# must not run its partial copy, and discards it.
source_dies_dest_discards() {
	kill9 "$sw_spid"
	sw_check wait_for 60 dst_is gone
	sw_check grep -q '"ok":false' "$tmp/$1.dst"
	sw_check not grep -q "the guest runs here" "$tmp/$1.dstlog"
}

# A verified copy whose source vanished before committing: it holds, runs
# nothing, and the operator's start (the source is known dead) runs it.
source_dies_at_ready() {
	kill9 "$sw_spid"
	sw_continue
	sw_check wait_for 30 grep -q "went silent after READY" "$tmp/$1.dstlog"
	sw_check not grep -q "the guest runs here" "$tmp/$1.dstlog"
	"$agent" migrate "$sw_dctl" start >"$tmp/$1.start" 2>&1
	sw_check grep -q "^ok" "$tmp/$1.start"
	sw_check wait_for 30 dst_is running
}

# After the commit, the destination dies: in doubt, nothing runs; resolve
# cannot reach it; the operator's force-resume runs the source's copy.
dest_dies_in_doubt() {
	kill9 "$sw_dpid"
	sw_check wait_for 60 src_is in-doubt
	sw_check grep -q "IN DOUBT" "$tmp/$1.srclog"
	sw_check not kill -0 "$sw_dpid"
	"$agent" migrate "$sw_sctl" resolve >"$tmp/$1.resolve" 2>&1
	sw_check grep -q "^ok" "$tmp/$1.resolve"
	sleep 2
	sw_check src_is in-doubt
	"$agent" migrate "$sw_sctl" force-resume >"$tmp/$1.force" 2>&1
	sw_check grep -q "^ok" "$tmp/$1.force"
	sw_check wait_for 30 src_is running
}

# After COMMIT went out, the source dies: the destination runs the guest.
source_dies_dest_runs() {
	kill9 "$sw_spid"
	sw_continue
	sw_check wait_for 30 dst_is running
	sw_check grep -q "committed (COMMIT from the source)" "$tmp/$1.dstlog"
}

for phase in final-round state; do
	sw_case $phase-kill-dest src src-$phase dest_dies_source_resumes \
		"destination killed before COMMIT: the VM resumed on the source"
	sw_case $phase-kill-src src src-$phase source_dies_dest_discards \
		"source killed before READY: the guest died with its agent, the destination discarded the partial copy and ran nothing"
done
sw_case ready-kill-dest dst dst-ready dest_dies_source_resumes \
	"destination killed before READY: the VM resumed on the source"
sw_case ready-kill-src dst dst-ready source_dies_at_ready \
	"source killed at READY: nothing ran until 'vmdirty migrate DEST start' ran the held copy there"
sw_case commit-kill-dest dst dst-commit dest_dies_in_doubt \
	"destination killed on COMMIT: in doubt, nothing ran; resolve could not reach it, force-resume ran the source's copy"
sw_run_for=6
sw_case commit-kill-src src src-commit source_dies_dest_runs \
	"source killed after COMMIT: the destination runs the guest"
sw_run_for=3
sw_case started-kill-dest dst dst-started dest_dies_in_doubt \
	"destination killed after resuming: in doubt, nothing ran; force-resume ran the source's copy"
sw_run_for=6
sw_case started-kill-src dst dst-started source_dies_dest_runs \
	"source killed while the destination resumed: the destination runs the guest"

mig_done
