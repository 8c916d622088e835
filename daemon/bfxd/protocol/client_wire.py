"""The local socket protocol (interface.md, "The socket protocol"), sans-I/O: JSON Lines in both directions.

``LineBuffer`` frames bytes into lines with a hard 64 KiB cap and O(n) scanning. ``parse_request`` turns one
line into a typed request or raises ``RequestRejected`` carrying the error type and whatever ``op``/``ref``
could be read, so the answer can still echo them. The encoders produce the answer, error and event lines.

Validation rules: the line is UTF-8 JSON (no NaN/Infinity) holding an object; ``op`` is a string; ``ref``, when
given, is a string of at most 256 characters or an integer within ±(2**53 - 1); ``id`` is a positive integer
no larger than 2**53 - 1 (floats such as 5.0 and booleans are refused); ``timeout`` is a positive finite number
of seconds, at most 3600; ``symbol`` is a funding symbol such as ``fUSD``. Fields the op does not use are
ignored, so clients can be newer than the daemon.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable
from typing import Any, TypeGuard

import attrs

from bfxd.errors import RemoteProtocolError, excerpt
from bfxd.protocol.decode import load_json

MAX_LINE = 64 * 1024
MAX_SAFE_INT = 2**53 - 1
MAX_REF_CHARS = 256
MAX_TIMEOUT_S = 3600.0
_SYMBOL = re.compile(r"f[A-Za-z0-9:]{1,15}")

# Error types (interface.md). NOT_ACTIVE is bfxd's: the connection dropped after a cancel was sent and the
# fresh snapshot no longer lists the offer, so whether our cancel or an execution removed it is unknown.
# NOT_CONFIRMED: a submit's link dropped before its answer and the fresh snapshot shows no such offer (not resent,
# safe to retry). NOT_SENT: the input never got its turn under the input pace before its deadline.
BAD_REQUEST = "bad_request"
UNKNOWN_OP = "unknown_op"
FORBIDDEN = "forbidden"
NOT_READY = "not_ready"
TIMEOUT = "timeout"
EXCHANGE = "exchange"
BUSY = "busy"
SHUTTING_DOWN = "shutting_down"
NOT_ACTIVE = "not_active"
NOT_CONFIRMED = "not_confirmed"
NOT_SENT = "not_sent"
ERROR_TYPES = (BAD_REQUEST, UNKNOWN_OP, FORBIDDEN, NOT_READY, TIMEOUT, EXCHANGE, BUSY, SHUTTING_DOWN, NOT_ACTIVE,
               NOT_CONFIRMED, NOT_SENT)

Ref = str | int | None


class LineTooLong(RemoteProtocolError):
    """A client line exceeded MAX_LINE; answer bad_request and close the connection."""


class RequestRejected(RemoteProtocolError):
    """A line that is not a valid request. Carries what is needed to answer it."""

    def __init__(self, error_type: str, message: str, *, op: str | None = None, ref: Ref = None) -> None:
        super().__init__(message)
        self.error_type = error_type
        self.message = message
        self.op = op
        self.ref = ref


@attrs.define
class LineBuffer:
    """Collects bytes and hands out complete lines (without the newline).

    Each byte is scanned for the newline once, however the input is split. A line longer than MAX_LINE raises
    LineTooLong as soon as that is certain, without waiting for its end.
    """

    _data: bytearray = attrs.field(factory=bytearray, init=False)
    _scanned: int = attrs.field(default=0, init=False)

    def feed(self, chunk: bytes) -> None:
        self._data += chunk

    def next_line(self) -> bytes | None:
        end = self._data.find(b"\n", self._scanned)
        if end == -1:
            self._scanned = len(self._data)
            if self._scanned > MAX_LINE:
                raise LineTooLong(f"line longer than {MAX_LINE} bytes")
            return None
        if end > MAX_LINE:
            raise LineTooLong(f"line longer than {MAX_LINE} bytes")
        line = bytes(self._data[:end])
        del self._data[: end + 1]
        self._scanned = 0
        return line

    @property
    def pending(self) -> int:
        """Bytes held that do not yet form a complete line."""
        return len(self._data)


@attrs.frozen
class PingRequest:
    ref: Ref = None
    op = "ping"


@attrs.frozen
class HelloRequest:
    ref: Ref = None
    op = "hello"


@attrs.frozen
class StatusRequest:
    ref: Ref = None
    op = "status"


@attrs.frozen
class OffersRequest:
    ref: Ref = None
    symbol: str | None = None
    op = "offers"


@attrs.frozen
class CancelRequest:
    offer_id: int
    ref: Ref = None
    timeout: float | None = None
    op = "cancel"


@attrs.frozen
class CancelAllRequest:
    ref: Ref = None
    symbol: str | None = None
    timeout: float | None = None
    op = "cancel_all"


@attrs.frozen
class WatchRequest:
    ref: Ref = None
    op = "watch"


Request = PingRequest | HelloRequest | StatusRequest | OffersRequest | CancelRequest | CancelAllRequest | WatchRequest


def _is_int(value: object) -> TypeGuard[int]:
    return isinstance(value, int) and not isinstance(value, bool)


def _ref(msg: dict[str, Any]) -> Ref:
    ref = msg.get("ref")
    if ref is None:
        return None
    if isinstance(ref, str) and len(ref) <= MAX_REF_CHARS:
        return ref
    if _is_int(ref) and abs(ref) <= MAX_SAFE_INT:
        return ref
    raise RequestRejected(BAD_REQUEST, f"'ref' must be a string (at most {MAX_REF_CHARS} characters) or an "
                          f"integer within ±(2**53 - 1), got {excerpt(ref, 40)}")


def _offer_id(msg: dict[str, Any]) -> int:
    if "id" not in msg:
        raise RequestRejected(BAD_REQUEST, "'id' is required")
    value = msg["id"]
    if not _is_int(value) or not 0 < value <= MAX_SAFE_INT:
        raise RequestRejected(BAD_REQUEST, f"'id' must be a positive integer up to 2**53 - 1, got {excerpt(value, 40)}")
    return value


def _symbol(msg: dict[str, Any]) -> str | None:
    value = msg.get("symbol")
    if value is None:
        return None
    if not isinstance(value, str) or not _SYMBOL.fullmatch(value):
        raise RequestRejected(BAD_REQUEST,
                              f"'symbol' must be a funding symbol such as \"fUSD\", got {excerpt(value, 40)}")
    return value


def _timeout(msg: dict[str, Any]) -> float | None:
    value = msg.get("timeout")
    if value is None:
        return None
    # The range test comes before isfinite: math.isfinite() of an integer beyond a float's range overflows.
    if (isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value <= MAX_TIMEOUT_S
            or not math.isfinite(value)):
        raise RequestRejected(BAD_REQUEST, f"'timeout' must be a number of seconds in (0, {MAX_TIMEOUT_S:g}], "
                              f"got {excerpt(value, 40)}")
    return float(value)


_PARSERS: dict[str, Callable[[dict[str, Any], Ref], Request]] = {
    "ping": lambda m, ref: PingRequest(ref=ref),
    "hello": lambda m, ref: HelloRequest(ref=ref),
    "status": lambda m, ref: StatusRequest(ref=ref),
    "offers": lambda m, ref: OffersRequest(ref=ref, symbol=_symbol(m)),
    "cancel": lambda m, ref: CancelRequest(offer_id=_offer_id(m), ref=ref, timeout=_timeout(m)),
    "cancel_all": lambda m, ref: CancelAllRequest(ref=ref, symbol=_symbol(m), timeout=_timeout(m)),
    "watch": lambda m, ref: WatchRequest(ref=ref),
}
OPS = frozenset(_PARSERS)


def parse_request(line: bytes | str) -> Request:
    """Parse and validate one request line; raise RequestRejected with the error to answer."""
    try:
        msg = load_json(line)
    except RemoteProtocolError:
        raise RequestRejected(BAD_REQUEST, "not a JSON document (UTF-8, one object per line)") from None
    if not isinstance(msg, dict):
        raise RequestRejected(BAD_REQUEST, f"a request must be a JSON object, got {type(msg).__name__}")
    op = msg.get("op")
    shown_op = op if isinstance(op, str) and len(op) <= 64 else None
    try:
        ref = _ref(msg)
    except RequestRejected as exc:
        exc.op = shown_op
        raise
    if not isinstance(op, str):
        raise RequestRejected(BAD_REQUEST, "'op' is required and must be a string", ref=ref)
    parser = _PARSERS.get(op)
    if parser is None:
        raise RequestRejected(UNKNOWN_OP, f"unknown op {excerpt(op, 40)}; known: {', '.join(sorted(OPS))}",
                              op=shown_op, ref=ref)
    try:
        return parser(msg, ref)
    except RequestRejected as exc:
        exc.op, exc.ref = op, ref
        raise


# Built once: json.dumps with options builds an encoder per call, a few µs on every answer and watch line.
_COMPACT = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False)
_COMPACT_ASCII = json.JSONEncoder(separators=(",", ":"))


def _line(obj: dict[str, Any]) -> bytes:
    text = _COMPACT.encode(obj)
    try:
        return text.encode() + b"\n"
    except UnicodeEncodeError:
        # A lone surrogate (JSON allows "\ud800", e.g. in a client's ref) has no UTF-8 form: escape it.
        return _COMPACT_ASCII.encode(obj).encode() + b"\n"


def _head(ok: bool, op: str | None, ref: Ref) -> dict[str, Any]:
    head: dict[str, Any] = {"ok": ok, "op": op}
    if ref is not None:
        head["ref"] = ref
    return head


def answer_line(op: str, ref: Ref, **fields: Any) -> bytes:
    """A successful final answer: ``{"ok": true, "op": …, "ref": …, …fields}``."""
    return _line({**_head(True, op, ref), **fields})


def error_body(error_type: str, message: str, **extra: Any) -> dict[str, Any]:
    return {"type": error_type, "message": message, **extra}


def error_line(
    op: str | None, ref: Ref, error_type: str, message: str, *, fields: dict[str, Any] | None = None, **extra: Any
) -> bytes:
    """A failed final answer: ``{"ok": false, "op": …, "ref": …, "error": {"type": …, "message": …, **extra}}``,
    with *fields* at the top level (such as a cancel's ``id`` or a cancel_all's ``results``)."""
    return _line({**_head(False, op, ref), **(fields or {}), "error": error_body(error_type, message, **extra)})


def rejection_line(exc: RequestRejected) -> bytes:
    return error_line(exc.op, exc.ref, exc.error_type, exc.message)


def event_line(event: str, **fields: Any) -> bytes:
    """A ``watch`` event line: ``{"event": "offer" | "notification" | "state" | …, …}``."""
    return _line({"event": event, **fields})
