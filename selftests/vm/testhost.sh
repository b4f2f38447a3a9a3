#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Boot a stock Debian kernel under qemu (TCG, -cpu max: an AMD CPU with SVM
# and nested paging, so kvm_amd loads and real KVM guests run inside it), with
# this machine's root filesystem as its root (read-only 9p plus a tmpfs
# overlay), run one command in it, and bring the command's output, exit
# status and the kernel log back through a dedicated 9p share.  Nothing the
# kernel prints on the console can be mistaken for a result.
#
# usage: testhost.sh [-K ROOT] [-k KVER] [-t SECONDS] [-m MiB] [-c CPUS] [-o DIR] -- CMD...
#
# -K ROOT boots a kernel that is not installed here: ROOT/boot/vmlinuz-KVER
# with its modules in ROOT/lib/modules/KVER (the trixie chroot for 7.x, the
# debug kernel's directory), bound over /lib/modules/KVER in the guest.
# CMD runs as root in the current directory.  Its stdout and stderr stream to
# ours.  Exit status: CMD's, or 1 if the guest kernel logged a WARNING, BUG,
# Oops, refcount or GPF report, or a sleep in atomic context (with a debug
# kernel: KASAN and UBSAN reports are BUGs, KCSAN's when the module made
# one of the racing accesses (kcsan-owner.awk), lockdep's are WARNINGs,
# kmemleak's "new suspected memory leaks"); 124 on timeout (after naming
# the kselftest that was running).
#
# VMDIRTY_TCG_THREAD=multi gives each guest CPU a host thread (see below);
# VMDIRTY_KERNEL_ARGS adds to the guest kernel's command line.

set -u

kver=""
kroot=""
timeout=1200
mem=6144
cpus=2
outdir=""

die() { echo "testhost: $*" >&2; exit 2; }

while getopts "K:k:t:m:c:o:h" opt; do
	case $opt in
	K) kroot=$(cd "$OPTARG" && pwd) || exit 2 ;;
	k) kver=$OPTARG ;;
	t) timeout=$OPTARG ;;
	m) mem=$OPTARG ;;
	c) cpus=$OPTARG ;;
	o) outdir=$OPTARG ;;
	*) sed -n '3,24p' "$0" | sed 's/^# \{0,1\}//'; exit 2 ;;
	esac
done
shift $((OPTIND - 1))
[ "${1:-}" = "--" ] && shift
[ $# -gt 0 ] || die "no command given (see -h)"

here=$(cd "$(dirname "$0")" && pwd)
if [ -z "$kver" ] && [ -n "$kroot" ]; then
	kver=$(ls "$kroot/lib/modules" | sort -V | tail -n1)
fi
[ -n "$kver" ] || kver=$("$here/../../scripts/kver.sh") || exit 2
kernel=$kroot/boot/vmlinuz-$kver
moddir=$kroot/lib/modules/$kver
[ -r "$kernel" ] || die "$kernel not found: install linux-image-$kver (make deps)"
[ -d "$moddir" ] || die "$moddir missing"
command -v qemu-system-x86_64 >/dev/null || die "qemu-system-x86_64 missing (make deps)"
[ -x /bin/busybox ] || die "busybox-static missing (make deps)"

# The guest mounts its own tmpfs over /tmp, hiding ours: keep what it must
# see (the initramfs cache, the result share) outside /tmp.
cache=${VMDIRTY_CACHE:-/var/tmp/vmdirty-testhost}
mkdir -p "$cache" || die "cannot create $cache"
if [ -z "$outdir" ]; then
	outdir=$(mktemp -d "$cache/run.XXXXXX") || exit 2
	trap 'rm -rf "$outdir"' EXIT
fi
rm -f "$outdir"/{cmd,workdir,output,rc,dmesg,ready}
mkdir -p "$outdir"

# The initramfs only mounts the root: busybox, the 9p and overlay modules and
# their dependencies (resolved by modprobe, so built-in ones on other kernels
# simply drop out), and a tiny /init.  Cached per kernel and per input.
build_initramfs() {
	local img=$1 tmp mods m base
	tmp=$(mktemp -d "$cache/initramfs.XXXXXX") || return 1
	mkdir -p "$tmp"/{bin,dev,proc,sys,lower,rw,newroot,modules}
	cp /bin/busybox "$tmp/bin/busybox"
	mods=$(modprobe ${kroot:+-d "$kroot"} --show-depends -S "$kver" -a virtio_pci 9pnet_virtio 9p overlay |
		awk '$1 == "insmod" && !seen[$2]++ { print $2 }')
	: >"$tmp/modules/order"
	for m in $mods; do
		base=$(basename "$m")
		case $m in
		*.xz) xz -dc "$m" >"$tmp/modules/${base%.xz}"; base=${base%.xz} ;;
		*.zst) zstd -qdc "$m" >"$tmp/modules/${base%.zst}"; base=${base%.zst} ;;
		*) cp "$m" "$tmp/modules/$base" ;;
		esac
		echo "$base" >>"$tmp/modules/order"
	done
	cp "$here/initramfs-init" "$tmp/init"
	chmod 755 "$tmp/init"
	(cd "$tmp" && find . | cpio -o -H newc --quiet | gzip -1) >"$img.tmp" &&
		mv "$img.tmp" "$img"
	rm -rf "$tmp"
}

