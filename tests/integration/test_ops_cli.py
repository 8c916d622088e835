"""The bfxd command line as a newcomer meets it (issue 15 item 10): --version, help with no arguments, the demo's
help and banner, SIGHUP on the demo, NO_COLOR."""

from __future__ import annotations

import os
import re
import shlex
import signal
import subprocess
import sys
from pathlib import Path
from subprocess import PIPE

import trio
from tests.integration.helpers import GUARD_S

import bfxd

BIN = Path(sys.executable).parent


def bfxd_cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(BIN / "bfxd"), *args], capture_output=True, text=True, timeout=GUARD_S, check=False,
                          env=env)


def test_version() -> None:
    result = bfxd_cli("--version")
    assert (result.returncode, result.stdout.strip()) == (0, f"bfxd {bfxd.__version__}")


def test_no_arguments_prints_help() -> None:
    result = bfxd_cli()
    assert result.returncode == 2
    assert result.stdout.startswith("usage: bfxd")
    for command in ("run", "check-config", "simulate", "demo", "sample"):
        assert re.search(rf"^\s+{command}\b", result.stdout, re.M), command


def test_demo_help_has_no_raw_markup() -> None:
    result = bfxd_cli("demo", "--help")
    assert result.returncode == 0
    assert "``" not in result.stdout and "usage: bfxd demo" in result.stdout


async def test_demo_banner_names_a_real_bfxctl_and_sighup_cleans_up() -> None:
    process = await trio.lowlevel.open_process([str(BIN / "bfxd"), "demo"], stdout=PIPE, stderr=PIPE)
    output = b""
    assert process.stdout is not None
    try:
        with trio.fail_after(GUARD_S):
            while b"Ctrl-C stops the demo." not in output:
                chunk = await process.stdout.receive_some(4096)
                assert chunk, output
                output += chunk
        text = output.decode()
        command = re.search(r"^  (.+) status$", text, re.M)
        assert command, text
        executable = shlex.split(command.group(1))[0]
        assert os.access(executable, os.X_OK), executable
        socket_path = Path(re.search(r"socket: (\S+)", text).group(1))  # type: ignore[union-attr]
        with trio.fail_after(GUARD_S):
            status = await trio.run_process([*shlex.split(command.group(1)), "-s", str(socket_path), "status"],
                                            capture_stdout=True, capture_stderr=True, check=False)
        assert status.returncode == 0, status.stderr
        assert socket_path.parent.exists()
        process.send_signal(signal.SIGHUP)  # the terminal went away
        with trio.fail_after(GUARD_S):
            assert await process.wait() == 0
        assert not socket_path.parent.exists()  # the temporary directory is gone
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()


def test_no_color_is_respected_by_the_console_log(tmp_path: Path) -> None:
    """With a terminal for stdout the console log is coloured, unless NO_COLOR is set."""
    import pty

    code = ("import structlog, sys; from bfxd.logconfig import configure_logging; "
            "configure_logging(fmt='console', level='info', stream=sys.stdout); "
            "structlog.get_logger().warning('hello'); sys.stdout.flush()")

    def run(env: dict[str, str]) -> bytes:
        primary, secondary = pty.openpty()
        try:
            subprocess.run([sys.executable, "-c", code], stdout=secondary, stderr=subprocess.DEVNULL, env=env,
                           timeout=GUARD_S, check=True)
            return os.read(primary, 65536)
        finally:
            os.close(primary)
            os.close(secondary)

    base = {k: v for k, v in os.environ.items() if k != "NO_COLOR"}
    assert b"\x1b[" in run(base)
    plain = run({**base, "NO_COLOR": "1"})
    assert b"hello" in plain and b"\x1b[" not in plain


def test_check_config_prints_warnings_and_still_passes(tmp_path: Path) -> None:
    (tmp_path / "bfxd.toml").write_text('[exchange]\nheartbeat_timeout = 2\n[socket]\nmode = "0777"\n')
    env = {**{k: v for k, v in os.environ.items() if not k.startswith("BFXD_")},
           "BFXD_API_KEY": "k", "BFXD_API_SECRET": "s"}
    result = bfxd_cli("check-config", "-c", str(tmp_path / "bfxd.toml"), env=env)
    assert result.returncode == 0, result.stderr
    warnings = [line for line in result.stderr.splitlines() if line.startswith("bfxd: warning: ")]
    assert len(warnings) == 2
    assert "heartbeat_timeout = 2" in warnings[0] and 'mode = "0777"' in warnings[1]


def test_check_config_refuses_out_of_bounds_with_exit_78(tmp_path: Path) -> None:
    (tmp_path / "bfxd.toml").write_text("[requests]\ntimeout = 1e9\n")
    result = bfxd_cli("check-config", "-c", str(tmp_path / "bfxd.toml"))
    assert result.returncode == 78
    assert "[requests] timeout: expected a number of seconds from 0.01 to 3600, got 1000000000.0" in result.stderr
