"""Events in, text out: client frames (the daemon's inputs) and server frames (the simulator's output).

Time, nonces and ids are arguments: this module reads no clock and draws no random numbers.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Iterable, Sequence
from decimal import Decimal
from typing import Any

from bfxd.errors import LocalProtocolError
from bfxd.protocol.funding import FundingCredit, FundingLoan
from bfxd.protocol.nonce import MAX_NONCE
from bfxd.protocol.offer import FundingOffer
from bfxd.protocol.wallet import Wallet
from bfxd.secret import Secret

# What bfxd needs from the account channel (docs "Authenticated Channels" > Channel filters): ``funding`` (offers,
# credits, loans, funding trades), ``wallet`` (the ``ws``/``wu`` wallet frames, funding wallets included: no
# filter narrower than ``wallet-TYPE-CURRENCY`` exists, and the currencies are not known in advance) and
# ``notify`` (the answers to inputs).
DEFAULT_AUTH_FILTER = ("funding", "wallet", "notify")

# conf flags (docs "General" > Configuration; bitfinex-api-node ws2.js FLAGS).
FLAG_TIMESTAMP = 32768
FLAG_SEQ_ALL = 65536  # every array frame carries sequence numbers (see sequence.py)

# The "calc" input (docs changelog, "calc" input message): "Websocket server allows up to 30 calculations per
# batch [...] performs a maximum of 8 calculations per second (per client)". The Node client throttles its calc
# sends to one per 1000/8 ms (ws2.js MAX_CALC_OPS).
MAX_CALC_REQUESTS = 30
CALCS_PER_SECOND = 8

# Built once: json.dumps with options builds an encoder per call.
_ENCODER = json.JSONEncoder(separators=(",", ":"))


def _dumps(value: Any) -> str:
    return _ENCODER.encode(value)


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


def conf_frame(flags: int) -> str:
    """``{"event":"conf","flags":N}``; ``FLAG_SEQ_ALL`` turns on sequence numbers."""
    if isinstance(flags, bool) or not isinstance(flags, int) or flags < 0:
        raise LocalProtocolError(f"conf flags must be a non-negative integer, got {flags!r}")
    return _dumps({"event": "conf", "flags": flags})


def calc_frame(requests: Sequence[str]) -> str:
    """``[0,"calc",null,[["wallet_funding_USD"],…]]``: 1 to MAX_CALC_REQUESTS keys (``wallet.calc_request``)."""
    if isinstance(requests, str) or not 0 < len(requests) <= MAX_CALC_REQUESTS:
        raise LocalProtocolError(f"a calc input carries 1 to {MAX_CALC_REQUESTS} requests, got {requests!r}")
    if not all(isinstance(r, str) and r for r in requests):
        raise LocalProtocolError(f"calc requests must be non-empty strings, got {requests!r}")
    return _dumps([0, "calc", None, [[r] for r in requests]])


def ping_frame(cid: int) -> str:
    return _dumps({"event": "ping", "cid": cid})


def _check_offer_id(offer_id: int) -> None:
    if isinstance(offer_id, bool) or not isinstance(offer_id, int) or offer_id <= 0:
        raise LocalProtocolError(f"offer id must be a positive integer, got {offer_id!r}")


def cancel_offer_frame(offer_id: int) -> str:
    """``[0,"foc",null,{"id":ID}]``, the id as a JSON integer."""
    _check_offer_id(offer_id)
    return f'[0,"foc",null,{{"id":{int(offer_id)}}}]'  # the hot path's frame: no encoder needed for one integer


def new_offer_frame(*, type: str, symbol: str, amount: str, rate: str, period: int, flags: int = 0) -> str:
    """``[0,"fon",null,{…}]`` with amount and rate as strings, as the exchange expects."""
    return _dumps([0, "fon", None, {"type": type, "symbol": symbol, "amount": amount, "rate": rate,
                                    "period": period, "flags": flags}])


# ---- server side (the simulator) ------------------------------------------------------------------------


def _decimal_number(value: Decimal) -> str:
    if not value.is_finite():
        raise LocalProtocolError(f"not a JSON number: {value!r}")
    return str(value)  # always JSON number syntax for a finite Decimal: 50.0, 0.0001, 1E+2, -0


def _dumps_exact(value: Any) -> str:
    """Like ``_dumps``, but a Decimal is written as its own digits, a JSON number that never went through float
    (the simulator echoes an offer's amount and rate as the client wrote them)."""
    if isinstance(value, Decimal):
        return _decimal_number(value)
    if isinstance(value, (list, tuple)):
        if not any(isinstance(v, (Decimal, list, tuple, dict)) for v in value):
            return _dumps(value)  # the common case, at C speed
        return "[" + ",".join(map(_dumps_exact, value)) + "]"
    if isinstance(value, dict):
        return "{" + ",".join(f"{_dumps(str(k))}:{_dumps_exact(v)}" for k, v in value.items()) + "}"
    return _dumps(value)


def with_sequence(frame: str, *numbers: int) -> str:
    """An array frame with sequence numbers appended: ``[0,"wu",[…]]`` → ``[0,"wu",[…],PUB,AUTH]``."""
    if not frame.endswith("]"):
        raise LocalProtocolError("sequence numbers go on array frames only")
    return frame[:-1] + "".join(f",{n}" for n in numbers) + "]"


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
    """Any channel-0 message ``[0, KIND, PAYLOAD]``."""
    return "[0," + _dumps(kind) + "," + _dumps_exact(payload) + "]"


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


def wallets_snapshot_frame(wallets: Iterable[Wallet]) -> str:
    return account_frame("ws", [w.to_wire() for w in wallets])


def wallet_frame(wallet: Wallet, *, description: str | None = None) -> str:
    """``wu`` with one wallet array."""
    return account_frame("wu", wallet.to_wire(description=description))


def credits_snapshot_frame(credits: Iterable[FundingCredit]) -> str:
    return account_frame("fcs", [c.to_wire() for c in credits])


def credit_frame(kind: str, credit: FundingCredit) -> str:
    """``fcn`` / ``fcu`` / ``fcc`` with one credit array."""
    if kind not in ("fcn", "fcu", "fcc"):
        raise LocalProtocolError(f"not a credit update kind: {kind!r}")
    return account_frame(kind, credit.to_wire())


def loans_snapshot_frame(loans: Iterable[FundingLoan]) -> str:
    return account_frame("fls", [loan.to_wire() for loan in loans])


def loan_frame(kind: str, loan: FundingLoan) -> str:
    """``fln`` / ``flu`` / ``flc`` with one loan array."""
    if kind not in ("fln", "flu", "flc"):
        raise LocalProtocolError(f"not a loan update kind: {kind!r}")
    return account_frame(kind, loan.to_wire())
