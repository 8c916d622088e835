"""bfxctl as a subprocess against the in-process daemon and simulator: what it prints and its exit codes.

Exit codes (interface.md): 0 every command succeeded, 1 the exchange refused, 3 daemon unreachable, 4 timed out /
outcome unknown, 5 daemon up but the exchange session not ready.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
import trio
from tests.integration.helpers import GUARD_S
from tests.jsonlines import split

from bfxd.protocol import CancelOfferInput
from bfxd.simulator import Simulator

if TYPE_CHECKING:  # the fixtures' types (conftest is pytest's to import)
    from tests.integration.conftest import LogWatch, RunningDaemon, StartDaemon

BFXCTL = Path(sys.executable).parent / "bfxctl"
OK, REFUSED, UNREACHABLE, TIMED_OUT, NOT_READY = 0, 1, 3, 4, 5


async def bfxctl(socket_path: Path, *args: str) -> subprocess.CompletedProcess[bytes]:
    """Run ``bfxctl -s SOCKET ARGS`` to its end (under the hang guard) and return what it did."""
    env = {k: v for k, v in os.environ.items() if k != "BFXD_SOCKET"}
    with trio.fail_after(GUARD_S):
        return await trio.run_process([str(BFXCTL), "-s", str(socket_path), *args], capture_stdout=True,
                                      capture_stderr=True, check=False, env=env)


def foc_count(sim: Simulator) -> int:
    return sum(isinstance(r.event, CancelOfferInput) for r in sim.received)


class TestSuccess:
    async def test_status_ready_exits_0(self, daemon: RunningDaemon, sim: Simulator) -> None:
        """status of a ready session prints the state and exits 0."""
        result = await bfxctl(daemon.socket_path, "status")
        assert result.returncode == OK, result.stderr
        assert b"ready" in result.stdout and str(sim.config.user_id).encode() in result.stdout

    async def test_status_json_is_the_daemon_answer(self, daemon: RunningDaemon) -> None:
        """status --json prints the daemon's answer as one JSON document."""
        result = await bfxctl(daemon.socket_path, "--json", "status")
        assert result.returncode == OK
        [answer] = split(result.stdout)  # schema-checked, as every line the tests read
        assert (answer["ok"], answer["status"]["state"], answer["status"]["authenticated"]) == (True, "ready", True)

    async def test_offers_with_symbol(self, daemon: RunningDaemon, sim: Simulator) -> None:
        """offers --symbol --json lists exactly that symbol's offers and exits 0."""
        symbol = sim.offers[min(sim.offers)].symbol
        assert symbol is not None
        result = await bfxctl(daemon.socket_path, "offers", "--symbol", symbol, "--json")
        assert result.returncode == OK
        listed = sorted(o["id"] for o in split(result.stdout)[0]["offers"])
        assert listed == sorted(i for i, o in sim.offers.items() if o.symbol == symbol)

    async def test_cancel_ok_exits_0(self, daemon: RunningDaemon, sim: Simulator) -> None:
        """cancel of two active offers cancels both, prints them, and exits 0."""
        first, second = sorted(sim.offers)[:2]
        result = await bfxctl(daemon.socket_path, "cancel", str(first), str(second))
        assert result.returncode == OK, result.stderr
        assert result.stdout.count(b"cancelled") == 2
        assert first not in sim.offers and second not in sim.offers

    async def test_cancel_all_exits_0(self, daemon: RunningDaemon, sim: Simulator) -> None:
        """cancel-all cancels every offer and exits 0."""
        count = len(sim.offers)
        result = await bfxctl(daemon.socket_path, "cancel-all")
        assert result.returncode == OK, result.stderr
        assert sim.offers == {} and foc_count(sim) == count


    async def test_status_since_reads_as_time_ago(self, daemon: RunningDaemon) -> None:
        """status shows since as a time and how long ago."""
        result = await bfxctl(daemon.socket_path, "status")
        since = next(line for line in result.stdout.decode().splitlines() if line.startswith("since:"))
        assert since.endswith(" s ago)"), since

    async def test_hello_of_todays_daemon(self, daemon: RunningDaemon) -> None:
        """hello against the daemon: protocol 0 while it answers hello with unknown_op, 1 once it speaks hello;
        either way exit 0 and the ops it serves."""
        result = await bfxctl(daemon.socket_path, "hello")
        assert result.returncode == OK, result.stderr
        protocol = next(line for line in result.stdout.decode().splitlines() if line.startswith("protocol:"))
        assert protocol.split()[1] in ("0", "1") and b"cancel_all" in result.stdout

    async def test_cancel_json_answers_follow_the_schema(self, daemon: RunningDaemon, sim: Simulator) -> None:
        """cancel --json of a known and an unknown id: two answer lines, both valid under the schema."""
        known = min(sim.offers)
        result = await bfxctl(daemon.socket_path, "--json", "cancel", str(known), "123456789")
        assert result.returncode == REFUSED
        first, second = split(result.stdout)
        assert first["ok"] and first["offer"]["id"] == known
        assert second["error"]["type"] == "exchange" and second["error"]["text"] == "Offer not found"

    async def test_watch_exits_3_after_watch_ended(self, daemon: RunningDaemon, log_watch: LogWatch,
                                                   nursery: trio.Nursery) -> None:
        """watch prints events; when the daemon stops it sends watch_ended, and bfxctl exits 3."""
        done = trio.Event()
        outcome: dict[str, subprocess.CompletedProcess[bytes]] = {}

        async def watch() -> None:
            env = {k: v for k, v in os.environ.items() if k != "BFXD_SOCKET"}
            outcome["result"] = await trio.run_process(
                [str(BFXCTL), "-s", str(daemon.socket_path), "--json", "watch"], capture_stdout=True,
                capture_stderr=True, check=False, env=env)
            done.set()

        nursery.start_soon(watch)
        await log_watch.wait_for("command.completed", op="watch")  # subscribed
        await daemon.shut_down()
        with trio.fail_after(GUARD_S):
            await done.wait()
        result = outcome["result"]
        assert result.returncode == UNREACHABLE, result.stderr
        lines = split(result.stdout)
        assert lines[0] == {"ok": True, "op": "watch", "ref": lines[0]["ref"]}
        assert lines[-1]["event"] == "watch_ended" and b"ended the watch" in result.stderr


