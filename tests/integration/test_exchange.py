"""The exchange side (connection, auth, heartbeat, account actors) against the simulator over loopback.

One test per fault the exchange can throw, through the internal API the inbox uses (AccountClient).
Real sockets, so the real clock with generous hang guards.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from functools import partial

import attrs
import pytest
import trio
from tests.integration.helpers import API_KEY, API_SECRET, GUARD_S, fast_link

from bfxd.actors.account import AccountSettings
from bfxd.actors.api import AccountClient
from bfxd.actors.auth import AuthSettings
from bfxd.actors.channels import ChannelBoard
from bfxd.actors.session import SessionBoard
from bfxd.daemon import open_channels
from bfxd.exchange import run_exchange_side
from bfxd.protocol import CancelOfferInput, FundingOffer
from bfxd.protocol.input_kinds import Answered, CancelInput, NoLongerActive, NotReady, TimedOut
from bfxd.secret import Secret
from bfxd.simulator import Simulator, SimulatorConfig
from conftest import board_reaches


@attrs.define
class Rig:
    sim: Simulator
    board: SessionBoard
    account: AccountClient

    async def wait_state(self, state: str) -> None:
        with trio.fail_after(GUARD_S):
            while self.board.state != state:
                await self.board.wait_changed(self.board.snapshot().version)

    async def wait_synced(self) -> None:
        """Until the book holds the simulator's offers (the fos snapshot follows the auth answer)."""
        with trio.fail_after(GUARD_S):
            await board_reaches(self.board, lambda board: board.offers == len(self.sim.offers))

    async def cancel(self, offer_id: int, *, within: float = GUARD_S, request_id: str = "t") -> object:
        return await self.account.send(CancelInput(offer_id), request_id=request_id,
                                       deadline=trio.current_time() + within)

    async def offers(self) -> list[FundingOffer]:
        return await self.account.read(lambda state: state.book.offers())

    def cancel_in(self, nursery: trio.Nursery, offer_id: int) -> list[object]:
        """Start a cancel in *nursery*; its one result lands in the returned list."""
        results: list[object] = []

        async def cancel() -> None:
            results.append(await self.cancel(offer_id))

        nursery.start_soon(cancel)
        return results

    def foc_frames(self, offer_id: int) -> list[object]:
        return [r for r in self.sim.received
                if isinstance(r.event, CancelOfferInput) and r.event.offer_id == offer_id]


async def _rig(nursery: trio.Nursery, *, heartbeat_timeout: float = 30.0, **sim_config: object) -> Rig:
    sim = Simulator(SimulatorConfig(api_key=API_KEY, api_secret=API_SECRET, **sim_config))  # type: ignore[arg-type]
    url = await nursery.start(sim.serve)
    board = SessionBoard()
    (commands_in, commands), channels = open_channels(ChannelBoard())
    auth = AuthSettings(api_key=Secret(API_KEY), api_secret=Secret(API_SECRET), auth_timeout=5.0, retry_delay=0.3)
    await nursery.start(partial(run_exchange_side, link=fast_link(url, heartbeat_timeout=heartbeat_timeout),
                                auth=auth, account=AccountSettings(inputs_per_second=1000.0, input_burst=1000),
                                board=board, commands=commands, channels=channels))
    rig = Rig(sim, board, AccountClient(commands_in, board))
    await rig.wait_state("ready")
    await rig.wait_synced()
    return rig


@pytest.fixture
async def rig(nursery: trio.Nursery) -> AsyncIterator[Rig]:
    yield await _rig(nursery)


async def test_ready_with_the_snapshot_as_the_book(rig: Rig) -> None:
    """After auth the book holds exactly the simulator's active offers."""
    offers = await rig.offers()
    assert {o.id for o in offers} == set(rig.sim.offers)
    assert rig.board.offers == len(rig.sim.offers) > 0
    assert rig.board.user_id == SimulatorConfig().user_id


async def test_cancel_success_reaches_the_requester(rig: Rig) -> None:
    """A cancel gets the foc-req SUCCESS notification for its offer, and the book drops the offer."""
    offer_id = min(rig.sim.offers)
    result = await rig.cancel(offer_id)
    assert isinstance(result, Answered) and result.succeeded
    assert result.notification.offer_id == offer_id
    with trio.fail_after(GUARD_S):
        while offer_id in {o.id for o in await rig.offers()}:
            await trio.testing.wait_all_tasks_blocked()
    assert len(rig.foc_frames(offer_id)) == 1


