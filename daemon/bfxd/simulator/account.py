"""The shared account: the funding offers that every authenticated connection of one simulator sees.

State and rules only, no I/O: each method changes the book and returns what happened; the server turns that into
frames. All randomness comes from one ``random.Random(seed)``, so a seed always gives the same offers, ids and
scenario choices (time stamps come from the clock, which the simulator, being the I/O side, may read).

Rules, as the exchange applies them (bitfinex-ws.md, "Funding offers"):
- ids only grow; an offer leaves the book when it is cancelled or fully executed (``foc``), and its id is then
  unknown to further cancels;
- a partial execution keeps the offer on the book with a smaller AMOUNT and a ``PARTIALLY FILLED at …`` status
  (``fou``); a full one removes it with ``EXECUTED at …`` (``foc``).
"""

from __future__ import annotations

import math
import random
import time
from collections.abc import Callable

import attrs

from bfxd.protocol import FundingOffer, NewOfferInput
from bfxd.simulator import texts

OFFER_TYPES = frozenset({"LIMIT", "FRRDELTAVAR", "FRRDELTAFIX"})
MIN_PERIOD, MAX_PERIOD = 2, 120  # days, the exchange's bounds for funding offers
HIDDEN_FLAG = 64  # docs "Flag values": hidden
# Symbols with a plausible offer size range and decimals for each (a BTC offer is not thousands of BTC).
_SYMBOLS = {"fUSD": (150, 5000, 2), "fUST": (150, 5000, 2), "fEUR": (150, 5000, 2), "fBTC": (0.005, 0.5, 8),
            "fETH": (0.05, 5, 8)}
_PERIODS = (2, 3, 5, 7, 10, 14, 30, 60, 90, 120)
_DAY_MS = 86_400_000


class OfferRejected(Exception):
    """A new offer the exchange would refuse; ``text`` is the notification's TEXT."""

    def __init__(self, text: str) -> None:
        super().__init__(text)
        self.text = text


@attrs.frozen
class Change:
    """One change of the book, as the account channel reports it: ``fon``, ``fou`` or ``foc``."""

    kind: str
    offer: FundingOffer


def wall_clock_ms() -> int:
    """Exchange-style MTS: UTC milliseconds."""
    return int(time.time() * 1000)


def _finite(text: str) -> float | None:
    try:
        value = float(text)
    except ValueError:
        return None
    return value if math.isfinite(value) else None


class Account:
    """The funding offers of the one simulated account, with seeded ids and amounts."""

    def __init__(self, *, seed: int = 0, clock: Callable[[], int] = wall_clock_ms) -> None:
        self._rng = random.Random(seed)
        self._clock = clock
        self._offers: dict[int, FundingOffer] = {}
        self._next_id = 41_000_000 + self._rng.randrange(1_000_000)  # eight digits, like the exchange's

    @classmethod
    def generate(cls, count: int, *, seed: int = 0, clock: Callable[[], int] = wall_clock_ms) -> Account:
        """An account holding *count* random active offers, created some time before now."""
        account = cls(seed=seed, clock=clock)
        for _ in range(count):
            account.add_random_offer(age_ms=account._rng.randrange(60_000, 3 * _DAY_MS))
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
        amount: float = 100.0,
        rate: float = 0.0002,
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
        symbol = rng.choice(sorted(_SYMBOLS))
        low, high, decimals = _SYMBOLS[symbol]
        return self.add_offer(
            symbol=symbol, amount=round(rng.uniform(low, high), decimals),
            rate=round(rng.uniform(0.0001, 0.001), 6), period=rng.choice(_PERIODS), age_ms=age_ms,
        )

    def new_offer(self, request: NewOfferInput) -> FundingOffer:
        """An ``fon`` input: validate it as the exchange would and book it, or raise OfferRejected."""
        if not (len(request.symbol) > 1 and request.symbol.startswith("f") and request.symbol[1:].isalnum()):
            raise OfferRejected(texts.INVALID_SYMBOL)
        if request.type not in OFFER_TYPES:
            raise OfferRejected(texts.INVALID_TYPE)
        amount = _finite(request.amount)
        if not amount:
            raise OfferRejected(texts.INVALID_AMOUNT)
        rate = _finite(request.rate)
        if rate is None or rate < 0 or (request.type == "LIMIT" and rate == 0):
            raise OfferRejected(texts.INVALID_RATE)
        if not MIN_PERIOD <= request.period <= MAX_PERIOD:
            raise OfferRejected(texts.INVALID_PERIOD)
        return self.add_offer(symbol=request.symbol, amount=amount, rate=rate, period=request.period,
                              type=request.type, flags=request.flags)

    def cancel(self, offer_id: int) -> FundingOffer | None:
        """Take an active offer off the book; return it with status CANCELED, or None if it is not active."""
        offer = self._offers.pop(offer_id, None)
        if offer is None:
            return None
        return attrs.evolve(offer, status="CANCELED", mts_updated=self._clock())

    def execute(self, offer_id: int, amount: float | None = None) -> Change:
        """Execute *amount* of an active offer (all of it when None or when it covers the rest).

        Raises KeyError for an offer that is not active.
        """
        offer = self._offers[offer_id]
        assert isinstance(offer.amount, (int, float)) and isinstance(offer.rate, (int, float))
        remaining = abs(offer.amount)
        filled = remaining if amount is None else min(abs(amount), remaining)
        left = round(remaining - filled, 8)
        sign = -1 if offer.amount < 0 else 1  # negative amounts are borrow offers
        if left <= 0:
            del self._offers[offer_id]
            status = texts.EXECUTED.format(rate=offer.rate * 100, amount=float(filled))
            return Change("foc", attrs.evolve(offer, amount=0, status=status, mts_updated=self._clock()))
        status = texts.PARTIALLY_FILLED.format(rate=offer.rate * 100, amount=float(filled))
        updated = attrs.evolve(offer, amount=sign * left, status=status, mts_updated=self._clock())
        self._offers[offer_id] = updated
        return Change("fou", updated)

    def scenario_step(self) -> Change:
        """One random event: a new offer appears (made elsewhere, e.g. on the website), or one executes."""
        roll = self._rng.random()
        if not self._offers or roll < 0.35:
            return Change("fon", self.add_random_offer())
        offer = self._offers[self._rng.choice(sorted(self._offers))]
        assert isinstance(offer.amount, (int, float))
        if roll < 0.7:
            decimals = _SYMBOLS.get(offer.symbol or "", (0, 0, 8))[2]
            return self.execute(offer.id, round(abs(offer.amount) * self._rng.uniform(0.1, 0.5), decimals))
        return self.execute(offer.id)

    def wallets(self) -> list[list[object]]:
        """The ``ws`` snapshot rows: one funding wallet per currency, a little above what is on offer."""
        totals: dict[str, float] = {}
        for offer in self._offers.values():
            assert offer.symbol is not None and isinstance(offer.amount, (int, float))
            totals[offer.symbol[1:]] = totals.get(offer.symbol[1:], 0.0) + abs(offer.amount)
        return [["funding", currency, round(total * 1.25, 8), 0, None, None, None]
                for currency, total in sorted(totals.items())]
