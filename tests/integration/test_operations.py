"""Operations: the demo, secrets never in any output, sd_notify readiness/watchdog/stopping, exit codes."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import time
from collections.abc import Iterator
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
import trio
from tests.integration.helpers import API_KEY, API_SECRET, GUARD_S, LineClient, fast_link, test_config, test_credentials
from tests.integration.process import BFXD, write_config

from bfxd.actors.account import AccountRouter
from bfxd.actors.messages import Probe
from bfxd.actors.session import SessionSnapshot
from bfxd.config import Config
from bfxd.daemon import _exchange_side_stale, run_daemon
from bfxd.protocol import AuthRequest
from bfxd.simulator import Simulator, SimulatorConfig
from bfxd.systemd import Notifier

if TYPE_CHECKING:  # the fixtures' types (conftest is pytest's to import)
    from tests.integration.conftest import StartBfxd


class FakeSystemd:
    """The receiving end of $NOTIFY_SOCKET."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(str(path))
        self.sock.setblocking(False)
        self.messages: list[str] = []

    async def wait_for(self, payload: str, *, prefix: bool = False) -> None:
        """Until a datagram containing the line *payload* (or a line starting with it) has arrived."""
        trio_sock = trio.socket.from_stdlib_socket(self.sock)

        def seen() -> bool:
            lines = [line for m in self.messages for line in m.splitlines()]
            return any(line.startswith(payload) if prefix else line == payload for line in lines)

        with trio.fail_after(GUARD_S):
            while not seen():
                self.messages.append((await trio_sock.recv(4096)).decode())


@pytest.fixture
def systemd(socket_dir: Path) -> Iterator[FakeSystemd]:
    fake = FakeSystemd(socket_dir / "notify")
    yield fake
    fake.sock.close()


