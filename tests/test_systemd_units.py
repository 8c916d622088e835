"""systemd/*.service: verify cleanly, score exposure <= 2.0, and keep the two binding decisions (systemd.md)."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

UNITS_DIR = Path(__file__).resolve().parents[1] / "systemd"
UNIT_FILES = ["bfxd.service", "bfxd@.service"]
SOCKET_FILES = ["bfxd.socket", "bfxd@.socket"]
# What to pass to systemd-analyze for each file: a template is analysed as an instance.
ANALYSED_AS = {"bfxd.service": "bfxd.service", "bfxd@.service": "bfxd@ci.service",
               "bfxd.socket": "bfxd.socket", "bfxd@.socket": "bfxd@ci.socket"}
INSTALLED_BINARY = "/usr/local/bin/bfxd"
MAX_EXPOSURE = 1.5  # issue 15: "exposure still <= 1.5" (measured 1.2)

needs_analyze = pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="systemd-analyze not installed")


def directives(name: str) -> list[tuple[str, str]]:
    """(key, value) of every non-comment line of a unit file."""
    pairs = []
    for line in (UNITS_DIR / name).read_text().splitlines():
        if "=" in line and not line.lstrip().startswith(("#", ";")):
            key, _, value = line.partition("=")
            pairs.append((key.strip(), value.strip()))
    return pairs


@pytest.fixture(scope="module")
def unit_copies() -> Iterator[Path]:
    """The units copied to a temp dir, ExecStart pointed at an executable that exists here.

    `systemd-analyze verify` fails when ExecStart's binary is missing, and the installed path
    /usr/local/bin/bfxd does not exist in a development checkout (systemd.md §5.4, §9).
    """
    real = Path(sys.executable).with_name("bfxd")
    binary = str(real if real.exists() else Path(sys.executable))
    directory = Path(tempfile.mkdtemp(prefix="bfxd-units-"))
    try:
        for name in UNIT_FILES:
            text = (UNITS_DIR / name).read_text()
            assert f"ExecStart={INSTALLED_BINARY} " in text
            (directory / name).write_text(text.replace(f"ExecStart={INSTALLED_BINARY} ", f"ExecStart={binary} "))
        for name in SOCKET_FILES:
            shutil.copy(UNITS_DIR / name, directory / name)
        yield directory
    finally:
        shutil.rmtree(directory)


def analyze(directory: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["systemd-analyze", *args], cwd=directory, capture_output=True, text=True, timeout=60, check=False
    )


@needs_analyze
@pytest.mark.parametrize("name", UNIT_FILES)
def test_verify_is_clean(unit_copies: Path, name: str) -> None:
    """`systemd-analyze verify` accepts the unit with no output at all (it exits 0 even on typos)."""
    result = analyze(unit_copies, "verify", "--man=no", f"./{ANALYSED_AS[name]}")
    assert (result.returncode, result.stderr, result.stdout) == (0, "", "")


@needs_analyze
@pytest.mark.parametrize("name", SOCKET_FILES)
def test_socket_units_verify_clean(unit_copies: Path, name: str) -> None:
    result = analyze(unit_copies, "verify", "--man=no", f"./{ANALYSED_AS[name]}")
    assert (result.returncode, result.stderr, result.stdout) == (0, "", "")


@needs_analyze
@pytest.mark.parametrize("name", UNIT_FILES)
def test_service_with_the_socket_activation_drop_in_verifies_clean(unit_copies: Path, name: str) -> None:
    """The drop-in's lines, appended to the service, still verify and keep the exposure low."""
    drop_in = (UNITS_DIR / f"{name}.d" / "socket-activation.conf").read_text()
    combined = unit_copies / "combined" / name
    combined.parent.mkdir(exist_ok=True)
    body = "\n".join(line for line in drop_in.splitlines() if line and not line.startswith(("#", "[")))
    combined.write_text((unit_copies / name).read_text().replace("[Install]", body + "\n\n[Install]"))
    assert "RuntimeDirectoryPreserve=yes" in combined.read_text()
    result = analyze(combined.parent, "verify", "--man=no", f"./{ANALYSED_AS[name]}")
    assert (result.returncode, result.stderr, result.stdout) == (0, "", "")


def test_socket_units_match_the_services_socket_paths() -> None:
    """Clients need no change under socket activation: the .socket listens where the service would bind."""
    for socket_unit, service in (("bfxd.socket", "bfxd.service"), ("bfxd@.socket", "bfxd@.service")):
        listen = dict(directives(socket_unit))["ListenStream"]
        environment = dict(directives(service))["Environment"].split()
        assert f"BFXD_SOCKET_PATH={listen.replace('/run/', '%t/')}" in environment
        assert ("SocketMode", "0660") in directives(socket_unit)
        assert ("FileDescriptorName", "control") in directives(socket_unit)


@needs_analyze
@pytest.mark.parametrize("name", UNIT_FILES)
def test_security_exposure_is_low(unit_copies: Path, name: str) -> None:
    """`systemd-analyze security --offline=yes` scores the unit at most 1.5 (measured: 1.2)."""
    result = analyze(unit_copies, "security", "--offline=yes", f"./{ANALYSED_AS[name]}")
    assert result.returncode == 0, result.stderr
    match = re.search(r"Overall exposure level for \S+: (\d+\.\d+)", result.stdout)
    assert match, result.stdout
    assert float(match.group(1)) <= MAX_EXPOSURE, result.stdout


@pytest.mark.parametrize("name", UNIT_FILES)
def test_binding_decisions(name: str) -> None:
    """Type=notify with watchdog, no restart on exit 78, no core dumps, credentials via LoadCredential,
    and never PrivateUsers= (it breaks SO_PEERCRED)."""
    pairs = directives(name)
    keys = {key for key, _ in pairs}
    assert "PrivateUsers" not in keys
    for required in [
        ("Type", "notify"),
        ("WatchdogSec", "30s"),
        ("Restart", "on-failure"),
        ("RestartSec", "5s"),
        ("RestartPreventExitStatus", "78"),
        ("TimeoutStopSec", "20s"),
        ("LimitCORE", "0"),
        ("ExecReload", "/bin/kill -HUP $MAINPID"),
    ]:
        assert required in pairs, required
    credentials = [value.split(":", 1)[0] for key, value in pairs if key == "LoadCredential"]
    assert credentials == ["api-key", "api-secret"]
    exec_start = dict(pairs)["ExecStart"]
    assert exec_start.startswith(f"{INSTALLED_BINARY} run -c /etc/bfxd/")


def test_template_isolates_instances() -> None:
    """Each instance has its own config, credentials, runtime directory and socket path."""
    pairs = dict(directives("bfxd@.service"))
    assert pairs["ExecStart"].endswith("-c /etc/bfxd/%i.toml")
    assert pairs["RuntimeDirectory"] == "bfxd-%i"
    assert "BFXD_SOCKET_PATH=%t/bfxd-%i/bfxd.sock" in pairs["Environment"].split()
    credentials = [value for key, value in directives("bfxd@.service") if key == "LoadCredential"]
    assert credentials == ["api-key:/etc/bfxd/%i/api-key", "api-secret:/etc/bfxd/%i/api-secret"]
