"""The simulator speaks the documented protocol: greeting, auth, snapshots, heartbeats, ping, inputs, book changes."""

from __future__ import annotations

import json
from decimal import Decimal

import attrs
import pytest
import trio
import trio_websocket

from bfxd.protocol import (
    AuthRequest,
    CancelOfferInput,
    FundingOffer,
    OfferCancel,
    OffersSnapshot,
    PingEvent,
    auth_signature,
    decode_exchange_frame,
)
from bfxd.secret import Secret
from bfxd.simulator import Account, Simulator, SimulatorConfig

from .wsclient import GUARD_S, KEY, SECRET, auth_text, connect, kinds, start


def offer_from(frame: list[object]) -> FundingOffer:
    return FundingOffer.from_wire(frame[2])


class TestGreetingAndAuth:
    async def test_info_on_connect(self, nursery: trio.Nursery) -> None:
        """A new connection first gets the info event: version 2, a server id, platform status 1."""
        sim = await start(nursery)
        async with trio_websocket.open_websocket_url(sim.url) as ws:
            with trio.fail_after(GUARD_S):
                info = json.loads(await ws.get_message())
        assert info["event"] == "info" and info["version"] == 2 and info["platform"] == {"status": 1}
        assert isinstance(info["serverId"], str)

    async def test_url_and_wrong_path(self, nursery: trio.Nursery) -> None:
        """The server answers on /ws/2 only; another path gets HTTP 404."""
        sim = await start(nursery)
        assert sim.url.startswith("ws://127.0.0.1:") and sim.url.endswith("/ws/2")
        with pytest.raises(trio_websocket.ConnectionRejected) as rejected, trio.fail_after(GUARD_S):
            async with trio_websocket.open_websocket_url(sim.url.replace("/ws/2", "/ws/1")):
                pass
        assert rejected.value.status_code == 404

    async def test_auth_ok_then_snapshots_in_order(self, nursery: trio.Nursery) -> None:
        """A valid auth gets OK with the user id, then ps, ws, os, fos, fcs, fls; fos holds the account's offers."""
        sim = await start(nursery, offers=4)
        async with connect(sim.url) as client:
            frames = await client.authenticate()
        assert frames[0]["status"] == "OK" and frames[0]["userId"] == 1234567 and frames[0]["chanId"] == 0
        assert kinds(frames[1:]) == ["ps", "ws", "os", "fos", "fcs", "fls"]
        snapshot = decode_exchange_frame(json.dumps(frames[4]))
        assert isinstance(snapshot, OffersSnapshot)
        assert {o.id: o for o in snapshot.offers} == sim.offers and len(sim.offers) == 4
        assert all(o.status == "ACTIVE" for o in snapshot.offers)
        assert sim.authenticated_count == 1

    async def test_filter_limits_the_snapshots(self, nursery: trio.Nursery) -> None:
        """With filter [funding, notify] only the funding snapshots come; funding-SYMBOL narrows fos to a symbol."""
        sim = await start(nursery, offers=8)
        async with connect(sim.url) as client:
            frames = await client.authenticate(filter=("funding", "notify"))
        assert kinds(frames[1:]) == ["fos", "fcs", "fls"]
        symbol = next(iter(sim.offers.values())).symbol
        async with connect(sim.url) as client:
            frames = await client.authenticate(filter=(f"funding-{symbol}",))
        assert {offer[1] for offer in frames[1][2]} == {symbol}

    @pytest.mark.parametrize(
        ("auth", "code", "msg"),
        [
            ({"key": "other-key"}, 10100, "apikey: invalid"),
            ({"secret": "wrong-secret"}, 10100, "apikey: digest invalid"),
        ],
    )
    async def test_bad_credentials_are_refused(self, nursery: trio.Nursery, auth: dict[str, str], code: int,
                                               msg: str) -> None:
        """A wrong key or signature gets auth FAILED with the exchange's code and message; nothing follows."""
        sim = await start(nursery)
        async with connect(sim.url) as client:
            [answer] = await client.authenticate(**auth)
            assert answer == {"event": "auth", "status": "FAILED", "chanId": 0, "msg": msg, "code": code}
            assert await client.nothing_within(0.2)
        assert sim.authenticated_count == 0

    async def test_payload_must_match_nonce(self, nursery: trio.Nursery) -> None:
        """authPayload other than AUTH+nonce is a payload error (10111), even when signed."""
        sim = await start(nursery)
        frame = json.loads(auth_text(nonce=5))
        frame["authNonce"] = "6"
        async with connect(sim.url) as client:
            await client.send(frame)
            answer = await client.receive()
        assert (answer["status"], answer["code"]) == ("FAILED", 10111)

    async def test_nonce_must_grow_per_key_across_connections(self, nursery: trio.Nursery) -> None:
        """A nonce not above the last accepted one for the key gets 10114 "nonce: small"; a larger one is fine."""
        sim = await start(nursery)
        async with connect(sim.url) as first, connect(sim.url) as second:
            assert (await first.authenticate(nonce=1000))[0]["status"] == "OK"
            [small] = await second.authenticate(nonce=1000)
            assert (small["status"], small["code"], small["msg"]) == ("FAILED", 10114, "nonce: small")
            assert (await second.authenticate(nonce=1001))[0]["status"] == "OK"
        assert sim.authenticated_count == 2

    async def test_second_auth_on_a_connection_fails(self, nursery: trio.Nursery) -> None:
        """A connection stays authenticated; auth again is refused (10100 auth: dup)."""
        sim = await start(nursery)
        async with connect(sim.url, authenticated=True) as client:
            [again] = await client.authenticate()
        assert (again["status"], again["code"], again["msg"]) == ("FAILED", 10100, "auth: dup")

    async def test_input_before_auth_gets_the_error(self, nursery: trio.Nursery) -> None:
        """An input on a connection that has not authenticated gets error 10100 "auth: invalid"."""
        sim = await start(nursery)
        offer_id = next(iter(sim.offers))
        async with connect(sim.url) as client:
            await client.send([0, "foc", None, {"id": offer_id}])
            assert await client.receive() == {"event": "error", "msg": "auth: invalid", "code": 10100}
        assert offer_id in sim.offers

    async def test_each_connection_has_its_own_auth_state(self, nursery: trio.Nursery) -> None:
        """Of two concurrent connections only the authenticated one may send inputs."""
        sim = await start(nursery)
        offer_id = next(iter(sim.offers))
        async with connect(sim.url, authenticated=True) as authed, connect(sim.url) as anonymous:
            await anonymous.send([0, "foc", None, {"id": offer_id}])
            assert (await anonymous.receive())["event"] == "error"
            await authed.send([0, "foc", None, {"id": offer_id}])
            assert (await authed.receive())[1] == "n"
            assert sim.live_connections == [1, 2] and sim.connection_count == 2


