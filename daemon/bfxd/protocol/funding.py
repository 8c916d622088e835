"""Funding credits and loans: the wire arrays in one place, and their JSON form for the socket protocol.

A *credit* is lent funding in use in a margin position, a *loan* lent funding not (yet) used in one (docs
"Funding Credits" ws-auth-funding-credits, "Funding Loans" ws-auth-funding-loans). Both arrays share one layout;
credits append POSITION_PAIR. Positions, from the docs' ``fcs`` example and bitfinex-api-py 4.x
(``serializers.FundingCredit`` / ``FundingLoan``):

    0 ID, 1 SYMBOL, 2 SIDE (1 lender, 0 both, -1 borrower), 3 MTS_CREATE, 4 MTS_UPDATE, 5 AMOUNT, 6 FLAGS,
    7 STATUS, 8 RATE_TYPE ("FIXED"/"VAR"; the ws page shows a placeholder, the Python client reads RATE_TYPE),
    9-10 null, 11 RATE, 12 PERIOD (days), 13 MTS_OPENING, 14 MTS_LAST_PAYOUT, 15 NOTIFY, 16 HIDDEN, 17 null,
    18 RENEW, 19 RATE_REAL (not kept), 20 NO_CLOSE, 21 POSITION_PAIR (credits only, e.g. "tBTCUSD")

Strict decoding, as for offers: the id must be a positive integer and SYMBOL and STATUS strings; a field of the
wrong type is a RemoteProtocolError. FLAGS is documented as an integer in the live example and as an object
("future params") in the historical one: both are accepted and kept as sent.
"""

from __future__ import annotations

from typing import Any, ClassVar, Self

import attrs

from bfxd.errors import RemoteProtocolError, excerpt
from bfxd.protocol import rows

ID, SYMBOL, SIDE, MTS_CREATE, MTS_UPDATE, AMOUNT, FLAGS, STATUS, RATE_TYPE = 0, 1, 2, 3, 4, 5, 6, 7, 8
RATE, PERIOD, MTS_OPENING, MTS_LAST_PAYOUT, NOTIFY, HIDDEN, RENEW, RATE_REAL, NO_CLOSE = (
    11, 12, 13, 14, 15, 16, 18, 19, 20)
POSITION_PAIR = 21
LOAN_WIRE_LENGTH, CREDIT_WIRE_LENGTH = 21, 22
DAY_MS = 86_400_000

Number = int | float


def _is_flags(value: object) -> bool:
    return rows.is_int(value) or isinstance(value, dict)


def _is_side(value: object) -> bool:
    return rows.is_int(value) or isinstance(value, str)  # the deprecated hfcs page documents "Lend"/"Loan"


# The fields in _Funding's order (a credit's position pair last), for rows.Layout.
_FIELDS = [(ID, rows.INT), (SYMBOL, rows.STR), (STATUS, rows.STR), (SIDE, rows.INT | rows.STR),
           (MTS_CREATE, rows.INT), (MTS_UPDATE, rows.INT), (AMOUNT, rows.NUMBER), (FLAGS, rows.INT | {dict}),
           (RATE_TYPE, rows.STR), (RATE, rows.NUMBER), (PERIOD, rows.INT), (MTS_OPENING, rows.INT),
           (MTS_LAST_PAYOUT, rows.INT), (NOTIFY, rows.BOOL), (HIDDEN, rows.BOOL), (RENEW, rows.BOOL),
           (NO_CLOSE, rows.BOOL)]
_LOAN_LAYOUT = rows.Layout(_FIELDS)
_CREDIT_LAYOUT = rows.Layout([*_FIELDS, (POSITION_PAIR, rows.STR)])


