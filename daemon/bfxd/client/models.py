"""What the client returns: frozen dataclasses built from the daemon's answers and events.

Amounts and rates are ``Decimal``, parsed exactly from the JSON text (``0.0002`` is ``Decimal("0.0002")``, not
the nearest double). Times from the exchange stay integers of milliseconds (``mts_*``); ``opened``/``expires``
give them as aware datetimes. Each result keeps the JSON ``line`` it came from (not compared, not shown), for
programs that want to print or log exactly what the daemon said.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal

from bfxd.client.errors import BadAnswer

TYPE_CHECKING = False  # typing costs ~10 ms to import, and bfxctl feels every one of them
if TYPE_CHECKING:
    from datetime import datetime
    from typing import Any


def _decimal(value: Any) -> Decimal | None:
    if value is None:
        return None
    if isinstance(value, bool):
        raise BadAnswer(f"expected a number, got {value!r}")
    if isinstance(value, Decimal):
        return value
    if isinstance(value, int | str):  # str: a daemon may quote numbers; refused below if not decimal
        try:
            return Decimal(value)
        except ArithmeticError:
            pass
    raise BadAnswer(f"expected a number, got {value!r}")


def _mts(value: int | None) -> datetime | None:
    from datetime import UTC, datetime  # lazily: only bots that ask for datetimes pay for the import

    return None if value is None else datetime.fromtimestamp(value / 1000, UTC)


def _of(data: Any, what: str) -> dict[str, Any]:
    if not isinstance(data, dict):
        raise BadAnswer(f"expected {what} object, got {type(data).__name__}")
    return data


@dataclass(frozen=True)
class Offer:
    """A funding offer (the socket protocol's offer object)."""

    id: int | None
    symbol: str | None
    mts_created: int | None
    mts_updated: int | None
    amount: Decimal | None
    amount_orig: Decimal | None
    type: str | None
    flags: int | None
    status: str | None
    rate: Decimal | None
    period: int | None
    notify: bool | None
    hidden: bool | None
    renew: bool | None

    @classmethod
    def from_json(cls, data: Any) -> Offer:
        d = _of(data, "an offer")
        return cls(id=d.get("id"), symbol=d.get("symbol"), mts_created=d.get("mts_created"),
                   mts_updated=d.get("mts_updated"), amount=_decimal(d.get("amount")),
                   amount_orig=_decimal(d.get("amount_orig")), type=d.get("type"), flags=d.get("flags"),
                   status=d.get("status"), rate=_decimal(d.get("rate")), period=d.get("period"),
                   notify=d.get("notify"), hidden=d.get("hidden"), renew=d.get("renew"))

    @property
    def created(self) -> datetime | None:
        return _mts(self.mts_created)


@dataclass(frozen=True)
class Credit:
    """A funding credit (money lent, in use by a margin position) or, without ``position_pair``, a loan."""

    id: int | None
    symbol: str | None
    side: int | None
    mts_create: int | None
    mts_update: int | None
    amount: Decimal | None
    flags: int | None
    status: str | None
    rate_type: str | None
    rate: Decimal | None
    period: int | None
    mts_opening: int | None
    mts_last_payout: int | None
    notify: bool | None
    hidden: bool | None
    renew: bool | None
    no_close: bool | None
    position_pair: str | None = None  # credits only

    @classmethod
    def from_json(cls, data: Any) -> Credit:
        d = _of(data, "a credit or loan")
        return cls(id=d.get("id"), symbol=d.get("symbol"), side=d.get("side"), mts_create=d.get("mts_create"),
                   mts_update=d.get("mts_update"), amount=_decimal(d.get("amount")), flags=d.get("flags"),
                   status=d.get("status"), rate_type=d.get("rate_type"), rate=_decimal(d.get("rate")),
                   period=d.get("period"), mts_opening=d.get("mts_opening"),
                   mts_last_payout=d.get("mts_last_payout"), notify=d.get("notify"), hidden=d.get("hidden"),
                   renew=d.get("renew"), no_close=d.get("no_close"), position_pair=d.get("position_pair"))

    @property
    def opened(self) -> datetime | None:
        return _mts(self.mts_opening)

    @property
    def expires(self) -> datetime | None:
        """Opening time plus the period (days): when the money comes back at the latest."""
        if self.mts_opening is None or self.period is None:
            return None
        from datetime import timedelta

        return _mts(self.mts_opening) + timedelta(days=self.period)  # type: ignore[operator]


Loan = Credit  # the same object on the wire, less position_pair


@dataclass(frozen=True)
class Wallet:
    type: str | None
    currency: str | None
    balance: Decimal | None
    unsettled_interest: Decimal | None
    available: Decimal | None  # None: the exchange has not computed it yet

    @classmethod
    def from_json(cls, data: Any) -> Wallet:
        d = _of(data, "a wallet")
        return cls(type=d.get("type"), currency=d.get("currency"), balance=_decimal(d.get("balance")),
                   unsettled_interest=_decimal(d.get("unsettled_interest")),
                   available=_decimal(d.get("available")))


class Rows(tuple):
    """An immutable list of results (offers, wallets, credits, loans) with the daemon's answer ``line``."""

    line: str

    def __new__(cls, items: Any, line: str = "") -> Rows:
        rows = super().__new__(cls, items)
        rows.line = line
        return rows


@dataclass(frozen=True)
class Hello:
    """What the daemon speaks. ``protocol`` 0 is a daemon older than ``hello`` (it answered unknown_op)."""

    protocol: int
    version: str | None
    ops: frozenset[str]
    events: frozenset[str]
    line: str = field(default="", compare=False, repr=False)


@dataclass(frozen=True)
class Status:
    state: str
    authenticated: bool
    user_id: int | None
    since: float | None  # UNIX time (seconds) of the last state change
    last_message_age_s: float | None
    reconnects: int
    pending: int
    offers: int
    detail: str | None
    version: str | None
    line: str = field(default="", compare=False, repr=False)

    @property
    def ready(self) -> bool:
        return self.state == "ready"


@dataclass(frozen=True)
class CancelResult:
    """One cancel's outcome: ``ok`` with the exchange's ``text`` and the offer, or ``error`` (not raised)."""

    id: int | None
    ok: bool
    status: str | None = None
    text: str | None = None
    offer: Offer | None = None
    error: Exception | None = None  # a BfxdError when not ok
    line: str = field(default="", compare=False, repr=False)


@dataclass(frozen=True)
class SubmitResult:
    offer: Offer
    status: str | None
    text: str | None
    line: str = field(default="", compare=False, repr=False)


@dataclass(frozen=True)
class ReplaceResult:
    cancelled: Offer  # the old offer, now gone
    offer: Offer  # the new one
    status: str | None
    text: str | None
    line: str = field(default="", compare=False, repr=False)


def _float(value: Any) -> float | None:
    return None if value is None or isinstance(value, bool) else float(value)


def status_from_json(data: Any, line: str = "") -> Status:
    d = _of(data, "a status")
    return Status(state=d.get("state"), authenticated=bool(d.get("authenticated")), user_id=d.get("user_id"),
                  since=_float(d.get("since")) if not isinstance(d.get("since"), str) else None,
                  last_message_age_s=_float(d.get("last_message_age_s")), reconnects=d.get("reconnects") or 0,
                  pending=d.get("pending") or 0, offers=d.get("offers") or 0, detail=d.get("detail"),
                  version=d.get("version"), line=line)
