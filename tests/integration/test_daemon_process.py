"""The real ``bfxd run`` process against the in-process simulator: signals, exit codes, the JSON audit log.

The daemon reads a TOML config written to the test's socket directory and takes its credentials from
BFXD_API_KEY / BFXD_API_SECRET. Its stdout (one JSON object per line) is read as it comes, and tests wait for
log events instead of sleeping. Each test starts one process, which connects to the simulator once (the real
connection rate guard applies).
"""

from __future__ import annotations

import json
import os
import signal
import socket
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from subprocess import PIPE
from typing import Any

import pytest
import trio
from tests.integration.helpers import API_KEY, API_SECRET, GUARD_S, LineClient

from bfxd.protocol import CancelOfferInput
from bfxd.simulator import Simulator

BIN = Path(sys.executable).parent
EX_OK, EX_CONFIG = 0, 78


def daemon_env() -> dict[str, str]:
    """This environment without bfxd settings or systemd hand-overs, plus the test credentials."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("BFXD_", "NOTIFY_SOCKET", "WATCHDOG_", "LISTEN_", "CREDENTIALS_DIRECTORY"))}
    return {**env, "BFXD_API_KEY": API_KEY, "BFXD_API_SECRET": API_SECRET}


def write_config(directory: Path, url: str, *, shutdown_grace: float = 2.0, socket_path: Path | None = None) -> Path:
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
""")
    return path


