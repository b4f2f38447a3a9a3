#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0
"""One guest image, two VMMs (Documentation/guest.rst), in real KVM.

QEMU boots build/vmdirty-guest.elf with -kernel (1 and 2 vCPUs, QMP over a
unix socket, debugcon to a FIFO), the guest's progress is read on its debug
console, QEMU stops it and saves its memory with pmemsave and with
dump-guest-memory, and `vmdirty checkmem` must find both dumps clean.  The
agent boots the same file and migrates it (dest --dump-mem); QEMU migrates
it over loopback; each destination's memory is checked the same way.  A
corrupted real dump and a bad command line must be caught.  Each case says
the one-line bug it catches.
"""
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), 'lib'))
import vmguest as vg  # noqa: E402

KSFT_SKIP = 4
MEM_MIB = 256
RATE = 4          # MB/s: a few hundred pages a second per vCPU under nested TCG
TICKS = 20        # progress ticks each vCPU must show before a stop

cases = []
results = {}


class Fail(Exception):
    pass


def check(cond, msg):
    if not cond:
        raise Fail(msg)


def case(fn):
    cases.append(fn)
    return fn


def wait_progress(dbg, vcpus, n=TICKS, timeout=90, qemu=None):
    """Each vCPU's ticks, once every vCPU has n (or the guest reported an error)."""
    def enough(d):
        return all(d.count(i) >= n for i in range(vcpus)) or d.first('E')
    dbg.wait(enough, timeout)
    e = dbg.first('E')
    check(not e, 'the guest reported: %s' % (e[1] if e else ''))
    counts = [dbg.count(i) for i in range(vcpus)]
    for i in range(vcpus):
        check(counts[i] >= n, 'vCPU %d: %d progress ticks in %d s; lines: %s%s' % (
            i, counts[i], timeout, [ln for _, ln in dbg.lines()[:4]],
            '; QEMU %s' % qemu.status() if qemu else ''))
    check(not dbg.garbage, '%d bytes on the debug console that are neither' % dbg.garbage)
    return counts


def check_dump(path, vcpus, ticks, what):
    """checkmem clean; every progress report the mailbox counts came to the console(s)."""
    rc, j, err = vg.checkmem(path)
    check(j is not None, '%s: checkmem gave no report (exit %d): %s' % (what, rc, err))
    check(rc == 0 and j['ok'], '%s: checkmem exit %d: %s' % (what, rc, j['first_problem']))
    check(j['vcpus'] == vcpus, '%s: %d vCPUs in the mailbox' % (what, j['vcpus']))
    check(j['checked'] > 0 and j['ops'] > 0, '%s: no page was checked' % what)
    for i in range(vcpus):
        # A vCPU stopped between counting a report and sending its tick owes one.
        rep = j['per_vcpu'][i]['reports']
        check(rep - ticks[i] in (0, 1), '%s: vCPU %d: %d progress reports in memory, %d ticks seen' % (
            what, i, rep, ticks[i]))
    return j


def settle(*dbgs):
    """Until the reader threads have read what the guests wrote."""
    time.sleep(0.5)


def qemu_boot(tmp, vcpus, append):
    """Boot under QEMU, watch progress, stop, dump both ways; the checked dumps."""
    dbg = vg.Debugcon(os.path.join(tmp, 'q%d.dbg' % vcpus))
    q = vg.Qemu(tmp, 'q%d' % vcpus, MEM_MIB, vcpus, append, dbg.path)
    try:
        check(dbg.wait(lambda d: d.first('B') or d.first('E'), 90), 'no boot record in 90 s')
        e = dbg.first('E')
        check(not e, 'the guest reported: %s' % (e[1] if e else ''))
        boot = vg.parse_boot(dbg.first('B')[1])
        check(boot.get('vcpus') == str(vcpus) and boot.get('mem_mib') == str(MEM_MIB),
              'boot record %s for %d vCPUs, %d MiB' % (boot, vcpus, MEM_MIB))
        wait_progress(dbg, vcpus, qemu=q)
        q.qmp.cmd('stop')
        settle(dbg)
        ticks = [dbg.count(i) for i in range(vcpus)]
        raw = os.path.join(tmp, 'q%d.raw' % vcpus)
        elf = os.path.join(tmp, 'q%d.elf' % vcpus)
        q.pmemsave(raw, MEM_MIB << 20)
        q.dump_elf(elf)
        jr = check_dump(raw, vcpus, ticks, 'pmemsave')
        je = check_dump(elf, vcpus, ticks, 'dump-guest-memory')
        os.unlink(elf)
        check(jr['ops'] == je['ops'] and jr['checked'] == je['checked'],
              'the two dumps of one stopped guest differ: %d/%d ops' % (jr['ops'], je['ops']))
        return boot, ticks, jr, raw
    finally:
        q.quit()
        dbg.close()


