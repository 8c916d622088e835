"""``python -m bfxd.simulator`` (``bfxd simulate``): URL line first, serves, clean exit on SIGTERM/SIGINT."""

from __future__ import annotations

import json
import re
import signal
import socket
import subprocess
import sys

import pytest
import trio

from bfxd.protocol import SequenceCheck, conf_frame, sequence_numbers
from bfxd.simulator.command import simulate_main

from .wsclient import GUARD_S, KEY, SECRET, auth_text, connect

URL_LINE = re.compile(r"ws://127\.0\.0\.1:(\d+)/ws/2")


async def _read_line(stream: trio.abc.ReceiveStream, buffer: bytearray) -> str:
    with trio.fail_after(GUARD_S):
        while b"\n" not in buffer:
            chunk = await stream.receive_some()
            if not chunk:
                raise EOFError(f"the simulator closed stdout; got {bytes(buffer)!r}")
            buffer += chunk
    line, _, rest = bytes(buffer).partition(b"\n")
    buffer[:] = rest
    return line.decode()


async def _read_rest(stream: trio.abc.ReceiveStream, buffer: bytearray) -> str:
    with trio.fail_after(GUARD_S):
        while chunk := await stream.receive_some():
            buffer += chunk
    return buffer.decode()


def _command(*flags: str) -> list[str]:
    return [sys.executable, "-m", "bfxd.simulator", "--port", "0", "--api-key", KEY, "--api-secret", SECRET,
            "--log-format", "json", *flags]


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
async def test_prints_url_serves_and_stops_cleanly(signum: signal.Signals) -> None:
    """The first stdout line is the URL; a client authenticates there; the signal ends it with exit 0."""
    process = await trio.lowlevel.open_process(_command("--offers", "2"), stdout=subprocess.PIPE,
                                               stderr=subprocess.PIPE)
    try:
        assert process.stdout is not None and process.stderr is not None
        buffer = bytearray()
        url = await _read_line(process.stdout, buffer)
        assert URL_LINE.fullmatch(url), url
        async with connect(url, authenticated=True) as client:
            await client.send({"event": "ping", "cid": 3})
            assert (await client.receive())["cid"] == 3
        process.send_signal(signum)
        logs = await _read_rest(process.stdout, buffer)
        with trio.fail_after(GUARD_S):
            assert await process.wait() == 0
        errors = await _read_rest(process.stderr, bytearray())
    finally:
        if process.returncode is None:
            process.kill()
            with trio.move_on_after(GUARD_S, shield=True):
                await process.wait()
    events = [json.loads(line)["event"] for line in logs.splitlines()]
    assert events[0] == "simulator.listening" and "simulator.auth_ok" in events
    assert "simulator.stopping" in events
    assert SECRET not in logs + errors and errors == ""


async def test_port_in_use_exits_1() -> None:
    """A port that cannot be bound ends the command with exit 1 and a message on stderr."""
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = str(taken.getsockname()[1])
        with trio.fail_after(GUARD_S):
            result = await trio.run_process(
                [sys.executable, "-m", "bfxd.simulator", "--port", port], capture_stdout=True, capture_stderr=True,
                check=False)
    assert result.returncode == 1
    assert b"cannot listen" in result.stderr and result.stdout == b""


def test_usage_errors_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    """A bad flag value is a usage error (argparse: exit 2) and says what was wrong."""
    for argv in (["--port", "-1"], ["--rate-limit", "ten"], ["--hb-interval", "0"], ["--bogus"], ["--credits", "-1"],
                 ["--skip-sequence", "x"]):
        with pytest.raises(SystemExit) as exited:
            simulate_main(argv)
        assert exited.value.code == 2
    assert "--rate-limit" in capsys.readouterr().err


def test_help_lists_the_fault_flags(capsys: pytest.CaptureFixture[str]) -> None:
    """--help documents the flags users need, fault flags included."""
    with pytest.raises(SystemExit) as exited:
        simulate_main(["--help"])
    assert exited.value.code == 0
    text = capsys.readouterr().out
    for flag in ("--host", "--port", "--api-key", "--api-secret", "--offers", "--seed", "--hb-interval",
                 "--scenario-interval", "--rate-limit", "--answer-delay", "--reject-auth", "--drop-every",
                 "--credits", "--loans", "--skip-sequence"):
        assert flag in text


async def test_funding_and_sequence_flags() -> None:
    """--credits/--loans seed the snapshots; --skip-sequence loses the first numbered account update, which a
    client with sequence numbers on sees as a gap (fon answers are not updates: they still arrive)."""
    process = await trio.lowlevel.open_process(
        _command("--offers", "1", "--credits", "3", "--loans", "2", "--skip-sequence", "1"),
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    try:
        assert process.stdout is not None
        url = await _read_line(process.stdout, bytearray())
        check = SequenceCheck()
        offer = [0, "fon", None, {"type": "LIMIT", "symbol": "fUSD", "amount": "200", "rate": "0.0003", "period": 2}]
        async with connect(url) as client:
            await client.send(conf_frame(65536))
            await client.receive()
            await client.send(auth_text(filter=("funding", "wallet", "notify")))
            frames = await client.receive_until(lambda f: isinstance(f, list) and f[1] == "fls")
            assert [len(f[2]) for f in frames if isinstance(f, list) and f[1] in ("fcs", "fls")] == [3, 2]
            for frame in frames:
                assert not check.feed(sequence_numbers(frame)).is_gap
            await client.send(offer)
            assert (await client.receive())[1] == "n"  # its fon update is the one lost
            await client.send(offer)
            answer, update = await client.receive(), await client.receive()
        # The answer repeats the auth number, which the lost update advanced: the gap shows there already.
        verdict = check.feed(sequence_numbers(answer))
        assert answer[1] == "n" and verdict.is_gap and verdict.stream == "auth"
        assert verdict.got == verdict.expected + 1  # type: ignore[operator]
        assert update[1] == "fon"
    finally:
        process.send_signal(signal.SIGTERM)
        with trio.fail_after(GUARD_S):
            await process.wait()