stamp=$( (echo "$kroot"; cat "$here/initramfs-init" "$moddir/modules.dep" /bin/busybox) |
	md5sum | cut -c1-12)
initrd=$cache/initramfs-$kver-$stamp.cpio.gz
if [ ! -s "$initrd" ]; then
	build_initramfs "$initrd" || die "building the initramfs failed"
fi

# The command runs from the guest's view of this very directory (bound
# back in place by guest-init.sh if it is under /tmp).
pwd >"$outdir/workdir"
{
	echo "cd '$(pwd)' || exit 125"
	printf '%q ' "$@"
	echo
} >"$outdir/cmd"

# The guest's CPUs take turns on one host thread (qemu's round-robin TCG).
# With a thread each (VMDIRTY_TCG_THREAD=multi), runs here hung now and then
# in the guest kernel itself (soft lockups with every CPU stuck, KVM's
# static-key text patching: see kvm-pin.py), and the suite took 7m42s
# against 6m41s in turn on this 2-core machine.  Tests that race two
# threads still interleave: the turns are short.
accel=tcg,thread=${VMDIRTY_TCG_THREAD:-single}
cpu=max
console=$outdir/console
: >"$outdir/output"

# Stream the command's output while the guest runs.
tail -n +1 -f "$outdir/output" &
tailpid=$!

timeout --foreground -k 10 "$timeout" qemu-system-x86_64 \
	-nodefaults -no-reboot -nographic \
	-machine q35 -accel "$accel" -cpu "$cpu" -smp "$cpus" -m "$mem" \
	-kernel "$kernel" -initrd "$initrd" \
	-append "console=ttyS0 panic=-1 oops=panic loglevel=4 quiet vmdirty_stage2=$here/guest-init.sh${kroot:+ vmdirty_modules=$moddir}${VMDIRTY_KERNEL_ARGS:+ $VMDIRTY_KERNEL_ARGS}" \
	-serial "file:$console" \
	-d cpu_reset,guest_errors -D "$outdir/qemu.log" \
	-virtfs "local,path=/,mount_tag=vmdirty_root,security_model=none,readonly=on,multidevs=remap" \
	-virtfs "local,path=$outdir,mount_tag=vmdirty_out,security_model=none,multidevs=remap" \
	</dev/null
qrc=$?
# What fails a run when the kernel says it (console or log).
bad='WARNING:|BUG:|BUG kernel|Oops|refcount_t:|general protection fault|sleeping function called from invalid context|Kernel panic|INFO: task .* blocked|possible recursive locking|possible circular locking|UBSAN:|new suspected memory leaks'
sleep 0.2
kill "$tailpid" 2>/dev/null
wait "$tailpid" 2>/dev/null

