"""Watch events as frozen dataclasses, and the parser of an event line (loaded when a watch starts)."""

from __future__ import annotations

from dataclasses import dataclass, field

from bfxd.client.models import Credit, Offer, Wallet, _float

TYPE_CHECKING = False  # typing costs ~10 ms to import, and bfxctl feels every one of them
if TYPE_CHECKING:
    from typing import Any


@dataclass(frozen=True)
class OfferEvent:
    action: str  # snapshot, new, update, cancel
    offer: Offer
    line: str = field(default="", compare=False, repr=False)


@dataclass(frozen=True)
class NotificationEvent:
    type: str | None  # e.g. foc-req, fon-req
    status: str | None
    text: str | None
    mts: int | None
    offer_id: int | None
    offer: Offer | None
    line: str = field(default="", compare=False, repr=False)


@dataclass(frozen=True)
class StateEvent:
    state: str
    detail: str | None
    since: float | None
    line: str = field(default="", compare=False, repr=False)


@dataclass(frozen=True)
class WalletEvent:
    action: str  # snapshot, update
    wallet: Wallet
    line: str = field(default="", compare=False, repr=False)


@dataclass(frozen=True)
class CreditEvent:
    action: str  # snapshot, new, update, close
    credit: Credit
    line: str = field(default="", compare=False, repr=False)


@dataclass(frozen=True)
class LoanEvent:
    action: str
    loan: Credit
    line: str = field(default="", compare=False, repr=False)


@dataclass(frozen=True)
class WatchEnded:
    """The daemon ended the watch (stopping, or this watcher read too slowly); the stream ends after it."""

    reason: str | None
    line: str = field(default="", compare=False, repr=False)


@dataclass(frozen=True)
class UnknownEvent:
    """An event type this client does not know (a newer daemon): its name and fields, untouched."""

    event: str
    fields: dict[str, Any]
    line: str = field(default="", compare=False, repr=False)


Event = (OfferEvent | NotificationEvent | StateEvent | WalletEvent | CreditEvent | LoanEvent | WatchEnded
         | UnknownEvent)


def event_from_json(data: dict[str, Any], line: str = "") -> Event:
    kind = data.get("event")
    if kind == "offer":
        return OfferEvent(data.get("action"), Offer.from_json(data.get("offer")), line)
    if kind == "notification":
        offer = data.get("offer")
        return NotificationEvent(data.get("type"), data.get("status"), data.get("text"), data.get("mts"),
                                 data.get("offer_id"), None if offer is None else Offer.from_json(offer), line)
    if kind == "state":
        return StateEvent(data.get("state"), data.get("detail"), _float(data.get("since")), line)
    if kind == "wallet":
        return WalletEvent(data.get("action"), Wallet.from_json(data.get("wallet")), line)
    if kind == "credit":
        return CreditEvent(data.get("action"), Credit.from_json(data.get("credit")), line)
    if kind == "loan":
        return LoanEvent(data.get("action"), Credit.from_json(data.get("loan")), line)
    if kind == "watch_ended":
        return WatchEnded(data.get("reason"), line)
    return UnknownEvent(str(kind), {k: v for k, v in data.items() if k != "event"}, line)
