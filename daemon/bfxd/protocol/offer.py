"""The funding offer value type: the wire array order in one place, and its JSON form for the socket protocol.

Wire layout (bitfinex-ws.md, "The funding offer array"); arrays may grow, so only the positions below are read
and anything after them is ignored:

    0 ID, 1 SYMBOL, 2 MTS_CREATED, 3 MTS_UPDATED, 4 AMOUNT, 5 AMOUNT_ORIG, 6 OFFER_TYPE, 7-8 null, 9 FLAGS,
    10 OFFER_STATUS, 11-13 null, 14 RATE, 15 PERIOD, 16 NOTIFY, 17 HIDDEN, 18 null, 19 RENEW, 20 null

Numbers are kept exactly as the exchange sent them (int or float), so the socket protocol can pass them on
untouched. Booleans arrive as true/false in some frames and 0/1 in others; both are accepted.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import attrs

from bfxd.errors import RemoteProtocolError, excerpt
from bfxd.protocol import rows

ID, SYMBOL, MTS_CREATED, MTS_UPDATED, AMOUNT, AMOUNT_ORIG, OFFER_TYPE = 0, 1, 2, 3, 4, 5, 6
FLAGS, STATUS, RATE, PERIOD, NOTIFY, HIDDEN, RENEW = 9, 10, 14, 15, 16, 17, 19
WIRE_LENGTH = 21

# Statuses whose first words mean the offer is still on the book. Everything else (EXECUTED, CANCELED, and
# compound texts such as "EXECUTED at 0.02% (500.0)" or "CANCELED was: PARTIALLY FILLED ...") means it is gone.
_ACTIVE_PREFIXES = ("ACTIVE", "PARTIALLY FILLED")

# Decoding gives int or float. Decimal appears only on the simulator's side: an offer created from a client's
# decimal text keeps it exactly, and encode writes it back as the same digits.
Number = int | float | Decimal


def is_active_status(status: str | None) -> bool:
    """True when an offer with this status is still live on the exchange."""
    return status is not None and status.startswith(_ACTIVE_PREFIXES)


_KIND = "funding offer"


def _optional(row: list[Any], index: int, check: Any, what: str) -> Any:
    return rows.optional(row, index, check, what, _KIND)


def _optional_bool(row: list[Any], index: int) -> bool | None:
    return rows.optional_bool(row, index, _KIND)


# The fields in FundingOffer's order, for rows.Layout.
_LAYOUT = rows.Layout([(ID, rows.INT), (SYMBOL, rows.STR), (MTS_CREATED, rows.INT), (MTS_UPDATED, rows.INT),
                       (AMOUNT, rows.NUMBER), (AMOUNT_ORIG, rows.NUMBER), (OFFER_TYPE, rows.STR), (FLAGS, rows.INT),
                       (STATUS, rows.STR), (RATE, rows.NUMBER), (PERIOD, rows.INT), (NOTIFY, rows.BOOL),
                       (HIDDEN, rows.BOOL), (RENEW, rows.BOOL)])


@attrs.frozen
class FundingOffer:
    """One funding offer. In a strict decode ``id``, ``symbol`` and ``status`` are always set."""

    id: int | None
    symbol: str | None = None
    mts_created: int | None = None
    mts_updated: int | None = None
    amount: Number | None = None
    amount_orig: Number | None = None
    type: str | None = None
    flags: int | None = None
    status: str | None = None
    rate: Number | None = None
    period: int | None = None
    notify: bool | None = None
    hidden: bool | None = None
    renew: bool | None = None

    @classmethod
    def from_wire(cls, row: object, *, lenient: bool = False) -> FundingOffer:
        """Decode one offer array.

        Strict (the default, for ``fos``/``fon``/``fou``/``foc``): the id must be a positive integer and the
        symbol and status strings. Lenient (a notification's NOTIFY_INFO): any field may be null, as the
        exchange sends in ERROR notifications. Fields of the wrong type raise RemoteProtocolError either way.
        """
        values = _LAYOUT.values(row)  # the usual row in one pass (rows.Layout); any other field by field
        if values is not None:
            offer_id, symbol, status = values[0], values[1], values[8]
            if (offer_id is None or offer_id > 0) and (lenient or None not in (offer_id, symbol, status)):
                return cls(*values)
        return cls.from_wire_by_field(row, lenient=lenient)

    @classmethod
    def from_wire_by_field(cls, row: object, *, lenient: bool = False) -> FundingOffer:
        """``from_wire``, reading and checking one field at a time: the read that names the wrong field."""
        row = rows.require_array(row, _KIND)
        offer_id = _optional(row, ID, lambda v: rows.is_int(v) and v > 0, "a positive integer")
        offer = cls(
            id=offer_id,
            symbol=_optional(row, SYMBOL, rows.is_str, "a string"),
            mts_created=_optional(row, MTS_CREATED, rows.is_int, "an integer"),
            mts_updated=_optional(row, MTS_UPDATED, rows.is_int, "an integer"),
            amount=_optional(row, AMOUNT, rows.is_number, "a number"),
            amount_orig=_optional(row, AMOUNT_ORIG, rows.is_number, "a number"),
            type=_optional(row, OFFER_TYPE, rows.is_str, "a string"),
            flags=_optional(row, FLAGS, rows.is_int, "an integer"),
            status=_optional(row, STATUS, rows.is_str, "a string"),
            rate=_optional(row, RATE, rows.is_number, "a number"),
            period=_optional(row, PERIOD, rows.is_int, "an integer"),
            notify=_optional_bool(row, NOTIFY),
            hidden=_optional_bool(row, HIDDEN),
            renew=_optional_bool(row, RENEW),
        )
        if not lenient and (offer.id is None or offer.symbol is None or offer.status is None):
            raise RemoteProtocolError(f"funding offer lacks id, symbol or status: {excerpt(row)}")
        return offer

    @property
    def active(self) -> bool:
        return is_active_status(self.status)

    def to_json(self) -> dict[str, Any]:
        """The offer object of the socket protocol (interface.md)."""
        return {
            "id": self.id,
            "symbol": self.symbol,
            "mts_created": self.mts_created,
            "mts_updated": self.mts_updated,
            "amount": self.amount,
            "amount_orig": self.amount_orig,
            "type": self.type,
            "flags": self.flags,
            "status": self.status,
            "rate": self.rate,
            "period": self.period,
            "notify": self.notify,
            "hidden": self.hidden,
            "renew": self.renew,
        }

    def to_wire(self, *, bool_as_int: bool = True) -> list[Any]:
        """The offer array as the exchange sends it (the simulator's side of the same layout)."""
        row: list[Any] = [None] * WIRE_LENGTH

        def flag(value: bool | None) -> Any:
            return None if value is None else (int(value) if bool_as_int else value)

        row[ID], row[SYMBOL], row[MTS_CREATED], row[MTS_UPDATED] = (
            self.id, self.symbol, self.mts_created, self.mts_updated)
        row[AMOUNT], row[AMOUNT_ORIG], row[OFFER_TYPE] = self.amount, self.amount_orig, self.type
        row[FLAGS], row[STATUS], row[RATE], row[PERIOD] = self.flags, self.status, self.rate, self.period
        row[NOTIFY], row[HIDDEN], row[RENEW] = flag(self.notify), flag(self.hidden), flag(self.renew)
        return row
