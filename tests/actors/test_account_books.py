"""The router with the account books: reads that wait for a book's snapshot, calc under the paces, watch events."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import pytest
import structlog
import trio
import trio.testing
from tests.actors.test_account import Router, frame_event

from bfxd.actors.account_state import CALC_INTERVAL_S
from bfxd.actors.messages import AccountWatchEvent, FromLink, LinkDown, OutboundFrame, SessionReady
from bfxd.protocol import CalcInput, CancelOfferInput, decode_client_frame, decode_exchange_frame
from bfxd.protocol.input_kinds import Answered

UST = 41238934  # an offer of tests/frames/fos-snapshot.json


@pytest.fixture
async def books(nursery: trio.Nursery) -> AsyncIterator[Router]:
    harness = Router()
    harness.nursery = nursery
    await nursery.start(harness.run)
    yield harness


def frames(router: Router) -> list[OutboundFrame]:
    out = []
    while True:
        try:
            out.append(router.frames.receive_nowait())
        except trio.WouldBlock:
            return out


def calcs(sent: list[OutboundFrame]) -> list[tuple[int, tuple[str, ...]]]:
    """The calc frames among *sent*: (generation, keys)."""
    out = []
    for frame in sent:
        if frame.kind == "calc":
            decoded = decode_client_frame(frame.text)
            assert isinstance(decoded, CalcInput) and list(decoded.requests) == frame.log["requests"]
            out.append((frame.generation, decoded.requests))
    return out


def wu(currency: str, available: float | None) -> Any:
    return decode_exchange_frame(json.dumps([0, "wu", ["funding", currency, 100, 0, available, None, None]]))


FUNDING_KEYS = ("wallet_funding_BTC", "wallet_funding_USD")  # the null-available funding wallets of ws-funding


class TestReads:
    async def test_a_read_waits_for_its_books_snapshot(self, books: Router,
                                                       autojump_clock: trio.testing.MockClock) -> None:
        """A credits read before the fcs snapshot is answered when it arrives, and not by another book's."""
        got: list[Any] = []

        async def read() -> None:
            got.append(await books.client.read_synced("credits", lambda state: state.credits.credits()))

        books.nursery.start_soon(read)  # type: ignore[union-attr]
        await books.ready(1)
        await books.send(FromLink(1, frame_event("ws-funding")), FromLink(1, frame_event("fls-snapshot")))
        assert got == []
        await books.send(FromLink(1, frame_event("fcs-docs-example")))
        assert [c.id for c in got[0]] == [c.id for c in frame_event("fcs-docs-example").credits]

    async def test_a_lost_link_makes_the_books_wait_again(self, books: Router,
                                                           autojump_clock: trio.testing.MockClock) -> None:
        """After LinkDown a wallets read waits for the next link's ws; a snapshot of the dead link does not count."""
        await books.ready(1)
        await books.send(FromLink(1, frame_event("ws-funding")))
        assert len(await books.client.read_synced("wallets", lambda state: state.wallets.wallets())) == 3
        await books.send(LinkDown(1, "gone"), FromLink(1, frame_event("ws-funding")))
        with trio.move_on_after(5) as waited:
            await books.client.read_synced("wallets", lambda state: state.wallets.wallets())
        assert waited.cancelled_caught
        await books.send(FromLink(2, wu("USD", 5.0)))  # an update is not a snapshot
        with trio.move_on_after(5) as waited:
            await books.client.read_synced("wallets", lambda state: state.wallets.wallets())
        assert waited.cancelled_caught
        await books.send(FromLink(2, frame_event("ws-funding")))
        assert len(await books.client.read_synced("wallets", lambda state: state.wallets.wallets())) == 3


