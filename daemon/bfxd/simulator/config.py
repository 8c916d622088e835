"""The simulator's configuration and its record of received frames: plain values every simulator module may import.

Kept apart from ``simulator.py`` so that the connection code (``server.py``, ``auth.py``) can name them without
importing the Simulator itself: no import cycles.
"""

from __future__ import annotations

from typing import Any

import attrs

from bfxd.protocol import ClientEvent
from bfxd.simulator.faults import RateLimit


def _non_negative(_instance: object, attribute: attrs.Attribute[Any], value: float) -> None:
    if value < 0:
        raise ValueError(f"{attribute.name} must not be negative, got {value!r}")


def _positive(_instance: object, attribute: attrs.Attribute[Any], value: float | None) -> None:
    if not (value is not None and value > 0):
        raise ValueError(f"{attribute.name} must be positive, got {value!r}")


def _positive_or_none(instance: object, attribute: attrs.Attribute[Any], value: float | None) -> None:
    if value is not None:
        _positive(instance, attribute, value)


@attrs.frozen
class SimulatorConfig:
    """One simulated account and its credentials. ``scenario_interval``: seconds between random executions and new
    offers (None: the book changes only through inputs and the methods below). ``rate_limit``: None = no limit."""

    api_key: str = "sim-key"
    api_secret: str = attrs.field(default="sim-secret", repr=False)
    offers: int = attrs.field(default=5, validator=_non_negative)
    # Funding credits and loans open at start (lent earlier, e.g. for `make bench`'s 10,000 credits).
    credits: int = attrs.field(default=0, validator=_non_negative)
    loans: int = attrs.field(default=0, validator=_non_negative)
    seed: int = 0
    hb_interval: float = attrs.field(default=15.0, validator=_positive)
    user_id: int = 1234567
    scenario_interval: float | None = attrs.field(default=None, validator=_positive_or_none)
    rate_limit: RateLimit | None = None
    # `received` keeps at least the last max_recorded frames (None: all). Tests never come near the default; a
    # long-running `bfxd simulate` or demo must not grow without bound.
    max_recorded: int | None = attrs.field(default=100_000, validator=_positive_or_none)


@attrs.frozen
class Received:
    """One frame a client sent: its connection, text, decoded event (None if unreadable), trio time of arrival."""

    conn_id: int
    text: str
    event: ClientEvent | None
    at: float
