"""The account router through AccountClient: pending cancels, in-doubt settlement, the book and watchers."""

from __future__ import annotations

from collections.abc import AsyncIterator
from functools import partial
from typing import Any

import attrs
import pytest
import trio
import trio.testing

from bfxd.actors.account import RouterInput, run_account
from bfxd.actors.account_settings import AccountSettings
from bfxd.actors.api import AccountClient, PendingInput
from bfxd.actors.messages import (
    AccountCommand,
    FromLink,
    InputCommand,
    LinesWatchEvent,
    LinkDown,
    NotificationWatchEvent,
    OfferWatchEvent,
    OutboundFrame,
    SessionHeld,
    SessionReady,
    WatcherCutOff,
    WatchEvent,
)
from bfxd.actors.session import SessionBoard
from bfxd.protocol import (
    CancelOfferInput,
    FundingOffer,
    Notification,
    OfferChange,
    decode_client_frame,
    decode_exchange_frame,
)
from bfxd.protocol.encode import notification_frame, offer_frame, offers_snapshot_frame
from bfxd.protocol.input_kinds import (
    Answered,
    CancelInput,
    NoLongerActive,
    NotReady,
    Outcome,
    ShuttingDown,
    TimedOut,
)
from conftest import load_frame_text

UST, USD = 41238934, 41238935  # the two offers of tests/frames/fos-snapshot.json
OTHER = 41238999  # the id in tests/frames/n-foc-req-error.json


def frame_event(name: str) -> Any:
    return decode_exchange_frame(load_frame_text(f"{name}.json"))


def offer(offer_id: int, *, symbol: str = "fUSD", status: str = "ACTIVE", amount: float = 100.0) -> FundingOffer:
    return FundingOffer(id=offer_id, symbol=symbol, mts_created=1, mts_updated=2, amount=amount,
                        amount_orig=amount, type="LIMIT", flags=0, status=status, rate=0.0002, period=2,
                        notify=False, hidden=False, renew=False)


def snapshot(*offers: FundingOffer) -> Any:
    return decode_exchange_frame(offers_snapshot_frame(offers))


def foc_note(offer_id: int | None, status: str = "SUCCESS", text: str = "Submitted for cancellation") -> Notification:
    """A foc-req notification; with offer_id None its NOTIFY_INFO is all nulls, as in some ERROR answers."""
    info = offer(offer_id).to_wire() if offer_id is not None else [None] * 21
    note = decode_exchange_frame(notification_frame(mts=1, type="foc-req", status=status, text=text,
                                                    notify_info=info))
    assert isinstance(note, Notification) and note.offer_id == offer_id
    return note


@attrs.define
class Request:
    """One client's cancel, running in its own task."""

    offer_id: int
    result: Outcome | None = None
    at: float | None = None  # trio time the result arrived

    @property
    def done(self) -> bool:
        return self.result is not None


class Router:
    """run_account with an AccountClient in front and the frames channel readable by the test."""

    def __init__(self, *, frames_size: int = 16, pace: float = 1000.0, burst: int = 1000,
                 commands_size: int = 0) -> None:
        self.board = SessionBoard()
        self.commands, commands_out = trio.open_memory_channel[AccountCommand](commands_size)
        self.events, events_out = trio.open_memory_channel[RouterInput](64)
        frames_in, self.frames = trio.open_memory_channel[OutboundFrame](frames_size)
        self.client = AccountClient(self.commands, self.board)
        self.run = partial(run_account, board=self.board, commands=commands_out, events=events_out,
                           frames=frames_in, settings=AccountSettings(inputs_per_second=pace, input_burst=burst))
        self.nursery: trio.Nursery | None = None
        self._ids = iter(range(1, 10**6))

    async def send(self, *messages: RouterInput) -> None:
        """Hand exchange-side messages to the router and let everything settle."""
        for message in messages:
            await self.events.send(message)
        await trio.testing.wait_all_tasks_blocked()

    async def ready(self, generation: int) -> None:
        """Link *generation* authenticated and synchronised (the example fos snapshot): the router is ready."""
        await self.send(SessionReady(generation), FromLink(generation, frame_event("fos-snapshot")))

    async def cancel(self, offer_id: int, *, within: float) -> Request:
        """Start a cancel with a deadline *within* seconds from now; return once the router holds it."""
        assert self.nursery is not None
        request = Request(offer_id)
        deadline = trio.current_time() + within
        request_id = f"r{next(self._ids)}"

        async def go() -> None:
            request.result = await self.client.send(CancelInput(offer_id), request_id=request_id, deadline=deadline)
            request.at = trio.current_time()

        self.nursery.start_soon(go)
        await trio.testing.wait_all_tasks_blocked()
        return request

    def sent(self) -> list[tuple[int, int | None]]:
        """Every frame written so far, as (generation, foc offer id)."""
        out = []
        while True:
            try:
                frame = self.frames.receive_nowait()
            except trio.WouldBlock:
                return out
            assert frame.kind == "foc"
            decoded = decode_client_frame(frame.text)
            assert isinstance(decoded, CancelOfferInput)
            assert frame.log["offer_id"] == decoded.offer_id
            out.append((frame.generation, decoded.offer_id))


