"""The simulated account's funding wallets, credits and loans: what executed offers become. State and rules only.

Rules (the exchange's, as the docs describe them; where they are silent, CHOSEN and said so):
- one funding wallet per currency; BALANCE changes only through ``set_balance`` (lending does not move funds out
  of the funding wallet, it ties them up); UNSETTLED_INTEREST stays 0 (no interest accrues in the simulator);
- an offer's executed part becomes a funding *credit* (used in a position, with a POSITION_PAIR) or a *loan*
  (not used in one): ``fcn``/``fln``, followed by a ``wu`` whose BALANCE_AVAILABLE is null, because the available
  figure is no longer fresh (docs "Wallets"). Credit or loan is a seeded coin toss (CHOSEN);
- BALANCE_AVAILABLE is computed only when asked (``calc``): the balance minus what lend offers and lent funding
  (side 1) tie up in that currency, never below 0 (CHOSEN: borrowing does not add to it);
- ``close`` ends a credit or loan (``fcc``/``flc``, status ``CLOSED``) and frees its funds, again with a ``wu``.
All randomness comes from one ``random.Random`` seeded from the simulator's seed, apart from the offers' own.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterable
from decimal import Decimal

import attrs

from bfxd.protocol import FundingCredit, FundingLoan, FundingOffer, Wallet
from bfxd.simulator import market
from bfxd.simulator.changes import Change

FUNDING = "funding"
Number = int | float | Decimal


def _currency(symbol: str | None) -> str:
    return (symbol or "f?")[1:]


class Ledger:
    """Funding wallets by currency, and the open credits and loans by id."""

    def __init__(self, *, seed: int, clock: Callable[[], int]) -> None:
        self._rng = random.Random(f"ledger-{seed}")  # its own stream: the offers' seeded values stay as they were
        self._clock = clock
        self._balances: dict[str, float] = {}
        self.credits: dict[int, FundingCredit] = {}
        self.loans: dict[int, FundingLoan] = {}
        self._next_id = 26_000_000 + self._rng.randrange(1_000_000)

    # ---- wallets -----------------------------------------------------------------------------------------

    def set_balance(self, currency: str, balance: float) -> None:
        self._balances[currency] = balance

    def fund(self, offers: Iterable[FundingOffer]) -> None:
        """Give every currency a balance a little above what offers and open funding tie up in it."""
        tied: dict[str, float] = {symbol[1:]: 0.0 for symbol in market.SYMBOLS}
        for item in [*offers, *self.credits.values(), *self.loans.values()]:
            currency = _currency(item.symbol)
            tied[currency] = tied.get(currency, 0.0) + abs(float(item.amount or 0))
        for currency, total in tied.items():
            low = market.SYMBOLS.get(f"f{currency}", (150, 0, 2))[0]
            self._balances[currency] = round(total * 1.25 if total else low * 10, 8)

    def wallet(self, currency: str, *, available: float | None = None) -> Wallet:
        return Wallet(type=FUNDING, currency=currency, balance=self._balances.get(currency, 0.0),
                      unsettled_interest=0, available=available)

    def wallets(self) -> list[Wallet]:
        """The ``ws`` snapshot: every funding wallet, available unknown until asked for (as the exchange does)."""
        return [self.wallet(currency) for currency in sorted(self._balances)]

    def calculated(self, currency: str, offers: Iterable[FundingOffer]) -> Wallet | None:
        """The wallet with its available balance, as a ``calc`` answer carries it; None for no such wallet."""
        if currency not in self._balances:
            return None
        tied = sum(abs(float(o.amount or 0)) for o in offers
                   if _currency(o.symbol) == currency and float(o.amount or 0) > 0)
        tied += sum(abs(float(f.amount or 0)) for f in [*self.credits.values(), *self.loans.values()]
                    if _currency(f.symbol) == currency and f.side == 1)
        return self.wallet(currency, available=max(0.0, round(self._balances[currency] - tied, 8)))

    # ---- credits and loans -------------------------------------------------------------------------------

    def _new_id(self) -> int:
        item_id = self._next_id
        self._next_id += self._rng.randint(1, 40)
        return item_id

    def open(self, offer: FundingOffer, filled: Number, *, as_credit: bool | None = None, age_ms: int = 0) -> list[
            Change]:
        """The executed part *filled* of *offer* becomes a credit or a loan; return ``fcn``/``fln`` and the ``wu``."""
        assert offer.symbol is not None and offer.amount is not None
        now = self._clock()
        opened = now - age_ms
        sign = -1 if offer.amount < 0 else 1
        fields = {
            "id": self._new_id(), "symbol": offer.symbol, "status": "ACTIVE", "side": sign,
            "mts_create": opened, "mts_update": opened, "amount": sign * abs(filled), "flags": 0,
            "rate_type": "FIXED" if offer.type == "LIMIT" else "VAR", "rate": offer.rate, "period": offer.period,
            "mts_opening": opened, "mts_last_payout": None, "notify": offer.notify, "hidden": offer.hidden,
            "renew": offer.renew, "no_close": False,
        }
        if as_credit is None:
            as_credit = self._rng.random() < 0.5
        currency = _currency(offer.symbol)
        self._balances.setdefault(currency, 0.0)
        if as_credit:
            credit = FundingCredit(**fields, position_pair=market.position_pair(currency))
            self.credits[credit.id] = credit
            return [Change("fcn", credit), Change("wu", self.wallet(currency))]
        loan = FundingLoan(**fields)
        self.loans[loan.id] = loan
        return [Change("fln", loan), Change("wu", self.wallet(currency))]

    def close(self, item_id: int) -> list[Change]:
        """End a credit or loan (``fcc``/``flc``) and report the wallet; KeyError if neither is open."""
        now = self._clock()
        if item_id in self.credits:
            credit = attrs.evolve(self.credits.pop(item_id), status="CLOSED", mts_update=now)
            return [Change("fcc", credit), Change("wu", self.wallet(_currency(credit.symbol)))]
        loan = attrs.evolve(self.loans.pop(item_id), status="CLOSED", mts_update=now)
        return [Change("flc", loan), Change("wu", self.wallet(_currency(loan.symbol)))]

    def seed(self, *, credits: int, loans: int) -> None:
        """Open *credits* credits and *loans* loans, lent some time ago at random sizes, rates and periods."""
        rng = self._rng
        for as_credit in [True] * credits + [False] * loans:
            symbol = rng.choice(sorted(market.SYMBOLS))
            low, high, decimals = market.SYMBOLS[symbol]
            period = rng.choice(market.PERIODS)
            amount = round(rng.uniform(low, high), decimals)
            lent = FundingOffer(id=None, symbol=symbol, amount=amount, type="LIMIT", status="EXECUTED",
                                rate=round(rng.uniform(0.0001, 0.001), 6), period=period, notify=False,
                                hidden=False, renew=False)
            self.open(lent, amount, as_credit=as_credit, age_ms=rng.randrange(60_000, period * market.DAY_MS))
