"""Processes the benchmarks run: the simulator (bench._sim), the real ``bfxd run``, and blocking clients.

Everything lives in one private temp dir per benchmark run (sockets, config, logs); loopback and Unix
sockets only. The driver process (``python -m bench``) is the client unless a benchmark starts client
processes of its own; the daemon and the simulator always run in processes of their own.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil

API_KEY = "bench-key"  # the simulator's credentials (bench._sim), handed to bfxd through its environment
API_SECRET = "bench-secret"

PYTHON = sys.executable
BIN = Path(PYTHON).parent
BFXD = [str(BIN / "bfxd")] if (BIN / "bfxd").exists() else [PYTHON, "-m", "bfxd"]
BFXCTL = [str(BIN / "bfxctl")] if (BIN / "bfxctl").exists() else [PYTHON, "-m", "bfxd.ctl"]
ROOT = Path(__file__).resolve().parent.parent
# Where child processes import bfxd from (None: the installed/editable tree). ``python -m bench --src DIR``
# pins every process to a snapshot (other engineers edit the working tree while benchmarks run);
# ``--daemon-src DIR`` swaps the daemon's code only, for before/after comparisons of a prototype fix.
SOURCES: dict[str, str | None] = {"all": None, "daemon": None}
# Bytecode cache of the child processes. An installed bfxd has its .pyc files; a shell with
# PYTHONDONTWRITEBYTECODE=1 (this project's dev environment) would make every bfxd and bfxctl start recompile
# bfxd from source. The children write their caches under the work dir instead (never into the tree).
PYCACHE: list[str] = []
# Every child process started through the harness; Workdir.close() stops those still running, so a benchmark
# that fails halfway leaves no simulator or daemon behind.
CHILDREN: list[subprocess.Popen] = []
# The daemon's input pace in the benchmarks: the most `[exchange] inputs_per_second` and `input_burst` allow.
# A closed-loop phase of more than BURST cancels faster than PACE would be paced: `Daemon.full_bucket()`.
PACE = 100_000.0
BURST = 1_000_000


def spawn(args: list[str], **kwargs: object) -> subprocess.Popen:
    proc = subprocess.Popen(args, **kwargs)  # type: ignore[call-overload]
    CHILDREN.append(proc)
    return proc


def child_env(role: str = "all", **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("BFXD_", "NOTIFY_SOCKET", "WATCHDOG_", "PYTHONDONTWRITEBYTECODE"))}
    if PYCACHE:
        env["PYTHONPYCACHEPREFIX"] = PYCACHE[0]
    src = SOURCES.get(role) or SOURCES["all"]
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [src, str(ROOT), env.get("PYTHONPATH")]))
    env.update(extra)
    return env


class Workdir:
    """A private temp dir (0700) for one benchmark run; removed on close."""

    def __init__(self) -> None:
        self._tmp = tempfile.TemporaryDirectory(prefix="bfxd-bench-")
        self.path = Path(self._tmp.name)
        self._n = 0
        (self.path / "pycache").mkdir()
        PYCACHE[:] = [str(self.path / "pycache")]

    def new(self, name: str) -> Path:
        self._n += 1
        return self.path / f"{self._n:02d}-{name}"

    def close(self) -> None:
        for proc in CHILDREN:
            stop_process(proc, timeout=5)
        CHILDREN.clear()
        self._tmp.cleanup()


class Sim:
    """bench._sim in a subprocess (or, with ``stub=True``, the fast stub bench._stub, which has the same control
    ops); ``control()`` talks to its control socket."""

    def __init__(self, work: Workdir, *, offers: int = 5, hb_interval: float = 15.0, credits: int = 0,
                 rate_limit: str | None = None, stub: bool = False) -> None:
        self.name = "stub" if stub else "sim"
        self.control_path = work.new(f"{self.name}-control.sock")
        self.log_path = work.new(f"{self.name}.log")
        self._log = open(self.log_path, "wb")  # noqa: SIM115
        extra = ["--credits", str(credits)] if credits else []
        if rate_limit is not None:
            extra += ["--rate-limit", rate_limit]
        self.proc = spawn(
            [PYTHON, "-m", "bench._stub" if stub else "bench._sim", "--control", str(self.control_path),
             "--offers", str(offers), "--hb-interval", str(hb_interval), *extra],
            stdout=subprocess.PIPE, stderr=self._log, env=child_env(), cwd=ROOT,
        )
        assert self.proc.stdout is not None
        self.url = self.proc.stdout.readline().decode().strip()
        if not self.url.startswith("ws://"):
            stop_process(self.proc)
            raise RuntimeError(f"simulator did not start: {self.log_path.read_text()[-2000:]}")
        self.ps = psutil.Process(self.proc.pid)
        self._ctl = LineClient(self.control_path, timeout=600)

    def control(self, op: str, **fields: object) -> dict:
        return self._ctl.request({"op": op, **fields})

    def add_offers(self, n: int) -> list[int]:
        ids: list[int] = []
        while len(ids) < n:  # in slices: one answer line stays small
            ids += self.control("add_offers", n=min(5000, n - len(ids)))["ids"]
        return ids

    def offer_count(self) -> int:
        return int(self.control("stats")["offers"])

    def cpu_s(self) -> float:
        t = self.ps.cpu_times()
        return t.user + t.system

    def cut_offs(self) -> int:
        """Connections the simulator cut off for not reading their frames fast enough (its outbox was full)."""
        return self.log_path.read_bytes().count(b"simulator.client_lagging")

    def stop(self) -> None:
        self._ctl.close()
        stop_process(self.proc)
        self._log.close()


class Daemon:
    """The real ``bfxd run -c CONFIG`` with its socket, config and logs in the work dir.

    READY is measured from just before the exec to the ``READY=1`` datagram on our own NOTIFY_SOCKET.
    Logs (JSON, level info, as shipped) go to a file, so their volume can be reported.

    The input pace is the highest the config allows (``PACE``) unless a benchmark of the pace itself asks for
    another: the shipped 5 inputs/s would make every other benchmark a measure of the pace.
    """

    def __init__(self, work: Workdir, url: str, *, max_clients: int = 1024, log_level: str = "info",
                 env: dict[str, str] | None = None, inputs_per_second: float | None = None,
                 input_burst: int | None = None, command: list[str] | None = None) -> None:
        self.socket_path = work.new("bfxd.sock")
        self.config_path = work.new("bfxd.toml")
        self.log_path = work.new("bfxd.log")
        self.config_path.write_text(
            f'[exchange]\nurl = "{url}"\ninputs_per_second = {inputs_per_second or PACE}\n'
            f"input_burst = {input_burst or BURST}\n"
            f'[socket]\npath = "{self.socket_path}"\nmode = "0600"\n'
            f"max_clients = {max_clients}\nmax_clients_per_uid = {max_clients}\n"
            f"[log]\nformat = \"json\"\nlevel = \"{log_level}\"\n"
        )
        notify_path = work.new("notify.sock")
        self._notify = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self._notify.bind(str(notify_path))
        self._log = open(self.log_path, "wb")  # noqa: SIM115
        extra = {"BFXD_API_KEY": API_KEY, "BFXD_API_SECRET": API_SECRET, "NOTIFY_SOCKET": str(notify_path),
                 **(env or {})}
        started = time.perf_counter()
        self.proc = spawn([*(command or BFXD), "run", "-c", str(self.config_path)], stdout=self._log,
                          stderr=subprocess.STDOUT, env=child_env("daemon", **extra), cwd="/")
        try:
            self.ready_s = self._wait_notify(b"READY=1", timeout=30) - started
        except BaseException:
            self.stop()
            raise
        self.ps = psutil.Process(self.proc.pid)
        self._pace = inputs_per_second or PACE
        self.last_phase_end = time.monotonic()
        self.last_phase_inputs = 0  # the bucket starts full

    def _wait_notify(self, what: bytes, timeout: float) -> float:
        deadline = time.monotonic() + timeout
        self._notify.settimeout(0.1)
        while True:
            try:
                data = self._notify.recv(4096)
            except TimeoutError:
                log = self.log_path.read_text()[-3000:]
                if self.proc.poll() is not None:
                    raise RuntimeError(f"bfxd exited {self.proc.returncode}: {log}") from None
                if time.monotonic() > deadline:
                    raise RuntimeError(f"no {what!r} from bfxd: {log}") from None
                continue
            if what in data.split(b"\n"):
                return time.perf_counter()

    def wait_session(self, timeout: float = 30.0) -> dict:
        """Wait until the daemon reports an authenticated session (``status`` state ready)."""
        deadline = time.monotonic() + timeout
        with LineClient(self.socket_path) as client:
            while True:
                status = client.request({"op": "status"})["status"]
                if status["state"] == "ready":
                    return status
                if time.monotonic() > deadline:
                    raise RuntimeError(f"bfxd not ready: {status}")
                time.sleep(0.02)

    def wait_offers(self, at_least: int, timeout: float = 120.0) -> None:
        """Wait until the daemon's book holds *at_least* offers (it has read every fon sent before)."""
        deadline = time.monotonic() + timeout
        with LineClient(self.socket_path) as client:
            while client.request({"op": "status"})["status"]["offers"] < at_least:
                if time.monotonic() > deadline:
                    raise RuntimeError("bfxd's book never caught up with the simulator's offers")
                time.sleep(0.01)

    def full_bucket(self) -> None:
        """Wait until the pace's bucket is full again (the daemon does not show it): the time the inputs of the
        last phase (``phase_ended``) take to come back as tokens, less the time since it ended."""
        pause = min(self.last_phase_inputs, BURST) / self._pace - (time.monotonic() - self.last_phase_end)
        if pause > 0:
            time.sleep(pause)

    def phase_ended(self, inputs: int) -> None:
        """A timed phase is over; it sent at most *inputs* exchange inputs (what ``full_bucket()`` waits out)."""
        self.last_phase_end = time.monotonic()
        self.last_phase_inputs = inputs

    def channel_peaks(self) -> dict[str, dict]:
        """Each inter-actor channel's size and the most items it held at once, as ``status`` reports them."""
        with LineClient(self.socket_path) as client:
            return client.request({"op": "status"})["status"]["channels"]

    def rss_mb(self) -> float:
        return self.ps.memory_info().rss / 1e6

    def cpu_s(self) -> float:
        t = self.ps.cpu_times()
        return t.user + t.system

    def disconnects(self) -> int:
        """Links to the exchange lost so far (``exchange.disconnected`` log lines)."""
        return self.log_path.read_bytes().count(b'"exchange.disconnected"')

    def log_stats(self) -> tuple[int, int]:
        """(lines, bytes) logged so far."""
        data = self.log_path.read_bytes()
        return data.count(b"\n"), len(data)

    def stop(self) -> int:
        rc = stop_process(self.proc)
        self._log.close()
        self._notify.close()
        return rc


