"""The wallet value type: the wire array order in one place, its JSON form, and the ``calc`` key that asks for it.

Wire layout (docs.bitfinex.com "Wallets", ws-auth-wallets; bitfinex-api-py 4.x ``serializers.Wallet``):

    0 WALLET_TYPE ("exchange", "margin", "funding"), 1 CURRENCY ("USD"), 2 BALANCE, 3 UNSETTLED_INTEREST,
    4 BALANCE_AVAILABLE (null "if the value is not fresh enough"), 5 DESCRIPTION, 6 META (``wu`` only)

``ws`` carries a list of these arrays, ``wu`` one. BALANCE_AVAILABLE is only computed on demand: the ``calc``
input (``encode.calc_frame``) makes the exchange answer with a ``wu`` that carries it.
The live book of wallets is ``account_books.WalletBook``.
"""

from __future__ import annotations

from typing import Any

import attrs

from bfxd.errors import RemoteProtocolError, excerpt
from bfxd.protocol import rows

TYPE, CURRENCY, BALANCE, UNSETTLED_INTEREST, AVAILABLE, DESCRIPTION, META = 0, 1, 2, 3, 4, 5, 6
WIRE_LENGTH = 7  # what ``wu`` carries; bitfinex-api-py cannot parse a shorter array
_KIND = "wallet"

Number = int | float


@attrs.frozen
class Wallet:
    """One wallet. ``type`` and ``currency`` are always set; numbers are as the exchange sent them."""

    type: str
    currency: str
    balance: Number | None = None
    unsettled_interest: Number | None = None
    available: Number | None = None

    @classmethod
    def from_wire(cls, row: object) -> Wallet:
        row = rows.require_array(row, _KIND)
        wallet_type = rows.optional(row, TYPE, rows.is_str, "a string", _KIND)
        currency = rows.optional(row, CURRENCY, rows.is_str, "a string", _KIND)
        if wallet_type is None or currency is None:
            raise RemoteProtocolError(f"wallet lacks its type or currency: {excerpt(row)}")
        return cls(
            type=wallet_type,
            currency=currency,
            balance=rows.optional(row, BALANCE, rows.is_number, "a number", _KIND),
            unsettled_interest=rows.optional(row, UNSETTLED_INTEREST, rows.is_number, "a number", _KIND),
            available=rows.optional(row, AVAILABLE, rows.is_number, "a number", _KIND),
        )

    @property
    def key(self) -> tuple[str, str]:
        return (self.type, self.currency)

    def to_json(self) -> dict[str, Any]:
        """The wallet object of the socket protocol (CONTRACT.md)."""
        return {"type": self.type, "currency": self.currency, "balance": self.balance,
                "unsettled_interest": self.unsettled_interest, "available": self.available}

    def to_wire(self, *, description: str | None = None, meta: Any = None) -> list[Any]:
        """The wallet array as the exchange sends it (the simulator's side)."""
        return [self.type, self.currency, self.balance, self.unsettled_interest, self.available, description, meta]


def calc_request(wallet_type: str, currency: str) -> str:
    """The ``calc`` key that asks for one wallet's available balance, e.g. ``wallet_funding_USD``.

    Docs "Calc" (ws-auth-input-calc) and the 2018 changelog's example ``[["wallet_margin_BTC"],
    ["wallet_funding_USD"]]``: ``wallet_`` + WALLET_TYPE + ``_`` + CURRENCY.
    """
    return f"wallet_{wallet_type}_{currency}"
