"""What the simulated exchange offers to lend and borrow: symbols, sizes, periods. Constants only.

Sizes: the simulator's minimum funding offer is 150 USD, or a fixed equivalent per currency (no price feed). 150 is
the figure the exchange's funding pages give; the per-currency equivalents are CHOSEN. Periods: 2 to 120 days.
"""

from __future__ import annotations

from decimal import Decimal

OFFER_TYPES = frozenset({"LIMIT", "FRRDELTAVAR", "FRRDELTAFIX"})
MIN_PERIOD, MAX_PERIOD = 2, 120  # days, the exchange's bounds for funding offers
PERIODS = (2, 3, 5, 7, 10, 14, 30, 60, 90, 120)
DAY_MS = 86_400_000

# symbol → (smallest offer, largest random offer, decimals). The smallest is also the minimum an fon must meet.
SYMBOLS = {"fUSD": (150, 5000, 2), "fUST": (150, 5000, 2), "fEUR": (150, 5000, 2), "fBTC": (0.005, 0.5, 8),
           "fETH": (0.05, 5, 8)}
DEFAULT_MINIMUM = Decimal(150)  # for a currency the table does not know


def minimum_amount(symbol: str) -> Decimal:
    """The smallest offer (absolute amount) the simulator accepts for *symbol*."""
    entry = SYMBOLS.get(symbol)
    return Decimal(str(entry[0])) if entry else DEFAULT_MINIMUM


def position_pair(currency: str) -> str:
    """The trading pair a credit in *currency* is plausibly used in (a BTC position, or BTC/USD for BTC)."""
    return "tBTCUSD" if currency == "BTC" else f"tBTC{currency}"
