"""bfxd.access: the role decision table, and the peer's groups as the kernel reports them."""

from __future__ import annotations

import os
import socket
import tempfile
from pathlib import Path

import pytest

from bfxd.access import READ_OPS, TRADE_OPS, decide, forbidden_message, peer_groups, proc_groups
from bfxd.config import AccessConfig, load_config
from bfxd.config_values import Principals
from bfxd.unix_socket import peer_credentials


def rule(uids=(), gids=()) -> Principals:  # type: ignore[no-untyped-def]
    return Principals(uids=frozenset(uids), gids=frozenset(gids), spelled=())


OPEN = AccessConfig()
TRADERS = AccessConfig(read=rule(uids=[2000]), trade=rule(uids=[1000], gids=[500]))


@pytest.mark.parametrize(
    ("op", "uid", "gids", "policy", "expected"),
    [
        # unset roles: everyone (allowed_uids is the connection's gate)
        ("cancel", 3000, {3000}, OPEN, None),
        ("offers", 3000, {3000}, OPEN, None),
        # trade by uid and by supplementary group
        ("cancel", 1000, {1000}, TRADERS, None),
        ("submit", 3000, {3000, 500}, TRADERS, None),
        ("cancel_all", 2000, {2000}, TRADERS, "[access] trade"),
        ("replace", 3000, {3000}, TRADERS, "[access] trade"),
        # read: its own list, and traders read too
        ("offers", 2000, {2000}, TRADERS, None),
        ("watch", 1000, {1000}, TRADERS, None),
        ("status", 3000, {3000, 500}, TRADERS, None),
        ("ping", 3000, {3000}, TRADERS, "[access] read"),
        ("metrics", 3000, {3000}, TRADERS, "[access] read"),
        # an unknown op is not refused here: it gets unknown_op
        ("frobnicate", 3000, {3000}, TRADERS, None),
        # an empty list admits nobody; an unset trade leaves trading open while read is closed
        ("cancel", 0, {0}, AccessConfig(trade=rule()), "[access] trade"),
        ("cancel", 3000, {3000}, AccessConfig(read=rule()), None),
        ("offers", 3000, {3000}, AccessConfig(read=rule()), "[access] read"),
    ],
)
def test_decide(op: str, uid: int, gids: set[int], policy: AccessConfig, expected: str | None) -> None:
    assert decide(op, uid, gids, policy) == expected


def test_every_op_of_the_issue_has_a_role() -> None:
    assert {"ping", "hello", "status", "offers", "wallets", "credits", "loans", "watch"} <= READ_OPS
    assert {"cancel", "cancel_all", "submit", "replace"} == TRADE_OPS
    assert not READ_OPS & TRADE_OPS


def test_forbidden_message_names_the_rule() -> None:
    assert forbidden_message("cancel", 1001, "[access] trade") == (
        "uid 1001 may not use 'cancel': not admitted by [access] trade")


def test_rules_from_a_file_resolve_names(tmp_path: Path) -> None:
    path = tmp_path / "bfxd.toml"
    path.write_text('[access]\ntrade = ["root"]\nread = ["group:root"]\n')
    policy = load_config(path, env={}).access
    assert decide("cancel", 0, {0}, policy) is None
    assert decide("cancel", 1, {0}, policy) == "[access] trade"
    assert decide("offers", 1, {0}, policy) is None  # a member of group root (gid 0) reads


def test_proc_groups_parses_the_status_line(tmp_path: Path) -> None:
    (tmp_path / "42").mkdir()
    (tmp_path / "42" / "status").write_text("Name:\tbot\nUid:\t1000\t1000\t1000\t1000\nGroups:\t4 24 1001 \n")
    assert proc_groups(42, proc=str(tmp_path)) == (4, 24, 1001)
    assert proc_groups(43, proc=str(tmp_path)) == ()


def test_proc_groups_of_this_process() -> None:
    assert set(proc_groups(os.getpid())) == set(os.getgroups())


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to start a client as another user with extra groups")
def test_peer_groups_of_a_client_running_as_another_user() -> None:
    """A client started as nobody with supplementary groups 4242 and 4243: the daemon's side sees them all."""
    directory = tempfile.mkdtemp(prefix="bfxd-")
    os.chmod(directory, 0o755)
    path = os.path.join(directory, "s")
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        server.bind(path)
        os.chmod(path, 0o777)
        server.listen(1)
        server.settimeout(30)
        # A forked child changes identity itself: no interpreter has to be executable by nobody.
        pid = os.fork()
        if pid == 0:  # pragma: no cover (the child)
            try:
                os.setgroups([4242, 4243])
                os.setgid(65534)
                os.setuid(65534)
                client = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                client.connect(path)
                client.recv(1)
            finally:
                os._exit(0)
        try:
            conn, _ = server.accept()
            with conn:
                peer = peer_credentials(conn)
                assert (peer.uid, peer.gid, peer.pid) == (65534, 65534, pid)
                assert peer_groups(conn, peer.pid, peer.gid) == {65534, 4242, 4243}
                policy = AccessConfig(trade=rule(gids=[4243]))
                assert decide("cancel", peer.uid, peer_groups(conn, peer.pid, peer.gid), policy) is None
                conn.send(b"x")
        finally:
            os.waitpid(pid, 0)
    finally:
        server.close()
        os.unlink(path)
        os.rmdir(directory)
