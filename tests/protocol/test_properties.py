"""Property-based tests: whatever arrives, the decoders end in an event or their documented error."""

from __future__ import annotations

import json
import os
from itertools import pairwise
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bfxd.errors import RemoteProtocolError
from bfxd.protocol.account_books import CreditBook
from bfxd.protocol.book import OfferBook
from bfxd.protocol.client_requests import OP_NAMES, Request, parse_request
from bfxd.protocol.client_wire import LineBuffer, RequestRejected, answer_line, rejection_line
from bfxd.protocol.decode import (
    ORJSON_MAX_CHARS,
    decode_client_frame,
    decode_exchange_frame,
    decode_exchange_message,
    load_json,
)
from bfxd.protocol.encode import offer_frame, offers_snapshot_frame
from bfxd.protocol.events import (
    ClientEvent,
    CreditClose,
    CreditNew,
    CreditsSnapshot,
    CreditUpdate,
    ExchangeEvent,
    OfferNew,
    OffersSnapshot,
)
from bfxd.protocol.funding import FundingCredit
from bfxd.protocol.nonce import MAX_NONCE, NonceSource
from bfxd.protocol.offer import FundingOffer
from bfxd.protocol.sequence import SequenceCheck, sequence_numbers

pytestmark = pytest.mark.fuzz

FUZZ = settings(
    max_examples=int(os.environ.get("BFXD_FUZZ_EXAMPLES", 200)),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)

# ---- strategies ------------------------------------------------------------------------------------------

# Text including lone surrogates, which JSON can carry as "\ud800" escapes.
any_text = st.text(st.characters(exclude_categories=()), max_size=12)

json_scalars = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.integers(min_value=-(2**60), max_value=2**60)
    | st.floats()  # NaN and infinities too: json.dumps writes them, the decoders must refuse them
    | any_text
)
json_values = st.recursive(
    json_scalars,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(any_text, children, max_size=4),
    max_leaves=12,
)


def _strict_json(text: str | bytes) -> Any:
    def refuse(name: str) -> Any:
        raise ValueError(name)

    return json.loads(text, parse_constant=refuse)


# Values the protocol cares about, mixed with anything.
edge_scalars = st.sampled_from([
    0, 1, -1, 2**53 - 1, 2**53, -(2**53), 10**400, 41238934, 0.0, 0.5, 5.0, 1e300, 3600, 3600.0, 3601,
    True, False, None, "", "5", "fUSD", "f" + "A" * 16, "\ud800", "x\udfff", "é", "\x00", "\u2028",
    "r" * 256, "r" * 257,
])
edge_values = edge_scalars | json_values

offer_wire_values = st.one_of(
    st.integers(min_value=-3, max_value=2**53),
    st.floats(allow_nan=False, allow_infinity=False),
    st.sampled_from(["fUSD", "ACTIVE", "CANCELED", "EXECUTED at 1%", "PARTIALLY FILLED", "LIMIT"]),
    st.booleans(),
    st.none(),
    json_values,
)
offer_rows = st.lists(offer_wire_values, min_size=0, max_size=24)
account_kinds = st.sampled_from(["fos", "fon", "fou", "foc", "n", "hb", "ws", "wu", "fcs", "fcn", "fcu", "fcc",
                                 "fls", "fln", "flu", "flc", "bu", "te"])
notification_payloads = st.lists(
    st.one_of(offer_wire_values, offer_rows, st.sampled_from(["foc-req", "fon-req", "fou-req", "on-req"])),
    min_size=0,
    max_size=10,
)

