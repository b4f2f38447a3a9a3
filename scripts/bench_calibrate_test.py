#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0
"""bench_qemu.calibrate(), with the guests' measurements replaced by figures.

The QEMU comparison asks each rate of both guests and measures what they
write, left alone; its table is only valid if the rate it settles on makes
the slower guest write about the target.  Each case names the one-line bug
it catches.  Runs on this machine (make test), no KVM needed.
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bench_qemu as bq  # noqa: E402
import tap  # noqa: E402

TARGET = 5222.0          # run 15's near: 0.85 of a 24 MiB/s cap, pages/s
NOMINAL = 21.391         # MB/s asked for it
PAGES = 1e6 / 4096       # pages/s per MB/s asked

case = tap.Cases('bench_calibrate')


class Guest:
    """A guest that writes f(rate) pages/s, or the given figures first."""

    def __init__(self, f, first=()):
        self.f, self.first, self.asked = f, list(first), []

    def __call__(self, rate):
        self.asked.append(rate)
        return self.first.pop(0) if self.first else self.f(rate)


@case
def disturbed_sample_measured_again():
    # Catches: calibrate() scaling on one low figure (run 15 asked 3.8x the
    # rate, and "near" became a rate far above the cap).
    q = Guest(lambda r: r * PAGES)
    v = Guest(lambda r: r * PAGES, first=[1377.0])
    rate, gq, gv, first = bq.calibrate(None, 0, NOMINAL, TARGET, q, v)
    assert rate == NOMINAL and first is None, (rate, first)
    assert len(v.asked) == 2 and len(q.asked) == 1, (q.asked, v.asked)
    assert abs(gv - TARGET) / TARGET < 0.01, gv


@case
def slow_guests_asked_more():
    # Catches: no second try when both guests write 60% of what they are asked.
    q = Guest(lambda r: 0.6 * r * PAGES)
    v = Guest(lambda r: 0.62 * r * PAGES)
    rate, gq, gv, first = bq.calibrate(None, 0, NOMINAL, TARGET, q, v)
    assert first is not None and abs(rate - NOMINAL / 0.6) < 0.01, (rate, first)
    assert 0.8 <= min(gq, gv) / TARGET <= 1.25, (gq, gv)


@case
def at_most_four_times():
    # Catches: a guest that cannot keep up makes the script ask without bound.
    q = Guest(lambda r: 0.1 * r * PAGES)
    v = Guest(lambda r: 0.1 * r * PAGES)
    rate, _, _, _ = bq.calibrate(None, 0, NOMINAL, TARGET, q, v)
    assert rate == round(4 * NOMINAL, 3), rate


@case
def overshoot_settles_between():
    # Catches: keeping the second rate when it overshot (a rate limit that
    # catches up once asked more: half at the nominal, 1.2x above it).
    def f(r):
        return 0.5 * NOMINAL * PAGES if r <= NOMINAL else \
            0.5 * NOMINAL * PAGES + 2.0 * (r - NOMINAL) * PAGES
    q, v = Guest(f), Guest(f)
    rate, gq, gv, first = bq.calibrate(None, 0, NOMINAL, TARGET, q, v)
    assert NOMINAL < rate < 2 * NOMINAL, rate
    assert 0.8 <= min(gq, gv) / TARGET <= 1.25, (rate, gq, gv)


@case
def on_target_measured_once():
    # Catches: measuring again when both guests were on target (minutes of a run).
    q = Guest(lambda r: r * PAGES)
    v = Guest(lambda r: 0.9 * r * PAGES)
    rate, _, _, first = bq.calibrate(None, 0, NOMINAL, TARGET, q, v)
    assert rate == NOMINAL and first is None and len(q.asked) == len(v.asked) == 1


if __name__ == '__main__':
    sys.exit(case.run())
