"""The input machine: table-driven transitions, and a stateful property that every request is settled once."""

from __future__ import annotations

import os
from typing import Any

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from bfxd.protocol import FundingOffer, Notification, OfferBook, OffersSnapshot, inputs
from bfxd.protocol.input_effects import Effect, Record, Routed, SendFrame, Settle
from bfxd.protocol.input_kinds import (
    Answered,
    CancelInput,
    ConfirmedBySnapshot,
    NoLongerActive,
    NotConfirmed,
    NotReady,
    NotSent,
    ShuttingDown,
    SubmitInput,
    TimedOut,
    offer_matches,
)
from bfxd.protocol.inputs import InputMachine

USD = SubmitInput(symbol="fUSD", amount="150", rate="0.0002", period=2)


def offer(offer_id: int, *, symbol: str = "fUSD", amount: float = 150.0, rate: float = 0.0002, period: int = 2,
          type: str = "LIMIT", status: str = "ACTIVE") -> FundingOffer:
    return FundingOffer(id=offer_id, symbol=symbol, mts_created=1, mts_updated=1, amount=amount, amount_orig=amount,
                        type=type, flags=0, status=status, rate=rate, period=period, notify=False, hidden=False,
                        renew=False)


def note(kind: str, info: FundingOffer | None, status: str = "SUCCESS") -> Notification:
    return Notification(mts=1, type=kind, message_id=None, notify_info=None, code=None, status=status,
                        text="t", offer=info)


def sends(effects: list[Effect]) -> list[SendFrame]:
    return [e for e in effects if isinstance(e, SendFrame)]


def settled(effects: list[Effect]) -> dict[Any, Any]:
    return {e.requester: e.outcome for e in effects if isinstance(e, Settle)}


class Rig:
    """A machine over a book with offers 1 and 2, on ready link 1, every frame given its turn at once."""

    def __init__(self, *, ready: bool = True) -> None:
        self.book = OfferBook()
        self.book.apply(OffersSnapshot((offer(1), offer(2))))
        self.machine = InputMachine(self.book)
        self.sent: list[SendFrame] = []
        if ready:
            self.go(self.machine.ready(1))

    def go(self, effects: list[Effect]) -> list[Effect]:
        for frame in sends(effects):
            if self.machine.frame_sent(frame.token):
                self.sent.append(frame)
        return effects

    def snapshot(self, *offers: FundingOffer) -> list[Effect]:
        self.book.apply(OffersSnapshot(offers))
        return self.go(self.machine.snapshot_applied())