async def offers(router: Router, symbol: str | None = None) -> list[FundingOffer]:
    return await router.client.read(lambda state: state.book.offers(symbol))


@pytest.fixture
async def router(nursery: trio.Nursery) -> AsyncIterator[Router]:
    harness = Router()
    harness.nursery = nursery
    await nursery.start(harness.run)
    yield harness


class TestCancelBeforeReady:
    async def test_waits_then_goes_out_on_session_ready(
        self, router: Router, autojump_clock: trio.testing.MockClock
    ) -> None:
        """A cancel before the session is ready sends nothing until SessionReady, then exactly one foc."""
        request = await router.cancel(UST, within=30)
        await trio.sleep(5)
        assert router.sent() == []
        assert router.board.pending == 1
        await router.ready(1)
        assert router.sent() == [(1, UST)]
        assert not request.done
        await trio.sleep(2)
        await router.send(FromLink(1, frame_event("n-foc-req-success")))
        assert request.result == Answered(frame_event("n-foc-req-success"))
        assert request.at == 7
        assert router.board.pending == 0

    async def test_deadline_before_ready_is_not_ready(
        self, router: Router, autojump_clock: trio.testing.MockClock
    ) -> None:
        """No ready session before the deadline gives NotReady at the deadline, and the entry is swept."""
        start = trio.current_time()
        request = await router.cancel(UST, within=4.5)
        await trio.sleep(10)
        assert request.result == NotReady()
        assert request.at == start + 4.5
        assert router.board.pending == 0
        await router.ready(1)
        assert router.sent() == []

    async def test_not_ready_means_never_sent_even_before_the_sweep(
        self, nursery: trio.Nursery, autojump_clock: trio.testing.MockClock
    ) -> None:
        """A session that turns ready after the requester gave up NotReady must not send its foc anyway."""
        harness = Router()
        harness.nursery = nursery
        await nursery.start(harness.run)
        request = await harness.cancel(UST, within=2)
        await trio.sleep(3)
        assert request.result == NotReady()
        await harness.ready(1)
        assert harness.sent() == []
        assert harness.board.pending == 0


