"""The simulator's funding side: wallets, credits and loans in the snapshots and after executions, calc answers,
sequence numbers and the fault that skips one, fon validation, and the Node client's auth payload."""

from __future__ import annotations

import hashlib
import hmac
import json
from decimal import Decimal
from typing import Any

import pytest
import trio

from bfxd.protocol import (
    CreditsSnapshot,
    FundingCredit,
    FundingLoan,
    LoansSnapshot,
    OfferUpdate,
    SequenceCheck,
    Wallet,
    WalletsSnapshot,
    WalletUpdate,
    calc_frame,
    conf_frame,
    decode_exchange_frame,
    sequence_numbers,
)
from bfxd.simulator import Account, SimulatorConfig
from bfxd.simulator.ledger import Ledger

from .wsclient import KEY, SECRET, auth_text, connect, kinds, start

DEFAULT_FILTER = ("funding", "wallet", "notify")


def fon(amount: str, *, period: int = 2, rate: str = "0.0002", symbol: str = "fUSD") -> list[Any]:
    return [0, "fon", None, {"type": "LIMIT", "symbol": symbol, "amount": amount, "rate": rate, "period": period}]


class TestSnapshots:
    async def test_snapshots_carry_wallets_credits_and_loans(self, nursery: trio.Nursery) -> None:
        """With bfxd's filter: ws (funding wallets, available null), fos, fcs and fls holding the seeded funding."""
        sim = await start(nursery, credits=3, loans=2)
        async with connect(sim.url) as client:
            frames = await client.authenticate(filter=DEFAULT_FILTER)
        assert kinds(frames[1:]) == ["ws", "fos", "fcs", "fls"]
        wallets, credits, loans = (decode_exchange_frame(json.dumps(f)) for f in (frames[1], frames[3], frames[4]))
        assert isinstance(wallets, WalletsSnapshot) and isinstance(credits, CreditsSnapshot)
        assert isinstance(loans, LoansSnapshot)
        assert {w.currency for w in wallets.wallets} == {"USD", "UST", "EUR", "BTC", "ETH"}
        assert all(w.type == "funding" and w.available is None and w.balance > 0 for w in wallets.wallets)
        assert {c.id: c for c in credits.credits} == sim.credits and len(sim.credits) == 3
        assert {loan.id: loan for loan in loans.loans} == sim.loans and len(sim.loans) == 2
        assert all(c.position_pair and c.side == 1 and c.status == "ACTIVE" for c in credits.credits)
        assert not credits.skipped and not loans.skipped and not wallets.skipped

    async def test_filter_narrows_wallets_and_funding(self, nursery: trio.Nursery) -> None:
        """wallet-funding-USD lets one wallet through and no funding; funding-SYMBOL narrows credits and loans."""
        sim = await start(nursery, credits=8, loans=8)
        async with connect(sim.url) as client:
            await client.send(auth_text(filter=("wallet-funding-USD",)))
            frames = [await client.receive(), await client.receive()]
            assert await client.nothing_within(0.1)
        assert kinds(frames) == ["auth", "ws"] and [w[1] for w in frames[1][2]] == ["USD"]
        symbol = next(iter(sim.credits.values())).symbol
        async with connect(sim.url) as client:
            frames = await client.authenticate(filter=(f"funding-{symbol}",))
        assert kinds(frames[1:]) == ["fos", "fcs", "fls"]
        assert {row[1] for row in frames[2][2] + frames[3][2]} == {symbol}

    def test_seeding_ten_thousand_credits_is_deterministic(self) -> None:
        """The bench fixture: 10,000 credits, the same for the same seed, each opened within its period."""
        first = Account.generate(0, seed=5, credits=10_000).ledger.credits
        second = Account.generate(0, seed=5, credits=10_000).ledger.credits
        assert len(first) == 10_000 and list(first) == list(second)
        assert all(c.mts_opening is not None and c.mts_expires is not None for c in first.values())


