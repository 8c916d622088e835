"""Fault switches: the small mutable state that tests and CLI flags flip to make the simulator misbehave.

One ``Faults`` per simulator, read by every connection at the moment it acts, so a switch takes effect on live
connections at once. Counters ("the next n …") are shared by all connections and consumed in arrival order.
"""

from __future__ import annotations

from collections import deque

import attrs

from bfxd.simulator import texts


def _positive(_instance: object, attribute: attrs.Attribute[object], value: float) -> None:
    if not value > 0:
        raise ValueError(f"{attribute.name} must be positive, got {value!r}")


@attrs.frozen
class RateLimit:
    """At most *max_inputs* inputs per connection in any window of *per_seconds* seconds."""

    max_inputs: int = attrs.field(validator=_positive)
    per_seconds: float = attrs.field(validator=_positive)

    @classmethod
    def parse(cls, text: str) -> RateLimit:
        """``"90/60"`` → 90 inputs per 60 seconds (the CLI's form)."""
        count, sep, seconds = text.partition("/")
        if not sep:
            raise ValueError(f"rate limit should look like COUNT/SECONDS, got {text!r}")
        return cls(max_inputs=int(count), per_seconds=float(seconds))


@attrs.define
class RateWindow:
    """Arrival times of one connection's recent inputs (a sliding window)."""

    _times: deque[float] = attrs.field(factory=deque)

    def admit(self, now: float, limit: RateLimit) -> bool:
        """Count one input arriving at *now*; False when it exceeds *limit*."""
        while self._times and self._times[0] <= now - limit.per_seconds:
            self._times.popleft()
        self._times.append(now)
        return len(self._times) <= limit.max_inputs


@attrs.define
class Faults:
    """The switches. ``stalled``: send nothing, answer nothing. ``answer_delay``: seconds between a frame's
    arrival and its answer. ``maintenance``: between info 20060 and 20061. The rest are counters or limits."""

    stalled: bool = False
    answer_delay: float = 0.0
    maintenance: bool = False
    rate_limit: RateLimit | None = None
    inputs_to_lose: int = 0
    sequence_skips: int = 0  # account updates to number and then not send (on connections that asked for numbers)
    _auth_failures: deque[tuple[int, str]] = attrs.field(factory=deque)

    def lose_inputs(self, n: int) -> None:
        if n < 0:
            raise ValueError(f"cannot lose a negative number of inputs: {n}")
        self.inputs_to_lose = n

    def take_input_loss(self) -> bool:
        """True when this input is to be lost (and counts it)."""
        if self.inputs_to_lose <= 0:
            return False
        self.inputs_to_lose -= 1
        return True

    def skip_sequence(self, n: int) -> None:
        if n < 0:
            raise ValueError(f"cannot skip a negative number of sequence numbers: {n}")
        self.sequence_skips = n

    def take_sequence_skip(self) -> bool:
        """True when this numbered account update is to be lost (and counts it)."""
        if self.sequence_skips <= 0:
            return False
        self.sequence_skips -= 1
        return True

    def fail_auth(self, n: int, code: int, message: str) -> None:
        """Queue *n* forced auth failures with this code and text (after any already queued)."""
        self._auth_failures.extend([(code, message)] * n)

    def nonce_errors(self, n: int) -> None:
        self.fail_auth(n, *texts.AUTH_BAD_NONCE)

    def take_auth_failure(self) -> tuple[int, str] | None:
        return self._auth_failures.popleft() if self._auth_failures else None
