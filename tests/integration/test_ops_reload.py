"""SIGHUP on a real ``bfxd run``: the configuration is read again, a bad file is refused and the old one kept,
systemd hears RELOADING=1 (with MONOTONIC_USEC) then READY=1, and the daemon keeps serving (issue 15 item 3)."""

from __future__ import annotations

import signal
import socket
import time
from pathlib import Path
from subprocess import PIPE

import pytest
import trio
from tests.integration.helpers import GUARD_S, LineClient
from tests.integration.process import BIN, EX_OK, BfxdProcess, daemon_env, write_config

from bfxd.simulator import Simulator


class FakePid1:
    def __init__(self, path: Path) -> None:
        self.path = path
        self.sock = trio.socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)

    async def bind(self) -> None:
        await self.sock.bind(str(self.path))

    async def next_message(self, key: str) -> list[str]:
        """The next datagram containing *key*, as its lines (others, e.g. STATUS= or WATCHDOG=1, are skipped)."""
        with trio.fail_after(GUARD_S):
            while True:
                lines = (await self.sock.recv(4096)).decode().split("\n")
                if any(line.startswith(key) for line in lines):
                    return lines


@pytest.fixture
async def pid1(socket_dir: Path):  # type: ignore[no-untyped-def]
    fake = FakePid1(socket_dir / "notify")
    await fake.bind()
    yield fake
    fake.sock.close()


async def start(nursery: trio.Nursery, config: Path, pid1: FakePid1) -> BfxdProcess:
    process = await trio.lowlevel.open_process([str(BIN / "bfxd"), "run", "-c", str(config)], stdout=PIPE,
                                               stderr=PIPE, env={**daemon_env(), "NOTIFY_SOCKET": str(pid1.path)})
    bfxd = BfxdProcess(process)
    await nursery.start(bfxd.pump)
    return bfxd


async def test_sighup_reloads_and_a_bad_file_is_refused(nursery: trio.Nursery, sim: Simulator, socket_dir: Path,
                                                        pid1: FakePid1) -> None:
    config = write_config(socket_dir, sim.url)
    bfxd = await start(nursery, config, pid1)
    try:
        assert "READY=1" in await pid1.next_message("READY=1")
        await bfxd.wait_for("exchange.auth_ok")

        # A good change: log level and request deadline are applied; the socket path needs a restart.
        text = config.read_text()
        config.write_text(text.replace('level = "info"', 'level = "warning"').replace("timeout = 10.0", "timeout = 4.0")
                          .replace(f'path = "{socket_dir / "bfxd.sock"}"', f'path = "{socket_dir / "other.sock"}"'))
        before_us = time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000
        bfxd.process.send_signal(signal.SIGHUP)
        reloading = await pid1.next_message("RELOADING=1")
        assert reloading[0] == "RELOADING=1"
        usec = int(reloading[1].removeprefix("MONOTONIC_USEC="))
        assert before_us <= usec <= time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000
        assert "READY=1" in await pid1.next_message("READY=1")
        reloaded = await bfxd.wait_for("config.reloaded")
        assert reloaded["changed"] == ["requests.timeout", "log.level"]
        assert (await bfxd.wait_for("config.reload_needs_restart"))["keys"] == ["socket.path"]

        # The level is live: info lines (command.received of this ping) are no longer written.
        async with await LineClient.connect(socket_dir / "bfxd.sock") as client:
            assert (await client.request({"op": "ping", "ref": "quiet"}))["ok"] is True

        # A bad file: refused, logged, READY=1 again, and the daemon still answers on its socket.
        config.write_text("[exchange]\nheartbeat_timeout = 0.001\n")
        bfxd.process.send_signal(signal.SIGHUP)
        await pid1.next_message("RELOADING=1")
        ready = await pid1.next_message("READY=1")
        assert any(line.startswith("STATUS=reload refused:") for line in ready)
        failed = await bfxd.wait_for("config.reload_failed")
        assert "[exchange] heartbeat_timeout" in failed["error"]
        assert failed["level"] == "error"
        async with await LineClient.connect(socket_dir / "bfxd.sock") as client:
            status = await client.request({"op": "status"})
        assert status["ok"] is True
        assert bfxd.process.returncode is None
    finally:
        bfxd.process.send_signal(signal.SIGTERM)
    assert await bfxd.wait() == EX_OK
    assert not (socket_dir / "bfxd.sock").exists()
    assert bfxd.find("command.received", ref="quiet") == []
    assert bfxd.find("config.reload_failed")  # warnings and errors still are
