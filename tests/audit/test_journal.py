"""journald's native protocol, checked on the wire: a datagram socket of ours stands in for journald's."""

from __future__ import annotations

import array
import fcntl
import json
import logging
import os
import socket
import struct
from collections.abc import Iterator
from pathlib import Path

import pytest
import structlog

from bfxd.audit.verify import verify_lines
from bfxd.journal import stdout_is_journal
from bfxd.logconfig import AuditSettings, close_audit_trail, configure_logging, log_health


def parse(datagram: bytes) -> list[tuple[str, bytes]]:
    """The native protocol, parsed independently of bfxd.journal: KEY=value\\n, or KEY\\n<u64 le><value>\\n."""
    fields, at = [], 0
    while at < len(datagram):
        end = datagram.index(b"\n", at)
        head = datagram[at:end]
        if b"=" in head:
            name, value = head.split(b"=", 1)
            at = end + 1
        else:
            (size,) = struct.unpack("<Q", datagram[end + 1:end + 9])
            name, value = head, datagram[end + 9:end + 9 + size]
            assert datagram[end + 9 + size:end + 10 + size] == b"\n"
            at = end + 10 + size
        assert name.isupper() or b"_" in name, name
        assert not name.startswith(b"_") and len(name) <= 64
        fields.append((name.decode(), value))
    return fields


@pytest.fixture
def journald(socket_dir: Path) -> Iterator[tuple[socket.socket, Path]]:
    path = socket_dir / "journal.socket"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(str(path))
    sock.settimeout(5)  # a guard: every datagram below is sent before it is read
    yield sock, path
    sock.close()


def receive(sock: socket.socket) -> list[tuple[str, bytes]]:
    data, ancillary, _flags, _addr = sock.recvmsg(1 << 20, socket.CMSG_SPACE(4))
    if not data:  # too big for a datagram: a sealed memfd
        ((_level, _type, raw),) = ancillary
        (fd,) = array.array("i", raw[:4])
        try:
            seals = fcntl.fcntl(fd, fcntl.F_GET_SEALS)
            assert seals & fcntl.F_SEAL_WRITE and seals & fcntl.F_SEAL_SHRINK and seals & fcntl.F_SEAL_GROW
            data = os.pread(fd, os.fstat(fd).st_size, 0)
        finally:
            os.close(fd)
    return parse(data)


def one(fields: list[tuple[str, bytes]], name: str) -> bytes:
    (value,) = [v for n, v in fields if n == name]
    return value


def test_fields_priority_and_the_message_as_the_sealed_line(journald) -> None:  # type: ignore[no-untyped-def]
    sock, path = journald
    configure_logging(fmt="json", level="info", stream=open(os.devnull, "w"), cache=False,  # noqa: SIM115
                      audit=AuditSettings(), journal=str(path))
    log = structlog.get_logger()
    with structlog.contextvars.bound_contextvars(request_id="7.3", peer_uid=1000):
        log.info("command.received", op="cancel", offer_id=41238934)
    log.info("frame.sent", kind="foc", offer_id=41238934, request_ids=["7.3", "9.1"], generation=2)
    log.warning("exchange.error", message="two\nlines")
    log.error("daemon.config_error", error="x")
    logging.getLogger("trio").warning("from the stdlib")
    close_audit_trail()
    entries = [receive(sock) for _ in range(7)]  # audit.started, five lines, audit.closed

    messages = [one(e, "MESSAGE") for e in entries]
    assert verify_lines(iter(m + b"\n" for m in messages)).ok  # MESSAGE is exactly the sealed JSON line
    records = [json.loads(m) for m in messages]
    assert [r["event"] for r in records][1:6] == ["command.received", "frame.sent", "exchange.error",
                                                 "daemon.config_error", "from the stdlib"]
    assert [one(e, "PRIORITY") for e in entries[1:6]] == [b"6", b"6", b"4", b"3", b"4"]
    assert all(one(e, "SYSLOG_IDENTIFIER") == b"bfxd" for e in entries)

    received, sent, error = entries[1], entries[2], entries[3]
    assert one(received, "BFXD_EVENT") == b"command.received"
    assert one(received, "BFXD_OFFER_ID") == b"41238934" and one(received, "BFXD_REQUEST_ID") == b"7.3"
    assert one(received, "BFXD_PEER_UID") == b"1000" and one(received, "BFXD_OP") == b"cancel"
    assert one(received, "BFXD_RUN") == records[1]["run"].encode()
    assert one(received, "BFXD_SEQ") == str(records[1]["seq"]).encode()
    assert not {n for n, _v in received} & {"BFXD_TIMESTAMP", "BFXD_LEVEL", "BFXD_CHAIN"}
    # a list: one field per element, and request_ids as BFXD_REQUEST_ID too (journalctl BFXD_REQUEST_ID=7.3)
    assert [v for n, v in sent if n == "BFXD_REQUEST_IDS"] == [b"7.3", b"9.1"]
    assert [v for n, v in sent if n == "BFXD_REQUEST_ID"] == [b"7.3", b"9.1"]
    assert one(error, "BFXD_MESSAGE") == b"two\nlines"  # the binary form carries the newline


def test_a_line_too_big_for_a_datagram_goes_as_a_sealed_memfd(journald) -> None:  # type: ignore[no-untyped-def]
    sock, path = journald
    configure_logging(fmt="json", level="info", stream=open(os.devnull, "w"), cache=False,  # noqa: SIM115
                      journal=str(path))
    big = "x" * (1 << 20)
    structlog.get_logger().info("big", blob=big)
    fields = receive(sock)
    assert json.loads(one(fields, "MESSAGE"))["blob"] == big
    assert len(one(fields, "BFXD_BLOB")) == 4096  # fields are capped; MESSAGE never is


def test_journald_away_then_back(socket_dir: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    path = socket_dir / "journal.socket"
    configure_logging(fmt="json", level="info", stream=open(os.devnull, "w"), cache=False,  # noqa: SIM115
                      audit=AuditSettings(), journal=str(path))
    structlog.get_logger().info("lost", n=1)  # nobody listens: ENOENT
    assert log_health().failing and log_health().error.startswith("ENOENT")  # type: ignore[union-attr]
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(str(path))
    sock.settimeout(5)
    try:
        structlog.get_logger().info("back", n=2)
        first, second = receive(sock), receive(sock)
    finally:
        sock.close()
    lost = json.loads(one(first, "MESSAGE"))
    assert (lost["event"], lost["lost_lines"]) == ("log.lost", 2)  # audit.started and "lost"
    assert one(first, "PRIORITY") == b"4"
    assert json.loads(one(second, "MESSAGE"))["event"] == "back"
    assert not log_health().failing
    assert capsys.readouterr().err.count("bfxd:") == 2


def test_stdout_is_the_journal_only_if_journal_stream_names_it(tmp_path: Path) -> None:
    with open(tmp_path / "out", "w") as out:
        st = os.fstat(out.fileno())
        assert stdout_is_journal({"JOURNAL_STREAM": f"{st.st_dev}:{st.st_ino}"}, fd=out.fileno())
        assert not stdout_is_journal({"JOURNAL_STREAM": f"{st.st_dev}:{st.st_ino + 1}"}, fd=out.fileno())
        assert not stdout_is_journal({"JOURNAL_STREAM": "garbage"}, fd=out.fileno())
        assert not stdout_is_journal({}, fd=out.fileno())
