#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
#
# Extract what vmdirty borrows from Debian's linux-source-6.1 at build time
# (never committed): the kselftest harness and runner, and checkpatch.
#
# usage: ksft.sh DESTDIR
set -eu
dest=$1
tarball=$(ls /usr/src/linux-source-6.1.tar.* 2>/dev/null | head -n1)
if [ -z "$tarball" ]; then
	echo "ksft: /usr/src/linux-source-6.1.tar.* missing (make deps)" >&2
	exit 1
fi
stamp=$dest/.extracted
[ "$stamp" -nt "$tarball" ] && exit 0

top=$(tar tf "$tarball" 2>/dev/null | head -n1 | cut -d/ -f1)
members="tools/testing/selftests/kselftest_harness.h
	 tools/testing/selftests/kselftest.h
	 tools/testing/selftests/kselftest/runner.sh
	 tools/testing/selftests/kselftest/prefix.pl
	 scripts/checkpatch.pl
	 scripts/spelling.txt
	 scripts/const_structs.checkpatch"
tmp=$dest.tmp
rm -rf "$tmp"
mkdir -p "$tmp"
# shellcheck disable=SC2086
tar xf "$tarball" -C "$tmp" --strip-components=1 $(for m in $members; do echo "$top/$m"; done)
rm -rf "$dest"
mv "$tmp" "$dest"
touch "$dest/.extracted"
