"""Events in, text out: client frames (the daemon's inputs) and server frames (the simulator's output).

Time, nonces and ids are arguments: this module reads no clock and draws no random numbers.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Iterable, Sequence
from typing import Any

from bfxd.errors import LocalProtocolError
from bfxd.protocol.nonce import MAX_NONCE
from bfxd.protocol.offer import FundingOffer
from bfxd.secret import Secret

# What bfxd needs from the account channel: funding (offers, credits, loans) and notifications.
DEFAULT_AUTH_FILTER = ("funding", "notify")

_COMPACT = {"separators": (",", ":")}


def _dumps(value: Any) -> str:
    return json.dumps(value, **_COMPACT)  # type: ignore[arg-type]


def auth_signature(api_secret: Secret, payload: str) -> str:
    """Lowercase hex HMAC-SHA384 of *payload* keyed with the API secret."""
    return hmac.new(api_secret.reveal().encode(), payload.encode(), hashlib.sha384).hexdigest()


def auth_frame(
    api_key: Secret,
    api_secret: Secret,
    nonce: int,
    *,
    filter: Sequence[str] | None = DEFAULT_AUTH_FILTER,
    dms: int | None = None,
) -> str:
    """The auth frame. Its text holds a signature: send it, never log it."""
    if isinstance(nonce, bool) or not isinstance(nonce, int) or not 0 < nonce <= MAX_NONCE:
        raise LocalProtocolError(f"auth nonce must be an integer in [1, 2**53 - 1], got {nonce!r}")
    payload = f"AUTH{nonce}"
    frame: dict[str, Any] = {
        "event": "auth",
        "apiKey": api_key.reveal(),
        "authSig": auth_signature(api_secret, payload),
        "authNonce": str(nonce),
        "authPayload": payload,
    }
    if filter is not None:
        frame["filter"] = list(filter)
    if dms is not None:
        frame["dms"] = dms
    return _dumps(frame)


def ping_frame(cid: int) -> str:
    return _dumps({"event": "ping", "cid": cid})


def _check_offer_id(offer_id: int) -> None:
    if isinstance(offer_id, bool) or not isinstance(offer_id, int) or offer_id <= 0:
        raise LocalProtocolError(f"offer id must be a positive integer, got {offer_id!r}")


def cancel_offer_frame(offer_id: int) -> str:
    """``[0,"foc",null,{"id":ID}]``, the id as a JSON integer."""
    _check_offer_id(offer_id)
    return _dumps([0, "foc", None, {"id": offer_id}])


def new_offer_frame(*, type: str, symbol: str, amount: str, rate: str, period: int, flags: int = 0) -> str:
    """``[0,"fon",null,{…}]`` with amount and rate as strings, as the exchange expects."""
    return _dumps([0, "fon", None, {"type": type, "symbol": symbol, "amount": amount, "rate": rate,
                                    "period": period, "flags": flags}])


# ---- server side (the simulator) ------------------------------------------------------------------------


def info_frame(*, server_id: str, platform_status: int = 1, version: int = 2) -> str:
    return _dumps({"event": "info", "version": version, "serverId": server_id,
                   "platform": {"status": platform_status}})


def info_code_frame(code: int, message: str) -> str:
    return _dumps({"event": "info", "code": code, "msg": message})


def auth_ok_frame(*, user_id: int, auth_id: str, caps: dict[str, Any] | None = None) -> str:
    return _dumps({"event": "auth", "status": "OK", "chanId": 0, "userId": user_id, "auth_id": auth_id,
                   "caps": caps or {}})


def auth_failed_frame(code: int, message: str) -> str:
    return _dumps({"event": "auth", "status": "FAILED", "chanId": 0, "msg": message, "code": code})


def error_frame(code: int, message: str) -> str:
    return _dumps({"event": "error", "msg": message, "code": code})


def conf_ack_frame(flags: int) -> str:
    return _dumps({"event": "conf", "status": "OK", "flags": flags})


def pong_frame(cid: Any, ts: int) -> str:
    return _dumps({"event": "pong", "ts": ts, "cid": cid})


def heartbeat_frame(chan_id: int = 0) -> str:
    return _dumps([chan_id, "hb"])


def account_frame(kind: str, payload: Any) -> str:
    """Any channel-0 message ``[0, KIND, PAYLOAD]`` (wallets, credits, loans… for the simulator)."""
    return _dumps([0, kind, payload])


def offers_snapshot_frame(offers: Iterable[FundingOffer], *, bool_as_int: bool = True) -> str:
    return account_frame("fos", [o.to_wire(bool_as_int=bool_as_int) for o in offers])


def offer_frame(kind: str, offer: FundingOffer, *, bool_as_int: bool = True) -> str:
    """``fon`` / ``fou`` / ``foc`` with one offer array."""
    if kind not in ("fon", "fou", "foc"):
        raise LocalProtocolError(f"not an offer update kind: {kind!r}")
    return account_frame(kind, offer.to_wire(bool_as_int=bool_as_int))


def notification_frame(
    *,
    mts: int,
    type: str,
    status: str,
    text: str,
    notify_info: Any = None,
    code: int | None = None,
    message_id: Any = None,
) -> str:
    """``[0,"n",[MTS,TYPE,MESSAGE_ID,null,NOTIFY_INFO,CODE,STATUS,TEXT]]``."""
    return account_frame("n", [mts, type, message_id, None, notify_info, code, status, text])
