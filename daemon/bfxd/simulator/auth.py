"""The auth check, and what a successful auth brings: the caps and the account snapshots.

Checked in this order (the docs give no order; this one never reveals more than the earlier checks allow): a
forced failure (fault), a second auth on the connection, the API key, the payload ("AUTH" + nonce), the
HMAC-SHA384 signature over the payload, then the nonce (strictly above the last one accepted for this key, and at
most 2**53 - 1). A failed attempt does not move the key's nonce.
"""

from __future__ import annotations

import hmac
from collections.abc import Callable
from typing import TYPE_CHECKING

from bfxd.protocol import AuthRequest, auth_signature
from bfxd.protocol import encode as wire
from bfxd.secret import Secret
from bfxd.simulator import texts
from bfxd.simulator.account import Account
from bfxd.simulator.faults import Faults

if TYPE_CHECKING:
    from bfxd.simulator.simulator import SimulatorConfig

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
    if not (request.nonce.isascii() and request.nonce.isdigit()) or request.payload != f"AUTH{request.nonce}":
        return texts.AUTH_BAD_PAYLOAD
    expected = auth_signature(Secret(config.api_secret), request.payload)
    if not hmac.compare_digest(expected.encode(), request.signature.encode()):
        return texts.AUTH_BAD_SIGNATURE
    if not nonce_ok(request.api_key, int(request.nonce)):
        return texts.AUTH_BAD_NONCE
    return None


def snapshot_frames(account: Account, wants: Callable[..., bool]) -> list[str]:
    """The snapshots after auth, in the exchange's order (ps ws os fos fcs fls), as the ``filter`` allows.

    The exchange sends empty snapshots too (``[0,"os",[]]``); the simulator has no orders, positions, credits or
    loans, so those are always empty.
    """
    frames = []
    if wants("trading"):
        frames.append(wire.account_frame("ps", []))
    if wants("wallet"):
        frames.append(wire.account_frame("ws", [w for w in account.wallets() if wants("wallet", f"{w[0]}-{w[1]}")]))
    if wants("trading"):
        frames.append(wire.account_frame("os", []))
    if wants("funding"):
        frames.append(wire.offers_snapshot_frame([o for o in account.active() if wants("funding", o.symbol)]))
        frames.append(wire.account_frame("fcs", []))
        frames.append(wire.account_frame("fls", []))
    return frames
