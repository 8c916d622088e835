"""Run the real ``bfxd run`` as a child process against an in-process simulator, and read its JSON log."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import trio
from tests.integration.helpers import API_KEY, API_SECRET, GUARD_S
from tests.logwatch import LogWatch

BFXD = [sys.executable, "-m", "bfxd"]

BIN = Path(sys.executable).parent  # the venv's bfxd and bfxctl
EX_OK, EX_CONFIG = 0, 78


def daemon_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    """This environment without bfxd settings or systemd hand-overs, plus the test credentials and *extra*."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("BFXD_", "NOTIFY_SOCKET", "WATCHDOG_", "LISTEN_", "CREDENTIALS_DIRECTORY"))}
    return {**env, "BFXD_API_KEY": API_KEY, "BFXD_API_SECRET": API_SECRET, **(extra or {})}


def write_config(directory: Path, url: str, *, shutdown_grace: float = 2.0, socket_path: Path | None = None,
                 extra: str = "") -> Path:
    """A bfxd.toml in *directory* for the simulator at *url*: JSON log at info level, quick reconnects; *extra*
    is appended to the [log] section (the audit tests' anchor file)."""
    socket_path = socket_path or directory / "bfxd.sock"
    path = directory / "bfxd.toml"
    path.write_text(f"""\
[exchange]
url = "{url}"
heartbeat_timeout = 30.0
[socket]
path = "{socket_path}"
mode = "0600"
[requests]
timeout = 10.0
shutdown_grace = {shutdown_grace}
[reconnect]
initial_delay = 0.1
max_delay = 1.0
[log]
format = "json"
level = "info"
{extra}""")
    return path


class BfxdProcess:
    """A running ``bfxd run``: its JSON log as it arrives (``log``), its raw stdout and stderr."""

    def __init__(self, process: trio.Process) -> None:
        self.process = process
        self.stdout = bytearray()
        self.stderr = bytearray()
        self.log = LogWatch(describe_end=lambda: f"bfxd's stderr: {bytes(self.stderr)!r}")
        self.output_closed = trio.Event()  # both pipes reached their end

    async def pump(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Read stdout into the log and stderr aside until both end."""
        assert self.process.stdout is not None and self.process.stderr is not None
        task_status.started()
        async with trio.open_nursery() as nursery:
            nursery.start_soon(self._read_stderr, self.process.stderr)
            async for chunk in self.process.stdout:
                self.stdout += chunk
                self.log.feed(chunk)
        self.log.close()
        self.output_closed.set()

    async def _read_stderr(self, stream: trio.abc.ReceiveStream) -> None:
        async for chunk in stream:
            self.stderr += chunk
            self.log.notice()

    def find(self, event: str, **fields: Any) -> list[dict[str, Any]]:
        return self.log.find(event, **fields)

    async def wait_for(self, event: str, **fields: Any) -> dict[str, Any]:
        return await self.log.wait_for(event, **fields)

    wait_event = wait_for

    async def wait(self) -> int:
        """The exit status, once the process has ended and all of its output has been read."""
        with trio.fail_after(GUARD_S):
            status = await self.process.wait()
            await self.output_closed.wait()
        return status

    async def terminate(self) -> int:
        """SIGTERM, then the exit status once all of the output has been read."""
        self.process.terminate()
        return await self.wait()


async def start_daemon(nursery: trio.Nursery, config: Path, *, env: dict[str, str] | None = None) -> BfxdProcess:
    """Start ``bfxd run -c config`` with the test credentials in its environment; its output read in *nursery*.
    (Tests under tests/integration use the ``start_bfxd`` fixture, which also kills a daemon left running.)"""
    process = await trio.lowlevel.open_process([*BFXD, "run", "-c", str(config)], env=daemon_env(env),
                                               stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    bfxd = BfxdProcess(process)
    await nursery.start(bfxd.pump)
    return bfxd
