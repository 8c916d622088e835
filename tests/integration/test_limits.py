"""Who may do what, and how much: access rules per request, per-uid caps, idle connections, refusal logging,
and the metrics op. The daemon in-process, the simulator over loopback."""

from __future__ import annotations

import os

import trio
from tests.integration.conftest import LogWatch, StartDaemon
from tests.integration.helpers import GUARD_S, LineClient

from bfxd.config import AccessConfig
from bfxd.config_values import Principals
from bfxd.protocol import CancelOfferInput
from bfxd.simulator import Simulator


def only(uid: int) -> Principals:
    return Principals(uids=frozenset({uid}), gids=frozenset(), spelled=(str(uid),))


class TestAccess:
    async def test_a_reader_may_read_but_not_trade(self, start_daemon: StartDaemon, sim: Simulator) -> None:
        me = os.getuid()
        daemon = await start_daemon(access=AccessConfig(read=only(me), trade=only(me + 4242)))
        async with await LineClient.connect(daemon.socket_path) as client:
            offers = await client.request({"op": "offers"})
            refused = await client.request({"op": "cancel", "id": min(sim.offers), "ref": "c"})
        assert offers["ok"] is True
        assert refused["ok"] is False and refused["error"]["type"] == "forbidden"
        assert refused["error"]["rule"] == "[access] trade" and f"uid {me}" in refused["error"]["message"]
        assert not [r for r in sim.received if isinstance(r.event, CancelOfferInput)]

    async def test_a_trader_may_read_too(self, start_daemon: StartDaemon, sim: Simulator) -> None:
        me = os.getuid()
        daemon = await start_daemon(access=AccessConfig(read=only(me + 4242), trade=only(me)))
        async with await LineClient.connect(daemon.socket_path) as client:
            assert (await client.request({"op": "status"}))["ok"] is True
            assert (await client.request({"op": "cancel", "id": min(sim.offers)}))["ok"] is True


class TestLimits:
    async def test_one_uid_cannot_take_every_slot(self, start_daemon: StartDaemon, log_watch: LogWatch) -> None:
        daemon = await start_daemon(max_clients=10, max_clients_per_uid=2)
        async with await LineClient.connect(daemon.socket_path) as a, \
                await LineClient.connect(daemon.socket_path) as b:
            assert (await a.request({"op": "ping"}))["ok"] and (await b.request({"op": "ping"}))["ok"]
            async with await LineClient.connect(daemon.socket_path) as c:
                lines = await c.receive_until_closed()
        assert [line["error"]["type"] for line in lines] == ["busy"]
        assert f"uid {os.getuid()}" in lines[0]["error"]["message"]

    async def test_an_idle_connection_is_closed_a_watch_is_not(
        self, start_daemon: StartDaemon, log_watch: LogWatch
    ) -> None:
        daemon = await start_daemon(idle_timeout=1.0)
        async with await LineClient.connect(daemon.socket_path) as idle, \
                await LineClient.connect(daemon.socket_path) as watcher:
            assert (await watcher.request({"op": "watch"}))["ok"] is True
            with trio.fail_after(GUARD_S):
                assert await idle.receive_until_closed() == []
            await log_watch.wait_for("client.idle_closed")
            # the watcher outlived the idle timeout: its connection still works
            await watcher.send({"op": "ping", "ref": "still"})
            with trio.fail_after(GUARD_S):
                while (line := await watcher.receive()).get("ref") != "still":
                    assert "event" in line, line
        assert len(log_watch.find("client.idle_closed")) == 1

    async def test_a_flood_of_refused_connects_is_logged_folded(
        self, start_daemon: StartDaemon, log_watch: LogWatch
    ) -> None:
        daemon = await start_daemon(allowed_uids=(os.getuid() + 4242,))
        for _ in range(20):
            async with await LineClient.connect(daemon.socket_path) as client:
                assert [line["error"]["type"] for line in await client.receive_until_closed()] == ["forbidden"]
        refused = log_watch.find("client.refused")
        assert len(refused) == 1 and refused[0]["suppressed"] == 0  # the 19 others are counted for the next line
        assert log_watch.find("client.connected") == []


async def test_metrics_op_answers_the_exposition(start_daemon: StartDaemon) -> None:
    daemon = await start_daemon()
    async with await LineClient.connect(daemon.socket_path) as client:
        await client.request({"op": "ping"})
        answer = await client.request({"op": "metrics"})
    text = answer["text"]
    assert answer["ok"] is True and "bfxd_session_state" in text
    assert 'bfxd_requests_total{op="ping",outcome="ok"} 1' in text.splitlines()
