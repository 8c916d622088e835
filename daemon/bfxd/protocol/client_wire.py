"""The local socket protocol (interface.md, "The socket protocol"), sans-I/O: JSON Lines in both directions.

``LineBuffer`` frames bytes into lines with a hard 64 KiB cap and O(n) scanning. The error types, and the
encoders of the answer, error and event lines, are here; the requests and their parsing are in
``client_requests``.
"""

from __future__ import annotations

import json
from typing import Any

import attrs
import orjson

from bfxd.errors import RemoteProtocolError

MAX_LINE = 64 * 1024

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


# Built once: json.dumps with options builds an encoder per call, a few µs on every answer and watch line.
_COMPACT = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False)
_COMPACT_ASCII = json.JSONEncoder(separators=(",", ":"))


def _line(obj: dict[str, Any]) -> bytes:
    try:  # orjson: the same compact UTF-8 JSON, a tenth of the cost (20 µs of every cancel's answer)
        return orjson.dumps(obj, option=orjson.OPT_NON_STR_KEYS | orjson.OPT_APPEND_NEWLINE)
    except TypeError:  # orjson.JSONEncodeError: a lone surrogate, an integer beyond 64 bits, another type
        pass
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
