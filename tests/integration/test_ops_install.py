"""The README's install steps, run as literally as this machine allows (issue 15 item 1).

No systemd here, so the test plays its part: it creates a throwaway system user ``bfxd`` with the README's own
``useradd`` line, runs the README's lines (``/etc/bfxd`` moved under a temporary root, the credentials fed on
stdin), then does what the unit would do (``LoadCredential=``: copies of the credential files owned by the
service user, mode 0400, in a private directory; ``RuntimeDirectory=``: a 0750 directory owned by the user) and
runs ``bfxd check-config`` and ``bfxd run`` as that user with ``runuser``, against the simulator on loopback.
The lines it cannot run (pip, symlinks into /usr/local, systemctl, journalctl, usermod) are skipped by name.
"""

from __future__ import annotations

import errno
import os
import pwd
import re
import shutil
import signal
import socket
import subprocess
import sys
import sysconfig
import tempfile
from collections.abc import Iterator
from pathlib import Path
from subprocess import PIPE

import pytest
import trio
from tests.integration.helpers import API_KEY, API_SECRET, GUARD_S, LineClient
from tests.integration.process import EX_OK, BfxdProcess

from bfxd.simulator import Simulator
from bfxd.unix_socket import peer_credentials

REPO = Path(__file__).resolve().parents[2]
USER = "bfxd"
SKIPPED = ("pip install", "ln -s", "systemctl", "journalctl", "usermod", "/etc/systemd/system")

pytestmark = [
    pytest.mark.skipif(os.geteuid() != 0, reason="needs root: creates a system user and runs as it"),
    pytest.mark.skipif(not (shutil.which("useradd") and shutil.which("runuser") and shutil.which("userdel")),
                       reason="needs useradd, userdel and runuser"),
]


def readme_steps() -> list[str]:
    text = (REPO / "README.md").read_text()
    block = re.search(r"<!-- install-steps:begin -->\n```sh\n(.*?)```\n<!-- install-steps:end -->", text, re.S)
    assert block, "README.md lost its install-steps block"
    return [line for line in block.group(1).splitlines() if line.strip()]


def service_python(user: str) -> tuple[list[str], dict[str, str]]:
    """An interpreter the service user may execute, with this checkout's packages: this venv's own if it can,
    else the system's python of the same version (the venv may sit under /root, mode 0700, as here)."""
    probe = subprocess.run(["runuser", "-u", user, "--", sys.executable, "-c", "import bfxd"], capture_output=True,
                           check=False)
    if probe.returncode == 0:
        return [sys.executable], {}
    version = f"python{sys.version_info.major}.{sys.version_info.minor}"
    system = shutil.which(version, path="/usr/bin:/usr/local/bin")
    if system is None:
        pytest.skip(f"no interpreter the {user} user can run ({sys.executable} is not reachable, no {version})")
    paths = os.pathsep.join([sysconfig.get_paths()["purelib"], str(REPO / "daemon")])
    return [system], {"PYTHONPATH": paths}


@pytest.fixture
def throwaway_user() -> Iterator[str]:
    try:
        pwd.getpwnam(USER)
    except KeyError:
        pass
    else:
        pytest.skip(f"a real {USER!r} user exists on this machine; the test will not touch it")
    try:
        yield USER
    finally:
        subprocess.run(["userdel", USER], capture_output=True, check=False)
        subprocess.run(["groupdel", USER], capture_output=True, check=False)  # if useradd made one and userdel left it


@pytest.fixture
def root() -> Iterator[Path]:
    directory = Path(tempfile.mkdtemp(prefix="bfxd-install-"))
    directory.chmod(0o755)  # like /: the service user must be able to walk into etc/
    (directory / "etc").mkdir(mode=0o755)
    (directory / "run").mkdir(mode=0o755)
    try:
        yield directory
    finally:
        shutil.rmtree(directory)


def connect_as(uid: int, groups: list[int], path: Path) -> int:
    """0 if a process running as *uid* with *groups* can connect to *path*, else the errno."""
    pid = os.fork()
    if pid == 0:  # pragma: no cover (the child: its exit code is the answer)
        code = 255
        try:
            os.setgroups(groups)
            os.setgid(uid)
            os.setuid(uid)
            with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as client:
                client.connect(str(path))
            code = 0
        except OSError as exc:
            code = exc.errno or 255
        finally:
            os._exit(code)
    return os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1])


def run_step(line: str, root: Path) -> None:
    """One README line, with ``sudo`` dropped (we are root), /etc/bfxd under *root*, and ``bfxd`` this checkout's."""
    command = line.split("  #")[0].strip().replace("sudo ", "").replace("/etc/bfxd", f"{root}/etc/bfxd")
    bfxd = f"{sys.executable} -m bfxd"
    command = re.sub(r"(^|\| )bfxd ", lambda m: f"{m.group(1)}{bfxd} ", command)
    stdin = None
    if command.endswith("/api-key"):
        stdin = API_KEY + "\n"
    elif command.endswith("/api-secret"):
        stdin = API_SECRET + "\n"
    result = subprocess.run(["sh", "-c", command], input=stdin, capture_output=True, text=True, timeout=GUARD_S,
                            check=False)
    assert result.returncode == 0, f"README step failed: {line}\n{result.stderr}"