class TestAnswers:
    async def test_no_answer_is_timed_out(self, router: Router, autojump_clock: trio.testing.MockClock) -> None:
        """A sent frame with no answer before the deadline gives TimedOut at the deadline, then is swept."""
        await router.ready(1)
        start = trio.current_time()
        request = await router.cancel(UST, within=8)
        assert router.sent() == [(1, UST)]
        await trio.sleep(20)
        assert request.result == TimedOut()
        assert request.at == start + 8
        assert router.board.pending == 0

    async def test_success_reaches_only_its_requester(
        self, router: Router, autojump_clock: trio.testing.MockClock
    ) -> None:
        """A SUCCESS for one offer answers that requester; a requester of another offer still waits."""
        await router.ready(1)
        mine = await router.cancel(UST, within=30)
        other = await router.cancel(USD, within=30)
        assert router.sent() == [(1, UST), (1, USD)]
        note = frame_event("n-foc-req-success")
        await router.send(FromLink(1, note))
        assert mine.result == Answered(note)
        assert isinstance(mine.result, Answered) and mine.result.succeeded
        assert not other.done
        assert router.board.pending == 1
        await trio.sleep(40)
        assert other.result == TimedOut()

    async def test_same_offer_twice_one_frame_both_answered(
        self, router: Router, autojump_clock: trio.testing.MockClock
    ) -> None:
        """Two requesters of one offer share one foc frame and both get the same answer."""
        first = await router.cancel(UST, within=30)
        second = await router.cancel(UST, within=30)
        assert router.board.pending == 1
        await router.ready(1)
        late = await router.cancel(UST, within=30)  # joins after the frame went out
        assert router.sent() == [(1, UST)]
        note = frame_event("n-foc-req-success")
        await router.send(FromLink(1, note))
        assert first.result == second.result == late.result == Answered(note)
        assert router.sent() == []

    async def test_joiner_after_send_times_out_not_not_ready(
        self, router: Router, autojump_clock: trio.testing.MockClock
    ) -> None:
        """A requester joining an entry whose frame is out is told the frame was sent: TimedOut, not NotReady."""
        await router.ready(1)
        await router.cancel(UST, within=30)
        joiner = await router.cancel(UST, within=1)
        await trio.sleep(2)
        assert joiner.result == TimedOut()
        assert router.sent() == [(1, UST)]

    async def test_error_with_id_reaches_its_requester(
        self, router: Router, autojump_clock: trio.testing.MockClock
    ) -> None:
        """An ERROR notification naming an offer answers that offer's requester with the exchange's error."""
        await router.ready(1)
        bystander = await router.cancel(UST, within=30)
        request = await router.cancel(OTHER, within=30)
        note = frame_event("n-foc-req-error")
        await router.send(FromLink(1, note))
        assert request.result == Answered(note)
        assert isinstance(request.result, Answered) and not request.result.succeeded
        assert request.result.notification.text == "Offer not found"
        assert not bystander.done

    async def test_error_without_id_settles_the_oldest_unanswered(
        self, router: Router, autojump_clock: trio.testing.MockClock
    ) -> None:
        """An ERROR with an all-null NOTIFY_INFO answers the oldest unanswered foc of the link, then the next."""
        await router.ready(1)
        older = await router.cancel(UST, within=30)
        newer = await router.cancel(USD, within=30)
        error = foc_note(None, "ERROR", "Offer not found")
        await router.send(FromLink(1, error))
        assert older.result == Answered(error)
        assert not newer.done
        await router.send(FromLink(1, error))
        assert newer.result == Answered(error)

    async def test_answered_by_id_leaves_the_order_queue(
        self, router: Router, autojump_clock: trio.testing.MockClock
    ) -> None:
        """Once the oldest foc is answered by id, an id-less ERROR goes to the next one in line."""
        await router.ready(1)
        first = await router.cancel(UST, within=30)
        second = await router.cancel(USD, within=30)
        await router.send(FromLink(1, foc_note(UST)))
        error = foc_note(None, "ERROR")
        await router.send(FromLink(1, error))
        assert first.result == Answered(foc_note(UST))
        assert second.result == Answered(error)

    async def test_id_less_answer_to_an_abandoned_foc_is_not_misattributed(
        self, router: Router, autojump_clock: trio.testing.MockClock
    ) -> None:
        """The id-less answer to a foc whose requester left (and was swept) must not settle a younger foc."""
        await router.ready(1)
        impatient = await router.cancel(UST, within=1)
        patient = await router.cancel(USD, within=60)
        await trio.sleep(5)  # deadline passes, the sweep forgets the UST entry
        assert impatient.result == TimedOut()
        assert router.board.pending == 1
        await router.send(FromLink(1, foc_note(None, "ERROR", "answer to the UST foc")))
        assert not patient.done
        await router.send(FromLink(1, foc_note(USD)))
        assert patient.result == Answered(foc_note(USD))

    async def test_id_less_answer_during_maintenance(
        self, router: Router, autojump_clock: trio.testing.MockClock
    ) -> None:
        """Maintenance holds new inputs but the link is the same: an id-less answer still settles the oldest foc."""
        await router.ready(1)
        request = await router.cancel(UST, within=30)
        await router.send(SessionHeld(1, "maintenance"))
        error = foc_note(None, "ERROR", "Platform in maintenance")
        await router.send(FromLink(1, error))
        assert request.result == Answered(error)

    async def test_not_foc_notifications_settle_nothing(
        self, router: Router, autojump_clock: trio.testing.MockClock
    ) -> None:
        """A fon-req notification about an offer id does not answer a cancel of that id."""
        await router.ready(1)
        request = await router.cancel(USD, within=30)
        await router.send(FromLink(1, frame_event("n-fon-req-success")))
        assert not request.done


