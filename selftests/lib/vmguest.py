# SPDX-License-Identifier: GPL-2.0
"""The one guest image under either VMM, for the selftests and the QEMU bench.

- QMP: a small QMP client (JSON over a unix socket, no third-party module).
- Debugcon: reads a guest's debug console through a FIFO on a thread and
  timestamps every progress tick and line as it arrives (CLOCK_MONOTONIC), so
  that both VMMs' guests are observed the same way (Documentation/guest.rst).
- Qemu: qemu-system-x86_64 booting the image with -kernel, QMP and debugcon.
- checkmem(): runs `vmdirty checkmem --json` on a dump.

Imported from selftests/ (installed next to the tests) and scripts/bench_qemu.py.
"""
import json
import os
import select
import socket
import subprocess
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
# vCPU 0's progress counter in the mailbox; vCPU i's is 256 * i further (guest_abi.h).
OPS_GPA = 0x10098

def find_file(env, names):
    """$env, else the first of names (relative to this file) that exists."""
    if os.environ.get(env):
        return os.environ[env]
    for n in names:
        p = os.path.normpath(os.path.join(HERE, n))
        if os.path.exists(p):
            return p
    return None


# Installed: build/kselftest/vmdirty/lib; in the tree: selftests/lib.
AGENT = find_file('VMDIRTY', ['../../../vmdirty', '../../build/vmdirty'])
IMAGE = find_file('VMDIRTY_GUEST', ['../../../vmdirty-guest.elf', '../../build/vmdirty-guest.elf'])


def agent_key(d):
    """A new key file in directory d (vmdirty genkey), for --key on both agents."""
    path = os.path.join(d, 'key')
    if not os.path.exists(path):
        subprocess.run([AGENT, 'genkey', path], check=True, capture_output=True, timeout=30)
    return path


class QMPError(Exception):
    pass


class QMP:
    """One QMP connection: commands in order, events kept for wait_event()."""

    def __init__(self, path, timeout=60):
        deadline = time.monotonic() + timeout
        while True:
            try:
                self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                self.sock.connect(path)
                break
            except OSError:
                self.sock.close()
                if time.monotonic() > deadline:
                    raise QMPError('no QMP socket at %s' % path)
                time.sleep(0.05)
        self.sock.settimeout(timeout)
        self.buf = b''
        self.events = []
        greeting = self._read()
        if 'QMP' not in greeting:
            raise QMPError('not a QMP greeting: %r' % greeting)
        self.cmd('qmp_capabilities')

    def _read(self):
        while b'\n' not in self.buf:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise QMPError('QMP connection closed')
            self.buf += chunk
        line, self.buf = self.buf.split(b'\n', 1)
        return json.loads(line)

    def cmd(self, name, **args):
        msg = {'execute': name}
        if args:
            msg['arguments'] = args
        self.sock.sendall(json.dumps(msg).encode() + b'\n')
        while True:
            r = self._read()
            if 'event' in r:
                self.events.append(r)
                continue
            if 'error' in r:
                raise QMPError('%s: %s' % (name, r['error'].get('desc', r['error'])))
            return r.get('return')

    def wait_event(self, name, timeout=60):
        deadline = time.monotonic() + timeout
        while True:
            for i, e in enumerate(self.events):
                if e['event'] == name:
                    return self.events.pop(i)
            left = deadline - time.monotonic()
            if left <= 0:
                raise QMPError('no %s event in %d s' % (name, timeout))
            self.sock.settimeout(left)
            try:
                r = self._read()
            except socket.timeout:
                continue
            if 'event' in r:
                self.events.append(r)

    def close(self):
        self.sock.close()


def tick_vcpu(c):
    """The vCPU of a progress tick (guest_abi.h: one base-32 digit), or -1."""
    if '0' <= c <= '9':
        return ord(c) - ord('0')
    if 'a' <= c <= 'v':
        return ord(c) - ord('a') + 10
    return -1


class Debugcon:
    """A FIFO at path, read on a thread; every progress tick and line timestamped on arrival.

    The guest's console (guest_abi.h): one byte a progress report (a tick,
    the vCPU index as a base-32 digit), and lines that start with an
    upper-case letter (B: booted, E: an error).  Opened read-write, so that
    the FIFO never reports end of file between writers and a writer's open
    never waits (QEMU's file chardev, vmdirty --debugcon).
    """

    def __init__(self, path):
        self.path = path
        if os.path.exists(path):
            os.unlink(path)
        os.mkfifo(path)
        self.fd = os.open(path, os.O_RDWR | os.O_NONBLOCK)
        self.lock = threading.Lock()
        self.ticks = []     # (monotonic time, vcpu)
        self.lines_ = []    # (monotonic time, text)
        self.garbage = 0
        self.line = None
        self.stop = False
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _feed(self, now, data):
        for c in data.decode('latin-1'):
            if self.line is not None:
                if c == '\n':
                    self.lines_.append((now, self.line))
                    self.line = None
                else:
                    self.line += c
            elif 'A' <= c <= 'Z':
                self.line = c
            elif c != '\n':
                v = tick_vcpu(c)
                if v >= 0:
                    self.ticks.append((now, v))
                else:
                    self.garbage += 1

    def _run(self):
        while not self.stop:
            r, _, _ = select.select([self.fd], [], [], 0.05)
            if not r:
                continue
            try:
                data = os.read(self.fd, 65536)
            except BlockingIOError:
                continue
            now = time.monotonic()
            with self.lock:
                self._feed(now, data)

    def lines(self):
        with self.lock:
            return list(self.lines_)

    def progress(self):
        """[(time, vcpu)]: every tick so far."""
        with self.lock:
            return list(self.ticks)

    def count(self, vcpu):
        with self.lock:
            return sum(1 for _, v in self.ticks if v == vcpu)

    def first(self, kind):
        for t, ln in self.lines():
            if ln.startswith(kind + ' '):
                return t, ln
        return None

    def wait(self, pred, timeout):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if pred(self):
                return True
            time.sleep(0.05)
        return pred(self)

    def close(self):
        self.stop = True
        self.thread.join()
        os.close(self.fd)
        os.unlink(self.path)