structured_exchange = st.one_of(
    st.tuples(st.integers(min_value=-1, max_value=3) | edge_values, account_kinds | edge_values).map(list),
    st.tuples(
        st.just(0),
        account_kinds,
        st.one_of(offer_rows, st.lists(offer_rows, max_size=3), notification_payloads, json_values),
    ).map(list),
    st.fixed_dictionaries(
        {"event": st.sampled_from(["info", "auth", "conf", "error", "pong", "subscribed", "nope"]) | edge_values},
        optional={
            "code": edge_values | st.sampled_from([20051, 20060, 20061, 10114]),
            "msg": edge_values,
            "status": edge_values | st.sampled_from(["OK", "FAILED"]),
            "platform": edge_values | st.fixed_dictionaries({}, optional={"status": edge_values}),
            "version": edge_values,
            "serverId": edge_values,
            "userId": edge_values,
            "auth_id": edge_values,
            "caps": edge_values,
            "flags": edge_values,
            "cid": edge_values,
            "ts": edge_values,
        },
    ),
)

structured_client = st.one_of(
    st.tuples(
        st.just(0) | edge_values,
        st.sampled_from(["foc", "fon", "calc", "oc", "on"]) | edge_values,
        edge_values,
        st.fixed_dictionaries(
            {},
            optional={k: edge_values for k in ("id", "type", "symbol", "amount", "rate", "period", "flags")},
        )
        | edge_values,
    ).map(list),
    st.fixed_dictionaries(
        {"event": st.sampled_from(["auth", "ping", "conf", "subscribe"]) | edge_values},
        optional={
            k: edge_values | st.text(max_size=8)
            for k in ("apiKey", "authSig", "authNonce", "authPayload", "filter", "dms", "cid", "flags")
        },
    ),
)

# Mostly well-formed requests with one or more fields drawn from edge cases, so the checks past the first
# field (id before timeout, symbol) and the echo of odd but valid refs are reached often.
request_ops = st.sampled_from(sorted(OP_NAMES))
good_refs = st.none() | any_text | st.integers(min_value=-(2**53 - 1), max_value=2**53 - 1)
good_ids = st.integers(min_value=1, max_value=2**53 - 1)
good_timeouts = st.none() | st.floats(min_value=0.001, max_value=3600) | st.integers(min_value=1, max_value=3600)
good_symbols = st.none() | st.from_regex(r"f[A-Za-z0-9:]{1,15}", fullmatch=True)
structured_requests = st.one_of(
    st.fixed_dictionaries(
        {
            "op": request_ops,
            "ref": good_refs | edge_values,
            "id": good_ids | edge_values,
            "timeout": good_timeouts | edge_values | st.floats(),
            "symbol": good_symbols | edge_values,
        }
    ),
    st.fixed_dictionaries(
        {},
        optional={
            "op": request_ops | edge_values,
            "ref": edge_values,
            "id": edge_values,
            "timeout": edge_values | st.floats(),
            "symbol": edge_values,
        },
    ),
)


def _exchange(data: str | bytes) -> None:
    try:
        event = decode_exchange_frame(data)
    except RemoteProtocolError:
        return
    assert isinstance(event, ExchangeEvent)


def _client(data: str | bytes) -> None:
    try:
        event = decode_client_frame(data)
    except RemoteProtocolError:
        return
    assert isinstance(event, ClientEvent)


def _request(data: str | bytes) -> None:
    """parse_request ends in a request or RequestRejected, and either answer encodes as strict UTF-8 JSON."""
    try:
        request = parse_request(data)
    except RequestRejected as exc:
        assert exc.error_type in ("bad_request", "unknown_op")
        line = rejection_line(exc)
    else:
        assert isinstance(request, Request)
        line = answer_line(request.op, request.ref)
    assert line.endswith(b"\n") and line.count(b"\n") == 1
    answer = _strict_json(line.decode("utf-8"))
    assert isinstance(answer, dict)


def _dumps(value: Any) -> str:
    return json.dumps(value)  # NaN and Infinity are written as such, on purpose


# ---- any input -------------------------------------------------------------------------------------------