class TestInDoubt:
    async def _sent_then_link_lost(self, router: Router) -> Request:
        await router.ready(1)
        request = await router.cancel(UST, within=60)
        assert router.sent() == [(1, UST)]
        await router.send(LinkDown(1, "closed by the exchange"))
        return request

    @pytest.mark.parametrize("ready_first", [True, False])
    async def test_still_active_is_sent_again_once(
        self, router: Router, autojump_clock: trio.testing.MockClock, ready_first: bool
    ) -> None:
        """After a lost link, the fresh snapshot still listing the offer resends the foc once on the new link."""
        request = await self._sent_then_link_lost(router)
        fresh = FromLink(2, frame_event("fos-snapshot"))
        if ready_first:
            await router.send(SessionReady(2))
            assert router.sent() == []  # in doubt: wait for the snapshot, never resend blindly
            await router.send(fresh)
        else:
            await router.send(fresh)
            assert router.sent() == []  # still active, but link 2 is not authenticated yet
            await router.send(SessionReady(2))
        assert router.sent() == [(2, UST)]
        await router.send(FromLink(2, frame_event("fos-snapshot")), SessionReady(2))
        assert router.sent() == []
        note = frame_event("n-foc-req-success")
        await router.send(FromLink(2, note))
        assert request.result == Answered(note)
        await router.send(FromLink(2, note), FromLink(2, frame_event("foc-canceled")))
        assert request.result == Answered(note)
        assert router.board.pending == 0

    async def test_gone_from_snapshot_is_no_longer_active(
        self, router: Router, autojump_clock: trio.testing.MockClock
    ) -> None:
        """A fresh snapshot without the offer settles the in-doubt cancel NoLongerActive, with no resend."""
        request = await self._sent_then_link_lost(router)
        await router.send(SessionReady(2))
        await router.send(FromLink(2, snapshot(offer(USD))))
        assert request.result == NoLongerActive(UST)
        assert router.sent() == []
        assert router.board.pending == 0

    async def test_ready_of_a_dead_link_is_ignored(
        self, router: Router, autojump_clock: trio.testing.MockClock
    ) -> None:
        """A SessionReady for a link already reported down does not send pending cancels on it."""
        request = await router.cancel(UST, within=60)
        await router.send(LinkDown(1, "closed"), SessionReady(1))
        assert router.sent() == []
        await router.ready(2)
        assert router.sent() == [(2, UST)]
        assert not request.done

    async def test_held_session_waits(self, router: Router, autojump_clock: trio.testing.MockClock) -> None:
        """After SessionHeld, new cancels wait for the next SessionReady."""
        await router.ready(1)
        await router.send(SessionHeld(1, "relinking"))
        await router.cancel(UST, within=60)
        assert router.sent() == []
        await router.send(LinkDown(1, "relink"))
        await router.ready(2)
        assert router.sent() == [(2, UST)]


class TestReadiness:
    @pytest.mark.parametrize("auth_first", [True, False])
    async def test_ready_needs_auth_and_the_snapshot(
        self, router: Router, autojump_clock: trio.testing.MockClock, auth_first: bool
    ) -> None:
        """The board says ready, and queued cancels go out, only once the link is authenticated and synced."""
        request = await router.cancel(UST, within=60)
        first, second = SessionReady(1), FromLink(1, frame_event("fos-snapshot"))
        await router.send(*((first,) if auth_first else (second,)))
        assert router.board.state != "ready"
        assert router.sent() == []
        await router.send(*((second,) if auth_first else (first,)))
        assert router.board.state == "ready"
        assert router.sent() == [(1, UST)]
        assert not request.done