class TestCancel:
    def test_sent_once_and_answered_by_id(self) -> None:
        rig = Rig()
        rig.go(rig.machine.request("a", CancelInput(1), 10))
        rig.go(rig.machine.request("b", CancelInput(1), 10))  # joins: no second frame
        assert [f.text for f in rig.sent] == ['[0,"foc",null,{"id":1}]']
        answer = note("foc-req", offer(1))
        effects = rig.machine.notification(1, answer)
        assert settled(effects) == {"a": Answered(answer), "b": Answered(answer)}
        assert [e.matched_by for e in effects if isinstance(e, Routed)] == ["offer_id"]
        assert rig.machine.pending == 0

    def test_id_less_answer_takes_the_oldest_unanswered(self) -> None:
        rig = Rig()
        rig.go(rig.machine.request("a", CancelInput(1), 10))
        rig.go(rig.machine.request("b", CancelInput(2), 10))
        rig.machine.notification(1, note("foc-req", offer(2)))  # b, by id
        error = note("foc-req", None, "ERROR")
        assert settled(rig.machine.notification(1, error)) == {"a": Answered(error)}

    def test_id_less_answer_on_another_link_takes_nothing(self) -> None:
        rig = Rig()
        rig.go(rig.machine.request("a", CancelInput(1), 10))
        assert settled(rig.machine.notification(2, note("foc-req", None, "ERROR"))) == {}

    @pytest.mark.parametrize(("in_book", "outcome"), [(True, None), (False, NoLongerActive(1))])
    def test_after_a_drop_the_snapshot_decides(self, in_book: bool, outcome: object) -> None:
        rig = Rig()
        rig.go(rig.machine.request("a", CancelInput(1), 10))
        rig.machine.link_down()
        effects = rig.snapshot(*([offer(1)] if in_book else []))
        assert settled(effects) == ({} if outcome is None else {"a": outcome})
        rig.go(rig.machine.ready(2))
        assert [f.link for f in rig.sent] == ([1, 2] if in_book else [1])

    @pytest.mark.parametrize(("ready", "turn", "outcome"), [
        (False, False, NotReady()), (True, False, NotSent()), (True, True, TimedOut())])
    def test_deadline_outcome_says_how_far_it_got(self, ready: bool, turn: bool, outcome: object) -> None:
        rig = Rig(ready=False)
        effects = rig.machine.ready(1) if ready else []
        effects += rig.machine.request("a", CancelInput(1), 10)
        if turn:
            rig.go(effects)
        assert rig.machine.next_deadline() == 10
        assert settled(rig.machine.expire(9.9)) == {}
        assert settled(rig.machine.expire(10)) == {"a": outcome}
        assert rig.machine.next_deadline() is None and rig.machine.pending == 0

    def test_a_frame_whose_requesters_left_is_dropped_at_its_turn(self) -> None:
        rig = Rig()
        queued = sends(rig.machine.request("a", CancelInput(1), 10))
        abandoned = rig.machine.expire(10)
        assert [e.event for e in abandoned if isinstance(e, Record)] == ["cancel.abandoned"]
        assert not rig.machine.frame_sent(queued[0].token)

    def test_late_answer_to_an_abandoned_frame_is_not_misattributed(self) -> None:
        rig = Rig()
        rig.go(rig.machine.request("a", CancelInput(1), 5))
        rig.machine.expire(5)
        rig.go(rig.machine.request("b", CancelInput(2), 50))
        late = rig.machine.notification(1, note("foc-req", None, "ERROR"))  # a's answer, in send order
        assert settled(late) == {}
        answer = note("foc-req", None)
        assert settled(rig.machine.notification(1, answer)) == {"b": Answered(answer)}

    def test_held_frames_wait_for_the_next_ready(self) -> None:
        rig = Rig()
        rig.machine.held()
        queued = sends(rig.machine.request("a", CancelInput(1), 10))
        assert queued == []
        resumed = sends(rig.machine.ready(1))
        assert [f.kind for f in resumed] == ["foc"]


