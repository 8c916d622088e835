"""The exchange input kinds: what can be asked, how it can end, and one policy row per kind.

``POLICIES`` is the table ``inputs.InputMachine`` runs on (see its docstring for the life of an entry). A row
says everything that differs between kinds: the entry key and whether a second request joins the first, the frame,
which notification answers it and how that answer is matched, what happens after a drop, and the audit names.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable
from decimal import Decimal, InvalidOperation
from typing import Any, Literal

import attrs

from bfxd.protocol.encode import cancel_offer_frame, new_offer_frame
from bfxd.protocol.events import Notification
from bfxd.protocol.offer import FundingOffer

# ---- what can be asked ----------------------------------------------------------------------------------


@attrs.frozen
class CancelInput:
    """Cancel one funding offer: ``[0,"foc",null,{"id":ID}]``."""

    offer_id: int


@attrs.frozen
class SubmitInput:
    """Create one funding offer: ``[0,"fon",null,{…}]``; *amount* and *rate* are decimal text, sent as given."""

    symbol: str
    amount: str
    rate: str
    period: int
    type: str = "LIMIT"
    flags: int = 0


InputSpec = CancelInput | SubmitInput

# ---- outcomes --------------------------------------------------------------------------------------------


@attrs.frozen
class Answered:
    """The exchange answered the input with its ``*-req`` notification (SUCCESS, ERROR or FAILURE)."""

    notification: Notification

    @property
    def succeeded(self) -> bool:
        return self.notification.succeeded


@attrs.frozen
class NoLongerActive:
    """A cancel's link dropped after its frame went out, and the fresh snapshot no longer lists the offer."""

    offer_id: int


@attrs.frozen
class ConfirmedBySnapshot:
    """A submit's link dropped before its answer; the fresh snapshot holds a new offer with its fields."""

    offer: FundingOffer


@attrs.frozen
class NotConfirmed:
    """A submit's link dropped before its answer and the snapshot shows no such offer: not resent, safe to retry."""


@attrs.frozen
class NotReady:
    """The deadline passed with no ready session: nothing was sent."""


@attrs.frozen
class NotSent:
    """The deadline passed while the frame waited for its turn under the input pace: nothing was sent."""


@attrs.frozen
class TimedOut:
    """A frame went out and no answer came before the deadline: the outcome is unknown."""


@attrs.frozen
class ShuttingDown:
    """The daemon stopped before the exchange answered."""


Outcome = (Answered | NoLongerActive | ConfirmedBySnapshot | NotConfirmed | NotReady | NotSent | TimedOut
           | ShuttingDown)

# ---- policy rows -----------------------------------------------------------------------------------------

AfterDrop = Literal["resend_if_active", "confirm_by_snapshot"]


@attrs.frozen
class AuditEvents:
    """The audit event names of one input kind, spelled out so that each can be found with grep."""

    joined: str  # a request shared an entry already in flight
    resend: str  # after a drop, the snapshot says it must go out again
    settled_by_snapshot: str  # after a drop, the snapshot settled it
    abandoned: str  # every requester's deadline passed


@attrs.frozen
class InputPolicy:
    kind: str  # the input frame's abbreviation
    answered_by: str  # the notification type that answers it
    joins: bool  # a second request with the same key shares the first one's frame
    key: Callable[[Any], Hashable]
    frame: Callable[[Any], str]
    answer_key: Callable[[Notification], Hashable | None]  # what an answer names; None: match in send order
    accepts: Callable[[Any, Notification], bool]  # the cross-check of an answer matched in send order
    after_drop: AfterDrop
    audit: Callable[[Any], dict[str, Any]]
    events: AuditEvents


def _decimal(value: object) -> Decimal | None:
    try:
        return Decimal(repr(value)) if isinstance(value, float) else Decimal(str(value))
    except (InvalidOperation, ValueError):
        return None


def offer_matches(spec: SubmitInput, offer: FundingOffer | None) -> bool:
    """Whether *offer* could be the one *spec* created: every field the exchange filled in agrees.

    Amounts and rates compare as decimals (the exchange echoes ``"150.50"`` as ``150.5``); the rate of an FRR
    offer is a delta the exchange may rewrite, so it is compared for LIMIT offers only.
    """
    if offer is None:
        return True
    checks: list[tuple[object, object]] = [(offer.symbol, spec.symbol), (offer.period, spec.period),
                                           (offer.type, spec.type)]
    if any(got is not None and got != want for got, want in checks):
        return False
    numbers = [(offer.amount_orig if offer.amount_orig is not None else offer.amount, spec.amount)]
    if spec.type == "LIMIT":
        numbers.append((offer.rate, spec.rate))
    return all(got is None or _decimal(got) == _decimal(want) for got, want in numbers)


def _cancel_answer_key(note: Notification) -> int | None:
    return note.offer_id


POLICIES: dict[type, InputPolicy] = {
    CancelInput: InputPolicy(
        kind="foc", answered_by="foc-req", joins=True,
        key=lambda spec: spec.offer_id,
        frame=lambda spec: cancel_offer_frame(spec.offer_id),
        answer_key=_cancel_answer_key,
        accepts=lambda spec, note: True,  # the exchange answers one link's inputs in order
        after_drop="resend_if_active",
        audit=lambda spec: {"offer_id": spec.offer_id},
        events=AuditEvents(joined="cancel.joined", resend="cancel.resend",
                           settled_by_snapshot="cancel.settled_by_snapshot", abandoned="cancel.abandoned"),
    ),
    SubmitInput: InputPolicy(
        kind="fon", answered_by="fon-req", joins=False,  # two identical submits are two offers
        key=lambda spec: None,  # never joined: the machine numbers each one
        frame=lambda spec: new_offer_frame(type=spec.type, symbol=spec.symbol, amount=spec.amount, rate=spec.rate,
                                           period=spec.period, flags=spec.flags),
        answer_key=lambda note: None,  # fon-req names the new offer, never the request
        accepts=lambda spec, note: offer_matches(spec, note.offer),
        after_drop="confirm_by_snapshot",
        audit=lambda spec: {"symbol": spec.symbol, "amount": spec.amount, "rate": spec.rate, "period": spec.period,
                            "offer_type": spec.type, "flags": spec.flags},
        # joined and resend never happen: a submit is never joined, never resent
        events=AuditEvents(joined="submit.joined", resend="submit.resend",
                           settled_by_snapshot="submit.settled_by_snapshot", abandoned="submit.abandoned"),
    ),
}
