# SPDX-License-Identifier: GPL-2.0
"""The scripts' unit tests (scripts/*_test.py, run by make test): cases and TAP.

    case = tap.Cases('bench_passes')

    @case
    def something():
        assert ...

    sys.exit(case.run())
"""


class Cases:
    """The cases of one test file, in the order they were declared."""

    def __init__(self, name):
        self.name = name
        self.fns = []

    def __call__(self, fn):
        self.fns.append(fn)
        return fn

    def run(self):
        """Every case, one TAP line each; 1 if any failed."""
        print('TAP version 13')
        print('1..%d' % len(self.fns))
        failed = 0
        for i, fn in enumerate(self.fns, 1):
            try:
                fn()
                print('ok %d %s: %s' % (i, self.name, fn.__name__))
            except AssertionError as e:
                failed += 1
                print('not ok %d %s: %s: %s' % (i, self.name, fn.__name__, e))
        return 1 if failed else 0