@case
def qemu_1vcpu_pit(tmp):
    """Catches: a guest that does not boot from qemu -kernel, calibrates its TSC wrong,
    loses progress reports on the way to debugcon, or whose dumps checkmem cannot read
    or finds bad."""
    boot, pv, j, raw = qemu_boot(tmp, 1, 'workload=random rate=%d seed=7 vcpus=1' % RATE)
    results['qemu_raw'] = raw
    results['qemu_raw_ops'] = j['ops']
    khz, want = int(boot['tsc_khz']), vg.kvm_tsc_khz()
    check(boot.get('tsc') == 'pit', 'boot record: tsc=%s, not calibrated' % boot.get('tsc'))
    check(want and abs(khz - want) <= want * 0.1,
          'PIT calibration: %d kHz, KVM gives guests %s kHz' % (khz, want))
    return 'booted, TSC %d kHz on the PIT (KVM: %d), %d ticks = reports, %d pages checked in both dumps' % (
        khz, want, pv[0], j['checked'])


@case
def qemu_2vcpus(tmp):
    """Catches: APs not started (INIT-SIPI-SIPI, trampoline), a vCPU on another's slice,
    a tick inside another vCPU's line."""
    khz = vg.kvm_tsc_khz()
    boot, pv, j, _ = qemu_boot(tmp, 2, 'workload=random rate=%d seed=9 vcpus=2 tsc_khz=%d' % (RATE, khz))
    check(boot.get('tsc') == 'cmdline', 'tsc_khz= ignored: %s' % boot)
    return '2 vCPUs up, %d and %d ticks = reports, %d pages checked in both dumps' % (
        pv[0], pv[1], j['checked'])


@case
def qemu_bad_cmdline(tmp):
    """Catches: a guest that ignores an unknown key instead of refusing to run."""
    dbg = vg.Debugcon(os.path.join(tmp, 'bad.dbg'))
    q = vg.Qemu(tmp, 'bad', 64, 1, 'workload=random nosuchkey=1', dbg.path)
    try:
        check(dbg.wait(lambda d: d.first('E') or d.progress(), 90), 'no record in 90 s')
        e = dbg.first('E')
        check(e and "unknown key 'nosuchkey'" in e[1], 'records: %s' % dbg.lines()[:3])
        time.sleep(0.5)
        check(not dbg.progress(), 'the guest ran anyway')
        q.qmp.cmd('stop')
        raw = os.path.join(tmp, 'bad.raw')
        q.pmemsave(raw, 64 << 20)
        rc, j, err = vg.checkmem(raw)
        check(rc == 1, 'checkmem exit %d on a guest that never ran' % rc)
        return 'refused: %s' % e[1]
    finally:
        q.quit()
        dbg.close()


@case
def checkmem_catches_a_corrupted_dump(tmp):
    """Catches: a checker that passes anything (it must fail a real dump with one byte
    flipped in a written page, and one in a version table)."""
    raw = results.get('qemu_raw')
    check(raw and os.path.exists(raw), 'no QEMU dump from the first case')
    import struct
    # vCPU 0's slice starts the work area with its version table (guest_abi.h).
    work, n = 0x400000, ((MEM_MIB << 20) - 0x400000) // 4096
    table = (n + 1024) // 1025
    with open(raw, 'rb') as f:
        f.seek(work)
        vers = struct.unpack('<%dI' % (n - table), f.read((n - table) * 4))
    p = next(i for i, v in enumerate(vers) if v)
    out = []
    for what, off in (('data page', work + (table + p) * 4096 + 100),
                      ('version table', work + p * 4)):
        path = os.path.join(tmp, 'corrupt.raw')
        shutil.copyfile(raw, path)
        with open(path, 'r+b') as f:
            f.seek(off)
            b = f.read(1)[0]
            f.seek(off)
            f.write(bytes([b ^ 0x10]))
        rc, j, err = vg.checkmem(path)
        check(rc == 1 and j and not j['ok'], '%s flipped: checkmem exit %d' % (what, rc))
        out.append('%s: "%s"' % (what, j['first_problem']))
    return '; '.join(out)


