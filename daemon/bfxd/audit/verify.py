"""``bfxd audit verify``: recompute the hash chain of a log and report OK, or the first break.

Reads ``journalctl -o cat`` output or a file (a JSON line per entry). Lines that are not sealed (systemd's own
"Started…" lines, anything printed outside the logger) are skipped and counted; a line that carries a chain but
is no longer in the canonical form counts as edited. Each run (one daemon start) is checked on its own:

- ``seq`` must go up by one, and each ``chain`` must equal SHA-256(previous chain ‖ canonical bytes): a gap is a
  *missing* line (or, if the missing ``seq`` turns up later, a *reordered* one), a mismatch an *edited* one;
- a run that starts past seq 0 is accepted as a partial run: the input begins after its start (``--since``,
  journald's retention), which is reported, not a break;
- the first line of a run names, when an anchor file is configured, the previous run's last anchored head: if
  that run is in the input and ends before that head, or reaches it with another chain, its tail was cut off or
  rewritten;
- with ``--anchors FILE`` every head in the anchor file is checked against the input the same way, which also
  catches a log rewritten consistently from some line on, and a *truncated* tail of the newest run;
- lines the daemon could not write leave no gap (the chain is rolled back), and the ``log.lost`` line written
  once writes work again says how many: they are counted, not a break. A line cut short by such a failed write
  is accepted only if the next sealed line is that ``log.lost`` with ``torn: true``.
"""

from __future__ import annotations

import re
import sys
from binascii import hexlify
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import BinaryIO

import attrs
import orjson

from bfxd.audit.chain import GENESIS, link, read_anchors, split_sealed

__all__ = ["Break", "Report", "verify_lines", "verify_main"]

_PRIORITY = re.compile(rb"^<[0-7]>")  # an sd-daemon level prefix, if the output still has one
_RUN_KEY = b',"run":"'
# audit.started / audit.checkpoint / audit.closed, log.lost: parsed; nothing else is
_MARK_TAGS = (b'"event":"audit.', b'"event":"log.lost"')


@attrs.define
class RunState:
    run: str
    first_seq: int
    last_seq: int
    head: bytes
    lines: int = 1
    closed: bool = False
    started_after: tuple[str, int, str] | None = None  # (prev_run, prev_seq, prev_chain) from audit.started
    marks: dict[int, str] = attrs.field(factory=dict)  # seq → chain of checkpoint/closed lines (the anchored ones)


@attrs.frozen
class Break:
    kind: str  # missing | reordered | edited | truncated
    line: int  # 1-based line number in the input (0: found only at the end)
    run: str
    seq: int | None
    detail: str


@attrs.define
class Report:
    lines: int = 0  # sealed lines checked
    foreign: int = 0  # unsealed lines skipped
    runs: dict[str, RunState] = attrs.field(factory=dict)
    anchors_checked: int = 0
    anchors_elsewhere: int = 0  # heads of runs this input does not hold (rotated away, another instance)
    declared_lost: int = 0  # lines the daemon could not write, as its log.lost lines say
    broken: Break | None = None

    @property
    def ok(self) -> bool:
        return self.broken is None


def _fields(canonical: bytes) -> tuple[str, int] | None:
    """run and seq from the canonical tail ``,"run":"<id>","seq":<n>}``."""
    at = canonical.rfind(_RUN_KEY)
    if at < 0:
        return None
    run, sep, seq = canonical[at + len(_RUN_KEY):-1].partition(b'","seq":')
    if not sep or not seq.isdigit():
        return None
    return run.decode("ascii", "replace"), int(seq)


def _marked_event(canonical: bytes) -> dict | None:
    if _MARK_TAGS[0] not in canonical and _MARK_TAGS[1] not in canonical:
        return None
    try:
        event = orjson.loads(canonical)
    except orjson.JSONDecodeError:
        return None
    return event if isinstance(event, dict) else None


