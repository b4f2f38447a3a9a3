#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# The fuzz step of the test command: build the libFuzzer harnesses
# (userspace/fuzz/, clang with ASan and UBSan), seed each with gen.c's
# messages and with the inputs real migrations recorded (VMDIRTY_RECORD,
# userspace/wire/record.h: the selftests record them in the test host),
# replay every past crash (userspace/fuzz/regress/<harness>/), then run
# each harness for a bounded time.  Any crash, leak, sanitizer report or
# timeout fails it; the input that did it lands in build/fuzz/artifacts.
# Prints KTAP, one result per harness.
#
# usage: fuzz.sh [-t SECONDS] [-s RECORDED_DIR]
#   -t  seconds per harness (default $VMDIRTY_FUZZ_SECONDS, or 20)
#   -s  a directory of recorded inputs (default: what the last make test
#       recorded, build/fuzz/recorded)
# VMDIRTY_FUZZ_REQUIRE_RECORDED=1 (make test's whole suite) fails a harness
# that got no input from a real migration: a recording that broke.
set -u
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top" || exit 2
secs=${VMDIRTY_FUZZ_SECONDS:-20}
recorded=build/fuzz/recorded
while getopts "t:s:" opt; do
	case $opt in
	t) secs=$OPTARG ;;
	s) recorded=$OPTARG ;;
	*) sed -n '3,16p' "$0" | sed 's/^# \{0,1\}//'; exit 2 ;;
	esac
done

out=build/fuzz
bin=build/userspace/fuzz
mkdir -p "$out/artifacts" "$out/corpus"

echo "TAP version 13"
if ! make -s -C userspace fuzz >"$out/build.log" 2>&1; then
	echo "1..1"
	echo "not ok 1 fuzz: building the harnesses failed (build/fuzz/build.log)"
	sed 's/^/# /' "$out/build.log" | tail -n 20
	exit 1
fi
harnesses=$(cd userspace/fuzz && ls -- *.c | sed 's/\.c$//')
set -- $harnesses
echo "1..$#"

# Recorded inputs into corpora, this run's only (a seed that stopped being
# recorded must not hide behind an old copy).
rm -f "$out"/corpus/*/rec-*
# Recorded inputs into corpora.  Files are <kind>-<pid>-<n>: kind a wire
# message type (the whole message goes to hdr, its payload to the harness
# of its type), or 64/65 a TLS handshake as a server/client read it, 66 a
# netlink reply, 67 a netlink event.
python3 - "$recorded" "$out/corpus" <<'EOF'
import hashlib, os, sys
src, dst = sys.argv[1], sys.argv[2]
by_type = {1: "hello", 2: "hello", 3: "msg", 4: "pages", 5: "msg", 6: "state", 7: "state",
           8: "msg", 10: "msg", 11: "msg", 12: "msg", 13: "msg", 14: "msg", 15: "msg"}
counts = {}
def put(h, data):
    os.makedirs(os.path.join(dst, h), exist_ok=True)
    name = "rec-" + hashlib.sha1(data).hexdigest()[:16]
    with open(os.path.join(dst, h, name), "wb") as f:
        f.write(data)
    counts[h] = counts.get(h, 0) + 1
for f in sorted(os.listdir(src)) if os.path.isdir(src) else []:
    try:
        kind = int(f.split("-")[0])
    except ValueError:
        continue
    data = open(os.path.join(src, f), "rb").read()
    if kind in by_type and len(data) >= 32:
        put("hdr", data)
        put(by_type[kind], data[32:])
    elif kind == 64:
        put("tls", b"\x00" + data)
    elif kind == 65:
        put("tls", b"\x01" + data)
    elif kind == 66:
        put("nl", b"\x00" + data)
    elif kind == 67:
        put("nl", b"\x01" + data)
print("# recorded seeds from %s: %s" % (src, ", ".join("%s %d" % kv for kv in sorted(counts.items())) or "none"))
EOF

export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1:symbolize=1:allocator_may_return_null=1
export UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1
rc=0
i=0
for h in "$@"; do
	i=$((i + 1))
	corpus=$out/corpus/$h
	mkdir -p "$corpus"
	cp -n "$bin/corpus/$h"/* "$corpus"/ 2>/dev/null
	nrec=$(ls "$corpus" | grep -c '^rec-')
	nseed=$(ls "$corpus" | wc -l)
	log=$out/$h.log
	# Every crash found once stays a regression test, run first.
	regress=$(ls userspace/fuzz/regress/"$h"/* 2>/dev/null)
	if [ -n "$regress" ] && ! "$bin/$h" $regress >"$out/$h.regress.log" 2>&1; then
		echo "not ok $i fuzz: $h: a past crash is back (build/fuzz/$h.regress.log)"
		grep -E "ERROR|SUMMARY|runtime error" "$out/$h.regress.log" | head -n 5 | sed 's/^/# /'
		rc=1
		continue
	fi
	# Inputs as large as a PAGES message of 64 raw pages (record.c keeps up to 256 KiB).
	"$bin/$h" -max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 -max_len=270000 \
		-print_final_stats=1 -artifact_prefix="$out/artifacts/$h-" "$corpus" >"$log" 2>&1
	hrc=$?
	execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log")
	cov=$(grep -o 'cov: [0-9]*' "$log" | tail -n 1)
	if [ $hrc -ne 0 ]; then
		echo "not ok $i fuzz: $h: exit $hrc after ${execs:-?} runs (build/fuzz/$h.log, artifacts in build/fuzz/artifacts)"
		grep -E "ERROR|SUMMARY|runtime error|Test unit written" "$log" | head -n 8 | sed 's/^/# /'
		rc=1
	elif [ "${execs:-0}" -eq 0 ]; then
		echo "not ok $i fuzz: $h: no run (build/fuzz/$h.log)"
		rc=1
	elif [ "$nrec" -eq 0 ] && [ "${VMDIRTY_FUZZ_REQUIRE_RECORDED:-0}" = 1 ]; then
		echo "not ok $i fuzz: $h: $execs runs, but no seed from a real migration: the selftests recorded none for it"
		rc=1
	else
		echo "ok $i fuzz: $h: $execs runs in ${secs}s, $cov, $nseed seeds ($nrec from real migrations)"
	fi
done
exit $rc
