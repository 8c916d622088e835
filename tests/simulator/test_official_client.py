"""Proof of fidelity: Bitfinex's own Python client (bitfinex-api-py, ``bfxapi``) works against the simulator.

bfxapi is asyncio-based, so it runs in a worker thread (``asyncio.run``) while the simulator serves in this test's
trio run. Everything is bounded twice: asyncio.wait_for inside the thread, trio.fail_after around it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from decimal import Decimal
from functools import partial
from typing import Any

import trio

from bfxd.protocol import AuthRequest, CalcInput, CancelOfferInput, NewOfferInput

from .wsclient import KEY, SECRET, start

THREAD_GUARD_S = 30.0  # trio side; the asyncio side gives up after ASYNCIO_GUARD_S
ASYNCIO_GUARD_S = 20.0


async def _until(event: asyncio.Event, runner: asyncio.Task[Any]) -> None:
    """Wait for *event*; if the client's own task ends first (error, disconnect), raise what it raised."""
    waiter = asyncio.ensure_future(event.wait())
    done, _ = await asyncio.wait({waiter, runner}, return_when=asyncio.FIRST_COMPLETED)
    if waiter not in done:
        waiter.cancel()
        runner.result()  # re-raises the client's exception
        raise AssertionError("the official client stopped before the expected event")


async def _cancel_session(url: str, cancel_id: int, unknown_id: int) -> dict[str, Any]:
    from bfxapi import Client

    bfx = Client(api_key=KEY, api_secret=SECRET, wss_host=url)
    seen: dict[str, Any] = {"notifications": [], "cancels": []}
    snapshot, cancelled, refused = asyncio.Event(), asyncio.Event(), asyncio.Event()

    @bfx.wss.on("authenticated")
    def _authenticated(data: dict[str, Any]) -> None:
        seen["auth"] = data

    @bfx.wss.on("funding_offer_snapshot")
    def _snapshot(offers: list[Any]) -> None:
        seen["snapshot"] = offers
        snapshot.set()

    @bfx.wss.on("foc-req-notification")
    def _notification(notification: Any) -> None:
        seen["notifications"].append(notification)
        if notification.status == "ERROR":
            refused.set()

    @bfx.wss.on("funding_offer_cancel")
    def _cancel(offer: Any) -> None:
        seen["cancels"].append(offer)
        cancelled.set()

    runner = asyncio.ensure_future(bfx.wss.start())
    try:
        await _until(snapshot, runner)
        await bfx.wss.inputs.cancel_funding_offer(cancel_id)
        await _until(cancelled, runner)
        await bfx.wss.inputs.cancel_funding_offer(unknown_id)
        await _until(refused, runner)
    finally:
        if bfx.wss.open:
            await bfx.wss.close()
        await asyncio.wait({runner}, timeout=5)
        runner.cancel()
    return seen


async def _submit_session(url: str) -> dict[str, Any]:
    """Snapshots of wallets, credits and loans; a submitted offer (notification, then fon); a calc answer."""
    from bfxapi import Client

    bfx = Client(api_key=KEY, api_secret=SECRET, wss_host=url, filters=["funding", "wallet", "notify"])
    seen: dict[str, Any] = {}
    loans, submitted, created, calculated = asyncio.Event(), asyncio.Event(), asyncio.Event(), asyncio.Event()

    def keep(name: str, event: asyncio.Event | None = None) -> Any:
        def handler(data: Any) -> None:
            seen[name] = data
            if event is not None:
                event.set()
        return handler

    bfx.wss.on("wallet_snapshot", keep("wallets"))
    bfx.wss.on("funding_credit_snapshot", keep("credits"))
    bfx.wss.on("funding_loan_snapshot", keep("loans", loans))
    bfx.wss.on("fon-req-notification", keep("notification", submitted))
    bfx.wss.on("funding_offer_new", keep("offer", created))
    bfx.wss.on("wallet_update", keep("wallet", calculated))
    runner = asyncio.ensure_future(bfx.wss.start())
    try:
        await _until(loans, runner)
        await bfx.wss.inputs.submit_funding_offer("LIMIT", "fUSD", Decimal("150.10"), Decimal("0.00025"), 7)
        await _until(submitted, runner)
        await _until(created, runner)
        await bfx.wss.inputs.calc("wallet_funding_USD")
        await _until(calculated, runner)
    finally:
        if bfx.wss.open:
            await bfx.wss.close()
        await asyncio.wait({runner}, timeout=5)
        runner.cancel()
    return seen


async def _wrong_secret_session(url: str) -> BaseException | None:
    from bfxapi import Client

    bfx = Client(api_key=KEY, api_secret="not-the-secret", wss_host=url)
    try:
        await bfx.wss.start()
    except Exception as exc:  # what the client raises is the result under test
        return exc
    return None


def _run_in_asyncio(session: Awaitable[Any]) -> Any:
    async def bounded() -> Any:
        return await asyncio.wait_for(session, ASYNCIO_GUARD_S)

    return asyncio.run(bounded())


async def _official(session: Awaitable[Any]) -> Any:
    with trio.fail_after(THREAD_GUARD_S):
        return await trio.to_thread.run_sync(partial(_run_in_asyncio, session), abandon_on_cancel=True)


