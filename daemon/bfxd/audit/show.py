"""``bfxd audit show``: the story of an offer, a request or a client, told from the log in one pass.

What joins the lines: a request's ``request_id`` (on ``command.received``/``command.completed``, which also carry
the client's ``client_id`` and ``peer_*``), the ``request_ids`` of the router's lines (``frame.sent``,
``notification.received``, ``cancel.*``), and ``client_id`` → ``client.connected`` (program, executable,
unit). Request and client ids restart with each daemon start, so every join is within one ``run``.

Speed: a line is parsed only if a cheap byte search says it may match (the offer id, a quoted request id, a
``"peer_uid":N``, ``client.connected``), so most of a large log is skipped unparsed.
"""

from __future__ import annotations

import argparse
import datetime
import heapq
import sys
from collections import OrderedDict
from collections.abc import Iterable, Iterator
from typing import Any

import orjson

__all__ = ["Selection", "select", "show_main"]

_STAMP_KEY = b'"timestamp":"'
_ASKED_KEPT = 100_000  # requests remembered for a late join; a story rarely spans more
_MAX_RID_NEEDLES = 32  # request ids searched for one by one; beyond, every line naming a request is looked at
# Requests that name no offer but touch several: their command.received is kept until a frame names the offer.
_MULTI_OFFER_OPS = (b'"op":"cancel_all"',)


class Selection:
    """What to tell: exactly one of offer / request / client, and an optional time window."""

    def __init__(self, *, offer: int | None = None, request: str | None = None, client: int | None = None,
                 since: str | None = None, until: str | None = None) -> None:
        self.offer, self.request, self.client = offer, request, client
        self.since, self.until = _bound(since), _bound(until)
        self.offer_needle = str(offer).encode() if offer is not None else None
        self.request_needle = f'"{request}"'.encode() if request is not None else None
        self.client_needles = (f'"peer_uid":{client}'.encode(), f'"peer_pid":{client}'.encode()) \
            if client is not None else ()

    def needles(self) -> list[bytes] | None:
        """What a seed line contains for sure (None: any line, when only a time window is given)."""
        if self.offer_needle is not None:
            return [self.offer_needle]
        if self.request_needle is not None:
            return [self.request_needle]
        if self.client_needles:
            return list(self.client_needles)
        return None

    def may_follow(self, record: dict[str, Any]) -> bool:
        """A line of a related request: not if it is about another offer (a cancel_all's other frames)."""
        return self.offer is None or record.get("offer_id") in (None, self.offer)

    def seeds(self, record: dict[str, Any]) -> bool:
        if self.offer is not None:
            return record.get("offer_id") == self.offer
        if self.request is not None:
            return record.get("request_id") == self.request or self.request in (record.get("request_ids") or ())
        if self.client is not None:
            return self.client in (record.get("peer_uid"), record.get("peer_pid"))
        return True


