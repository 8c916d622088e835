"""The local socket protocol: the line buffer, request validation, and the answer/error/event lines."""

from __future__ import annotations

import json
from typing import Any

import pytest

from bfxd.errors import RemoteProtocolError
from bfxd.protocol import client_wire
from bfxd.protocol.client_requests import (
    OP_NAMES,
    CancelAllRequest,
    CancelRequest,
    OffersRequest,
    PingRequest,
    StatusRequest,
    WatchRequest,
    parse_request,
)
from bfxd.protocol.client_wire import (
    MAX_LINE,
    LineBuffer,
    LineTooLong,
    RequestRejected,
    answer_line,
    error_body,
    error_line,
    event_line,
    rejection_line,
)

KIB64 = 65536


# ---- the line buffer ------------------------------------------------------------------------------------


def _drain(buf: LineBuffer) -> list[bytes]:
    lines = []
    while (line := buf.next_line()) is not None:
        lines.append(line)
    return lines


class _CountingBytearray(bytearray):
    """A bytearray that counts how many bytes find() is asked to search."""

    searched = 0

    def find(self, sub: Any, start: Any = None, end: Any = None) -> int:  # type: ignore[override]
        begin = 0 if start is None else start
        type(self).searched += len(self) - begin
        return super().find(sub, begin) if end is None else super().find(sub, begin, end)


class TestLineBuffer:
    def test_max_line_is_64_kib(self) -> None:
        """The cap is 64 KiB."""
        assert MAX_LINE == 65536

    def test_one_line(self) -> None:
        """A complete line comes out without its newline, and the buffer is then empty."""
        buf = LineBuffer()
        buf.feed(b'{"op":"ping"}\n')
        assert buf.next_line() == b'{"op":"ping"}'
        assert buf.next_line() is None
        assert buf.pending == 0

    def test_line_split_across_feeds(self) -> None:
        """A line arriving in several chunks comes out once, whole, after its newline."""
        buf = LineBuffer()
        buf.feed(b'{"op":')
        assert buf.next_line() is None
        buf.feed(b'"sta')
        assert buf.next_line() is None
        buf.feed(b'tus"}')
        assert buf.next_line() is None
        assert buf.pending == 15
        buf.feed(b"\n")
        assert buf.next_line() == b'{"op":"status"}'
        assert buf.next_line() is None

    def test_several_lines_in_one_feed(self) -> None:
        """Several lines in one chunk come out in order, and a trailing partial line waits."""
        buf = LineBuffer()
        buf.feed(b"one\ntwo\n\nthree\nfou")
        assert _drain(buf) == [b"one", b"two", b"", b"three"]
        assert buf.pending == 3
        buf.feed(b"r\n")
        assert _drain(buf) == [b"four"]

    def test_carriage_return_is_kept(self) -> None:
        """Only the newline is removed; a CR before it stays part of the line."""
        buf = LineBuffer()
        buf.feed(b"a\r\n")
        assert buf.next_line() == b"a\r"

    def test_exactly_64_kib_is_accepted(self) -> None:
        """A line of exactly 64 KiB (newline not counted) is accepted."""
        buf = LineBuffer()
        buf.feed(b"x" * KIB64)
        assert buf.next_line() is None
        buf.feed(b"\n")
        assert buf.next_line() == b"x" * KIB64

    def test_64_kib_plus_one_is_rejected_with_its_newline(self) -> None:
        """A line of 64 KiB + 1 bytes arriving with its newline raises LineTooLong."""
        buf = LineBuffer()
        buf.feed(b"x" * (KIB64 + 1) + b"\n")
        with pytest.raises(LineTooLong):
            buf.next_line()

    def test_64_kib_plus_one_is_rejected_before_the_newline(self) -> None:
        """LineTooLong comes as soon as 64 KiB + 1 bytes without a newline are held."""
        buf = LineBuffer()
        buf.feed(b"x" * KIB64)
        assert buf.next_line() is None
        buf.feed(b"x")
        with pytest.raises(LineTooLong):
            buf.next_line()

    def test_long_line_after_a_good_one(self) -> None:
        """A good line is still delivered before the over-long line that follows it is refused."""
        buf = LineBuffer()
        buf.feed(b"ok\n" + b"y" * (KIB64 + 1))
        assert buf.next_line() == b"ok"
        with pytest.raises(LineTooLong):
            buf.next_line()

    def test_the_cap_applies_per_line(self) -> None:
        """Many lines totalling more than 64 KiB in one chunk are fine."""
        buf = LineBuffer()
        line = b"z" * 1000
        buf.feed((line + b"\n") * 100)
        assert _drain(buf) == [line] * 100

    def test_line_too_long_is_a_remote_error(self) -> None:
        """LineTooLong is a RemoteProtocolError (the client was wrong)."""
        assert issubclass(LineTooLong, RemoteProtocolError)

    def test_byte_at_a_time_does_not_rescan(self) -> None:
        """Feeding one byte at a time moves the scan cursor forward instead of rescanning from the start."""
        buf = LineBuffer()
        for i, byte in enumerate(b"abcdefgh"):
            buf.feed(bytes([byte]))
            assert buf.next_line() is None
            assert buf._scanned == i + 1
        buf.feed(b"\n")
        assert buf.next_line() == b"abcdefgh"
        assert buf._scanned == 0

    def test_scanning_is_linear(self) -> None:
        """Over a whole 64 KiB line fed byte by byte, find() searches each byte about once."""
        buf = LineBuffer()
        _CountingBytearray.searched = 0
        buf._data = _CountingBytearray()
        for _ in range(KIB64):
            buf.feed(b"q")
            assert buf.next_line() is None
        buf.feed(b"\n")
        assert buf.next_line() == b"q" * KIB64
        # Quadratic rescanning would search about 2 * 10**9 bytes.
        assert _CountingBytearray.searched <= 2 * KIB64


