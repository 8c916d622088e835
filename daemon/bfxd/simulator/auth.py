"""The auth check, and what a successful auth brings: the caps and the account snapshots.

Checked in this order (the docs give no order; this one never reveals more than the earlier checks allow): a
forced failure (fault), a second auth on the connection, the API key, the payload (it must begin with "AUTH" +
nonce), the HMAC-SHA384 signature over the payload exactly as sent, then the nonce (strictly above the last one
accepted for this key, and at most 2**53 - 1). A failed attempt does not move the key's nonce.

The payload rule accepts what both official clients send, as the exchange does: bitfinex-api-py signs
``AUTH<nonce>``, the Node client (npm ``bitfinex-api-node`` 7.0.0, ``lib/transports/ws2.js`` ``auth()``) signs
``AUTH<nonce><nonce>``.
"""

from __future__ import annotations

import hmac
from collections.abc import Callable

from bfxd.protocol import AuthRequest, auth_signature, encode
from bfxd.secret import Secret
from bfxd.simulator import texts
from bfxd.simulator.account import Account
from bfxd.simulator.config import SimulatorConfig
from bfxd.simulator.faults import Faults

# The shape the exchange sends (bitfinex-api-rb #45): funding write access, the rest read-only.
CAPS = {"orders": {"read": 1, "write": 0}, "account": {"read": 1, "write": 0}, "funding": {"read": 1, "write": 1},
        "history": {"read": 1, "write": 0}, "wallets": {"read": 1, "write": 0}, "withdraw": {"read": 0, "write": 0},
        "positions": {"read": 1, "write": 0}}


def auth_problem(
    request: AuthRequest,
    *,
    config: SimulatorConfig,
    faults: Faults,
    authenticated: bool,
    nonce_ok: Callable[[str, int], bool],
) -> tuple[int, str] | None:
    """``(code, msg)`` of the FAILED answer this auth request gets, or None when it succeeds."""
    forced = faults.take_auth_failure()
    if forced is not None:
        return forced
    if authenticated:
        return texts.AUTH_DUPLICATE
    if not hmac.compare_digest(request.api_key.encode(), config.api_key.encode()):
        return texts.AUTH_INVALID_KEY
    if not (request.nonce.isascii() and request.nonce.isdigit()) or not request.payload.startswith(
            f"AUTH{request.nonce}"):
        return texts.AUTH_BAD_PAYLOAD
    expected = auth_signature(Secret(config.api_secret), request.payload)
    if not hmac.compare_digest(expected.encode(), request.signature.encode()):
        return texts.AUTH_BAD_SIGNATURE
    if not nonce_ok(request.api_key, int(request.nonce)):
        return texts.AUTH_BAD_NONCE
    return None


def snapshot_frames(account: Account, wants: Callable[..., bool]) -> list[str]:
    """The snapshots after auth, in the exchange's order (ps ws os fos fcs fls), as the ``filter`` allows.

    The exchange sends empty snapshots too (``[0,"os",[]]``); the simulator has no orders or positions, so those
    are always empty. Wallets carry BALANCE_AVAILABLE null, as the exchange's snapshot does: ``calc`` asks for it.
    """
    ledger = account.ledger
    frames = []
    if wants("trading"):
        frames.append(encode.account_frame("ps", []))
    if wants("wallet"):
        frames.append(encode.wallets_snapshot_frame(
            [w for w in ledger.wallets() if wants("wallet", f"{w.type}-{w.currency}")]))
    if wants("trading"):
        frames.append(encode.account_frame("os", []))
    if wants("funding"):
        frames.append(encode.offers_snapshot_frame([o for o in account.active() if wants("funding", o.symbol)]))
        frames.append(encode.credits_snapshot_frame(
            [c for _, c in sorted(ledger.credits.items()) if wants("funding", c.symbol)]))
        frames.append(encode.loans_snapshot_frame(
            [loan for _, loan in sorted(ledger.loans.items()) if wants("funding", loan.symbol)]))
    return frames
