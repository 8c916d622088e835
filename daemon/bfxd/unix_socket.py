"""The daemon's Unix socket: a safe bind, and the peer's credentials.

Trio has no ``open_unix_listeners`` yet (trio issue #279), so the listener is built here, in one place.
"""

from __future__ import annotations

import errno
import os
import socket
import stat
import struct
from pathlib import Path

import attrs
import trio

from bfxd.errors import ConfigError


@attrs.frozen
class PeerCred:
    pid: int
    uid: int
    gid: int


def peer_credentials(sock: trio.socket.SocketType) -> PeerCred:
    """The connecting process's pid, uid and gid, as the kernel recorded them at connect (SO_PEERCRED)."""
    raw = sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
    return PeerCred(*struct.unpack("3i", raw))


def _socket_is_live(path: Path) -> bool:
    probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        probe.settimeout(1.0)
        probe.connect(str(path))
    except OSError as exc:
        if exc.errno in (errno.ECONNREFUSED, errno.ENOENT):
            return False
        raise ConfigError(f"socket {path} exists and cannot be probed: {exc.strerror}") from None
    finally:
        probe.close()
    return True


def prepare_socket_path(path: Path) -> None:
    """Check the parent directory and clear a stale socket file; refuse if another daemon listens there.

    Synchronous on purpose: it runs once, before the daemon serves anything.
    """
    parent = path.parent
    if not parent.is_dir():
        raise ConfigError(f"[socket] path: directory {parent} does not exist (create it, or use "
                          f"RuntimeDirectory= under systemd)")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise ConfigError(f"[socket] path: directory {parent} is not writable by this user")
    try:
        st = path.lstat()
    except FileNotFoundError:
        return
    if not stat.S_ISSOCK(st.st_mode):
        raise ConfigError(f"[socket] path: {path} exists and is not a socket; refusing to replace it")
    if _socket_is_live(path):
        raise ConfigError(f"[socket] path: another daemon is already listening on {path}")
    path.unlink()  # stale: left by a daemon that did not stop cleanly


def open_unix_listener(path: Path, *, mode: int, backlog: int = 512) -> trio.SocketListener:
    """Bind and listen at *path* with permissions *mode*, never exposing a wider mode in between."""
    prepare_socket_path(path)
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    old_umask = os.umask(0o177)  # the file is created 0600 and only then widened to *mode*
    try:
        sock.bind(str(path))  # synchronous: a local path, nothing to wait for
        os.chmod(path, mode)
        sock.listen(backlog)
    except OSError as exc:
        sock.close()
        raise ConfigError(f"[socket] path: cannot listen on {path}: {exc.strerror}") from None
    except BaseException:
        sock.close()
        raise
    finally:
        os.umask(old_umask)
    return trio.SocketListener(trio.socket.from_stdlib_socket(sock))