# ---- parsing requests ---------------------------------------------------------------------------------

VALID_REQUESTS = [
    ('{"op":"ping"}', PingRequest()),
    ('{"op":"ping","ref":"abc"}', PingRequest(ref="abc")),
    ('{"op":"ping","ref":7}', PingRequest(ref=7)),
    ('{"op":"ping","ref":-7}', PingRequest(ref=-7)),
    ('{"op":"ping","ref":0}', PingRequest(ref=0)),
    ('{"op":"ping","ref":""}', PingRequest(ref="")),
    ('{"op":"ping","ref":null}', PingRequest(ref=None)),
    ('{"op":"ping","ref":9007199254740991}', PingRequest(ref=9007199254740991)),
    ('{"op":"ping","ref":-9007199254740991}', PingRequest(ref=-9007199254740991)),
    ('{"op":"ping","ref":"' + "r" * 256 + '"}', PingRequest(ref="r" * 256)),
    ('{"op":"ping","ref":"é\\u00e9"}', PingRequest(ref="éé")),
    ('{"op":"status","ref":1}', StatusRequest(ref=1)),
    ('{"op":"watch"}', WatchRequest()),
    ('{"op":"offers"}', OffersRequest()),
    ('{"op":"offers","symbol":"fUSD","ref":"x"}', OffersRequest(ref="x", symbol="fUSD")),
    ('{"op":"offers","symbol":"fUST"}', OffersRequest(symbol="fUST")),
    ('{"op":"offers","symbol":"fBTC:USD"}', OffersRequest(symbol="fBTC:USD")),
    ('{"op":"offers","symbol":"f' + "A" * 15 + '"}', OffersRequest(symbol="f" + "A" * 15)),
    ('{"op":"offers","symbol":null}', OffersRequest()),
    ('{"op":"cancel","id":41238934}', CancelRequest(offer_id=41238934)),
    ('{"op":"cancel","id":1,"ref":3}', CancelRequest(offer_id=1, ref=3)),
    ('{"op":"cancel","id":9007199254740991}', CancelRequest(offer_id=9007199254740991)),
    ('{"op":"cancel","id":5,"timeout":2}', CancelRequest(offer_id=5, timeout=2.0)),
    ('{"op":"cancel","id":5,"timeout":0.5}', CancelRequest(offer_id=5, timeout=0.5)),
    ('{"op":"cancel","id":5,"timeout":3600}', CancelRequest(offer_id=5, timeout=3600.0)),
    ('{"op":"cancel","id":5,"timeout":null}', CancelRequest(offer_id=5)),
    ('{"op":"cancel_all"}', CancelAllRequest()),
    ('{"op":"cancel_all","symbol":"fUSD","timeout":30,"ref":"all"}',
     CancelAllRequest(ref="all", symbol="fUSD", timeout=30.0)),
    # Fields the op does not use are ignored, whatever they hold.
    ('{"op":"ping","id":"x","timeout":-1,"symbol":5,"extra":[1]}', PingRequest()),
    ('{"op":"offers","id":0,"force":"x"}', OffersRequest()),
    ('{"op":"cancel","id":5,"symbol":"bad!"}', CancelRequest(offer_id=5)),
    # JSON whitespace around the object is fine.
    (' {"op" : "ping"} \r', PingRequest()),
]