if [ $qrc -eq 124 ] || [ $qrc -eq 137 ]; then
	# kselftest_harness prints "#  RUN  fixture.test ..." before each test
	# and "#  OK/FAIL  fixture.test" after it; the last unmatched RUN hung.
	# The kselftest runner nests a program's output under "# ".
	hung=$(sed -E 's/^(# )+#/#/' "$outdir/output" |
		awk '/^#  RUN /{t=$3} /^#  +(OK|FAIL|SKIP) /{if ($3==t) t=""} END{print t}')
	prog=$(grep -o '^# selftests: [^ ]* [^ ]*' "$outdir/output" | tail -n1)
	first=$(grep -Enm1 "$bad" "$console" | cut -d: -f1)
	if [ -n "$first" ]; then
		echo "testhost: the first kernel report:" >&2
		tail -n "+$first" "$console" | head -n 60 >&2
	fi
	echo "testhost: last console lines:" >&2
	tail -n 20 "$console" >&2
	# The whole console, for a hang no 80 lines explain; named last, with
	# the test that hung, since a CI log is often read from its end.
	mkdir -p "$here/../../build/test-results" &&
		cp "$console" "$here/../../build/test-results/timeout-console.log"
	echo "testhost: TIMEOUT after ${timeout}s, hung in: ${hung:-?} (${prog:-no selftest started});" \
		"console in build/test-results/timeout-console.log" >&2
	exit 124
fi
if [ ! -s "$outdir/rc" ]; then
	echo "testhost: the guest stopped without a result (qemu exit $qrc)" >&2
	tail -n 40 "$console" >&2
	# A reset no kernel message explains: qemu logs a triple fault of
	# the test host's own CPU (the guest's is a VM exit to its KVM) and
	# each CPU's state at the reset (-d cpu_reset).
	if grep -q '^Triple fault' "$outdir/qemu.log"; then
		echo "testhost: the test host's CPU triple-faulted (qemu's log)" >&2
	fi
	echo "testhost: qemu's log (CPU resets, guest errors), its end:" >&2
	tail -n 60 "$outdir/qemu.log" >&2
	mkdir -p "$here/../../build/test-results" &&
		cp "$outdir/qemu.log" "$here/../../build/test-results/noresult-qemu.log"
	exit 1
fi
rc=$(cat "$outdir/rc")

# The kernel log is judged on the host, from the copy the guest wrote to the
# share just before powering off.  KCSAN reports are judged by whose access
# raced (kcsan-owner.awk): the module's fail the run; races between KVM's or
# the core kernel's own accesses are listed and do not (6.1's KVM has dozens,
# reached by any VMM, and they are not ours to fix).
log=$outdir/dmesg
[ -s "$log" ] || log=$console
kcsan=$(awk -f "$here/kcsan-owner.awk" "$log")
if [ -n "$kcsan" ]; then
	if grep -q '^kernel' <<<"$kcsan"; then
		echo "testhost: KCSAN: races between KVM's or the core kernel's own accesses (not failing the run):" >&2
		grep '^kernel' <<<"$kcsan" | cut -f2 | sort | uniq -c >&2
	fi
	if grep -q '^vmdirty' <<<"$kcsan"; then
		echo "testhost: KCSAN: races in vmdirty's own accesses:" >&2
		grep '^vmdirty' <<<"$kcsan" | cut -f2 | sort | uniq -c >&2
		awk -v full=1 -f "$here/kcsan-owner.awk" "$log" | head -n 80 >&2
		[ "$rc" -ne 0 ] || rc=1
	fi
fi
if grep -Eh "$bad" "$outdir/dmesg" "$console" 2>/dev/null | grep -vq 'BUG: KCSAN: '; then
	echo "testhost: the guest kernel reported a problem:" >&2
	grep -Eh -A 15 "$bad" "$outdir/dmesg" "$console" | grep -v 'BUG: KCSAN: ' | head -n 60 >&2
	[ "$rc" -ne 0 ] || rc=1
fi
exit "$rc"
