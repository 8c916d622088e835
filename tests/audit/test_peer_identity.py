"""peer_identity: program, executable and systemd unit of a client, from /proc."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from bfxd.peer_identity import peer_identity, unit_from_cgroup


@pytest.mark.parametrize(("cgroup", "unit"), [
    ("0::/system.slice/trading-bot.service\n", "trading-bot.service"),
    ("0::/user.slice/user-1000.slice/session-3.scope\n", "session-3.scope"),
    ("0::/user.slice/user-1000.slice/user@1000.service/app.slice/app-bot-1234.scope\n", "app-bot-1234.scope"),
    ("0::/user.slice/user-1000.slice/user@1000.service/init.scope\n", "init.scope"),
    ("12:pids:/\n1:name=systemd:/system.slice/cron.service\n0::/\n", "cron.service"),  # hybrid: v1's tree
    ("0::/\n", None),  # a container without systemd
    ("", None),
])
def test_the_unit_is_the_innermost_service_or_scope(cgroup: str, unit: str | None) -> None:
    assert unit_from_cgroup(cgroup) == unit


def test_this_process_as_a_peer() -> None:
    identity = peer_identity(os.getpid())
    assert identity["peer_program"] == Path("/proc/self/comm").read_text().strip()
    assert identity["peer_exe"] == os.readlink("/proc/self/exe")


def test_a_fake_proc_entry(tmp_path: Path) -> None:
    entry = tmp_path / "4242"
    entry.mkdir()
    (entry / "comm").write_text("bfxctl\n")
    (entry / "cgroup").write_text("0::/system.slice/bot.service\n")
    os.symlink("/usr/bin/python3.11", entry / "exe")
    assert peer_identity(4242, proc=str(tmp_path)) == {
        "peer_program": "bfxctl", "peer_exe": "/usr/bin/python3.11", "peer_unit": "bot.service"}


def test_a_gone_or_hidden_process_gives_nulls(tmp_path: Path) -> None:
    nothing = {"peer_program": None, "peer_exe": None, "peer_unit": None}
    assert peer_identity(999_999, proc=str(tmp_path)) == nothing
    assert peer_identity(-1) == nothing  # SO_PEERCRED failed