class TestBook:
    async def test_book_events_update_offers_and_board(
        self, router: Router, autojump_clock: trio.testing.MockClock
    ) -> None:
        """fos, fou, foc and fon keep the book, offers(symbol) and board.offers in step."""
        fos = frame_event("fos-snapshot")
        await router.send(FromLink(1, fos))
        assert [o.id for o in await offers(router)] == [UST, USD]
        assert [o.id for o in await offers(router, "fUSD")] == [USD]
        assert router.board.offers == 2
        await router.send(FromLink(1, frame_event("fou-partial")))
        (ust,) = await offers(router, "fUST")
        assert (ust.amount, ust.status) == (300, "PARTIALLY FILLED at 0.02% (200.0)")
        await router.send(FromLink(1, frame_event("foc-canceled")))
        assert [o.id for o in await offers(router)] == [USD]
        assert router.board.offers == 1
        await router.send(FromLink(1, decode_exchange_frame(offer_frame("fon", offer(7, symbol="fUST")))))
        assert [o.id for o in await offers(router)] == [7, USD]
        assert await offers(router, "fBTC") == []
        assert router.board.offers == 2
        await router.send(FromLink(2, frame_event("fos-empty")))
        assert (await offers(router), router.board.offers) == ([], 0)

    async def test_probe_is_answered(self, router: Router, autojump_clock: trio.testing.MockClock) -> None:
        """probe() returns at once while the router is idle."""
        start = trio.current_time()
        await router.client.probe()
        assert trio.current_time() == start


class TestWatchers:
    async def test_watchers_get_offers_and_notifications(
        self, router: Router, autojump_clock: trio.testing.MockClock
    ) -> None:
        """A watcher receives every offer change and every notification, in order."""
        watcher = await router.client.subscribe(16)
        fos = frame_event("fos-snapshot")
        note = frame_event("n-fon-req-success")
        await router.send(FromLink(1, fos), FromLink(1, note), FromLink(1, frame_event("foc-canceled")))
        got = [watcher.receive_nowait() for _ in range(3)]
        snapshot = [OfferWatchEvent.rendered(OfferChange("snapshot", offer)).line for offer in fos.offers]
        assert got == [
            LinesWatchEvent(b"".join(snapshot)),  # a snapshot is one item, whatever its size
            NotificationWatchEvent(note),
            OfferWatchEvent(OfferChange("cancel", frame_event("foc-canceled").offer)),
        ]
        with pytest.raises(trio.WouldBlock):
            watcher.receive_nowait()

    async def test_lagging_watcher_is_cut_off(self, router: Router, autojump_clock: trio.testing.MockClock) -> None:
        """A watcher whose buffer fills is closed, while a keeping-up watcher still receives everything."""
        slow = await router.client.subscribe(1)
        fast = await router.client.subscribe(64)
        await router.send(FromLink(1, frame_event("fos-snapshot")))  # one item, however many offers: room for it
        await router.send(FromLink(1, frame_event("foc-canceled")), FromLink(1, frame_event("n-foc-req-success")))
        assert isinstance(slow.receive_nowait(), LinesWatchEvent)  # the foc after it overflowed slow
        with pytest.raises(trio.EndOfChannel):
            slow.receive_nowait()
        kinds = [type(fast.receive_nowait()).__name__ for _ in range(3)]
        assert kinds == ["LinesWatchEvent", "OfferWatchEvent", "NotificationWatchEvent"]

    async def test_a_big_snapshot_does_not_cut_a_healthy_watcher_off(
        self, router: Router, autojump_clock: trio.testing.MockClock
    ) -> None:
        """Reconnecting with thousands of offers: the snapshot is one item for a watcher with a small buffer."""
        watcher = await router.client.subscribe(4)
        offers = [offer(1000 + i) for i in range(3000)]
        await router.send(FromLink(1, snapshot(*offers)))
        event = watcher.receive_nowait()
        assert isinstance(event, LinesWatchEvent) and event.line.count(b"\n") == 3000

    async def test_departed_watcher_is_dropped(self, router: Router, autojump_clock: trio.testing.MockClock) -> None:
        """A watcher that closed its end is forgotten without disturbing the others."""
        gone = await router.client.subscribe(4)
        stays = await router.client.subscribe(4)
        await gone.aclose()
        await router.send(FromLink(1, frame_event("fon")))
        assert isinstance(stays.receive_nowait(), OfferWatchEvent)


