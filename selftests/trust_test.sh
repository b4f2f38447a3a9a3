#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Trust, end to end between two agents: key files; a migration encrypted
# by the kernel's TLS for every tracker, seen from the path (a relay that
# records what the source sends: no message of ours in the clear); the
# explicit --insecure with its warning (the relay then sees our messages,
# which shows the check can fail); and every way a destination turns a
# connection away: a wrong key, no key, a replayed handshake, a stalled
# handshake, too many connections at once, a guest too large, too many
# vCPUs.  Each of those proves that nothing was created (no KVM VM in the
# destination process, no "a VM of" line in its log) and that the same
# destination process then takes the right source.  Last, the answerer
# (QUERY, a stray HELLO once a session is known) behind the same gate.
set -u
. "$(dirname "$0")/lib/migrate.sh"

relay="python3 $here/lib/relay.py"
vm="--mem 16 --vcpus 1 --workload random --rate 4"
kmod_ok=1
grep -q '^vmdirty ' /proc/modules || kmod_ok=0

echo "TAP version 13"
echo "1..14"

# no_vm_yet NAME: the destination of NAME holds no VM and said it made none.
no_vm_yet() {
	[ "$(vms "$dest_pid")" -eq 0 ] && ! grep -q ": a VM of" "$tmp/$1.dstlog"
}

# right_source NAME PORT: the source the destination expects; 0 if it
# migrated (judge_migrated), else why says why.  Not in a subshell: it
# waits for the destination, a child of this shell.
right_source() {
	run_source "$1" "" --to 127.0.0.1:"$2" --after 0.3 $vm --backend ring
	wait_dest
	why=$(judge_migrated "$1")
}

# Key files: made 0600, never overwritten, refused when others may read them.
why=""
name=keyfile
k=$tmp/k1
out=$("$agent" genkey "$k")
mode=$(stat -c %a "$k")
before=$(md5sum <"$k")
"$agent" genkey "$k" >/dev/null 2>"$tmp/$name.err"
again=$?
chmod 644 "$k"
"$agent" dest --listen 127.0.0.1:4900 --key "$k" --wait 1 >/dev/null 2>"$tmp/$name.err2"
open_rc=$?
env -u VMDIRTY_KEY "$agent" dest --listen 127.0.0.1:4900 --wait 1 >/dev/null 2>"$tmp/$name.err3"
nokey_rc=$?
if [ "$mode" = 600 ] && [[ $out == *"key vmdirty-"* ]] && [ $again -eq 1 ] &&
   [ "$before" = "$(md5sum <"$k")" ] && [ $open_rc -eq 2 ] &&
   grep -q "permissions 0644 are too open" "$tmp/$name.err2" && [ $nokey_rc -eq 2 ] &&
   grep -q "no key: give --key FILE" "$tmp/$name.err3"; then
	ok "$name: genkey made $mode, refused to overwrite; 0644 and no key refused (exit 2)"
else
	notok "$name: mode $mode, again $again, 0644 exit $open_rc, no key exit $nokey_rc"
	cat "$tmp/$name".err* | sed 's/^/#   /'
fi

