"""A real ``bfxd run`` whose log file hits ``ulimit -f`` (EFBIG): it keeps answering, says so once on stderr,
and logs again, with a ``log.lost`` line, once the limit is raised (prlimit on the running process)."""

from __future__ import annotations

import os
import resource
import signal
import subprocess
from pathlib import Path

import trio
from tests.integration.helpers import API_KEY, API_SECRET, GUARD_S, LineClient
from tests.integration.process import BFXD, write_config

from bfxd.audit.verify import verify_lines
from bfxd.simulator import Simulator, SimulatorConfig

LIMIT = 24 * 1024  # bytes of log file: reached a little after start-up


async def connect_when_listening(path: Path, process: trio.Process) -> LineClient:
    """Bounded polling: stdout is the file under test, so no daemon.ready line to wait for; the socket file
    exists from its bind, a moment before it listens."""
    with trio.fail_after(GUARD_S):
        while True:
            assert process.returncode is None
            try:
                return await LineClient.connect(path)
            except (FileNotFoundError, ConnectionRefusedError):
                await trio.sleep(0.01)


async def test_a_full_log_file_costs_lines_not_answers(nursery: trio.Nursery, socket_dir: Path) -> None:
    sim = Simulator(SimulatorConfig(api_key=API_KEY, api_secret=API_SECRET, offers=5, seed=11))
    await nursery.start(sim.serve)
    config = write_config(socket_dir, sim.url)
    log_path = socket_dir / "bfxd.log"
    env = {**os.environ, "BFXD_API_KEY": API_KEY, "BFXD_API_SECRET": API_SECRET}

    def limit_file_size() -> None:
        resource.setrlimit(resource.RLIMIT_FSIZE, (LIMIT, resource.RLIM_INFINITY))  # soft: may be raised later

    log_fd = os.open(log_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        process = await trio.lowlevel.open_process([*BFXD, "run", "-c", str(config)], env=env, stdout=log_fd,
                                                   stderr=subprocess.PIPE, preexec_fn=limit_file_size)
    finally:
        os.close(log_fd)
    stderr = bytearray()

    async def pump() -> None:
        assert process.stderr is not None
        async for chunk in process.stderr:
            stderr.extend(chunk)

    nursery.start_soon(pump)
    socket = socket_dir / "bfxd.sock"
    state = None
    try:
        async with await connect_when_listening(socket, process) as client:
            with trio.fail_after(GUARD_S):  # each request logs two lines: the file fills up
                while b"cannot write the log" not in stderr or state != "ready":
                    state = (await client.request({"op": "status"}))["status"]["state"]
                    assert process.returncode is None
            assert log_path.stat().st_size <= LIMIT
            offer_id = sorted(sim.offers)[0]
            answer = await client.request({"op": "cancel", "id": offer_id, "ref": "while-full"})
            assert (answer["ok"], answer["status"]) == (True, "SUCCESS")  # answers are not lost

            resource.prlimit(process.pid, resource.RLIMIT_FSIZE, (resource.RLIM_INFINITY, resource.RLIM_INFINITY))
            with trio.fail_after(GUARD_S):
                while b"the log is written again" not in stderr:
                    assert (await client.request({"op": "ping"}))["ok"] is True
    finally:
        process.send_signal(signal.SIGTERM)
        with trio.fail_after(GUARD_S):
            code = await process.wait()
    assert code == 0
    messages = bytes(stderr).decode().splitlines()
    assert len(messages) == 2, messages  # said once when it failed, once when it worked again; nothing else
    assert messages[0].startswith("bfxd: cannot write the log (EFBIG: File too large); still serving")
    assert messages[1].startswith("bfxd: the log is written again; ")

    lines = [line + b"\n" for line in log_path.read_bytes().split(b"\n")[:-1]]
    report = verify_lines(iter(lines))
    assert report.ok, report.broken
    assert report.declared_lost > 0
    (run,) = report.runs.values()
    assert run.first_seq == 0 and run.closed  # the run is whole, its end included