class TestSubmit:
    def test_two_identical_submits_are_two_frames(self) -> None:
        rig = Rig()
        rig.go(rig.machine.request("a", USD, 10))
        rig.go(rig.machine.request("b", USD, 10))
        assert len(rig.sent) == 2 and rig.sent[0].text == (
            '[0,"fon",null,{"type":"LIMIT","symbol":"fUSD","amount":"150","rate":"0.0002","period":2,"flags":0}]')

    def test_answers_match_in_send_order_cross_checked(self) -> None:
        rig = Rig()
        eur = SubmitInput(symbol="fEUR", amount="50.5", rate="0.0003", period=7)
        rig.go(rig.machine.request("usd", USD, 10))
        rig.go(rig.machine.request("eur", eur, 10))
        eur_answer = note("fon-req", offer(9, symbol="fEUR", amount=50.5, rate=0.0003, period=7))
        assert settled(rig.machine.notification(1, eur_answer)) == {"eur": Answered(eur_answer)}
        stranger = note("fon-req", offer(10, symbol="fBTC"))
        effects = rig.machine.notification(1, stranger)
        assert settled(effects) == {}
        assert [e.unmatched is not None for e in effects if isinstance(e, Routed)] == [True]
        assert rig.machine.pending == 1

    @pytest.mark.parametrize("created", [True, False])
    def test_never_resent_after_a_drop(self, created: bool) -> None:
        rig = Rig()
        rig.go(rig.machine.request("a", USD, 10))
        rig.machine.link_down()
        made = offer(7)
        effects = rig.snapshot(offer(1), offer(2), *([made] if created else []))
        # offers 1 and 2 have the submit's fields, but they were on the book before it went out
        assert settled(effects) == {"a": ConfirmedBySnapshot(made) if created else NotConfirmed()}
        rig.go(rig.machine.ready(2))
        assert [f.kind for f in rig.sent] == ["fon"]

    def test_an_older_offer_that_came_to_match_is_no_confirmation(self) -> None:
        """An offer of the symbol that was on the book when the submit went out, with other fields then, is not
        the submit's even if the snapshot shows it with the submit's fields (an update changed it)."""
        rig = Rig()
        rig.book.apply(OffersSnapshot((offer(3, rate=0.0009),)))
        rig.go(rig.machine.request("a", USD, 10))
        rig.machine.link_down()
        assert settled(rig.snapshot(offer(3))) == {"a": NotConfirmed()}

    def test_the_retry_of_a_lost_submit_takes_the_answer_not_the_abandoned_one(self) -> None:
        rig = Rig()
        rig.go(rig.machine.request("lost", USD, 5))  # the exchange lost this one: no answer will come
        rig.machine.expire(5)
        rig.go(rig.machine.request("retry", USD, 50))
        answer = note("fon-req", offer(7))
        assert settled(rig.machine.notification(1, answer)) == {"retry": Answered(answer)}

    def test_a_new_offer_answered_to_one_submit_is_not_claimed_by_its_twin(self) -> None:
        rig = Rig()
        rig.book.apply(OffersSnapshot(()))
        rig.go(rig.machine.request("a", USD, 10))
        rig.go(rig.machine.request("b", USD, 10))
        rig.machine.notification(1, note("fon-req", offer(7)))  # a's
        rig.machine.link_down()
        assert settled(rig.snapshot(offer(7))) == {"b": NotConfirmed()}

    @pytest.mark.parametrize(("field", "value", "matches"), [
        ("amount", 150.0, True), ("amount", 151.0, False), ("rate", 0.00020, True), ("rate", 0.0003, False),
        ("period", 3, False), ("symbol", "fEUR", False), ("type", "FRRDELTAVAR", False)])
    def test_cross_check(self, field: str, value: object, matches: bool) -> None:
        fields: dict[str, Any] = {"amount": 150.0, "rate": 0.0002, "period": 2, "symbol": "fUSD", "type": "LIMIT"}
        assert offer_matches(USD, offer(1, **{**fields, field: value})) is matches

    def test_fields_the_exchange_left_null_are_not_held_against_it(self) -> None:
        assert offer_matches(USD, FundingOffer(id=None, symbol="fUSD"))


