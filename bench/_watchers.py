"""Watch clients in a process of their own: ``python -m bench._watchers SOCKET N``.

Connects N clients, sends ``watch`` on each, waits for every ``{"ok": true}``, prints ``READY``; then counts
the event lines each one receives (newlines only: counting must cost the watchers less than the daemon spends
sending). On stdin, ``MARK`` prints ``MARK {"t": perf_counter, "counts": [...], "closed": [...]}``; ``QUIT``
or EOF ends it.
"""

from __future__ import annotations

import json
import selectors
import socket
import sys
import time


def main(path: str, n: int) -> int:
    sel = selectors.DefaultSelector()
    socks = []
    for _ in range(n):
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.connect(path)
        sock.sendall(b'{"op":"watch","ref":"w"}\n')
        socks.append(sock)
    counts = [0] * n
    for i, sock in enumerate(socks):  # the first line of each is the watch's answer
        buf = b""
        while b"\n" not in buf:
            buf += sock.recv(65536)
        first, rest = buf.split(b"\n", 1)
        if not json.loads(first).get("ok"):
            raise SystemExit(f"watch refused: {first!r}")
        counts[i] = rest.count(b"\n")
        sock.setblocking(False)
    closed: list[int] = []
    index = {sock: i for i, sock in enumerate(socks)}
    for sock in socks:
        sel.register(sock, selectors.EVENT_READ)
    sel.register(sys.stdin, selectors.EVENT_READ)
    print("READY", flush=True)
    while True:
        for key, _ in sel.select():
            if key.fileobj is sys.stdin:
                command = sys.stdin.readline()
                if not command or command.startswith("QUIT"):
                    return 0
                print("MARK " + json.dumps({"t": time.perf_counter(), "counts": counts, "closed": closed}), flush=True)
                continue
            data = key.fileobj.recv(262144)
            if not data:
                sel.unregister(key.fileobj)
                closed.append(index[key.fileobj])
                continue
            counts[index[key.fileobj]] += data.count(b"\n")


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1], int(sys.argv[2])))
