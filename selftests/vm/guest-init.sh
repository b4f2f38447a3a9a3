#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# Stage 2 of the test host, run as PID 1 on the overlaid root: mount the
# usual filesystems, run the host's command from the result share, then save
# its status and the kernel log there and power off.
export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
export HOME=/root TERM=dumb
# Tests that change the system (install_test.sh) run only here.
export VMDIRTY_TESTHOST=1
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev
mkdir -p /dev/pts /dev/shm
# devtmpfs has no /dev/std* links (udev makes them); the kselftest runner
# writes to /dev/stdout.
ln -sf /proc/self/fd /dev/fd
ln -sf /proc/self/fd/0 /dev/stdin
ln -sf /proc/self/fd/1 /dev/stdout
ln -sf /proc/self/fd/2 /dev/stderr
mount -t devpts devpts /dev/pts
mount -t tmpfs tmpfs /dev/shm
mount -t tmpfs tmpfs /run
# Our own /tmp hides the host's, where a checkout may live: keep a view of
# it aside (below, the command's directory is bound back in place).
mkdir -p /run/host-tmp
mount --bind /tmp /run/host-tmp
mount -t tmpfs tmpfs /tmp
mount -t debugfs debugfs /sys/kernel/debug 2>/dev/null
out=/run/vmdirty-out
mkdir -p $out
mount -t 9p -o trans=virtio,version=9p2000.L,msize=512000 vmdirty_out $out
work=$(cat $out/workdir 2>/dev/null)
case $work in
/tmp/?*)
	mkdir -p "$work"
	mount --bind "/run/host-tmp/${work#/tmp/}" "$work"
	;;
esac
# A kernel booted from elsewhere (testhost.sh -K) brings its own modules.
if [ -n "${vmdirty_modules:-}" ]; then
	mkdir -p "/lib/modules/$(uname -r)"
	mount --bind "$vmdirty_modules" "/lib/modules/$(uname -r)"
fi
ip link set lo up
hostname vmdirty-testhost
# Guests may legitimately print to the console; keep it quiet unless bad,
# but with the stack traces of what is bad (KERN_DEFAULT, level 4): after
# a hang, the console is all the host has.
dmesg -n 5

# One writer on the share: the kselftest runner reopens /dev/stdout, and two
# file descriptors at their own offsets on 9p would overwrite each other.
bash $out/cmd 2>&1 </dev/null | cat >$out/output
echo "${PIPESTATUS[0]}" >$out/rc.tmp
dmesg >$out/dmesg
mv $out/rc.tmp $out/rc
sync
umount $out
echo o >/proc/sysrq-trigger
sleep 30