async def test_cancel_of_an_unknown_id_passes_the_exchange_error_back(rig: Rig) -> None:
    """An unknown id is refused by the exchange, and its ERROR text reaches the requester."""
    result = await rig.cancel(987654321)
    assert isinstance(result, Answered) and not result.succeeded
    assert result.notification.status == "ERROR"
    assert result.notification.text  # the exchange's own words, passed through


async def test_duplicate_cancels_share_one_frame(rig: Rig) -> None:
    """Two requesters of the same offer at once: one foc frame on the wire, both answered."""
    offer_id = min(rig.sim.offers)
    rig.sim.delay_answers(0.3)  # keep the first cancel pending while the second arrives
    results: list[object] = []

    async def one(name: str) -> None:
        results.append(await rig.cancel(offer_id, request_id=name))

    async with trio.open_nursery() as nursery:
        nursery.start_soon(one, "a")
        nursery.start_soon(one, "b")
    assert len(results) == 2
    assert all(isinstance(r, Answered) and r.succeeded for r in results)
    assert len(rig.foc_frames(offer_id)) == 1


async def test_abrupt_drop_reconnects_and_reauthenticates(rig: Rig) -> None:
    """A TCP drop without a close frame is followed by a new link, a new auth and a ready session."""
    await rig.sim.drop(abrupt=True)
    with trio.fail_after(GUARD_S):
        await rig.sim.wait_authenticated(2)
    await rig.wait_state("ready")
    assert rig.board.reconnects == 1


async def test_close_frame_reconnects(rig: Rig) -> None:
    """A polite close from the exchange is followed by a new ready session."""
    await rig.sim.drop(abrupt=False, code=1001, reason="going away")
    with trio.fail_after(GUARD_S):
        await rig.sim.wait_authenticated(2)
    await rig.wait_state("ready")


async def test_drop_with_a_cancel_in_flight_is_resent_and_answered_once(rig: Rig) -> None:
    """A foc lost with its link is sent again after re-auth (the offer is still active) and answered once."""
    offer_id = min(rig.sim.offers)
    rig.sim.lose_inputs(1)  # the first foc is swallowed: sent, never answered
    async with trio.open_nursery() as nursery:
        results = rig.cancel_in(nursery, offer_id)
        with trio.fail_after(GUARD_S):
            await rig.sim.wait_received(lambda r: isinstance(r.event, CancelOfferInput))
        await rig.sim.drop(abrupt=True)
    assert len(results) == 1
    assert isinstance(results[0], Answered) and results[0].succeeded
    assert len(rig.foc_frames(offer_id)) == 2  # once on the dead link, once on its successor
    assert rig.board.pending == 0


async def test_drop_with_a_cancel_in_flight_and_the_offer_gone(rig: Rig) -> None:
    """If the fresh snapshot no longer lists the offer, the requester is told it is no longer active."""
    offer_id = min(rig.sim.offers)
    rig.sim.lose_inputs(1)
    async with trio.open_nursery() as nursery:
        results = rig.cancel_in(nursery, offer_id)
        with trio.fail_after(GUARD_S):
            await rig.sim.wait_received(lambda r: isinstance(r.event, CancelOfferInput))
        await rig.sim.execute_offer(offer_id)  # gone while our frame was lost
        await rig.sim.drop(abrupt=True)
    assert results == [NoLongerActive(offer_id)]
    assert len(rig.foc_frames(offer_id)) == 1


async def test_info_20051_reconnects_at_once(rig: Rig) -> None:
    """Info 20051 (server restart) replaces the link without waiting for a backoff."""
    await rig.sim.send_info(20051)
    with trio.fail_after(GUARD_S):
        await rig.sim.wait_authenticated(2)
    await rig.wait_state("ready")
    assert rig.board.reconnects == 1


async def test_maintenance_holds_a_cancel_until_it_ends(rig: Rig) -> None:
    """During maintenance a cancel is held (no frame); after 20061 the session resyncs and sends it."""
    offer_id = min(rig.sim.offers)
    await rig.sim.send_info(20060)
    await rig.wait_state("maintenance")
    async with trio.open_nursery() as nursery:
        results = rig.cancel_in(nursery, offer_id)
        with trio.fail_after(GUARD_S):
            while rig.board.pending == 0:
                await trio.testing.wait_all_tasks_blocked()
        assert rig.foc_frames(offer_id) == []  # held, not sent
        await rig.sim.send_info(20061)
    assert isinstance(results[0], Answered) and results[0].succeeded
    assert len(rig.foc_frames(offer_id)) == 1
    assert rig.sim.authenticated_count == 2  # re-authenticated on a fresh link


