"""The daemon's Unix socket: a safe bind, and the peer's credentials.

Trio has no ``open_unix_listeners`` yet (trio issue #279), so the listener is built here, in one place; or it
is inherited from systemd's socket activation (``bfxd.socket``), in which case the file is the manager's.
"""

from __future__ import annotations

import errno
import os
import socket
import stat
import struct
from collections.abc import MutableMapping
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
        raise ConfigError(f"socket {path} exists and cannot be probed: {exc.strerror or exc}") from None
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
        # strerror is None for errors Python raises itself ("AF_UNIX path too long"): say what it said.
        raise ConfigError(f"[socket] path: cannot listen on {path}: {exc.strerror or exc}") from None
    except BaseException:
        sock.close()
        raise
    finally:
        os.umask(old_umask)
    return trio.SocketListener(trio.socket.from_stdlib_socket(sock))


SD_LISTEN_FDS_START = 3
# The names FileDescriptorName= may give the client socket in a .socket unit; any other name is not ours.
_CLIENT_FD_NAMES = ("control", "bfxd", "")


def inherited_listener(env: MutableMapping[str, str] = os.environ) -> trio.SocketListener | None:
    """The listening socket systemd (or ``systemd-socket-activate``) handed over, or None (sd_listen_fds(3)).

    The hand-over counts only if ``LISTEN_PID`` is this process; ``LISTEN_PID``, ``LISTEN_FDS`` and
    ``LISTEN_FDNAMES`` are removed from *env* either way, so children never take them for their own. With
    several fds, the one named ``control`` or ``bfxd`` (``FileDescriptorName=``) is used, else the first.
    Raises ConfigError if it is not a listening AF_UNIX stream socket. The socket file belongs to the service
    manager: bfxd never unlinks or chmods it.
    """
    pid, count, names = env.pop("LISTEN_PID", None), env.pop("LISTEN_FDS", None), env.pop("LISTEN_FDNAMES", None)
    try:
        if pid is None or int(pid) != os.getpid() or count is None or int(count) < 1:
            return None
        total = int(count)
    except ValueError:
        raise ConfigError(f"socket activation: LISTEN_PID={pid!r} / LISTEN_FDS={count!r} are not numbers") from None
    labels = names.split(":") if names else [""] * total
    index = next((i for i, name in enumerate(labels[:total]) if name in _CLIENT_FD_NAMES), 0)
    fd = SD_LISTEN_FDS_START + index
    try:
        os.set_inheritable(fd, False)  # close-on-exec, as sd_listen_fds does
        sock = socket.socket(fileno=fd)
    except OSError as exc:
        raise ConfigError(f"socket activation: fd {fd} is not usable: {exc.strerror}") from None
    if (sock.family, sock.type) != (socket.AF_UNIX, socket.SOCK_STREAM) or not sock.getsockopt(
            socket.SOL_SOCKET, socket.SO_ACCEPTCONN):
        sock.detach()  # not ours to close
        raise ConfigError(f"socket activation: fd {fd} is not a listening AF_UNIX stream socket "
                          "(ListenStream= must be a path)")
    return trio.SocketListener(trio.socket.from_stdlib_socket(sock))
