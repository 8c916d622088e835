"""The requests of the local socket protocol: one frozen type per op, and ``parse_request``.

``parse_request`` turns one line into a typed request or raises ``RequestRejected`` carrying the error type and
whatever ``op``/``ref`` could be read, so the answer can still echo them.

Validation rules: the line is UTF-8 JSON (no NaN/Infinity) holding an object; ``op`` is a string; ``ref``, when
given, is a string of at most 256 characters or an integer within ±(2**53 - 1); ``id`` is a positive integer
no larger than 2**53 - 1 (floats such as 5.0 and booleans are refused); ``timeout`` is a positive finite number
of seconds, at most 3600; ``deadline`` is an absolute time (UNIX seconds, wall clock); ``symbol`` is a funding
symbol such as ``fUSD``; the fields of a new offer follow ``offer_fields``. Numbers with a fraction are read as
``Decimal``, so an amount given as a JSON number is carried exactly. Fields the op does not use are ignored, so
clients can be newer than the daemon.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable
from decimal import Decimal
from typing import Any, TypeGuard

import attrs

from bfxd.errors import RemoteProtocolError, excerpt
from bfxd.protocol import offer_fields
from bfxd.protocol.client_wire import BAD_REQUEST, UNKNOWN_OP, Ref, RequestRejected
from bfxd.protocol.decode import load_json

MAX_SAFE_INT = 2**53 - 1
MAX_REF_CHARS = 256
MAX_TIMEOUT_S = 3600.0
_SYMBOL = re.compile(r"f[A-Za-z0-9:]{1,15}")


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


# Fractions as Decimal: an amount or rate given as a JSON number reaches the exchange exactly as written.
_DECODER = json.JSONDecoder(parse_constant=_reject_constant, parse_float=Decimal)


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
    timeout: float | None = None
    deadline: float | None = None
    op = "offers"


@attrs.frozen
class CancelRequest:
    offer_id: int
    ref: Ref = None
    timeout: float | None = None
    deadline: float | None = None
    op = "cancel"


@attrs.frozen
class CancelAllRequest:
    ref: Ref = None
    symbol: str | None = None
    timeout: float | None = None
    deadline: float | None = None
    op = "cancel_all"


@attrs.frozen
class SubmitRequest:
    """A new funding offer; *amount* and *rate* are the decimal text that goes to the exchange."""

    symbol: str
    amount: str
    rate: str
    period: int
    type: str = "LIMIT"
    flags: int = 0
    ref: Ref = None
    timeout: float | None = None
    deadline: float | None = None
    op = "submit"


@attrs.frozen
class ReplaceRequest:
    """Cancel offer *offer_id*, then submit it again with the given fields changed."""

    offer_id: int
    amount: str | None = None
    rate: str | None = None
    period: int | None = None
    type: str | None = None
    ref: Ref = None
    timeout: float | None = None
    deadline: float | None = None
    op = "replace"


@attrs.frozen
class WatchRequest:
    ref: Ref = None
    op = "watch"


Request = (PingRequest | HelloRequest | StatusRequest | OffersRequest | CancelRequest | CancelAllRequest
           | SubmitRequest | ReplaceRequest | WatchRequest)


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
    if (isinstance(value, bool) or not isinstance(value, (int, float, Decimal)) or not 0 < value <= MAX_TIMEOUT_S
            or not math.isfinite(value)):
        raise RequestRejected(BAD_REQUEST, f"'timeout' must be a number of seconds in (0, {MAX_TIMEOUT_S:g}], "
                              f"got {excerpt(value, 40)}")
    return float(value)


def _deadline(msg: dict[str, Any]) -> float | None:
    value = msg.get("deadline")
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, Decimal)) or not 0 < value < 2**40:
        raise RequestRejected(BAD_REQUEST, "'deadline' must be a time in UNIX seconds (wall clock), got "
                              f"{excerpt(value, 40)}")
    return float(value)


def _field(parse: Callable[[object], Any], msg: dict[str, Any], name: str, default: Any = None) -> Any:
    """One offer field through its ``offer_fields`` rule; absent (or null) gives *default*."""
    value = msg.get(name)
    if value is None:
        return default
    try:
        return parse(value)
    except offer_fields.FieldError as exc:
        raise RequestRejected(BAD_REQUEST, exc.message) from None


def _required(parse: Callable[[object], Any], msg: dict[str, Any], name: str) -> Any:
    if msg.get(name) is None:
        raise RequestRejected(BAD_REQUEST, f"'{name}' is required")
    return _field(parse, msg, name)


def _submit(m: dict[str, Any], ref: Ref) -> SubmitRequest:
    symbol = _symbol(m)
    if symbol is None:
        raise RequestRejected(BAD_REQUEST, "'symbol' is required (a funding symbol such as \"fUSD\")")
    return SubmitRequest(symbol=symbol, amount=_required(offer_fields.amount, m, "amount"),
                         rate=_required(offer_fields.rate, m, "rate"),
                         period=_required(offer_fields.period, m, "period"),
                         type=_field(offer_fields.offer_type, m, "type", "LIMIT"),
                         flags=_field(offer_fields.flags, m, "flags", 0),
                         ref=ref, timeout=_timeout(m), deadline=_deadline(m))


def _replace(m: dict[str, Any], ref: Ref) -> ReplaceRequest:
    request = ReplaceRequest(offer_id=_offer_id(m), amount=_field(offer_fields.amount, m, "amount"),
                             rate=_field(offer_fields.rate, m, "rate"),
                             period=_field(offer_fields.period, m, "period"),
                             type=_field(offer_fields.offer_type, m, "type"), ref=ref, timeout=_timeout(m),
                             deadline=_deadline(m))
    if (request.amount, request.rate, request.period, request.type) == (None, None, None, None):
        raise RequestRejected(BAD_REQUEST, "'replace' needs at least one of 'rate', 'amount', 'period', 'type'")
    return request


_PARSERS: dict[str, Callable[[dict[str, Any], Ref], Request]] = {
    "ping": lambda m, ref: PingRequest(ref=ref),
    "hello": lambda m, ref: HelloRequest(ref=ref),
    "status": lambda m, ref: StatusRequest(ref=ref),
    "offers": lambda m, ref: OffersRequest(ref=ref, symbol=_symbol(m), timeout=_timeout(m), deadline=_deadline(m)),
    "cancel": lambda m, ref: CancelRequest(offer_id=_offer_id(m), ref=ref, timeout=_timeout(m),
                                           deadline=_deadline(m)),
    "cancel_all": lambda m, ref: CancelAllRequest(ref=ref, symbol=_symbol(m), timeout=_timeout(m),
                                                  deadline=_deadline(m)),
    "submit": _submit,
    "replace": _replace,
    "watch": lambda m, ref: WatchRequest(ref=ref),
}
OP_NAMES = frozenset(_PARSERS)


def parse_request(line: bytes | str) -> Request:
    """Parse and validate one request line; raise RequestRejected with the error to answer."""
    try:
        msg = load_json(line, decoder=_DECODER)
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
        raise RequestRejected(UNKNOWN_OP, f"unknown op {excerpt(op, 40)}; known: {', '.join(sorted(OP_NAMES))}",
                              op=shown_op, ref=ref)
    try:
        return parser(msg, ref)
    except RequestRejected as exc:
        exc.op, exc.ref = op, ref
        raise


