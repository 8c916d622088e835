"""Reconnect pacing, pure (no Trio, no clock, no randomness): times and random draws are arguments.

Two rules combine before every connection attempt:
- capped, jittered exponential backoff after failures (``reconnect_delay``);
- the exchange's connection rate limit, 5 connections per 15 s on the authenticated domain
  (bitfinex-ws.md, "Connection"), enforced by ``ConnectGuard`` whatever the fault pattern.
"""

from __future__ import annotations

import math
from collections import deque

import attrs

EXCHANGE_MAX_CONNECTIONS = 5
EXCHANGE_WINDOW_S = 15.0
# Margin over the exchange's window: our clock and theirs do not agree to the millisecond.
GUARD_MARGIN_S = 0.5


def reconnect_delay(attempt: int, *, initial: float, maximum: float, rand: float) -> float:
    """Seconds to wait before reconnect *attempt* (1-based), with "equal jitter".

    The un-jittered delay doubles from *initial* up to *maximum*; the result lies in [d/2, d], so a fleet of
    daemons restarted together spreads out while no single one waits much less than planned.
    *rand* is a draw from [0, 1) made by the caller.
    """
    if attempt <= 0:
        return 0.0
    exponent = min(attempt - 1, 64)  # 2**64 * initial is far beyond any maximum; avoids float overflow
    capped = min(maximum, initial * 2.0**exponent)
    return capped / 2 + capped / 2 * rand


@attrs.define
class ConnectGuard:
    """At most *max_attempts* connection attempts in any *window* seconds."""

    max_attempts: int = EXCHANGE_MAX_CONNECTIONS
    window: float = EXCHANGE_WINDOW_S + GUARD_MARGIN_S
    _attempts: deque[float] = attrs.field(factory=deque, init=False)

    def wait_before_next(self, now: float) -> float:
        """Seconds to wait at *now* before an attempt is allowed (0 when it is allowed now)."""
        # One expression, ``attempt + window``, decides both when an attempt leaves the window and how long
        # to wait: mixing ``now - window`` with ``attempt + window - now`` disagreed by a rounding step, and a
        # wait of 0.0 was returned while the window was still full (0.1 + 15.5 == 15.6, 15.6 - 15.5 < 0.1).
        while self._attempts and self._attempts[0] + self.window <= now:
            self._attempts.popleft()
        if len(self._attempts) < self.max_attempts:
            return 0.0
        free_at = self._attempts[0] + self.window
        wait = free_at - now
        while now + wait < free_at:  # rounding: never return a wait that falls short of free_at
            wait = math.nextafter(wait, math.inf)
        return wait

    def record(self, now: float) -> None:
        """Note an attempt made at *now* (call only when ``wait_before_next(now)`` is 0)."""
        self._attempts.append(now)
