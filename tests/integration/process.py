"""Run the real ``bfxd run`` as a child process against an in-process simulator, and read its JSON log."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import trio
from tests.integration.helpers import API_KEY, API_SECRET, GUARD_S

BFXD = [sys.executable, "-m", "bfxd"]


def write_config(directory: Path, url: str, *, extra: str = "") -> Path:
    path = directory / "bfxd.toml"
    path.write_text(
        f'[exchange]\nurl = "{url}"\nheartbeat_timeout = 30.0\n'
        f'[socket]\npath = "{directory / "bfxd.sock"}"\nmode = "0600"\n'
        '[requests]\ntimeout = 5.0\nshutdown_grace = 2.0\n'
        '[reconnect]\ninitial_delay = 0.2\nmax_delay = 1.0\n'
        f'[log]\nformat = "json"\n{extra}'
    )
    return path


class DaemonProcess:
    """``bfxd run`` in a child process; every byte it writes is kept for inspection."""

    def __init__(self, process: trio.Process) -> None:
        self.process = process
        self.stdout = bytearray()
        self.stderr = bytearray()
        self._events: list[dict[str, Any]] = []
        self._new_output = trio.Event()

    @property
    def events(self) -> list[dict[str, Any]]:
        return [json.loads(line) for line in bytes(self.stdout).splitlines() if line.startswith(b"{")]

    async def _pump(self, stream: trio.abc.ReceiveStream, into: bytearray) -> None:
        async for chunk in stream:
            into.extend(chunk)
            self._new_output.set()
            self._new_output = trio.Event()

    async def wait_event(self, name: str, **fields: Any) -> dict[str, Any]:
        """The first log event named *name* with these field values, waiting for it under the guard."""
        with trio.fail_after(GUARD_S):
            while True:
                for event in self.events:
                    if event.get("event") == name and all(event.get(k) == v for k, v in fields.items()):
                        return event
                if self.process.returncode is not None:
                    raise AssertionError(f"bfxd exited {self.process.returncode} before {name}: {self.stderr!r}")
                await self._new_output.wait()

    async def terminate(self) -> int:
        self.process.send_signal(signal.SIGTERM)
        with trio.fail_after(GUARD_S):
            return await self.process.wait()


async def start_daemon(nursery: trio.Nursery, config: Path, *, env: dict[str, str] | None = None) -> DaemonProcess:
    """Start ``bfxd run -c config`` with the test credentials in its environment."""
    child_env = {**os.environ, "BFXD_API_KEY": API_KEY, "BFXD_API_SECRET": API_SECRET, **(env or {})}
    process = await trio.lowlevel.open_process([*BFXD, "run", "-c", str(config)], env=child_env,
                                               stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    daemon = DaemonProcess(process)
    assert process.stdout is not None and process.stderr is not None
    nursery.start_soon(daemon._pump, process.stdout, daemon.stdout)
    nursery.start_soon(daemon._pump, process.stderr, daemon.stderr)
    return daemon
