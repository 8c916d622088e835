"""Settings that a reload may change while the daemon runs."""

from __future__ import annotations

from typing import Generic, TypeVar

import attrs

T = TypeVar("T")


@attrs.define
class LiveSettings(Generic[T]):
    """An actor reads ``value`` afresh for each piece of work, so a reloaded config reaches it (SIGHUP)."""

    value: T
