"""Socket activation (issue 15 item 11): ``bfxd run`` serves a listening socket it inherits (LISTEN_FDS), never
unlinks it, and a client that connects while the daemon restarts waits in the backlog instead of being refused."""

from __future__ import annotations

import json
import shutil
import signal
import socket
from pathlib import Path
from subprocess import PIPE

import pytest
import trio
from tests.integration.helpers import GUARD_S, LineClient
from tests.integration.process import BIN, EX_CONFIG, EX_OK, BfxdProcess, daemon_env, write_config

from bfxd.simulator import Simulator
from bfxd.unix_socket import inherited_listener


async def start_activated(nursery: trio.Nursery, config: Path, listening: socket.socket) -> BfxdProcess:
    """``bfxd run`` with *listening* as fd 3 and LISTEN_PID set to its own pid, as systemd does it."""
    command = ["sh", "-c", 'LISTEN_PID=$$ exec "$@"', "sh", str(BIN / "bfxd"), "run", "-c", str(config)]
    env = {**daemon_env(), "LISTEN_FDS": "1", "LISTEN_FDNAMES": "control"}
    process = await trio.lowlevel.open_process(
        command, stdout=PIPE, stderr=PIPE, env=env, pass_fds=(3,),
        preexec_fn=lambda: _dup_to_3(listening.fileno()))
    bfxd = BfxdProcess(process)
    await nursery.start(bfxd.pump)
    return bfxd


def _dup_to_3(fd: int) -> None:  # in the child, before exec
    import os

    if fd != 3:
        os.dup2(fd, 3)


@pytest.fixture
def listening(socket_dir: Path):  # type: ignore[no-untyped-def]
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.bind(str(socket_dir / "activated.sock"))
    sock.listen(64)
    yield sock
    sock.close()


async def test_a_restart_keeps_clients_waiting_not_refused(nursery: trio.Nursery, sim: Simulator, socket_dir: Path,
                                                           listening: socket.socket) -> None:
    path = socket_dir / "activated.sock"
    config = write_config(socket_dir, sim.url, socket_path=socket_dir / "unused.sock")
    first = await start_activated(nursery, config, listening)
    ready = await first.wait_for("daemon.ready")
    assert (ready["socket"], ready["socket_activated"]) == (str(path), True)
    await first.wait_for("exchange.auth_ok")
    async with await LineClient.connect(path) as client:
        assert (await client.request({"op": "ping"}))["ok"] is True
    first.process.send_signal(signal.SIGTERM)
    assert await first.wait() == EX_OK
    assert path.exists()  # the file is the service manager's: not unlinked
    assert not (socket_dir / "unused.sock").exists()

    # Nobody serves now: a client still connects (the backlog) and its request waits for the next daemon.
    waiting = await LineClient.connect(path)
    async with waiting:
        await waiting.send(json.dumps({"op": "ping", "ref": "waited"}).encode() + b"\n")
        second = await start_activated(nursery, config, listening)
        with trio.fail_after(GUARD_S):
            answer = await waiting.receive()
        assert (answer["ok"], answer["ref"]) == (True, "waited")
    second.process.send_signal(signal.SIGTERM)
    assert await second.wait() == EX_OK


async def test_a_handed_over_fd_that_is_not_a_listening_socket_is_exit_78(
        nursery: trio.Nursery, sim: Simulator, socket_dir: Path) -> None:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)  # bound but not listening
    sock.bind(str(socket_dir / "not-listening.sock"))
    with sock:
        bfxd = await start_activated(nursery, write_config(socket_dir, sim.url), sock)
        assert await bfxd.wait() == EX_CONFIG
    assert b"not a listening AF_UNIX stream socket" in bfxd.stderr


@pytest.mark.skipif(shutil.which("systemd-socket-activate") is None, reason="systemd-socket-activate not installed")
async def test_under_systemd_socket_activate(nursery: trio.Nursery, sim: Simulator, socket_dir: Path) -> None:
    """systemd's own tool creates the socket and execs bfxd with it (systemd.md §4.3, §9 item 5)."""
    path = socket_dir / "sa.sock"
    # It passes on only the variables named with -E (the credentials), like a unit's clean environment.
    command = ["systemd-socket-activate", "-l", str(path), "--fdname=control", "-E", "BFXD_API_KEY",
               "-E", "BFXD_API_SECRET", str(BIN / "bfxd"), "run", "-c",
               str(write_config(socket_dir, sim.url, socket_path=socket_dir / "unused.sock"))]
    process = await trio.lowlevel.open_process(command, stdout=PIPE, stderr=PIPE, env=daemon_env())
    bfxd = BfxdProcess(process)
    await nursery.start(bfxd.pump)
    try:
        # systemd-socket-activate says "Listening on …" once the socket exists; bfxd starts at the first connection.
        with trio.fail_after(GUARD_S):
            await bfxd.log.wait_until(lambda: b"Listening on" in bfxd.stderr, what="Listening on")
        async with await LineClient.connect(path) as client:
            status = await client.request({"op": "status"})
        assert status["ok"] is True
        assert (await bfxd.wait_for("daemon.ready"))["socket_activated"] is True
    finally:
        bfxd.process.send_signal(signal.SIGTERM)
    assert await bfxd.wait() == EX_OK


def test_inherited_listener_ignores_a_hand_over_for_another_process() -> None:
    env = {"LISTEN_PID": "1", "LISTEN_FDS": "1", "LISTEN_FDNAMES": "control"}
    assert inherited_listener(env) is None
    assert env == {}  # removed either way: children must not take them for their own
    assert inherited_listener({}) is None
