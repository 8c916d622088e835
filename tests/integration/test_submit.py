"""submit, replace and the input pace, end to end: the daemon in-process, the simulator over loopback."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest
import trio
from tests.integration.conftest import LogWatch, RunningDaemon, StartDaemon
from tests.integration.helpers import GUARD_S, LineClient

from bfxd.protocol import CancelOfferInput, NewOfferInput
from bfxd.simulator import Simulator

OFFER = {"symbol": "fUSD", "amount": "150.50", "rate": "0.00021", "period": 7}


def fon_inputs(sim: Simulator) -> list[NewOfferInput]:
    return [r.event for r in sim.received if isinstance(r.event, NewOfferInput)]


def foc_inputs(sim: Simulator) -> list[int | None]:
    return [r.event.offer_id for r in sim.received if isinstance(r.event, CancelOfferInput)]


async def ask(daemon: RunningDaemon, request: dict[str, Any]) -> dict[str, Any]:
    async with await LineClient.connect(daemon.socket_path) as client:
        return await client.request(request)


class TestSubmit:
    async def test_a_new_offer_with_its_id_and_the_exact_fields_sent(
        self, daemon: RunningDaemon, sim: Simulator
    ) -> None:
        answer = await ask(daemon, {"op": "submit", "ref": 1, **OFFER})
        assert answer["ok"] is True and answer["status"] == "SUCCESS", answer
        offer = answer["offer"]
        assert offer["id"] in sim.offers and (offer["symbol"], offer["period"]) == ("fUSD", 7)
        (sent,) = fon_inputs(sim)
        # amount and rate reach the exchange as the text the client gave, never through a float
        assert (sent.amount, sent.rate, sent.type, sent.flags) == ("150.50", "0.00021", "LIMIT", 0)
        listed = await ask(daemon, {"op": "offers"})
        with trio.fail_after(GUARD_S):
            while offer["id"] not in [o["id"] for o in listed["offers"]]:
                await trio.sleep(0.01)
                listed = await ask(daemon, {"op": "offers"})

    async def test_a_json_number_amount_is_sent_as_written(self, daemon: RunningDaemon, sim: Simulator) -> None:
        line = b'{"op":"submit","symbol":"fUSD","amount":150.10,"rate":0.0002,"period":2}\n'
        async with await LineClient.connect(daemon.socket_path) as client:
            await client.send(line)
            answer = await client.receive()
        assert answer["ok"] is True, answer
        (sent,) = fon_inputs(sim)
        assert (sent.amount, sent.rate) == ("150.10", "0.0002")

    async def test_two_identical_submits_are_two_offers(self, daemon: RunningDaemon, sim: Simulator) -> None:
        async with await LineClient.connect(daemon.socket_path) as client:
            await client.send({"op": "submit", "ref": "a", **OFFER})
            await client.send({"op": "submit", "ref": "b", **OFFER})
            answers = {(a := await client.receive())["ref"]: a for _ in range(2)}
        assert all(a["ok"] for a in answers.values()), answers
        assert answers["a"]["offer"]["id"] != answers["b"]["offer"]["id"]
        assert len(fon_inputs(sim)) == 2

    async def test_the_exchange_refusing_is_an_exchange_error(self, daemon: RunningDaemon, sim: Simulator) -> None:
        answer = await ask(daemon, {"op": "submit", **OFFER, "amount": "10"})
        assert answer["ok"] is False and answer["error"]["type"] == "exchange", answer
        assert answer["error"]["status"] == "ERROR" and "minimum" in answer["error"]["text"]

    @pytest.mark.parametrize(("field", "value"), [
        ("amount", "0"), ("amount", "1e3"), ("amount", True), ("rate", "-0.1"), ("period", 1), ("period", 121),
        ("period", 2.5), ("type", "MARKET"), ("flags", -1), ("symbol", "tBTCUSD")])
    async def test_a_bad_field_is_named_and_nothing_is_sent(
        self, daemon: RunningDaemon, sim: Simulator, field: str, value: object
    ) -> None:
        answer = await ask(daemon, {"op": "submit", **OFFER, field: value})
        assert answer["ok"] is False and answer["error"]["type"] == "bad_request", answer
        assert f"'{field}'" in answer["error"]["message"]
        assert fon_inputs(sim) == []

    @pytest.mark.parametrize("missing", ["symbol", "amount", "rate", "period"])
    async def test_a_missing_field_is_named(self, daemon: RunningDaemon, missing: str) -> None:
        answer = await ask(daemon, {"op": "submit", **{k: v for k, v in OFFER.items() if k != missing}})
        assert answer["error"]["type"] == "bad_request" and f"'{missing}'" in answer["error"]["message"]


class TestReplace:
    async def test_cancel_then_submit_with_the_changes(self, daemon: RunningDaemon, sim: Simulator) -> None:
        old_id = min(sim.offers)
        old = sim.offers[old_id]
        answer = await ask(daemon, {"op": "replace", "id": old_id, "rate": "0.0003"})
        assert answer["ok"] is True, answer
        assert answer["cancelled"]["id"] == old_id and answer["offer"]["id"] != old_id
        assert old_id not in sim.offers and answer["offer"]["id"] in sim.offers
        (sent,) = fon_inputs(sim)
        assert sent.rate == "0.0003" and sent.period == old.period and sent.symbol == old.symbol
        assert sent.amount == format(Decimal(repr(old.amount)), "f")
        assert foc_inputs(sim) == [old_id]

    async def test_one_connection_carries_replace_after_replace(self, daemon: RunningDaemon, sim: Simulator) -> None:
        """A replace's completion line holds offer ids from the request and from the answer: it must not end the
        client's connection (an earlier revision raised there, and bench/orders.py opened a connection per replace)."""
        first, second = sorted(sim.offers)[:2]
        async with await LineClient.connect(daemon.socket_path) as client:
            a = await client.request({"op": "replace", "id": first, "rate": "0.0003", "ref": 1})
            b = await client.request({"op": "replace", "id": second, "rate": "0.0003", "ref": 2})
            status = await client.request({"op": "status", "ref": 3})
        assert a["ok"] is True and b["ok"] is True, (a, b)
        assert (a["cancelled"]["id"], b["cancelled"]["id"]) == (first, second)
        assert status["ok"] is True and status["ref"] == 3

    async def test_an_offer_not_on_the_book_is_not_active_and_nothing_is_sent(
        self, daemon: RunningDaemon, sim: Simulator
    ) -> None:
        answer = await ask(daemon, {"op": "replace", "id": 987654321, "rate": "0.0003"})
        assert answer["error"]["type"] == "not_active", answer
        assert (foc_inputs(sim), fon_inputs(sim)) == ([], [])

    async def test_a_failed_submit_says_the_old_offer_is_gone(self, daemon: RunningDaemon, sim: Simulator) -> None:
        old_id = min(sim.offers)
        answer = await ask(daemon, {"op": "replace", "id": old_id, "amount": "10"})  # below the minimum
        assert answer["ok"] is False and answer["error"]["type"] == "exchange", answer
        assert answer["cancelled"]["id"] == old_id and "was cancelled" in answer["error"]["message"]
        assert old_id not in sim.offers

    async def test_replace_needs_a_change(self, daemon: RunningDaemon) -> None:
        answer = await ask(daemon, {"op": "replace", "id": 5})
        assert answer["error"]["type"] == "bad_request"


