"""2. Throughput: sustained cancels per second with 1, 10 and 100 concurrent clients; p99 at 1,000 cancels/s.

Closed loop (bench._load.closed_loop): each client has one cancel in flight and sends the next as soon as its
answer arrives; the rate is taken between the 10th and the 90th percentile of completions (steady state).
Open loop at 1,000/s (bench._load.open_loop): a cancel every millisecond, pipelined over 10 connections,
latency measured from the scheduled send time. Every cancel is of a distinct active offer and must succeed.

CPU of the daemon, the simulator and the client process is reported as a share of one core over the run, to
show which one is the bottleneck (the simulator must not be).

Then 100 clients again against the fast stub (bench._stub), a daemon of its own, in STUB_ROUNDS rounds of two
phases: one with the processes where the OS puts them (``*_100_clients_stub``) and one with that daemon on a
CPU of its own, the stub and the clients on the other (``*_100_clients_stub_pinned``: the daemon's own cost,
without where the OS placed the three processes), in alternating order. The machine's speed drifts within a
minute (bench/README.md "Speed"): rounds give both kinds the same machine, and each figure is the median of
its rounds (``*_rounds`` lists them; failures are summed).
Each phase is at most 10,000 cancels and starts with the daemon's input bucket full (its pace is set to
bench._harness.PACE with a burst of BURST, far above what a phase sends: see bench/README.md).
"""

from __future__ import annotations

import contextlib
import os
import statistics
import time

from bench._harness import Daemon, Sim, Workdir, daemon_on_own_cpu, percentile
from bench._load import LoadResult, closed_loop, open_loop

STUB_ROUNDS = 4
STUB_TAGS = ("100_clients_stub", "100_clients_stub_pinned")


def _own_cpu_s() -> float:
    t = os.times()
    return t.user + t.system


def _measure(daemon: Daemon, sim: Sim, run) -> tuple[LoadResult, dict]:  # type: ignore[no-untyped-def]
    cpu0 = daemon.cpu_s(), sim.cpu_s(), _own_cpu_s()
    started = time.perf_counter()
    result = run()
    wall = time.perf_counter() - started
    cpu1 = daemon.cpu_s(), sim.cpu_s(), _own_cpu_s()
    shares = {f"{name}_cpu_pct": round((b - a) / wall * 100)
              for name, a, b in zip(("daemon", "sim", "client"), cpu0, cpu1, strict=True)}
    # CPU per cancel: unlike a rate, it hardly moves with other load on the machine; 1e6 / it is the most one
    # core could do.
    shares.update({f"{name}_cpu_us_per_cancel": round((b - a) / len(result.latencies_ns) * 1e6)
                   for name, a, b in zip(("daemon", "sim"), cpu0[:2], cpu1[:2], strict=True)})
    # A cancel that does not succeed (e.g. a daemon-side timeout under overload) is counted, not timed.
    shares["failed"] = len(result.failures)
    if result.failures:
        shares["first_failure"] = result.failures[0]
    return result, shares


def _closed(daemon: Daemon, sim: Sim, clients: int, count: int, tag: str, out: dict) -> None:
    """One closed-loop phase of *count* cancels from *clients* clients; figures go to *out* with *tag*."""
    ids = sim.add_offers(count)
    daemon.wait_offers(sim.offer_count())
    daemon.full_bucket()  # every phase starts with the pace's bucket full (count <= BURST)
    log0 = daemon.log_stats()
    result, cpu = _measure(daemon, sim, lambda: closed_loop(daemon.socket_path, clients, ids))
    daemon.phase_ended(inputs=count)  # one cancel, one input
    out[f"cancels_per_s_{tag}"] = round(result.rate())
    out[f"p50_ms_{tag}"] = round(percentile(result.latencies_ns, 50) / 1e6, 2)
    out[f"p99_ms_{tag}"] = round(percentile(result.latencies_ns, 99) / 1e6, 2)
    out.update({f"{k}_{tag}": v for k, v in cpu.items()})
    lines, size = (b - a for a, b in zip(log0, daemon.log_stats(), strict=True))
    out[f"log_lines_per_cancel_{tag}"] = round(lines / count, 2)
    out[f"log_bytes_per_cancel_{tag}"] = round(size / count)


