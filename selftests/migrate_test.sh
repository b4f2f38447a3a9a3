#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Live migration end to end, agent to agent: every dirty-tracking backend
# over loopback and over a veth pair between two network namespaces; a
# guest that dirties faster than the link carries (auto-converge, or a
# clean cancel); and every way it can fail before the source commits
# (destination killed, layout refused, nobody listening, garbage on the
# wire), each leaving the VM running on the source, and a destination that
# turned a source away still taking the right one.  Every agent holds the
# suite's key (lib/migrate.sh): each migration here is TLS 1.3.  The faults after the
# pause, at each message of the handover, are switchover_test.sh's.
set -u
. "$(dirname "$0")/lib/migrate.sh"

# Small guests: nested KVM under TCG is slow.  The random writer at 5 MB/s
# dirties a few thousand pages a second here.
vm="--mem 16 --vcpus 2 --workload random --rate 5"
kmod_ok=1
if ! grep -q '^vmdirty ' /proc/modules; then
	kmod_ok=0
fi

echo "TAP version 13"
echo "1..27"

port=4500
for be in bitmap ring kmod; do
	port=$((port + 1))
	if [ $be = kmod ] && [ $kmod_ok -eq 0 ]; then
		skip "loopback, $be" "vmdirty.ko is not loaded"
		continue
	fi
	# shellcheck disable=SC2086
	mig_case "loopback-$be" "" "" 127.0.0.1:$port "" --after 0.5 $vm --backend $be
done

# --verify-ram: the opt-in full RAM hash at the switch, both sides agree and
# the report counts it as a downtime part (catches a hash that is computed
# but not compared, or not reported).
name=verify-ram
start_dest $name "" --listen 127.0.0.1:4509
# shellcheck disable=SC2086
run_source $name "" --to 127.0.0.1:4509 --after 0.5 $vm --backend ring --verify-ram
wait_dest
sh=$(json "$tmp/$name.src" '["ram_hash"]')
if why=$(judge_migrated $name) && [ "$sh" != 0000000000000000 ] &&
   [ "$sh" = "$(json "$tmp/$name.dst" '["ram_hash"]')" ] &&
   [ "$(json "$tmp/$name.src" '["hash_checked"]')" = true ] &&
   python3 -c 'import json,sys; sys.exit(0 if json.load(open(sys.argv[1]))["downtime_parts"]["ram_hash_ms"] > 0 else 1)' "$tmp/$name.src"; then
	ok "$name: RAM hash $sh equal on both sides, $(json "$tmp/$name.src" '["downtime_parts"]["ram_hash_ms"]') ms of the downtime"
else
	notok "$name: ${why:-RAM hash $sh, checked $(json "$tmp/$name.src" '["hash_checked"]')}"
	dump $name
fi

i=0
for be in bitmap ring kmod; do
	i=$((i + 1))
	if [ $be = kmod ] && [ $kmod_ok -eq 0 ]; then
		skip "veth, $be" "vmdirty.ko is not loaded"
		continue
	fi
	if ! mig_netns vt$i $i; then
		notok "veth, $be: cannot make network namespaces"
		continue
	fi
	# shellcheck disable=SC2086
	mig_case "veth-$be" "$src_ns" "$dst_ns" "$dst_ip:4600" "" --after 0.5 $vm --backend $be
done

# Dirtying faster than a 4 MiB/s link: auto-converge throttles the vCPUs
# until the rest fits (or, should it not, the migration is cancelled and the
# VM runs on the source: the issue accepts either, we report which).
# 6 MB/s a vCPU: on a busy machine the writer under nested TCG reaches half
# of what it is asked (timer wakeups come late), and at 3 MB/s the set it
# dirtied while a round went out was often already smaller than the round.
name=autoconverge
start_dest $name "" --listen 127.0.0.1:4610
run_source $name "" --to 127.0.0.1:4610 --after 0.5 --mem 16 --vcpus 2 --workload random \
	--rate 6 --bandwidth 4 --max-rounds 60 --max-time 40
wait_dest
thr=$(json "$tmp/$name.src" '["max_throttle"]')
if why=$(judge_migrated $name) && [ "${thr:-0}" -gt 0 ]; then
	ok "$name: converged at 4 MiB/s with the vCPUs throttled to $thr%"
