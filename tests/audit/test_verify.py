"""The hash chain as the sink writes it, and ``bfxd audit verify`` against each kind of tampering."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from pathlib import Path

import pytest
import structlog
import trio
from tests.audit.conftest import some_work

from bfxd.audit.chain import read_anchors
from bfxd.audit.verify import verify_lines
from bfxd.logconfig import batched_log_writes


def lines_of(stream) -> list[bytes]:  # type: ignore[no-untyped-def]
    return [line.encode() + b"\n" for line in stream.getvalue().splitlines()]


def verify(lines: list[bytes], anchors: Path | None = None):  # type: ignore[no-untyped-def]
    return verify_lines(iter(lines), read_anchors(anchors) if anchors else None)


class TestSealedLines:
    def test_every_line_carries_run_seq_chain_and_the_chain_is_recomputable(self, audit_log) -> None:  # type: ignore[no-untyped-def]
        """The documented canonical form: cut ``,"chain":"…"``, close the brace, hash with the previous chain."""
        stream, _anchors, run = audit_log
        run(some_work(3))
        records = [json.loads(line) for line in stream.getvalue().splitlines()]
        assert next(r["event"] for r in records) == "audit.started"
        assert [r["event"] for r in records][-1] == "audit.closed"
        assert "from the stdlib bridge" in [r["event"] for r in records]  # stdlib lines are chained too
        assert [r["seq"] for r in records] == list(range(len(records)))
        assert len({r["run"] for r in records}) == 1
        previous = bytes(32)
        for raw in stream.getvalue().splitlines():
            body, tail = raw.rsplit(',"chain":"', 1)
            canonical = (body + "}").encode()
            expected = hashlib.sha256(previous + canonical).hexdigest()
            assert tail == expected + '"}'
            previous = bytes.fromhex(expected)

    def test_the_trail_lines_are_written_whatever_the_level(self, audit_log) -> None:  # type: ignore[no-untyped-def]
        stream, _anchors, _run = audit_log
        from bfxd.logconfig import AuditSettings, close_audit_trail, configure_logging

        configure_logging(fmt="json", level="error", stream=stream, cache=False, audit=AuditSettings())
        structlog.get_logger().info("filtered out")
        close_audit_trail()
        assert [json.loads(x)["event"] for x in stream.getvalue().splitlines()] == ["audit.started", "audit.closed"]

    def test_an_intact_log_verifies_with_counts_and_runs(self, audit_log) -> None:  # type: ignore[no-untyped-def]
        stream, anchors, run = audit_log
        run(some_work())
        run(some_work())
        report = verify(lines_of(stream), anchors)
        assert report.ok, report.broken
        assert len(report.runs) == 2 and report.lines == len(stream.getvalue().splitlines())
        assert all(state.closed for state in report.runs.values())
        assert report.anchors_checked == 2  # each run's audit.closed

    def test_the_new_run_names_the_previous_head(self, audit_log) -> None:  # type: ignore[no-untyped-def]
        stream, _anchors, run = audit_log
        run(some_work())
        first = json.loads(stream.getvalue().splitlines()[-1])
        run(some_work())
        started = [json.loads(x) for x in stream.getvalue().splitlines() if '"audit.started"' in x][1]
        assert (started["prev_run"], started["prev_seq"], started["prev_chain"]) == (first["run"], first["seq"],
                                                                                    first["chain"])

    def test_journal_noise_and_level_prefixes_are_skipped(self, audit_log) -> None:  # type: ignore[no-untyped-def]
        stream, _anchors, run = audit_log
        run(some_work())
        lines = lines_of(stream)
        noisy = [b"Started bfxd.service - bfxd.\n", *[b"<6>" + line for line in lines[:3]], *lines[3:],
                 b"Fatal Python error: Aborted\n"]
        report = verify(noisy)
        assert report.ok and report.foreign == 2

    def test_a_partial_input_is_accepted_and_said_so(self, audit_log) -> None:  # type: ignore[no-untyped-def]
        """Starting mid-run (--since, journald retention) is not a break."""
        stream, _anchors, run = audit_log
        run(some_work())
        report = verify(lines_of(stream)[3:])
        assert report.ok
        (state,) = report.runs.values()
        assert state.first_seq == 3


class TestTampering:
    @pytest.fixture
    def two_runs(self, audit_log) -> tuple[list[bytes], Path]:  # type: ignore[no-untyped-def]
        stream, anchors, run = audit_log
        run(some_work())
        run(some_work())
        return lines_of(stream), anchors

    def test_a_deleted_line_is_missing(self, two_runs) -> None:  # type: ignore[no-untyped-def]
        lines, _ = two_runs
        del lines[4]
        broken = verify(lines).broken
        assert broken is not None and broken.kind == "missing" and broken.seq == 4 and broken.line == 5

    def test_an_edited_line(self, two_runs) -> None:  # type: ignore[no-untyped-def]
        lines, _ = two_runs
        lines[3] = lines[3].replace(b'"offer_id":1002', b'"offer_id":1003')
        broken = verify(lines).broken
        assert broken is not None and broken.kind == "edited" and broken.line == 4

    def test_an_edited_line_with_its_chain_recomputed_breaks_the_next(self, two_runs) -> None:  # type: ignore[no-untyped-def]
        lines, _ = two_runs
        previous = bytes.fromhex(json.loads(lines[2])["chain"])
        body = lines[3].rstrip(b"\n").rsplit(b',"chain":"', 1)[0].replace(b"1002", b"1003") + b"}"
        forged = hashlib.sha256(previous + body).hexdigest()
        lines[3] = body[:-1] + b',"chain":"' + forged.encode() + b'"}\n'
        broken = verify(lines).broken
        assert broken is not None and broken.kind == "edited" and broken.line == 5

    def test_whitespace_counts(self, two_runs) -> None:  # type: ignore[no-untyped-def]
        lines, _ = two_runs
        lines[2] = lines[2].replace(b'","', b'", "', 1)
        assert verify(lines).broken.kind == "edited"  # type: ignore[union-attr]

    def test_swapped_lines_are_reordered(self, two_runs) -> None:  # type: ignore[no-untyped-def]
        lines, _ = two_runs
        lines[2], lines[3] = lines[3], lines[2]
        broken = verify(lines).broken
        assert broken is not None and broken.kind == "reordered" and broken.seq == 2

    def test_a_duplicated_line_is_reordered(self, two_runs) -> None:  # type: ignore[no-untyped-def]
        lines, _ = two_runs
        lines.insert(3, lines[2])
        assert verify(lines).broken.kind == "reordered"  # type: ignore[union-attr]

    def test_a_line_cut_short_is_truncated(self, two_runs) -> None:  # type: ignore[no-untyped-def]
        lines, _ = two_runs
        lines[-1] = lines[-1][:40]
        assert verify(lines).broken.kind == "truncated"  # type: ignore[union-attr]

    def test_a_cut_tail_is_truncated_against_the_anchor_file(self, two_runs) -> None:  # type: ignore[no-untyped-def]
        lines, anchors = two_runs
        assert verify(lines[:-2]).ok  # alone, a cut tail looks like a daemon still running
        broken = verify(lines[:-2], anchors).broken
        assert broken is not None and broken.kind == "truncated"

    def test_the_tail_of_an_earlier_run_cut_before_a_restart(self, two_runs) -> None:  # type: ignore[no-untyped-def]
        """No anchor file needed at verify time: the second run's first line names the first run's last head."""
        lines, _ = two_runs
        first_run_end = next(i for i, line in enumerate(lines) if b'"audit.closed"' in line)
        del lines[first_run_end - 1:first_run_end + 1]
        broken = verify(lines).broken
        assert broken is not None and broken.kind == "truncated"

    def test_a_whole_run_deleted(self, audit_log) -> None:  # type: ignore[no-untyped-def]
        stream, _anchors, run = audit_log
        for _ in range(3):
            run(some_work(2))
        lines = lines_of(stream)
        runs = [json.loads(line)["run"] for line in lines]
        middle = [line for line, r in zip(lines, runs, strict=True) if r != runs[len(runs) // 2]]
        broken = verify(middle).broken
        assert broken is not None and broken.kind == "missing"

    def test_a_log_rewritten_from_some_line_on_disagrees_with_the_anchors(self, two_runs) -> None:  # type: ignore[no-untyped-def]
        """An attacker who recomputes every chain after an edit passes the chain check, not the anchor file."""
        lines, anchors = two_runs
        index = 3
        previous = bytes.fromhex(json.loads(lines[index - 1])["chain"])
        rewritten = lines[:index]
        for line in lines[index:]:
            record = json.loads(line)
            if record["seq"] == 0:
                rewritten.extend(lines[len(rewritten):])
                break
            body = line.rstrip(b"\n").rsplit(b',"chain":"', 1)[0].replace(b"1002", b"1003") + b"}"
            previous = hashlib.sha256(previous + body).digest()
            rewritten.append(body[:-1] + b',"chain":"' + previous.hex().encode() + b'"}\n')
        assert verify(rewritten).broken is not None  # the second run's prev_chain no longer matches
        broken = verify(rewritten[:len(rewritten) // 2 + 3], anchors).broken
        assert broken is not None and broken.kind == "edited"


class TestCheckpoints:
    def test_checkpoints_go_to_the_log_and_the_anchor_file(self, audit_log) -> None:  # type: ignore[no-untyped-def]
        stream, anchors, run = audit_log

        async def body() -> None:
            with batched_log_writes():
                structlog.get_logger().info("one")
                await trio.sleep(0.001)  # the trail checks whenever trio is about to wait
                structlog.get_logger().info("two")
                await trio.sleep(0.001)
                await trio.sleep(0.001)  # nothing new: no checkpoint

        run(lambda: trio.run(body), interval=0.0)  # type: ignore[arg-type]
        records = [json.loads(x) for x in stream.getvalue().splitlines()]
        checkpoints = [r for r in records if r["event"] == "audit.checkpoint"]
        assert len(checkpoints) == 2
        for checkpoint in checkpoints:
            before = records[checkpoint["seq"] - 1]
            assert (checkpoint["head_seq"], checkpoint["head_chain"]) == (before["seq"], before["chain"])
        heads = [(a["run"], a["seq"], a["chain"]) for a in read_anchors(anchors)]
        assert heads == [(r["run"], r["seq"], r["chain"]) for r in records
                         if r["event"] in ("audit.checkpoint", "audit.closed")]


class TestCommand:
    def test_exit_codes_and_stdin(self, audit_log, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
        stream, anchors, run = audit_log
        run(some_work())
        log_file = tmp_path / "bfxd.log"
        log_file.write_text(stream.getvalue())
        command = [sys.executable, "-m", "bfxd", "audit", "verify"]
        ok = subprocess.run([*command, "--anchors", str(anchors), str(log_file)], capture_output=True, text=True)
        assert ok.returncode == 0 and ok.stdout.startswith("OK: ") and "1 run(s)" in ok.stdout
        tampered = stream.getvalue().replace('"offer_id":1001', '"offer_id":1004')
        bad = subprocess.run([*command, "-"], input=tampered, capture_output=True, text=True)
        assert bad.returncode == 1 and bad.stdout.startswith("BROKEN (edited) line 3")


def test_an_anchor_file_that_cannot_be_written_is_logged_once(tmp_path: Path) -> None:
    import io

    from bfxd.logconfig import AuditSettings, close_audit_trail, configure_logging

    stream = io.StringIO()
    settings = AuditSettings(anchor_file=tmp_path / "missing-dir" / "anchors", checkpoint_interval=0.0)
    configure_logging(fmt="json", level="info", stream=stream, cache=False, audit=settings)

    async def body() -> None:
        with batched_log_writes():
            for n in range(3):
                structlog.get_logger().info("work", n=n)
                await trio.sleep(0.001)  # a checkpoint each time: each fails to reach the anchor file

    trio.run(body)
    close_audit_trail()
    events = [json.loads(line)["event"] for line in stream.getvalue().splitlines()]
    assert events.count("audit.checkpoint") == 3 and events.count("audit.anchor_failed") == 1
    assert events[-1] == "audit.closed"
    assert verify_lines(iter(lines_of(stream))).ok