class TestSendOrderMemory:
    """The send order must not grow with the link's age: a long-lived daemon held every cancel it ever sent."""

    def test_answered_frames_are_forgotten(self) -> None:
        rig = Rig()
        for n in range(200):
            rig.go(rig.machine.request(f"c{n}", CancelInput(1 + n % 2), 10))
            rig.machine.notification(1, note("foc-req", offer(1 + n % 2)))  # by id
            rig.go(rig.machine.request(f"s{n}", USD, 10))
            rig.machine.notification(1, note("fon-req", offer(100 + n)))  # in send order
        assert len(rig.sent) == 400 and rig.machine.pending == 0
        assert rig.machine.send_order_length() == 0
        assert rig.machine.deadlines_kept() <= 64 + 1  # answered long before their deadlines

    def test_a_request_that_sets_off_the_clean_up_keeps_its_deadline(self) -> None:
        rig = Rig()
        for n in range(64):  # answered at once: their deadlines linger, until the next request cleans up
            rig.go(rig.machine.request(f"c{n}", CancelInput(1), 1000))
            rig.machine.notification(1, note("foc-req", offer(1)))
        assert rig.machine.deadlines_kept() == 64
        rig.go(rig.machine.request("w", USD, 50))  # the heap is rebuilt as this one comes in
        assert rig.machine.deadlines_kept() == 1 and rig.machine.next_deadline() == 50
        assert settled(rig.machine.expire(50)) == {"w": TimedOut()}

    def test_the_deadlines_of_waiting_requesters_survive_the_clean_up(self) -> None:
        rig = Rig(ready=False)  # nothing goes out: every request waits for its deadline
        for n in range(300):
            rig.go(rig.machine.request(f"w{n}", USD, 1000 + n))
        rig.go(rig.machine.request("early", CancelInput(1), 5))
        assert rig.machine.deadlines_kept() == 301 and rig.machine.next_deadline() == 5
        assert settled(rig.machine.expire(1000 + 299)) == {"early": NotReady(),
                                                           **{f"w{n}": NotReady() for n in range(300)}}

    def test_unanswered_frames_beyond_the_cap_are_forgotten_once_settled(
            self, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.setattr(inputs, "SEND_ORDER_MEMORY", 5)
        rig = Rig()
        for n in range(50):  # the exchange answers none of them; each requester times out
            rig.go(rig.machine.request(f"c{n}", CancelInput(1), n + 1))
            rig.machine.expire(n + 1)
        assert len(rig.sent) == 50 and rig.machine.pending == 0
        assert rig.machine.send_order_length() == 5
        # A late id-less answer still goes to the oldest frame remembered, which is settled: nobody is answered.
        assert settled(rig.machine.notification(1, note("foc-req", None, "ERROR"))) == {}

    def test_the_cap_never_drops_a_frame_someone_waits_for(self, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.setattr(inputs, "SEND_ORDER_MEMORY", 2)
        rig = Rig()
        rig.go(rig.machine.request("first", USD, 100))
        for n in range(10):
            rig.go(rig.machine.request(f"gone{n}", USD, n + 1))
            rig.machine.expire(n + 1)
        answer = note("fon-req", offer(7))
        assert settled(rig.machine.notification(1, answer)) == {"first": Answered(answer)}


def test_shutdown_settles_everyone() -> None:
    rig = Rig(ready=False)
    rig.machine.request("a", CancelInput(1), 10)
    rig.machine.request("b", USD, 10)
    assert settled(rig.machine.shut_down()) == {"a": ShuttingDown(), "b": ShuttingDown()}


# ---- every request settled exactly once, whatever happens ------------------------------------------------

SPECS = [CancelInput(1), CancelInput(2), CancelInput(3), USD, SubmitInput("fUSD", "50", "0.001", 30)]


class InputsEverSettledOnce(RuleBasedStateMachine):
    """Random sends, turns, answers, drops, snapshots, readiness and deadlines; checked after every step."""

    def __init__(self) -> None:
        super().__init__()
        self.book = OfferBook()
        self.book.apply(OffersSnapshot((offer(1), offer(2), offer(3))))
        self.machine = InputMachine(self.book)
        self.now = 0.0
        self.link = 1
        self.ready = False
        self.specs: dict[int, Any] = {}
        self.outcomes: dict[int, list[object]] = {}
        self.queued: list[SendFrame] = []
        self.on_wire: list[SendFrame] = []  # sent on the current link, not answered yet
        self.submits_sent: dict[int, int] = {}  # requester -> frames that went out for it
        self.next_id = 1
        self.next_offer = 100

    def apply(self, effects: list[Effect]) -> None:
        for effect in effects:
            if isinstance(effect, Settle):
                self.outcomes.setdefault(effect.requester, []).append(effect.outcome)
                self.check_outcome(effect.requester, effect.outcome)
            elif isinstance(effect, SendFrame):
                self.queued.append(effect)

    def check_outcome(self, requester: int, outcome: object) -> None:
        spec = self.specs[requester]
        if isinstance(outcome, Answered):
            answer = outcome.notification
            if isinstance(spec, CancelInput):
                assert answer.type == "foc-req" and answer.offer_id in (None, spec.offer_id)
            else:
                assert answer.type == "fon-req" and offer_matches(spec, answer.offer)
        if isinstance(outcome, (ConfirmedBySnapshot, NotConfirmed)):
            assert isinstance(spec, SubmitInput)
        if isinstance(outcome, NoLongerActive):
            assert isinstance(spec, CancelInput)

    @rule(spec=st.sampled_from(SPECS), wait=st.floats(0.5, 20))
    def request(self, spec: Any, wait: float) -> None:
        requester = self.next_id
        self.next_id += 1
        self.specs[requester] = spec
        self.apply(self.machine.request(requester, spec, self.now + wait))

    @precondition(lambda self: self.queued)
    @rule(index=st.integers(0, 10))
    def turn(self, index: int) -> None:
        frame = self.queued.pop(index % len(self.queued))
        if self.machine.frame_sent(frame.token):
            assert self.ready and frame.link == self.link
            self.on_wire.append(frame)
            for requester in frame.requesters:
                if isinstance(self.specs[requester], SubmitInput):
                    self.submits_sent[requester] = self.submits_sent.get(requester, 0) + 1

    @precondition(lambda self: self.on_wire)
    @rule(index=st.integers(0, 10), with_id=st.booleans(), ok=st.booleans())
    def answer(self, index: int, with_id: bool, ok: bool) -> None:
        frame = self.on_wire.pop(index % len(self.on_wire))
        status = "SUCCESS" if ok else "ERROR"
        if frame.kind == "foc":
            offer_id = frame.audit["offer_id"]
            answer = note("foc-req", offer(offer_id) if with_id else None, status)
        else:
            self.next_offer += 1
            amount, rate = float(frame.audit["amount"]), float(frame.audit["rate"])
            made = offer(self.next_offer, amount=amount, rate=rate, period=frame.audit["period"])
            answer = note("fon-req", made, status)
        self.apply(self.machine.notification(self.link, answer))

    @rule(kind=st.sampled_from(["foc-req", "fon-req", "on-req"]))
    def stray_answer(self, kind: str) -> None:
        self.apply(self.machine.notification(self.link, note(kind, None, "ERROR")))

    @rule()
    def drop(self) -> None:
        self.apply(self.machine.link_down())
        self.link += 1
        self.ready = False
        self.on_wire.clear()

    @rule(keep=st.sets(st.sampled_from([1, 2, 3])), extra=st.booleans())
    def snapshot(self, keep: set[int], extra: bool) -> None:
        offers = [offer(i) for i in sorted(keep)]
        if extra:
            self.next_offer += 1
            offers.append(offer(self.next_offer))
        self.book.apply(OffersSnapshot(tuple(offers)))
        self.apply(self.machine.snapshot_applied())

    @precondition(lambda self: not self.ready)
    @rule()
    def become_ready(self) -> None:
        self.ready = True
        self.apply(self.machine.ready(self.link))

    @precondition(lambda self: self.ready)
    @rule()
    def hold(self) -> None:
        self.ready = False
        self.apply(self.machine.held())

    @rule(step=st.floats(0.1, 10))
    def time_passes(self, step: float) -> None:
        self.now += step
        self.apply(self.machine.expire(self.now))

    @invariant()
    def settled_at_most_once(self) -> None:
        assert all(len(o) == 1 for o in self.outcomes.values())
        assert all(count == 1 for count in self.submits_sent.values())  # a submit is never sent twice

    @invariant()
    def nobody_waits_past_the_deadline(self) -> None:
        deadline = self.machine.next_deadline()
        assert deadline is None or deadline > self.now

    def teardown(self) -> None:
        self.apply(self.machine.shut_down())
        assert set(self.outcomes) == set(self.specs)  # every request settled …
        assert all(len(o) == 1 for o in self.outcomes.values())  # … exactly once
        assert self.machine.pending == 0


TestInputsEverSettledOnce = pytest.mark.fuzz(InputsEverSettledOnce.TestCase)
TestInputsEverSettledOnce.settings = settings(max_examples=int(os.environ.get("BFXD_FUZZ_EXAMPLES", 200)),
                                              stateful_step_count=40, deadline=None,
                                              suppress_health_check=[HealthCheck.too_slow])