class TestAnyInput:
    @FUZZ
    @given(json_values)
    def test_any_json_value(self, value: Any) -> None:
        """Any JSON value, parsed, as text or as bytes, gives an event or the documented error in every decoder."""
        try:
            assert isinstance(decode_exchange_message(value), ExchangeEvent)
        except RemoteProtocolError:
            pass
        check = SequenceCheck()
        for _ in range(2):  # once as a start, once against it
            assert check.feed(sequence_numbers(value)).status in ("ok", "no-number", "gap")
        for text in (json.dumps(value), json.dumps(value, ensure_ascii=False)):
            for data in (text, text.encode("utf-8", "surrogatepass")):  # lone surrogates: not valid UTF-8
                _exchange(data)
                _client(data)
                _request(data)

    @FUZZ
    @given(st.binary(max_size=200))
    def test_any_bytes(self, data: bytes) -> None:
        """Any byte string gives an event or the documented error in all three decoders."""
        _exchange(data)
        _client(data)
        _request(data)

    @FUZZ
    @given(any_text)
    def test_any_text(self, text: str) -> None:
        """Any text, lone surrogates included, gives an event or the documented error in all three decoders."""
        _exchange(text)
        _client(text)
        _request(text)


class TestShapedInput:
    @FUZZ
    @given(structured_exchange)
    def test_exchange_shaped(self, value: Any) -> None:
        """Frames shaped like the exchange's (known kinds, fuzzed fields) decode or raise RemoteProtocolError."""
        _exchange(_dumps(value))

    @FUZZ
    @given(structured_client)
    def test_client_shaped(self, value: Any) -> None:
        """Frames shaped like a client's inputs decode or raise RemoteProtocolError."""
        _client(_dumps(value))

    @FUZZ
    @given(structured_requests)
    def test_request_shaped(self, value: Any) -> None:
        """Request-shaped objects with fuzzed fields parse or are rejected, and the answer always encodes."""
        _request(_dumps(value))


# Each request field, with the fields before it valid, so the value reaches that field's own check.
FIELD_PROBES = [
    ("ref", {"op": "ping"}),
    ("id", {"op": "cancel"}),
    ("timeout", {"op": "cancel", "id": 1}),
    ("timeout", {"op": "cancel_all"}),
    ("symbol", {"op": "offers"}),
    ("symbol", {"op": "cancel_all"}),
    ("op", {}),
]


class TestRequestFields:
    @FUZZ
    @given(edge_values)
    def test_every_field_with_any_value(self, value: Any) -> None:
        """Any value in any request field is accepted or rejected as bad_request/unknown_op, never a crash."""
        for field, base in FIELD_PROBES:
            _request(_dumps({**base, field: value}))


# ---- valid offers round-trip ---------------------------------------------------------------------------

numbers = st.integers(min_value=-(2**53), max_value=2**53) | st.floats(allow_nan=False, allow_infinity=False)
optional_bools = st.none() | st.booleans()
statuses = st.sampled_from(
    ["ACTIVE", "PARTIALLY FILLED", "PARTIALLY FILLED at 0.02% (1.0)", "EXECUTED at 0.02% (500.0)", "CANCELED"]
) | st.text(max_size=30)

valid_offers = st.builds(
    FundingOffer,
    id=st.integers(min_value=1, max_value=2**53 - 1),
    symbol=st.text(max_size=12),
    mts_created=st.none() | st.integers(min_value=0, max_value=2**53),
    mts_updated=st.none() | st.integers(min_value=0, max_value=2**53),
    amount=st.none() | numbers,
    amount_orig=st.none() | numbers,
    type=st.none() | st.sampled_from(["LIMIT", "FRRDELTAVAR", "FRRDELTAFIX"]) | st.text(max_size=12),
    flags=st.none() | st.integers(min_value=0, max_value=2**31),
    status=statuses,
    rate=st.none() | numbers,
    period=st.none() | st.integers(min_value=2, max_value=120),
    notify=optional_bools,
    hidden=optional_bools,
    renew=optional_bools,
)


