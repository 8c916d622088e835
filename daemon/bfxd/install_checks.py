"""Checks and files for installing bfxd: can the service user read its config, and the shipped samples.

``bfxd check-config --user bfxd``, run as root, answers what a root-run check cannot: whether the unit's
``User=`` can read the config file the daemon reads itself (the credentials are read by systemd, as root).
The answer comes from a forked child that takes on that user's uid and groups and opens the file, so modes,
ownership, ACLs and every directory on the way count exactly as they will for the daemon.

``bfxd sample NAME`` prints a file shipped in the package (the example config and the systemd units), so a
pip install has them without a source tree.
"""

from __future__ import annotations

import os
import pwd
from importlib import resources
from pathlib import Path

from bfxd.errors import ConfigError

__all__ = ["SAMPLES", "check_readable_by", "sample_text"]

SAMPLES = ("bfxd.toml", "bfxd.service", "bfxd@.service", "bfxd.socket", "bfxd@.socket", "socket-activation.conf")


def check_readable_by(path: Path, user: str) -> None:
    """Raise ConfigError unless *user* (with its groups) can open *path* for reading. Needs root."""
    try:
        entry = pwd.getpwnam(user)
    except KeyError:
        raise ConfigError(f"--user {user}: no such user") from None
    if os.geteuid() != 0:
        raise ConfigError(f"--user {user}: checking as another user needs root (run it with sudo)")
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover (the child: measured by the parent's verdict)
        code = 1
        try:
            os.close(read_end)
            os.setgroups(os.getgrouplist(user, entry.pw_gid))
            os.setgid(entry.pw_gid)
            os.setuid(entry.pw_uid)
            with open(path, "rb"):
                code = 0
        except OSError as exc:
            os.write(write_end, (exc.strerror or str(exc)).encode()[:200])
        finally:
            os._exit(code)
    os.close(write_end)
    with os.fdopen(read_end, "rb") as reader:
        reason = reader.read().decode(errors="replace")
    _, status = os.waitpid(pid, 0)
    if os.waitstatus_to_exitcode(status) != 0:
        raise ConfigError(f"{path}: user {user} (the unit's User=) cannot read it: {reason or 'unknown error'}; "
                          f"the daemon reads its config itself (e.g. install -d -m 0750 -g {user} for the "
                          f"directory, install -m 0640 -g {user} for the file)")


def sample_text(name: str) -> str:
    """The text of a shipped sample; ConfigError for an unknown name."""
    if name not in SAMPLES:
        raise ConfigError(f"no sample named {name!r} (samples: {', '.join(SAMPLES)})")
    return resources.files("bfxd").joinpath("samples", name).read_text(encoding="utf-8")