def verify_lines(lines: Iterable[bytes], anchors: list[dict] | None = None) -> Report:
    report = Report()
    runs = report.runs
    order: list[str] = []
    pending: Break | None = None  # a gap: "missing" unless the missing seq turns up later ("reordered")
    torn: Break | None = None  # a line cut short: fine only if the next sealed line is log.lost saying so
    for number, raw in enumerate(lines, 1):
        line = raw.rstrip(b"\r\n")
        if not line:
            continue
        if line[:1] == b"<":
            line = _PRIORITY.sub(b"", line)
        if pending is not None:
            sealed = split_sealed(line)
            fields = _fields(sealed[0]) if sealed else None
            if fields is not None and fields[0] == pending.run and fields[1] == pending.seq:
                report.broken = attrs.evolve(pending, kind="reordered", detail=pending.detail.replace(
                    "missing", f"out of order (it comes later, at line {number})", 1))
                return report
            continue
        sealed = split_sealed(line)
        if sealed is None:
            if line[:2] == b'{"' and not line.endswith(b"}"):
                if torn is not None:
                    report.broken = torn
                    return report
                torn = Break("truncated", number, "?", None, "a JSON line is cut short")
                continue
            if b'"chain":"' in line:
                report.broken = Break("edited", number, "?", None, "a sealed line is no longer in the canonical "
                                      "form")
                return report
            report.foreign += 1
            continue
        canonical, chain = sealed
        fields = _fields(canonical)
        if fields is None:
            report.broken = Break("edited", number, "?", None, "a sealed line lost its run or seq member")
            return report
        run, seq = fields
        report.lines += 1
        state = runs.get(run)
        digest: bytes
        if state is None:
            if seq == 0:
                digest = link(GENESIS, canonical)
                if hexlify(digest) != chain:
                    report.broken = Break("edited", number, run, seq, "the first line of the run does not match "
                                          "its chain: it was edited")
                    return report
            else:
                try:
                    digest = bytes.fromhex(chain.decode("ascii"))  # the input begins mid-run: start from here
                except ValueError:
                    report.broken = Break("edited", number, run, seq, "the chain member is not hex")
                    return report
            runs[run] = state = RunState(run, seq, seq, digest)
            order.append(run)
        else:
            expected = state.last_seq + 1
            if seq > expected:
                pending = Break("missing", number, run, expected,
                                f"seq {expected} is missing: seq {seq} follows seq {state.last_seq}")
                continue
            if seq < expected:
                report.broken = Break("reordered", number, run, seq,
                                      f"seq {seq} comes after seq {state.last_seq}: reordered or duplicated")
                return report
            digest = link(state.head, canonical)
            if hexlify(digest) != chain:
                report.broken = Break("edited", number, run, seq,
                                      f"seq {seq} does not follow seq {seq - 1}: this line was edited, or the "
                                      "one before it was rewritten with a new chain")
                return report
            state.head, state.last_seq = digest, seq
            state.lines += 1
        event = _marked_event(canonical)
        if torn is not None:
            if event is None or event.get("event") != "log.lost" or event.get("torn") is not True:
                report.broken = torn
                return report
            torn = None  # the daemon said so: a failed write cut that line
        if event is not None:
            name = event.get("event")
            if name == "log.lost":
                report.declared_lost += int(event.get("lost_lines") or 0)
            if name in ("audit.checkpoint", "audit.closed"):
                state.marks[seq] = chain.decode("ascii", "replace")
                state.closed = state.closed or name == "audit.closed"
            elif name == "audit.started" and "prev_run" in event:
                state.started_after = (str(event["prev_run"]), int(event["prev_seq"]), str(event["prev_chain"]))
    if pending is not None or torn is not None:
        report.broken = pending or torn
        return report
    report.broken = _check_heads(report, order, anchors or [])
    return report


def _check_heads(report: Report, order: list[str], anchors: list[dict]) -> Break | None:
    runs = report.runs
    for position, run in enumerate(order):
        reference = runs[run].started_after
        if reference is None:
            continue
        prev_run, prev_seq, prev_chain = reference
        if prev_run in runs:
            problem = _against_head(runs[prev_run], prev_seq, prev_chain, f"run {run}'s first line")
            if problem is not None:
                return problem
        elif position > 0:
            return Break("missing", 0, prev_run, None, f"run {prev_run}, which run {run}'s first line names as "
                         "the one before it, is not in the input, though earlier runs are")
    for anchor in anchors:
        run, seq, chain = str(anchor["run"]), int(anchor["seq"]), str(anchor["chain"])  # type: ignore[call-overload]
        state = runs.get(run)
        if state is None or seq < state.first_seq:
            report.anchors_elsewhere += 1
            continue
        report.anchors_checked += 1
        problem = _against_head(state, seq, chain, "the anchor file")
        if problem is not None:
            return problem
    return None


def _against_head(state: RunState, seq: int, chain: str, source: str) -> Break | None:
    if seq > state.last_seq:
        return Break("truncated", 0, state.run, state.last_seq + 1,
                     f"run {state.run} ends at seq {state.last_seq}, but {source} records seq {seq}: its tail is "
                     "missing")
    if seq >= state.first_seq and state.marks.get(seq) != chain:
        return Break("edited", 0, state.run, seq, f"{source} records another chain for seq {seq} of run "
                     f"{state.run}: the log was rewritten")
    return None


def _read(source: str) -> Iterator[bytes]:
    stream: BinaryIO
    if source == "-":
        yield from sys.stdin.buffer
        return
    with open(source, "rb") as stream:
        yield from stream


def render(report: Report) -> str:
    if report.broken is not None:
        b = report.broken
        where = f"line {b.line}" if b.line else "at the end"
        seq = f", seq {b.seq}" if b.seq is not None else ""
        return f"BROKEN ({b.kind}) {where} (run {b.run}{seq}): {b.detail}\n"
    out = [f"OK: {report.lines} lines in {len(report.runs)} run(s), {report.foreign} unsealed line(s) skipped"]
    if report.declared_lost:
        out.append(f"; {report.declared_lost} line(s) the daemon could not write (its log.lost lines)")
    if report.anchors_checked or report.anchors_elsewhere:
        out.append(f"; {report.anchors_checked} anchor(s) matched, {report.anchors_elsewhere} for runs not in the "
                   "input")
    out.append("\n")
    for state in report.runs.values():
        start = "from its start" if state.first_seq == 0 else f"from seq {state.first_seq} (earlier lines not in " \
                                                                "the input)"
        end = "closed" if state.closed else "not closed (still running, or killed)"
        out.append(f"  run {state.run}: seq {state.first_seq}..{state.last_seq}, {state.lines} lines {start}, "
                   f"{end}\n")
    return "".join(out)


def verify_main(source: str, anchor_file: Path | None) -> int:
    try:
        anchors = read_anchors(anchor_file) if anchor_file is not None else None
        report = verify_lines(_read(source), anchors)
    except OSError as exc:
        print(f"bfxd audit verify: {exc}", file=sys.stderr)
        return 2
    sys.stdout.write(render(report))
    return 0 if report.ok else 1
