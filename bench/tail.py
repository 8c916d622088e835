"""Tail latency under contention: p99 and max at 1,000 cancels/s, alone and with a one-core CPU hog beside it.

Open loop (bench._load.open_loop: a cancel every millisecond over 10 connections, latency from the scheduled
send time, so a stall is not hidden) against the fast stub (bench._stub), so that the exchange's own CPU does
not compete. Twice: alone, then with a hog (a child process spinning on one core, ended after the run and
bounded in time in any case). Goal: p99 at most 20 ms with the hog. ``slow_*`` counts cancels over 100 ms and
``stalls`` lists the worst ones (when, in seconds from the first answer and in UTC to match the daemon's log
timestamps, and ms) to find a stall by.
"""

from __future__ import annotations

import datetime
import subprocess
import time

from bench._harness import PYTHON, Daemon, Sim, Workdir, percentile, spawn, stop_process
from bench._load import LoadResult, open_loop

RATE = 1000.0
_HOG = "import time\nend = time.monotonic() + {s}\nwhile time.monotonic() < end:\n    pass\n"


def _utc(t: float) -> str:
    return datetime.datetime.fromtimestamp(t, datetime.UTC).isoformat(timespec="milliseconds")


def _figures(result: LoadResult, tag: str) -> dict:
    lat = result.latencies_ns
    worst = sorted(range(len(lat)), key=lat.__getitem__, reverse=True)[:5]
    start = result.done_at[0] if result.done_at else 0.0
    to_wall = time.time() - time.perf_counter()  # done_at is perf_counter(): UTC, to match the daemon's log
    return {
        f"p50_ms_{tag}": round(percentile(lat, 50) / 1e6, 2),
        f"p99_ms_{tag}": round(percentile(lat, 99) / 1e6, 2),
        f"max_ms_{tag}": round(max(lat, default=0) / 1e6, 2),
        f"slow_over_100ms_{tag}": sum(1 for v in lat if v > 100e6),
        f"achieved_per_s_{tag}": round(len(lat) / result.elapsed_s) if result.elapsed_s else 0,
        f"failed_{tag}": len(result.failures),
        f"stalls_{tag}": [{"at_s": round(result.done_at[i] - start, 3), "ms": round(lat[i] / 1e6, 1),
                           "answered_utc": _utc(result.done_at[i] + to_wall)} for i in worst],
    }


def run(work: Workdir, *, quick: bool = False) -> dict:
    count = 3000 if quick else 10_000
    stub = Sim(work, stub=True)
    daemon = Daemon(work, stub.url)
    out: dict = {"rate": RATE, "cancels_each": count}
    try:
        daemon.wait_session()
        for tag in ("alone", "with_hog"):
            ids = stub.add_offers(count)
            daemon.wait_offers(stub.offer_count())
            daemon.full_bucket()
            hog, links0 = None, daemon.disconnects()
            if tag == "with_hog":
                hog = spawn([PYTHON, "-c", _HOG.format(s=count / RATE + 60)], stdin=subprocess.DEVNULL)
            try:
                result = open_loop(daemon.socket_path, RATE, ids, connections=10)
            finally:
                if hog is not None:
                    stop_process(hog, timeout=5)
            daemon.phase_ended(inputs=count)
            out.update(_figures(result, tag))
            out[f"disconnects_{tag}"] = daemon.disconnects() - links0
        return out
    finally:
        daemon.stop()
        stub.stop()