class TestExecutions:
    async def test_executed_offer_becomes_funding_with_a_wallet_update(self, nursery: trio.Nursery) -> None:
        """A partial execution: fou, then fcn or fln for the executed part (same rate, period and symbol), then
        wu with available null; the credit or loan joins the account."""
        sim = await start(nursery)
        offer = sim.add_offer(symbol="fUST", amount=500.0, rate=0.0003, period=7)
        async with connect(sim.url) as client:
            await client.authenticate(filter=DEFAULT_FILTER)
            await sim.execute_offer(offer.id, amount=10)
            update, opened, wallet = [decode_exchange_frame(await client.receive_text()) for _ in range(3)]
        funding = getattr(opened, "credit", None) or getattr(opened, "loan", None)
        assert isinstance(funding, (FundingCredit, FundingLoan))
        assert (funding.symbol, funding.amount, funding.rate, funding.period, funding.side, funding.status) == (
            offer.symbol, 10, offer.rate, offer.period, 1, "ACTIVE")
        assert funding.mts_opening is not None and funding.id in {**sim.credits, **sim.loans}
        assert isinstance(wallet, WalletUpdate) and wallet.wallet.currency == offer.symbol[1:]  # type: ignore[index]
        assert wallet.wallet.available is None
        assert isinstance(update, OfferUpdate) and update.offer.amount == pytest.approx(490.0)

    async def test_closing_funding(self, nursery: trio.Nursery) -> None:
        """close_funding → fcc/flc with status CLOSED, then wu; the item leaves the account."""
        sim = await start(nursery, credits=1, loans=1)
        credit_id, loan_id = next(iter(sim.credits)), next(iter(sim.loans))
        async with connect(sim.url, authenticated=True) as client:
            await sim.close_funding(credit_id)
            await sim.close_funding(loan_id)
            frames = [await client.receive() for _ in range(4)]
        assert kinds(frames) == ["fcc", "wu", "flc", "wu"]
        assert (frames[0][2][0], frames[0][2][7], frames[2][2][0]) == (credit_id, "CLOSED", loan_id)
        assert sim.credits == {} and sim.loans == {}
        with pytest.raises(KeyError):
            await sim.close_funding(credit_id)


class TestCalc:
    async def test_calc_is_answered_with_available_balance(self, nursery: trio.Nursery) -> None:
        """calc for funding wallets → one wu each, to the asker only, available = balance minus what lend offers
        and lent funding tie up; unknown keys and currencies get nothing."""
        sim = await start(nursery, offers=4, credits=2)
        async with connect(sim.url) as asker, connect(sim.url) as other:
            await asker.authenticate(filter=DEFAULT_FILTER)
            await other.authenticate(filter=DEFAULT_FILTER)
            await asker.send(calc_frame(["wallet_funding_USD", "margin_base", "wallet_funding_XYZ",
                                         "wallet_exchange_USD", "wallet_funding_BTC"]))
            answers = [decode_exchange_frame(await asker.receive_text()) for _ in range(2)]
            assert await asker.nothing_within(0.1) and await other.nothing_within(0.05)
        ledger = sim.account.ledger
        for answer, currency in zip(answers, ("USD", "BTC"), strict=True):
            assert isinstance(answer, WalletUpdate) and answer.wallet.currency == currency
            tied = sum(abs(o.amount) for o in sim.offers.values() if o.symbol == f"f{currency}")  # type: ignore[misc]
            tied += sum(abs(f.amount) for f in [*sim.credits.values()] if f.symbol == f"f{currency}")  # type: ignore
            assert answer.wallet.available == pytest.approx(max(0.0, ledger.wallet(currency).balance - tied))

    async def test_too_many_calculations_is_an_error(self, nursery: trio.Nursery) -> None:
        """More than 30 calculations in one batch → error 10001 (docs: "will receive an error")."""
        sim = await start(nursery)
        frame = json.dumps([0, "calc", None, [["wallet_funding_USD"]] * 31])
        async with connect(sim.url, authenticated=True) as client:
            await client.send(frame)
            answer = await client.receive()
        assert answer["event"] == "error" and answer["code"] == 10001

    def test_available_never_below_zero_and_unknown_wallet(self) -> None:
        """A wallet tied up beyond its balance shows 0 available; a currency without a wallet has no answer."""
        ledger = Ledger(seed=1, clock=lambda: 0)
        ledger.set_balance("USD", 10.0)
        account = Account(seed=1, clock=lambda: 0)
        account.add_offer(amount=100.0)
        assert ledger.calculated("USD", account.active()) == Wallet("funding", "USD", 10.0, 0, 0.0)
        assert ledger.calculated("EUR", account.active()) is None