def test_demo_walkthrough_runs_offline_and_exits_0() -> None:
    """``bfxd demo --walkthrough`` tours every command against the simulator and exits 0."""
    done = subprocess.run([*BFXD, "demo", "--walkthrough"], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    out = done.stdout
    for expected in ("$ bfxctl status", "state:", "ready", "$ bfxctl offers", "cancelled",
                     "refused (ERROR)", "watch:", "$ bfxctl cancel-all", "command.completed", "Walkthrough complete"):
        assert expected in out, out


async def test_secret_and_signatures_never_reach_any_output(nursery: trio.Nursery, socket_dir: Path,
                                                             start_bfxd: StartBfxd) -> None:
    """A full session with a known secret (auth failure, nonce error, cancels, bad input) never prints it."""
    sim = Simulator(SimulatorConfig(api_key=API_KEY, api_secret=API_SECRET))
    url = await nursery.start(sim.serve)
    sim.reject_auth(1)
    sim.nonce_error(1)
    daemon = await start_bfxd(write_config(socket_dir, url))
    await daemon.log.wait_for("exchange.auth_ok")
    async with await LineClient.connect(socket_dir / "bfxd.sock") as client:
        for request in ({"op": "status"}, {"op": "offers"}, {"op": "cancel", "id": min(sim.offers)},
                        {"op": "cancel", "id": 5}, {"op": "nope"}, {"op": "cancel", "id": "x"}):
            await client.request(request)
        await client.send(b"\xff\xfe not utf-8\n")
        await client.receive()
    assert await daemon.terminate() == 0
    output = bytes(daemon.stdout + daemon.stderr)
    signatures = [r.event.signature for r in sim.received if isinstance(r.event, AuthRequest)]
    assert len(signatures) == 3  # refused, nonce error, accepted
    assert API_SECRET.encode() not in output
    for signature in signatures:
        assert signature.encode() not in output
    assert b"authSig" not in output
    assert API_KEY.encode() not in output  # the key only as a fingerprint


async def test_sd_notify_ready_watchdog_and_stopping(nursery: trio.Nursery, socket_dir: Path,
                                                     systemd: FakeSystemd, start_bfxd: StartBfxd) -> None:
    """Under a fake systemd the daemon says READY=1 once listening, pings WATCHDOG=1, and STOPPING=1 on SIGTERM."""
    sim = Simulator(SimulatorConfig(api_key=API_KEY, api_secret=API_SECRET))
    url = await nursery.start(sim.serve)
    daemon = await start_bfxd(write_config(socket_dir, url),
                              env={"NOTIFY_SOCKET": str(systemd.path), "WATCHDOG_USEC": "400000"})
    await systemd.wait_for("READY=1")
    assert (socket_dir / "bfxd.sock").exists()  # READY only once the socket listens
    await systemd.wait_for("WATCHDOG=1")
    await systemd.wait_for("STATUS=ready", prefix=True)
    assert await daemon.terminate() == 0
    await systemd.wait_for("STOPPING=1")


async def test_watchdog_withheld_when_the_router_is_wedged(nursery: trio.Nursery, socket_dir: Path,
                                                           systemd: FakeSystemd,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    """A router that stops answering the probe stops the pings and sends WATCHDOG=trigger."""
    sim = Simulator(SimulatorConfig(api_key=API_KEY, api_secret=API_SECRET))
    url = await nursery.start(sim.serve)
    wedged = trio.Event()
    original = AccountRouter.on_command

    def on_command(self: AccountRouter, command: object) -> None:
        if isinstance(command, Probe) and wedged.is_set():
            return  # stuck: the probe is never answered
        original(self, command)  # type: ignore[arg-type]

    monkeypatch.setattr(AccountRouter, "on_command", on_command)
    stop = trio.Event()
    notifier = Notifier(env={"NOTIFY_SOCKET": str(systemd.path)})
    await nursery.start(partial(run_daemon, test_config(url, socket_dir / "bfxd.sock"), test_credentials(),
                                stop=stop, notifier=notifier, watchdog_period=0.2, link=fast_link(url)))
    await systemd.wait_for("WATCHDOG=1")
    wedged.set()
    await systemd.wait_for("WATCHDOG=trigger")
    pings_before = sum(m.splitlines().count("WATCHDOG=1") for m in systemd.messages)
    await systemd.wait_for("WATCHDOG=trigger")  # time passes: several periods, no ping among them
    assert sum(m.splitlines().count("WATCHDOG=1") for m in systemd.messages) == pings_before
    stop.set()


def test_bad_config_exits_78_naming_the_key(socket_dir: Path) -> None:
    """A config error exits 78 with a message naming the file and the key."""
    config = socket_dir / "bad.toml"
    config.write_text('[socket]\nmode = "rwx"\n')
    done = subprocess.run([*BFXD, "run", "-c", str(config)], capture_output=True, text=True, timeout=60,
                          env={**os.environ, "BFXD_API_KEY": API_KEY, "BFXD_API_SECRET": API_SECRET})
    assert done.returncode == 78
    assert str(config) in done.stderr and "mode" in done.stderr


def test_loose_secret_file_exits_78(socket_dir: Path) -> None:
    """A secret file readable by others is refused like ssh does: exit 78, the secret not printed."""
    (socket_dir / "key").write_text(API_KEY + "\n")
    (socket_dir / "secret").write_text(API_SECRET + "\n")
    os.chmod(socket_dir / "key", 0o600)
    os.chmod(socket_dir / "secret", 0o644)
    config = socket_dir / "bfxd.toml"
    config.write_text(f'[exchange]\napi_key_file = "{socket_dir / "key"}"\n'
                      f'api_secret_file = "{socket_dir / "secret"}"\n[socket]\npath = "{socket_dir / "bfxd.sock"}"\n')
    env = {k: v for k, v in os.environ.items() if not k.startswith("BFXD_API")}
    done = subprocess.run([*BFXD, "run", "-c", str(config)], capture_output=True, text=True, timeout=60, env=env)
    assert done.returncode == 78
    assert "chmod 600" in done.stderr
    assert API_SECRET not in done.stdout + done.stderr


def test_check_config_prints_the_effective_config_redacted(socket_dir: Path) -> None:
    """``bfxd check-config`` prints every section, the key as a fingerprint, and never the secret."""
    config = socket_dir / "bfxd.toml"
    config.write_text('[requests]\ntimeout = 7.5\n')
    done = subprocess.run([*BFXD, "check-config", "-c", str(config)], capture_output=True, text=True, timeout=60,
                          env={**os.environ, "BFXD_API_KEY": API_KEY, "BFXD_API_SECRET": API_SECRET})
    assert done.returncode == 0, done.stderr
    effective = json.loads(done.stdout)
    assert effective["requests"]["timeout"] == 7.5
    assert set(effective) >= {"exchange", "socket", "requests", "reconnect", "log", "credentials"}
    assert API_SECRET not in done.stdout and API_KEY not in done.stdout


def test_watchdog_judges_the_exchange_side_from_the_board() -> None:
    """A link stuck dialling, or ready but silent far past the heartbeat timeout, marks its actor stale."""
    config = Config()
    now = time.time()

    def snap(state: str, since_ago: float, age: float | None) -> SessionSnapshot:
        return SessionSnapshot(state=state, since=now - since_ago, user_id=1, last_message_age_s=age,
                               queued_inputs=0, pace=5.0,  # type: ignore[arg-type]
                               reconnects=0, pending=0, offers=0, detail=None, version=1)

    assert _exchange_side_stale(snap("ready", 100, 1.0), config) == []
    assert _exchange_side_stale(snap("backoff", 3600, None), config) == []  # an outage is not a wedge
    assert _exchange_side_stale(snap("connecting", 10, None), config) == []
    assert _exchange_side_stale(snap("connecting", 600, None), config)[0].startswith("connection")
    assert _exchange_side_stale(snap("ready", 600, 600.0), config)[0].startswith("heartbeat")