class TestPace:
    async def test_cancel_all_goes_out_at_the_pace_and_every_cancel_is_answered(
        self, start_daemon: StartDaemon, sim: Simulator
    ) -> None:
        for _ in range(7):
            sim.add_offer()
        daemon = await start_daemon(inputs_per_second=10.0, input_burst=2)
        count = len(sim.offers)
        started = trio.current_time()
        answer = await ask(daemon, {"op": "cancel_all", "timeout": 30})
        took = trio.current_time() - started
        assert answer["ok"] is True and len(answer["results"]) == count, answer
        # burst 2, then one every 0.1 s: at least (count - 2) / 10 s, and not much more
        assert (count - 2) / 10 <= took < (count - 2) / 10 + 5

    async def test_a_request_that_cannot_get_its_turn_is_not_sent(
        self, start_daemon: StartDaemon, sim: Simulator, log_watch: LogWatch
    ) -> None:
        daemon = await start_daemon(inputs_per_second=0.2, input_burst=2)
        await log_watch.wait_for("frame.sent", kind="calc")  # the wallets' calc took the burst's first turn
        first, second = sorted(sim.offers)[:2]
        async with await LineClient.connect(daemon.socket_path) as client:
            await client.send({"op": "cancel", "id": first, "ref": "first"})
            assert (await client.receive())["ok"] is True  # the burst's one turn
            await client.send({"op": "cancel", "id": second, "ref": "second", "timeout": 0.5})
            answer = await client.receive()
        assert answer["error"]["type"] == "not_sent", answer
        assert second not in foc_inputs(sim)

    async def test_status_shows_the_pace(self, start_daemon: StartDaemon) -> None:
        daemon = await start_daemon(inputs_per_second=3.0, input_burst=4)
        status = (await ask(daemon, {"op": "status"}))["status"]
        assert status["inputs"] == {"queued": 0, "per_second": 3.0}

    async def test_a_deadline_already_past_sends_nothing(self, daemon: RunningDaemon, sim: Simulator) -> None:
        answer = await ask(daemon, {"op": "cancel", "id": min(sim.offers), "deadline": 1_000_000})
        assert answer["error"]["type"] == "not_sent", answer
        assert foc_inputs(sim) == []