class TestSequenceNumbers:
    async def test_numbers_follow_the_node_clients_rules(self, nursery: trio.Nursery) -> None:
        """After conf SEQ_ALL every frame carries numbers the Node client's check accepts, answers to inputs
        included; the conf answer and other events carry none."""
        sim = await start(nursery, hb_interval=0.2)
        offer_id = next(iter(sim.offers))
        check = SequenceCheck()
        async with connect(sim.url) as client:
            await client.send(conf_frame(65536))
            assert await client.receive() == {"event": "conf", "status": "OK", "flags": 65536}
            frames = await client.authenticate(filter=DEFAULT_FILTER)
            await client.send([0, "foc", None, {"id": offer_id}])
            frames += await client.receive_until(lambda f: f[1] == "foc")
            frames.append(await client.receive())  # the heartbeat after hb_interval of silence
        verdicts = [check.feed(sequence_numbers(f)) for f in frames]
        assert [v.status for v in verdicts] == ["no-number", *["ok"] * (len(frames) - 1)]
        assert frames[-1][:2] == [0, "hb"] and len(frames[-1]) == 3
        at = next(i for i, f in enumerate(frames) if isinstance(f, list) and f[1] == "n")
        # An input's answer: no public number, the auth number of the frame before it repeated.
        assert len(frames[at]) == 4 and frames[at][3] == frames[at - 1][-1]
        assert frames[1][-2:] == [1, 1]  # both counters start at 1

    async def test_skipped_number_is_a_gap(self, nursery: trio.Nursery) -> None:
        """skip_sequence(1): the next account update is numbered and never sent; the check reports the gap."""
        sim = await start(nursery)
        offer_ids = list(sim.offers)
        check = SequenceCheck()
        async with connect(sim.url) as client:
            await client.send(conf_frame(65536))
            await client.receive()
            for frame in await client.authenticate(filter=DEFAULT_FILTER):
                assert not check.feed(sequence_numbers(frame)).is_gap
            sim.skip_sequence(1)
            sim.add_offer(amount=200.0)  # numbered, then lost
            sim.add_offer(amount=300.0)
            verdict = check.feed(sequence_numbers(await client.receive()))
        assert verdict.is_gap and verdict.stream == "public" and verdict.got == verdict.expected + 1  # type: ignore
        assert sim.faults.sequence_skips == 0 and len(sim.offers) == len(offer_ids) + 2

    async def test_no_numbers_without_conf(self, nursery: trio.Nursery) -> None:
        """Without SEQ_ALL nothing is numbered and a skip fault is not consumed."""
        sim = await start(nursery)
        sim.skip_sequence(1)
        async with connect(sim.url, authenticated=True) as client:
            sim.add_offer(amount=200.0)
            frame = await client.receive()
        assert frame[1] == "fon" and len(frame) == 3 and sim.faults.sequence_skips == 1
        with pytest.raises(ValueError):
            sim.skip_sequence(-1)