async def test_cancel_waits_for_a_session_then_reports_not_ready(rig: Rig) -> None:
    """With every auth refused, a cancel is never sent and ends NotReady at its deadline."""
    rig.sim.reject_auth(1000)
    await rig.sim.drop(abrupt=True)
    await rig.wait_state("auth_failed")
    offer_id = min(rig.sim.offers)
    assert await rig.cancel(offer_id, within=0.5) == NotReady()
    assert rig.foc_frames(offer_id) == []


async def test_auth_rejected_then_accepted(rig: Rig) -> None:
    """A refused auth shows auth_failed with the exchange's code, then a later attempt succeeds."""
    rig.sim.reject_auth(1, code=10100, message="apikey: invalid")
    await rig.sim.drop(abrupt=True)
    await rig.wait_state("auth_failed")
    assert "10100" in (rig.board.snapshot().detail or "")
    await rig.wait_state("ready")
    assert rig.sim.authenticated_count == 2


async def test_nonce_error_retries_with_a_larger_nonce(rig: Rig) -> None:
    """A nonce error is retried at once on a new link with a nonce well past the refused one."""
    rig.sim.nonce_error(1)
    await rig.sim.drop(abrupt=True)
    with trio.fail_after(GUARD_S):
        await rig.sim.wait_authenticated(2)
    await rig.wait_state("ready")
    nonces = [int(json.loads(r.text)["authNonce"]) for r in rig.sim.received if '"auth"' in r.text]
    assert len(nonces) == 3
    assert nonces[2] >= nonces[1] + 1_000_000  # pushed a second past the refused one
    assert nonces == sorted(set(nonces))


async def test_malformed_frames_are_skipped_not_fatal(rig: Rig) -> None:
    """Garbage and ill-typed frames from the exchange cost neither the link nor later answers."""
    for text in ("{not json", '[0,"fon",[1,2]]', '[0,"n",["x"]]', '{"event":"nope"}', "[]", '"str"'):
        await rig.sim.send_raw(text)
    offer_id = min(rig.sim.offers)
    result = await rig.cancel(offer_id)
    assert isinstance(result, Answered) and result.succeeded
    assert rig.board.reconnects == 0


async def test_lost_answer_times_out_with_outcome_unknown(rig: Rig) -> None:
    """A frame sent but never answered ends TimedOut at the deadline, and nothing stays pending."""
    rig.sim.lose_inputs(1)
    assert await rig.cancel(min(rig.sim.offers), within=0.5) == TimedOut()
    with trio.fail_after(GUARD_S):
        await board_reaches(rig.board, lambda board: board.pending == 0)  # the entry left the table at its deadline


async def test_stalled_link_is_detected_and_replaced(nursery: trio.Nursery) -> None:
    """A link that goes silent (no heartbeat, no pong) is declared dead within the timeout and replaced."""
    rig = await _rig(nursery, heartbeat_timeout=1.0, hb_interval=0.2)
    rig.sim.stall()
    started = trio.current_time()
    await rig.wait_state("backoff")
    assert trio.current_time() - started < 1.0 + 0.5
    pings = [r for r in rig.sim.received if '"ping"' in r.text]
    assert pings  # a ping went out at half the timeout before the verdict
    rig.sim.stall(False)
    await rig.wait_state("ready")


async def test_rate_limit_disconnect_is_survived(rig: Rig) -> None:
    """The exchange's input rate limit closing the link is survived: cancels are answered after the relink."""
    rig.sim.set_rate_limit(2, 60.0)
    ids = sorted(rig.sim.offers)[:4]
    results: dict[int, object] = {}

    async def cancel(offer_id: int) -> None:
        results[offer_id] = await rig.cancel(offer_id)

    async with trio.open_nursery() as nursery:
        for offer_id in ids:
            nursery.start_soon(cancel, offer_id)
        with trio.fail_after(GUARD_S):
            await rig.sim.wait_received(lambda r: isinstance(r.event, CancelOfferInput), count=3)
        rig.sim.set_rate_limit(1000, 1.0)
    assert set(results) == set(ids)
    assert all(isinstance(r, (Answered, NoLongerActive)) for r in results.values())