@case
def qemu_migration(tmp):
    """Catches: a guest that does not survive QEMU's own migration (its state, its
    progress counter), or a destination dump that does not check clean."""
    khz = vg.kvm_tsc_khz()
    append = 'workload=random rate=%d seed=11 vcpus=2 tsc_khz=%d' % (RATE, khz)
    sdbg = vg.Debugcon(os.path.join(tmp, 'ms.dbg'))
    ddbg = vg.Debugcon(os.path.join(tmp, 'md.dbg'))
    dst = vg.Qemu(tmp, 'md', MEM_MIB, 2, append, ddbg.path, incoming=True)
    src = None
    try:
        dst.qmp.cmd('migrate-incoming', uri='tcp:127.0.0.1:4790')
        src = vg.Qemu(tmp, 'ms', MEM_MIB, 2, append, sdbg.path)
        wait_progress(sdbg, 2, qemu=src)
        ops0 = src.ops(2, tmp)
        src.qmp.cmd('migrate-set-parameters', **{'downtime-limit': 300,
                                                 'max-bandwidth': 512 << 20})
        src.qmp.cmd('migrate', uri='tcp:127.0.0.1:4790')
        deadline = time.monotonic() + 180
        while True:
            st = src.qmp.cmd('query-migrate')
            if st.get('status') in ('completed', 'failed', 'cancelled'):
                break
            check(time.monotonic() < deadline, 'migration still %s after 180 s' % st.get('status'))
            time.sleep(0.2)
        check(st['status'] == 'completed', 'migration %s: %s' % (st['status'], st.get('error-desc')))
        st = src.migration_done(st)
        check(st.get('total-time', 0) > 0 and st.get('ram', {}).get('transferred', 0) > 0,
              'completed, but query-migrate says %s' % st)
        paused = src.ops(2, tmp)
        wait_progress(ddbg, 2, n=10, qemu=dst)
        dst.qmp.cmd('stop')
        settle(sdbg, ddbg)
        ticks = [sdbg.count(i) + ddbg.count(i) for i in range(2)]
        raw = os.path.join(tmp, 'md.raw')
        dst.pmemsave(raw, MEM_MIB << 20)
        j = check_dump(raw, 2, ticks, 'destination pmemsave (ticks on both consoles)')
        for i in range(2):
            ops = j['per_vcpu'][i]['ops']
            check(ops > paused[i] >= ops0[i],
                  'vCPU %d: ops %d before, %d at the pause, %d at the end' % (i, ops0[i], paused[i], ops))
        return 'completed in %d ms, downtime %d ms; guest ops %d -> %d at the pause -> %d; %d pages checked' % (
            st['total-time'], st['downtime'], sum(ops0), sum(paused), j['ops'], j['checked'])
    finally:
        if src:
            src.quit()
        dst.quit()
        sdbg.close()
        ddbg.close()


