"""AccountState and CalcSchedule, table-driven from the example frames: what each event logs, renders and asks."""

from __future__ import annotations

import json
from typing import Any

import pytest
import trio

from bfxd.actors.account_state import CALC_INTERVAL_S, AccountState, CalcSchedule
from bfxd.actors.messages import ReadSynced
from bfxd.protocol import MAX_CALC_REQUESTS, decode_exchange_frame
from conftest import load_frame_text


def event(name: str) -> Any:
    return decode_exchange_frame(load_frame_text(f"{name}.json"))


def lines(applied: Any) -> list[dict[str, Any]]:
    return [json.loads(w.line) for w in applied.watch]


@pytest.mark.parametrize(
    ("frames", "logs", "watch", "calc"),
    [
        # ws-funding: two funding wallets and an exchange wallet, all with available null.
        (["ws-funding"], ["wallet.snapshot"] * 3, [("wallet", "snapshot")] * 3,
         ["wallet_funding_BTC", "wallet_funding_USD"]),
        # the calc answer fills USD in: nothing more to ask.
        (["ws-funding", "wu-calc-answer"], ["wallet.update"], [("wallet", "update")], []),
        (["fcs-docs-example"], ["credit.snapshot"], [("credit", "snapshot")], []),
        (["fcs-docs-example", "fcn"], ["credit.new"], [("credit", "new")], []),
        (["fls-snapshot"], ["loan.snapshot"], [("loan", "snapshot")], []),
        (["fls-snapshot", "fln"], ["loan.new"], [("loan", "new")], []),
        (["fls-snapshot", "fln", "flu"], ["loan.update"], [("loan", "update")], []),
        # a bad row is logged and skipped; the good row is applied
        (["fcs-bad-rows"], ["exchange.bad_row", "exchange.bad_row", "credit.snapshot"], [("credit", "snapshot")], []),
    ],
)
def test_each_event_logs_renders_and_asks(frames: list[str], logs: list[str], watch: list[tuple[str, str]],
                                          calc: list[str]) -> None:
    state = AccountState()
    for name in frames:
        applied = state.apply(1, event(name), live_link=True, watched=True)
    assert [name for name, _ in applied.logs] == logs
    assert [(line["event"], line["action"]) for line in lines(applied)] == watch
    assert applied.calc == calc


def test_close_of_a_known_credit_and_of_an_unknown_one() -> None:
    state = AccountState()
    state.apply(1, event("fcs-docs-example"), live_link=True, watched=False)
    credit_id = state.credits.credits()[0].id
    applied = state.apply(1, event("fcn"), live_link=True, watched=False)
    new_id = event("fcn").credit.id
    closed = state.apply(1, event("fcc"), live_link=True, watched=True)
    assert event("fcc").credit.id == new_id
    assert [name for name, _ in closed.logs] == ["credit.close"]
    assert lines(closed)[0]["credit"]["id"] == new_id
    assert [c.id for c in state.credits.credits()] == [credit_id]
    again = state.apply(1, event("fcc"), live_link=True, watched=True)
    assert again.logs == [] and again.watch == [] and applied.synced is None


def test_bad_rows_name_the_frame_and_the_row() -> None:
    applied = AccountState().apply(3, event("fcs-bad-rows"), live_link=True, watched=False)
    bad = [fields for name, fields in applied.logs if name == "exchange.bad_row"]
    assert [(b["kind"], b["generation"], b["error"].split(":")[0]) for b in bad] == [("fcs", 3, "row 1"),
                                                                                     ("fcs", 3, "row 2")]


def test_audit_fields_of_a_wallet_and_a_loan() -> None:
    state = AccountState()
    wallet = state.apply(1, event("wu-calc-answer"), live_link=True, watched=False).logs[0]
    assert wallet == ("wallet.update", {"wallet_type": "funding", "currency": "USD", "balance": 1000.5,
                                        "unsettled_interest": 0.25, "available": 250.5})
    loan = state.apply(1, event("fls-snapshot"), live_link=True, watched=False).logs[0]
    assert loan == ("loan.snapshot", {"loan_id": 2995442, "symbol": "fUSD", "status": "ACTIVE", "amount": 820,
                                      "rate": 0.0024, "period": 2})


def test_unwatched_renders_nothing() -> None:
    applied = AccountState().apply(1, event("ws-funding"), live_link=True, watched=False)
    assert applied.watch == [] and len(applied.logs) == 3


