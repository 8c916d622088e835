"""The input pace: a token bucket every exchange input (foc, fon, calc) takes its turn from. Pure: times are
arguments (seconds on any monotonic clock).

*per_second* tokens are added each second, up to *burst*; an input takes one. After the exchange says an input
was over its limit (``limited``), the pace is halved, again on each further refusal (down to 1/64 of the
configured pace), and the bucket is emptied; once a quiet minute passes with no refusal, the configured pace is
back.
"""

from __future__ import annotations

import attrs

_SLOWEST = 1 / 64  # the lowest share of the configured pace that repeated refusals can bring it to


@attrs.define
class Pace:
    per_second: float  # the configured pace
    burst: int
    quiet_s: float = 60.0  # a refusal-free stretch this long restores the configured pace
    _tokens: float = attrs.field(init=False)
    _at: float | None = attrs.field(default=None, init=False)  # when _tokens was last brought up to date
    _share: float = attrs.field(default=1.0, init=False)  # of the configured pace, while slowed
    _slowed_until: float | None = attrs.field(default=None, init=False)

    def __attrs_post_init__(self) -> None:
        if self.per_second <= 0 or self.burst < 1:
            raise ValueError(f"a pace needs per_second > 0 and burst >= 1, got {self.per_second}, {self.burst}")
        self._tokens = float(self.burst)

    @property
    def current(self) -> float:
        """Inputs per second allowed now."""
        return self.per_second * self._share

    @property
    def slowed(self) -> bool:
        return self._share < 1.0

    def wait(self, now: float) -> float:
        """Seconds until an input may go (0: now)."""
        self._refill(now)
        return 0.0 if self._tokens >= 1.0 else (1.0 - self._tokens) / self.current

    def take(self, now: float) -> bool:
        """Take a turn if one is free now."""
        self._refill(now)
        if self._tokens < 1.0:
            return False
        self._tokens -= 1.0
        return True

    def limited(self, now: float) -> None:
        """The exchange refused an input for its rate: halve the pace and start the quiet minute again."""
        self._refill(now)
        self._share = max(_SLOWEST, self._share / 2)
        self._tokens = 0.0
        self._slowed_until = now + self.quiet_s

    def _refill(self, now: float) -> None:
        if self._slowed_until is not None and now >= self._slowed_until:
            self._share, self._slowed_until = 1.0, None
        if self._at is not None and now > self._at:
            capacity = max(1.0, self.burst * self._share)
            self._tokens = min(capacity, self._tokens + (now - self._at) * self.current)
        if self._at is None or now > self._at:
            self._at = now
