"""The client's exceptions: one class per error type of the socket protocol, and a few of the client's own.

Every one is a ``BfxdError`` carrying ``type`` (the wire's error type, or the client's own for failures that
never reached the daemon), ``message``, and for ``exchange`` errors the exchange's ``status`` and ``text``.
``safe_to_retry`` says whether the request certainly had no effect, so that sending it again cannot do a thing
twice (``not_sent``, ``not_confirmed``, ``not_ready``, a refused connection...).
"""

from __future__ import annotations

TYPE_CHECKING = False  # typing costs ~10 ms to import, and bfxctl feels every one of them
if TYPE_CHECKING:
    from typing import Any


class BfxdError(Exception):
    """An error answer from bfxd, or a failure to get one. ``type`` is the wire's error type."""

    type = "error"
    safe_to_retry = False  # True only when the request surely had no effect

    def __init__(self, message: str, *, type: str | None = None, status: str | None = None,
                 text: str | None = None, answer: dict[str, Any] | None = None,
                 cancelled: Any = None, line: str = "") -> None:
        super().__init__(message)
        if type is not None:
            self.type = type
        self.message = message
        self.status = status  # the exchange's status (ERROR, FAILURE) for type "exchange"
        self.text = text  # the exchange's own text, e.g. "Offer not found"
        self.answer = answer  # the whole answer line, parsed (None for the client's own errors)
        self.cancelled = cancelled  # replace only: the old offer, cancelled before the failure (an Offer)
        self.line = line  # the answer line as the daemon sent it ("" for the client's own errors)

    def __str__(self) -> str:
        detail = f" ({self.status}: {self.text})" if self.text else ""
        return f"{self.type}: {self.message}{detail}"


# Errors the daemon answers (interface.md, CONTRACT.md).

class BadRequest(BfxdError):
    """The request was malformed (a bug in the caller or this client): nothing was done."""
    type = "bad_request"
    safe_to_retry = True


class UnknownOp(BfxdError):
    """The daemon does not know this op (it is older than this client)."""
    type = "unknown_op"
    safe_to_retry = True


class Forbidden(BfxdError):
    """This uid may not use the daemon (``socket.allowed_uids``); the daemon closed the connection."""
    type = "forbidden"
    safe_to_retry = True


class NotReady(BfxdError):
    """No authenticated exchange session before the deadline: the request was not sent to the exchange."""
    type = "not_ready"
    safe_to_retry = True


class RequestTimeout(BfxdError):
    """The frame was sent, no answer came before the deadline: the outcome is unknown."""
    type = "timeout"


class ExchangeError(BfxdError):
    """The exchange answered ERROR or FAILURE; ``status`` and ``text`` are the exchange's."""
    type = "exchange"
    safe_to_retry = True


class Busy(BfxdError):
    """The daemon has too many clients; it closed the connection before reading anything."""
    type = "busy"
    safe_to_retry = True


class ShuttingDown(BfxdError):
    """The daemon is stopping; what was already sent to the exchange has an unknown outcome."""
    type = "shutting_down"


class NotActive(BfxdError):
    """The link dropped after a cancel was sent and the offer is gone: cancelled or executed, nobody knows."""
    type = "not_active"


class NotConfirmed(BfxdError):
    """A submit's link dropped before its answer and the fresh snapshot shows no such offer: safe to retry."""
    type = "not_confirmed"
    safe_to_retry = True


class NotSent(BfxdError):
    """The request could not get its turn under the exchange's input pace before its deadline: nothing sent."""
    type = "not_sent"
    safe_to_retry = True


# The client's own: the daemon never answered.

class DaemonUnreachable(BfxdError):
    """No connection to the daemon: no socket, refused, permission denied. Nothing was sent."""
    type = "unreachable"
    safe_to_retry = True


class ConnectionLost(BfxdError):
    """The connection closed after the request was sent and before its answer: the outcome is unknown."""
    type = "connection_lost"


class NoAnswer(BfxdError):
    """No answer before the client's own deadline: the outcome is unknown."""
    type = "no_answer"


class BadAnswer(BfxdError):
    """The daemon sent a line this client cannot read (not a JSON object, too long, wrong shape)."""
    type = "bad_answer"


class ProtocolMismatch(BfxdError):
    """The daemon speaks a protocol version this client does not know. Nothing was sent but ``hello``."""
    type = "protocol_mismatch"
    safe_to_retry = True


WIRE_ERRORS: dict[str, type[BfxdError]] = {cls.type: cls for cls in (
    BadRequest, UnknownOp, Forbidden, NotReady, RequestTimeout, ExchangeError, Busy, ShuttingDown, NotActive,
    NotConfirmed, NotSent)}
CLIENT_ERRORS: dict[str, type[BfxdError]] = {cls.type: cls for cls in (
    DaemonUnreachable, ConnectionLost, NoAnswer, BadAnswer, ProtocolMismatch)}


def error_from_answer(answer: dict[str, Any], line: str = "", *, cancelled: Any = None) -> BfxdError:
    """The exception for an ``{"ok": false, "error": {...}}`` answer; an unknown type gives a plain BfxdError."""
    error = answer.get("error") if isinstance(answer.get("error"), dict) else {}
    kind = error.get("type") if isinstance(error.get("type"), str) else "error"
    message = error.get("message") if isinstance(error.get("message"), str) else ""
    status, text = error.get("status"), error.get("text")
    cls = WIRE_ERRORS.get(kind, BfxdError)
    return cls(message, type=kind, status=status if isinstance(status, str) else None,
               text=text if isinstance(text, str) else None, answer=answer, cancelled=cancelled, line=line)
