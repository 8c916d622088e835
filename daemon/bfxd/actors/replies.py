"""Typed outcomes to answer lines: each outcome is rendered once, into the line and its audit fields."""

from __future__ import annotations

from typing import Any

import attrs

from bfxd.protocol import client_wire as wire
from bfxd.protocol.input_kinds import (
    Answered,
    ConfirmedBySnapshot,
    NoLongerActive,
    NotConfirmed,
    NotReady,
    NotSent,
    Outcome,
    ShuttingDown,
    TimedOut,
)


@attrs.frozen
class Answer:
    """A final answer: the line to write, and what the audit log says about it."""

    line: bytes
    outcome: str  # "ok" or the error type
    fields: dict[str, Any] = attrs.field(factory=dict)  # extra audit fields of command.completed


@attrs.frozen
class Failure:
    type: str
    message: str
    extra: dict[str, Any] = attrs.field(factory=dict)  # the exchange's status and text, for one

    def body(self) -> dict[str, Any]:
        return wire.error_body(self.type, self.message, **self.extra)


@attrs.frozen
class Reply:
    """One result before it is written: its fields, its failure if any, and what the audit log keeps of it."""

    fields: dict[str, Any]
    failure: Failure | None = None
    audit: dict[str, Any] = attrs.field(factory=dict)

    @property
    def ok(self) -> bool:
        return self.failure is None

    def to_json(self) -> dict[str, Any]:
        """The reply as one element of a list (a cancel_all's ``results``)."""
        if self.failure is None:
            return {"ok": True, **self.fields}
        return {"ok": False, **self.fields, "error": self.failure.body()}

    def answer(self, op: str, ref: wire.Ref) -> Answer:
        if self.failure is None:
            return Answer(wire.answer_line(op, ref, **self.fields), "ok", self.audit)
        failure = self.failure
        line = wire.error_line(op, ref, failure.type, failure.message, fields=self.fields, **failure.extra)
        return Answer(line, failure.type, {**self.audit, "error": failure.message})


def refused(error_type: str, message: str) -> Reply:
    return Reply({}, Failure(error_type, message))


def _exchange_said(what: str, outcome: Answered) -> Failure:
    note = outcome.notification
    return Failure(wire.EXCHANGE, f"the exchange refused the {what}: {note.text}", {"status": note.status,
                                                                                     "text": note.text})


def _undecided(what: str, outcome: Outcome, waited_s: float) -> Failure:
    """The failures every input kind shares: no session, no turn, no answer, stopping."""
    if isinstance(outcome, NotReady):
        return Failure(wire.NOT_READY, f"no authenticated exchange session within {waited_s:g} s; the {what} was "
                       "not sent")
    if isinstance(outcome, NotSent):
        return Failure(wire.NOT_SENT, f"the {what} did not get its turn under the input pace within {waited_s:g} "
                       "s; it was not sent, safe to retry")
    if isinstance(outcome, TimedOut):
        return Failure(wire.TIMEOUT, f"{what} sent, no answer within {waited_s:g} s: outcome unknown")
    assert isinstance(outcome, ShuttingDown), outcome
    return Failure(wire.SHUTTING_DOWN, "the daemon is stopping; the outcome is unknown")


def cancel_reply(offer_id: int, outcome: Outcome, *, waited_s: float) -> Reply:
    """One cancel's result: ``id`` and either the exchange's answer or the failure."""
    if isinstance(outcome, Answered):
        note = outcome.notification
        audit = {"status": note.status, "text": note.text}
        if outcome.succeeded:
            offer = note.offer.to_json() if note.offer is not None else None
            return Reply({"id": offer_id, "status": note.status, "text": note.text, "offer": offer}, audit=audit)
        return Reply({"id": offer_id}, _exchange_said("cancel", outcome), audit)
    if isinstance(outcome, NoLongerActive):
        return Reply({"id": offer_id}, Failure(wire.NOT_ACTIVE, "the link dropped after the cancel was sent, and "
                                               "the offer is no longer active (cancelled or executed)"))
    assert not isinstance(outcome, (ConfirmedBySnapshot, NotConfirmed)), outcome  # a submit's outcomes
    return Reply({"id": offer_id}, _undecided("cancel", outcome, waited_s))


def submit_reply(outcome: Outcome, *, waited_s: float) -> Reply:
    """One submit's result: the new offer (with its id) and the exchange's status and text, or the failure."""
    if isinstance(outcome, Answered):
        note = outcome.notification
        audit = {"status": note.status, "text": note.text, "offer_id": note.offer_id}
        if outcome.succeeded:
            offer = note.offer.to_json() if note.offer is not None else None
            return Reply({"offer": offer, "status": note.status, "text": note.text}, audit=audit)
        return Reply({}, _exchange_said("submit", outcome), audit)
    if isinstance(outcome, ConfirmedBySnapshot):
        return Reply({"offer": outcome.offer.to_json(), "status": None, "confirmed_by": "snapshot",
                      "text": "the link dropped before the answer; the fresh snapshot holds the new offer"},
                     audit={"offer_id": outcome.offer.id, "confirmed_by": "snapshot"})
    if isinstance(outcome, NotConfirmed):
        return refused(wire.NOT_CONFIRMED, "the link dropped before the exchange answered, and the fresh snapshot "
                       "shows no such offer: not confirmed, not resent; safe to retry")
    assert not isinstance(outcome, NoLongerActive), outcome  # a cancel's outcome
    return Reply({}, _undecided("submit", outcome, waited_s))
