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
import sys
from collections import OrderedDict
from collections.abc import Iterable, Iterator
from typing import Any

import orjson

__all__ = ["Selection", "select", "show_main"]

_STAMP_KEY = b'"timestamp":"'
_ASKED_KEPT = 100_000  # requests remembered for a late join; a story rarely spans more


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

    def may_seed(self, line: bytes) -> bool:
        if self.offer_needle is not None:
            return self.offer_needle in line
        if self.request_needle is not None:
            return self.request_needle in line
        if self.client_needles:
            return any(_number_in(needle, line) for needle in self.client_needles)
        return True  # only a time window: every line in it

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


def _number_in(needle: bytes, line: bytes) -> bool:
    """*needle* (``"key":N``) in *line* as a whole number, not as the start of a longer one."""
    at = line.find(needle)
    while at >= 0:
        end = at + len(needle)
        if end >= len(line) or not line[end:end + 1].isdigit():
            return True
        at = line.find(needle, end)
    return False


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


def select(lines: Iterable[bytes], selection: Selection) -> Iterator[tuple[dict[str, Any], bytes, dict | None]]:
    """(record, raw line, the client.connected record of its client or None), in log order."""
    clients: dict[tuple[str, object], dict[str, Any]] = {}  # (run, client_id) → client.connected
    related: dict[str, set[str]] = {}  # run → request ids of the story
    # command.received of recent requests: a cancel_all is seen to touch an offer only at its frame, later
    asked: OrderedDict[tuple[str, str], tuple[dict[str, Any], bytes]] = OrderedDict()
    windowed = selection.since is not None or selection.until is not None
    for raw in lines:
        line = raw.rstrip(b"\r\n")
        if not line.startswith(b"{") and not (line.startswith(b"<") and b"{" in line[:4]):
            continue
        connected = b'"client.connected"' in line
        received = b'"command.received"' in line
        seed = selection.may_seed(line)
        follow = bool(related) and b'"request_id' in line
        if not (connected or received or seed or follow):
            continue
        if windowed:
            stamp = _stamp(line)
            if stamp is not None and ((selection.since and stamp < selection.since)
                                      or (selection.until and stamp > selection.until)):
                continue
        try:
            record = orjson.loads(line[line.index(b"{"):])
        except (orjson.JSONDecodeError, ValueError):
            continue
        if not isinstance(record, dict):
            continue
        run = str(record.get("run", ""))
        event = record.get("event")
        own = record.get("request_id")
        if event == "client.connected":
            clients[(run, record.get("client_id"))] = record
        ids = related.get(run) or set()
        seeded = seed and selection.seeds(record)
        matched = seeded or (follow and selection.may_follow(record) and (
            own in ids or any(r in ids for r in record.get("request_ids") or ())))
        if not matched:
            if event == "command.received" and isinstance(own, str):
                asked[(run, own)] = record, line
                if len(asked) > _ASKED_KEPT:
                    asked.popitem(last=False)
            continue
        # Only what matches the selection itself widens the story: a frame shared with another request does
        # not bring in that request's own story.
        for rid in (own, *(record.get("request_ids") or ())) if seeded and selection.request is None else ():
            if isinstance(rid, str) and rid not in ids:
                ids = related.setdefault(run, ids)
                ids.add(rid)
                earlier = asked.pop((run, rid), None)
                if earlier is not None:  # who asked, told before what followed
                    yield earlier[0], earlier[1], clients.get((run, earlier[0].get("client_id")))
        yield record, line, clients.get((run, record.get("client_id")))


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


def _read(source: str) -> Iterator[bytes]:
    if source == "-":
        yield from sys.stdin.buffer
        return
    with open(source, "rb") as stream:
        yield from stream


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
        count = tell(select(_read(args.source), selection), sys.stdout, args.json)
    except OSError as exc:
        print(f"bfxd audit show: {exc}", file=sys.stderr)
        return 2
    if count == 0:
        print("bfxd audit show: nothing matches", file=sys.stderr)
        return 1
    return 0