def stop_process(proc: subprocess.Popen, timeout: float = 15.0) -> int:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            return proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
    return proc.wait()


class LineClient:
    """A blocking JSON Lines client over a Unix socket (as bfxctl is, minus the argument parsing)."""

    def __init__(self, path: Path | str, *, timeout: float = 30.0) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(timeout)
        deadline = time.monotonic() + timeout
        while True:
            try:
                self.sock.connect(str(path))
                break
            except BlockingIOError:  # the listen backlog is full (a burst of connects): the daemon will accept
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.005)
        self.buf = b""

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def read_line(self) -> bytes:
        while (end := self.buf.find(b"\n")) < 0:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise ConnectionError("connection closed")
            self.buf += chunk
        line, self.buf = self.buf[:end], self.buf[end + 1:]
        return line

    def request(self, obj: dict) -> dict:
        self.send(json.dumps(obj).encode() + b"\n")
        return json.loads(self.read_line())

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self.sock.close()

    def __enter__(self) -> LineClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def percentile(values: list[float], p: float) -> float:
    """Nearest-rank percentile of *values* (p in 0..100)."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    rank = max(1, min(len(ordered), math.ceil(p / 100 * len(ordered))))
    return ordered[rank - 1]


def machine_load() -> dict:
    one, five, fifteen = os.getloadavg()
    return {"load_1m": round(one, 2), "load_5m": round(five, 2), "load_15m": round(fifteen, 2),
            "cpus": os.cpu_count()}


def machine_speed() -> float:
    """Milliseconds of this process's CPU for a fixed pure-Python loop, the median of three.

    The load average cannot see it, but on this shared host the probe took from 50 to 76 ms in ten runs two
    seconds apart with nothing else running (bench/README.md): the figures of one phase move with it, so the
    runner records it before and after each benchmark."""
    times = []
    for _ in range(3):
        start, total = time.process_time(), 0
        for i in range(1_000_000):
            total += i * i
        times.append(time.process_time() - start)
    return round(sorted(times)[1] * 1000, 1)


@contextlib.contextmanager
def daemon_on_own_cpu(daemon: Daemon, exchange: Sim):  # type: ignore[no-untyped-def]
    """The daemon on the last CPU, the exchange and this process (the clients) on the others, for the block.

    Where the OS puts three busy processes on two cores moves the daemon's CPU per cancel by up to 20 %
    (bench/README.md); pinned, the figure is the daemon's own cost. Restored after; a no-op on one CPU.
    """
    cpus = sorted(os.sched_getaffinity(0))
    if len(cpus) < 2:
        yield
        return
    mine = os.sched_getaffinity(0)
    os.sched_setaffinity(daemon.proc.pid, cpus[-1:])
    os.sched_setaffinity(exchange.proc.pid, cpus[:-1])
    os.sched_setaffinity(0, cpus[:-1])
    try:
        yield
    finally:
        for pid in (daemon.proc.pid, exchange.proc.pid, 0):
            with contextlib.suppress(ProcessLookupError):
                os.sched_setaffinity(pid, mine)