async def test_the_readme_install_gives_a_daemon_that_serves(nursery: trio.Nursery, sim: Simulator,
                                                             throwaway_user: str, root: Path) -> None:
    steps = readme_steps()
    assert steps[0].startswith("sudo useradd --system")
    for line in steps:
        if line.startswith("sudo python3 -m venv") or any(word in line for word in SKIPPED):
            continue
        run_step(line, root)
    etc = root / "etc" / "bfxd"
    user = pwd.getpwnam(throwaway_user)
    assert {p.name for p in etc.iterdir()} == {"api-key", "api-secret", "bfxd.toml"}
    for secret in ("api-key", "api-secret"):  # root's alone: systemd reads them, the daemon never does
        info = (etc / secret).stat()
        assert (info.st_uid, info.st_mode & 0o777) == (0, 0o600)

    # What the unit does: LoadCredential= copies (owned by the user, 0400), RuntimeDirectory= 0750.
    credentials = root / "run" / "credentials" / "bfxd.service"
    credentials.mkdir(parents=True, mode=0o500)
    for secret in ("api-key", "api-secret"):
        shutil.copy(etc / secret, credentials / secret)
        os.chown(credentials / secret, user.pw_uid, user.pw_gid)
        (credentials / secret).chmod(0o400)
    os.chown(credentials, user.pw_uid, user.pw_gid)
    runtime = root / "run" / "bfxd"
    runtime.mkdir(mode=0o750)
    os.chown(runtime, user.pw_uid, user.pw_gid)

    python, extra_env = service_python(throwaway_user)
    env = {"PATH": "/usr/bin:/bin", "CREDENTIALS_DIRECTORY": str(credentials),
           "BFXD_SOCKET_PATH": str(runtime / "bfxd.sock"),  # as the unit's Environment=
           "BFXD_EXCHANGE_URL": sim.url, **extra_env}  # the simulator instead of the exchange
    as_user = ["runuser", "-u", throwaway_user, "--", "env", *[f"{k}={v}" for k, v in env.items()], *python,
               "-m", "bfxd"]
    with trio.fail_after(GUARD_S):
        check = await trio.run_process([*as_user, "check-config", "-c", str(etc / "bfxd.toml")], capture_stdout=True,
                                       capture_stderr=True, check=False)
    assert check.returncode == 0, check.stderr
    assert b'"source": "files"' in check.stdout

    process = await trio.lowlevel.open_process([*as_user, "run", "-c", str(etc / "bfxd.toml")], stdout=PIPE,
                                               stderr=PIPE)
    bfxd = BfxdProcess(process)
    await nursery.start(bfxd.pump)
    daemon = None
    try:
        await bfxd.wait_for("exchange.auth_ok")
        socket_path = runtime / "bfxd.sock"
        info = socket_path.stat()
        assert (info.st_uid, info.st_mode & 0o777) == (user.pw_uid, 0o660)
        async with await LineClient.connect(socket_path) as client:
            status = await client.request({"op": "status"})
            daemon = peer_credentials(client.stream.socket)  # the daemon itself, under runuser
        assert status["ok"] is True
        assert status["status"]["state"] in ("authenticating", "ready")
        assert daemon.uid == user.pw_uid
        # "clients join group bfxd": a member may connect, anyone else is stopped by the 0750/0660 modes.
        assert connect_as(65534, [user.pw_gid], socket_path) == 0
        assert connect_as(65534, [], socket_path) == errno.EACCES
    finally:
        # The daemon, not runuser: runuser would answer SIGTERM by killing its child and exiting -15 itself.
        if daemon is not None:
            os.kill(daemon.pid, signal.SIGTERM)
        else:
            process.kill()
    assert await bfxd.wait() == EX_OK, bfxd.stderr  # runuser passes the daemon's exit status on
    assert not (runtime / "bfxd.sock").exists()


def test_check_config_user_flag_names_the_unreadable_file(throwaway_user: str, root: Path) -> None:
    """The defect the README had: /etc/bfxd 0700 root. check-config --user bfxd now says so before systemd does."""
    subprocess.run(["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", throwaway_user],
                   check=True, capture_output=True)
    etc = root / "etc" / "bfxd"
    etc.mkdir(mode=0o700)
    (etc / "bfxd.toml").write_text("")
    for secret, value in (("api-key", API_KEY), ("api-secret", API_SECRET)):
        (etc / secret).write_text(value)
        (etc / secret).chmod(0o600)
    result = subprocess.run([sys.executable, "-m", "bfxd", "check-config", "-c", str(etc / "bfxd.toml"),
                             "--credentials-dir", str(etc), "--user", throwaway_user], capture_output=True, text=True,
                            timeout=GUARD_S, check=False)
    assert result.returncode == 78
    assert f"user {throwaway_user} (the unit's User=) cannot read it: Permission denied" in result.stderr
    etc.chmod(0o750)
    os.chown(etc, 0, pwd.getpwnam(throwaway_user).pw_gid)
    os.chown(etc / "bfxd.toml", 0, pwd.getpwnam(throwaway_user).pw_gid)
    (etc / "bfxd.toml").chmod(0o640)
    result = subprocess.run([sys.executable, "-m", "bfxd", "check-config", "-c", str(etc / "bfxd.toml"),
                             "--credentials-dir", str(etc), "--user", throwaway_user], capture_output=True, text=True,
                            timeout=GUARD_S, check=False)
    assert result.returncode == 0, result.stderr


def test_check_config_outside_the_service_explains_credentials(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("BFXD_", "CREDENTIALS_DIRECTORY"))}
    (tmp_path / "bfxd.toml").write_text("")
    result = subprocess.run([sys.executable, "-m", "bfxd", "check-config", "-c", str(tmp_path / "bfxd.toml")],
                            capture_output=True, text=True, timeout=GUARD_S, check=False, env=env)
    assert result.returncode == 78
    assert "no API credentials" in result.stderr and "--credentials-dir" in result.stderr
