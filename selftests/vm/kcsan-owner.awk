# SPDX-License-Identifier: GPL-2.0
#
# Sorts a kernel log's KCSAN reports by whose access raced: one line per
# report, "vmdirty<TAB>TITLE" when the module made one of the two racing
# accesses, "kernel<TAB>TITLE" when both were made by KVM or the core kernel.
# With -v full=1, the whole text of each of the module's reports instead.
#
# A report's title names the functions that made the accesses ("data-race
# in A [mod] / B [mod]"), and each access's stack starts with that function;
# the frames below it are only who called it.  The module calls into KVM
# (its resets go through kvm_vm_ioctl), so a race inside KVM often has
# vmdirty frames lower down: those are KVM's races, the same ones a VMM's
# own KVM_RESET_DIRTY_RINGS reaches, and are not the module's.
#
# usage: awk [-v full=1] -f kcsan-owner.awk DMESG...
function flush() {
	if (title != "") {
		if (!full)
			printf "%s\t%s\n", (ours ? "vmdirty" : "kernel"), title
		else if (ours)
			printf "%s", text
	}
	title = text = ""
	ours = want = 0
}
{ sub(/^\[ *[0-9.]+\] /, "") }
/BUG: KCSAN: / {
	flush()
	title = $0
	sub(/.*BUG: KCSAN: /, "", title)
	ours = title ~ /\[vmdirty\]/
	text = $0 "\n"
	next
}
title == "" { next }
/^=+$/ { flush(); next }
{ text = text $0 "\n" }
# An access: "read to ...", "write (marked) to ...", "race at unknown
# origin, with read to ...": the next frame made it.
/ to 0x[0-9a-f]+ of [0-9]+ bytes by / { want = 1; next }
want && /^ +[A-Za-z0-9_.]+\+0x/ {
	if ($0 ~ /\[vmdirty\]/)
		ours = 1
	want = 0
}
END { flush() }