class TestValidRequests:
    @pytest.mark.parametrize(("line", "expected"), VALID_REQUESTS)
    def test_parse(self, line: str, expected: object) -> None:
        """Each valid request line parses to exactly the expected request, from str or UTF-8 bytes."""
        for given in (line, line.encode()):
            request = parse_request(given)
            assert type(request) is type(expected)
            assert request == expected

    def test_timeout_is_a_float(self) -> None:
        """An integer timeout is returned as a float."""
        request = parse_request('{"op":"cancel","id":5,"timeout":2}')
        assert isinstance(request, CancelRequest)
        assert type(request.timeout) is float

    @pytest.mark.parametrize(
        ("line", "op"),
        [
            ('{"op":"ping"}', "ping"),
            ('{"op":"status"}', "status"),
            ('{"op":"offers"}', "offers"),
            ('{"op":"cancel","id":1}', "cancel"),
            ('{"op":"cancel_all"}', "cancel_all"),
            ('{"op":"watch"}', "watch"),
        ],
    )
    def test_each_request_names_its_op(self, line: str, op: str) -> None:
        """Every request type carries the op name it answers to."""
        assert parse_request(line).op == op

    def test_ops_are_the_interface_ops(self) -> None:
        """The known ops are those of interface.md, plus those the README adds (hello, metrics, the books)."""
        assert frozenset({"ping", "hello", "status", "offers", "cancel", "cancel_all", "submit", "replace",
                          "metrics", "wallets", "credits", "loans", "watch"}) == OP_NAMES


def _rejected(line: str | bytes) -> RequestRejected:
    with pytest.raises(RequestRejected) as info:
        parse_request(line)
    return info.value