class TestShutdownAndBackpressure:
    async def test_shutdown_answers_everyone(self, autojump_clock: trio.testing.MockClock) -> None:
        """Closing the commands answers each pending requester ShuttingDown and cuts watchers off politely."""
        harness = Router()
        async with trio.open_nursery() as nursery:
            harness.nursery = nursery
            await nursery.start(harness.run)
            waiting = await harness.cancel(UST, within=60)  # never sent: no session
            await harness.ready(1)
            watcher = await harness.client.subscribe(4)  # after the snapshot: it sees only the cut-off
            sent = await harness.cancel(USD, within=60)
            unsent_too = await harness.cancel(OTHER, within=60)
            await harness.send(SessionHeld(1, "maintenance"))
            await harness.cancel(7, within=60)
            await trio.sleep(3)
            await harness.commands.aclose()
            nursery.cancel_scope.deadline = trio.current_time() + 60  # guard only: the router must drain
        assert [r.result for r in (waiting, sent, unsent_too)] == [ShuttingDown()] * 3
        assert {r.at for r in (waiting, sent, unsent_too)} == {3}
        assert harness.board.pending == 0
        events: list[WatchEvent] = []
        with pytest.raises(trio.EndOfChannel):
            while True:
                events.append(watcher.receive_nowait())
        assert events == [WatcherCutOff("daemon stopping")]

    async def test_full_frames_channel_does_not_block_the_router(
        self, nursery: trio.Nursery, autojump_clock: trio.testing.MockClock
    ) -> None:
        """With the writer stalled, commands are still served, and the frames come out later in order."""
        harness = Router(frames_size=1)
        harness.nursery = nursery
        await nursery.start(harness.run)
        await harness.ready(1)
        ids = [101, 102, 103, 104]
        requests = [await harness.cancel(i, within=60) for i in ids]
        start = trio.current_time()
        assert {o.id for o in await offers(harness)} == {UST, USD}
        await harness.client.probe()
        assert trio.current_time() == start
        assert harness.board.pending == 4
        first = harness.frames.receive_nowait()  # the one that fitted; the rest wait in the backlog
        late = await harness.cancel(105, within=60)
        with trio.fail_after(1):  # guard only
            rest = [await harness.frames.receive() for _ in range(4)]
        order = [decode_client_frame(f.text) for f in [first, *rest]]
        assert order == [CancelOfferInput(i) for i in [*ids, 105]]
        assert not any(r.done for r in [*requests, late])

    async def test_frames_carry_audit_fields(self, router: Router, autojump_clock: trio.testing.MockClock) -> None:
        """A foc frame names its offer and the request ids that share it in the log fields."""
        await router.ready(1)
        await router.cancel(UST, within=60)
        frame = router.frames.receive_nowait()
        assert (frame.generation, frame.kind, frame.log) == (1, "foc", {"offer_id": UST, "request_ids": ["r1"]})


class TestAccountClient:
    async def test_closed_router_is_shutting_down(self, autojump_clock: trio.testing.MockClock) -> None:
        """An input sent to a router that is gone answers ShuttingDown at once."""
        commands_in, commands = trio.open_memory_channel[AccountCommand](0)
        await commands.aclose()
        client = AccountClient(commands_in, SessionBoard())
        outcome = await client.send(CancelInput(UST), request_id="r1", deadline=trio.current_time() + 5)
        assert outcome == ShuttingDown()

    async def test_batch_not_taken_before_the_deadline_is_not_ready(
        self, autojump_clock: trio.testing.MockClock
    ) -> None:
        """A cancel_all's batch the router never takes: every input says NotReady at the deadline."""
        commands_in, _commands = trio.open_memory_channel[AccountCommand](0)  # nobody receiving
        client = AccountClient(commands_in, SessionBoard())
        start = trio.current_time()
        pending = await client.start_many([CancelInput(UST), CancelInput(USD)], request_id="r1", deadline=start + 3)
        assert trio.current_time() == start + 3
        assert [await p.outcome() for p in pending] == [NotReady(), NotReady()]


