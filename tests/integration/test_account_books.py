"""Wallets, credits and loans, calc and sequence numbers: the in-process daemon against the simulator (loopback)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pytest
import trio
from tests.integration.helpers import API_KEY, API_SECRET, GUARD_S, LineClient

from bfxd.protocol import AuthRequest, CalcInput, CancelOfferInput, ConfRequest
from bfxd.protocol.encode import FLAG_SEQ_ALL
from bfxd.simulator import Simulator, SimulatorConfig
from bfxd.simulator.numbering import Numbering
from conftest import load_frame_text

if TYPE_CHECKING:  # the fixtures' types (conftest is pytest's to import)
    from tests.integration.conftest import LogWatch, RunningDaemon, StartDaemon


@pytest.fixture
def sim_config() -> SimulatorConfig:
    """Five offers, three credits and two loans on the simulated account."""
    return SimulatorConfig(api_key=API_KEY, api_secret=API_SECRET, offers=5, credits=3, loans=2, seed=13)


async def ask(daemon: RunningDaemon, request: dict[str, Any]) -> dict[str, Any]:
    async with await LineClient.connect(daemon.socket_path) as client:
        return await client.request(request)


async def figures_known(log_watch: LogWatch, sim: Simulator) -> None:
    """Until the calc after the snapshot brought every funding wallet's available balance back."""
    currencies = {w.currency for w in sim.account.ledger.wallets()}
    assert currencies
    await log_watch.wait_until(lambda: _known(log_watch) >= currencies)


def _known(log_watch: LogWatch) -> set[str]:
    return {e["currency"] for e in log_watch.find("wallet.update", wallet_type="funding")
            if e.get("available") is not None}


class TestOps:
    async def test_wallets_after_the_calc(self, daemon: RunningDaemon, sim: Simulator, log_watch: LogWatch) -> None:
        """The snapshot's null figures are asked for at once; the wallets op then shows them."""
        await figures_known(log_watch, sim)
        calc = [r for r in sim.received if isinstance(r.event, CalcInput)]
        assert len(calc) == 1 and all(key.startswith("wallet_funding_") for key in calc[0].event.requests)
        answer = await ask(daemon, {"op": "wallets", "ref": "w"})
        assert answer["ok"] is True and answer["ref"] == "w"
        funding = [w for w in answer["wallets"] if w["type"] == "funding"]
        assert {f"wallet_funding_{w['currency']}" for w in funding} == set(calc[0].event.requests)
        assert all(isinstance(w["available"], (int, float)) and w["available"] >= 0 for w in funding)
        assert all(w["balance"] >= w["available"] for w in funding)

    async def test_refresh_sends_another_calc_under_the_interval(self, daemon: RunningDaemon, sim: Simulator,
                                                                 log_watch: LogWatch) -> None:
        await figures_known(log_watch, sim)
        answer = await ask(daemon, {"op": "wallets", "refresh": True})
        assert answer["ok"] is True
        with trio.fail_after(GUARD_S):
            calcs = await sim.wait_received(lambda r: isinstance(r.event, CalcInput), count=2)
        assert calcs[1].at - calcs[0].at >= 4.0 - 0.5  # CALC_INTERVAL_S (send latencies differ a little)

    async def test_credits_and_loans_with_and_without_a_symbol(self, daemon: RunningDaemon, sim: Simulator,
                                                               log_watch: LogWatch) -> None:
        await log_watch.wait_for("loan.snapshot")
        await log_watch.wait_until(lambda: len(log_watch.find("credit.snapshot")) == len(sim.credits))
        credits = await ask(daemon, {"op": "credits"})
        assert [c["id"] for c in credits["credits"]] == sorted(sim.credits)
        assert credits["credits"][0] == sim.credits[credits["credits"][0]["id"]].to_json()
        loans = await ask(daemon, {"op": "loans"})
        assert [loan["id"] for loan in loans["loans"]] == sorted(sim.loans)
        symbol = next(iter(sim.credits.values())).symbol
        some = await ask(daemon, {"op": "credits", "symbol": symbol})
        assert some["credits"] and {c["symbol"] for c in some["credits"]} == {symbol}
        none = await ask(daemon, {"op": "loans", "symbol": "fNONE"})
        assert none == {"ok": True, "op": "loans", "loans": []}

    async def test_hello_lists_the_new_ops_and_events(self, daemon: RunningDaemon) -> None:
        hello = await ask(daemon, {"op": "hello"})
        assert {"wallets", "credits", "loans"} <= set(hello["ops"])
        assert {"wallet", "credit", "loan"} <= set(hello["events"])

    async def test_not_ready_before_a_session(self, start_daemon: StartDaemon, sim: Simulator) -> None:
        sim.reject_auth(1000)
        daemon = await start_daemon(wait_ready=False)
        for op in ("wallets", "credits", "loans"):
            answer = await ask(daemon, {"op": op, "timeout": 0.3})
            assert answer["ok"] is False and answer["error"]["type"] == "not_ready", answer
            assert f"no {op} snapshot" in answer["error"]["message"]

    async def test_watch_follows_an_execution(self, daemon: RunningDaemon, sim: Simulator,
                                              log_watch: LogWatch) -> None:
        """An executed offer becomes a credit or a loan, and its wallet changes: a watcher sees both."""
        await figures_known(log_watch, sim)
        offer_id = sorted(sim.offers)[0]
        async with await LineClient.connect(daemon.socket_path) as watcher:
            await watcher.request({"op": "watch"})
            await sim.execute_offer(offer_id)
            seen: set[tuple[str, str]] = set()
            funded = None
            while not ({("wallet", "update")} <= seen and funded is not None):
                event = await watcher.receive()
                seen.add((event["event"], event.get("action", "")))
                if event["event"] in ("credit", "loan") and event["action"] == "new":
                    funded = event[event["event"]]
        assert funded["id"] in sim.credits or funded["id"] in sim.loans


