"""Access by role: may this peer use this op? A pure decision, and the peer's groups to decide it with.

Two roles, configured in ``[access]`` (config.py parses and resolves them into uids and gids):

- ``read``: ops that only look (ping, hello, status, offers, wallets, credits, loans, watch, metrics);
- ``trade``: ops that change the account (cancel, cancel_all, submit, replace). Whoever may trade may also
  read: a trading bot that may not list its offers would be useless, and read-only is the role to grant
  narrowly.

A role left unset (None) is open: the daemon then behaves as before roles existed, with ``[socket]
allowed_uids`` (checked once per connection, before any op) as the only gate. A role set to a list, even an
empty one, admits only the uids it lists and members of the groups it lists, the peer's supplementary groups
included. An op in neither table (an unknown op) is not refused here: it gets its ``unknown_op`` answer.

``decide`` is called for every request on the cancel path, so it allocates nothing and takes a frozenset
lookup or two.
"""

from __future__ import annotations

import os
import socket
import struct
from collections.abc import Collection

from bfxd.config import AccessConfig

__all__ = ["READ_OPS", "TRADE_OPS", "decide", "peer_groups", "proc_groups"]

READ_OPS = frozenset({"ping", "hello", "status", "offers", "wallets", "credits", "loans", "watch", "metrics"})
TRADE_OPS = frozenset({"cancel", "cancel_all", "submit", "replace"})

# Linux's SO_PEERGROUPS (4.13+); Python 3.11 has no constant for it.
_SO_PEERGROUPS = getattr(socket, "SO_PEERGROUPS", 59)
# CPython's getsockopt accepts at most 1024 bytes: 256 groups. A peer with more is read from /proc.
_PEERGROUPS_BYTES = 1024


def decide(op: str, uid: int, gids: Collection[int], policy: AccessConfig) -> str | None:
    """None if the peer may use *op*; otherwise the rule that refuses it, for the ``forbidden`` answer.

    *gids* are the peer's primary and supplementary groups (:func:`peer_groups`).
    """
    if op in TRADE_OPS:
        rule = policy.trade
        if rule is None or rule.admits(uid, gids):
            return None
        return "[access] trade"
    if op in READ_OPS:
        read = policy.read
        if read is None or read.admits(uid, gids):
            return None
        trade = policy.trade
        if trade is not None and trade.admits(uid, gids):  # trading implies reading
            return None
        return "[access] read"
    return None


def forbidden_message(op: str, uid: int, rule: str) -> str:
    """The text of the ``forbidden`` answer: who, what, and which rule to change."""
    return f"uid {uid} may not use {op!r}: not admitted by {rule}"


def peer_groups(sock: socket.socket, pid: int, gid: int) -> frozenset[int]:
    """The peer's primary group and supplementary groups, as the kernel recorded them at connect.

    SO_PEERGROUPS needs no /proc access (the hardened units hide other users' /proc entries with
    ``ProtectProc=invisible``) and has no pid-reuse race; /proc/PID/status is the fallback for a peer in more
    than 256 groups or a kernel without the option. Nothing readable: the primary group alone (a role given
    to a supplementary group then refuses; it never admits by mistake).
    """
    try:
        raw = sock.getsockopt(socket.SOL_SOCKET, _SO_PEERGROUPS, _PEERGROUPS_BYTES)
    except OSError:  # ERANGE: more groups than fit; ENOPROTOOPT: an old kernel
        groups = proc_groups(pid)
    else:
        groups = struct.unpack(f"{len(raw) // 4}I", raw[: len(raw) // 4 * 4])
    return frozenset((gid, *groups)) if gid >= 0 else frozenset(groups)


def proc_groups(pid: int, *, proc: str = "/proc") -> tuple[int, ...]:
    """Supplementary groups from the ``Groups:`` line of /proc/PID/status; () if it cannot be read."""
    try:
        with open(os.path.join(proc, str(pid), "status"), encoding="ascii", errors="replace") as status:
            for line in status:
                if line.startswith("Groups:"):
                    return tuple(int(field) for field in line[len("Groups:"):].split() if field.isdigit())
    except OSError:
        pass
    return ()