class TestStartInput:
    """The inbox's hot path: the input is handed over before the requester's own task runs."""

    async def test_reaches_the_router_without_a_checkpoint(
        self, router: Router, autojump_clock: trio.testing.MockClock
    ) -> None:
        """start alone puts the frame on the wire; outcome(), awaited later, gets the answer."""
        await router.ready(1)
        with trio.testing.assert_no_checkpoints():
            pending = router.client.start(CancelInput(UST), request_id="r1", deadline=trio.current_time() + 5)
        await trio.testing.wait_all_tasks_blocked()
        assert router.sent() == [(1, UST)]
        note = foc_note(UST)
        await router.send(FromLink(1, note))
        assert await pending.outcome() == Answered(note)

    async def test_busy_router_is_waited_for_within_the_deadline(
        self, nursery: trio.Nursery, autojump_clock: trio.testing.MockClock
    ) -> None:
        """No room for the command: outcome() sends it when there is, or answers NotReady at the deadline."""
        commands_in, commands = trio.open_memory_channel[AccountCommand](0)  # nobody receiving: no room
        now = trio.current_time()
        patient = PendingInput(commands_in, CancelInput(UST), "r1", now + 60)
        patient.try_submit()
        impatient = PendingInput(commands_in, CancelInput(USD), "r2", now + 2)
        impatient.try_submit()
        assert commands_in.statistics().current_buffer_used == 0
        assert await impatient.outcome() == NotReady()
        results: list[Outcome] = []

        async def wait() -> None:
            results.append(await patient.outcome())

        nursery.start_soon(wait)
        await trio.sleep(5)
        command = await commands.receive()
        assert isinstance(command, InputCommand)
        assert (command.spec, command.requester.request_id) == (CancelInput(UST), "r1")
        note = foc_note(UST)
        command.requester.reply.deliver(Answered(note))
        await trio.testing.wait_all_tasks_blocked()
        assert results == [Answered(note)]

    async def test_a_command_that_waited_past_its_deadline_is_not_sent(
        self, nursery: trio.Nursery, autojump_clock: trio.testing.MockClock
    ) -> None:
        """Taken from the command channel after its deadline (a router far behind), an input is answered NotReady
        and never sent, though the session is ready; one that waited beside it, within its deadline, goes out."""
        harness = Router(commands_size=4)
        harness.nursery = nursery
        await nursery.start(harness.run)
        await harness.ready(1)
        now = trio.current_time()
        late = harness.client.start(CancelInput(UST), request_id="r1", deadline=now + 1)
        in_time = harness.client.start(CancelInput(USD), request_id="r2", deadline=now + 60)
        autojump_clock.jump(2)  # before the router has run again: both waited 2 s in the channel
        await trio.testing.wait_all_tasks_blocked()
        assert harness.sent() == [(1, USD)]
        assert await late.outcome() == NotReady()
        note = foc_note(USD)
        await harness.send(FromLink(1, note))
        assert await in_time.outcome() == Answered(note)

    async def test_answered_requester_runs_before_the_rest_of_the_burst(
        self, router: Router, nursery: trio.Nursery, autojump_clock: trio.testing.MockClock
    ) -> None:
        """A notification and the foc update behind it arrive together: the requester has its answer (and
        would have written it) before the router applies the update."""
        await router.ready(1)
        pending = router.client.start(CancelInput(UST), request_id="r1", deadline=trio.current_time() + 30)
        await trio.testing.wait_all_tasks_blocked()
        seen: list[tuple[Outcome, int]] = []

        async def requester() -> None:
            result = await pending.outcome()
            seen.append((result, router.board.offers))  # what the router has done by the time we run

        nursery.start_soon(requester)
        await trio.testing.wait_all_tasks_blocked()
        note = foc_note(UST)
        router.events.send_nowait(FromLink(1, note))
        router.events.send_nowait(FromLink(1, frame_event("foc-canceled")))  # one burst for the router
        await trio.testing.wait_all_tasks_blocked()
        assert seen == [(Answered(note), 2)]  # the update was not applied yet …
        assert router.board.offers == 1  # … and it is now

    async def test_router_gone_is_shutting_down(self, autojump_clock: trio.testing.MockClock) -> None:
        commands_in, commands = trio.open_memory_channel[AccountCommand](1)
        commands.close()
        pending = AccountClient(commands_in, SessionBoard()).start(CancelInput(UST), request_id="r1",
                                                                  deadline=trio.current_time() + 5)
        assert await pending.outcome() == ShuttingDown()