def _bound(text: str | None) -> str | None:
    """A user's time as the log writes it (UTC, microseconds, ``Z``), so bounds compare as strings."""
    if text is None:
        return None
    moment = datetime.datetime.fromisoformat(text.strip().replace(" ", "T"))
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=datetime.UTC)
    return moment.astimezone(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _stamp(line: bytes) -> str | None:
    at = line.find(_STAMP_KEY)
    if at < 0:
        return None
    start = at + len(_STAMP_KEY)
    stamp = line[start:line.find(b'"', start)].decode("ascii", "replace")
    if len(stamp) == 20 and stamp.endswith("Z"):  # isoformat leaves out a zero microsecond
        stamp = stamp[:-1] + ".000000Z"
    return stamp


class _Story:
    """The state of one pass: which lines belong, given what came before."""

    def __init__(self, selection: Selection) -> None:
        self.selection = selection
        self.clients: dict[tuple[str, object], dict[str, Any]] = {}  # (run, client_id) → client.connected
        self.related: dict[str, set[str]] = {}  # run → request ids of the story
        self.rid_count = 0
        self.broad_searched = False  # in this block
        # command.received of recent multi-offer requests (cancel_all): seen to touch an offer only at a frame
        self.asked: OrderedDict[tuple[str, str], tuple[dict[str, Any], bytes]] = OrderedDict()

    def needles(self) -> list[bytes]:
        """What a line of the story must contain (at least one of); [] means every line is a candidate."""
        seeds = self.selection.needles()
        if seeds is None:
            return []
        return [b'"client.connected"', *_MULTI_OFFER_OPS, *seeds]

    def follow_needles(self, rids: Iterable[str]) -> list[bytes]:
        """Needles for request ids new to the story (searched for in the rest of the block)."""
        if self.rid_count > _MAX_RID_NEEDLES:
            # A long story (a busy client): every line naming a request is a candidate, searched once a block.
            if self.broad_searched:
                return []
            self.broad_searched = True
            return [b'"request_id']
        return [f'"{rid}"'.encode() for rid in rids]

    def take(self, line: bytes, out: list[tuple[dict[str, Any], bytes, dict | None]]) -> list[str]:
        """Append the line (and a late-joined request's first line) to *out* if it belongs; return the request
        ids it brought into the story."""
        selection = self.selection
        if selection.since is not None or selection.until is not None:
            stamp = _stamp(line)
            if stamp is not None and ((selection.since and stamp < selection.since)
                                      or (selection.until and stamp > selection.until)):
                return []
        try:
            record = orjson.loads(line[line.index(b"{"):])
        except (orjson.JSONDecodeError, ValueError):
            return []
        if not isinstance(record, dict):
            return []
        run = str(record.get("run", ""))
        event = record.get("event")
        own = record.get("request_id")
        if event == "client.connected":
            self.clients[(run, record.get("client_id"))] = record
        ids = self.related.get(run) or set()
        seeded = selection.seeds(record)
        matched = seeded or (selection.may_follow(record) and (
            own in ids or any(r in ids for r in record.get("request_ids") or ())))
        if not matched:
            if event == "command.received" and isinstance(own, str):
                self.asked[(run, own)] = record, line
                if len(self.asked) > _ASKED_KEPT:
                    self.asked.popitem(last=False)
            return []
        added = []
        # Only what matches the selection itself widens the story: a frame shared with another request does
        # not bring in that request's own story.
        for rid in (own, *(record.get("request_ids") or ())) if seeded and selection.request is None else ():
            if isinstance(rid, str) and rid not in ids:
                ids = self.related.setdefault(run, ids)
                ids.add(rid)
                added.append(rid)
                self.rid_count += 1
                earlier = self.asked.pop((run, rid), None)
                if earlier is not None:  # who asked, told before what followed
                    out.append((earlier[0], earlier[1], self.clients.get((run, earlier[0].get("client_id")))))
        out.append((record, line, self.clients.get((run, record.get("client_id")))))
        return added


def select(blocks: Iterable[bytes], selection: Selection) -> Iterator[tuple[dict[str, Any], bytes, dict | None]]:
    """(record, line, the client.connected record of its client or None), in log order.

    *blocks*: the log in pieces that end at line ends (single lines will do). Within a block, the candidate lines
    are found by searching the whole block for each needle (C speed), not line by line.
    """
    story = _Story(selection)
    needles = story.needles()
    for block in blocks:
        out: list[tuple[dict[str, Any], bytes, dict | None]] = []
        if not needles:
            for line in block.splitlines():
                if line[:1] in (b"{", b"<"):
                    story.take(line, out)
            yield from out
            continue
        yield from _scan_block(block, story, needles)


def _scan_block(block: bytes, story: _Story, needles: list[bytes]) -> list[tuple[dict[str, Any], bytes, dict | None]]:
    out: list[tuple[dict[str, Any], bytes, dict | None]] = []
    pending: list[int] = []  # starts of candidate lines, in order
    queued: set[int] = set()

    def search(needle: bytes, start: int) -> None:
        at = block.find(needle, start)
        while at >= 0:
            line_start = block.rfind(b"\n", 0, at) + 1
            if line_start not in queued:
                queued.add(line_start)
                heapq.heappush(pending, line_start)
            at = block.find(b"\n", at)
            if at < 0:
                break
            at = block.find(needle, at)

    story.broad_searched = False
    for needle in (*needles, *story.follow_needles(r for ids in story.related.values() for r in ids)):
        search(needle, 0)
    while pending:
        line_start = heapq.heappop(pending)
        line_end = block.find(b"\n", line_start)
        if line_end < 0:
            line_end = len(block)
        added = story.take(block[line_start:line_end].rstrip(b"\r"), out)
        for needle in story.follow_needles(added) if added else ():
            search(needle, line_end)  # the rest of the block; later blocks search for it from the start
    return out


def read_blocks(source: str, size: int = 8 << 20) -> Iterator[bytes]:
    """The file (``-``: stdin) in blocks of about *size* bytes that end at a line end."""
    stream = sys.stdin.buffer if source == "-" else open(source, "rb")  # noqa: SIM115 (closed below)
    try:
        rest = b""
        while chunk := stream.read(size):
            data = rest + chunk
            cut = data.rfind(b"\n") + 1
            rest = data[cut:]
            if cut:
                yield data[:cut]
        if rest:
            yield rest + b"\n"
    finally:
        if stream is not sys.stdin.buffer:
            stream.close()


# ---- telling it ----------------------------------------------------------------------------------------------


def _who(record: dict[str, Any], client: dict | None) -> str:
    parts = [f"uid {record.get('peer_uid')} pid {record.get('peer_pid')} gid {record.get('peer_gid')}"]
    if client is not None:
        for key, label in (("peer_program", "program"), ("peer_exe", "exe"), ("peer_unit", "unit")):
            if client.get(key):
                parts.append(f"{label} {client[key]}")
    return ", ".join(parts)


def _ids(record: dict[str, Any]) -> str:
    ids = record.get("request_ids")
    return f" (requests {', '.join(ids)})" if ids else ""


def describe(record: dict[str, Any], client: dict | None) -> str:
    """One line of the story in words; anything unforeseen as ``event key=value…``."""
    event = record.get("event", "?")
    rid = record.get("request_id")
    offer = record.get("offer_id")
    if event == "command.received":
        target = f" offer {offer}" if offer is not None else ""
        return f"request {rid} asked: {record.get('op')}{target} (ref {record.get('ref')!r}) by {_who(record, client)}"
    if event == "command.completed":
        status = f" {record['status']}" if record.get("status") else ""
        text = f" {record['text']!r}" if record.get("text") else ""
        return f"request {rid} outcome: {record.get('outcome')}{status}{text} after {record.get('latency_ms')} ms"
    if event == "command.rejected":
        return f"request {rid} rejected: {record.get('error')} {record.get('reason')!r} by {_who(record, client)}"
    if event == "frame.sent":
        return f"frame {record.get('kind')} for offer {offer} sent on link {record.get('generation')}{_ids(record)}"
    if event == "frame.dropped":
        return f"frame {record.get('kind')} for offer {offer} dropped: {record.get('reason')}{_ids(record)}"
    if event == "notification.received":
        return (f"exchange said: {record.get('type')} {record.get('status')} {record.get('text')!r} for offer "
                f"{offer}{_ids(record)}")
    if event.startswith("offer."):
        return f"book: offer {offer} {event[6:]} (status {record.get('status')}, amount {record.get('amount')}, " \
               f"rate {record.get('rate')})"
    if event == "client.connected":
        return f"client {record.get('client_id')} connected: {_who(record, record)}"
    skip = {"event", "timestamp", "level", "run", "seq", "chain"}
    rest = " ".join(f"{k}={v}" for k, v in record.items() if k not in skip)
    return f"{event} {rest}".rstrip()


def tell(matches: Iterable[tuple[dict[str, Any], bytes, dict | None]], out: Any, as_json: bool) -> int:
    count = 0
    for record, line, client in matches:
        count += 1
        if as_json:
            out.write(line.decode("utf-8", "replace") + "\n")
            continue
        run = record.get("run")
        where = f" [{run}]" if run else ""
        out.write(f"{record.get('timestamp', '?')}{where} {describe(record, client)}\n")
    return count


def show_main(args: argparse.Namespace) -> int:
    if args.offer is None and args.request is None and args.client is None and not (args.since or args.until):
        print("bfxd audit show: say what to show: --offer, --request, --client, or --since/--until",
              file=sys.stderr)
        return 2
    try:
        selection = Selection(offer=args.offer, request=args.request, client=args.client, since=args.since,
                              until=args.until)
    except ValueError as exc:
        print(f"bfxd audit show: not a time: {exc}", file=sys.stderr)
        return 2
    try:
        count = tell(select(read_blocks(args.source), selection), sys.stdout, args.json)
    except OSError as exc:
        print(f"bfxd audit show: {exc}", file=sys.stderr)
        return 2
    if count == 0:
        print("bfxd audit show: nothing matches", file=sys.stderr)
        return 1
    return 0
