"""``python -m bench._counted ARGS``: ``bfxd ARGS`` with Trio's task steps counted (``python -m bench.ab --steps``).

A task step is one run of one task between two checkpoints; each costs the scheduler's work plus a cold start of
whatever that task touches, so how many a cancel takes is the figure the hot path's design is about, and unlike
CPU time it does not drift with the machine. A ``trio.abc.Instrument`` counts the steps and the waits for I/O;
on SIGUSR2 the totals, after a serial number, are written to ``$BFXD_BENCH_STEPS`` (``read_steps`` asks for them).
Counting costs a Python call per step: the CPU figures of a counted daemon are not the benchmark's.
"""

from __future__ import annotations

import os
import signal
import sys
import time
from pathlib import Path
from typing import Any

import trio

STEPS_ENV = "BFXD_BENCH_STEPS"


class _Counter(trio.abc.Instrument):
    def __init__(self) -> None:
        self.steps = 0
        self.io_waits = 0

    def before_task_step(self, task: trio.lowlevel.Task) -> None:
        self.steps += 1

    def before_io_wait(self, timeout: float) -> None:
        self.io_waits += 1


def read_steps(pid: int, path: Path, timeout: float = 10.0) -> tuple[int, int]:
    """(task steps, waits for I/O) of the counted daemon *pid* so far."""
    before = path.read_text().split()[0] if path.exists() else "0"
    os.kill(pid, signal.SIGUSR2)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        fields = path.read_text().split() if path.exists() else [before]
        if fields[0] != before:
            return int(fields[1]), int(fields[2])
        time.sleep(0.01)  # a bounded poll for the other process's answer
    raise RuntimeError(f"no step count from pid {pid} within {timeout} s")


def main() -> int:
    counter, path, serial = _Counter(), Path(os.environ[STEPS_ENV]), 0

    def write_counts(_signum: int, _frame: object) -> None:
        nonlocal serial
        serial += 1
        scratch = path.with_suffix(".tmp")
        scratch.write_text(f"{serial} {counter.steps} {counter.io_waits}\n")
        scratch.replace(path)  # the reader never sees half a line

    signal.signal(signal.SIGUSR2, write_counts)
    plain_run = trio.run

    def counted_run(*args: Any, **kwargs: Any) -> Any:
        kwargs["instruments"] = [*kwargs.get("instruments", ()), counter]
        return plain_run(*args, **kwargs)

    trio.run = counted_run  # bfxd.cli calls trio.run once, for the daemon's whole life
    from bfxd import cli

    return cli.main(sys.argv[1:])


if __name__ == "__main__":
    sys.exit(main())
