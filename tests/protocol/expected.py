"""Expected values for the frame corpus, written out by hand from tests/frames (never derived from the decoder)."""

from __future__ import annotations

from bfxd.protocol.offer import FundingOffer

# The fUST offer of fos-snapshot.json / n-foc-req-success.json, while still ACTIVE.
UST_ACTIVE = FundingOffer(
    id=41238934,
    symbol="fUST",
    mts_created=1575293959000,
    mts_updated=1575294374000,
    amount=500,
    amount_orig=500,
    type="LIMIT",
    flags=0,
    status="ACTIVE",
    rate=0.02,
    period=2,
    notify=False,
    hidden=False,
    renew=False,
)

# The same offer in fou-partial.json: 200 of 500 lent, the rest still on the book.
UST_PARTIAL = FundingOffer(
    id=41238934,
    symbol="fUST",
    mts_created=1575293959000,
    mts_updated=1575294374000,
    amount=300,
    amount_orig=500,
    type="LIMIT",
    flags=0,
    status="PARTIALLY FILLED at 0.02% (200.0)",
    rate=0.02,
    period=2,
    notify=False,
    hidden=False,
    renew=False,
)

# foc-canceled.json.
UST_CANCELED = FundingOffer(
    id=41238934,
    symbol="fUST",
    mts_created=1575293959000,
    mts_updated=1575294374000,
    amount=500,
    amount_orig=500,
    type="LIMIT",
    flags=0,
    status="CANCELED",
    rate=0.02,
    period=2,
    notify=False,
    hidden=False,
    renew=False,
)

# foc-executed.json.
UST_EXECUTED = FundingOffer(
    id=41238934,
    symbol="fUST",
    mts_created=1575293959000,
    mts_updated=1575294374000,
    amount=0,
    amount_orig=500,
    type="LIMIT",
    flags=0,
    status="EXECUTED at 0.02% (500.0)",
    rate=0.02,
    period=2,
    notify=False,
    hidden=False,
    renew=False,
)

# fon.json / fos-snapshot.json / n-fon-req-success.json: booleans as true/false there, 0/1 in the fUST rows.
USD_ACTIVE = FundingOffer(
    id=41238935,
    symbol="fUSD",
    mts_created=1575293960000,
    mts_updated=1575293960000,
    amount=-1000.5,
    amount_orig=-1000.5,
    type="FRRDELTAVAR",
    flags=0,
    status="ACTIVE",
    rate=0.0002,
    period=30,
    notify=False,
    hidden=True,
    renew=True,
)

# n-foc-req-error.json: every field null but the id.
ERROR_INFO_OFFER = FundingOffer(id=41238999)
