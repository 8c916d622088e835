"""``python -m bench.ab DIR [DIR ...]``: the daemon's CPU per cancel, one daemon per source tree, interleaved.

Each DIR holds a ``bfxd/`` package (a copy of ``daemon/`` with one change, or a checkout of an older commit).
Every variant gets its own fast stub (bench._stub) and its own daemon; then, round after round, each variant
runs the same closed-loop phase (100 clients, ``--count`` cancels), in reversed order every other round (the
machine's speed drifts within a minute: bench/README.md "Speed"), so machine load weighs on every variant alike.
Printed per variant: the median over the rounds of the daemon's CPU per cancel, of the rate and of the round
trip's p50 (with ``--clients 1``, the latency), and the ratio of each to the first variant's; the range of the
CPU ratio over the rounds, each round's variant against the first variant's same round (a change smaller than
that spread is not shown by the run); with ``--steps``
also the daemon's Trio task steps and waits for I/O per cancel (``bench/_counted.py``). Not part of
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
from bench._counted import STEPS_ENV, read_steps
from bench._harness import Daemon, Sim, Workdir, percentile
from bench._load import closed_loop


def _phase(daemon: Daemon, stub: Sim, clients: int, count: int, steps: Path | None) -> tuple[float, ...]:
    """One closed-loop phase: (daemon CPU µs per cancel, cancels per second, round trip p50 in µs, and with
    *steps* the daemon's task steps and waits for I/O per cancel)."""
    ids = stub.add_offers(count)
    daemon.wait_offers(stub.offer_count())
    daemon.full_bucket()
    counted0 = read_steps(daemon.proc.pid, steps) if steps else (0, 0)
    cpu0 = daemon.cpu_s()
    result = closed_loop(daemon.socket_path, clients, ids)
    cpu = daemon.cpu_s() - cpu0
    counted1 = read_steps(daemon.proc.pid, steps) if steps else (0, 0)
    daemon.phase_ended(inputs=count)
    if result.failures:
        raise RuntimeError(f"{len(result.failures)} cancels failed, first: {result.failures[0]}")
    done = len(result.latencies_ns)
    return (cpu / done * 1e6, result.rate(), percentile(result.latencies_ns, 50) / 1e3,
            (counted1[0] - counted0[0]) / done, (counted1[1] - counted0[1]) / done)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.ab", description=__doc__.splitlines()[0])
    parser.add_argument("sources", nargs="+", type=Path, help="directories each holding a bfxd package")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--count", type=int, default=5000, help="cancels per phase")
    parser.add_argument("--clients", type=int, default=100)
    parser.add_argument("--no-pin", action="store_true",
                        help="leave CPU placement to the OS (by default the daemons get the last CPU, the stubs "
                             "and this driver the others: where the OS puts them moved the figure by ±20 %%)")
    parser.add_argument("--steps", action="store_true",
                        help="count the daemons' Trio task steps and I/O waits per cancel (bench/_counted.py); "
                             "counting costs CPU, so compare CPU only between runs alike")
    args = parser.parse_args(argv)
    for path in args.sources:
        if not (path / "bfxd" / "__init__.py").exists():
            parser.error(f"{path} holds no bfxd package")
    work = Workdir()
    # By position, not by path: the same tree twice (an A/A run) shows how far the machine alone moves the ratio.
    runs: list[tuple[Path, Daemon, Sim]] = []
    steps_files: list[Path | None] = []
    try:
        for path in args.sources:
            _harness.SOURCES["daemon"] = str(path.resolve())  # read when the daemon is spawned
            stub = Sim(work, stub=True)
            steps = work.new(f"steps-{len(runs)}") if args.steps else None
            daemon = Daemon(work, stub.url, **({"command": [_harness.PYTHON, "-m", "bench._counted"],
                                                "env": {STEPS_ENV: str(steps)}} if steps else {}))
            steps_files.append(steps)
            runs.append((path, daemon, stub))
            daemon.wait_session()
            cpus = sorted(os.sched_getaffinity(0))
            if not args.no_pin and len(cpus) > 1:
                os.sched_setaffinity(daemon.proc.pid, cpus[-1:])
                os.sched_setaffinity(stub.proc.pid, cpus[:-1])
        if not args.no_pin and len(cpus) > 1:
            os.sched_setaffinity(0, cpus[:-1])
        samples: list[list[tuple[float, ...]]] = [[] for _ in runs]
        _, daemon0, stub0 = runs[0]  # warm-up: caches, first imports
        _phase(daemon0, stub0, args.clients, min(args.count, 1000), steps_files[0])
        order = list(range(len(runs)))
        for n in range(args.rounds):
            for i in order if n % 2 == 0 else order[::-1]:
                _, daemon, stub = runs[i]
                samples[i].append(_phase(daemon, stub, args.clients, args.count, steps_files[i]))
            print(f"[ab] round {n + 1}/{args.rounds}", file=sys.stderr, flush=True)
    finally:
        for _, daemon, stub in runs:
            daemon.stop()
            stub.stop()
        work.close()
    base_cpu, base_rate, base_p50 = (statistics.median(s[i] for s in samples[0]) for i in range(3))
    table = []
    print(f"{'variant':<32} {'cpu µs/cancel':>14} {'ratio':>6} {'per round':>11} {'cancels/s':>10} {'ratio':>6}"
          f" {'p50 µs':>8} {'ratio':>6}" + (f" {'steps/cancel':>13} {'io waits':>9}" if args.steps else ""))
    for path, own in zip(args.sources, samples, strict=True):
        cpu, rate, p50, steps_per, io_per = (statistics.median(s[i] for s in own) for i in range(5))
        row = {"variant": str(path), "cpu_us_per_cancel": round(cpu), "cancels_per_s": round(rate),
               "p50_us": round(p50), "cpu_ratio": round(cpu / base_cpu, 3),
               "rate_ratio": round(rate / base_rate, 3), "p50_ratio": round(p50 / base_p50, 3),
               "cpu_samples": [round(s[0]) for s in own]}
        paired = [s[0] / b[0] for s, b in zip(own, samples[0], strict=True)]
        row["cpu_ratio_per_round"] = [round(r, 3) for r in paired]
        if args.steps:
            row.update(task_steps_per_cancel=round(steps_per, 2), io_waits_per_cancel=round(io_per, 3))
        table.append(row)
        spread = f"{min(paired):.2f}-{max(paired):.2f}"
        print(f"{str(path)[-32:]:<32} {cpu:>14.0f} {cpu / base_cpu:>6.2f} {spread:>11} {rate:>10.0f}"
              f" {rate / base_rate:>6.2f}"
              f" {p50:>8.0f} {p50 / base_p50:>6.2f}" + (f" {steps_per:>13.2f} {io_per:>9.3f}" if args.steps else ""))
    print(json.dumps({"load": _harness.machine_load(), "rounds": args.rounds, "count": args.count,
                      "variants": table}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
