"""bfxd.client against the real daemon and the simulator, for the ops today's daemon serves.

The client blocks, and the daemon runs in this test's trio loop, so each call goes through trio.to_thread:
which is also how a Trio program uses the client (README, "Client library"). Every answer and event line the
client received is checked against the protocol schema.
"""

from __future__ import annotations

import asyncio
from decimal import Decimal
from functools import partial
from typing import TYPE_CHECKING

import pytest
import trio
from tests.integration.helpers import GUARD_S
from tests.jsonlines import loads

from bfxd import client
from bfxd.client import AsyncClient, Client, errors
from bfxd.protocol import CancelOfferInput

if TYPE_CHECKING:
    from tests.integration.conftest import LogWatch, RunningDaemon

    from bfxd.simulator import Simulator


async def call(function, *args, **kwargs):  # type: ignore[no-untyped-def]
    with trio.fail_after(GUARD_S):
        return await trio.to_thread.run_sync(partial(function, *args, **kwargs))


async def test_hello_status_offers(daemon: RunningDaemon, sim: Simulator) -> None:
    """hello (protocol 0 or 1), a ready status, and the live book with exact Decimal rates."""
    with Client(daemon.socket_path) as bfxd:
        hello = await call(bfxd.hello)
        status = await call(bfxd.status)
        offers = await call(bfxd.offers)
    assert hello.protocol in client.PROTOCOLS and "cancel" in hello.ops
    assert status.ready and status.user_id == sim.config.user_id and status.offers == len(sim.offers)
    assert sorted(o.id for o in offers) == sorted(sim.offers)
    for offer in offers:
        assert isinstance(offer.rate, Decimal) and offer.rate == Decimal(repr(sim.offers[offer.id].rate))
    for line in (status.line, offers.line) + ((hello.line,) if hello.protocol else ()):
        loads(line)


async def test_cancel_many_and_a_refusal(daemon: RunningDaemon, sim: Simulator) -> None:
    """Two known offers and an unknown id, pipelined: two cancelled, one ExchangeError "Offer not found"."""
    first, second = sorted(sim.offers)[:2]
    with Client(daemon.socket_path) as bfxd:
        results = await call(bfxd.cancel_many, [first, 123456789, second])
    assert [(r.id, r.ok) for r in results] == [(first, True), (123456789, False), (second, True)]
    assert isinstance(results[1].error, errors.ExchangeError) and results[1].error.text == "Offer not found"
    assert first not in sim.offers and second not in sim.offers
    assert sum(isinstance(r.event, CancelOfferInput) for r in sim.received) == 3
    for result in results:
        loads(result.line)


async def test_cancel_all_and_cancel_raises(daemon: RunningDaemon, sim: Simulator) -> None:
    """cancel_all empties the book; a cancel of a gone offer raises ExchangeError."""
    count = len(sim.offers)
    gone = min(sim.offers)
    with Client(daemon.socket_path) as bfxd:
        results = await call(bfxd.cancel_all)
        with pytest.raises(errors.ExchangeError):
            await call(bfxd.cancel, gone)
    assert len(results) == count and all(r.ok for r in results) and sim.offers == {}
    loads(results.line)


async def test_watch_events_then_watch_ended(daemon: RunningDaemon, sim: Simulator, log_watch: LogWatch) -> None:
    """A cancel shows as an OfferEvent; the daemon stopping ends the watch with WatchEnded."""
    target = min(sim.offers)
    bfxd = Client(daemon.socket_path)
    watch = await call(bfxd.watch)
    received: list[client.Event] = []

    def read_all() -> None:
        received.extend(watch)

    async with trio.open_nursery() as nursery:
        nursery.start_soon(partial(trio.to_thread.run_sync, read_all, abandon_on_cancel=True))
        await call(bfxd.cancel, target)
        await log_watch.wait_for("offer.cancel", offer_id=target)
        await daemon.shut_down()
    assert isinstance(received[-1], client.WatchEnded)
    cancels = [e for e in received if isinstance(e, client.OfferEvent) and e.action == "cancel"]
    assert [e.offer.id for e in cancels] == [target]
    for event in received:
        loads(event.line)
    bfxd.close()


async def test_async_client_in_its_own_loop(daemon: RunningDaemon, sim: Simulator) -> None:
    """AsyncClient in an asyncio loop on a worker thread: status and a cancel against the real daemon."""
    target = min(sim.offers)

    async def main() -> tuple[client.Status, client.CancelResult]:
        async with AsyncClient(daemon.socket_path) as bfxd:
            return await bfxd.status(), await bfxd.cancel(target)

    status, done = await call(asyncio.run, main())
    assert status.ready and done.ok and done.offer is not None and target not in sim.offers


async def test_a_read_survives_a_daemon_restart(start_daemon, sim: Simulator) -> None:  # type: ignore[no-untyped-def]
    """A Client whose daemon restarted reconnects by itself for a read."""
    first = await start_daemon()
    bfxd = Client(first.socket_path)
    assert (await call(bfxd.status)).ready
    await first.shut_down()
    await start_daemon()  # the same socket path
    status = await call(bfxd.status)
    bfxd.close()
    assert status.ready
