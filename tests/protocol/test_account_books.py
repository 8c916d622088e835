"""The wallet, credit and loan books, table-driven from the example frames: each step's changes and the book after."""

from __future__ import annotations

from typing import Any

import attrs
import pytest

from bfxd.protocol.account_books import CreditBook, CreditChange, LoanBook, LoanChange, WalletBook, WalletChange
from bfxd.protocol.decode import decode_exchange_frame
from bfxd.protocol.events import CreditClose, CreditNew, CreditsSnapshot, LoanClose, LoansSnapshot, WalletUpdate
from bfxd.protocol.funding import FundingCredit
from bfxd.protocol.wallet import Wallet
from conftest import load_frame_text

from .expected import BTC_LOAN_NEW, CREDIT_DOCS, CREDIT_FCC, CREDIT_FCN, CREDIT_FCU, LOAN_FLC, LOAN_FLS, LOAN_FLU


def frame(name: str) -> Any:
    return decode_exchange_frame(load_frame_text(name))


USD = Wallet(type="funding", currency="USD", balance=1000.5, unsettled_interest=0.25, available=None)
BTC = Wallet(type="funding", currency="BTC", balance=0.5, unsettled_interest=0, available=None)
EXCHANGE_USD = Wallet(type="exchange", currency="USD", balance=20, unsettled_interest=0, available=None)
USD_CALCULATED = attrs.evolve(USD, available=250.5)


class TestWalletBook:
    def test_snapshot_then_calc_answer_then_stale_update(self) -> None:
        """ws fills the book (available unknown, so calc is due); the calc answer's wu brings the figure; a later
        wu with null forgets it again."""
        book = WalletBook()
        assert book.apply(frame("ws-funding.json")) == [
            WalletChange("snapshot", EXCHANGE_USD), WalletChange("snapshot", BTC), WalletChange("snapshot", USD)]
        assert book.calc_requests() == ["wallet_funding_BTC", "wallet_funding_USD"]
        assert book.calc_requests(None) == ["wallet_exchange_USD", "wallet_funding_BTC", "wallet_funding_USD"]

        assert book.apply(frame("wu-calc-answer.json")) == [WalletChange("update", USD_CALCULATED)]
        assert book.get("funding", "USD") == USD_CALCULATED and book.get("funding", "EUR") is None
        assert book.calc_requests() == ["wallet_funding_BTC"]

        stale = attrs.evolve(USD_CALCULATED, balance=900, available=None)
        assert book.apply(WalletUpdate(stale)) == [WalletChange("update", stale)]
        assert book.calc_requests() == ["wallet_funding_BTC", "wallet_funding_USD"]
        assert book.wallets("funding") == [BTC, stale] and len(book) == 3

    def test_snapshot_replaces_and_update_adds(self) -> None:
        """A new ws replaces everything (no close action for wallets); a wu for an unknown wallet adds it."""
        book = WalletBook()
        book.apply(frame("ws-funding.json"))
        san = Wallet(type="exchange", currency="SAN", balance=19.76, unsettled_interest=0)
        assert book.apply(frame("ws-docs-example.json")) == [WalletChange("snapshot", san)]
        assert book.wallets() == [san]
        btc = Wallet(type="exchange", currency="BTC", balance=1.61169184, unsettled_interest=0)
        assert book.apply(frame("wu-docs-example.json")) == [WalletChange("update", btc)]
        assert book.wallets() == [btc, san] and book.calc_requests() == []

    def test_change_json(self) -> None:
        """A change renders as the watch event body of CONTRACT.md."""
        assert WalletChange("update", USD_CALCULATED).to_json() == {
            "event": "wallet", "action": "update",
            "wallet": {"type": "funding", "currency": "USD", "balance": 1000.5, "unsettled_interest": 0.25,
                       "available": 250.5},
        }


