"""The contract's new ops (CONTRACT.md: hello, submit, replace, wallets, credits, loans) against the real daemon
and simulator. Today's daemon answers hello with unknown_op (protocol 0): these tests skip, saying so. Once it
speaks hello they run, and a protocol-1 daemon that lacks one of the ops fails them (no silent skip)."""

from __future__ import annotations

import sys
from decimal import Decimal
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
import trio
from tests.integration.helpers import GUARD_S
from tests.jsonlines import loads

from bfxd import client
from bfxd.client import Client
from bfxd.protocol import NewOfferInput

if TYPE_CHECKING:
    from tests.integration.conftest import RunningDaemon

    from bfxd.simulator import Simulator

CONTRACT_OPS = {"hello", "submit", "replace", "wallets", "credits", "loans"}
BOT = Path(__file__).parent.parent.parent / "examples" / "lending_bot.py"


async def call(function, *args, **kwargs):  # type: ignore[no-untyped-def]
    with trio.fail_after(GUARD_S):
        return await trio.to_thread.run_sync(partial(function, *args, **kwargs))


@pytest.fixture
async def bfxd(daemon: RunningDaemon):  # type: ignore[no-untyped-def]
    """A Client of the daemon, once it serves the contract's ops (else the test is skipped)."""
    connection = Client(daemon.socket_path)
    hello = await call(connection.hello)
    if hello.protocol == 0:
        connection.close()
        pytest.skip("the daemon does not speak hello yet (protocol 0): CONTRACT.md's ops are not served")
    assert hello.ops >= CONTRACT_OPS, f"protocol {hello.protocol} daemon lacks {CONTRACT_OPS - hello.ops}"
    loads(hello.line)
    yield connection
    connection.close()


async def test_wallets_credits_loans(bfxd: Client, sim: Simulator) -> None:
    wallets = await call(bfxd.wallets)
    assert wallets and all(isinstance(w, client.Wallet) and isinstance(w.balance, Decimal) for w in wallets)
    assert {w.currency for w in wallets if w.type == "funding"} >= {o.symbol[1:] for o in sim.offers.values()
                                                                    if o.symbol}
    credits, loans = await call(bfxd.credits), await call(bfxd.loans)
    for rows in (wallets, credits, loans):
        loads(rows.line)


async def test_submit_then_cancel(bfxd: Client, sim: Simulator) -> None:
    placed = await call(bfxd.submit, "fUSD", Decimal("150.5"), Decimal("0.00021"), 2)
    loads(placed.line)
    assert placed.offer.id in sim.offers and placed.offer.rate == Decimal("0.00021")
    assert sum(isinstance(r.event, NewOfferInput) for r in sim.received) == 1
    assert (await call(bfxd.cancel, placed.offer.id)).ok and placed.offer.id not in sim.offers


async def test_replace(bfxd: Client, sim: Simulator) -> None:
    old = min(sim.offers)
    done = await call(bfxd.replace, old, rate=Decimal("0.0003"))
    loads(done.line)
    assert done.cancelled.id == old and old not in sim.offers and done.offer.id in sim.offers
    assert done.offer.rate == Decimal("0.0003")


async def test_the_lending_bot_runs_a_round(bfxd: Client, daemon: RunningDaemon) -> None:
    """examples/lending_bot.py --once against the real daemon: it reads, decides, and exits 0."""
    with trio.fail_after(GUARD_S):
        result = await trio.run_process([sys.executable, str(BOT), "--socket", str(daemon.socket_path), "--once"],
                                        capture_stdout=True, capture_stderr=True, check=False)
    assert result.returncode == 0, result.stderr
    assert b"round: USD available" in result.stderr