async def test_official_client_snapshot_cancel_and_error(nursery: trio.Nursery) -> None:
    """bfxapi authenticates, gets every offer field right, cancels one (SUCCESS + CANCELED) and is refused an
    unknown id (ERROR)."""
    sim = await start(nursery, offers=4)
    expected = sim.offers
    cancel_id, unknown_id = sorted(expected)[1], 12345
    seen = await _official(_cancel_session(sim.url, cancel_id, unknown_id))

    assert seen["auth"]["status"] == "OK" and seen["auth"]["userId"] == sim.config.user_id
    got = {offer.id: offer for offer in seen["snapshot"]}
    assert got.keys() == expected.keys()
    for offer_id, offer in expected.items():
        theirs = got[offer_id]
        assert (theirs.symbol, theirs.mts_create, theirs.mts_update, theirs.amount, theirs.amount_orig,
                theirs.offer_type, theirs.flags, theirs.offer_status, theirs.rate, theirs.period) == (
            offer.symbol, offer.mts_created, offer.mts_updated, offer.amount, offer.amount_orig, offer.type,
            offer.flags, offer.status, offer.rate, offer.period)
        assert (theirs.notify, theirs.hidden, theirs.renew) == (int(offer.notify), int(offer.hidden),
                                                                int(offer.renew))

    success, error = seen["notifications"]
    assert (success.type, success.status, success.code) == ("foc-req", "SUCCESS", None)
    assert success.text == f"Submitted for cancellation; waiting for confirmation (ID: {cancel_id})."
    assert success.data.id == cancel_id and success.data.offer_status == "ACTIVE"
    [cancel] = seen["cancels"]
    assert cancel.id == cancel_id and cancel.offer_status == "CANCELED" and cancel.amount == expected[cancel_id].amount
    assert (error.type, error.status, error.text) == ("foc-req", "ERROR", "Offer not found")
    assert error.data.id == unknown_id and error.data.symbol is None
    assert cancel_id not in sim.offers and len(sim.offers) == 3

    # What bfxapi put on the wire, as the simulator read it: an auth (filter null, numeric nonce) and two foc.
    auth = sim.received[0].event
    assert isinstance(auth, AuthRequest) and auth.api_key == KEY and auth.filter is None
    assert [r.event for r in sim.received[1:]] == [CancelOfferInput(cancel_id), CancelOfferInput(unknown_id)]


async def test_official_client_wrong_secret_is_refused(nursery: trio.Nursery) -> None:
    """With a wrong secret the simulator answers auth FAILED, which bfxapi raises as InvalidCredentialError."""
    from bfxapi.exceptions import InvalidCredentialError

    sim = await start(nursery)
    raised = await _official(_wrong_secret_session(sim.url))
    assert isinstance(raised, InvalidCredentialError)
    assert sim.authenticated_count == 0 and isinstance(sim.received[0].event, AuthRequest)


async def test_official_client_submits_an_offer_and_reads_funding(nursery: trio.Nursery) -> None:
    """bfxapi parses the wallet, credit and loan snapshots field by field, submits an offer (fon-req SUCCESS with
    the new id, then fon, the amount as it wrote it) and gets a calc answer with the available balance."""
    sim = await start(nursery, credits=2, loans=1)
    seen = await _official(_submit_session(sim.url))

    assert {(w.wallet_type, w.currency, w.balance, w.available_balance) for w in seen["wallets"]} == {
        ("funding", w.currency, w.balance, None) for w in sim.account.ledger.wallets()}
    theirs = {c.id: c for c in seen["credits"]}
    assert theirs.keys() == sim.credits.keys()
    for credit_id, credit in sim.credits.items():
        assert (theirs[credit_id].symbol, theirs[credit_id].side, theirs[credit_id].amount, theirs[credit_id].rate,
                theirs[credit_id].period, theirs[credit_id].mts_opening, theirs[credit_id].rate_type,
                theirs[credit_id].position_pair) == (credit.symbol, credit.side, credit.amount, credit.rate,
                                                     credit.period, credit.mts_opening, credit.rate_type,
                                                     credit.position_pair)
    assert [loan.id for loan in seen["loans"]] == list(sim.loans)

    notification, offer = seen["notification"], seen["offer"]
    assert (notification.status, notification.data.id, notification.data.amount) == ("SUCCESS", offer.id, 150.1)
    assert (offer.symbol, offer.amount, offer.rate, offer.period, offer.offer_status) == (
        "fUSD", 150.1, 0.00025, 7, "ACTIVE")
    assert sim.offers[offer.id].amount == Decimal("150.10")  # kept as bfxapi wrote it
    submit = next(r.event for r in sim.received if isinstance(r.event, NewOfferInput))
    assert (submit.amount, submit.rate, submit.period, submit.flags) == ("150.10", "0.00025", 7, 0)
    assert any(r.event == CalcInput(requests=("wallet_funding_USD",)) for r in sim.received)
    wallet = seen["wallet"]
    assert (wallet.wallet_type, wallet.currency) == ("funding", "USD") and wallet.available_balance is not None