class TestFailures:
    async def test_exchange_refusal_exits_1(self, daemon: RunningDaemon, sim: Simulator) -> None:
        """cancel of an unknown id prints the exchange's text and exits 1, even when another cancel succeeded."""
        known = min(sim.offers)
        result = await bfxctl(daemon.socket_path, "cancel", str(known), "123456789")
        assert result.returncode == REFUSED
        assert b"Offer not found" in result.stdout and b"cancelled" in result.stdout
        assert known not in sim.offers

    async def test_no_socket_exits_3(self, socket_dir: Path) -> None:
        """A socket path with no daemon behind it exits 3 and says so."""
        result = await bfxctl(socket_dir / "nobody.sock", "status")
        assert result.returncode == UNREACHABLE
        assert b"no such socket" in result.stderr

    async def test_forbidden_exits_3(self, start_daemon: StartDaemon) -> None:
        """A uid the daemon does not allow exits 3 with the forbidden message."""
        daemon = await start_daemon(allowed_uids=(os.getuid() + 4242,))
        result = await bfxctl(daemon.socket_path, "status")
        assert result.returncode == UNREACHABLE
        assert b"forbidden" in result.stderr

    async def test_lost_frame_with_timeout_exits_4(self, daemon: RunningDaemon, sim: Simulator) -> None:
        """A cancel the exchange never answers, with --timeout, exits 4 (outcome unknown) once the daemon says
        timeout."""
        offer_id = min(sim.offers)
        sim.lose_inputs(1)
        result = await bfxctl(daemon.socket_path, "--timeout", "0.5", "cancel", str(offer_id))
        assert result.returncode == TIMED_OUT
        assert b"timed out" in result.stdout
        assert foc_count(sim) == 1 and offer_id in sim.offers

    async def test_silent_daemon_exits_4(self, socket_dir: Path) -> None:
        """A socket that accepts but never answers exits 4 at the client's own --timeout."""
        path = socket_dir / "silent.sock"
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as silent:
            silent.bind(str(path))
            silent.listen(1)
            result = await bfxctl(path, "--timeout", "0.3", "status")
        assert result.returncode == TIMED_OUT
        assert b"outcome unknown" in result.stderr

    @pytest.mark.parametrize("args", [("status",), ("--timeout", "0.3", "cancel", "41000000"),
                                      ("--timeout", "0.3", "cancel-all")], ids=["status", "cancel", "cancel-all"])
    async def test_not_ready_exits_5(self, start_daemon: StartDaemon, sim: Simulator, args: tuple[str, ...]) -> None:
        """With the exchange refusing every auth, status, cancel and cancel-all exit 5 and nothing is sent."""
        sim.reject_auth(1000)
        daemon = await start_daemon(wait_ready=False)
        with trio.fail_after(GUARD_S):
            while daemon.board.state != "auth_failed":
                await daemon.board.wait_changed(daemon.board.snapshot().version)
        result = await bfxctl(daemon.socket_path, *args)
        assert result.returncode == NOT_READY, (result.stdout, result.stderr)
        assert foc_count(sim) == 0
