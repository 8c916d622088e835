"""Reading fields out of the exchange's positional arrays (offers, wallets, credits, loans), one rule set for all.

Arrays may grow (bitfinex-ws.md, "Connection"): a missing trailing field reads as null and anything past the
documented positions is ignored. A field of the wrong type is a RemoteProtocolError naming the row kind and
the position, with a short excerpt of the value.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from bfxd.errors import RemoteProtocolError, excerpt


def is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def is_number(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def is_str(value: object) -> bool:
    return isinstance(value, str)


def field(row: list[Any], index: int) -> Any:
    return row[index] if index < len(row) else None


def optional(row: list[Any], index: int, check: Callable[[Any], bool], what: str, kind: str) -> Any:
    """The value at *index* when it is null or passes *check*; otherwise an error saying it should be *what*."""
    value = field(row, index)
    if value is not None and not check(value):
        raise RemoteProtocolError(f"{kind} field {index} should be {what}, got {excerpt(value)}")
    return value


def optional_bool(row: list[Any], index: int, kind: str) -> bool | None:
    """true/false or 0/1 (the exchange uses both), as a bool; null stays None."""
    value = field(row, index)
    if value is None:
        return None
    if isinstance(value, bool):
        return value
    if value in (0, 1) and is_int(value):
        return bool(value)
    raise RemoteProtocolError(f"{kind} field {index} should be a boolean or 0/1, got {excerpt(value)}")


def require_array(row: object, kind: str) -> list[Any]:
    if not isinstance(row, list):
        raise RemoteProtocolError(f"{kind} should be an array, got {excerpt(row)}")
    return row