# Encrypted by the kernel, for every tracker, through a relay that keeps
# what the source sent: TLS records only, none of our headers in the clear.
port=4910
for be in bitmap ring kmod; do
	port=$((port + 2))
	name=tls-$be
	if [ $be = kmod ] && [ $kmod_ok -eq 0 ]; then
		skip "$name" "vmdirty.ko is not loaded"
		continue
	fi
	start_dest $name "" --listen 127.0.0.1:$port
	$relay relay $((port + 1)) $port "$tmp/$name.wire" >"$tmp/$name.relay" 2>&1 &
	rpid=$!
	for _ in $(seq 50); do grep -q ready "$tmp/$name.relay" && break; sleep 0.1; done
	# The module's sessions over netlink meanwhile (also seeds for its parser's fuzzer).
	[ $be = kmod ] && { sleep 1; "$agent" status --watch --interval 200 --count 10 \
		>"$tmp/$name.status" 2>&1; } &
	# The ring case asks for zero copy, which kTLS does not take: the agent
	# must send by copy and say so (catches MSG_ZEROCOPY tried on kTLS).
	zc=
	[ $be = ring ] && zc="--transport zerocopy"
	# shellcheck disable=SC2086
	run_source $name "" --to 127.0.0.1:$((port + 1)) --after 0.5 $vm --backend $be --channels 2 $zc
	wait_dest
	kill $rpid 2>/dev/null
	wait $rpid 2>/dev/null
	read -r clear recs < <(cat "$tmp/$name".wire.* | $relay count /dev/stdin)
	if why=$(judge_migrated $name) && [ "$(json "$tmp/$name.src" '["encryption"]')" = ktls ] &&
	   [ "$(json "$tmp/$name.dst" '["encryption"]')" = ktls ] &&
	   [ "${clear:-1}" -eq 0 ] && [ "${recs:-0}" -gt 100 ] &&
	   { [ -z "$zc" ] || { [ "$(json "$tmp/$name.src" '["net"]["zc_sends"]')" = 0 ] &&
	     [[ $(json "$tmp/$name.src" '["security"]') == *"kTLS takes no MSG_ZEROCOPY"* ]]; }; }; then
		ok "$name: migrated over kTLS ($(json "$tmp/$name.src" '["security"]')); the path saw $recs TLS records, 0 headers of ours"
	else
		notok "$name: ${why:-encryption $(json "$tmp/$name.src" '["encryption"]')/$(json "$tmp/$name.dst" '["encryption"]'), $clear headers in the clear, $recs records; $(json "$tmp/$name.src" '["security"]')}"
		dump $name
	fi
done
# Kept for the replay below: a real source's bytes, channel 0.
rec0=$tmp/tls-ring.wire.0

# --insecure: warned on both sides, and the path sees our messages.
why=""
name=insecure
port=4920
start_dest $name "" --listen 127.0.0.1:$port --insecure
$relay relay $((port + 1)) $port "$tmp/$name.wire" >"$tmp/$name.relay" 2>&1 &
rpid=$!
for _ in $(seq 50); do grep -q ready "$tmp/$name.relay" && break; sleep 0.1; done
run_source $name "" --to 127.0.0.1:$((port + 1)) --after 0.5 $vm --backend ring --insecure
wait_dest
kill $rpid 2>/dev/null
wait $rpid 2>/dev/null
read -r clear recs < <(cat "$tmp/$name".wire.* | $relay count /dev/stdin)
if why=$(judge_migrated $name) && [ "$(json "$tmp/$name.src" '["encryption"]')" = none ] &&
   grep -q "WARNING: --insecure" "$tmp/$name.srclog" &&
   grep -q "WARNING: --insecure" "$tmp/$name.dstlog" && [ "${clear:-0}" -gt 0 ]; then
	ok "$name: warned on both sides; the path saw $clear PAGES headers in the clear"
else
	notok "$name: ${why:-encryption $(json "$tmp/$name.src" '["encryption"]'), $clear headers in the clear}"
	dump $name
fi

# A source holding another key: refused at the handshake, told so.
why=""
name=wrong-key
port=4930
"$agent" genkey "$tmp/other" >/dev/null
start_dest $name "" --listen 127.0.0.1:$port
run_source $name "" --to 127.0.0.1:$port --after 0.3 $vm --backend ring --key "$tmp/other"
err=$(json "$tmp/$name.src" '["error"]')
refused_rc=$src_rc
sleep 0.5
if no_vm_yet $name && [ $refused_rc -eq 1 ] && [[ $err == *"does not know our key"* ]] &&
   grep -q "refused 127.0.0.1:[0-9]*: the peer holds another key" "$tmp/$name.dstlog" &&
   right_source $name $port; then
	ok "$name: \"$err\"; no VM; then the right source migrated"
