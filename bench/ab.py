"""``python -m bench.ab DIR [DIR ...]``: the daemon's CPU per cancel, one daemon per source tree, interleaved.

Each DIR holds a ``bfxd/`` package (a copy of ``daemon/`` with one change, or a checkout of an older commit).
Every variant gets its own fast stub (bench._stub) and its own daemon; then, round after round, each variant
runs the same closed-loop phase (100 clients, ``--count`` cancels): machine load weighs on every variant alike.
Printed per variant: the median over the rounds of the daemon's CPU per cancel, of the rate and of the round
trip's p50 (with ``--clients 1``, the latency), and the ratio of each to the first variant's. Not part of
``make bench``: a tool to rank the suspects of a regression, one change at a time.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
from pathlib import Path

from bench import _harness
from bench._harness import BURST, Daemon, Sim, Workdir, percentile
from bench._load import closed_loop


def _phase(daemon: Daemon, stub: Sim, clients: int, count: int) -> tuple[float, float, float]:
    """One closed-loop phase: (daemon CPU µs per cancel, cancels per second, round trip p50 in µs)."""
    ids = stub.add_offers(count)
    daemon.wait_offers(stub.offer_count())
    daemon.full_bucket(BURST)
    cpu0 = daemon.cpu_s()
    result = closed_loop(daemon.socket_path, clients, ids)
    cpu = daemon.cpu_s() - cpu0
    daemon.phase_ended()
    if result.failures:
        raise RuntimeError(f"{len(result.failures)} cancels failed, first: {result.failures[0]}")
    return cpu / len(result.latencies_ns) * 1e6, result.rate(), percentile(result.latencies_ns, 50) / 1e3


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.ab", description=__doc__.splitlines()[0])
    parser.add_argument("sources", nargs="+", type=Path, help="directories each holding a bfxd package")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--count", type=int, default=5000, help="cancels per phase")
    parser.add_argument("--clients", type=int, default=100)
    parser.add_argument("--no-pin", action="store_true",
                        help="leave CPU placement to the OS (by default the daemons get the last CPU, the stubs "
                             "and this driver the others: where the OS puts them moved the figure by ±20 %%)")
    args = parser.parse_args(argv)
    for path in args.sources:
        if not (path / "bfxd" / "__init__.py").exists():
            parser.error(f"{path} holds no bfxd package")
    work = Workdir()
    runs: list[tuple[Path, Daemon, Sim]] = []
    try:
        for path in args.sources:
            _harness.SOURCES["daemon"] = str(path.resolve())  # read when the daemon is spawned
            stub = Sim(work, stub=True)
            daemon = Daemon(work, stub.url)
            runs.append((path, daemon, stub))
            daemon.wait_session()
            cpus = sorted(os.sched_getaffinity(0))
            if not args.no_pin and len(cpus) > 1:
                os.sched_setaffinity(daemon.proc.pid, cpus[-1:])
                os.sched_setaffinity(stub.proc.pid, cpus[:-1])
        if not args.no_pin and len(cpus) > 1:
            os.sched_setaffinity(0, cpus[:-1])
        samples: dict[Path, list[tuple[float, float, float]]] = {path: [] for path, _, _ in runs}
        _phase(runs[0][1], runs[0][2], args.clients, min(args.count, 1000))  # warm-up: caches, first imports
        for n in range(args.rounds):
            for path, daemon, stub in runs:
                samples[path].append(_phase(daemon, stub, args.clients, args.count))
            print(f"[ab] round {n + 1}/{args.rounds}", file=sys.stderr, flush=True)
    finally:
        for _, daemon, stub in runs:
            daemon.stop()
            stub.stop()
        work.close()
    base_cpu, base_rate, base_p50 = (statistics.median(s[i] for s in samples[args.sources[0]]) for i in range(3))
    table = []
    print(f"{'variant':<32} {'cpu µs/cancel':>14} {'ratio':>6} {'cancels/s':>10} {'ratio':>6} {'p50 µs':>8}"
          f" {'ratio':>6}")
    for path in args.sources:
        cpu, rate, p50 = (statistics.median(s[i] for s in samples[path]) for i in range(3))
        table.append({"variant": str(path), "cpu_us_per_cancel": round(cpu), "cancels_per_s": round(rate),
                      "p50_us": round(p50), "cpu_ratio": round(cpu / base_cpu, 3),
                      "rate_ratio": round(rate / base_rate, 3), "p50_ratio": round(p50 / base_p50, 3),
                      "cpu_samples": [round(s[0]) for s in samples[path]]})
        print(f"{str(path)[-32:]:<32} {cpu:>14.0f} {cpu / base_cpu:>6.2f} {rate:>10.0f} {rate / base_rate:>6.2f}"
              f" {p50:>8.0f} {p50 / base_p50:>6.2f}")
    print(json.dumps({"load": _harness.machine_load(), "rounds": args.rounds, "count": args.count,
                      "variants": table}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
