"""Text in, one typed event out; or RemoteProtocolError. Nothing else is ever raised.

``decode_exchange_frame`` is the daemon's side (what the exchange sends); ``decode_client_frame`` is the
simulator's side (what a client sends), so both ends share one description of the wire. Error messages carry
a short excerpt of the offending value, never a whole frame (an auth frame holds a signature).
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from typing import Any, TypeGuard

import orjson

from bfxd.errors import RemoteProtocolError, excerpt
from bfxd.protocol.events import (
    INFO_MAINTENANCE_END,
    INFO_MAINTENANCE_START,
    INFO_RESTART,
    AuthFailed,
    AuthOk,
    AuthRequest,
    CalcInput,
    CancelOfferInput,
    ClientEvent,
    ConfAck,
    ConfRequest,
    CreditClose,
    CreditNew,
    CreditsSnapshot,
    CreditUpdate,
    ErrorEvent,
    ExchangeEvent,
    Heartbeat,
    Ignored,
    Info,
    InfoMessage,
    LoanClose,
    LoanNew,
    LoansSnapshot,
    LoanUpdate,
    MaintenanceEnded,
    MaintenanceStarted,
    NewOfferInput,
    Notification,
    OfferCancel,
    OfferNew,
    OffersSnapshot,
    OfferUpdate,
    OtherInput,
    PingEvent,
    Pong,
    ServerRestarting,
    WalletsSnapshot,
    WalletUpdate,
)
from bfxd.protocol.funding import FundingCredit, FundingLoan
from bfxd.protocol.offer import FundingOffer
from bfxd.protocol.wallet import Wallet

# Notification types whose NOTIFY_INFO is one funding offer array.
_OFFER_NOTIFICATIONS = frozenset({"fon-req", "foc-req", "fou-req"})


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):  # 1e999 is valid JSON syntax, but Python reads it as inf
        raise ValueError("number out of range")
    return value


# One decoder for every frame: json.loads with keyword arguments builds a new one per call.
_DECODER = json.JSONDecoder(parse_constant=_reject_constant, parse_float=_finite_float)
# Frames up to this size go to orjson first. A larger one (a snapshot of thousands of rows, once per link) goes
# to the json module: orjson builds a document of the whole text before the objects, several times its size,
# and malloc keeps that peak. With 10,000 credits in a snapshot that was 5 MB more RSS for good.
ORJSON_MAX_CHARS = 64 * 1024


def load_json(text: str | bytes, *, quote: bool = True, decoder: json.JSONDecoder = _DECODER) -> Any:
    """Parse strict JSON (no NaN/Infinity); any failure is a RemoteProtocolError.

    *quote* puts an excerpt of the text in the message; pass False for text that may carry a signature.
    """
    if decoder is _DECODER:
        # orjson first: a fifth of the cost, and as strict (no NaN, no Infinity, no number read as inf). What it
        # refuses goes to the json module for the verdict and the message: some of it json takes (a lone
        # surrogate escape). One difference stays: orjson reads an integer beyond 64 bits as a float, which
        # fails every id and count check, as no exchange field is that large.
        try:
            if len(text) <= ORJSON_MAX_CHARS:
                return orjson.loads(text)
        except orjson.JSONDecodeError:
            pass
        except TypeError as exc:
            raise RemoteProtocolError(f"frame is not text: {type(text).__name__}") from exc
    if isinstance(text, (bytes, bytearray)):
        # Strict UTF-8: json.loads would also take UTF-16/32 and UTF-8-encoded surrogates ("surrogatepass").
        try:
            text = bytes(text).decode("utf-8")
        except UnicodeDecodeError:
            raise RemoteProtocolError(f"frame is not valid UTF-8 ({len(text)} bytes)") from None
    try:
        return decoder.decode(text)
    except (ValueError, RecursionError) as exc:  # UnicodeDecodeError and JSONDecodeError are ValueErrors
        shown = excerpt(text) if quote else f"{len(text)} characters"
        raise RemoteProtocolError(f"frame is not valid JSON: {shown}") from None if not quote else exc
    except TypeError as exc:
        raise RemoteProtocolError(f"frame is not text: {type(text).__name__}") from exc


def _is_int(value: object) -> TypeGuard[int]:
    return isinstance(value, int) and not isinstance(value, bool)


def _opt_int(msg: dict[str, Any], key: str) -> int | None:
    value = msg.get(key)
    if value is None:
        return None
    if not _is_int(value):
        raise RemoteProtocolError(f"{key!r} should be an integer, got {excerpt(value)}")
    return value


def _opt_str(msg: dict[str, Any], key: str) -> str | None:
    value = msg.get(key)
    if value is None:
        return None
    if not isinstance(value, str):
        raise RemoteProtocolError(f"{key!r} should be a string, got {excerpt(value)}")
    return value


# ---- exchange → client -----------------------------------------------------------------------------------


def _decode_info(msg: dict[str, Any]) -> ExchangeEvent:
    code = _opt_int(msg, "code")
    text = _opt_str(msg, "msg") or ""
    if code is None:
        platform = msg.get("platform")
        status = None
        if isinstance(platform, dict):
            status = _opt_int(platform, "status")
        elif platform is not None:
            raise RemoteProtocolError(f"'platform' should be an object, got {excerpt(platform)}")
        return Info(version=_opt_int(msg, "version"), server_id=_opt_str(msg, "serverId"), platform_status=status)
    special: dict[int, type[ServerRestarting | MaintenanceStarted | MaintenanceEnded]] = {
        INFO_RESTART: ServerRestarting,
        INFO_MAINTENANCE_START: MaintenanceStarted,
        INFO_MAINTENANCE_END: MaintenanceEnded,
    }
    kind = special.get(code)
    return kind(message=text) if kind is not None else InfoMessage(code=code, message=text)


def _decode_auth(msg: dict[str, Any]) -> ExchangeEvent:
    status = msg.get("status")
    if status == "OK":
        caps = msg.get("caps")
        return AuthOk(
            user_id=_opt_int(msg, "userId"),
            auth_id=_opt_str(msg, "auth_id"),
            caps=caps if isinstance(caps, dict) else {},
        )
    if status == "FAILED":
        return AuthFailed(code=_opt_int(msg, "code"), message=_opt_str(msg, "msg") or "")
    raise RemoteProtocolError(f"auth event with unknown status {excerpt(status)}")


_EVENT_DECODERS: dict[str, Callable[[dict[str, Any]], ExchangeEvent]] = {
    "info": _decode_info,
    "auth": _decode_auth,
    "conf": lambda m: ConfAck(status=_opt_str(m, "status"), flags=_opt_int(m, "flags")),
    "error": lambda m: ErrorEvent(code=_opt_int(m, "code"), message=_opt_str(m, "msg") or ""),
    "pong": lambda m: Pong(cid=_opt_int(m, "cid"), ts=_opt_int(m, "ts")),
    # Public-channel bookkeeping bfxd never asks for; accepted so a shared connection does not error.
    "subscribed": lambda m: Ignored(chan_id=-1, kind="subscribed"),
    "unsubscribed": lambda m: Ignored(chan_id=-1, kind="unsubscribed"),
}


def _decode_notification(payload: Any) -> Notification:
    if not isinstance(payload, list) or len(payload) < 8:
        raise RemoteProtocolError(f"notification should be an array of 8 or more fields: {excerpt(payload)}")
    mts, kind, message_id, _, info, code, status, text = payload[:8]
    if not isinstance(kind, str):
        raise RemoteProtocolError(f"notification type should be a string, got {excerpt(kind)}")
    if mts is not None and not _is_int(mts):
        raise RemoteProtocolError(f"notification time should be an integer, got {excerpt(mts)}")
    if code is not None and not _is_int(code):
        raise RemoteProtocolError(f"notification code should be an integer, got {excerpt(code)}")
    if status is not None and not isinstance(status, str):
        raise RemoteProtocolError(f"notification status should be a string, got {excerpt(status)}")
    if text is not None and not isinstance(text, str):
        raise RemoteProtocolError(f"notification text should be a string, got {excerpt(text)}")
    offer = None
    if kind in _OFFER_NOTIFICATIONS and isinstance(info, list):
        try:
            offer = FundingOffer.from_wire(info, lenient=True)
        except RemoteProtocolError:
            # The notification itself is sound; an odd NOTIFY_INFO (as ERROR answers may carry) must not
            # lose it. Without an offer, the daemon correlates it by order (see actors/account.py).
            offer = None
    return Notification(mts=mts, type=kind, message_id=message_id, notify_info=info, code=code, status=status,
                        text=text, offer=offer)


def _decode_snapshot(payload: Any) -> OffersSnapshot:
    if not isinstance(payload, list):
        raise RemoteProtocolError(f"fos payload should be an array, got {excerpt(payload)}")
    return OffersSnapshot(offers=tuple(FundingOffer.from_wire(row) for row in payload))


def _rows(kind: str, payload: Any, decode_row: Callable[[Any], Any]) -> tuple[tuple[Any, ...], tuple[str, ...]]:
    """The rows of a wallets/credits/loans snapshot that decode, and why each other row was skipped."""
    if not isinstance(payload, list):
        raise RemoteProtocolError(f"{kind} payload should be an array, got {excerpt(payload)}")
    good, skipped = [], []
    for index, row in enumerate(payload):
        try:
            good.append(decode_row(row))
        except RemoteProtocolError as exc:
            skipped.append(f"row {index}: {exc}")
    return tuple(good), tuple(skipped)


def _decode_wallets(payload: Any) -> WalletsSnapshot:
    wallets, skipped = _rows("ws", payload, Wallet.from_wire)
    return WalletsSnapshot(wallets=wallets, skipped=skipped)


def _decode_credits(payload: Any) -> CreditsSnapshot:
    credits, skipped = _rows("fcs", payload, FundingCredit.from_wire)
    return CreditsSnapshot(credits=credits, skipped=skipped)


def _decode_loans(payload: Any) -> LoansSnapshot:
    loans, skipped = _rows("fls", payload, FundingLoan.from_wire)
    return LoansSnapshot(loans=loans, skipped=skipped)


_ACCOUNT_DECODERS: dict[str, Callable[[Any], ExchangeEvent]] = {
    "fos": _decode_snapshot,
    "fon": lambda p: OfferNew(offer=FundingOffer.from_wire(p)),
    "fou": lambda p: OfferUpdate(offer=FundingOffer.from_wire(p)),
    "foc": lambda p: OfferCancel(offer=FundingOffer.from_wire(p)),
    "n": _decode_notification,
    "ws": _decode_wallets,
    "wu": lambda p: WalletUpdate(wallet=Wallet.from_wire(p)),
    "fcs": _decode_credits,
    "fcn": lambda p: CreditNew(credit=FundingCredit.from_wire(p)),
    "fcu": lambda p: CreditUpdate(credit=FundingCredit.from_wire(p)),
    "fcc": lambda p: CreditClose(credit=FundingCredit.from_wire(p)),
    "fls": _decode_loans,
    "fln": lambda p: LoanNew(loan=FundingLoan.from_wire(p)),
    "flu": lambda p: LoanUpdate(loan=FundingLoan.from_wire(p)),
    "flc": lambda p: LoanClose(loan=FundingLoan.from_wire(p)),
}


def decode_exchange_frame(text: str | bytes) -> ExchangeEvent:
    """Turn one WebSocket message from the exchange into one event; raise RemoteProtocolError if unusable."""
    return decode_exchange_message(load_json(text))


def decode_exchange_message(msg: Any) -> ExchangeEvent:
    """Like ``decode_exchange_frame`` for an already parsed JSON value."""
    if isinstance(msg, dict):
        name = msg.get("event")
        decoder = _EVENT_DECODERS.get(name) if isinstance(name, str) else None
        if decoder is None:
            raise RemoteProtocolError(f"unexpected event {excerpt(name)}")
        return decoder(msg)
    if isinstance(msg, list) and len(msg) >= 2 and _is_int(msg[0]):
        chan_id, kind = msg[0], msg[1]
        if kind == "hb":
            return Heartbeat(chan_id=chan_id)
        if chan_id == 0:
            if not isinstance(kind, str):
                raise RemoteProtocolError(f"account message type should be a string, got {excerpt(kind)}")
            decoder = _ACCOUNT_DECODERS.get(kind)
            if decoder is None:
                return Ignored(chan_id=0, kind=kind)
            if len(msg) < 3:
                raise RemoteProtocolError(f"account message {kind!r} has no payload")
            return decoder(msg[2])
        # Public channels carry data arrays in place of a type: not ours, not an error.
        return Ignored(chan_id=chan_id, kind=kind if isinstance(kind, str) else "data")
    raise RemoteProtocolError(f"unrecognised frame shape: {excerpt(msg)}")


# ---- client → exchange (the simulator's side) -----------------------------------------------------------


def _decode_auth_request(msg: dict[str, Any]) -> AuthRequest:
    fields = {}
    for key in ("apiKey", "authSig", "authNonce", "authPayload"):
        value = msg.get(key)
        if _is_int(value) and key == "authNonce":
            value = str(value)  # some clients send the nonce as a number
        if not isinstance(value, str):
            raise RemoteProtocolError(f"auth request field {key!r} missing or not a string")
        fields[key] = value
    raw_filter = msg.get("filter")
    if raw_filter is not None and not (isinstance(raw_filter, list) and all(isinstance(f, str) for f in raw_filter)):
        raise RemoteProtocolError("auth request 'filter' should be a list of strings")
    return AuthRequest(
        api_key=fields["apiKey"], signature=fields["authSig"], nonce=fields["authNonce"],
        payload=fields["authPayload"], filter=tuple(raw_filter) if raw_filter is not None else None,
        dms=_opt_int(msg, "dms"),
    )


def _decode_new_offer(payload: Any) -> NewOfferInput:
    if not isinstance(payload, dict):
        raise RemoteProtocolError(f"fon input payload should be an object, got {excerpt(payload)}")
    try:
        return NewOfferInput(
            type=str(payload["type"]), symbol=str(payload["symbol"]), amount=str(payload["amount"]),
            rate=str(payload["rate"]), period=int(payload["period"]), flags=int(payload.get("flags") or 0),
        )
    except (KeyError, TypeError, ValueError, OverflowError) as exc:
        raise RemoteProtocolError(f"fon input payload is incomplete: {excerpt(payload)}") from exc


def _decode_calc(payload: Any) -> CalcInput:
    """``[["wallet_funding_USD"], ["balance"], …]``: each request is a one-string array (docs "Calc")."""
    if not isinstance(payload, list) or not all(
        isinstance(r, list) and len(r) == 1 and isinstance(r[0], str) for r in payload
    ):
        raise RemoteProtocolError(f"calc input payload should be a list of [KEY] arrays: {excerpt(payload)}")
    return CalcInput(requests=tuple(r[0] for r in payload))


def decode_client_frame(text: str | bytes) -> ClientEvent:
    """Turn one message a client sent to the exchange into one event (used by the simulator)."""
    msg = load_json(text, quote=False)  # an auth request carries a signature: never quote it
    if isinstance(msg, dict):
        name = msg.get("event")
        if name == "auth":
            return _decode_auth_request(msg)
        if name == "ping":
            return PingEvent(cid=msg.get("cid"))
        if name == "conf":
            flags = _opt_int(msg, "flags")
            return ConfRequest(flags=flags or 0)
        raise RemoteProtocolError(f"unexpected event {excerpt(name)}")
    on_account = isinstance(msg, list) and len(msg) >= 4 and _is_int(msg[0]) and msg[0] == 0
    if on_account and isinstance(msg[1], str):
        kind, payload = msg[1], msg[3]
        if kind == "foc":
            offer_id = payload.get("id") if isinstance(payload, dict) else None
            return CancelOfferInput(offer_id=offer_id if _is_int(offer_id) else None)
        if kind == "fon":
            return _decode_new_offer(payload)
        if kind == "calc":
            return _decode_calc(payload)
        return OtherInput(kind=kind, payload=payload)
    raise RemoteProtocolError(f"unrecognised input shape: {excerpt(msg)}")