def test_a_wu_that_forgets_the_figure_asks_for_that_wallet_only() -> None:
    state = AccountState()
    state.apply(1, event("ws-funding"), live_link=True, watched=False)
    state.apply(1, event("wu-calc-answer"), live_link=True, watched=False)
    forgot = decode_exchange_frame('[0,"wu",["funding","USD",900,0,null,null,null]]')
    assert state.apply(1, forgot, live_link=True, watched=False).calc == ["wallet_funding_USD"]
    exchange = decode_exchange_frame('[0,"wu",["exchange","USD",10,0,null,null,null]]')
    assert state.apply(1, exchange, live_link=True, watched=False).calc == []
    assert state.calc_keys(refresh=False) == ["wallet_funding_BTC", "wallet_funding_USD"]
    assert state.calc_keys(refresh=True) == ["wallet_funding_BTC", "wallet_funding_USD"]


class TestReadiness:
    def test_each_book_is_synced_by_its_own_snapshot_on_a_live_link(self) -> None:
        state = AccountState()
        assert not any(state.is_synced(b) for b in ("wallets", "credits", "loans"))
        assert state.apply(1, event("ws-funding"), live_link=True, watched=False).synced == "wallets"
        assert state.is_synced("wallets") and not state.is_synced("credits")
        assert state.apply(1, event("fcn"), live_link=True, watched=False).synced is None  # an update: not a sync
        assert state.apply(1, event("fls-snapshot"), live_link=False, watched=False).synced is None  # a dead link's
        assert not state.is_synced("loans")
        state.link_down()
        assert not state.is_synced("wallets")

    def test_held_reads_are_released_by_their_book_only(self) -> None:
        state = AccountState()
        send, _receive = trio.open_memory_channel[Any](1)
        read = ReadSynced("credits", lambda view: None, send)
        assert state.hold_unless_synced(read) is False
        assert state.apply(1, event("ws-funding"), live_link=True, watched=False).reads == []
        assert state.apply(1, event("fcs-docs-example"), live_link=True, watched=False).reads == [read]
        assert state.hold_unless_synced(ReadSynced("credits", lambda view: None, send)) is True

    def test_reads_whose_requester_left_are_forgotten(self) -> None:
        state = AccountState()
        send, receive = trio.open_memory_channel[Any](1)
        state.hold_unless_synced(ReadSynced("loans", lambda view: None, send))
        receive.close()  # the requester's deadline passed
        other_send, _other = trio.open_memory_channel[Any](1)
        kept = ReadSynced("loans", lambda view: None, other_send)
        state.hold_unless_synced(kept)
        assert state.apply(1, event("fls-snapshot"), live_link=True, watched=False).reads == [kept]


class TestCalcSchedule:
    def test_first_at_once_then_one_frame_per_interval(self) -> None:
        schedule = CalcSchedule()
        assert schedule.due(10.0) is None  # nothing wanted
        schedule.want(["a", "b"])
        assert schedule.due(10.0) == 10.0
        assert schedule.take(10.0) == ["a", "b"]
        schedule.want(["c"])
        assert schedule.due(11.0) == 10.0 + CALC_INTERVAL_S

    def test_a_queued_turn_is_joined_not_doubled(self) -> None:
        schedule = CalcSchedule()
        schedule.want(["a"])
        schedule.queued = True
        schedule.want(["b", "a"])
        assert schedule.due(0.0) is None
        assert schedule.take(0.0) == ["a", "b"] and not schedule.queued

    def test_batches_of_at_most_the_exchange_limit_oldest_first(self) -> None:
        schedule = CalcSchedule()
        keys = [f"wallet_funding_C{i:02}" for i in range(MAX_CALC_REQUESTS + 5)]
        schedule.want(keys)
        assert schedule.take(0.0) == keys[:MAX_CALC_REQUESTS]
        assert schedule.due(0.0) == CALC_INTERVAL_S
        assert schedule.take(CALC_INTERVAL_S) == keys[MAX_CALC_REQUESTS:]

    def test_interval_keeps_a_full_batch_within_the_exchange_rate(self) -> None:
        assert MAX_CALC_REQUESTS / CALC_INTERVAL_S <= 8  # CALCS_PER_SECOND

    def test_cleared_on_link_loss_and_an_empty_take_keeps_the_interval(self) -> None:
        schedule = CalcSchedule()
        schedule.want(["a"])
        assert schedule.take(5.0) == ["a"]
        schedule.want(["b"])
        schedule.queued = True
        schedule.clear()
        assert len(schedule) == 0 and not schedule.queued
        assert schedule.take(6.0) == []  # a stale turn: nothing goes out
        schedule.want(["c"])
        assert schedule.due(6.0) == 5.0 + CALC_INTERVAL_S
