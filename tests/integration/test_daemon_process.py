"""The real ``bfxd run`` process against the in-process simulator: signals, exit codes, the JSON audit log.

The daemon reads a TOML config written to the test's socket directory and takes its credentials from
BFXD_API_KEY / BFXD_API_SECRET. Its stdout (one JSON object per line) is read as it comes, and tests wait for
log events instead of sleeping. Each test starts one process, which connects to the simulator once (the real
connection rate guard applies).
"""

from __future__ import annotations

import json
import signal
import socket
from pathlib import Path
from typing import TYPE_CHECKING, Any

import trio
from tests.integration.helpers import API_KEY, API_SECRET, GUARD_S, LineClient
from tests.integration.process import write_config

from bfxd.protocol import CancelOfferInput
from bfxd.simulator import Simulator

if TYPE_CHECKING:  # the fixtures' types (conftest is pytest's to import)
    from tests.integration.conftest import StartBfxd

EX_OK, EX_CONFIG = 0, 78


def is_foc(received: Any) -> bool:
    return isinstance(received.event, CancelOfferInput)


async def test_sigterm_answers_every_request_in_flight_and_exits_0(
    start_bfxd: StartBfxd, sim: Simulator, socket_dir: Path
) -> None:
    """SIGTERM with cancels in flight: each gets exactly one answer (SUCCESS within the grace period, or
    shutting_down for the one the exchange never answers), a request after the signal is answered
    shutting_down, and bfxd exits 0 with its socket file removed."""
    bfxd = await start_bfxd(write_config(socket_dir, sim.url, shutdown_grace=2.0))
    await bfxd.log.wait_for("exchange.auth_ok")
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
        await bfxd.log.wait_for("daemon.stopping", signal="SIGTERM")
        refused = await late.request({"op": "ping", "ref": "late"})
        answers = await canceller.receive_until_closed()
        assert await late.receive_until_closed() == []
    assert await bfxd.wait() == EX_OK
    assert (refused["ok"], refused["ref"], refused["error"]["type"]) == (False, "late", "shutting_down")
    assert sorted(a["ref"] for a in answers) == list(range(len(ids)))  # exactly one answer each
    outcomes = [a.get("status") or a["error"]["type"] for a in answers]
    assert outcomes == ["SUCCESS"] * (len(ids) - 1) + ["shutting_down"]  # the drain waits for the answers
    assert not socket_path.exists()
    completed = [e for e in bfxd.log.find("command.completed") if e.get("op") == "cancel"]
    assert sorted(e["outcome"] for e in completed) == ["ok"] * (len(ids) - 1) + ["shutting_down"]
    assert bfxd.log.find("daemon.stopped")


async def test_audit_trail_of_one_cancel_in_the_json_log(
    start_bfxd: StartBfxd, sim: Simulator, socket_dir: Path
) -> None:
    """stdout carries JSON lines in which command.received, frame.sent, notification.received and
    command.completed of one cancel share its request id; the secret never appears and the key only as a
    fingerprint."""
    bfxd = await start_bfxd(write_config(socket_dir, sim.url))
    await bfxd.log.wait_for("exchange.auth_ok")
    offer_id = sorted(sim.offers)[0]
    async with await LineClient.connect(socket_dir / "bfxd.sock") as client:
        answer = await client.request({"op": "cancel", "id": offer_id, "ref": "audit"})
    assert (answer["ok"], answer["status"]) == (True, "SUCCESS")
    received = await bfxd.log.wait_for("command.received", ref="audit")
    request_id = received["request_id"]
    completed = await bfxd.log.wait_for("command.completed", request_id=request_id)
    bfxd.process.send_signal(signal.SIGTERM)
    assert await bfxd.wait() == EX_OK

    sent = [e for e in bfxd.log.find("frame.sent", kind="foc") if request_id in e.get("request_ids", [])]
    noted = [e for e in bfxd.log.find("notification.received", type="foc-req")
             if request_id in e.get("request_ids", [])]
    assert len(sent) == 1 and sent[0]["offer_id"] == offer_id
    assert len(noted) == 1 and (noted[0]["status"], noted[0]["offer_id"]) == ("SUCCESS", offer_id)
    assert (received["op"], received["offer_id"]) == ("cancel", offer_id)
    assert (completed["outcome"], completed["status"], completed["offer_id"]) == ("ok", "SUCCESS", offer_id)
    assert completed["latency_ms"] >= 0
    order = [bfxd.log.entries.index(e) for e in (received, sent[0], noted[0], completed)]
    assert order == sorted(order)
    assert all({"timestamp", "level", "event"} <= set(e) for e in bfxd.log.entries)
    assert all(e["timestamp"].endswith(("Z", "+00:00")) for e in bfxd.log.entries)
    output = bfxd.stdout + bfxd.stderr
    assert API_SECRET.encode() not in output and API_KEY.encode() not in output
    assert bfxd.log.find("daemon.ready")[0]["key_fingerprint"]


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