def _field_values(offer: FundingOffer) -> list[Any]:
    return list(offer.to_json().values())


class TestOfferRoundTrip:
    @FUZZ
    @given(valid_offers, st.booleans())
    def test_round_trips(self, offer: FundingOffer, bool_as_int: bool) -> None:
        """Any valid offer survives to_wire/from_wire and the fon frame (types included), and to_json is strict."""
        assert FundingOffer.from_wire(offer.to_wire(bool_as_int=bool_as_int)) == offer
        event = decode_exchange_frame(offer_frame("fon", offer, bool_as_int=bool_as_int))
        assert event == OfferNew(offer=offer)
        assert isinstance(event, OfferNew)
        assert [type(v) for v in _field_values(event.offer)] == [type(v) for v in _field_values(offer)]
        assert _strict_json(json.dumps(offer.to_json(), allow_nan=False)) == offer.to_json()

    @FUZZ
    @given(st.lists(valid_offers, max_size=3))
    def test_snapshot_frames(self, offers: list[FundingOffer]) -> None:
        """Any list of valid offers survives a fos snapshot frame."""
        assert decode_exchange_frame(offers_snapshot_frame(offers)) == OffersSnapshot(offers=tuple(offers))


# ---- framing, nonces, the book -------------------------------------------------------------------------


class TestLineBufferProperty:
    @FUZZ
    @given(
        st.lists(st.binary(max_size=40).map(lambda b: b.replace(b"\n", b"")), max_size=10),
        st.lists(st.integers(min_value=1, max_value=50), min_size=1, max_size=30),
    )
    def test_any_split_gives_the_same_lines(self, lines: list[bytes], cuts: list[int]) -> None:
        """However a stream of short lines is cut into chunks, the same lines come out in order."""
        stream = b"".join(line + b"\n" for line in lines)
        buf, out, pos, i = LineBuffer(), [], 0, 0
        while pos < len(stream):
            size = cuts[i % len(cuts)]
            buf.feed(stream[pos : pos + size])
            pos, i = pos + size, i + 1
            while (line := buf.next_line()) is not None:
                out.append(line)
        assert out == lines
        assert buf.pending == 0


class TestNonceProperty:
    @FUZZ
    @given(st.lists(st.integers(min_value=0, max_value=2**52), min_size=1, max_size=30))
    def test_strictly_increasing_whatever_the_clock(self, clock: list[int]) -> None:
        """Nonces strictly increase and are never below the clock reading they were issued at."""
        source = NonceSource()
        issued = [source.next(now) for now in clock]
        assert all(a < b for a, b in pairwise(issued))
        assert all(n >= now for n, now in zip(issued, clock, strict=True))
        assert issued[-1] <= MAX_NONCE


class TestBookProperty:
    @FUZZ
    @given(
        st.lists(
            st.tuples(
                st.sampled_from(["fos", "fon", "fou", "foc"]),
                st.lists(st.tuples(st.integers(1, 6), st.sampled_from(["ACTIVE", "CANCELED", "PARTIALLY FILLED"])),
                         min_size=1, max_size=4),
            ),
            max_size=15,
        )
    )
    def test_book_holds_exactly_the_live_offers(self, steps: list[tuple[str, list[tuple[int, str]]]]) -> None:
        """After any sequence of updates the book holds exactly the offers a simple model says are live (an offer
        once gone stays gone until a snapshot lists it again)."""
        book, model, closed = OfferBook(), {}, set()
        for kind, rows in steps:
            offers = [FundingOffer(id=i, symbol="fUSD", status=s) for i, s in rows]
            frame = offers_snapshot_frame(offers) if kind == "fos" else offer_frame(kind, offers[0])
            event = decode_exchange_frame(frame)
            book.apply(event)  # type: ignore[arg-type]
            if kind == "fos":
                model = {o.id: o for o in offers if o.status != "CANCELED"}
                closed -= set(model)
            elif kind == "foc" or offers[0].status == "CANCELED":
                model.pop(offers[0].id, None)
                closed.add(offers[0].id)
            elif offers[0].id not in closed:
                model[offers[0].id] = offers[0]
        assert book.offers() == [model[i] for i in sorted(model)]