def agent_migration(tmp, vcpus, port):
    sdbg = vg.Debugcon(os.path.join(tmp, 'as%d.dbg' % vcpus))
    ddbg = vg.Debugcon(os.path.join(tmp, 'ad%d.dbg' % vcpus))
    raw = os.path.join(tmp, 'ad%d.raw' % vcpus)
    dlog = open(os.path.join(tmp, 'ad%d.log' % vcpus), 'w')
    addr = '127.0.0.1:%d' % port
    key = vg.agent_key(tmp)
    dst = subprocess.Popen([vg.AGENT, 'dest', '--listen', addr, '--json', '--run-for', '1',
                            '--wait', '120', '--debugcon', ddbg.path, '--dump-mem', raw,
                            '--key', key],
                           stdout=subprocess.PIPE, stderr=dlog, text=True)
    try:
        time.sleep(0.5)
        src = subprocess.run([vg.AGENT, 'source', '--to', addr, '--after', '2', '--json',
                              '--quiet', '--mem', '64', '--vcpus', str(vcpus), '--workload',
                              'random', '--rate', str(RATE), '--kernel', vg.IMAGE,
                              '--debugcon', sdbg.path, '--key', key],
                             capture_output=True, text=True,
                             timeout=300)
        out, _ = dst.communicate(timeout=120)
        check(src.returncode == 0, 'source exit %d: %s' % (src.returncode, src.stderr[-600:]))
        check(dst.returncode == 0, 'destination exit %d: %s' % (dst.returncode, out[-600:]))
        check(os.path.getsize(raw) == 64 << 20, 'dest --dump-mem wrote %d bytes' % os.path.getsize(raw))
        check(sdbg.first('B'), 'no boot record from the source')
        settle(sdbg, ddbg)
        for i in range(vcpus):
            check(sdbg.count(i) and ddbg.count(i), 'vCPU %d: no progress on one side' % i)
        ticks = [sdbg.count(i) + ddbg.count(i) for i in range(vcpus)]
        j = check_dump(raw, vcpus, ticks, 'dest --dump-mem (ticks on both consoles)')
        sj, dj = json.loads(src.stdout), json.loads(out)
        paused, resumed = sj['guest']['ops_end'], dj['guest']['ops_start']
        # The destination reads its counter once the guest runs there again.
        check(resumed >= paused and j['ops'] > paused,
              'ops %d at the pause, %d after the resume, %d at the end' % (paused, resumed, j['ops']))
        return '%d vCPU%s: guest ops %d at the switch -> %d; %d pages checked' % (
            vcpus, '' if vcpus == 1 else 's', paused, j['ops'], j['checked'])
    finally:
        if dst.poll() is None:
            dst.kill()
            dst.wait()
        dlog.close()
        sdbg.close()
        ddbg.close()


@case
def agent_migration_1vcpu(tmp):
    """Catches: the agent booting the file differently from QEMU (multiboot info,
    32-bit entry), debugcon not reaching --debugcon, a bad --dump-mem."""
    return agent_migration(tmp, 1, 4791)


@case
def agent_migration_2vcpus(tmp):
    """Catches: APs the agent's VMM does not run after SIPI (KVM_RUN's -EAGAIN)."""
    return agent_migration(tmp, 2, 4792)


@case
def agent_refuses_a_bad_append(tmp):
    """Catches: the agent booting a command line the guest would refuse."""
    p = subprocess.run([vg.AGENT, 'source', '--to', '127.0.0.1:1', '--after', '1',
                        '--append', 'nosuchkey=1'], capture_output=True, text=True, timeout=30)
    check(p.returncode == 2 and "unknown key 'nosuchkey'" in p.stderr,
          'exit %d: %s' % (p.returncode, p.stderr.strip()))
    return p.stderr.strip().splitlines()[-1]


def main():
    # GUEST_TEST_CASES="a b": only these (while debugging one).
    only = os.environ.get('GUEST_TEST_CASES', '').split()
    if only:
        cases[:] = [c for c in cases if c.__name__ in only]
    print('TAP version 13')
    print('1..%d' % len(cases))
    if os.geteuid() or not os.path.exists('/dev/kvm'):
        for i, c in enumerate(cases, 1):
            print('ok %d %s # SKIP needs root and /dev/kvm' % (i, c.__name__))
        return KSFT_SKIP
    if not (vg.AGENT and vg.IMAGE and shutil.which('qemu-system-x86_64')):
        print('# no agent (%s), image (%s) or qemu-system-x86_64' % (vg.AGENT, vg.IMAGE))
        return 1
    print('# image %s, agent %s' % (vg.IMAGE, vg.AGENT))
    subprocess.run(['ip', 'link', 'set', 'lo', 'up'])
    tmp = tempfile.mkdtemp(prefix='vmdirty-guest-')
    failed = 0
    try:
        for i, c in enumerate(cases, 1):
            t0 = time.monotonic()
            d = os.path.join(tmp, c.__name__)
            os.mkdir(d)
            try:
                msg = c(d)
                print('ok %d %s: %s (%.1f s)' % (i, c.__name__, msg, time.monotonic() - t0))
            except (Fail, vg.QMPError, subprocess.TimeoutExpired, OSError) as e:
                failed += 1
                print('not ok %d %s: %s' % (i, c.__name__, e))
                for f in sorted(os.listdir(d)):
                    if f.endswith('.log') and os.path.getsize(os.path.join(d, f)):
                        with open(os.path.join(d, f)) as fh:
                            for ln in fh.read().splitlines()[-10:]:
                                print('#   %s: %s' % (f, ln))
            sys.stdout.flush()
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    print('# %d of %d failed' % (failed, len(cases)))
    return 1 if failed else 0


if __name__ == '__main__':
    sys.exit(main())