# (frame, expected changes as (action, item), ids on the book afterwards)
CREDIT_STEPS: list[tuple[str, list[tuple[str, FundingCredit]], list[int]]] = [
    ("fcs-docs-example.json", [("snapshot", CREDIT_DOCS)], [26223578]),
    ("fcn.json", [("new", CREDIT_FCN)], [26223578, 26223600]),
    ("fcu.json", [("update", CREDIT_FCU)], [26223578, 26223600]),
    ("seq-fcn.json", [("update", CREDIT_FCN)], [26223578, 26223600]),  # an fcn for a known id replaces it
    ("fcc.json", [("close", CREDIT_FCC)], [26223578]),
    ("fcc.json", [], [26223578]),  # closing what is gone changes nothing
    ("fcu.json", [("new", CREDIT_FCU)], [26223578, 26223600]),  # an update for an unknown id is new
    # The bad-rows snapshot keeps the good row; the credit missing from it is reported closed.
    ("fcs-bad-rows.json", [("close", CREDIT_FCU), ("snapshot", CREDIT_DOCS)], [26223578]),
    ("fcs-ignored.json", [("close", CREDIT_DOCS)], []),
]


def test_credit_book_steps() -> None:
    """Each frame, applied in turn, reports exactly its changes and leaves exactly those ids on the book."""
    book = CreditBook()
    for name, changes, ids in CREDIT_STEPS:
        assert book.apply(frame(name)) == [CreditChange(a, c) for a, c in changes], name  # type: ignore[arg-type]
        assert [c.id for c in book.credits()] == ids, name
        assert len(book) == len(ids)


def test_credit_book_queries() -> None:
    """credits(symbol) filters, get() and `in` look up by id."""
    book = CreditBook()
    book.apply(CreditsSnapshot(credits=(CREDIT_DOCS, CREDIT_FCN)))
    assert book.credits("fUSD") == [CREDIT_FCN] and book.credits("fBTC") == []
    assert book.get(26223578) == CREDIT_DOCS and book.get(1) is None
    assert 26223600 in book and 1 not in book


LOAN_STEPS = [
    ("fls-snapshot.json", [("snapshot", LOAN_FLS)], [2995442]),
    ("fln.json", [("new", BTC_LOAN_NEW)], [2995442, 2995450]),
    ("flu.json", [("update", LOAN_FLU)], [2995442, 2995450]),
    ("flc.json", [("close", LOAN_FLC)], [2995450]),
]


def test_loan_book_steps() -> None:
    """Loans follow the same rules as credits, frame by frame."""
    book = LoanBook()
    for name, changes, ids in LOAN_STEPS:
        assert book.apply(frame(name)) == [LoanChange(a, loan) for a, loan in changes], name  # type: ignore[arg-type]
        assert [loan.id for loan in book.loans()] == ids, name
    assert book.loans("fBTC") == [BTC_LOAN_NEW] and book.loans("fUSD") == []
    assert book.apply(LoanClose(LOAN_FLC)) == []
    assert book.apply(LoansSnapshot(loans=())) == [LoanChange("close", BTC_LOAN_NEW)]
    assert len(book) == 0


@pytest.mark.parametrize(("change", "body"), [
    (CreditChange("new", CREDIT_FCN), {"event": "credit", "action": "new", "credit": CREDIT_FCN.to_json()}),
    (LoanChange("close", LOAN_FLC), {"event": "loan", "action": "close", "loan": LOAN_FLC.to_json()}),
])
def test_change_json(change: Any, body: dict[str, Any]) -> None:
    """Credit and loan changes render as the watch event bodies of CONTRACT.md."""
    assert change.to_json() == body


def test_new_and_close_events_directly() -> None:
    """The books take the event values themselves, not only decoded frames."""
    book = CreditBook()
    assert book.apply(CreditNew(CREDIT_FCN)) == [CreditChange("new", CREDIT_FCN)]
    assert book.apply(CreditClose(CREDIT_FCC)) == [CreditChange("close", CREDIT_FCC)]
