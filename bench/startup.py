"""5. Start-up: ``bfxd run`` to READY=1 (sd_notify), and the wall time of ``bfxctl status``.

READY: from just before the daemon's exec to the ``READY=1`` datagram on a NOTIFY_SOCKET of our own (bfxd
sends it once its socket listens; the exchange may still be connecting). Median of several cold starts
(each a new process; the simulator is already up; one warm-up start first fills the byte-code cache, as
an installed package has it). The time on to an authenticated session is reported too.
``bfxctl status``: wall time of the whole command (interpreter start-up included) against a daemon with a
ready session, median of several runs after one warm-up run; it must exit 0.
"""

from __future__ import annotations

import statistics
import subprocess
import time

from bench._harness import BFXCTL, PYTHON, Daemon, Sim, Workdir, child_env


def run(work: Workdir, *, quick: bool = False) -> dict:
    starts, ctl_runs = (3, 5) if quick else (5, 15)
    sim = Sim(work)
    ready, session, stop_rc = [], [], []
    daemon = None
    try:
        Daemon(work, sim.url).stop()  # warm-up: the byte-code cache, as an installed bfxd has it
        for i in range(starts):
            started = time.perf_counter()
            daemon = Daemon(work, sim.url)
            ready.append(daemon.ready_s)
            daemon.wait_session()
            session.append(time.perf_counter() - started)
            if i < starts - 1:
                stop_rc.append(daemon.stop())
                daemon = None
        assert daemon is not None
        env = child_env()
        ctl = [*BFXCTL, "-s", str(daemon.socket_path), "status"]
        walls = []
        for i in range(ctl_runs + 1):
            started = time.perf_counter()
            proc = subprocess.run(ctl, env=env, capture_output=True, check=False)
            wall = time.perf_counter() - started
            if proc.returncode != 0:
                raise RuntimeError(f"bfxctl status exited {proc.returncode}: {proc.stderr.decode()[-500:]}")
            if i:
                walls.append(wall)
        python = []
        for _ in range(5):
            started = time.perf_counter()
            subprocess.run([PYTHON, "-c", "pass"], env=env, check=True)
            python.append(time.perf_counter() - started)
        stop_rc.append(daemon.stop())
        daemon = None
        return {
            "ready_s": round(statistics.median(ready), 3),
            "ready_s_max": round(max(ready), 3),
            "session_ready_s": round(statistics.median(session), 3),
            "bfxctl_status_ms": round(statistics.median(walls) * 1000, 1),
            "bfxctl_status_ms_max": round(max(walls) * 1000, 1),
            "python_startup_ms": round(statistics.median(python) * 1000, 1),
            "clean_stop": all(rc == 0 for rc in stop_rc),
        }
    finally:
        if daemon is not None:
            daemon.stop()
        sim.stop()