class TestControlFrames:
    async def test_ping_pong_keeps_cid(self, nursery: trio.Nursery) -> None:
        """ping gets pong with the same cid and a millisecond ts, before auth too."""
        sim = await start(nursery)
        async with connect(sim.url) as client:
            await client.send({"event": "ping", "cid": 4242})
            pong = await client.receive()
        assert pong["event"] == "pong" and pong["cid"] == 4242 and pong["ts"] > 1_500_000_000_000

    async def test_conf_is_acknowledged(self, nursery: trio.Nursery) -> None:
        """conf gets {"event":"conf","status":"OK","flags":N}."""
        sim = await start(nursery)
        async with connect(sim.url) as client:
            await client.send({"event": "conf", "flags": 32768})
            assert await client.receive() == {"event": "conf", "status": "OK", "flags": 32768}

    async def test_unknown_event_gets_error_10000(self, nursery: trio.Nursery) -> None:
        """An event the exchange does not know, or text that is not JSON, gets error 10000."""
        sim = await start(nursery)
        async with connect(sim.url) as client:
            await client.send({"event": "bogus"})
            assert await client.receive() == {"event": "error", "msg": "Unknown event", "code": 10000}
            await client.send("{not json")
            assert (await client.receive())["code"] == 10000

    async def test_odd_frames_are_answered_not_fatal(self, nursery: trio.Nursery) -> None:
        """Hostile shapes (unhashable ids, an auth without fields, non-ASCII digits as nonce) get an error answer,
        and the connection lives on."""
        sim = await start(nursery)
        odd_nonce = json.loads(auth_text())
        odd_nonce.update(authNonce="\u00b2", authPayload="AUTH\u00b2",  # "²".isdigit() is True, int("²") fails
                         authSig=auth_signature(Secret(SECRET), "AUTH\u00b2"))
        async with connect(sim.url) as client:
            for frame, code in [({"event": "subscribe", "channel": ["ticker"]}, 10302),
                                ({"event": "unsubscribe", "chanId": [1]}, 10401),
                                ({"event": "auth", "apiKey": KEY}, 10111), (odd_nonce, 10111)]:
                await client.send(frame)
                assert (await client.receive())["code"] == code
            await client.send({"event": "ping", "cid": 1})
            assert (await client.receive())["event"] == "pong"

    async def test_every_frame_is_recorded(self, nursery: trio.Nursery) -> None:
        """received holds every frame in arrival order, with its connection, text and decoded event."""
        sim = await start(nursery)
        async with connect(sim.url, authenticated=True) as client:
            await client.send({"event": "ping", "cid": 1})
            await client.send([0, "foc", None, {"id": 5}])
            with trio.fail_after(GUARD_S):
                await sim.wait_received(lambda r: isinstance(r.event, CancelOfferInput))
        assert [type(r.event) for r in sim.received] == [AuthRequest, PingEvent, CancelOfferInput]
        assert {r.conn_id for r in sim.received} == {1}
        assert sim.received[2].text == '[0, "foc", null, {"id": 5}]'
        assert sim.received[0].at <= sim.received[1].at <= sim.received[2].at


