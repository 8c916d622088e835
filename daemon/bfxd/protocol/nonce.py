"""Auth nonces: strictly increasing per API key, from a clock value the caller passes in."""

from __future__ import annotations

import attrs

from bfxd.errors import LocalProtocolError

# The exchange refuses nonces above JavaScript's Number.MAX_SAFE_INTEGER (bitfinex-ws.md, "Authentication").
MAX_NONCE = 2**53 - 1


@attrs.define
class NonceSource:
    """Strictly increasing nonces, even when the wall clock steps back (NTP, VM resume) or two nonces are
    asked for within the same microsecond. Feed it the current time in microseconds."""

    _last: int = 0

    @property
    def last(self) -> int:
        return self._last

    def next(self, now_us: int) -> int:
        nonce = max(self._last + 1, now_us)
        if nonce > MAX_NONCE:
            raise LocalProtocolError("auth nonce would exceed 2**53 - 1")
        self._last = nonce
        return nonce

    def skip_past(self, nonce: int) -> None:
        """Never issue a nonce at or below *nonce* again (after the exchange said ours was too small)."""
        self._last = max(self._last, nonce)