elif [ "$src_rc" -eq 1 ] && [ "$(json "$tmp/$name.src" '["cancelled"]')" = true ] &&
     source_kept_running $name && [ "${thr:-0}" -gt 0 ]; then
	ok "$name: throttled to $thr%, still too fast: cancelled, VM running on the source"
else
	notok "$name: throttle ${thr:-?}%: ${why:-source exit $src_rc}"
	dump $name
fi

# The same without auto-converge: cancelled after the bound, VM stays.
name=no-autoconverge
start_dest $name "" --listen 127.0.0.1:4611
run_source $name "" --to 127.0.0.1:4611 --after 0.5 --mem 16 --vcpus 2 --workload random \
	--rate 8 --bandwidth 2 --no-auto-converge --max-rounds 3
wait_dest
err=$(json "$tmp/$name.src" '["error"]')
if [ "$src_rc" -eq 1 ] && [ "$(json "$tmp/$name.src" '["cancelled"]')" = true ] &&
   [ "$(json "$tmp/$name.src" '["max_throttle"]')" = 0 ] && source_kept_running $name &&
   [[ $err == *"did not converge after 3 rounds"* ]] && [ "$dest_rc" -ne 0 ]; then
	ok "$name: cancelled after 3 rounds, VM running on the source"
else
	notok "$name: source exit $src_rc, destination $dest_rc: $err"
	dump $name
fi

# --bandwidth paces pre-copy only: the final round, in the pause, goes
# without it (as QEMU's stop-and-copy does), and pre-copy still ends only
# once the pages left fit in the limit at the cap.  At 1 MiB/s the bucket is
# empty when the pause comes (the rounds before spent it), so a final round
# still paced waits for its bytes past the first few KiB: hundreds of ms
# (catches a switchover that forgets to lift the limit).
name=final-round-uncapped
start_dest $name "" --listen 127.0.0.1:4619
run_source $name "" --to 127.0.0.1:4619 --after 0.5 --mem 16 --vcpus 1 --workload random \
	--rate 1 --bandwidth 1 --downtime 3000 --max-time 60
wait_dest
cap=$(json "$tmp/$name.src" '["rounds"][-1]["cap_ms"]')
fin=$(json "$tmp/$name.src" '["rounds"][-1]["final"]')
kib=$(json "$tmp/$name.src" '["rounds"][-1]["wire_bytes"] // 1024')
if why=$(judge_migrated $name) && [ "$fin" = true ] && [ "${kib:-0}" -ge 64 ] &&
   python3 -c 'import sys; sys.exit(0 if float(sys.argv[1]) < 20 else 1)' "${cap:-999}"; then
	ok "$name: final round of $kib KiB waited $cap ms for the 1 MiB/s cap"
else
	notok "$name: ${why:-final round $fin, $kib KiB, $cap ms waiting for the cap}"
	dump $name
fi

# --nice: each channel sender runs pre-copy at that nice value and the final
# round, with the guest paused, at 0, as each reports from its own thread
# (catches setpriority() left out, or made after the senders were started
# by the thread that starts them, and a final round left niced: the
# bench's `x2 lz4 nice` row paused 356 ms against its 300 ms limit so).
name=nice
start_dest $name "" --listen 127.0.0.1:4620
run_source $name "" --to 127.0.0.1:4620 --after 0.5 --mem 16 --vcpus 1 --workload random \
	--rate 2 --channels 2 --nice 7