class TestHeartbeats:
    async def test_account_channel_heartbeat_after_silence(self, nursery: trio.Nursery) -> None:
        """[0,"hb"] comes hb_interval after the last channel-0 frame, and channel traffic postpones it."""
        sim = await start(nursery, hb_interval=0.3)
        async with connect(sim.url, authenticated=True) as client:
            last_snapshot = trio.current_time()
            assert await client.receive() == [0, "hb"]
            assert trio.current_time() - last_snapshot >= 0.25
            await trio.sleep(0.15)  # the subject: traffic in the middle of a silent window, not a wait
            await sim.execute_offer(next(iter(sim.offers)), amount=1)
            assert kinds([await client.receive() for _ in range(3)]) in (["fou", "fcn", "wu"], ["fou", "fln", "wu"])
            update = trio.current_time()
            assert await client.receive() == [0, "hb"]
            assert trio.current_time() - update >= 0.25

    async def test_no_account_heartbeat_before_auth(self, nursery: trio.Nursery) -> None:
        """Channel 0 exists only after auth: an unauthenticated connection gets no heartbeats."""
        sim = await start(nursery, hb_interval=0.05)
        async with connect(sim.url) as client:
            assert await client.nothing_within(0.3)

    async def test_public_channel_heartbeats_on_its_own_id(self, nursery: trio.Nursery) -> None:
        """A subscribed public channel (silent: no market here) heartbeats as [CHAN_ID,"hb"] until unsubscribed."""
        sim = await start(nursery, hb_interval=0.1)
        async with connect(sim.url) as client:
            await client.send({"event": "subscribe", "channel": "ticker", "symbol": "fUSD"})
            subscribed = await client.receive()
            assert subscribed["event"] == "subscribed" and subscribed["symbol"] == "fUSD"
            chan = subscribed["chanId"]
            assert chan > 0 and await client.receive() == [chan, "hb"]
            await client.send({"event": "unsubscribe", "chanId": chan})
            frames = await client.receive_until(lambda f: isinstance(f, dict))
            assert frames[-1] == {"event": "unsubscribed", "status": "OK", "chanId": chan}
            assert await client.nothing_within(0.3)
            await client.send({"event": "subscribe", "channel": "nope"})
            assert (await client.receive())["code"] == 10302