class TestBadRows:
    async def test_a_bad_row_is_skipped_and_logged_the_rest_applied(self, daemon: RunningDaemon, sim: Simulator,
                                                                    log_watch: LogWatch) -> None:
        await log_watch.wait_until(lambda: len(log_watch.find("credit.snapshot")) == len(sim.credits))
        await sim.send_raw(load_frame_text("fcs-bad-rows.json"))
        await log_watch.wait_until(lambda: len(log_watch.find("exchange.bad_row", kind="fcs")) == 2)
        with trio.fail_after(GUARD_S):
            while [c["id"] for c in (await ask(daemon, {"op": "credits"}))["credits"]] != [26223578]:
                await log_watch.wait_for("credit.snapshot", credit_id=26223578)
        assert log_watch.find("exchange.bad_frame") == []
        assert len(log_watch.find("credit.close")) == len(sim.credits)  # the simulator's, gone from this snapshot


class TestSequenceNumbers:
    async def test_conf_goes_out_before_auth_on_every_link(self, daemon: RunningDaemon, sim: Simulator,
                                                            log_watch: LogWatch) -> None:
        await sim.drop(abrupt=True)
        await sim.wait_authenticated(2)
        by_conn: dict[int, list[Any]] = {}
        for r in sim.received:
            if isinstance(r.event, (ConfRequest, AuthRequest)):
                by_conn.setdefault(r.conn_id, []).append(r.event)
        assert len(by_conn) == 2
        for events in by_conn.values():
            assert [type(e) for e in events] == [ConfRequest, AuthRequest]
            assert events[0].flags == FLAG_SEQ_ALL
        assert log_watch.find("exchange.sequence_gap") == []

    async def test_a_gap_resyncs_and_the_snapshot_settles_what_was_pending(
        self, daemon: RunningDaemon, sim: Simulator, log_watch: LogWatch
    ) -> None:
        """A lost account update: logged, a fresh link, fresh snapshots; a cancel in flight is sent again."""
        await figures_known(log_watch, sim)
        offer_id = sorted(sim.offers)[0]
        sim.lose_inputs(1)  # the cancel goes out and is never answered on this link
        async with await LineClient.connect(daemon.socket_path) as client:
            await client.send({"op": "cancel", "id": offer_id, "ref": "c", "timeout": GUARD_S})
            await sim.wait_received(lambda r: isinstance(r.event, CancelOfferInput))
            sim.skip_sequence(1)
            lost = sim.add_offer(symbol="fUSD", amount=300.0)  # its fon is numbered, never sent
            seen = sim.add_offer(symbol="fUSD", amount=400.0)  # the gap shows on this one (suspect) …
            sim.add_offer(symbol="fUSD", amount=500.0)  # … and is confirmed by the next numbered frame
            gap = await log_watch.wait_for("exchange.sequence_gap")
            answer = await client.receive()
        assert answer["ok"] is True and answer["id"] == offer_id and answer["status"] == "SUCCESS"
        assert gap["stream"] in ("public", "auth") and gap["got"] == gap["expected"] + 1
        assert daemon.board.reconnects == 1
        assert len([r for r in sim.received if isinstance(r.event, CancelOfferInput)]) == 2
        offers = (await ask(daemon, {"op": "offers"}))["offers"]
        ids = {o["id"] for o in offers}
        assert {lost.id, seen.id} <= ids and offer_id not in ids
        assert len(log_watch.find("exchange.sequence_gap")) == 1

    async def test_no_numbers_never_resync(self, start_daemon: StartDaemon, sim: Simulator, log_watch: LogWatch,
                                           monkeypatch: pytest.MonkeyPatch) -> None:
        """An exchange that ignores the conf: every frame is taken as it is, and the link is never replaced."""
        monkeypatch.setattr(Numbering, "configure", lambda self, flags: None)
        daemon = await start_daemon()
        await figures_known(log_watch, sim)
        sim.skip_sequence(5)  # only numbered connections lose updates: nothing is lost here
        for amount in (300.0, 400.0, 500.0):
            sim.add_offer(symbol="fUSD", amount=amount)
        await sim.execute_offer(sorted(sim.offers)[0])
        await log_watch.wait_until(lambda: daemon.board.offers == len(sim.offers))
        answer = await ask(daemon, {"op": "cancel", "id": sorted(sim.offers)[0]})
        assert answer["ok"] is True
        assert log_watch.find("exchange.sequence_gap") == [] and daemon.board.reconnects == 0
        assert [e["kind"] for e in log_watch.find("frame.sent") if e["kind"] == "conf"] == ["conf"]
        assert sim.faults.sequence_skips == 5  # never used: no connection numbered its frames