BAD_REQUESTS = [
    # (line, error type, op echoed, ref echoed)
    pytest.param("", "bad_request", None, None, id="empty"),
    pytest.param("{", "bad_request", None, None, id="not-json"),
    pytest.param("op=ping", "bad_request", None, None, id="not-json-words"),
    pytest.param("{'op':'ping'}", "bad_request", None, None, id="single-quotes"),
    pytest.param('{"op":"ping"} {"op":"ping"}', "bad_request", None, None, id="two-documents"),
    pytest.param('{"op":"cancel","id":1,"timeout":NaN}', "bad_request", None, None, id="nan"),
    pytest.param('{"op":"cancel","id":1,"timeout":Infinity}', "bad_request", None, None, id="infinity"),
    pytest.param('{"op":"cancel","id":1,"timeout":-Infinity}', "bad_request", None, None, id="minus-infinity"),
    pytest.param('{"op":"cancel","id":1,"timeout":1e999}', "bad_request", "cancel", None, id="float-overflow"),
    pytest.param("[]", "bad_request", None, None, id="array"),
    pytest.param('[{"op":"ping"}]', "bad_request", None, None, id="array-of-request"),
    pytest.param('"ping"', "bad_request", None, None, id="string"),
    pytest.param("42", "bad_request", None, None, id="number"),
    pytest.param("null", "bad_request", None, None, id="null"),
    pytest.param("true", "bad_request", None, None, id="true"),
    pytest.param("{}", "bad_request", None, None, id="empty-object"),
    pytest.param('{"ref":5}', "bad_request", None, 5, id="missing-op"),
    pytest.param('{"op":null,"ref":"a"}', "bad_request", None, "a", id="op-null"),
    pytest.param('{"op":5,"ref":"a"}', "bad_request", None, "a", id="op-number"),
    pytest.param('{"op":["ping"]}', "bad_request", None, None, id="op-list"),
    pytest.param('{"op":"frobnicate","ref":9}', "unknown_op", "frobnicate", 9, id="unknown-op"),
    pytest.param('{"op":"PING"}', "unknown_op", "PING", None, id="op-case"),
    pytest.param('{"op":""}', "unknown_op", "", None, id="op-empty"),
    pytest.param('{"op":"' + "o" * 64 + '"}', "unknown_op", "o" * 64, None, id="op-64-chars"),
    pytest.param('{"op":"' + "o" * 65 + '","ref":1}', "unknown_op", None, 1, id="op-65-chars-not-echoed"),
    # ref
    pytest.param('{"op":"ping","ref":1.5}', "bad_request", "ping", None, id="ref-float"),
    pytest.param('{"op":"ping","ref":1.0}', "bad_request", "ping", None, id="ref-float-integral"),
    pytest.param('{"op":"ping","ref":true}', "bad_request", "ping", None, id="ref-true"),
    pytest.param('{"op":"ping","ref":[]}', "bad_request", "ping", None, id="ref-list"),
    pytest.param('{"op":"ping","ref":{}}', "bad_request", "ping", None, id="ref-object"),
    pytest.param('{"op":"ping","ref":"' + "r" * 257 + '"}', "bad_request", "ping", None, id="ref-257-chars"),
    pytest.param('{"op":"ping","ref":9007199254740992}', "bad_request", "ping", None, id="ref-2**53"),
    pytest.param('{"op":"ping","ref":-9007199254740992}', "bad_request", "ping", None, id="ref-minus-2**53"),
    pytest.param('{"op":"ping","ref":' + "9" * 40 + "}", "bad_request", "ping", None, id="ref-huge"),
    pytest.param('{"op":5,"ref":true}', "bad_request", None, None, id="ref-and-op-bad"),
    pytest.param('{"op":"nope","ref":true}', "bad_request", "nope", None, id="bad-ref-before-unknown-op"),
    # id
    pytest.param('{"op":"cancel","ref":1}', "bad_request", "cancel", 1, id="id-missing"),
    pytest.param('{"op":"cancel","id":null,"ref":1}', "bad_request", "cancel", 1, id="id-null"),
    pytest.param('{"op":"cancel","id":0,"ref":1}', "bad_request", "cancel", 1, id="id-0"),
    pytest.param('{"op":"cancel","id":-1,"ref":1}', "bad_request", "cancel", 1, id="id-minus-1"),
    pytest.param('{"op":"cancel","id":5.0,"ref":1}', "bad_request", "cancel", 1, id="id-5.0"),
    pytest.param('{"op":"cancel","id":5.5,"ref":1}', "bad_request", "cancel", 1, id="id-5.5"),
    pytest.param('{"op":"cancel","id":true,"ref":1}', "bad_request", "cancel", 1, id="id-true"),
    pytest.param('{"op":"cancel","id":"5","ref":1}', "bad_request", "cancel", 1, id="id-string"),
    pytest.param('{"op":"cancel","id":[5],"ref":1}', "bad_request", "cancel", 1, id="id-list"),
    pytest.param('{"op":"cancel","id":9007199254740992,"ref":1}', "bad_request", "cancel", 1, id="id-2**53"),
    pytest.param('{"op":"cancel","id":' + "9" * 400 + ',"ref":1}', "bad_request", "cancel", 1, id="id-huge"),
    # timeout
    pytest.param('{"op":"cancel","id":1,"timeout":0,"ref":"t"}', "bad_request", "cancel", "t", id="timeout-0"),
    pytest.param('{"op":"cancel","id":1,"timeout":-1,"ref":"t"}', "bad_request", "cancel", "t", id="timeout-neg"),
    pytest.param('{"op":"cancel","id":1,"timeout":3600.5,"ref":"t"}', "bad_request", "cancel", "t",
                 id="timeout-above-3600"),
    pytest.param('{"op":"cancel","id":1,"timeout":3601,"ref":"t"}', "bad_request", "cancel", "t",
                 id="timeout-3601"),
    pytest.param('{"op":"cancel","id":1,"timeout":true,"ref":"t"}', "bad_request", "cancel", "t",
                 id="timeout-true"),
    pytest.param('{"op":"cancel","id":1,"timeout":"5","ref":"t"}', "bad_request", "cancel", "t",
                 id="timeout-string"),
    pytest.param('{"op":"cancel","id":1,"timeout":' + "9" * 400 + ',"ref":"t"}', "bad_request", "cancel", "t",
                 id="timeout-huge-int"),
    pytest.param('{"op":"cancel_all","timeout":0}', "bad_request", "cancel_all", None, id="cancel-all-timeout-0"),
    # symbol
    pytest.param('{"op":"offers","symbol":"USD","ref":2}', "bad_request", "offers", 2, id="symbol-no-f"),
    pytest.param('{"op":"offers","symbol":"tBTCUSD","ref":2}', "bad_request", "offers", 2, id="symbol-trading"),
    pytest.param('{"op":"offers","symbol":"f","ref":2}', "bad_request", "offers", 2, id="symbol-f-only"),
    pytest.param('{"op":"offers","symbol":"","ref":2}', "bad_request", "offers", 2, id="symbol-empty"),
    pytest.param('{"op":"offers","symbol":"fUSD!","ref":2}', "bad_request", "offers", 2, id="symbol-punct"),
    pytest.param('{"op":"offers","symbol":"fUSD\\n","ref":2}', "bad_request", "offers", 2, id="symbol-newline"),
    pytest.param('{"op":"offers","symbol":"f' + "A" * 16 + '","ref":2}', "bad_request", "offers", 2,
                 id="symbol-too-long"),
    pytest.param('{"op":"offers","symbol":5,"ref":2}', "bad_request", "offers", 2, id="symbol-number"),
    pytest.param('{"op":"cancel_all","symbol":["fUSD"]}', "bad_request", "cancel_all", None,
                 id="cancel-all-symbol-list"),
]