def _stub_rounds(daemon: Daemon, stub: Sim, count: int, out: dict) -> None:
    """STUB_ROUNDS rounds of an unpinned and a pinned phase of *count* cancels each, alternating which goes first
    (the second of a pair finds the daemon warmer); the medians go to *out*, the rounds as ``*_rounds``."""
    phases: dict[str, list[dict]] = {tag: [] for tag in STUB_TAGS}
    for round_number in range(STUB_ROUNDS):
        for tag in STUB_TAGS if round_number % 2 == 0 else reversed(STUB_TAGS):
            phase: dict = {}
            with daemon_on_own_cpu(daemon, stub) if tag.endswith("_pinned") else contextlib.nullcontext():
                _closed(daemon, stub, 100, count, tag, phase)
            phases[tag].append(phase)
    for tag, rounds in phases.items():
        for key in dict.fromkeys(key for phase in rounds for key in phase):  # first_failure is in some only
            values = [r[key] for r in rounds if key in r]
            if key.startswith("failed_"):
                out[key] = sum(values)
            elif all(isinstance(v, int) for v in values):
                out[key] = round(statistics.median(values))
            elif all(isinstance(v, (int, float)) for v in values):
                out[key] = round(statistics.median(values), 2)
            else:
                out[key] = values[0]  # first_failure
        for figure in ("cancels_per_s", "daemon_cpu_us_per_cancel", "sim_cpu_us_per_cancel"):
            out[f"{figure}_{tag}_rounds"] = [r[f"{figure}_{tag}"] for r in rounds]


def run(work: Workdir, *, quick: bool = False) -> dict:
    scale = 0.25 if quick else 1.0
    # Each phase starts with a full bucket (BURST, far more than a phase sends), so the pace never holds a cancel.
    plan = ((1, int(4000 * scale)), (10, int(10000 * scale)), (100, int(10000 * scale)))
    fixed_count = int(10000 * scale)  # 10 s at 1,000/s
    out: dict = {}
    sim = Sim(work)
    daemon = Daemon(work, sim.url)
    try:
        daemon.wait_session()
        for clients, count in plan:
            _closed(daemon, sim, clients, count, f"{clients}_client" if clients == 1 else f"{clients}_clients", out)
        out["log_lines_per_cancel"] = out["log_lines_per_cancel_1_client"]
        out["log_bytes_per_cancel"] = out["log_bytes_per_cancel_1_client"]
        ids = sim.add_offers(fixed_count)
        daemon.wait_offers(sim.offer_count())
        daemon.full_bucket()
        links0, cut0 = daemon.disconnects(), sim.cut_offs()
        result, cpu = _measure(daemon, sim, lambda: open_loop(daemon.socket_path, 1000.0, ids, connections=10))
        # A lost link costs a reconnect (backoff from reconnect.initial_delay, 1 s), an auth and a snapshot
        # before the cancels in flight are settled: the suspect for a stall of about a second.
        out["disconnects_at_1000_per_s"] = daemon.disconnects() - links0
        out["sim_cut_offs_at_1000_per_s"] = sim.cut_offs() - cut0
        out["achieved_per_s_at_1000"] = round(len(result.latencies_ns) / result.elapsed_s)
        out["p50_ms_at_1000_per_s"] = round(percentile(result.latencies_ns, 50) / 1e6, 2)
        out["p99_ms_at_1000_per_s"] = round(percentile(result.latencies_ns, 99) / 1e6, 2)
        out["max_ms_at_1000_per_s"] = round(max(result.latencies_ns, default=0) / 1e6, 2)
        out.update({f"{k}_at_1000_per_s": v for k, v in cpu.items()})
        out["peak_buffer_used"] = daemon.channel_peaks()  # over every run above: the heaviest load of the bench
    finally:
        daemon.stop()
        sim.stop()

    # 100 clients against the fast stub: the daemon's own cost, with the exchange's taken out of the way.
    stub = Sim(work, stub=True)
    daemon = Daemon(work, stub.url)
    try:
        daemon.wait_session()
        _stub_rounds(daemon, stub, int(10000 * scale / STUB_ROUNDS), out)
        out["peak_buffer_used_stub"] = daemon.channel_peaks()
        return out
    finally:
        daemon.stop()
        stub.stop()