# ---- the credit book against a model ----------------------------------------------------------------------

credit_ids = st.integers(min_value=1, max_value=6)
credit_steps = st.lists(
    st.one_of(
        st.tuples(st.sampled_from(["fcn", "fcu", "fcc"]), credit_ids),
        st.tuples(st.just("fcs"), st.frozensets(credit_ids, max_size=6)),
    ),
    max_size=30,
)


def _credit(credit_id: int, step: int) -> FundingCredit:
    return FundingCredit(id=credit_id, symbol="fUSD", status="ACTIVE", mts_update=step)


@FUZZ
@given(credit_steps)
def test_credit_book_matches_a_dict(steps: list[tuple[str, Any]]) -> None:
    """Any sequence of credit frames leaves the book holding what a plain dict model holds, and every change
    is reported with the action the model predicts (snapshot/new/update/close)."""
    book, model = CreditBook(), {}
    for step, (kind, arg) in enumerate(steps):
        if kind == "fcs":
            fresh = {i: _credit(i, step) for i in sorted(arg)}
            expected = [("close", i) for i in sorted(model) if i not in fresh] + [("snapshot", i) for i in fresh]
            changes = book.apply(CreditsSnapshot(credits=tuple(fresh.values())))
            model = fresh
        elif kind == "fcc":
            expected = [("close", arg)] if arg in model else []
            changes = book.apply(CreditClose(_credit(arg, step)))
            model.pop(arg, None)
        else:
            expected = [("update" if arg in model else "new", arg)]
            changes = book.apply((CreditNew if kind == "fcn" else CreditUpdate)(_credit(arg, step)))
            model[arg] = _credit(arg, step)
        assert [(c.action, c.credit.id) for c in changes] == expected
        assert book.credits() == [model[i] for i in sorted(model)]


# json_values, with integers the exchange could send (orjson reads one beyond 64 bits as a float: see load_json).
frame_values = st.recursive(
    st.none() | st.booleans() | st.integers(min_value=-(2**63), max_value=2**64 - 1) | st.floats() | any_text,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(any_text, children, max_size=4),
    max_leaves=12,
)


class TestLoadJson:
    @FUZZ
    @given(frame_values)
    def test_reads_what_the_json_module_reads(self, value: Any) -> None:
        """The fast path (orjson) and the json module agree: the same value, or both refuse (NaN, inf)."""
        for text in (json.dumps(value), json.dumps(value, ensure_ascii=False)):
            try:
                expected = json.loads(text, parse_constant=_refuse)
            except ValueError:
                with pytest.raises(RemoteProtocolError):
                    load_json(text)
                continue
            got = load_json(text)
            assert got == expected
            assert _types(got) == _types(expected)  # 1 and 1.0 are equal, but an id must stay an int


    def test_a_large_frame_goes_to_the_json_module(self) -> None:
        """A snapshot-sized frame skips orjson, whose peak memory malloc keeps; an integer beyond 64 bits tells
        which parser read it (orjson reads it as a float)."""
        huge = 2**70
        assert isinstance(load_json(f"[{huge}]")[0], float)  # small: orjson
        padding = "x" * ORJSON_MAX_CHARS
        assert load_json(f'[{huge},"{padding}"]')[0] == huge  # large: the json module, exact


def _refuse(name: str) -> Any:
    raise ValueError(name)


def _types(value: Any) -> Any:
    if isinstance(value, list):
        return [_types(v) for v in value]
    if isinstance(value, dict):
        return {k: _types(v) for k, v in value.items()}
    return type(value).__name__
