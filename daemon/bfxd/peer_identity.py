"""Who is on the other end of a client connection, beyond SO_PEERCRED's pid/uid/gid: read from ``/proc``.

- ``peer_program``: ``/proc/PID/comm``, the kernel's name for the process (the script's name for a ``#!``
  script such as ``bfxctl``; ``python3`` for ``python3 bot.py``);
- ``peer_exe``: where ``/proc/PID/exe`` points (the binary; readable only for processes of the daemon's own uid
  unless the daemon is privileged, so often null in production);
- ``peer_unit``: the systemd unit (``bot.service``, ``session-3.scope``, ``user@1000.service``) from the
  cgroup path in ``/proc/PID/cgroup``.

Any of them is None when unreadable: the process has already gone, or ``/proc`` hides it (``ProtectProc=invisible``
in the unit hides every process of another uid). The command line is never read: it may hold secrets.
These are read once per connection, at connect: a few small file reads.
"""

from __future__ import annotations

import os

__all__ = ["peer_identity"]

_MAX = 256  # characters of any value kept: the log line must stay bounded whatever the peer is called
_UNIT_SUFFIXES = (".service", ".scope")


def _read(path: str) -> str | None:
    try:
        with open(path, encoding="utf-8", errors="replace") as file:
            return file.read(64 * 1024)
    except OSError:
        return None


def unit_from_cgroup(text: str) -> str | None:
    """The innermost .service or .scope in the cgroup path (cgroup v2's ``0::`` line, else v1's name=systemd)."""
    paths = {}
    for line in text.splitlines():
        hierarchy, _, rest = line.partition(":")
        controllers, _, path = rest.partition(":")
        if hierarchy == "0" and controllers == "":
            paths["v2"] = path
        elif controllers == "name=systemd":
            paths["v1"] = path
    for path in (paths.get("v2", ""), paths.get("v1", "")):  # a hybrid host keeps units in v1's tree
        for part in reversed(path.split("/")):
            if part.endswith(_UNIT_SUFFIXES):
                return part[:_MAX]
    return None


def peer_identity(pid: int, proc: str = "/proc") -> dict[str, str | None]:
    """``peer_program``, ``peer_exe`` and ``peer_unit`` of *pid* (all None for an unknown pid)."""
    if pid <= 0:
        return {"peer_program": None, "peer_exe": None, "peer_unit": None}
    base = f"{proc}/{pid}"
    comm = _read(f"{base}/comm")
    try:
        exe: str | None = os.readlink(f"{base}/exe")[:_MAX]
    except OSError:
        exe = None
    cgroup = _read(f"{base}/cgroup")
    return {
        "peer_program": comm.strip()[:_MAX] if comm else None,
        "peer_exe": exe,
        "peer_unit": unit_from_cgroup(cgroup) if cgroup else None,
    }
