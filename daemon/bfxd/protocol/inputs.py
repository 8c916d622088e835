"""Exchange inputs as one pure machine: requests in, frames and settlements out (the style of wsproto).

The account router feeds it what happens (a request, a frame's turn to go out, a notification, a link lost, a
snapshot applied, a link ready, a deadline passed) and carries out what it returns: ``SendFrame`` (hand this
frame to the link once the pacer gives it a turn), ``Settle`` (the requester's one final outcome), ``Routed``
(how a notification was routed, for the audit line) and ``Record`` (an audit event). Requesters are opaque
hashable handles; times are numbers the caller passes in. No Trio, no clock, no I/O.

One row of ``input_kinds.POLICIES`` per input kind says everything that differs between kinds:
- the entry key, and whether a second request with the same key joins the first (one frame, both answered);
- which notification type answers it, and the key an answer names itself by (None: matched in send order);
- for an answer matched in send order, the cross-check it must pass (a mismatch is never delivered);
- what happens after a drop, once the fresh snapshot is applied: a cancel is sent again if the offer is still
  active (else ``NoLongerActive``); a submit is never sent again: a new offer with its fields settles it
  (``ConfirmedBySnapshot``), none gives ``NotConfirmed``.

An entry's life: waiting (no ready link) -> queued (``SendFrame`` returned, its turn not yet come) -> sent ->
answered; a lost link turns queued back into waiting and sent into in doubt. A deadline settles a requester with
``NotReady`` (nothing was ever queued), ``NotSent`` (queued, its turn never came) or ``TimedOut`` (a frame went
out: the outcome is unknown). An entry nobody waits for any more leaves the table; if its frame went out, its place
in the send order stays, so its late answer is not taken for a younger frame's. The send order forgets a frame
once it is answered, and beyond ``SEND_ORDER_MEMORY`` unanswered frames of a kind on one link it forgets the
oldest whose requesters have all been settled: a frame the exchange never answers must not make the line, and the
daemon's memory, grow for as long as the link lives.
"""

from __future__ import annotations

import heapq
import itertools
from collections import deque
from collections.abc import Hashable, Iterable
from typing import Any, Literal

import attrs

from bfxd.protocol.book import OfferBook
from bfxd.protocol.events import Notification
from bfxd.protocol.input_effects import Effect, Record, Requester, Routed, SendFrame, Settle
from bfxd.protocol.input_kinds import (
    POLICIES,
    Answered,
    ConfirmedBySnapshot,
    InputPolicy,
    InputSpec,
    NoLongerActive,
    NotConfirmed,
    NotReady,
    NotSent,
    Outcome,
    ShuttingDown,
    TimedOut,
    offer_matches,
)
from bfxd.protocol.offer import FundingOffer

# ---- the machine -----------------------------------------------------------------------------------------

# Unanswered frames of one kind remembered in the send order of a link, at the least. Far above what can be in
# flight (inputs are paced, and every requester is settled by its deadline); the cap only ever drops a frame
# whose requesters are all settled, so a late answer to it is one to a frame never seen: unmatched, or for a
# submit taken by a younger frame with the same fields (as the retry of a lost submit already is).
SEND_ORDER_MEMORY = 10_000

State = Literal["waiting", "queued", "sent", "in_doubt"]


@attrs.define(eq=False)
class _Entry:
    policy: InputPolicy
    spec: Any
    key: Hashable
    requesters: list[Requester]  # those still waiting
    asked: list[Requester]  # everyone who asked, for the audit trail
    state: State = "waiting"
    token: int | None = None  # of the SendFrame awaiting its turn (queued)
    announced: bool = False  # a frame went out for it at least once
    before: set[int] = attrs.field(factory=set)  # submit: offers with its fields already known when it went out
    settled: bool = False


@attrs.define(eq=False)
class _Sent:
    """One frame in the send order of the current link."""

    link: int
    entry: _Entry
    answered: bool = False


