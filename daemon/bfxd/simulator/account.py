"""The shared account: the funding offers, wallets, credits and loans that every authenticated connection sees.

State and rules only, no I/O: each method changes the account and returns what happened; the server turns that
into frames. All randomness comes from ``random.Random(seed)`` (offers, ids, scenario choices) and the ledger's
own stream, so a seed always gives the same account (time stamps come from the clock, which the simulator, being
the I/O side, may read).

Rules, as the exchange applies them (bitfinex-ws.md, "Funding offers"):
- ids only grow; an offer leaves the book when it is cancelled or fully executed (``foc``), and its id is then
  unknown to further cancels;
- a partial execution keeps the offer on the book with a smaller AMOUNT and a ``PARTIALLY FILLED at …`` status
  (``fou``); a full one removes it with ``EXECUTED at …`` (``foc``); either way the executed part becomes a
  credit or loan (``ledger.py``: ``fcn``/``fln`` and a ``wu``);
- an ``fon`` input is checked as the exchange would (symbol, type, amount at least the minimum, rate, period
  2-120 days) and refused with an ERROR notification text otherwise; amount and rate are kept as the client
  wrote them (``Decimal``, never through float), so the echo carries the same digits.
"""

from __future__ import annotations

import random
import re
import time
from collections.abc import Callable
from decimal import Decimal

import attrs

from bfxd.protocol import FundingOffer, NewOfferInput
from bfxd.simulator import market, texts
from bfxd.simulator.changes import Change
from bfxd.simulator.ledger import Ledger, Number

HIDDEN_FLAG = 64  # docs "Flag values": hidden
# A decimal number as a client writes it in a string (what str(float) gives for a JSON number, too).
_DECIMAL_TEXT = re.compile(r"-?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?")

__all__ = ["Account", "Change", "OfferRejected", "wall_clock_ms"]


class OfferRejected(Exception):
    """A new offer the exchange would refuse; ``text`` is the notification's TEXT."""

    def __init__(self, text: str) -> None:
        super().__init__(text)
        self.text = text


def wall_clock_ms() -> int:
    """Exchange-style MTS: UTC milliseconds."""
    return int(time.time() * 1000)


def _decimal(text: str) -> Decimal | None:
    return Decimal(text) if _DECIMAL_TEXT.fullmatch(text) else None


