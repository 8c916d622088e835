"""bfxd.client.AsyncClient against the scripted fake daemon. The suite runs in trio mode, so each test drives its
own asyncio loop with asyncio.run (which is also how an asyncio bot runs it)."""

from __future__ import annotations

import asyncio
from decimal import Decimal

import pytest
from tests.fake_daemon import OFFER, STATUS, WALLET, Peer, answering, cancelled, exchange_error, ok, refused

from bfxd import client
from bfxd.client import AsyncClient, errors


def test_reads_writes_and_the_shared_connection(serve) -> None:
    """status, offers, wallets, submit and cancel over one connection, one hello; results typed and exact."""
    def respond(req: dict) -> dict:
        if req["op"] == "submit":
            return ok(req, offer={**OFFER, "id": 3, "rate": 0.00031}, status="SUCCESS", text="ok")
        if req["op"] == "cancel":
            return cancelled(req)
        return ok(req, **{"status": {"status": STATUS}, "offers": {"offers": [OFFER]},
                          "wallets": {"wallets": [WALLET]}}[req["op"]])

    async def main() -> tuple:
        async with AsyncClient(daemon.path) as bfxd:
            return (await bfxd.status(), await bfxd.offers(), await bfxd.wallets(),
                    await bfxd.submit("fUSD", "100", Decimal("0.00031"), 2), await bfxd.cancel(3))

    daemon = serve(answering(respond))
    status, offers, wallets, submitted, done = asyncio.run(main())
    assert status.ready and offers[0].rate == Decimal("0.0002") and wallets[0].available == 1000
    assert submitted.offer.rate == Decimal("0.00031") and done.ok
    assert (daemon.connections, len(daemon.hellos)) == (1, 1)
    assert daemon.requests[3]["amount"] == "100" and daemon.requests[3]["rate"] == "0.00031"


def test_concurrent_calls_share_the_connection_safely(serve) -> None:
    """Ten tasks calling at once each get their own answer (the client serialises its exchanges)."""
    daemon = serve(answering(lambda req: cancelled(req)))

    async def main() -> list:
        async with AsyncClient(daemon.path) as bfxd:
            return await asyncio.gather(*(bfxd.cancel(i) for i in range(1, 11)))

    assert [r.id for r in asyncio.run(main())] == list(range(1, 11))


def test_errors_are_the_same_classes(serve) -> None:
    """An exchange refusal raises ExchangeError; cancel_many returns failures as values."""
    daemon = serve(answering(lambda req: exchange_error(req) | {"id": req["id"]} if req["id"] == 2
                             else cancelled(req)))

    async def main() -> list:
        async with AsyncClient(daemon.path) as bfxd:
            with pytest.raises(errors.ExchangeError):
                await bfxd.cancel(2)
            return await bfxd.cancel_many([1, 2])

    first, second = asyncio.run(main())
    assert first.ok and not second.ok and second.error.text == "Offer not found"


def test_unknown_protocol_and_unreachable(serve, tmp_path) -> None:
    """ProtocolMismatch for a protocol it does not know; DaemonUnreachable without a socket."""
    daemon = serve(answering(lambda req: ok(req, status=STATUS)), hello={"protocol": 9, "version": "9", "ops": [],
                                                                         "events": []})

    async def main() -> None:
        with pytest.raises(errors.ProtocolMismatch):
            await AsyncClient(daemon.path).status()
        with pytest.raises(errors.DaemonUnreachable):
            await AsyncClient(str(tmp_path / "none.sock")).status()

    asyncio.run(main())
    assert daemon.requests == []


def test_watch_is_an_async_iterator(serve) -> None:
    """await watch() subscribes; async for yields typed events and ends after WatchEnded."""
    lines = [{"event": "offer", "action": "cancel", "offer": OFFER}, {"event": "watch_ended", "reason": "stopping"}]
    daemon = serve(lambda peer: (peer.send(ok(peer.read()), *lines), peer.hang()))

    async def main() -> list:
        async with await AsyncClient(daemon.path).watch() as watch:
            return [event async for event in watch]

    received = asyncio.run(main())
    assert [type(e) for e in received] == [client.OfferEvent, client.WatchEnded]


def test_a_read_reconnects(serve) -> None:
    """A read that loses its connection is sent again on a new one, as with Client."""
    def handler(peer: Peer) -> None:
        request = peer.read()
        if peer.daemon.connections > 1:
            peer.send(ok(request, status=STATUS))
            peer.read_or_none()

    daemon = serve(handler)

    async def main() -> bool:
        async with AsyncClient(daemon.path) as bfxd:
            return (await bfxd.status()).ready

    assert asyncio.run(main()) and daemon.ops == ["status", "status"]


def test_not_sent_raises_its_class(serve) -> None:
    daemon = serve(answering(lambda req: refused(req, "not_sent", "no turn before the deadline")))

    async def main() -> None:
        async with AsyncClient(daemon.path) as bfxd:
            await bfxd.replace(5, rate="0.0003")

    with pytest.raises(errors.NotSent):
        asyncio.run(main())
    assert daemon.ops == ["replace"]


def test_a_write_is_resent_only_when_it_was_not_sent(serve) -> None:
    """As with Client: the daemon closed the idle connection, so the submit could not be written on it; it goes
    out on a new connection, once."""
    import socket
    import threading

    closed = threading.Event()

    def handler(peer: Peer) -> None:
        request = peer.read()
        if request["op"] == "status":
            peer.send(ok(request, status=STATUS))
            peer.conn.shutdown(socket.SHUT_RDWR)
            closed.set()
            return
        peer.send(ok(request, offer=OFFER, status="SUCCESS", text="ok"))
        peer.read_or_none()

    daemon = serve(handler)

    async def main() -> int | None:
        async with AsyncClient(daemon.path) as bfxd:
            await bfxd.status()
            assert await asyncio.to_thread(closed.wait, 10)
            return (await bfxd.submit("fUSD", 100, "0.0002", 2)).offer.id

    assert asyncio.run(main()) == OFFER["id"]
    assert daemon.ops == ["status", "submit"] and daemon.connections == 2
