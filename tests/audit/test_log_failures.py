"""An unwritable log never stops the daemon: lines are dropped and counted, said once on stderr and in the
health object, and the first write that works again begins with a ``log.lost`` line the chain carries on from."""

from __future__ import annotations

import errno
import fcntl
import json
import os
from collections.abc import Iterator

import pytest
import structlog

from bfxd.audit.chain import Chain
from bfxd.audit.verify import verify_lines
from bfxd.log_output import FdOutput, WriteFailed
from bfxd.logconfig import AuditSettings, close_audit_trail, configure_logging, flush_log, log_health


@pytest.fixture
def pipe() -> Iterator[tuple[int, int]]:
    """A pipe whose write end does not block: a write bigger than the room left is cut short, then EAGAIN."""
    read_end, write_end = os.pipe()
    for fd in (read_end, write_end):
        fcntl.fcntl(fd, fcntl.F_SETFL, fcntl.fcntl(fd, fcntl.F_GETFL) | os.O_NONBLOCK)
    yield read_end, write_end
    os.close(read_end)
    os.close(write_end)


def drain(fd: int) -> bytes:
    data = b""
    while True:
        try:
            chunk = os.read(fd, 1 << 16)
        except BlockingIOError:
            return data
        if not chunk:
            return data
        data += chunk


def test_a_partial_write_reports_whole_lines_and_a_torn_one(pipe: tuple[int, int]) -> None:
    read_end, write_end = pipe
    lines = ["x" * 1000] * 100  # 100 KB into a 64 KiB pipe
    with pytest.raises(WriteFailed) as failed:
        FdOutput(write_end).write_lines(lines)
    assert failed.value.error.errno == errno.EAGAIN
    written = drain(read_end)
    assert failed.value.written == written.count(b"\n") and 0 < failed.value.written < 100
    assert failed.value.torn == (not written.endswith(b"\n"))


def test_lost_lines_leave_no_gap_and_the_log_says_what_was_lost(pipe, capsys) -> None:  # type: ignore[no-untyped-def]
    read_end, write_end = pipe
    stream = os.fdopen(os.dup(write_end), "w")
    configure_logging(fmt="json", level="info", stream=stream, cache=False, audit=AuditSettings())
    from bfxd import logconfig

    log = structlog.get_logger()
    logconfig._sink.batch(1 << 20)  # as under batched_log_writes
    for n in range(100):
        log.info("command.received", request_id=f"1.{n}", padding="p" * 1000)
    flush_log()  # 100 KB: cut short by the full pipe
    for n in range(5):
        log.info("while.failing", n=n)
        flush_log()
    health = log_health()
    assert health.failing and health.error is not None and health.error.startswith("EAGAIN")
    assert health.failed_writes == 6 and 0 < health.lost_lines < 105
    before = drain(read_end)  # room again
    log.info("after", n=1)
    flush_log()
    assert not log_health().failing and log_health().lost_lines == health.lost_lines
    log.info("after", n=2)
    close_audit_trail()
    logconfig._sink.write_through()
    after = drain(read_end)
    stream.close()

    err = capsys.readouterr().err.splitlines()
    assert len(err) == 2
    assert err[0].startswith("bfxd: cannot write the log (EAGAIN") and "still serving" in err[0]
    assert err[1] == f"bfxd: the log is written again; {health.lost_lines} lines were lost (see the log.lost line)"

    data = before + after
    lines = [line + b"\n" for line in data.split(b"\n")[:-1]]
    report = verify_lines(iter(lines))
    assert report.ok, report.broken
    assert report.declared_lost == health.lost_lines
    records = [json.loads(line) for line in lines if line.endswith(b"}\n")]
    lost = next(r for r in records if r["event"] == "log.lost")
    assert lost["lost_lines"] == health.lost_lines and lost["error"].startswith("EAGAIN")
    assert lost["torn"] == (not before.endswith(b"\n"))
    assert [r["event"] for r in records][-3:] == ["after", "after", "audit.closed"]
    assert "while.failing" not in {r["event"] for r in records}  # lost, and said to be


def test_a_full_disk_is_said_once_and_shown_in_the_health_object(capsys) -> None:  # type: ignore[no-untyped-def]
    with open("/dev/full", "w") as full:
        configure_logging(fmt="json", level="info", stream=full, cache=False, audit=AuditSettings())
        for n in range(10):
            structlog.get_logger().info("x", n=n)
        status = log_health().as_status()
        close_audit_trail()
    assert status["ok"] is False and status["error"] == "ENOSPC: No space left on device"
    assert status["lost_lines"] == 11 and status["failed_writes"] == 11  # audit.started and ten lines
    assert status["failing_since"] is not None
    assert capsys.readouterr().err.count("bfxd: cannot write the log") == 1


def test_a_torn_line_without_the_daemons_word_for_it_is_truncated() -> None:
    good = Chain().seal('{"event":"x"}').encode() + b"\n"
    assert verify_lines(iter([good])).ok
    broken = verify_lines(iter([b'{"event":"y","ru\n', good])).broken
    assert broken is not None and broken.kind == "truncated" and broken.line == 1