class TestFundingOffers:
    async def test_cancel_active_offer(self, nursery: trio.Nursery) -> None:
        """foc → n foc-req SUCCESS (the offer, documented text) → foc with status CANCELED; the offer is gone."""
        sim = await start(nursery)
        offer = next(iter(sim.offers.values()))
        async with connect(sim.url, authenticated=True) as client:
            await client.send([0, "foc", None, {"id": offer.id}])
            notification, update = await client.receive(), await client.receive()
        assert notification[:2] == [0, "n"]
        mts, kind, _, _, info, code, status, text = notification[2]
        assert (kind, code, status) == ("foc-req", None, "SUCCESS")
        assert text == f"Submitted for cancellation; waiting for confirmation (ID: {offer.id})."
        pending = FundingOffer.from_wire(info)  # as in the docs' example: the offer, still ACTIVE, just updated
        assert attrs.evolve(pending, mts_updated=offer.mts_updated) == offer and pending.mts_updated <= mts
        event = decode_exchange_frame(json.dumps(update))
        assert isinstance(event, OfferCancel) and event.offer.id == offer.id and event.offer.status == "CANCELED"
        assert offer.id not in sim.offers

    async def test_cancel_unknown_or_inactive_offer_is_an_error(self, nursery: trio.Nursery) -> None:
        """foc for an id that is unknown or no longer active → n foc-req ERROR "Offer not found", with the id."""
        sim = await start(nursery)
        offer_id = next(iter(sim.offers))
        async with connect(sim.url, authenticated=True) as client:
            await client.send([0, "foc", None, {"id": offer_id}])
            await client.receive_until(lambda f: f[1] == "foc")
            for target in (offer_id, 999):
                await client.send([0, "foc", None, {"id": target}])
                notification = (await client.receive())[2]
                assert notification[1] == "foc-req" and notification[6:] == ["ERROR", "Offer not found"]
                assert notification[4] == [target, *[None] * 20]
            await client.send([0, "foc", None, {"id": "abc"}])
            assert (await client.receive())[2][6:] == ["ERROR", "id: invalid"]

    async def test_other_connections_see_the_update_not_the_notification(self, nursery: trio.Nursery) -> None:
        """The book change goes to every authenticated connection; the n only to the one that asked."""
        sim = await start(nursery)
        offer_id = next(iter(sim.offers))
        async with connect(sim.url, authenticated=True) as asker, connect(sim.url, authenticated=True) as other:
            await asker.send([0, "foc", None, {"id": offer_id}])
            assert kinds([await asker.receive(), await asker.receive()]) == ["n", "foc"]
            assert (await other.receive())[1] == "foc"
            assert await other.nothing_within(0.1)

    async def test_new_offer(self, nursery: trio.Nursery) -> None:
        """fon → n fon-req SUCCESS with the new offer → fon; the offer joins the book."""
        sim = await start(nursery)
        request = {"type": "LIMIT", "symbol": "fUSD", "amount": "150.10", "rate": "0.00020", "period": 2, "flags": 0}
        async with connect(sim.url, authenticated=True) as client:
            await client.send([0, "fon", None, request])
            notification_text, update_text = await client.receive_text(), await client.receive_text()
        notification, update = json.loads(notification_text), json.loads(update_text)
        assert notification[2][1] == "fon-req" and notification[2][6] == "SUCCESS"
        assert notification[2][7] == "Submitting funding offer of 150.10 USD at 0.0200 for 2 days."
        offer = offer_from(update)
        assert update[1] == "fon" and offer.status == "ACTIVE" and (offer.amount, offer.rate) == (150.1, 0.0002)
        # The same digits the client wrote, in the notification's offer array and in the fon (never via float).
        assert notification_text.count(",150.10,150.10,") == 1 and update_text.count(",150.10,150.10,") == 1
        assert ",0.00020," in notification_text and ",0.00020," in update_text
        assert notification[2][4][0] == offer.id and sim.offers[offer.id].amount == Decimal("150.10")
        assert offer.id > max(i for i in sim.offers if i != offer.id)

    async def test_invalid_new_offer_is_refused(self, nursery: trio.Nursery) -> None:
        """A fon the exchange would refuse (period 1) → n fon-req ERROR and no change to the book."""
        sim = await start(nursery)
        before = sim.offers
        request = {"type": "LIMIT", "symbol": "fUSD", "amount": "500", "rate": "0.0002", "period": 1}
        async with connect(sim.url, authenticated=True) as client:
            await client.send([0, "fon", None, request])
            notification = (await client.receive())[2]
            assert notification[6:] == ["ERROR", "Invalid offer: period must be between 2 and 120 days"]
            assert await client.nothing_within(0.1)
        assert sim.offers == before

    async def test_executions_and_added_offers_reach_clients(self, nursery: trio.Nursery) -> None:
        """Partial execution → fou PARTIALLY FILLED; full → foc EXECUTED with amount 0; add_offer → fon."""
        sim = await start(nursery)
        offer = next(iter(sim.offers.values()))
        assert isinstance(offer.amount, float) and isinstance(offer.rate, float)
        async with connect(sim.url, authenticated=True) as client:
            await sim.execute_offer(offer.id, amount=0.001)
            partial = offer_from(await client.receive())
            assert partial.status.startswith("PARTIALLY FILLED at ") and partial.amount == pytest.approx(
                offer.amount - 0.001)
            await client.receive_until(lambda f: f[1] == "wu")  # the credit or loan it became: TestFunding
            await sim.execute_offer(offer.id)
            executed = await client.receive()
            assert executed[1] == "foc" and executed[2][4] == 0
            await client.receive_until(lambda f: f[1] == "wu")
            assert executed[2][10] == f"EXECUTED at {offer.rate * 100:.4f}% ({partial.amount})"
            added = sim.add_offer(symbol="fUST", amount=300.0, rate=0.0003, period=7)
            assert offer_from(await client.receive()) == added
        with pytest.raises(KeyError):
            await sim.execute_offer(offer.id)

    async def test_scenario_moves_the_book(self, nursery: trio.Nursery) -> None:
        """With scenario_interval set, offers execute and new ones appear over time, and clients see it."""
        sim = await start(nursery, scenario_interval=0.02, offers=2)
        async with connect(sim.url, authenticated=True) as client:
            seen = {(await client.receive())[1] for _ in range(12)}
        assert seen <= {"fon", "fou", "foc", "fcn", "fln", "wu"} and len(seen & {"fon", "fou", "foc"}) >= 2

    def test_seed_gives_the_same_account(self) -> None:
        """The same seed gives the same offer ids, symbols, amounts and rates; another seed does not."""
        def shape(seed: int) -> list[tuple[object, ...]]:
            return [(o.id, o.symbol, o.amount, o.rate, o.period) for o in Account.generate(5, seed=seed).active()]

        assert shape(3) == shape(3) and shape(3) != shape(4)
        assert Simulator(SimulatorConfig(seed=3)).offers.keys() == Simulator(SimulatorConfig(seed=3)).offers.keys()

    async def test_wait_received_counts_matches(self, nursery: trio.Nursery) -> None:
        """wait_received returns once `count` frames matched, and wait_authenticated once `count` auths happened."""
        sim = await start(nursery)
        async with connect(sim.url, authenticated=True) as client:
            for cid in range(3):
                await client.send({"event": "ping", "cid": cid})
            with trio.fail_after(GUARD_S):
                pings = await sim.wait_received(lambda r: isinstance(r.event, PingEvent), count=3)
                await sim.wait_authenticated(1)
        assert [r.event.cid for r in pings if isinstance(r.event, PingEvent)] == [0, 1, 2]
        assert sim.received[0].event is not None and sim.received[0].event.api_key == KEY  # type: ignore[union-attr]


class TestLoad:
    async def test_pipelining_client_is_slowed_not_cut_off(self, nursery: trio.Nursery) -> None:
        """A client that sends thousands of frames before reading any answer gets every answer, in order."""
        sim = await start(nursery)
        total = 6_000
        async with connect(sim.url) as client:
            async def flood() -> None:
                for cid in range(total):
                    await client.send({"event": "ping", "cid": cid})

            nursery.start_soon(flood)
            with trio.fail_after(GUARD_S):
                await sim.wait_received(lambda r: True, count=2_000)  # answers pile up while nobody reads
            with trio.fail_after(60):
                cids = [(await client.receive())["cid"] for _ in range(total)]
        assert cids == list(range(total))

    async def test_record_is_bounded(self, nursery: trio.Nursery) -> None:
        """With max_recorded=N the record keeps at least the last N frames and never more than 2N."""
        sim = await start(nursery, max_recorded=3)
        for cid in range(10):
            sim.record(1, f'{{"event":"ping","cid":{cid}}}', PingEvent(cid=cid))
            assert 3 <= len(sim.received) <= 6 or cid < 3
        assert [r.event.cid for r in sim.received][-3:] == [7, 8, 9]  # type: ignore[union-attr]