@attrs.frozen
class _Funding:
    """The fields credits and loans share. Use ``FundingCredit`` or ``FundingLoan``."""

    KIND: ClassVar[str] = "funding"

    id: int
    symbol: str
    status: str
    side: int | str | None = None
    mts_create: int | None = None
    mts_update: int | None = None
    amount: Number | None = None
    flags: int | dict[str, Any] | None = attrs.field(default=None, hash=False)
    rate_type: str | None = None
    rate: Number | None = None
    period: int | None = None
    mts_opening: int | None = None
    mts_last_payout: int | None = None
    notify: bool | None = None
    hidden: bool | None = None
    renew: bool | None = None
    no_close: bool | None = None

    @classmethod
    def _usual_row(cls, layout: rows.Layout, row: object) -> Self | None:
        """The value for a row rows.Layout passes, or None: read it field by field (which says what is wrong)."""
        values = layout.values(row)
        if values is None or values[0] is None or values[0] <= 0 or values[1] is None or values[2] is None:
            return None
        return cls(*values)

    @classmethod
    def _fields_from_wire(cls, row: object) -> dict[str, Any]:
        kind = cls.KIND
        row = rows.require_array(row, kind)

        def get(index: int, check: Any, what: str) -> Any:
            return rows.optional(row, index, check, what, kind)

        fields = {
            "id": get(ID, lambda v: rows.is_int(v) and v > 0, "a positive integer"),
            "symbol": get(SYMBOL, rows.is_str, "a string"),
            "status": get(STATUS, rows.is_str, "a string"),
            "side": get(SIDE, _is_side, "an integer"),
            "mts_create": get(MTS_CREATE, rows.is_int, "an integer"),
            "mts_update": get(MTS_UPDATE, rows.is_int, "an integer"),
            "amount": get(AMOUNT, rows.is_number, "a number"),
            "flags": get(FLAGS, _is_flags, "an integer or an object"),
            "rate_type": get(RATE_TYPE, rows.is_str, "a string"),
            "rate": get(RATE, rows.is_number, "a number"),
            "period": get(PERIOD, rows.is_int, "an integer"),
            "mts_opening": get(MTS_OPENING, rows.is_int, "an integer"),
            "mts_last_payout": get(MTS_LAST_PAYOUT, rows.is_int, "an integer"),
            "notify": rows.optional_bool(row, NOTIFY, kind),
            "hidden": rows.optional_bool(row, HIDDEN, kind),
            "renew": rows.optional_bool(row, RENEW, kind),
            "no_close": rows.optional_bool(row, NO_CLOSE, kind),
        }
        if fields["id"] is None or fields["symbol"] is None or fields["status"] is None:
            raise RemoteProtocolError(f"{kind} lacks id, symbol or status: {excerpt(row)}")
        return fields

    @property
    def mts_expires(self) -> int | None:
        """When the funding term ends: opening + period days (None when either is unknown)."""
        if self.mts_opening is None or self.period is None:
            return None
        return self.mts_opening + self.period * DAY_MS

    def to_json(self) -> dict[str, Any]:
        """The credit/loan object of the socket protocol (CONTRACT.md)."""
        return {
            "id": self.id, "symbol": self.symbol, "side": self.side, "mts_create": self.mts_create,
            "mts_update": self.mts_update, "amount": self.amount, "flags": self.flags, "status": self.status,
            "rate_type": self.rate_type, "rate": self.rate, "period": self.period,
            "mts_opening": self.mts_opening, "mts_last_payout": self.mts_last_payout, "notify": self.notify,
            "hidden": self.hidden, "renew": self.renew, "no_close": self.no_close,
        }

    def to_wire(self, *, bool_as_int: bool = True) -> list[Any]:
        """The array as the exchange sends it (the simulator's side of the same layout)."""

        def flag(value: bool | None) -> Any:
            return None if value is None else (int(value) if bool_as_int else value)

        row: list[Any] = [None] * LOAN_WIRE_LENGTH
        row[ID], row[SYMBOL], row[SIDE], row[MTS_CREATE], row[MTS_UPDATE] = (
            self.id, self.symbol, self.side, self.mts_create, self.mts_update)
        row[AMOUNT], row[FLAGS], row[STATUS], row[RATE_TYPE] = self.amount, self.flags, self.status, self.rate_type
        row[RATE], row[PERIOD], row[MTS_OPENING], row[MTS_LAST_PAYOUT] = (
            self.rate, self.period, self.mts_opening, self.mts_last_payout)
        row[NOTIFY], row[HIDDEN], row[RENEW], row[NO_CLOSE] = (
            flag(self.notify), flag(self.hidden), flag(self.renew), flag(self.no_close))
        return row


@attrs.frozen
class FundingLoan(_Funding):
    """One funding loan (``fls``/``fln``/``flu``/``flc``): funding not used in a position."""

    KIND: ClassVar[str] = "funding loan"

    @classmethod
    def from_wire(cls, row: object) -> FundingLoan:
        loan = cls._usual_row(_LOAN_LAYOUT, row)
        return loan if loan is not None else cls.from_wire_by_field(row)

    @classmethod
    def from_wire_by_field(cls, row: object) -> FundingLoan:
        return cls(**cls._fields_from_wire(row))


@attrs.frozen
class FundingCredit(_Funding):
    """One funding credit (``fcs``/``fcn``/``fcu``/``fcc``): funding used in the position ``position_pair``."""

    KIND: ClassVar[str] = "funding credit"

    position_pair: str | None = None

    @classmethod
    def from_wire(cls, row: object) -> FundingCredit:
        credit = cls._usual_row(_CREDIT_LAYOUT, row)
        return credit if credit is not None else cls.from_wire_by_field(row)

    @classmethod
    def from_wire_by_field(cls, row: object) -> FundingCredit:
        fields = cls._fields_from_wire(row)
        assert isinstance(row, list)  # checked by _fields_from_wire
        pair = rows.optional(row, POSITION_PAIR, rows.is_str, "a string", cls.KIND)
        return cls(**fields, position_pair=pair)

    def to_json(self) -> dict[str, Any]:
        return {**super().to_json(), "position_pair": self.position_pair}

    def to_wire(self, *, bool_as_int: bool = True) -> list[Any]:
        return [*super().to_wire(bool_as_int=bool_as_int), self.position_pair]