else
	notok "$name: exit $refused_rc \"$err\", VMs $(vms "$dest_pid"): ${why:-}"
	dump $name
fi

# A source without a key (--insecure) at a destination that has one.
why=""
name=no-key
port=4932
start_dest $name "" --listen 127.0.0.1:$port
run_source $name "" --to 127.0.0.1:$port --after 0.3 $vm --backend ring --insecure
err=$(json "$tmp/$name.src" '["error"]')
refused_rc=$src_rc
sleep 0.5
if no_vm_yet $name && [ $refused_rc -eq 1 ] &&
   grep -q "refused 127.0.0.1:[0-9]*: the peer speaks the migration protocol in the clear" "$tmp/$name.dstlog" &&
   right_source $name $port; then
	ok "$name: source said \"$err\"; no VM; then the right source migrated"
else
	notok "$name: exit $refused_rc \"$err\", VMs $(vms "$dest_pid"): ${why:-}"
	dump $name
fi

# A real source's bytes (channel 0 of tls-ring, same key) played back.
why=""
name=replay
port=4934
start_dest $name "" --listen 127.0.0.1:$port
if [ -s "$rec0" ]; then
	said=$($relay replay "$rec0" $port)
else
	said="no recording"
fi
sleep 0.5
if no_vm_yet $name && [[ $said == *closed* ]] &&
   grep -q "refused 127.0.0.1:[0-9]*: .*replays a recorded handshake" "$tmp/$name.dstlog" &&
   right_source $name $port; then
	ok "$name: $(stat -c %s "$rec0") recorded bytes played back: $said, refused; no VM; then the right source migrated"
else
	notok "$name: $said, VMs $(vms "$dest_pid"): ${why:-}"
	dump $name
fi

# Bytes that are not TLS at all.
why=""
name=not-tls
port=4944
start_dest $name "" --listen 127.0.0.1:$port
printf 'GET / HTTP/1.0\r\n\r\n' >/dev/tcp/127.0.0.1/$port
sleep 1
if no_vm_yet $name && grep -q "refused 127.0.0.1:[0-9]*: not TLS: record 0 starts 47 45 54 20 2f" "$tmp/$name.dstlog" &&
   right_source $name $port; then
	ok "$name: an HTTP request refused at its first bytes; no VM; then the right source migrated"
else
	notok "$name: VMs $(vms "$dest_pid"): ${why:-}"
	dump $name
fi

# A connection that never finishes its handshake: closed at the bound and
# logged (the gate's own test shows it delays nobody meanwhile).
why=""
name=stalled
port=4936
start_dest $name "" --listen 127.0.0.1:$port --handshake-timeout 3000
exec 3<>/dev/tcp/127.0.0.1/$port
printf '\x16\x03\x01\x02\x00' >&3
t0=$(date +%s%N)
timeout 10 cat <&3 >/dev/null
closed=$?
took=$((($(date +%s%N) - t0) / 1000000))
exec 3<&-
if [ $closed -eq 0 ] && [ $took -ge 2500 ] && no_vm_yet $name &&
   grep -q "refused 127.0.0.1:[0-9]*: no TLS handshake within 3000 ms" "$tmp/$name.dstlog" &&
   right_source $name $port; then
	ok "$name: half a ClientHello, then silence: closed after $took ms; no VM; then the right source migrated"
else
	notok "$name: closed $closed after $took ms, VMs $(vms "$dest_pid"): ${why:-}"
	dump $name
fi