def parse_boot(line):
    """The B record's key=value pairs."""
    return dict(w.split('=', 1) for w in line.split()[1:] if '=' in w)


class Qemu:
    """qemu-system-x86_64 booting the image, QMP on a unix socket, debugcon to a path."""

    def __init__(self, workdir, name, mem_mib, vcpus, append, debugcon, image=None,
                 accel='kvm', incoming=False, extra=()):
        self.qmp_path = os.path.join(workdir, name + '.qmp')
        self.log_path = os.path.join(workdir, name + '.log')
        cmd = ['qemu-system-x86_64', '-nodefaults', '-no-user-config', '-display', 'none',
               '-machine', 'pc', '-accel', accel, '-cpu', 'host' if accel.startswith('kvm') else 'max',
               '-m', str(mem_mib), '-smp', str(vcpus), '-kernel', image or IMAGE,
               '-append', append,
               '-chardev', 'file,id=dbg,path=%s' % debugcon,
               '-device', 'isa-debugcon,iobase=0xe9,chardev=dbg',
               '-qmp', 'unix:%s,server=on,wait=off' % self.qmp_path]
        if incoming:
            cmd += ['-incoming', 'defer']
        cmd += list(extra)
        self.cmdline = cmd
        self.log = open(self.log_path, 'w')
        self.proc = subprocess.Popen(cmd, stdout=self.log, stderr=subprocess.STDOUT)
        try:
            self.qmp = QMP(self.qmp_path)
        except QMPError:
            self.kill()
            raise QMPError('QEMU did not start: %s' % self.log_text())

    def log_text(self):
        try:
            with open(self.log_path) as f:
                return f.read().strip()[-2000:]
        except OSError:
            return ''

    def status(self):
        return self.qmp.cmd('query-status')['status']

    def pmemsave(self, path, size, gpa=0):
        self.qmp.cmd('pmemsave', val=gpa, size=size, filename=path)

    def ops(self, vcpus, tmp):
        """The guest's progress counters, read from its mailbox (GUEST_OPS_GPA)."""
        out = []
        path = os.path.join(tmp, 'ops.bin')
        for i in range(vcpus):
            self.pmemsave(path, 8, OPS_GPA + 256 * i)
            with open(path, 'rb') as f:
                out.append(int.from_bytes(f.read(), 'little'))
        os.unlink(path)
        return out

    def migration_done(self, st, timeout=5.0):
        """query-migrate once it says 'completed' with its times filled in.

        QEMU sets the status in migration_completion() and the total and
        down times after it returns (migration_calculate_complete()), so a
        query in between reads 'completed' with both at 0 (seen in CI on
        2026-12-06).  Ask again until total-time is there.
        """
        deadline = time.monotonic() + timeout
        while (st.get('status') == 'completed' and not st.get('total-time') and
               time.monotonic() < deadline):
            time.sleep(0.05)
            st = self.qmp.cmd('query-migrate')
        return st

    def dump_elf(self, path):
        self.qmp.cmd('dump-guest-memory', paging=False, protocol='file:' + path)

    def quit(self):
        try:
            self.qmp.cmd('quit')
        except (QMPError, OSError):
            pass
        try:
            self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.kill()
        self.qmp.close()
        self.log.close()

    def kill(self):
        self.proc.kill()
        self.proc.wait()
        self.log.close()


def checkmem(dump):
    """vmdirty checkmem --json DUMP: (exit status, its JSON or None, stderr)."""
    p = subprocess.run([AGENT, 'checkmem', '--json', dump], capture_output=True, text=True)
    try:
        j = json.loads(p.stdout)
    except ValueError:
        j = None
    return p.returncode, j, p.stderr.strip()


def kvm_tsc_khz():
    """KVM_GET_TSC_KHZ of a new vCPU: the TSC rate a KVM guest gets here by default."""
    import fcntl
    kvm = vm = vcpu = -1
    try:
        kvm = os.open('/dev/kvm', os.O_RDWR)
        vm = fcntl.ioctl(kvm, 0xae01, 0)      # KVM_CREATE_VM
        vcpu = fcntl.ioctl(vm, 0xae41, 0)     # KVM_CREATE_VCPU
        return fcntl.ioctl(vcpu, 0xaea3, 0)   # KVM_GET_TSC_KHZ
    except OSError:
        return None
    finally:
        for fd in (vcpu, vm, kvm):
            if fd >= 0:
                os.close(fd)
