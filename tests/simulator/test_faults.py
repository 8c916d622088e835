"""Each fault switch, shown by its effect on the wire."""

from __future__ import annotations

import json

import pytest
import trio
import trio_websocket

from bfxd.protocol import CancelOfferInput, PingEvent, decode_exchange_frame
from bfxd.protocol.events import MaintenanceEnded, MaintenanceStarted, ServerRestarting
from bfxd.simulator import RateLimit

from .wsclient import GUARD_S, connect, start


async def closed_reason(client_ws: trio_websocket.WebSocketConnection) -> trio_websocket.CloseReason:
    """Read until the connection closes; return why."""
    with trio.fail_after(GUARD_S):
        while True:
            try:
                await client_ws.get_message()
            except trio_websocket.ConnectionClosed as closed:
                assert closed.reason is not None
                return closed.reason


class TestDrop:
    async def test_abrupt_drop_has_no_close_frame(self, nursery: trio.Nursery) -> None:
        """drop() ends TCP without a close frame: the client sees 1006 (abnormal closure); nothing stays live."""
        sim = await start(nursery)
        async with connect(sim.url, authenticated=True) as first, connect(sim.url) as second:
            await sim.drop()
            assert (await closed_reason(first.ws)).code == 1006
            assert (await closed_reason(second.ws)).code == 1006
        assert sim.live_connections == []

    async def test_drop_with_close_code(self, nursery: trio.Nursery) -> None:
        """drop(abrupt=False, code, reason) sends a close frame with that code and reason."""
        sim = await start(nursery)
        async with connect(sim.url, authenticated=True) as client:
            with trio.fail_after(GUARD_S):
                await sim.drop(abrupt=False, code=1012, reason="restarting")
            reason = await closed_reason(client.ws)
        assert (reason.code, reason.reason) == (1012, "restarting")
        assert sim.live_connections == []

    async def test_clients_can_reconnect_after_a_drop(self, nursery: trio.Nursery) -> None:
        """After a drop the server still accepts and authenticates new connections."""
        sim = await start(nursery)
        async with connect(sim.url, authenticated=True):
            await sim.drop()
        async with connect(sim.url, authenticated=True):
            with trio.fail_after(GUARD_S):
                await sim.wait_authenticated(2)
        assert sim.connection_count == 2


class TestInfoCodes:
    async def test_restart_info(self, nursery: trio.Nursery) -> None:
        """send_info(20051) reaches every live connection as {"event":"info","code":20051,…}."""
        sim = await start(nursery)
        async with connect(sim.url) as anonymous, connect(sim.url, authenticated=True) as authed:
            await sim.send_info(20051)
            for client in (anonymous, authed):
                assert isinstance(decode_exchange_frame(await client.receive_text()), ServerRestarting)

    async def test_maintenance_as_documented(self, nursery: trio.Nursery) -> None:
        """20060: maintenance (new connections see platform status 0, inputs get error 11000); 20061 ends it."""
        sim = await start(nursery)
        offer_id = next(iter(sim.offers))
        async with connect(sim.url, authenticated=True) as client:
            await sim.send_info(20060)
            assert isinstance(decode_exchange_frame(await client.receive_text()), MaintenanceStarted)
            async with trio_websocket.open_websocket_url(sim.url) as late:
                with trio.fail_after(GUARD_S):
                    assert json.loads(await late.get_message())["platform"] == {"status": 0}
            await client.send([0, "foc", None, {"id": offer_id}])
            assert await client.receive() == {"event": "error", "msg": "Not ready, try again later", "code": 11000}
            assert offer_id in sim.offers
            await client.send({"event": "ping", "cid": 1})  # the link itself stays up
            assert (await client.receive())["event"] == "pong"
            await sim.send_info(20061)
            assert isinstance(decode_exchange_frame(await client.receive_text()), MaintenanceEnded)
            await client.send([0, "foc", None, {"id": offer_id}])
            assert (await client.receive())[2][6] == "SUCCESS"


class TestSilence:
    async def test_stall_sends_and_answers_nothing_but_keeps_tcp(self, nursery: trio.Nursery) -> None:
        """stall(): no answers, no heartbeats, the connection stays open and frames are still recorded; un-stalled,
        new frames are answered again (those sent during the stall never are)."""
        sim = await start(nursery, hb_interval=0.05)
        async with connect(sim.url, authenticated=True) as client:
            assert await client.receive() == [0, "hb"]
            sim.stall()
            # Frames already on their way may still arrive; then nothing.
            await client.send({"event": "ping", "cid": 1})
            with trio.fail_after(GUARD_S):
                await sim.wait_received(lambda r: isinstance(r.event, PingEvent))
            with trio.move_on_after(0.4):
                while True:
                    frame = await client.receive()
                    assert frame == [0, "hb"], frame  # only leftovers from before the stall
            assert await client.nothing_within(0.3)
            assert sim.live_connections == [1]
            sim.stall(False)
            await client.send({"event": "ping", "cid": 2})
            frames = await client.receive_until(lambda f: isinstance(f, dict))
            assert frames[-1]["cid"] == 2

    async def test_stalled_server_greets_no_one(self, nursery: trio.Nursery) -> None:
        """A connection opened during a stall gets no info event."""
        sim = await start(nursery)
        sim.stall()
        async with trio_websocket.open_websocket_url(sim.url) as ws:
            with trio.move_on_after(0.3) as silent:
                await ws.get_message()
        assert silent.cancelled_caught

    async def test_delayed_answers(self, nursery: trio.Nursery) -> None:
        """delay_answers(s): the frame is recorded on arrival and answered s seconds later, in order."""
        sim = await start(nursery)
        sim.delay_answers(1.0)  # long enough that recording it on arrival is clearly earlier, even on slow CI
        async with connect(sim.url) as client:
            sent = trio.current_time()
            await client.send({"event": "ping", "cid": 1})
            await client.send({"event": "ping", "cid": 2})
            with trio.fail_after(GUARD_S):
                await sim.wait_received(lambda r: isinstance(r.event, PingEvent), count=2)
            assert trio.current_time() - sent < 1.0
            assert (await client.receive())["cid"] == 1
            assert trio.current_time() - sent >= 1.0
            assert (await client.receive())["cid"] == 2
        with pytest.raises(ValueError):
            sim.delay_answers(-1)


