"""3. Fan-out: 100 watch clients while cancels run; and a stalled watcher must not slow the others.

The 100 watchers live in a process of their own (bench._watchers, counting event lines). Cancels run closed
loop from 10 clients in the driver. Each cancel brings every watcher two events (the ``foc-req``
notification and the offer's ``cancel``); each offer added for it, one more (``new``).

Phase A: 100 watchers. Phase B: the same plus one stalled watcher (it sends ``watch`` and never reads; its
receive buffer is as small as the kernel allows). Reported: events per second delivered to the healthy
watchers during the cancels, the cancel rate, whether every healthy watcher received every event, and
whether the daemon cut the stalled watcher off (``watch.client_lagging``) instead of waiting for it.
"""

from __future__ import annotations

import json
import socket
import statistics
import subprocess
import time

from bench._harness import PYTHON, ROOT, Daemon, Sim, Workdir, child_env, percentile, spawn, stop_process
from bench._load import closed_loop

WATCHERS = 100
CANCEL_CLIENTS = 10


class Watchers:
    def __init__(self, path: str, n: int) -> None:
        self.proc = spawn([PYTHON, "-m", "bench._watchers", path, str(n)], stdin=subprocess.PIPE,
                          stdout=subprocess.PIPE, env=child_env(), cwd=ROOT, text=True)
        assert self.proc.stdout is not None
        if self.proc.stdout.readline().strip() != "READY":
            raise RuntimeError("watchers did not start")

    def mark(self) -> dict:
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.write("MARK\n")
        self.proc.stdin.flush()
        line = self.proc.stdout.readline()
        return json.loads(line[5:])

    def wait_counts(self, targets: list[int], timeout: float) -> dict:
        """Poll until every watcher has received at least its target count (or the timeout passes)."""
        deadline = time.monotonic() + timeout
        while True:
            mark = self.mark()
            if all(c >= t for c, t in zip(mark["counts"], targets, strict=True)) or time.monotonic() > deadline:
                return mark
            time.sleep(0.05)

    def close(self) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write("QUIT\n")
        self.proc.stdin.flush()
        stop_process(self.proc, timeout=5)


def _lagging_cutoffs(daemon: Daemon) -> int:
    return daemon.log_path.read_bytes().count(b'"watch.client_lagging"')


def _phase(daemon: Daemon, sim: Sim, watchers: Watchers, cancels: int) -> dict:
    before = watchers.mark()
    ids = sim.add_offers(cancels)
    daemon.wait_offers(sim.offer_count())
    start = watchers.wait_counts([c + cancels for c in before["counts"]], timeout=60)
    result = closed_loop(daemon.socket_path, CANCEL_CLIENTS, ids)
    end = watchers.mark()
    expected = [c + 2 * cancels for c in start["counts"]]
    settled = watchers.wait_counts(expected, timeout=60)
    if result.failures:
        raise RuntimeError(f"cancels failed: {result.failures[0]}")
    window = end["t"] - start["t"]
    per_watcher = [(e - s) / window for s, e in zip(start["counts"], end["counts"], strict=True)]
    complete = sum(1 for c, t in zip(settled["counts"], expected, strict=True) if c == t)
    return {
        "events_per_s": round(sum(per_watcher)),
        "events_per_s_per_watcher_median": round(statistics.median(per_watcher)),
        "events_per_s_per_watcher_min": round(min(per_watcher)),
        "cancels_per_s": round(result.rate()),
        "cancel_p99_ms": round(percentile(result.latencies_ns, 99) / 1e6, 2),
        "watchers_with_every_event": complete,
        "watchers_closed": len(settled["closed"]),
    }


def run(work: Workdir, *, quick: bool = False) -> dict:
    cancels = 300 if quick else 1000
    sim = Sim(work)
    daemon = Daemon(work, sim.url)
    stalled = None
    try:
        daemon.wait_session()
        watchers = Watchers(str(daemon.socket_path), WATCHERS)
        _phase(daemon, sim, watchers, cancels // 10)  # warm-up: first-use costs would count against phase A
        a = _phase(daemon, sim, watchers, cancels)
        cut0 = _lagging_cutoffs(daemon)
        stalled = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        stalled.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1)  # the kernel rounds it up to its minimum
        stalled.connect(str(daemon.socket_path))
        stalled.sendall(b'{"op":"watch","ref":"stalled"}\n')
        b = _phase(daemon, sim, watchers, cancels)
        stalled_cut_off = _lagging_cutoffs(daemon) > cut0
        watchers.close()
        out = {f"{k}_100_watchers": v for k, v in a.items()}
        out.update({f"{k}_with_stalled": v for k, v in b.items()})
        out["events_per_s"] = a["events_per_s"]
        out["stalled_watcher_cut_off"] = stalled_cut_off
        out["slowdown_with_stalled"] = round(a["events_per_s"] / b["events_per_s"], 2) if b["events_per_s"] else None
        return out
    finally:
        if stalled is not None:
            stalled.close()
        daemon.stop()
        sim.stop()
