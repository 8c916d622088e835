"""The requests a fault-matrix cell sends, one shape per op, and how to recognise their frames at the exchange.

A cell names a request by a slot number: a cancel or replace takes the cell's offer in that slot, a submit takes
fields no other slot uses (its amount), and a replace sets a rate no other slot uses, so every input frame the
simulator receives can be traced to the request that caused it.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import attrs

from bfxd.protocol import CancelOfferInput, NewOfferInput
from bfxd.simulator import Simulator

SUBMIT_SYMBOL, SUBMIT_RATE, SUBMIT_PERIOD = "fUSD", "0.0005", 2


@attrs.frozen
class Asked:
    """One request of a cell; equal for a retry of the same request (the same op and slot)."""

    op: str
    offer_id: int | None = None  # cancel, replace: the offer it names
    amount: str | None = None  # submit: the amount that tells its frames apart
    rate: str | None = None  # replace: the new rate that tells its fon apart

    @classmethod
    def make(cls, op: str, slot: int, offers: list[int]) -> Asked:
        if op == "submit":
            return cls(op, amount=f"{200 + slot}.25")
        if op == "replace":
            return cls(op, offer_id=offers[slot], rate=f"0.000{slot + 1}37")
        return cls(op, offer_id=offers[slot])

    def request(self) -> dict[str, Any]:
        if self.op == "submit":
            return {"op": "submit", "symbol": SUBMIT_SYMBOL, "amount": self.amount, "rate": SUBMIT_RATE,
                    "period": SUBMIT_PERIOD}
        if self.op == "replace":
            return {"op": "replace", "id": self.offer_id, "rate": self.rate}
        return {"op": "cancel", "id": self.offer_id}

    def first_frame(self) -> dict[str, Any]:
        """The ``frame.sent`` fields of its first input frame (a replace begins with its cancel)."""
        return {"kind": "fon", "amount": self.amount} if self.op == "submit" else {"kind": "foc",
                                                                                 "offer_id": self.offer_id}

    def caused(self, event: object) -> bool:
        """Whether an input the exchange received is one of this request's frames."""
        if isinstance(event, CancelOfferInput):
            return self.offer_id is not None and event.offer_id == self.offer_id
        if isinstance(event, NewOfferInput) and self.op == "submit":
            return event.symbol == SUBMIT_SYMBOL and _same(event.amount, self.amount)
        if isinstance(event, NewOfferInput) and self.op == "replace":
            return _same(event.rate, self.rate)
        return False

    @property
    def answer_type(self) -> str:
        """The notification that answers its (first) input."""
        return "fon-req" if self.op == "submit" else "foc-req"

    @property
    def inputs(self) -> int:
        """How many input frames it takes when nothing goes wrong (a replace: its cancel, then its submit)."""
        return 2 if self.op == "replace" else 1

    def submits(self) -> bool:
        """It sends an fon (which must never reach the exchange twice for one request)."""
        return self.op in ("submit", "replace")

    def done_at(self, sim: Simulator) -> bool:
        """Whether the exchange acted on its first input (a cancel's or a replace's offer is gone; a submit's
        offer is booked)."""
        if self.op == "submit":
            return any(_same(o.amount, self.amount) for o in sim.offers.values())
        return self.offer_id not in sim.offers


def _same(got: object, want: str | None) -> bool:
    return want is not None and got is not None and Decimal(str(got)) == Decimal(want)
