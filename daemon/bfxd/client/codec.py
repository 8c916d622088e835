"""The client's sans-I/O half, shared by ``Client`` and ``AsyncClient``: request lines out, answers in.

No sockets, no clock reads except where a deadline is stamped: the blocking and the asyncio client differ only
in how they move bytes.
"""

from __future__ import annotations

import json
import os
from decimal import Decimal

from bfxd.client import errors

TYPE_CHECKING = False  # typing costs ~10 ms to import, and bfxctl feels every one of them
if TYPE_CHECKING:
    from typing import Any

    from bfxd.client import models
# bfxd.client.models is imported where a result is built, not here: dataclasses (and the inspect module it
# loads) cost tens of milliseconds, which `bfxctl status` (raw answers) must not pay.

DEFAULT_SOCKET = "/run/bfxd/bfxd.sock"
DEFAULT_TIMEOUT = 10.0  # the daemon's default request deadline (requests.timeout)
ANSWER_GRACE = 1.0  # wait this much past a request's deadline, so the daemon's own answer (saying why) comes first
MAX_LINE = 1 << 20  # an answer line (a long offers list) may be large, but not endless
MAX_TIMEOUT = 3600.0  # the daemon refuses a longer per-request timeout

PROTOCOLS = frozenset({0, 1})  # 0: a daemon older than `hello`; 1: CONTRACT.md
# What a protocol-0 daemon (no hello) serves: interface.md.
PROTOCOL_0_OPS = frozenset({"ping", "status", "offers", "cancel", "cancel_all", "watch"})
PROTOCOL_0_EVENTS = frozenset({"offer", "notification", "state", "watch_ended"})
READS = frozenset({"hello", "ping", "status", "offers", "wallets", "credits", "loans", "metrics"})


def socket_path(path: str | os.PathLike[str] | None) -> str:
    return os.fspath(path) if path is not None else os.environ.get("BFXD_SOCKET") or DEFAULT_SOCKET


def number(value: Decimal | int | str | float) -> str:
    """An amount or rate for a request, as an exact decimal string (CONTRACT.md allows strings)."""
    if isinstance(value, bool):
        raise TypeError("an amount or rate cannot be a boolean")
    if isinstance(value, float):
        value = repr(value)  # the shortest text that reads back as this float: what the caller typed
    try:
        exact = Decimal(value)
    except ArithmeticError:
        raise ValueError(f"not a decimal number: {value!r}") from None
    if not exact.is_finite():
        raise ValueError(f"not a finite number: {value!r}")
    return format(exact, "f")


def _refuse_constant(name: str) -> None:
    raise ValueError(f"{name} is not JSON")


def parse_line(line: bytes) -> tuple[dict[str, Any], str]:
    """One line from the daemon: the object (floats as Decimal) and its text. BadAnswer if unreadable."""
    try:
        text = line.decode()
        obj = json.loads(text, parse_float=Decimal, parse_constant=_refuse_constant)
    except ValueError:
        obj, text = None, ""
    if not isinstance(obj, dict):
        raise errors.BadAnswer("bfxd sent a line that is not a JSON object; outcome unknown")
    return obj, text


class LineReader:
    """Frames bytes into lines; each byte is scanned once; a line over MAX_LINE is refused as soon as seen."""

    def __init__(self) -> None:
        self._data = bytearray()
        self._scanned = 0

    def feed(self, chunk: bytes) -> None:
        self._data += chunk

    def next_line(self) -> bytes | None:
        end = self._data.find(b"\n", self._scanned)
        if end < 0:
            self._scanned = len(self._data)
            if self._scanned > MAX_LINE:
                raise errors.BadAnswer(f"bfxd sent a line over {MAX_LINE} bytes; outcome unknown")
            return None
        if end > MAX_LINE:
            raise errors.BadAnswer(f"bfxd sent a line over {MAX_LINE} bytes; outcome unknown")
        line = bytes(self._data[:end])
        del self._data[: end + 1]
        self._scanned = 0
        return line


