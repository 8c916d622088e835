"""The trail of a real ``bfxd run`` (a child process) against the simulator: sealed, restart-proof, and told back.

The client is this test process: its ``/proc`` entry is what ``client.connected`` must describe.
"""

from __future__ import annotations

import io
import json
import os
from pathlib import Path

import pytest
import trio
from tests.integration.helpers import API_KEY, API_SECRET, LineClient
from tests.integration.process import start_daemon, write_config

from bfxd.audit.chain import read_anchors
from bfxd.audit.show import Selection, select, tell
from bfxd.audit.verify import verify_lines
from bfxd.simulator import Simulator, SimulatorConfig


@pytest.fixture
async def sim(nursery: trio.Nursery) -> Simulator:
    simulator = Simulator(SimulatorConfig(api_key=API_KEY, api_secret=API_SECRET, offers=5, seed=11))
    await nursery.start(simulator.serve)
    return simulator


def own_program() -> str:
    with open("/proc/self/comm") as comm:
        return comm.read().strip()


async def one_run(nursery: trio.Nursery, config: Path, socket: Path, work) -> bytes:  # type: ignore[no-untyped-def]
    daemon = await start_daemon(nursery, config)
    await daemon.wait_event("daemon.state", state="ready")
    await work(socket)
    assert await daemon.terminate() == 0
    return bytes(daemon.stdout)


async def test_two_runs_verify_and_tell_who_cancelled(nursery: trio.Nursery, sim: Simulator, socket_dir: Path) -> None:
    anchors = socket_dir / "anchors.jsonl"
    config = write_config(socket_dir, sim.url, extra=f'anchor_file = "{anchors}"\n')
    socket = socket_dir / "bfxd.sock"
    first, second = sorted(sim.offers)[:2]

    async def cancel(offer_id: int):  # type: ignore[no-untyped-def]
        async def work(path: Path) -> None:
            async with await LineClient.connect(path) as client:
                answer = await client.request({"op": "cancel", "id": offer_id, "ref": "who"})
                assert answer["ok"] is True
        return work

    log = await one_run(nursery, config, socket, await cancel(first))
    log += await one_run(nursery, config, socket, await cancel(second))
    lines = [line + b"\n" for line in log.splitlines()]

    report = verify_lines(iter(lines), read_anchors(anchors))
    assert report.ok, report.broken
    assert len(report.runs) == 2 and all(state.closed and state.first_seq == 0 for state in report.runs.values())
    assert report.anchors_checked >= 2 and report.foreign == 0

    connected = [json.loads(x) for x in lines if b'"client.connected"' in x]
    program = own_program()
    assert {c["peer_program"] for c in connected} == {program}
    assert {c["peer_exe"] for c in connected} == {os.readlink("/proc/self/exe")}
    assert all(c["peer_pid"] == os.getpid() for c in connected)

    out = io.StringIO()
    assert tell(select(iter(lines), Selection(offer=second)), out, as_json=False) >= 4
    story = [line for line in out.getvalue().splitlines() if " book: " not in line]  # the book in both runs
    assert f"asked: cancel offer {second}" in story[0] and f"program {program}" in story[0]
    assert f"frame foc for offer {second} sent" in story[1]
    assert "exchange said: foc-req SUCCESS" in story[2]
    assert "outcome: ok SUCCESS" in story[3]
    second_run = list(report.runs)[1]
    assert all(f"[{second_run}]" in line for line in story)  # the first run's cancel is another story

    deleted = [line for line in lines if b'"frame.sent"' not in line or str(second).encode() not in line]
    broken = verify_lines(iter(deleted)).broken
    assert broken is not None and broken.kind == "missing"