class TestLostAndRefused:
    async def test_lost_inputs_get_no_answer(self, nursery: trio.Nursery) -> None:
        """lose_inputs(1): the next foc is read and dropped (no n, offer untouched); the one after is answered."""
        sim = await start(nursery)
        offer_id = next(iter(sim.offers))
        sim.lose_inputs(1)
        async with connect(sim.url, authenticated=True) as client:
            await client.send([0, "foc", None, {"id": offer_id}])
            await client.send({"event": "ping", "cid": 9})
            assert (await client.receive())["event"] == "pong"  # nothing came for the foc before it
            assert offer_id in sim.offers
            await client.send([0, "foc", None, {"id": offer_id}])
            assert (await client.receive())[2][6] == "SUCCESS"
        assert len([r for r in sim.received if isinstance(r.event, CancelOfferInput)]) == 2

    async def test_reject_auth(self, nursery: trio.Nursery) -> None:
        """reject_auth(n, code, message): the next n auths fail so, good credentials or not; then auth works."""
        sim = await start(nursery)
        sim.reject_auth()
        sim.reject_auth(1, code=10113, message="apikey: encryption")
        async with connect(sim.url) as client:
            assert (await client.authenticate())[0] == {"event": "auth", "status": "FAILED", "chanId": 0,
                                                        "msg": "apikey: invalid", "code": 10100}
            assert (await client.authenticate())[0]["code"] == 10113
            assert (await client.authenticate())[0]["status"] == "OK"

    async def test_nonce_error(self, nursery: trio.Nursery) -> None:
        """nonce_error(n): the next n auths get 10114 "nonce: small"; the key's nonce does not move."""
        sim = await start(nursery)
        sim.nonce_error(1)
        async with connect(sim.url) as client:
            [failed] = await client.authenticate(nonce=50)
            assert (failed["code"], failed["msg"]) == (10114, "nonce: small")
            assert (await client.authenticate(nonce=50))[0]["status"] == "OK"


class TestInjectedFrames:
    async def test_send_raw_reaches_authenticated_connections(self, nursery: trio.Nursery) -> None:
        """send_raw(text) puts the text, malformed or not, on every authenticated connection, verbatim."""
        sim = await start(nursery)
        async with connect(sim.url, authenticated=True) as authed, connect(sim.url) as anonymous:
            await sim.send_raw('[0,"fos",{not json')
            assert await authed.receive_text() == '[0,"fos",{not json'
            assert await anonymous.nothing_within(0.1)

    async def test_push_a_well_formed_frame(self, nursery: trio.Nursery) -> None:
        """push(frame) delivers a hand-made account frame (e.g. a fou) as is."""
        sim = await start(nursery)
        frame = json.dumps([0, "fou", [1, "fUSD", 1, 2, 5.0, 10.0, "LIMIT", None, None, 0,
                                       "PARTIALLY FILLED at 0.02% (5.0)", None, None, None, 0.0002, 2, 0, 0,
                                       None, 0, None]])
        async with connect(sim.url, authenticated=True) as client:
            await sim.push(frame)
            assert await client.receive_text() == frame


class TestRateLimit:
    async def test_inputs_over_the_limit_get_the_error_then_a_disconnect(self, nursery: trio.Nursery) -> None:
        """Beyond max_inputs per window: error ERR_RATE_LIMIT (10001), then close 1008; earlier inputs answered."""
        sim = await start(nursery)
        sim.set_rate_limit(3, 60)
        async with connect(sim.url, authenticated=True) as client:
            for _ in range(4):
                await client.send([0, "foc", None, {"id": 1}])
            answers = [await client.receive() for _ in range(4)]
            assert [a[2][6] for a in answers[:3]] == ["ERROR"] * 3
            assert answers[3] == {"event": "error", "msg": "ERR_RATE_LIMIT", "code": 10001}
            reason = await closed_reason(client.ws)
        assert (reason.code, reason.reason) == (1008, "ERR_RATE_LIMIT")

    async def test_limit_counts_a_sliding_window(self, nursery: trio.Nursery) -> None:
        """Inputs spread wider than the window are all answered (the config's rate_limit is the initial one)."""
        sim = await start(nursery, rate_limit=RateLimit(max_inputs=1, per_seconds=0.1))
        async with connect(sim.url, authenticated=True) as client:
            for _ in range(2):
                await client.send([0, "foc", None, {"id": 1}])
                assert (await client.receive())[1] == "n"
                await trio.sleep(0.15)  # the point of the test: inputs further apart than the window
        with pytest.raises(ValueError):
            RateLimit.parse("ten")