class TestRejectedRequests:
    @pytest.mark.parametrize(("line", "error_type", "op", "ref"), BAD_REQUESTS)
    def test_rejection(self, line: str, error_type: str, op: str | None, ref: object) -> None:
        """Each bad line is rejected with the right error type, echoing the op and ref it could read."""
        exc = _rejected(line)
        assert (exc.error_type, exc.op, exc.ref) == (error_type, op, ref)
        assert exc.message
        assert str(exc) == exc.message

    @pytest.mark.parametrize(
        "data",
        [
            b"\xff\xfe",
            b'{"op":"ping","ref":"\xff"}',
            b'{"op":"ping","ref":"\xed\xa0\x80"}',
            b'{"op":"ping","ref":"\xc3"}',
            '{"op":"ping"}'.encode("utf-16"),
            '{"op":"ping"}'.encode("utf-32"),
        ],
        ids=["ff-fe", "invalid-in-string", "encoded-surrogate", "truncated-sequence", "utf-16", "utf-32"],
    )
    def test_not_utf8(self, data: bytes) -> None:
        """A line that is not strict UTF-8 is a bad_request."""
        exc = _rejected(data)
        assert (exc.error_type, exc.op, exc.ref) == ("bad_request", None, None)

    def test_deep_nesting_beyond_the_parser(self) -> None:
        """Nesting deeper than the JSON parser handles is a bad_request, not a RecursionError."""
        depth = 30_000  # fits in 64 KiB, far beyond the recursion limit
        exc = _rejected('{"op":"ping","ref":' + "[" * depth + "]" * depth + "}")
        assert exc.error_type == "bad_request"

    def test_deep_nesting_within_the_parser(self) -> None:
        """A deeply nested value the parser accepts is rejected as a bad ref."""
        exc = _rejected('{"op":"ping","ref":' + "[" * 500 + "]" * 500 + "}")
        assert (exc.error_type, exc.op, exc.ref) == ("bad_request", "ping", None)

    def test_unknown_op_message_lists_known_ops(self) -> None:
        """The unknown_op message names the op and lists the known ones."""
        message = _rejected('{"op":"frobnicate"}').message
        assert "frobnicate" in message
        assert ", ".join(sorted(OP_NAMES)) in message and "cancel_all" in message

    def test_messages_are_short(self) -> None:
        """A huge bad value is quoted as a short excerpt."""
        exc = _rejected('{"op":"cancel","id":"' + "x" * 10_000 + '"}')
        assert len(exc.message) < 200

    def test_rejections_are_remote_errors(self) -> None:
        """RequestRejected is a RemoteProtocolError (the client was wrong)."""
        assert isinstance(_rejected("{"), RemoteProtocolError)

    def test_error_types_are_the_interface_names(self) -> None:
        """The error type constants are spelled as in interface.md."""
        assert (
            client_wire.BAD_REQUEST, client_wire.UNKNOWN_OP, client_wire.FORBIDDEN, client_wire.NOT_READY,
            client_wire.TIMEOUT, client_wire.EXCHANGE, client_wire.BUSY, client_wire.SHUTTING_DOWN,
        ) == (
            "bad_request", "unknown_op", "forbidden", "not_ready", "timeout", "exchange", "busy",
            "shutting_down",
        )