class TestCalc:
    async def test_after_the_wallet_snapshot_once_ready(self, books: Router,
                                                        autojump_clock: trio.testing.MockClock) -> None:
        """ws before the session is ready (the simulator's order): the calc goes out once ready, on that link."""
        await books.send(FromLink(1, frame_event("ws-funding")))
        assert calcs(frames(books)) == []
        await books.ready(1)
        assert calcs(frames(books)) == [(1, FUNDING_KEYS)]
        await books.send(FromLink(1, wu("USD", 50.0)), FromLink(1, wu("BTC", 0.1)))
        await trio.sleep(60)
        assert calcs(frames(books)) == []  # every figure known: nothing more to ask

    async def test_never_more_often_than_the_interval(self, books: Router,
                                                      autojump_clock: trio.testing.MockClock) -> None:
        """A wu that forgets a figure right after a calc waits out the interval; requests meanwhile join it."""
        await books.ready(1)
        await books.send(FromLink(1, frame_event("ws-funding")))
        start = trio.current_time()
        assert calcs(frames(books)) == [(1, FUNDING_KEYS)]
        await books.send(FromLink(1, wu("USD", None)))
        await books.client.request_calc(refresh=True)
        await trio.sleep(CALC_INTERVAL_S - 0.01)
        assert calcs(frames(books)) == []
        await trio.sleep(0.02)
        assert calcs(frames(books)) == [(1, ("wallet_funding_USD", "wallet_funding_BTC"))]
        assert trio.current_time() - start >= CALC_INTERVAL_S

    async def test_takes_its_turn_under_the_input_pace(self, nursery: trio.Nursery,
                                                       autojump_clock: trio.testing.MockClock) -> None:
        """With one input a second, a calc queued behind a cancel goes out a second after it, in order."""
        router = Router(pace=1.0, burst=1)
        router.nursery = nursery
        await nursery.start(router.run)
        await router.ready(1)
        await router.cancel(UST, within=30)
        await router.send(FromLink(1, frame_event("ws-funding")))
        first = frames(router)
        assert [f.kind for f in first] == ["foc"]
        await trio.sleep(0.5)
        assert frames(router) == []
        await trio.sleep(0.6)
        assert calcs(frames(router)) == [(1, FUNDING_KEYS)]

    async def test_a_link_lost_before_its_turn_sends_nothing(self, nursery: trio.Nursery,
                                                             autojump_clock: trio.testing.MockClock) -> None:
        """A calc still waiting for its turn when the link drops is dropped; the next link's snapshot asks again."""
        router = Router(pace=1.0, burst=1)
        router.nursery = nursery
        await nursery.start(router.run)
        await router.ready(1)
        await router.cancel(UST, within=30)
        await router.send(FromLink(1, frame_event("ws-funding")), LinkDown(1, "gone"))
        await trio.sleep(10)
        sent = frames(router)
        assert [f.kind for f in sent] == ["foc"]
        await router.send(FromLink(2, frame_event("ws-funding")), SessionReady(2),
                          FromLink(2, frame_event("fos-snapshot")))
        await trio.sleep(10)
        sent = frames(router)
        assert calcs(sent) == [(2, FUNDING_KEYS)]
        foc = [decode_client_frame(f.text) for f in sent if f.kind == "foc"]
        assert foc == [CancelOfferInput(UST)]  # in doubt after the drop, still active: sent again

    async def test_wallets_request_on_demand(self, books: Router, autojump_clock: trio.testing.MockClock) -> None:
        """refresh=False asks only for unknown figures (none: no frame); refresh=True for every funding wallet."""
        await books.ready(1)
        await books.send(FromLink(1, frame_event("ws-funding")), FromLink(1, wu("USD", 1.0)),
                         FromLink(1, wu("BTC", 1.0)))
        frames(books)
        await trio.sleep(CALC_INTERVAL_S)
        await books.client.request_calc(refresh=False)
        await trio.sleep(CALC_INTERVAL_S)
        assert calcs(frames(books)) == []
        await books.client.request_calc(refresh=True)
        await trio.testing.wait_all_tasks_blocked()
        assert calcs(frames(books)) == [(1, FUNDING_KEYS)]


class TestWatchAndAudit:
    async def test_watchers_get_wallet_credit_and_loan_events(self, books: Router,
                                                              autojump_clock: trio.testing.MockClock) -> None:
        watcher = await books.client.subscribe(64)
        await books.send(FromLink(1, frame_event("wu-calc-answer")), FromLink(1, frame_event("fcn")),
                         FromLink(1, frame_event("fcc")), FromLink(1, frame_event("fln")))
        got = [watcher.receive_nowait() for _ in range(4)]
        assert all(isinstance(e, AccountWatchEvent) for e in got)
        bodies = [json.loads(e.line) for e in got]
        assert [(b["event"], b["action"]) for b in bodies] == [("wallet", "update"), ("credit", "new"),
                                                               ("credit", "close"), ("loan", "new")]
        assert bodies[0]["wallet"] == frame_event("wu-calc-answer").wallet.to_json()
        assert bodies[3]["loan"] == frame_event("fln").loan.to_json()

    async def test_every_change_and_every_bad_row_is_logged(self, books: Router,
                                                            autojump_clock: trio.testing.MockClock) -> None:
        with structlog.testing.capture_logs() as logs:
            await books.send(FromLink(1, frame_event("fcs-bad-rows")), FromLink(1, frame_event("fls-snapshot")))
        names = [(e["event"], e["log_level"]) for e in logs]
        assert names == [("exchange.bad_row", "warning")] * 2 + [("credit.snapshot", "info"),
                                                                 ("loan.snapshot", "info")]
        credits = await books.client.read_synced("credits", lambda state: state.credits.credits())
        assert [c.id for c in credits] == [26223578]  # the good row of the three

    async def test_shutdown_ends_held_reads(self, nursery: trio.Nursery,
                                            autojump_clock: trio.testing.MockClock) -> None:
        router = Router()
        router.nursery = nursery
        ended: list[str] = []

        async def read() -> None:
            try:
                await router.client.read_synced("loans", lambda state: state.loans.loans())
            except trio.EndOfChannel:
                ended.append("end")

        async with trio.open_nursery() as inner:
            inner.start_soon(router.run)
            await trio.testing.wait_all_tasks_blocked()
            inner.start_soon(read)
            await trio.testing.wait_all_tasks_blocked()
            router.commands.close()
        assert ended == ["end"]


async def test_cancel_still_works_beside_the_books(books: Router, autojump_clock: trio.testing.MockClock) -> None:
    """The account books do not disturb the inputs: a cancel goes out as the first frame after ready."""
    await books.ready(1)
    request = await books.cancel(UST, within=5)
    assert [f.kind for f in frames(books)] == ["foc"]
    await books.send(FromLink(1, frame_event("n-foc-req-success")))
    assert request.result == Answered(frame_event("n-foc-req-success"))
