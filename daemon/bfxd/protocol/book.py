"""The live book of the account's funding offers: a pure state machine.

Rules:
- ``fos`` (snapshot) replaces the book. Each offer in it is reported as a ``snapshot`` change; an offer that
  was on the book and is missing from the snapshot is reported as a ``cancel`` change.
- ``fon`` (new) and ``fou`` (update) insert or replace the offer when its status is active (``ACTIVE``,
  ``PARTIALLY FILLED …``); a non-active status (``EXECUTED …``, ``CANCELED``, compound texts) removes it.
- ``foc`` removes the offer: it was cancelled or fully executed. An offer once removed stays gone: a ``fon`` or
  ``fou`` for it that arrives late (after its ``foc``) is ignored, until a snapshot lists it again. The closed ids
  remembered for that are bounded (the most recent ``CLOSED_MEMORY``).
Every applied event returns the list of changes it made, in order, for watchers and the audit log.
"""

from __future__ import annotations

from typing import Literal

import attrs

from bfxd.protocol.events import OfferCancel, OfferNew, OffersSnapshot, OfferUpdate
from bfxd.protocol.offer import FundingOffer

Action = Literal["snapshot", "new", "update", "cancel"]
CLOSED_MEMORY = 10_000
OfferEvent = OffersSnapshot | OfferNew | OfferUpdate | OfferCancel


@attrs.frozen
class OfferChange:
    action: Action
    offer: FundingOffer


@attrs.define
class OfferBook:
    _offers: dict[int, FundingOffer] = attrs.field(factory=dict)
    _closed: dict[int, None] = attrs.field(factory=dict)  # ids removed lately, oldest first (an ordered set)

    def __len__(self) -> int:
        return len(self._offers)

    def __contains__(self, offer_id: object) -> bool:
        return offer_id in self._offers

    def get(self, offer_id: int) -> FundingOffer | None:
        return self._offers.get(offer_id)

    def offers(self, symbol: str | None = None) -> list[FundingOffer]:
        """Active offers, by id, optionally of one symbol."""
        return [o for _, o in sorted(self._offers.items()) if symbol is None or o.symbol == symbol]

    def ids(self, symbol: str) -> set[int]:
        """The ids of the active offers of *symbol* (no sorting: cheaper than ``offers``)."""
        return {offer_id for offer_id, o in self._offers.items() if o.symbol == symbol}

    def apply(self, event: OfferEvent) -> list[OfferChange]:
        if isinstance(event, OffersSnapshot):
            return self._replace(event.offers)
        offer = event.offer
        assert offer.id is not None  # strict decoding guarantees it
        if isinstance(event, OfferCancel) or not offer.active:
            self._remember_closed(offer.id)
            return [OfferChange("cancel", offer)] if self._offers.pop(offer.id, None) is not None else []
        if offer.id in self._closed:
            return []  # a late update of an offer already gone: it must not come back
        action: Action = "update" if offer.id in self._offers else "new"
        self._offers[offer.id] = offer
        return [OfferChange(action, offer)]

    def _remember_closed(self, offer_id: int) -> None:
        self._closed[offer_id] = None
        if len(self._closed) > CLOSED_MEMORY:
            del self._closed[next(iter(self._closed))]

    def _replace(self, offers: tuple[FundingOffer, ...]) -> list[OfferChange]:
        fresh = {o.id: o for o in offers if o.active and o.id is not None}
        for offer_id in fresh:
            self._closed.pop(offer_id, None)  # the snapshot is the truth
        gone = [OfferChange("cancel", o) for i, o in sorted(self._offers.items()) if i not in fresh]
        self._offers = fresh
        return gone + [OfferChange("snapshot", o) for _, o in sorted(fresh.items())]
