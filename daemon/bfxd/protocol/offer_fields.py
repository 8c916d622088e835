"""The fields of a new funding offer, as a client gives them: validated, and kept exactly as given.

Amounts and rates arrive as decimal strings or JSON numbers (read as ``Decimal``, never through a float) and go to
the exchange as decimal text: a string as given, a number in plain notation (``1E-7`` becomes ``0.0000001``).
Rules: *amount* is not zero (positive lends, negative bids); *rate* is at least 0; *period* is a whole number of
days from 2 to 120; *type* is one of ``OFFER_TYPES``; *flags* is a non-negative integer. Each failure names its
field (``FieldError.field``).
"""

from __future__ import annotations

import re
from decimal import Decimal

OFFER_TYPES = ("LIMIT", "FRRDELTAVAR", "FRRDELTAFIX")
MIN_PERIOD, MAX_PERIOD = 2, 120
MAX_FLAGS = 2**31 - 1
_DECIMAL_TEXT = re.compile(r"-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?")
_MAX_DIGITS = 30  # far beyond any amount or rate the exchange takes; bounds the text we pass on


class FieldError(ValueError):
    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field
        self.message = message


def _shown(value: object) -> str:
    text = str(value) if isinstance(value, (str, Decimal, int)) and not isinstance(value, bool) else repr(value)
    return text if len(text) <= 40 else text[:40] + "…"


def decimal_text(field: str, value: object) -> tuple[str, Decimal]:
    """The text to send, and its value, for a decimal given as a string or a JSON number."""
    if isinstance(value, str):
        if not _DECIMAL_TEXT.fullmatch(value) or len(value) > _MAX_DIGITS + 2:
            raise FieldError(field, f"'{field}' must be a decimal number such as \"150.5\", got \"{_shown(value)}\"")
        return value, Decimal(value)
    if isinstance(value, int) and not isinstance(value, bool):
        number = Decimal(value)
    elif isinstance(value, Decimal) and value.is_finite():
        number = value
    else:
        raise FieldError(field, f"'{field}' must be a decimal string or a number, got {_shown(value)}")
    text = format(number, "f")
    if len(text.lstrip("-").replace(".", "")) > _MAX_DIGITS:
        raise FieldError(field, f"'{field}' has more than {_MAX_DIGITS} digits: {_shown(value)}")
    return text, number


def amount(value: object) -> str:
    text, number = decimal_text("amount", value)
    if number == 0:
        raise FieldError("amount", "'amount' must not be zero (positive lends, negative bids)")
    return text


def rate(value: object) -> str:
    text, number = decimal_text("rate", value)
    if number < 0:
        raise FieldError("rate", f"'rate' must be at least 0, got {text}")
    return text


def period(value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not MIN_PERIOD <= value <= MAX_PERIOD:
        raise FieldError("period", f"'period' must be a whole number of days from {MIN_PERIOD} to {MAX_PERIOD}, "
                         f"got {_shown(value)}")
    return value


def offer_type(value: object) -> str:
    if value not in OFFER_TYPES:
        raise FieldError("type", f"'type' must be one of {', '.join(OFFER_TYPES)}, got {_shown(value)}")
    assert isinstance(value, str)
    return value


def flags(value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_FLAGS:
        raise FieldError("flags", f"'flags' must be an integer from 0 to {MAX_FLAGS}, got {_shown(value)}")
    return value
