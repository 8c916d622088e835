"""Load generators: many clients of the daemon's socket from one process, on non-blocking sockets + epoll.

``closed_loop``: N clients, each with one cancel in flight, the next sent as soon as the answer arrives.
``open_loop``: cancels sent on a fixed schedule (pipelined over a few connections, matched by ``ref``); each
latency is measured from the *scheduled* send time, so a stall is not hidden (no coordinated omission).
Both return per-cancel latencies and the completion times, and refuse to count an answer that is not ``ok``.
"""

from __future__ import annotations

import json
import selectors
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import attrs


@attrs.define
class LoadResult:
    latencies_ns: list[int]
    done_at: list[float]  # perf_counter() of each completion, in order
    failures: list[str]
    elapsed_s: float

    def rate(self, skip: float = 0.1) -> float:
        """Completions per second between the *skip* and 1 - *skip* quantiles of completions (steady state)."""
        n = len(self.done_at)
        if n < 10:
            return float("nan")
        lo, hi = int(n * skip), int(n * (1 - skip)) - 1
        span = self.done_at[hi] - self.done_at[lo]
        return (hi - lo) / span if span > 0 else float("nan")


def _connect(path: Path | str) -> socket.socket:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.connect(str(path))
    sock.setblocking(False)
    return sock


def _line(offer_id: int, ref: int) -> bytes:
    return b'{"op":"cancel","id":%d,"ref":%d}\n' % (offer_id, ref)


def _check(line: bytes, failures: list[str]) -> tuple[int, bool]:
    """The ref of an answer line, and whether it is ok (if not, it is recorded as a failure)."""
    ok = line.startswith(b'{"ok":true')
    if not ok:
        failures.append(line[:300].decode(errors="replace"))
    return json.loads(line)["ref"], ok


def closed_loop(path: Path | str, clients: int, ids: list[int], *, timeout: float = 120.0) -> LoadResult:
    """Cancel every id in *ids*, *clients* at a time, each client sequential."""
    sel = selectors.DefaultSelector()
    queue: Iterator[int] = iter(enumerate(ids))
    latencies: list[int] = []
    done_at: list[float] = []
    failures: list[str] = []
    socks = [_connect(path) for _ in range(clients)]
    sent_at: dict[int, int] = {}
    bufs: dict[socket.socket, bytes] = {}

    def send_next(sock: socket.socket) -> bool:
        item = next(queue, None)
        if item is None:
            return False
        ref, offer_id = item
        sent_at[ref] = time.perf_counter_ns()
        sock.sendall(_line(offer_id, ref))  # a few dozen bytes: fits the socket buffer at once
        return True

    started = time.perf_counter()
    inflight = 0
    for sock in socks:
        sel.register(sock, selectors.EVENT_READ)
        bufs[sock] = b""
        if send_next(sock):
            inflight += 1
    deadline = started + timeout
    while inflight:
        if time.perf_counter() > deadline:
            failures.append(f"timed out with {inflight} cancels in flight")
            break
        for sock, ref, ok, now in _answers(sel, bufs, 1.0, failures):
            started_ns = sent_at.pop(ref)
            if ok:
                latencies.append(now - started_ns)
                done_at.append(now / 1e9)
            inflight -= 1
            if send_next(sock):
                inflight += 1
    elapsed = time.perf_counter() - started
    for sock in socks:
        sel.unregister(sock)
        sock.close()
    return LoadResult(latencies, done_at, failures, elapsed)


def _answers(sel: selectors.BaseSelector, bufs: dict[socket.socket, bytes], wait: float,
             failures: list[str]) -> Iterator[tuple[socket.socket, int, bool, int]]:
    """Read what the ready sockets hold; yield (socket, ref, ok, arrival ns) for each complete answer line."""
    for key, _ in sel.select(wait):
        sock = key.fileobj
        data = sock.recv(65536)
        if not data:
            raise ConnectionError("bfxd closed a client connection")
        buf = bufs[sock] + data
        while (end := buf.find(b"\n")) >= 0:
            line, buf = buf[:end], buf[end + 1:]
            now = time.perf_counter_ns()
            ref, ok = _check(line, failures)
            yield sock, ref, ok, now
        bufs[sock] = buf


def open_loop(path: Path | str, rate: float, ids: list[int], *, connections: int = 10,
              timeout: float = 120.0) -> LoadResult:
    """Cancel every id in *ids* at *rate* per second (round-robin over *connections*, pipelined)."""
    sel = selectors.DefaultSelector()
    socks = [_connect(path) for _ in range(connections)]
    bufs = {sock: b"" for sock in socks}
    for sock in socks:
        sel.register(sock, selectors.EVENT_READ)
    latencies: list[int] = []
    done_at: list[float] = []
    failures: list[str] = []
    due_ns: dict[int, int] = {}
    interval_ns = int(1e9 / rate)
    start_ns = time.perf_counter_ns() + 10_000_000
    n, next_i, answered = len(ids), 0, 0
    deadline = time.perf_counter() + timeout + n / rate
    while answered < n:
        now = time.perf_counter_ns()
        while next_i < n and start_ns + next_i * interval_ns <= now:
            due_ns[next_i] = start_ns + next_i * interval_ns
            socks[next_i % connections].sendall(_line(ids[next_i], next_i))
            next_i += 1
        if time.perf_counter() > deadline:
            failures.append(f"timed out with {next_i - answered} cancels in flight")
            break
        wait = (start_ns + next_i * interval_ns - time.perf_counter_ns()) / 1e9 if next_i < n else 1.0
        for _sock, ref, ok, now in _answers(sel, bufs, max(0.0, wait), failures):
            due = due_ns.pop(ref)
            if ok:
                latencies.append(now - due)
                done_at.append(now / 1e9)
            answered += 1
    elapsed = time.perf_counter_ns() / 1e9 - start_ns / 1e9
    for sock in socks:
        sel.unregister(sock)
        sock.close()
    return LoadResult(latencies, done_at, failures, elapsed)
