#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0
"""bench_qemu.py --passes: which migration a row shows, and each pass judged alone.

With several passes the QEMU comparison shows each row's median migration
and judges the acceptance on those, then judges every pass on its own rows.
Made-up rows stand for the migrations; each case names the one-line bug it
catches.  Runs on this machine (make test), no KVM needed.
"""
import contextlib
import io
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bench_qemu as bq  # noqa: E402
import tap  # noqa: E402

case = tap.Cases('bench_passes')


def mig(vmm, name, k, total_s, converged=True, down=50, est=50, prog=0.9):
    return {'vmm': vmm, 'name': name, 'rate': 'near', 'pass': k, 'converged': converged,
            'total_ms': total_s * 1000 if total_s is not None else None, 'autoconv': False,
            'downtime_ms': down, 'estimate_ms': est if vmm == 'vmdirty' else None,
            'progress_ratio': prog, 'round0_mibps': 20.0, 'lost_s': 1.0}


def table(per_row):
    """The rows as main() keeps them: each its median, with every pass."""
    return [bq.median_pass(ps) for ps in per_row]


@case
def median_by_total_time():
    # Catches: the row shown being the pass in the middle of the run order
    # (samples[n // 2] unsorted: 2.0 s here), or the fastest pass.
    r = bq.median_pass([mig('qemu', 'q', 0, 5.0), mig('qemu', 'q', 1, 2.0), mig('qemu', 'q', 2, 9.0)])
    assert r['total_ms'] == 5000 and r['pass'] == 0, r
    assert [p['total_ms'] for p in r['passes']] == [5000, 2000, 9000], r['passes']


@case
def not_converged_is_slowest():
    # Catches: sorting on total time alone, where a migration that failed
    # (no total) or gave up early would be the "fastest" and could be shown.
    r = bq.median_pass([mig('vmdirty', 'v', 0, None, converged=False), mig('vmdirty', 'v', 1, 7.0),
                        mig('vmdirty', 'v', 2, 5.0)])
    assert r['total_ms'] == 7000 and r['converged'], r
    r = bq.median_pass([mig('vmdirty', 'v', 0, 3.0, converged=False), mig('vmdirty', 'v', 1, 7.0),
                        mig('vmdirty', 'v', 2, 60.0, converged=False)])
    assert not r['converged'], r   # two of three did not converge: neither did the median
    # A failed migration (no answer on convergence, no total) is slower still
    # than one that ran out its time: the median is the one that ran.
    failed = mig('vmdirty', 'v', 0, None, converged=False)
    failed['failed'] = True
    r = bq.median_pass([failed, mig('vmdirty', 'v', 1, 60.0, converged=False),
                        mig('vmdirty', 'v', 2, 5.0)])
    assert r['pass'] == 1, r


@case
def one_pass_row_has_no_passes():
    # Catches: a single migration carrying itself as its passes (the JSON of
    # a one-pass run doubling, and print_passes() listing every row).
    r = bq.median_pass([mig('qemu', 'q', 0, 5.0)])
    assert 'passes' not in r, r


@case
def each_pass_judged_on_its_own_rows():
    # Catches: pass_verdicts() judging the medians (or pass 0) again for
    # every pass: pass 1's vmdirty row is 0.9 x QEMU's time, not 0.5.
    rows = table([[mig('qemu', 'q', 0, 10.0), mig('qemu', 'q', 1, 10.0)],
                  [mig('vmdirty', 'v', 0, 5.0), mig('vmdirty', 'v', 1, 9.0)]])
    per = bq.pass_verdicts([('near', 1.0)], rows, 2)
    total = [[(met, fig) for _s, _r, key, _t, met, fig in v.items if key == 'total'] for v in per]
    assert total == [[(True, '0.50')], [(False, '0.90')]], total


@case
def summary_counts_passes():
    # Catches: the summary counting a point held when it was missed (met
    # read from the wrong field), or counting a figure that is no point.
    rows = table([[mig('qemu', 'q', 0, 10.0), mig('qemu', 'q', 1, 10.0), mig('qemu', 'q', 2, 10.0)],
                  [mig('vmdirty', 'v', 0, 5.0, est=100), mig('vmdirty', 'v', 1, 9.0),
                   mig('vmdirty', 'v', 2, 7.0)]])
    median = bq.Verdicts()
    bq.acceptance([('near', 1.0)], rows, median)
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        bq.print_pass_summary(median, bq.pass_verdicts([('near', 1.0)], rows, 3))
    lines = {ln.split()[2]: ln for ln in out.getvalue().splitlines()[1:]}
    assert 'met in 2 of 3 passes (0.50 ok, 0.90 no, 0.70 ok)' in lines['total'], lines['total']
    assert 'met in 2 of 3 passes (0/1 no, 1/1 ok, 1/1 ok)' in lines['estimate'], lines['estimate']
    assert 'met in' not in lines['lost'], lines['lost']


@case
def point_of_some_passes_listed():
    # Catches: the summary listing only the medians' points: QEMU's plain
    # row stuck in pass 0 alone (its median converged) must still show
    # vmdirty's convergence there, and a pass without the point as '-'.
    def plain(k, conv):
        m = mig('qemu', 'q plain', k, 10.0 if conv else 60.0, converged=conv)
        m['rate'] = 'above'
        return m

    def other(vmm, name, k, t):
        m = mig(vmm, name, k, t)
        m['rate'], m['autoconv'] = 'above', vmm == 'qemu'
        return m
    rows = table([[plain(0, False), plain(1, True), plain(2, True)],
                  [other('qemu', 'q ac', k, 20.0) for k in range(3)],
                  [other('vmdirty', 'v', k, 5.0) for k in range(3)]])
    median = bq.Verdicts()
    bq.acceptance([('above', 1.0)], rows, median)
    assert 'plain' not in [key for _s, _r, key, _t, _m, _f in median.items], median.items
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        bq.print_pass_summary(median, bq.pass_verdicts([('above', 1.0)], rows, 3))
    lines = [ln for ln in out.getvalue().splitlines() if ln.split()[2:3] == ['plain']]
    assert lines and 'met in 1 of 3 passes (5.0 s ok, -, -)' in lines[0], out.getvalue()


@case
def one_pass_prints_as_before():
    # Catches: the refactor changing the acceptance lines a one-pass run
    # prints (the rate on every line, or issue 11's header dropped when it
    # has nothing to judge, as the first draft did).
    rows = [mig('qemu', 'q', 0, 10.0), mig('vmdirty', 'v', 0, 5.0, down=None)]
    v = bq.Verdicts()
    bq.acceptance([('near', 1.0)], rows, v)
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        v.print()
    got = out.getvalue().splitlines()
    assert got[0] == bq.SECTIONS[10] and got[-1] == bq.SECTIONS[11], got
    assert got[1] == ("#   near   total: v 5.0 s = 0.50 x QEMU's best (q, 10.0 s): <= 0.8 MET"), got[1]
    assert all(ln.startswith('#          ') for ln in got[2:-1]), got


if __name__ == '__main__':
    sys.exit(case.run())
