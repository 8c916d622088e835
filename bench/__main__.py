"""``python -m bench`` (``make bench``): run every benchmark, print the table, write bench/results.json.

Options: ``--only latency,memory`` runs a subset; ``--quick`` runs smaller counts (a smoke test of the harness,
its figures are not the benchmark's); ``-o PATH`` writes the results elsewhere; ``--src DIR`` imports bfxd
from DIR (a directory holding ``bfxd/``) in every process, ``--daemon-src DIR`` in the daemon only (A/B runs
of a prototype fix against a fixed simulator and clients).
"""

from __future__ import annotations

import argparse
import datetime
import importlib
import json
import subprocess
import sys
import time
import traceback
from pathlib import Path

from bench import _harness
from bench._harness import ROOT, Workdir, machine_load, machine_speed
from bench._report import TARGETS, render_table

BENCHMARKS = ("startup", "latency", "orders", "paced", "throughput", "tail", "fanout", "memory", "audit")


def _git_revision(pinned: bool) -> str | None:
    """HEAD's short hash, ``+dirty`` when the daemon's working tree differs from it; with ``--src`` the code
    that runs is the snapshot's, which the hash does not describe (``meta.src`` names it)."""
    try:
        rev = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True,
                             check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--", "daemon"], cwd=ROOT, capture_output=True,
                               text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return None
    if pinned:
        return f"{rev} (working tree; not what ran)"
    return rev + ("+dirty" if dirty else "")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.splitlines()[0])
    parser.add_argument("--only", help=f"comma-separated subset of: {', '.join(BENCHMARKS)}")
    parser.add_argument("--quick", action="store_true", help="small counts: checks the harness, not the daemon")
    parser.add_argument("-o", "--output", type=Path, default=Path(__file__).with_name("results.json"))
    parser.add_argument("--src", type=Path, help="import bfxd from this directory in every process")
    parser.add_argument("--daemon-src", type=Path, help="import bfxd from this directory in the daemon only")
    args = parser.parse_args(argv)
    for role, path in (("all", args.src), ("daemon", args.daemon_src)):
        if path is not None:
            if not (path / "bfxd" / "__init__.py").exists():
                parser.error(f"{path} holds no bfxd package")
            _harness.SOURCES[role] = str(path.resolve())
    if args.src is not None:
        sys.path.insert(0, str(args.src.resolve()))  # the driver's own clients (the floor) import bfxd too
    names = BENCHMARKS if not args.only else tuple(n.strip() for n in args.only.split(","))
    unknown = [n for n in names if n not in BENCHMARKS]
    if unknown:
        parser.error(f"unknown benchmark(s): {', '.join(unknown)}")

    started = time.perf_counter()
    results: dict = {"meta": {
        "started": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "revision": _git_revision(pinned=args.src is not None), "quick": args.quick, "python": sys.version.split()[0],
        "src": _harness.SOURCES["all"], "daemon_src": _harness.SOURCES["daemon"],
        "load_before": machine_load(),
        "speed_ms": {"before": machine_speed()},  # see machine_speed: the load average does not show this
    }}
    failed = []
    work = Workdir()
    try:
        for name in names:
            print(f"[bench] {name} ...", file=sys.stderr, flush=True)
            t0 = time.perf_counter()
            module = importlib.import_module(f"bench.{name}")
            try:
                results[name] = module.run(work, quick=args.quick)
            except Exception:
                traceback.print_exc()
                failed.append(name)
                results[name] = {"error": traceback.format_exc(limit=3)}
            results["meta"][f"{name}_s"] = round(time.perf_counter() - t0, 1)
            speed = results["meta"]["speed_ms"][name] = machine_speed()
            print(f"[bench] {name} done in {time.perf_counter() - t0:.1f} s (load {machine_load()['load_1m']}, "
                  f"speed probe {speed} ms)", file=sys.stderr, flush=True)
    finally:
        work.close()
    results["meta"]["load_after"] = machine_load()
    # Channel peaks (README "Architecture") and log bytes per cancel at the top of results.json (issue 17).
    throughput = results.get("throughput")
    if isinstance(throughput, dict):
        for key in ("peak_buffer_used", "peak_buffer_used_stub", "log_bytes_per_cancel",
                    "log_bytes_per_cancel_100_clients_stub"):
            if key in throughput:
                results[key] = throughput[key]
    results["meta"]["total_s"] = round(time.perf_counter() - started, 1)
    verdicts = {}
    for target in TARGETS:
        verdicts[target.key] = target.verdict(results)
    results["targets"] = {k: v for k, v in verdicts.items() if v is not None}
    args.output.write_text(json.dumps(results, indent=2) + "\n")
    print(render_table(results, verdicts))
    print(f"\n{results['meta']['total_s']} s in all; load (1/5/15 min) before "
          f"{_load_text(results['meta']['load_before'])}, after {_load_text(results['meta']['load_after'])}; "
          f"speed probe {_speed_text(results['meta']['speed_ms'])}; {args.output}")
    if failed:
        print(f"benchmarks that failed to run: {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0


def _speed_text(speeds: dict) -> str:
    values = speeds.values()
    return f"{min(values)}-{max(values)} ms (before and after each benchmark)"


def _load_text(load: dict) -> str:
    return f"{load['load_1m']}/{load['load_5m']}/{load['load_15m']} on {load['cpus']} CPUs"


if __name__ == "__main__":
    raise SystemExit(main())