class Batch:
    """Requests sent together on one connection, and their answers as they come, matched by ``ref``."""

    def __init__(self, requests: list[dict[str, Any]]) -> None:
        self.requests = requests
        self.refs = {r["ref"] for r in requests}
        self.answers: dict[Any, tuple[dict[str, Any], str]] = {}

    @property
    def waiting(self) -> list[dict[str, Any]]:
        return [r for r in self.requests if r["ref"] not in self.answers]

    @property
    def done(self) -> bool:
        return len(self.answers) == len(self.requests)

    def take(self, obj: dict[str, Any], text: str) -> None:
        """Record one line. An error without a ref we know (busy, forbidden: sent before any request was
        read) answers every request still waiting; event lines and strays are skipped."""
        ref = obj.get("ref")
        if "event" in obj:
            return
        if isinstance(ref, int | str) and not isinstance(ref, bool) and ref in self.refs:  # True == 1: not ours
            self.answers.setdefault(ref, (obj, text))
        elif ref is None and obj.get("ok") is False:
            for request in self.waiting:
                self.answers[request["ref"]] = (obj, text)

    def encode(self, requests: list[dict[str, Any]]) -> bytes:
        return b"".join(json.dumps(r, separators=(",", ":")).encode() + b"\n" for r in requests)


def stamp(request: dict[str, Any], deadline: float, timeout: float) -> dict[str, Any]:
    """The request with its deadline: absolute (CONTRACT.md) and, for daemons older than it, relative."""
    return {**request, "deadline": round(deadline, 3), "timeout": min(max(round(timeout, 3), 0.001), MAX_TIMEOUT)}


def hello_request(ref: int, deadline: float) -> dict[str, Any]:
    """The hello that opens a connection, stamped with what is left of the monotonic *deadline*."""
    import time

    timeout = max(deadline - time.monotonic() - ANSWER_GRACE, 0.001)
    return stamp({"op": "hello", "ref": ref}, time.time() + timeout, timeout)


def check_hello(answer: dict[str, Any], text: str) -> int:
    """The daemon's protocol version, checked: an unknown_op answer is an older daemon (protocol 0); a version
    this client does not know raises ProtocolMismatch; any other error answer raises its error."""
    if answer.get("ok") is False:
        error = errors.error_from_answer(answer, text)
        if isinstance(error, errors.UnknownOp):
            return 0
        raise error
    protocol = answer.get("protocol")
    if isinstance(protocol, bool) or not isinstance(protocol, int):
        raise errors.BadAnswer(f"hello without an integer protocol: {text[:200]}")
    if protocol not in PROTOCOLS:
        raise errors.ProtocolMismatch(
            f"bfxd {answer.get('version') or '?'} speaks protocol {protocol}; this client knows "
            f"{', '.join(map(str, sorted(PROTOCOLS)))}: upgrade the client (bfxd package) to match the daemon")
    return protocol


def hello_from(answer: dict[str, Any], text: str) -> models.Hello:
    """The daemon's hello as a Hello, checked as check_hello does."""
    from bfxd.client import models

    if check_hello(answer, text) == 0:
        return models.Hello(0, None, PROTOCOL_0_OPS, PROTOCOL_0_EVENTS, text)
    return models.Hello(answer["protocol"], answer.get("version"), frozenset(answer.get("ops") or ()),
                        frozenset(answer.get("events") or ()), text)


