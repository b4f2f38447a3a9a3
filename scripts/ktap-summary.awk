# SPDX-License-Identifier: GPL-2.0
#
# Count the results in KTAP output, nested or not (the kselftest runner
# prefixes each nesting level with "# ").  Leaf results are counted; a
# parent result counts only when it failed without a failed child (a crash
# or timeout after its subtests, a failed teardown).  A plan ("1..N") that
# got fewer than N results counts each missing one as failed: a program
# that died half way cannot pass by silence.
#
# Prints "passed failed skipped" on one line.
function close_plan(d) {
	if (plan[d] > got[d])
		failed += plan[d] - got[d]
	plan[d] = 0
	got[d] = 0
}
{
	line = $0
	d = 0
	while (substr(line, 1, 2) == "# ") {
		line = substr(line, 3)
		d++
	}
	if (line ~ /^1\.\.[0-9]+/) {
		# A new document at this depth: forget the deeper ones.
		for (i = d; i <= maxd + 1; i++) {
			close_plan(i)
			if (i > d)
				kids[i] = kidfail[i] = 0
		}
		plan[d] = substr(line, 4) + 0
		next
	}
	if (line !~ /^(not )?ok [0-9]+/)
		next
	# A result at this depth closes any plan nested below it.
	for (i = d + 1; i <= maxd; i++)
		close_plan(i)
	if (d > maxd)
		maxd = d
	got[d]++
	fail = (line ~ /^not ok/)
	skip = (line ~ /# *[Ss][Kk][Ii][Pp]/)
	if (kids[d + 1] > 0) {
		if (fail && !kidfail[d + 1])
			failed++
		kids[d + 1] = 0
		kidfail[d + 1] = 0
	} else if (fail) {
		failed++
	} else if (skip) {
		skipped++
	} else {
		passed++
	}
	kids[d]++
	if (fail)
		kidfail[d]++
}
END {
	for (i = 0; i <= maxd + 1; i++)
		close_plan(i)
	printf "%d %d %d\n", passed, failed, skipped
}