class InputMachine:
    """Every exchange input in flight. Each method returns the effects to carry out, in order."""

    def __init__(self, book: OfferBook, policies: dict[type, InputPolicy] = POLICIES) -> None:
        self.book = book
        self._policies = policies
        self._by_answer = {p.answered_by: p for p in policies.values()}
        self._pending: dict[tuple[str, Hashable], _Entry] = {}
        self._entry_of: dict[Requester, _Entry] = {}
        self._deadlines: list[tuple[float, int, Requester]] = []
        self._queued: dict[int, _Entry] = {}
        self._line: dict[str, deque[_Sent]] = {p.kind: deque() for p in policies.values()}
        self._line_by_key: dict[tuple[str, Hashable], deque[_Sent]] = {}
        self._serial = itertools.count(1)
        self._ready_link: int | None = None

    # ---- views ------------------------------------------------------------------------------------------

    @property
    def pending(self) -> int:
        """Entries in flight (a joined cancel counts once)."""
        return len(self._pending)

    @property
    def ready_link(self) -> int | None:
        return self._ready_link

    def wanted(self, token: int) -> bool:
        """Whether frame *token* would still go out if given its turn now."""
        entry = self._queued.get(token)
        return entry is not None and not entry.settled and entry.token == token and entry.state == "queued"

    def next_deadline(self) -> float | None:
        """The earliest deadline of a requester still waiting."""
        while self._deadlines and self._deadlines[0][2] not in self._entry_of:
            heapq.heappop(self._deadlines)
        return self._deadlines[0][0] if self._deadlines else None

    # ---- events -----------------------------------------------------------------------------------------

    def request(self, requester: Requester, spec: InputSpec, deadline: float) -> list[Effect]:
        """A new request; *requester* must be a fresh handle."""
        policy = self._policies[type(spec)]
        if len(self._deadlines) >= 2 * len(self._entry_of) + 64:
            # A settled requester stays in the heap until its deadline. Rebuilt from those still waiting (before
            # this one joins them), the heap no longer keeps every request of the last request_timeout alive (and
            # walked by the GC: at 2,000 cancels/s that was 70,000 objects, and full collections of 77 ms).
            # Amortised O(1).
            self._deadlines = [item for item in self._deadlines if item[2] in self._entry_of]
            heapq.heapify(self._deadlines)
        heapq.heappush(self._deadlines, (deadline, next(self._serial), requester))
        key = policy.key(spec) if policy.joins else next(self._serial)
        entry = self._pending.get((policy.kind, key)) if policy.joins else None
        if entry is not None:
            entry.requesters.append(requester)
            entry.asked.append(requester)
            self._entry_of[requester] = entry
            return [Record(policy.events.joined, policy.audit(spec), tuple(entry.asked))]
        entry = _Entry(policy, spec, key, [requester], [requester])
        self._pending[(policy.kind, key)] = entry
        self._entry_of[requester] = entry
        return [self._queue(entry)] if self._ready_link is not None else []

    def frame_sent(self, token: int) -> bool:
        """The pacer gave frame *token* its turn: True if it is still wanted (send it now), False to drop it."""
        entry = self._queued.pop(token, None)
        if entry is None or entry.settled or entry.token != token or entry.state != "queued":
            return False
        link = self._ready_link
        assert link is not None  # losing or holding the link unqueues every entry
        entry.state, entry.token, entry.announced = "sent", None, True
        record = _Sent(link, entry)
        self._line[entry.policy.kind].append(record)
        if entry.policy.joins:
            self._line_by_key.setdefault((entry.policy.kind, entry.key), deque()).append(record)
        self._trim(entry.policy.kind)
        if entry.policy.after_drop == "confirm_by_snapshot":
            # Every offer of the symbol, not only those with its fields: the same exclusion (a confirmation
            # also needs the fields to match), without a decimal comparison per offer on every submit.
            entry.before = self.book.ids(entry.spec.symbol)
        return True

    def ready(self, link: int) -> list[Effect]:
        """Link *link* is authenticated and synchronised: inputs may go out on it."""
        self._ready_link = link
        return [self._queue(e) for e in list(self._pending.values()) if e.state == "waiting"]

    def held(self) -> list[Effect]:
        """Inputs must wait (maintenance): frames not yet given their turn wait for the next ready link."""
        self._ready_link = None
        self._unqueue()
        return []

    def link_down(self) -> list[Effect]:
        """The link is gone: what went out on it is in doubt until the next snapshot."""
        self._ready_link = None
        self._unqueue()
        for entry in self._pending.values():
            if entry.state == "sent":
                entry.state = "in_doubt"
        for line in self._line.values():
            line.clear()
        self._line_by_key.clear()
        return []

    def snapshot_applied(self) -> list[Effect]:
        """The book now holds a fresh snapshot: settle or requeue what a lost link left in doubt."""
        effects: list[Effect] = []
        claimed: set[int] = set()
        for entry in [e for e in self._pending.values() if e.state == "in_doubt"]:
            if entry.policy.after_drop == "resend_if_active":
                if entry.spec.offer_id in self.book:
                    entry.state = "waiting"
                    effects.append(Record(entry.policy.events.resend, entry.policy.audit(entry.spec),
                                          tuple(entry.asked)))
                    if self._ready_link is not None:
                        effects.append(self._queue(entry))
                    continue
                outcome: Outcome = NoLongerActive(entry.spec.offer_id)
            else:
                found = self._new_offer_like(entry, claimed)
                outcome = NotConfirmed() if found is None else ConfirmedBySnapshot(found)
            effects.append(Record(entry.policy.events.settled_by_snapshot, {**entry.policy.audit(entry.spec),
                                                                        "outcome": type(outcome).__name__},
                                  tuple(entry.asked)))
            effects += self._settle(entry, outcome)
        return effects

    def notification(self, link: int, note: Notification) -> list[Effect]:
        """A notification from *link*; anything but an input kind's answer yields nothing."""
        policy = self._by_answer.get(note.type)
        if policy is None:
            return []
        key = policy.answer_key(note)
        if key is not None:
            self._answered_by_key(policy.kind, key)
            entry = self._pending.get((policy.kind, key))
            if entry is None:
                return [Routed(note, None, ())]
            return [Routed(note, "offer_id", tuple(entry.asked), policy.audit(entry.spec)),
                    *self._settle(entry, Answered(note))]
        entry = self._take_in_order(policy, link, note)
        self._trim(policy.kind)
        if entry is None:
            return [Routed(note, None, (), unmatched=f"no {policy.kind} in flight on this link matches it")]
        effects: list[Effect] = [Routed(note, "order", () if entry.settled else tuple(entry.asked),
                                        policy.audit(entry.spec))]
        if not entry.settled:
            if note.succeeded and note.offer_id is not None:
                self._claim_for_others(entry, note.offer_id)
            effects += self._settle(entry, Answered(note))
        return effects

    def expire(self, now: float) -> list[Effect]:
        """Settle every requester whose deadline is *now* or earlier."""
        effects: list[Effect] = []
        while self._deadlines and self._deadlines[0][0] <= now:
            _, _, requester = heapq.heappop(self._deadlines)
            entry = self._entry_of.pop(requester, None)
            if entry is None:
                continue  # settled already
            entry.requesters.remove(requester)
            if entry.announced:
                outcome: Outcome = TimedOut()
            else:
                outcome = NotSent() if entry.state == "queued" else NotReady()
            effects.append(Settle(requester, outcome))
            if not entry.requesters:
                effects.append(Record(entry.policy.events.abandoned, {**entry.policy.audit(entry.spec),
                                                                      "frame_sent": entry.announced},
                                      tuple(entry.asked)))
                self._drop(entry)
        return effects

    def shut_down(self) -> list[Effect]:
        """Settle everyone still waiting: the daemon stops."""
        effects: list[Effect] = []
        for entry in list(self._pending.values()):
            effects += self._settle(entry, ShuttingDown())
        return effects

    # ---- helpers ----------------------------------------------------------------------------------------

    def _queue(self, entry: _Entry) -> SendFrame:
        link = self._ready_link
        assert link is not None
        token = next(self._serial)
        entry.state, entry.token = "queued", token
        self._queued[token] = entry
        policy = entry.policy
        return SendFrame(token, link, policy.kind, policy.frame(entry.spec), policy.audit(entry.spec),
                         tuple(entry.requesters))

    def _unqueue(self) -> None:
        for entry in self._queued.values():
            if entry.state == "queued":
                entry.state, entry.token = "waiting", None
        self._queued.clear()

    def _settle(self, entry: _Entry, outcome: Outcome) -> list[Effect]:
        effects: list[Effect] = [Settle(r, outcome) for r in entry.requesters]
        for requester in entry.requesters:
            del self._entry_of[requester]
        entry.requesters = []
        self._drop(entry)
        return effects

    def _drop(self, entry: _Entry) -> None:
        entry.settled = True
        if self._pending.get((entry.policy.kind, entry.key)) is entry:
            del self._pending[(entry.policy.kind, entry.key)]

    def _answered_by_key(self, kind: str, key: Hashable) -> None:
        """An answer that names *key* answers the oldest unanswered frame of that key: mark it in the line."""
        records = self._line_by_key.get((kind, key))
        while records:
            record = records.popleft()
            if not record.answered:
                record.answered = True
                break
        if records is not None and not records:
            del self._line_by_key[(kind, key)]
        self._trim(kind)

    def _trim(self, kind: str) -> None:
        """Forget answered frames at the head of the send order, and the oldest settled ones beyond the cap."""
        line = self._line[kind]
        while line and (line[0].answered or (len(line) > SEND_ORDER_MEMORY and line[0].entry.settled)):
            record = line.popleft()
            if not record.answered and record.entry.policy.joins:
                records = self._line_by_key.get((kind, record.entry.key))
                if records and records[0] is record:  # the oldest of its key is the oldest of the line
                    records.popleft()
                    if not records:
                        del self._line_by_key[(kind, record.entry.key)]

    def deadlines_kept(self) -> int:
        """Deadlines held, settled requesters' included (a request rebuilds the heap once it holds twice as many as
        are waiting, plus 64)."""
        return len(self._deadlines)

    def send_order_length(self) -> int:
        """Frames remembered in the send order, all kinds (bounded: see ``SEND_ORDER_MEMORY``)."""
        return sum(len(line) for line in self._line.values())

    def _take_in_order(self, policy: InputPolicy, link: int, note: Notification) -> _Entry | None:
        """The oldest unanswered frame of this kind on *link* that the answer fits; it leaves the line.

        For a kind that joins (a cancel) the oldest is strictly the one: its late answer must not be taken for a
        younger frame's. For a kind that never joins (a submit), a frame whose requesters all left may have been
        lost by the exchange: when the answer also fits a frame someone still waits for, that one takes it (a
        retry of a lost submit is answered, not timed out; the two have the same fields).
        """
        line = self._line[policy.kind]
        while line and line[0].answered:
            line.popleft()
        abandoned: _Sent | None = None
        for record in _unanswered(line):
            if record.link != link:
                break  # an older link's frame: nothing of this link is older (lines are per link)
            if not policy.accepts(record.entry.spec, note):
                continue
            if policy.joins:
                self._answered_by_key(policy.kind, record.entry.key)  # the oldest of its key: this one
                record.answered = True
                return record.entry
            if not record.entry.settled:
                record.answered = True
                return record.entry
            abandoned = abandoned or record
        if abandoned is not None:
            abandoned.answered = True
            return abandoned.entry
        return None

    def _claim_for_others(self, answered: _Entry, offer_id: int) -> None:
        """A submit's new offer belongs to it: no other submit in flight may take it for its own later."""
        for entry in self._pending.values():
            if entry is not answered and entry.policy.after_drop == "confirm_by_snapshot":
                entry.before.add(offer_id)

    def _new_offer_like(self, entry: _Entry, claimed: set[int]) -> FundingOffer | None:
        for offer in self.book.offers(entry.spec.symbol):
            if (offer.id is not None and offer.id not in entry.before and offer.id not in claimed
                    and offer_matches(entry.spec, offer)):
                claimed.add(offer.id)
                return offer
        return None


def _unanswered(line: Iterable[_Sent]) -> Iterable[_Sent]:
    return (record for record in line if not record.answered)