def result(answer: dict[str, Any], text: str, op: str) -> Any:
    """The typed result of a successful answer of *op*; the exception of a failed one is raised."""
    from bfxd.client import models

    if answer.get("ok") is not True:
        cancelled = answer.get("cancelled")
        raise errors.error_from_answer(
            answer, text, cancelled=models.Offer.from_json(cancelled) if isinstance(cancelled, dict) else None)
    try:
        if op == "status":
            return models.status_from_json(answer.get("status"), text)
        if op == "offers":
            return models.Rows((models.Offer.from_json(o) for o in _list(answer, "offers")), text)
        if op == "wallets":
            return models.Rows((models.Wallet.from_json(w) for w in _list(answer, "wallets")), text)
        if op in ("credits", "loans"):
            return models.Rows((models.Credit.from_json(c) for c in _list(answer, op)), text)
        if op == "cancel":
            return cancel_result(answer, text)
        if op == "submit":
            return models.SubmitResult(models.Offer.from_json(answer.get("offer")), answer.get("status"),
                                       answer.get("text"), text)
        if op == "replace":
            return models.ReplaceResult(models.Offer.from_json(answer.get("cancelled")),
                                        models.Offer.from_json(answer.get("offer")), answer.get("status"),
                                        answer.get("text"), text)
    except (TypeError, AttributeError) as exc:  # a field of the wrong shape
        raise errors.BadAnswer(f"unexpected {op} answer ({exc}): {text[:200]}") from None
    return answer


def _list(answer: dict[str, Any], key: str) -> list[Any]:
    value = answer.get(key)
    if not isinstance(value, list):
        raise errors.BadAnswer(f"answer without a {key!r} list")
    return value


def cancel_result(answer: dict[str, Any], text: str = "") -> models.CancelResult:
    """One cancel's outcome as a value (never raised): for cancel_many and cancel_all's results."""
    from bfxd.client import models

    offer = answer.get("offer")
    parsed = models.Offer.from_json(offer) if isinstance(offer, dict) else None
    offer_id = answer.get("id", parsed.id if parsed else None)
    if answer.get("ok") is True:
        return models.CancelResult(offer_id, True, answer.get("status"), answer.get("text"), parsed, None, text)
    return models.CancelResult(offer_id, False, None, None, parsed, errors.error_from_answer(answer, text), text)


def cancel_all_result(answer: dict[str, Any], text: str) -> models.Rows:
    from bfxd.client import models

    results = answer.get("results")
    if not isinstance(results, list):  # a request-level error (not_ready, busy...): nothing was cancelled
        if answer.get("ok") is True:
            raise errors.BadAnswer("cancel_all answer without results")
        raise errors.error_from_answer(answer, text)
    return models.Rows((cancel_result(r) for r in results if isinstance(r, dict)), text)


def show_id(value: Any) -> str:
    """An id as a person should read it: a string id quoted as a string, a number bare."""
    return json.dumps(value) if isinstance(value, str) else str(value)


def with_symbol(request: dict[str, Any], symbol: str | None) -> dict[str, Any]:
    return request if symbol is None else {**request, "symbol": symbol}


def submit_request(symbol: str, amount: Any, rate: Any, period: int, type: str, flags: int) -> dict[str, Any]:
    return {"op": "submit", "symbol": symbol, "amount": number(amount), "rate": number(rate), "period": period,
            "type": type, "flags": flags}


def replace_request(offer_id: int, rate: Any, amount: Any, period: int | None, type: str | None) -> dict[str, Any]:
    request: dict[str, Any] = {"op": "replace", "id": offer_id}
    if rate is not None:
        request["rate"] = number(rate)
    if amount is not None:
        request["amount"] = number(amount)
    if period is not None:
        request["period"] = period
    if type is not None:
        request["type"] = type
    return request


def cancel_outcome(batch: Batch, request: dict[str, Any]) -> models.CancelResult:
    from bfxd.client import models

    got = batch.answers.get(request["ref"])
    if got is None:
        lost = errors.ConnectionLost(f"bfxd closed the connection before answering the cancel of "
                                     f"{show_id(request['id'])}; outcome unknown")
        return models.CancelResult(request["id"], False, error=lost)
    answer, text = got
    outcome = cancel_result(answer, text)
    return outcome if outcome.id is not None else models.CancelResult(
        request["id"], outcome.ok, outcome.status, outcome.text, outcome.offer, outcome.error, text)