class Account:
    """The funding offers of the one simulated account, with seeded ids and amounts, and its ledger."""

    def __init__(self, *, seed: int = 0, clock: Callable[[], int] = wall_clock_ms) -> None:
        self._rng = random.Random(seed)
        self._clock = clock
        self._offers: dict[int, FundingOffer] = {}
        self._next_id = 41_000_000 + self._rng.randrange(1_000_000)  # eight digits, like the exchange's
        self.ledger = Ledger(seed=seed, clock=clock)

    @classmethod
    def generate(cls, count: int, *, seed: int = 0, clock: Callable[[], int] = wall_clock_ms, credits: int = 0,
                 loans: int = 0) -> Account:
        """An account holding *count* random active offers created some time before now, *credits* credits and
        *loans* loans, and funding wallets a little above what all of them tie up."""
        account = cls(seed=seed, clock=clock)
        for _ in range(count):
            account.add_random_offer(age_ms=account._rng.randrange(60_000, 3 * market.DAY_MS))
        account.ledger.seed(credits=credits, loans=loans)
        account.ledger.fund(account.active())
        return account

    @property
    def offers(self) -> dict[int, FundingOffer]:
        """The active offers by id (a copy)."""
        return dict(self._offers)

    def get(self, offer_id: int) -> FundingOffer | None:
        return self._offers.get(offer_id)

    def active(self) -> list[FundingOffer]:
        return [self._offers[offer_id] for offer_id in sorted(self._offers)]

    def _new_id(self) -> int:
        offer_id = self._next_id
        self._next_id += self._rng.randint(1, 40)
        return offer_id

    def add_offer(
        self,
        *,
        symbol: str = "fUSD",
        amount: Number = 100.0,
        rate: Number = 0.0002,
        period: int = 2,
        type: str = "LIMIT",
        flags: int = 0,
        notify: bool = False,
        hidden: bool | None = None,
        renew: bool = False,
        age_ms: int = 0,
    ) -> FundingOffer:
        """Put an ACTIVE offer on the book and return it."""
        created = self._clock() - age_ms
        offer = FundingOffer(
            id=self._new_id(), symbol=symbol, mts_created=created, mts_updated=created, amount=amount,
            amount_orig=amount, type=type, flags=flags, status="ACTIVE", rate=rate, period=period, notify=notify,
            hidden=bool(flags & HIDDEN_FLAG) if hidden is None else hidden, renew=renew,
        )
        self._offers[offer.id] = offer
        return offer

    def add_random_offer(self, *, age_ms: int = 0) -> FundingOffer:
        rng = self._rng
        symbol = rng.choice(sorted(market.SYMBOLS))
        low, high, decimals = market.SYMBOLS[symbol]
        return self.add_offer(
            symbol=symbol, amount=round(rng.uniform(low, high), decimals),
            rate=round(rng.uniform(0.0001, 0.001), 6), period=rng.choice(market.PERIODS), age_ms=age_ms,
        )

    def new_offer(self, request: NewOfferInput) -> FundingOffer:
        """An ``fon`` input: validate it as the exchange would and book it, or raise OfferRejected."""
        if not (len(request.symbol) > 1 and request.symbol.startswith("f") and request.symbol[1:].isalnum()):
            raise OfferRejected(texts.INVALID_SYMBOL)
        if request.type not in market.OFFER_TYPES:
            raise OfferRejected(texts.INVALID_TYPE)
        amount = _decimal(request.amount)
        if not amount:  # None, or zero
            raise OfferRejected(texts.INVALID_AMOUNT)
        if abs(amount) < market.minimum_amount(request.symbol):
            raise OfferRejected(texts.AMOUNT_BELOW_MINIMUM)
        rate = _decimal(request.rate)
        if rate is None or rate < 0 or (request.type == "LIMIT" and rate == 0):
            raise OfferRejected(texts.INVALID_RATE)
        if not market.MIN_PERIOD <= request.period <= market.MAX_PERIOD:
            raise OfferRejected(texts.INVALID_PERIOD)
        return self.add_offer(symbol=request.symbol, amount=amount, rate=rate, period=request.period,
                              type=request.type, flags=request.flags)

    def cancel(self, offer_id: int) -> FundingOffer | None:
        """Take an active offer off the book; return it with status CANCELED, or None if it is not active."""
        offer = self._offers.pop(offer_id, None)
        if offer is None:
            return None
        return attrs.evolve(offer, status="CANCELED", mts_updated=self._clock())

    def execute(self, offer_id: int, amount: float | None = None) -> list[Change]:
        """Execute *amount* of an active offer (all of it when None or when it covers the rest): the offer's
        ``fou``/``foc``, then the credit or loan it became and its wallet.

        Raises KeyError for an offer that is not active.
        """
        offer = self._offers[offer_id]
        assert offer.amount is not None and offer.rate is not None
        remaining = abs(offer.amount)
        exact = isinstance(remaining, Decimal)  # an offer a client created: keep its arithmetic exact
        asked = None if amount is None else (Decimal(str(abs(amount))) if exact else abs(amount))
        filled = remaining if asked is None else min(asked, remaining)
        left = remaining - filled if exact else round(remaining - filled, 8)  # type: ignore[operator]
        sign = -1 if offer.amount < 0 else 1  # negative amounts are borrow offers
        if left <= 0:
            del self._offers[offer_id]
            status = texts.EXECUTED.format(rate=offer.rate * 100, amount=float(filled))
            change = Change("foc", attrs.evolve(offer, amount=0, status=status, mts_updated=self._clock()))
        else:
            status = texts.PARTIALLY_FILLED.format(rate=offer.rate * 100, amount=float(filled))
            updated = attrs.evolve(offer, amount=sign * left, status=status, mts_updated=self._clock())
            self._offers[offer_id] = updated
            change = Change("fou", updated)
        return [change, *self.ledger.open(offer, filled)]

    def scenario_step(self) -> list[Change]:
        """One random event: a new offer appears (made elsewhere, e.g. on the website), or one executes."""
        roll = self._rng.random()
        if not self._offers or roll < 0.35:
            return [Change("fon", self.add_random_offer())]
        offer = self._offers[self._rng.choice(sorted(self._offers))]
        assert offer.amount is not None
        if roll < 0.7:
            decimals = market.SYMBOLS.get(offer.symbol or "", (0, 0, 8))[2]
            return self.execute(offer.id, round(abs(float(offer.amount)) * self._rng.uniform(0.1, 0.5), decimals))
        return self.execute(offer.id)

    def calculated_wallet(self, currency: str) -> Change | None:
        """The ``wu`` answering a ``calc`` for this funding wallet (available balance filled in), or None."""
        wallet = self.ledger.calculated(currency, self._offers.values())
        return None if wallet is None else Change("wu", wallet)