class TestNewOfferValidation:
    @pytest.mark.parametrize(("request_", "text"), [
        (fon("149.99"), "Invalid offer: incorrect amount, minimum is 150 dollar or equivalent in USD"),
        (fon("-149.99"), "Invalid offer: incorrect amount, minimum is 150 dollar or equivalent in USD"),
        (fon("0.004", symbol="fBTC"), "Invalid offer: incorrect amount, minimum is 150 dollar or equivalent in USD"),
        (fon("0"), "Invalid offer: incorrect amount"),
        (fon("1_000"), "Invalid offer: incorrect amount"),
        (fon("NaN"), "Invalid offer: incorrect amount"),
        (fon(" 500"), "Invalid offer: incorrect amount"),
        (fon("500", period=1), "Invalid offer: period must be between 2 and 120 days"),
        (fon("500", period=121), "Invalid offer: period must be between 2 and 120 days"),
        (fon("500", rate="-0.1"), "Invalid offer: incorrect rate"),
        (fon("500", rate="abc"), "Invalid offer: incorrect rate"),
    ])
    async def test_refused_with_an_error_notification(self, nursery: trio.Nursery, request_: list[Any],
                                                      text: str) -> None:
        """Each rule broken → n fon-req ERROR with its documented text; the book is unchanged."""
        sim = await start(nursery)
        before = sim.offers
        async with connect(sim.url, authenticated=True) as client:
            await client.send(request_)
            notification = (await client.receive())[2]
        assert notification[1] == "fon-req" and notification[6:] == ["ERROR", text]
        assert sim.offers == before

    @pytest.mark.parametrize(("amount", "period", "symbol"), [("150", 2, "fUSD"), ("-150", 120, "fUSD"),
                                                              ("0.005", 30, "fBTC"), ("1e3", 7, "fEUR")])
    async def test_limits_are_inclusive(self, nursery: trio.Nursery, amount: str, period: int, symbol: str) -> None:
        """The minimum amount and both period bounds are accepted; an exponent is a number like any other."""
        sim = await start(nursery)
        async with connect(sim.url, authenticated=True) as client:
            await client.send(fon(amount, period=period, symbol=symbol))
            notification, update = (await client.receive())[2], await client.receive()
        assert notification[6] == "SUCCESS" and update[1] == "fon" and update[2][0] in sim.offers


class TestNodeClientAuth:
    def _auth(self, payload: str, nonce: int, **extra: Any) -> str:
        signature = hmac.new(SECRET.encode(), payload.encode(), hashlib.sha384).hexdigest()
        return json.dumps({"event": "auth", "apiKey": KEY, "authSig": signature, "authPayload": payload,
                           "authNonce": nonce, **extra})

    async def test_node_clients_doubled_nonce_payload_is_accepted(self, nursery: trio.Nursery) -> None:
        """bitfinex-api-node 7.0.0 signs AUTH<nonce><nonce> and sends the nonce as a number, dms 0, calc 0."""
        sim = await start(nursery)
        nonce = 1_800_000_000_000_000
        async with connect(sim.url) as client:
            await client.send(self._auth(f"AUTH{nonce}{nonce}", nonce, dms=0, calc=0))
            answer = await client.receive()
        assert answer["event"] == "auth" and answer["status"] == "OK" and sim.authenticated_count == 1

    @pytest.mark.parametrize(("payload", "code"), [("AUTH{n}", 10100), ("AUTH{m}{n}", 10111), ("{n}AUTH", 10111),
                                                   ("AUTH", 10111)])
    async def test_payload_must_begin_with_auth_nonce(self, nursery: trio.Nursery, payload: str, code: int) -> None:
        """The payload must begin with AUTH<nonce> (10111 otherwise), and the signature is checked over the
        payload as sent: a signature over another payload is refused (10100)."""
        sim = await start(nursery)
        nonce = 1_800_000_000_000_001
        signed = payload.format(n=nonce, m=nonce - 1)
        text = self._auth(signed, nonce)
        if code == 10100:  # sign one payload, send another that is itself valid
            frame = json.loads(text)
            frame["authPayload"] = f"AUTH{nonce}{nonce}"
            text = json.dumps(frame)
        async with connect(sim.url) as client:
            await client.send(text)
            answer = await client.receive()
        assert (answer["status"], answer["code"]) == ("FAILED", code) and sim.authenticated_count == 0


def test_config_validates_funding_counts() -> None:
    """Credits and loans at start must not be negative."""
    with pytest.raises(ValueError):
        SimulatorConfig(credits=-1)
    assert SimulatorConfig(loans=3).loans == 3


def test_exact_offer_executes_exactly() -> None:
    """A partial execution of an offer a client wrote as decimal text keeps exact digits (no float, no rounding)."""
    account = Account(seed=1, clock=lambda: 0)
    offer = account.add_offer(amount=Decimal("150.10"), rate=Decimal("0.00020"))
    update, opened, _wallet = account.execute(offer.id, 0.1)
    assert update.offer.amount == Decimal("150.00") and str(update.offer.amount) == "150.00"
    assert opened.item.amount == Decimal("0.1") and opened.kind in ("fcn", "fln")  # type: ignore[union-attr]
    last = account.execute(offer.id)
    assert last[0].kind == "foc" and last[1].item.amount == Decimal("150.00")  # type: ignore[union-attr]