wait_dest
got=$(python3 -c 'import json,sys; c=json.load(open(sys.argv[1]))["channel_stats"]
print(" ".join("%d/%d" % (x["nice"], x["nice_final"]) for x in c))' "$tmp/$name.src")
if why=$(judge_migrated $name) && [ "$got" = "7/0 7/0" ]; then
	ok "$name: both senders at nice 7 in pre-copy, 0 in the final round"
else
	notok "$name: ${why:-senders at nice $got}"
	dump $name
fi

# A slow writer on a small guest: the rest fits after round 0, and the
# source runs its shrink rounds (at most 2) straight after one another, not
# padded to settle()'s 100 ms minimum (that only let the guest dirty more
# for the pause).  Read from the report: each round's idle time after it,
# and whether the rest fitted before it.  Catches settle() padding every
# round again (checked by mutation: round 1 idled 47-53 ms after its 30-33,
# and the pause carried its 59-60 pages: one shrink round instead of two).
name=shrink-unpadded
start_dest $name "" --listen 127.0.0.1:4627
run_source $name "" --to 127.0.0.1:4627 --after 0.5 --mem 16 --vcpus 1 --workload random \
	--rate 2 --downtime 300
wait_dest
got=$(python3 -c 'import json, sys
d = json.load(open(sys.argv[1]))
r = [x for x in d["rounds"] if not x["final"]]
shrink = [x for p, x in zip(r, r[1:]) if 0 <= p["bound_downtime_ms"] <= 300]
bad = [x for x in shrink if x["pad_ms"] >= 1]
print("none" if not d["shrink_rounds"] else
      "ok" if len(shrink) == d["shrink_rounds"] and not bad else
      "%d shrink rounds; each round: ms/idle after %s" % (d["shrink_rounds"],
      " ".join("%.0f/%.0f" % (x["ms"], x["pad_ms"]) for x in r)))' "$tmp/$name.src")
if why=$(judge_migrated $name) && [ "$got" = none ]; then
	# The pages left too few against the pause's fixed costs: nothing to judge.
	skip "$name" "no shrink round in this run"
elif [ -z "$why" ] && [ "$got" = ok ]; then
	ok "$name: shrink rounds back to back"
else
	notok "$name: ${why:-$got}"
	dump $name
fi

# READY back before the source's main thread runs again after sending
# COMPLETE (it sleeps 200 ms there): the downtime's parts still add up to
# it.  In run 28 of the QEMU comparison it happened unforced, and with
# COMPLETE stamped after its send the commit part came out 2^64 ns less a
# little.  The source's timeline must have COMPLETE before READY.
# Catches the stamp taken after the send (checked by mutation: COMPLETE
# stamped 190-194 ms after READY; without the clamp as well, a commit part of
# 18446744073708.6 ms).
name=complete-ready-race
start_dest $name "" --listen 127.0.0.1:4628
VMDIRTY_FAILPOINT=src-complete:sleep=200 run_source $name "" --to 127.0.0.1:4628 --after 0.5 \
	--mem 16 --vcpus 1 --workload random --rate 2
wait_dest
got=$(python3 -c 'import json, sys
d = json.load(open(sys.argv[1]))
p = dict(d["downtime_parts"])
total = p.pop("total_ms")
t = d["timeline_ms"]
print("ok" if abs(sum(p.values()) - total) < 5 and 200 <= total < 10000 and
      0 <= t["complete"] <= t["ready"] else
      "complete at %.1f ms, ready at %.1f; total %.1f ms, parts %s" % (t["complete"],
      t["ready"], total, " ".join("%s %.1f" % kv for kv in p.items())))' "$tmp/$name.src")
if why=$(judge_migrated $name) && [ "$got" = ok ]; then
	ok "$name: the downtime's parts add up to it"
else
	notok "$name: ${why:-$got}"
	dump $name
fi

# nice_rounds REPORT PRED: "ok T" (T the first throttled round) if PRED
# holds of the report's k (yield_over_round), r (its rounds) and thr (the
# throttled rounds), else each round's nice/throttle.
nice_rounds() {
	python3 -c 'import json, sys
d = json.load(open(sys.argv[1]))
k, r = d["yield_over_round"], d["rounds"]
thr = [x["round"] for x in r if x["throttle"]]
if eval(sys.argv[2]):
    print("ok %d" % thr[0])
else:
    print("yield over at round %d; each round'"'"'s nice/throttle: %s" %
          (k, " ".join("%d/%d" % (x["nice"], x["throttle"]) for x in r)))' "$1" "$2"
}

# --nice under auto-converge: its first step ends the senders' yielding,
# the vCPUs are throttled two high rounds later at the earliest.  A hot set
# that never fits --downtime 10 keeps the rounds high and short; cancelled
# after 8.  Read from the report: each round's nice and throttle.  Catches
# the step not reaching the senders (they stay at 7), the throttle taken
# first or beside it, and the yielding never or at once ended.
name=nice-yield-over
start_dest $name "" --listen 127.0.0.1:4624
run_source $name "" --to 127.0.0.1:4624 --after 0.5 --mem 16 --vcpus 1 --workload hotset \
	--hot-pages 64 --rate 8 --bandwidth 2 --downtime 10 --channels 2 --nice 7 --max-rounds 8
wait_dest
why=$(nice_rounds "$tmp/$name.src" \
	'2 <= k < len(r) and all(x["nice"] == (7 if x["round"] < k else 0) for x in r) and thr and thr[0] >= k + 2')
if [ "$src_rc" -eq 1 ] && [ "$(json "$tmp/$name.src" '["cancelled"]')" = true ] &&
   source_kept_running $name && [[ $why == "ok "* ]]; then
	ok "$name: senders at nice 0 from round $(json "$tmp/$name.src" '["yield_over_round"]'), vCPUs throttled from round ${why#ok }, VM running on the source"
else
	notok "$name: source exit $src_rc; ${why:-no report}"
	dump $name
fi

# The same where the senders may not go back to nice 0 (no CAP_SYS_NICE,
# RLIMIT_NICE 0): no step is spent on them, the vCPUs are throttled from
# round 2 as without --nice, and the source says why.  Catches the step
# taken anyway (the throttle two rounds late, nice 0 promised, not done).
name=nice-no-cap
printf '#!/bin/sh\nexec prlimit --nice=0 setpriv --bounding-set=-sys_nice "%s" "$@"\n' "$agent" \
	>"$tmp/agent-nocap"
chmod +x "$tmp/agent-nocap"
start_dest $name "" --listen 127.0.0.1:4625
real_agent=$agent
agent=$tmp/agent-nocap
run_source $name "" --to 127.0.0.1:4625 --after 0.5 --mem 16 --vcpus 1 --workload hotset \
	--hot-pages 64 --rate 8 --bandwidth 2 --downtime 10 --channels 2 --nice 7 --max-rounds 6
agent=$real_agent
wait_dest
why=$(nice_rounds "$tmp/$name.src" 'k == -1 and all(x["nice"] == 7 for x in r) and thr and thr[0] <= 3')
if [ "$src_rc" -eq 1 ] && [ "$(json "$tmp/$name.src" '["cancelled"]')" = true ] &&
   source_kept_running $name && [[ $why == "ok "* ]] &&
   grep -q "cannot go back from nice 7 to 0" "$tmp/$name.srclog"; then
	ok "$name: senders kept at nice 7, vCPUs throttled from round ${why#ok }, VM running on the source"
else
	notok "$name: source exit $src_rc; ${why:-no report}"
	dump $name
fi

# The destination dies in the middle: the source notices, the VM stays.
name=dest-killed
start_dest $name "" --listen 127.0.0.1:4612
( sleep 3; kill -9 "$dest_pid" ) &
run_source $name "" --to 127.0.0.1:4612 --after 0.5 --mem 16 --vcpus 2 --workload random \
	--rate 8 --bandwidth 1 --no-auto-converge --max-rounds 100 --timeout 2000
wait_dest
err=$(json "$tmp/$name.src" '["error"]')
if [ "$src_rc" -eq 1 ] && [ "$dest_rc" -eq 137 ] && source_kept_running $name &&
   [ "$(json "$tmp/$name.src" '["cancelled"]')" = false ]; then
	ok "$name: source gave up ($(json "$tmp/$name.src" '["error"]')), VM running on the source"
else
	notok "$name: source exit $src_rc, destination $dest_rc"
	dump $name
fi

# The destination says it failed (ERROR on channel 0 instead of round 0's
# ROUND_ACK) and reads on.  The source must stop at once, in pre-copy,
# saying the destination's reason.  Catches control_main() only recording
# the news (checked by mutation: the source stopped only when channel 0's
# next batch found its stream failed, "round 1: Invalid argument") and the
# reason printed into itself ("destination: destination: -round-ack").
name=dest-error
VMDIRTY_FAILPOINT=dst-round-ack:fail start_dest $name "" --listen 127.0.0.1:4618
run_source $name "" --to 127.0.0.1:4618 --after 0.5 --mem 16 --vcpus 2 --workload random \
	--rate 8 --bandwidth 2 --no-auto-converge --max-rounds 5 --timeout 2000
wait_dest
err=$(json "$tmp/$name.src" '["error"]')
rounds=$(json "$tmp/$name.src" '["rounds"].__len__()')
if [ "$src_rc" -eq 1 ] && [ "$dest_rc" -ne 0 ] && source_kept_running $name &&
   [ "$err" = "destination: failpoint dst-round-ack (internal)" ] && [ "${rounds:-9}" -le 2 ] &&
   [ "$(json "$tmp/$name.src" '["cancelled"]')" = false ]; then
	ok "$name: source stopped after $rounds rounds ($err), VM running on the source"
else
	notok "$name: source exit $src_rc after ${rounds:-?} rounds ($err), destination $dest_rc"
	dump $name
fi

# The destination reads on and acknowledges nothing (its main thread held
# 20 s at its first ROUND_ACK), as in a dest-killed run of 2026-12-07 that
# sent 271 MB in 600 s with no ack and no failed write.  Short rounds (a
# slow writer; --downtime 5 never fits), so that only the age of the
# oldest unacknowledged round, not of the last one, passes --timeout: the
# source must give up then, not send on until --max-rounds.  Catches
# settle() not checking (checked by mutation: "did not converge" after 100
# rounds) and checking only the round before (a review's find: each
# round's gap stayed under --timeout).
name=dest-no-ack
VMDIRTY_FAILPOINT=dst-round-ack:sleep=20000 start_dest $name "" --listen 127.0.0.1:4623
run_source $name "" --to 127.0.0.1:4623 --after 0.5 --mem 16 --vcpus 2 --workload random \
	--rate 1 --bandwidth 2 --downtime 5 --no-auto-converge --max-rounds 100 --timeout 2000
wait_dest
err=$(json "$tmp/$name.src" '["error"]')
rounds=$(json "$tmp/$name.src" '["rounds"].__len__()')
if [ "$src_rc" -eq 1 ] && source_kept_running $name &&
   [[ $err == "round 0 still unacknowledged "*" after it ended (--timeout 2000 ms)"* ]] &&
   [ "${rounds:-99}" -le 10 ] &&
   [ "$(json "$tmp/$name.src" '["cancelled"]')" = false ]; then
	ok "$name: source stopped after $rounds rounds ($err), VM running on the source"
else
	notok "$name: source exit $src_rc after ${rounds:-?} rounds ($err), destination $dest_rc"
	dump $name
fi

# The link goes down in pre-copy (veth, 2 s into the session, round 0
# still going at 2 MiB/s): the source must give up within its --timeout, on the write that
# makes no progress or on the round never acknowledged, with the VM running
# on the source only (the destination never ran it and fails on its own).
# Catches a pre-copy that waits on a dead link for ever (neither
# transport.c's write timeout nor settle()'s ack check).
name=link-down-precopy
if ! mig_netns ld 40; then
	notok "$name: cannot make network namespaces"
else
	start_dest $name "$dst_ns" --listen "$dst_ip:4624" --timeout 5000 --wait 60
	# Down 2 s after the destination took the session: pre-copy is on.
	( wait_for 30 grep -qs "for session" "$tmp/$name.dstlog"
	  sleep 2; ip -n "$src_ns" link set vm40s down ) &
	t0=$(date +%s)
	run_source $name "$src_ns" --to "$dst_ip:4624" --after 0.5 --mem 16 --vcpus 2 \
		--workload random --rate 8 --bandwidth 2 --no-auto-converge --max-rounds 100 \
		--timeout 2000
	took=$(($(date +%s) - t0))
	wait_dest
	err=$(json "$tmp/$name.src" '["error"]')
	if [ "$src_rc" -eq 1 ] && [ "$dest_rc" -ne 0 ] && [ "$took" -le 60 ] &&
	   source_kept_running $name &&
	   [ "$(json "$tmp/$name.src" '["outcome"]')" = not-migrated ] &&
	   [ "$(json "$tmp/$name.src" '["cancelled"]')" = false ] &&
	   [[ $err == *"no progress for 2000 ms"* || $err == *"still unacknowledged"* ]]; then
		ok "$name: source gave up in $took s ($err), VM running on the source only"
	else
		notok "$name: source exit $src_rc in $took s ($err), destination $dest_rc"
		dump $name
	fi
fi

# The switch probe fails with the vCPUs paused (after round 0): the
# migration ends there, the VM runs on here, the destination discards.
# Catches probe_once() dropping its error (checked by mutation: the
# migration then completed on timings of a save that never happened); the
# failure path resumes the vCPUs whatever the probe left them in.
name=probe-fails
start_dest $name "" --listen 127.0.0.1:4617
VMDIRTY_FAILPOINT=src-probe:fail run_source $name "" --to 127.0.0.1:4617 --after 0.5 \
	--mem 16 --vcpus 2 --workload random --rate 8
wait_dest
err=$(json "$tmp/$name.src" '["error"]')
if [ "$src_rc" -eq 1 ] && [ "$dest_rc" -ne 0 ] && source_kept_running $name &&
   [[ $err == *"timing the pause and the state save"* ]] &&
   [ "$(json "$tmp/$name.src" '["cancelled"]')" = false ] &&
   grep -q "failpoint src-probe: fail" "$tmp/$name.srclog"; then
	ok "$name: $err; VM running on the source, destination exit $dest_rc"
else
	notok "$name: source exit $src_rc, destination $dest_rc: $err"
	dump $name
fi

# A destination that wants another layout refuses in HELLO, creates nothing,
# and still takes the source it expects (catches a refusal that ends the
# destination, or one that sized a VM first).
name=layout-refused
start_dest $name "" --listen 127.0.0.1:4613 --mem 32
run_source $name "" --to 127.0.0.1:4613 --after 0.2 $vm --backend ring
err=$(json "$tmp/$name.src" '["error"]')
nvm=$(vms "$dest_pid")
refused_rc=$src_rc
run_source $name "" --to 127.0.0.1:4613 --after 0.2 --mem 32 --vcpus 2 --workload random \
	--rate 5 --backend ring
wait_dest
if [ "$refused_rc" -eq 1 ] && [[ $err == *"refused"*"RAM"* ]] && [ "$nvm" -eq 0 ] &&
   why=$(judge_migrated $name); then
	ok "$name: \"$err\", no VM made; then the 32 MiB source migrated to the same destination"
else
	notok "$name: refused source exit $refused_rc ($err), $nvm VMs meanwhile: ${why:-}"
	dump $name
fi

# Told the guest's size, a destination makes its VM before anyone connects
# (as QEMU's -incoming does) and keeps it through garbage and a refused
# source; the right source's session takes that VM.  Catches, each checked
# by mutation: make_ahead() not called (no VM while waiting), a HELLO that
# is no HELLO ending a destination that has a VM but no session (the
# refusal testing d->vm where it means d->n), and a session making a
# second VM instead of taking the one made ahead.
name=made-ahead
# --wait: a destination that turned the right source away ends, not hangs.
start_dest $name "" --listen 127.0.0.1:4621 --insecure --mem 32 --vcpus 2 --wait 120
nvm_wait=$(vms "$dest_pid")
printf 'GET / HTTP/1.0\r\n\r\n%0200d' 0 >/dev/tcp/127.0.0.1/4621
sleep 1
# shellcheck disable=SC2086
run_source $name "" --to 127.0.0.1:4621 --after 0.2 $vm --backend ring --insecure
err=$(json "$tmp/$name.src" '["error"]')
nvm=$(vms "$dest_pid")
refused_rc=$src_rc
run_source $name "" --to 127.0.0.1:4621 --after 0.2 --mem 32 --vcpus 2 --workload random \
	--rate 5 --backend ring --insecure
wait_dest
if [ "$nvm_wait" -eq 1 ] && [ "$nvm" -eq 1 ] && [ "$refused_rc" -eq 1 ] &&
   [[ $err == *"refused"*"RAM"* ]] &&
   grep -q "refused 127.0.0.1:[0-9]*: no valid HELLO.*the VM made ahead is untouched" \
	"$tmp/$name.dstlog" &&
   grep -q "takes the VM made ahead" "$tmp/$name.dstlog" &&
   ! grep -q "a VM of .* for session" "$tmp/$name.dstlog" && why=$(judge_migrated $name); then
	ok "$name: $(grep -o 'made a VM of [^,]*, in [0-9.]* ms' "$tmp/$name.dstlog"); garbage and \"$err\" left it alone; the 32 MiB source's session took it"
else
	notok "$name: ${nvm_wait} VM(s) while waiting, $nvm after the refusals (source exit $refused_rc: $err): ${why:-see the log}"
	dump $name
fi

# The VM made ahead is bounded like one made for a source: over --max-mem
# the destination says so and never listens (catches make_ahead() skipping
# check_limits()).
name=made-ahead-limit
start_dest $name "" --listen 127.0.0.1:4622 --mem 32 --vcpus 1 --max-mem 16
listened=$?
# One that listens waits for a source forever: not this test's.
[ "$listened" -ne 0 ] || kill "$dest_pid"
wait_dest
err=$(json "$tmp/$name.dst" '["error"]')
if [ "$listened" -ne 0 ] && [ "$dest_rc" -eq 1 ] &&
   [[ $err == *"a guest of 32 MiB: this destination takes at most 16 MiB (--max-mem)"* ]]; then
	ok "$name: \"$err\", exit $dest_rc"
else
	notok "$name: exit $dest_rc, listened $((!listened)): $err"
	dump $name
fi

# Nobody listens: the connect fails after its retries.
name=no-listener
run_source $name "" --to 127.0.0.1:4614 --after 0.2 $vm --backend ring --timeout 500
err=$(json "$tmp/$name.src" '["error"]')
if [ "$src_rc" -eq 1 ] && [[ $err == *"cannot connect"* ]] && source_kept_running $name; then
	ok "$name: \"$err\", VM running on the source"
else
	notok "$name: source exit $src_rc: $err"
	dump $name
fi

# Garbage instead of HELLO (no key on either side, so it reaches the
# protocol's decoder): the destination refuses it, creates nothing, and
# still takes the right source (catches a stray connection ending a
# waiting destination).  With a key, the TLS gate refuses it first
# (trust_test.sh).
name=garbage
start_dest $name "" --listen 127.0.0.1:4615 --insecure
printf 'GET / HTTP/1.0\r\n\r\n%0200d' 0 >/dev/tcp/127.0.0.1/4615
sleep 1
nvm=$(vms "$dest_pid")
run_source $name "" --to 127.0.0.1:4615 --after 0.5 $vm --backend ring --insecure
wait_dest
if grep -q "refused 127.0.0.1:[0-9]*: no valid HELLO" "$tmp/$name.dstlog" && [ "$nvm" -eq 0 ] &&
   why=$(judge_migrated $name); then
	ok "$name: $(grep -o 'refused 127.0.0.1:[0-9]*: no valid HELLO[^;]*' "$tmp/$name.dstlog" | head -1); then migrated"
else
	notok "$name: $nvm VMs after the garbage: ${why:-no refusal logged}"
	dump $name
fi

# On request from another command, over the control socket.
name=control
ctl=$tmp/control.sock
start_dest $name "" --listen 127.0.0.1:4616
in_ns "" "$agent" source --to 127.0.0.1:4616 --control "$ctl" $vm --backend ring --quiet \
	>"$tmp/$name.srclog" 2>&1 &
spid=$!
for _ in $(seq 100); do [ -S "$ctl" ] && break; sleep 0.1; done
st1=$("$agent" migrate "$ctl" status)
"$agent" migrate "$ctl" >"$tmp/$name.src"
src_rc=$?
wait_dest
wait $spid
agent_rc=$?
if why=$(judge_migrated $name) && [[ $st1 == *'"state":"running"'* ]] && [ $agent_rc -eq 0 ]; then
	ok "$name: status said running, 'vmdirty migrate' moved the VM"
else
	notok "$name: ${why:-status '$st1', agent exit $agent_rc}"
	dump $name
fi

# A second control request while one is pending is refused, not queued.
name=control-usage
"$agent" migrate /nonexistent/socket status >/dev/null 2>"$tmp/$name.err"
rc=$?
if [ $rc -eq 1 ] && grep -q "No such file" "$tmp/$name.err"; then
	ok "$name: a missing control socket is a clear error"
else
	notok "$name: exit $rc: $(cat "$tmp/$name.err")"
fi

mig_done
