#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0
"""The man in the middle, for trust_test.sh.

relay.py relay LISTEN_PORT TARGET_PORT PREFIX
    Forward every connection on 127.0.0.1:LISTEN_PORT to TARGET_PORT and
    keep what each client sent in PREFIX.<n> (n = 0, 1, ... in accept
    order).  Prints "ready" once listening; runs until killed.
relay.py replay FILE PORT
    Send FILE's bytes to 127.0.0.1:PORT as a new connection (a recorded
    session played back), then wait up to 10 s for the other side to close;
    prints how many bytes came back and whether it closed.
relay.py count FILE
    How often the header of a PAGES message of ours (magic, version 2,
    type 4) and a TLS application-data record header occur in FILE.
"""
import socket
import sys
import threading
import time


def pipe(a, b, rec):
    try:
        while True:
            d = a.recv(65536)
            if not d:
                break
            if rec:
                rec.write(d)
                rec.flush()
            b.sendall(d)
    except OSError:
        pass
    finally:
        try:
            b.shutdown(socket.SHUT_WR)
        except OSError:
            pass


def relay(lport, tport, prefix):
    ls = socket.socket()
    ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    ls.bind(("127.0.0.1", lport))
    ls.listen(64)
    print("ready", flush=True)
    n = 0
    while True:
        c, _ = ls.accept()
        s = socket.create_connection(("127.0.0.1", tport))
        for x in (c, s):
            x.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        rec = open("%s.%d" % (prefix, n), "wb")
        n += 1
        threading.Thread(target=pipe, args=(c, s, rec), daemon=True).start()
        threading.Thread(target=pipe, args=(s, c, None), daemon=True).start()


def replay(path, port):
    data = open(path, "rb").read()
    s = socket.create_connection(("127.0.0.1", port))
    got, closed = 0, False
    try:
        s.sendall(data)
        s.settimeout(10)
        end = time.time() + 10
        while time.time() < end:
            d = s.recv(65536)
            if not d:
                closed = True
                break
            got += len(d)
    except (socket.timeout, OSError) as e:
        closed = not isinstance(e, socket.timeout)
    print("sent %d bytes, got %d back, %s" % (len(data), got, "closed" if closed else "open"))


def count(path):
    data = open(path, "rb").read()
    print("%d %d" % (data.count(b"VMDW\x02\x00\x04"), data.count(b"\x17\x03\x03")))


if __name__ == "__main__":
    cmd = sys.argv[1]
    if cmd == "relay":
        relay(int(sys.argv[2]), int(sys.argv[3]), sys.argv[4])
    elif cmd == "replay":
        replay(sys.argv[2], int(sys.argv[3]))
    elif cmd == "count":
        count(sys.argv[2])
    else:
        sys.exit(2)