# ---- answer, error and event lines ---------------------------------------------------------------------


class TestEncoders:
    def test_answer_line(self) -> None:
        """An answer is ok/op/ref then the fields, compact, newline-terminated."""
        assert answer_line("ping", 7) == b'{"ok":true,"op":"ping","ref":7}\n'

    def test_answer_line_with_fields(self) -> None:
        """Extra fields follow the head in the order given."""
        line = answer_line("cancel", "c1", status="SUCCESS", text="Submitted", offer={"id": 5})
        assert line == (
            b'{"ok":true,"op":"cancel","ref":"c1","status":"SUCCESS","text":"Submitted","offer":{"id":5}}\n'
        )

    def test_answer_line_without_ref(self) -> None:
        """A request without a ref gets an answer without a ref."""
        assert answer_line("status", None, status={"state": "ready"}) == (
            b'{"ok":true,"op":"status","status":{"state":"ready"}}\n'
        )

    def test_ref_zero_and_empty_are_echoed(self) -> None:
        """Falsy refs (0 and "") are still echoed."""
        assert answer_line("ping", 0) == b'{"ok":true,"op":"ping","ref":0}\n'
        assert answer_line("ping", "") == b'{"ok":true,"op":"ping","ref":""}\n'

    def test_non_ascii_is_utf8(self) -> None:
        """Non-ASCII text is written as UTF-8, not as \\u escapes."""
        assert answer_line("ping", "é") == b'{"ok":true,"op":"ping","ref":"\xc3\xa9"}\n'

    def test_lone_surrogate_ref_is_escaped(self) -> None:
        """A ref holding a lone surrogate (valid JSON escape, no UTF-8 form) is echoed as an escape."""
        request = parse_request('{"op":"ping","ref":"x\\ud800"}')
        line = answer_line(request.op, request.ref)
        assert line == b'{"ok":true,"op":"ping","ref":"x\\ud800"}\n'
        assert json.loads(line)["ref"] == "x\ud800"

    def test_values_beyond_the_fast_encoder_are_written_exactly(self) -> None:
        """An integer beyond 64 bits (a ref may be one) is written digit for digit, as the json module does."""
        big = 2**70 + 1
        assert answer_line("ping", big) == b'{"ok":true,"op":"ping","ref":%d}\n' % big
        assert json.loads(answer_line("offers", 1, offers=[{"id": big, "rate": 0.0002}]))["offers"][0]["id"] == big

    def test_floats_round_trip(self) -> None:
        """Rates and amounts read back as the same floats (orjson and json may spell an exponent differently)."""
        values = [0.0002, 1e-05, 123456789.123, -150.0, 5e-324, 1.7976931348623157e308]
        assert json.loads(answer_line("x", None, values=values))["values"] == values

    def test_error_line(self) -> None:
        """An error answer carries ok false, op, ref and the error object."""
        line = error_line("cancel", 3, "exchange", "Offer not found", status="ERROR", text="Offer not found")
        assert line == (
            b'{"ok":false,"op":"cancel","ref":3,"error":{"type":"exchange","message":"Offer not found",'
            b'"status":"ERROR","text":"Offer not found"}}\n'
        )

    def test_error_line_without_op_or_ref(self) -> None:
        """An error for a line without a readable op has op null and no ref."""
        assert error_line(None, None, "bad_request", "x") == (
            b'{"ok":false,"op":null,"error":{"type":"bad_request","message":"x"}}\n'
        )

    def test_error_line_with_top_level_fields(self) -> None:
        """fields go at the top level, between the head and the error object."""
        line = error_line("cancel", "c", "timeout", "no answer", fields={"id": 5}, pending=True)
        assert line == (
            b'{"ok":false,"op":"cancel","ref":"c","id":5,'
            b'"error":{"type":"timeout","message":"no answer","pending":true}}\n'
        )

    def test_error_body(self) -> None:
        """error_body is the error object alone."""
        assert error_body("timeout", "no answer", pending=True) == {
            "type": "timeout", "message": "no answer", "pending": True
        }

    def test_rejection_line_echoes_op_and_ref(self) -> None:
        """The answer to an unknown op echoes the op and the ref."""
        exc = _rejected('{"op":"frobnicate","ref":"r1"}')
        line = rejection_line(exc)
        assert line.startswith(b'{"ok":false,"op":"frobnicate","ref":"r1","error":{"type":"unknown_op","message":"')
        assert json.loads(line)["error"]["message"] == exc.message

    def test_rejection_line_for_a_bad_id(self) -> None:
        """The answer to a bad id is exactly the bad_request line with op and ref."""
        exc = RequestRejected("bad_request", "'id' is required", op="cancel", ref=4)
        assert rejection_line(exc) == (
            b'{"ok":false,"op":"cancel","ref":4,"error":{"type":"bad_request","message":"\'id\' is required"}}\n'
        )

    def test_event_line(self) -> None:
        """A watch event line starts with its event name and has no ok/op."""
        assert event_line("offer", action="new", offer={"id": 5}) == (
            b'{"event":"offer","action":"new","offer":{"id":5}}\n'
        )
        assert event_line("state", state="ready") == b'{"event":"state","state":"ready"}\n'

    def test_newlines_in_text_are_escaped(self) -> None:
        """Text containing newlines still produces exactly one line."""
        for line in (
            answer_line("ping", "a\nb"),
            error_line("ping", None, "bad_request", "line1\nline2"),
            event_line("notification", text="x\ny"),
        ):
            assert line.endswith(b"\n")
            assert line.count(b"\n") == 1