# More connections at once than --max-handshakes: the extra one is closed
# at once, the others at their bound; then the right source.
why=""
name=too-many
port=4938
start_dest $name "" --listen 127.0.0.1:$port --max-handshakes 2 --handshake-timeout 2000
exec 3<>/dev/tcp/127.0.0.1/$port 4<>/dev/tcp/127.0.0.1/$port
sleep 0.3
exec 5<>/dev/tcp/127.0.0.1/$port
timeout 1 cat <&5 >/dev/null
extra=$?
exec 5<&-
timeout 5 cat <&3 >/dev/null
first=$?
exec 3<&- 4<&-
nvm=$(vms "$dest_pid")
if [ $extra -eq 0 ] && [ $first -eq 0 ] && no_vm_yet $name &&
   grep -q "refused 127.0.0.1:[0-9]*: 2 TLS handshakes already in progress" "$tmp/$name.dstlog" &&
   grep -q "no TLS handshake within 2000 ms" "$tmp/$name.dstlog" &&
   right_source $name $port; then
	ok "$name: the third connection closed at once, the two others at 2000 ms; no VM; then the right source migrated"
else
	notok "$name: extra closed $extra (0 = at once), first $first, VMs $nvm: ${why:-}"
	dump $name
fi

# A guest larger than the destination takes, even from a key holder.
why=""
name=oversize
port=4940
start_dest $name "" --listen 127.0.0.1:$port --max-mem 16
run_source $name "" --to 127.0.0.1:$port --after 0.3 --mem 32 --vcpus 1 --workload random \
	--rate 4 --backend ring
err=$(json "$tmp/$name.src" '["error"]')
refused_rc=$src_rc
if no_vm_yet $name && [ $refused_rc -eq 1 ] &&
   [[ $err == *"a guest of 32 MiB: this destination takes at most 16 MiB (--max-mem)"* ]] &&
   right_source $name $port; then
	ok "$name: \"$err\"; no VM; then the 16 MiB source migrated"
else
	notok "$name: exit $refused_rc \"$err\", VMs $(vms "$dest_pid"): ${why:-}"
	dump $name
fi

# More vCPUs than the destination takes.
why=""
name=too-many-vcpus
port=4942
start_dest $name "" --listen 127.0.0.1:$port --max-vcpus 1
run_source $name "" --to 127.0.0.1:$port --after 0.3 --mem 16 --vcpus 2 --workload random \
	--rate 4 --backend ring
err=$(json "$tmp/$name.src" '["error"]')
refused_rc=$src_rc
if no_vm_yet $name && [ $refused_rc -eq 1 ] &&
   [[ $err == *"2 vCPUs: this destination takes at most 1 (--max-vcpus)"* ]] &&
   right_source $name $port; then
	ok "$name: \"$err\"; no VM; then the 1-vCPU source migrated"
else
	notok "$name: exit $refused_rc \"$err\", VMs $(vms "$dest_pid"): ${why:-}"
	dump $name
fi

# Once the session is known the answerer takes the listeners (QUERY from a
# source in doubt; a second source is told busy): the same gate stands in
# front of it (catches an answerer reading plaintext QUERYs from anyone).
why=""
name=answerer
port=4946
start_dest $name "" --listen 127.0.0.1:$port --run-for 8
run_source $name "" --to 127.0.0.1:$port --after 0.3 $vm --backend ring
first_rc=$src_rc
# A QUERY's header in the clear, as a source without the key would send it.
printf 'VMDW\x02\x00\x0c\x00' >/dev/tcp/127.0.0.1/$port
sleep 0.5
run_source $name-2 "" --to 127.0.0.1:$port --after 0.3 $vm --backend ring --stay 0
err2=$(json "$tmp/$name-2.src" '["error"]')
rc2=$src_rc
src_rc=$first_rc
wait_dest
if why=$(judge_migrated $name) &&
   grep -q "refused 127.0.0.1:[0-9]*: the peer speaks the migration protocol in the clear" "$tmp/$name.dstlog" &&
   [ $rc2 -eq 1 ] && [[ $err2 == *busy* ]]; then
	ok "$name: after the handover a QUERY in the clear was refused at the gate; a key holder was answered: \"$err2\""
else
	notok "$name: ${why:-second source exit $rc2: \"$err2\"; refusal logged: $(grep -c refused "$tmp/$name.dstlog")}"
	dump $name
	dump $name-2
fi

mig_done