class BfxdProcess:
    """A running ``bfxd run``: its JSON log lines as they arrive, its stderr, and ways to wait on them."""

    def __init__(self, process: trio.Process) -> None:
        self.process = process
        self.log: list[dict[str, Any]] = []
        self.stdout = b""
        self.stderr = b""
        self.output_closed = trio.Event()  # both pipes reached their end
        self._changed = trio.Event()

    async def pump(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        assert self.process.stdout is not None and self.process.stderr is not None
        task_status.started()
        async with trio.open_nursery() as nursery:
            nursery.start_soon(self._read_stderr, self.process.stderr)
            pending = b""
            async for chunk in self.process.stdout:
                self.stdout += chunk
                *lines, pending = (pending + chunk).split(b"\n")
                self.log += [json.loads(line) for line in lines if line.strip()]
                self._bump()
        self.output_closed.set()
        self._bump()

    async def _read_stderr(self, stream: trio.abc.ReceiveStream) -> None:
        async for chunk in stream:
            self.stderr += chunk
            self._bump()

    def _bump(self) -> None:
        self._changed.set()
        self._changed = trio.Event()

    def find(self, event: str, **fields: Any) -> list[dict[str, Any]]:
        return [e for e in self.log if e.get("event") == event and all(e.get(k) == v for k, v in fields.items())]

    async def wait_for(self, event: str, **fields: Any) -> dict[str, Any]:
        """The first log line named *event* with *fields*; fails if the output ends without it."""
        with trio.fail_after(GUARD_S):
            while not (found := self.find(event, **fields)):
                assert not self.output_closed.is_set(), f"bfxd ended without logging {event}: {self.stderr!r}"
                await self._changed.wait()
        return found[0]

    async def wait(self) -> int:
        """The exit status, once the process has ended and all of its output has been read."""
        with trio.fail_after(GUARD_S):
            status = await self.process.wait()
            await self.output_closed.wait()
        return status


StartBfxd = Callable[[Path], Awaitable[BfxdProcess]]


@pytest.fixture
async def start_bfxd(nursery: trio.Nursery) -> AsyncIterator[StartBfxd]:
    """A factory: ``bfxd run -c CONFIG`` as a subprocess, its output read in the background; killed at the end if
    the test left it running."""
    started: list[BfxdProcess] = []

    async def start(config_path: Path) -> BfxdProcess:
        process = await trio.lowlevel.open_process([str(BIN / "bfxd"), "run", "-c", str(config_path)],
                                                   stdout=PIPE, stderr=PIPE, env=daemon_env())
        bfxd = BfxdProcess(process)
        started.append(bfxd)
        await nursery.start(bfxd.pump)
        return bfxd

    yield start
    for bfxd in started:
        if bfxd.process.returncode is None:
            bfxd.process.kill()
            await bfxd.wait()


def is_foc(received: Any) -> bool:
    return isinstance(received.event, CancelOfferInput)


async def test_sigterm_answers_every_request_in_flight_and_exits_0(
    start_bfxd: StartBfxd, sim: Simulator, socket_dir: Path
) -> None:
    """SIGTERM with cancels in flight: each gets exactly one answer (SUCCESS within the grace period, or
    shutting_down for the one the exchange never answers), a request after the signal is answered
    shutting_down, and bfxd exits 0 with its socket file removed."""
    bfxd = await start_bfxd(write_config(socket_dir, sim.url, shutdown_grace=2.0))
    await bfxd.wait_for("exchange.auth_ok")
    socket_path = socket_dir / "bfxd.sock"
    ids = sorted(sim.offers)[:4]
    sim.delay_answers(0.5)
    sim.lose_inputs(1)  # one of the four frames is never answered
    async with await LineClient.connect(socket_path) as canceller, await LineClient.connect(socket_path) as late:
        assert (await late.request({"op": "ping"}))["ok"] is True
        await canceller.send(b"".join(json.dumps({"op": "cancel", "id": i, "ref": n}).encode() + b"\n"
                                      for n, i in enumerate(ids)))
        with trio.fail_after(GUARD_S):
            await sim.wait_received(is_foc, count=len(ids))
        bfxd.process.send_signal(signal.SIGTERM)
        await bfxd.wait_for("daemon.stopping", signal="SIGTERM")
        refused = await late.request({"op": "ping", "ref": "late"})
        answers = await canceller.receive_until_closed()
        assert await late.receive_until_closed() == []
    assert await bfxd.wait() == EX_OK
    assert (refused["ok"], refused["ref"], refused["error"]["type"]) == (False, "late", "shutting_down")
    assert sorted(a["ref"] for a in answers) == list(range(len(ids)))  # exactly one answer each
    outcomes = [a.get("status") or a["error"]["type"] for a in answers]
    assert outcomes == ["SUCCESS"] * (len(ids) - 1) + ["shutting_down"]  # the drain waits for the answers
    assert not socket_path.exists()
    completed = [e for e in bfxd.find("command.completed") if e.get("op") == "cancel"]
    assert sorted(e["outcome"] for e in completed) == ["ok"] * (len(ids) - 1) + ["shutting_down"]
    assert bfxd.find("daemon.stopped")


async def test_audit_trail_of_one_cancel_in_the_json_log(
    start_bfxd: StartBfxd, sim: Simulator, socket_dir: Path
) -> None:
    """stdout carries JSON lines in which command.received, frame.sent, notification.received and
    command.completed of one cancel share its request id; the secret never appears and the key only as a
    fingerprint."""
    bfxd = await start_bfxd(write_config(socket_dir, sim.url))
    await bfxd.wait_for("exchange.auth_ok")
    offer_id = sorted(sim.offers)[0]
    async with await LineClient.connect(socket_dir / "bfxd.sock") as client:
        answer = await client.request({"op": "cancel", "id": offer_id, "ref": "audit"})
    assert (answer["ok"], answer["status"]) == (True, "SUCCESS")
    received = await bfxd.wait_for("command.received", ref="audit")
    request_id = received["request_id"]
    completed = await bfxd.wait_for("command.completed", request_id=request_id)
    bfxd.process.send_signal(signal.SIGTERM)
    assert await bfxd.wait() == EX_OK

    sent = [e for e in bfxd.find("frame.sent", kind="foc") if request_id in e.get("request_ids", [])]
    noted = [e for e in bfxd.find("notification.received", type="foc-req") if request_id in e.get("request_ids", [])]
    assert len(sent) == 1 and sent[0]["offer_id"] == offer_id
    assert len(noted) == 1 and (noted[0]["status"], noted[0]["offer_id"]) == ("SUCCESS", offer_id)
    assert (received["op"], received["offer_id"]) == ("cancel", offer_id)
    assert (completed["outcome"], completed["status"], completed["offer_id"]) == ("ok", "SUCCESS", offer_id)
    assert completed["latency_ms"] >= 0
    order = [bfxd.log.index(e) for e in (received, sent[0], noted[0], completed)]
    assert order == sorted(order)
    assert all({"timestamp", "level", "event"} <= set(e) for e in bfxd.log)
    assert all(e["timestamp"].endswith(("Z", "+00:00")) for e in bfxd.log)
    output = bfxd.stdout + bfxd.stderr
    assert API_SECRET.encode() not in output and API_KEY.encode() not in output
    assert bfxd.find("daemon.ready")[0]["key_fingerprint"]


async def test_live_socket_exits_78_with_a_clear_message(start_bfxd: StartBfxd, sim: Simulator,
                                                         socket_dir: Path) -> None:
    """A second daemon on a socket someone listens on exits 78, says why on stderr, and leaves the socket alone."""
    socket_path = socket_dir / "bfxd.sock"
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as live:
        live.bind(str(socket_path))
        live.listen(4)
        bfxd = await start_bfxd(write_config(socket_dir, sim.url))
        assert await bfxd.wait() == EX_CONFIG
        assert socket_path.exists()
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as probe:
            probe.connect(str(socket_path))
    assert f"another daemon is already listening on {socket_path}" in bfxd.stderr.decode()
    assert sim.connection_count == 0  # refused before touching the exchange


async def test_missing_socket_directory_exits_78(start_bfxd: StartBfxd, sim: Simulator, socket_dir: Path) -> None:
    """A socket path whose directory does not exist is a configuration error: exit 78 naming the directory."""
    missing = socket_dir / "no-such-dir"
    bfxd = await start_bfxd(write_config(socket_dir, sim.url, socket_path=missing / "bfxd.sock"))
    assert await bfxd.wait() == EX_CONFIG
    assert f"directory {missing} does not exist" in bfxd.stderr.decode()
