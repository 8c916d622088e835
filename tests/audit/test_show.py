"""``bfxd audit show``: the story of an offer, a request, a client, a time window, from lines the sink wrote."""

from __future__ import annotations

import io
import json
import subprocess
import sys
from pathlib import Path

import structlog
from structlog.contextvars import bound_contextvars

from bfxd.audit.show import Selection, select, tell

log = structlog.get_logger()


def client_session(client_id: int, pid: int, uid: int, program: str, requests: list[tuple[str, dict]]) -> None:
    with bound_contextvars(client_id=client_id, peer_pid=pid, peer_uid=uid, peer_gid=uid):
        log.info("client.connected", peer_program=program, peer_exe="/usr/bin/python3", peer_unit="bot.service")
        for request_id, fields in requests:
            with bound_contextvars(request_id=request_id):
                log.info("command.received", **fields)


def story(audit_log) -> list[bytes]:  # type: ignore[no-untyped-def]
    """Two clients: 1.1 cancels 500, 2.1 cancels all (500 and 600 go out), then both complete."""
    stream, _anchors, run = audit_log

    def body() -> None:
        client_session(1, 4242, 1000, "bfxctl", [("1.1", {"op": "cancel", "ref": "a", "offer_id": 500})])
        client_session(2, 77, 100, "hedger", [("2.1", {"op": "cancel_all", "ref": "b"})])
        log.info("frame.sent", kind="foc", offer_id=500, request_ids=["1.1", "2.1"], generation=1)
        log.info("frame.sent", kind="foc", offer_id=600, request_ids=["2.1"], generation=1)
        log.info("notification.received", type="foc-req", status="SUCCESS", text="ok", offer_id=500,
                 request_ids=["1.1", "2.1"])
        log.info("notification.received", type="foc-req", status="SUCCESS", text="ok", offer_id=600,
                 request_ids=["2.1"])
        log.info("offer.cancel", offer_id=5000, symbol="fUSD", status="CANCELED", amount=1, rate=0.1)
        with bound_contextvars(client_id=1, peer_pid=4242, peer_uid=1000, peer_gid=1000, request_id="1.1"):
            log.info("command.completed", op="cancel", offer_id=500, outcome="ok", status="SUCCESS", latency_ms=3)
        with bound_contextvars(client_id=2, peer_pid=77, peer_uid=100, peer_gid=100, request_id="2.1"):
            log.info("command.completed", op="cancel_all", outcome="ok", latency_ms=4)

    run(body)
    return [line.encode() + b"\n" for line in stream.getvalue().splitlines()]


def events(lines: list[bytes], selection: Selection) -> list[tuple[str, object]]:
    """The story's (event, request ids), the same whether the log comes line by line or as one block."""
    def told(blocks: list[bytes]) -> list[tuple[str, object]]:
        return [(r["event"], r.get("request_id") or r.get("request_ids")) for r, _l, _c in select(blocks, selection)]

    by_line = told(lines)
    assert told([b"".join(lines)]) == by_line
    return by_line


def test_a_busy_client_with_more_requests_than_needles(audit_log) -> None:  # type: ignore[no-untyped-def]
    stream, _anchors, run = audit_log
    count = 50

    def body() -> None:
        client_session(3, 555, 1234, "bot", [(f"3.{n}", {"op": "cancel", "offer_id": 900 + n}) for n in range(count)])
        for n in range(count):
            log.info("frame.sent", kind="foc", offer_id=900 + n, request_ids=[f"3.{n}"])
        log.info("frame.sent", kind="foc", offer_id=1, request_ids=["4.1"])  # someone else's

    run(body)
    lines = [line.encode() + b"\n" for line in stream.getvalue().splitlines()]
    told = events(lines, Selection(client=1234))
    assert told.count(("command.received", None)) == 0
    assert [e for e in told if e[0] == "frame.sent"] == [("frame.sent", [f"3.{n}"]) for n in range(count)]


def test_an_offer_brings_in_a_cancel_all_that_named_it_only_in_its_frame(audit_log) -> None:  # type: ignore[no-untyped-def]
    lines = story(audit_log)
    assert events(lines, Selection(offer=500)) == [
        ("command.received", "1.1"),
        ("command.received", "2.1"),  # seen to touch 500 only at the frame: told first, it came first
        ("frame.sent", ["1.1", "2.1"]),
        ("notification.received", ["1.1", "2.1"]),
        ("command.completed", "1.1"),
        ("command.completed", "2.1"),
    ]


def test_offer_ids_match_whole(audit_log) -> None:  # type: ignore[no-untyped-def]
    """5000 contains 500 as bytes; it is another offer."""
    lines = story(audit_log)
    assert ("offer.cancel", None) not in events(lines, Selection(offer=500))
    assert events(lines, Selection(offer=5000)) == [("offer.cancel", None)]


def test_a_request(audit_log) -> None:  # type: ignore[no-untyped-def]
    lines = story(audit_log)
    assert events(lines, Selection(request="2.1")) == [
        ("command.received", "2.1"), ("frame.sent", ["1.1", "2.1"]), ("frame.sent", ["2.1"]),
        ("notification.received", ["1.1", "2.1"]), ("notification.received", ["2.1"]), ("command.completed", "2.1")]


def test_a_client_by_uid_or_pid_and_who_it_was(audit_log) -> None:  # type: ignore[no-untyped-def]
    lines = story(audit_log)
    by_uid = events(lines, Selection(client=100))  # uid 100, not uid 1000
    assert by_uid[0] == ("client.connected", None) and ("command.received", "2.1") in by_uid
    assert ("command.received", "1.1") not in by_uid and ("frame.sent", ["2.1"]) in by_uid
    assert events(lines, Selection(client=77)) == by_uid
    out = io.StringIO()
    tell(select(lines, Selection(request="1.1")), out, as_json=False)
    first = out.getvalue().splitlines()[0]
    assert "request 1.1 asked: cancel offer 500 (ref 'a') by uid 1000 pid 4242 gid 1000" in first
    assert "program bfxctl, exe /usr/bin/python3, unit bot.service" in first


def test_a_time_window(audit_log) -> None:  # type: ignore[no-untyped-def]
    lines = story(audit_log)
    stamps = [json.loads(line)["timestamp"] for line in lines]
    middle = stamps[len(stamps) // 2]
    after = [r["timestamp"] for r, _l, _c in select(lines, Selection(since=middle))]
    assert after and min(after) >= middle and len(after) == sum(s >= middle for s in stamps)
    until = [r["timestamp"] for r, _l, _c in select(lines, Selection(until=middle.replace("Z", "+00:00")))]
    assert until and max(until) <= middle


def test_the_command_prints_the_lines_themselves_with_json(audit_log, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    lines = story(audit_log)
    log_file = tmp_path / "bfxd.log"
    log_file.write_bytes(b"".join(lines))
    command = [sys.executable, "-m", "bfxd", "audit", "show"]
    shown = subprocess.run([*command, "--offer", "600", "--json", str(log_file)], capture_output=True)
    assert shown.returncode == 0
    assert [line + b"\n" for line in shown.stdout.splitlines()] == [
        line for line in lines if b'"request_id":"2.1"' in line or b'"offer_id":600' in line]
    none = subprocess.run([*command, "--offer", "1", str(log_file)], capture_output=True, text=True)
    assert none.returncode == 1 and "nothing matches" in none.stderr
    bad = subprocess.run([*command, "--since", "yesterday", str(log_file)], capture_output=True, text=True)
    assert bad.returncode == 2 and "not a time" in bad.stderr
