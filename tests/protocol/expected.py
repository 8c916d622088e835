"""Expected values for the frame corpus, written out by hand from tests/frames (never derived from the decoder)."""

from __future__ import annotations

from bfxd.protocol.funding import FundingCredit, FundingLoan
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


# ---- credits and loans (fcs-docs-example.json is the docs' own fcs example; the rest follow its field table) ----

# The docs' example credit: 350 fUST lent for 30 days, used in a tBTCUST position.
CREDIT_DOCS = FundingCredit(
    id=26223578, symbol="fUST", status="ACTIVE", side=1, mts_create=1575052261000, mts_update=1575296187000,
    amount=350, flags=0, rate_type=None, rate=0, period=30, mts_opening=1575052261000,
    mts_last_payout=1575293487000, notify=False, hidden=False, renew=False, no_close=False, position_pair="tBTCUST",
)

# fcn.json (booleans as true/false), then fcu.json (the first payout; booleans as 0/1), then fcc.json.
CREDIT_FCN = FundingCredit(
    id=26223600, symbol="fUSD", status="ACTIVE", side=1, mts_create=1575300000000, mts_update=1575300000000,
    amount=500.25, flags=0, rate_type="FIXED", rate=0.0002, period=2, mts_opening=1575300000000,
    mts_last_payout=None, notify=False, hidden=True, renew=True, no_close=False, position_pair="tBTCUSD",
)
CREDIT_FCU = FundingCredit(
    id=26223600, symbol="fUSD", status="ACTIVE", side=1, mts_create=1575300000000, mts_update=1575303600000,
    amount=500.25, flags=0, rate_type="FIXED", rate=0.0002, period=2, mts_opening=1575300000000,
    mts_last_payout=1575303600000, notify=False, hidden=True, renew=True, no_close=False, position_pair="tBTCUSD",
)
CREDIT_FCC = FundingCredit(
    id=26223600, symbol="fUSD", status="CLOSED (used)", side=1, mts_create=1575300000000,
    mts_update=1575472800000, amount=500.25, flags=0, rate_type="FIXED", rate=0.0002, period=2,
    mts_opening=1575300000000, mts_last_payout=1575472800000, notify=False, hidden=True, renew=True,
    no_close=False, position_pair="tBTCUSD",
)

# fls-snapshot.json's loan, then flu.json and flc.json; fln.json is a borrowed fBTC loan (side -1).
LOAN_FLS = FundingLoan(
    id=2995442, symbol="fUSD", status="ACTIVE", side=1, mts_create=1575291961000, mts_update=1575295850000,
    amount=820, flags=0, rate_type="FIXED", rate=0.0024, period=2, mts_opening=1575291961000,
    mts_last_payout=1575295850000, notify=False, hidden=False, renew=False, no_close=False,
)
LOAN_FLU = FundingLoan(
    id=2995442, symbol="fUSD", status="ACTIVE", side=1, mts_create=1575291961000, mts_update=1575380000000,
    amount=820, flags=0, rate_type="FIXED", rate=0.0024, period=2, mts_opening=1575291961000,
    mts_last_payout=1575380000000, notify=False, hidden=False, renew=False, no_close=False,
)
LOAN_FLC = FundingLoan(
    id=2995442, symbol="fUSD", status="CLOSED (expired)", side=1, mts_create=1575291961000,
    mts_update=1575464761000, amount=820, flags=0, rate_type="FIXED", rate=0.0024, period=2,
    mts_opening=1575291961000, mts_last_payout=1575464761000, notify=False, hidden=False, renew=False,
    no_close=False,
)
BTC_LOAN_NEW = FundingLoan(
    id=2995450, symbol="fBTC", status="ACTIVE", side=-1, mts_create=1575300000000, mts_update=1575300000000,
    amount=-0.05, flags=0, rate_type="VAR", rate=0.0001, period=30, mts_opening=1575300000000,
    mts_last_payout=None, notify=False, hidden=False, renew=False, no_close=True,
)
