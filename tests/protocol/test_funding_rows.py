"""Wallet, credit and loan value types: documented field positions, both boolean encodings, JSON and wire forms."""

from __future__ import annotations

import json
from typing import Any

import pytest

from bfxd.errors import RemoteProtocolError
from bfxd.protocol.funding import FundingCredit, FundingLoan
from bfxd.protocol.wallet import Wallet, calc_request
from conftest import load_frame

from .expected import CREDIT_DOCS, CREDIT_FCN, LOAN_FLS

# Rows whose every field differs, so a field read from the wrong position cannot go unnoticed.
DISTINCT_CREDIT: list[Any] = [
    11, "fEUR", -1, 1000, 2000, 3.5, 64, "ACTIVE", "VAR", None, None, 0.0007, 120, 3000, 4000, True, False,
    None, True, 0.0009, False, "tETHEUR",
]
DISTINCT_WALLET: list[Any] = ["funding", "EUR", 12.5, 0.125, 7.25, "desc", {"reason": "x"}]


def _credit(**fields: Any) -> list[Any]:
    row = list(DISTINCT_CREDIT)
    for name, value in fields.items():
        row[int(name[1:])] = value
    return row


class TestCreditAndLoanFromWire:
    def test_credit_field_order(self) -> None:
        """Each credit field is read from its documented position (RATE_REAL at 19 is not kept)."""
        assert FundingCredit.from_wire(DISTINCT_CREDIT) == FundingCredit(
            id=11, symbol="fEUR", status="ACTIVE", side=-1, mts_create=1000, mts_update=2000, amount=3.5,
            flags=64, rate_type="VAR", rate=0.0007, period=120, mts_opening=3000, mts_last_payout=4000,
            notify=True, hidden=False, renew=True, no_close=False, position_pair="tETHEUR",
        )

    def test_loan_is_the_credit_without_position_pair(self) -> None:
        """A loan reads the same 21 positions; a trailing 22nd value is ignored, not taken as a pair."""
        loan = FundingLoan.from_wire(DISTINCT_CREDIT)
        assert loan.to_json() == {k: v for k, v in FundingCredit.from_wire(DISTINCT_CREDIT).to_json().items()
                                  if k != "position_pair"}
        assert not hasattr(loan, "position_pair")

    def test_the_docs_example_credit(self) -> None:
        """The docs' own fcs example decodes field by field as written in expected.py."""
        assert FundingCredit.from_wire(load_frame("fcs-docs-example.json")[2][0]) == CREDIT_DOCS  # type: ignore[index]

    @pytest.mark.parametrize(("raw", "expected"), [(True, True), (False, False), (1, True), (0, False), (None, None)])
    def test_boolean_encodings(self, raw: Any, expected: bool | None) -> None:
        """NOTIFY, HIDDEN, RENEW and NO_CLOSE accept true/false, 0/1 and null, always giving a bool or None."""
        credit = FundingCredit.from_wire(_credit(i15=raw, i16=raw, i18=raw, i20=raw))
        assert [credit.notify, credit.hidden, credit.renew, credit.no_close] == [expected] * 4

    @pytest.mark.parametrize(("side", "flags"), [(1, 0), (0, {}), ("Lend", {"x": 1}), (None, None)])
    def test_side_and_flags_in_their_documented_forms(self, side: Any, flags: Any) -> None:
        """SIDE as an int or the deprecated string, FLAGS as an int or an object: both kept as sent."""
        credit = FundingCredit.from_wire(_credit(i2=side, i6=flags))
        assert (credit.side, credit.flags) == (side, flags)

    def test_short_and_long_arrays(self) -> None:
        """Missing trailing fields read as null; fields after the documented ones are ignored."""
        short = FundingLoan.from_wire([5, "fUSD", 1, None, None, 10, 0, "ACTIVE"])
        assert (short.id, short.amount, short.rate, short.no_close) == (5, 10, None, None)
        assert FundingCredit.from_wire([*DISTINCT_CREDIT, "new", 1]) == FundingCredit.from_wire(DISTINCT_CREDIT)

    @pytest.mark.parametrize(("index", "value"), [
        (0, -3), (0, "11"), (1, 5), (3, 1.5), (5, "3.5"), (7, 1), (8, 0), (11, True), (12, 1.0), (13, "x"),
        (14, []), (15, 2), (21, 7),
    ])
    def test_wrong_types_name_the_position(self, index: int, value: Any) -> None:
        """A field of the wrong type is a RemoteProtocolError naming the kind and the position."""
        with pytest.raises(RemoteProtocolError, match=f"funding credit field {index} "):
            FundingCredit.from_wire(_credit(**{f"i{index}": value}))

    @pytest.mark.parametrize("row", [[None, "fUSD", 1, 1, 1, 1, 0, "ACTIVE"], [1, None, 1, 1, 1, 1, 0, "A"],
                                     [1, "fUSD", 1, 1, 1, 1, 0, None], [], "x"])
    def test_strict_about_id_symbol_status(self, row: Any) -> None:
        """A loan without id, symbol or status (or not an array) is refused."""
        with pytest.raises(RemoteProtocolError, match="funding loan"):
            FundingLoan.from_wire(row)


class TestCreditAndLoanForms:
    def test_credit_json_has_the_contract_fields(self) -> None:
        """The credit object carries exactly the CONTRACT.md fields, numbers untouched."""
        assert CREDIT_FCN.to_json() == {
            "id": 26223600, "symbol": "fUSD", "side": 1, "mts_create": 1575300000000,
            "mts_update": 1575300000000, "amount": 500.25, "flags": 0, "status": "ACTIVE", "rate_type": "FIXED",
            "rate": 0.0002, "period": 2, "mts_opening": 1575300000000, "mts_last_payout": None, "notify": False,
            "hidden": True, "renew": True, "no_close": False, "position_pair": "tBTCUSD",
        }
        assert "position_pair" not in LOAN_FLS.to_json()

    @pytest.mark.parametrize("bool_as_int", [True, False])
    def test_wire_round_trip(self, bool_as_int: bool) -> None:
        """to_wire writes the documented lengths (22 and 21) and decodes back to the same value."""
        credit_row = json.loads(json.dumps(CREDIT_FCN.to_wire(bool_as_int=bool_as_int)))
        loan_row = LOAN_FLS.to_wire(bool_as_int=bool_as_int)
        assert (len(credit_row), len(loan_row)) == (22, 21)
        assert FundingCredit.from_wire(credit_row) == CREDIT_FCN
        assert FundingLoan.from_wire(loan_row) == LOAN_FLS
        assert type(credit_row[15]) is (int if bool_as_int else bool)

    def test_expiry_is_opening_plus_period(self) -> None:
        """mts_expires = opening + period days; unknown when either is missing."""
        assert CREDIT_DOCS.mts_expires == 1575052261000 + 30 * 86_400_000
        assert FundingLoan(id=1, symbol="fUSD", status="ACTIVE", period=2).mts_expires is None
        assert FundingLoan(id=1, symbol="fUSD", status="ACTIVE", mts_opening=5).mts_expires is None


class TestWallet:
    def test_field_order_and_json(self) -> None:
        """Wallet fields come from positions 0-4; DESCRIPTION and META are not kept."""
        wallet = Wallet.from_wire(DISTINCT_WALLET)
        assert wallet == Wallet(type="funding", currency="EUR", balance=12.5, unsettled_interest=0.125,
                                available=7.25)
        assert wallet.key == ("funding", "EUR")
        assert wallet.to_json() == {"type": "funding", "currency": "EUR", "balance": 12.5,
                                    "unsettled_interest": 0.125, "available": 7.25}

    def test_wire_form_has_seven_fields(self) -> None:
        """to_wire gives the 7 fields wu carries (the official Python client needs all 7)."""
        wallet = Wallet.from_wire(DISTINCT_WALLET)
        assert wallet.to_wire() == ["funding", "EUR", 12.5, 0.125, 7.25, None, None]
        assert wallet.to_wire(description="d", meta={"m": 1})[5:] == ["d", {"m": 1}]
        assert Wallet.from_wire(wallet.to_wire()) == wallet

    def test_short_row_reads_nulls(self) -> None:
        """A row with only type and currency gives unknown numbers."""
        assert Wallet.from_wire(["funding", "USD"]) == Wallet(type="funding", currency="USD")

    @pytest.mark.parametrize("row", [[None, "USD", 1], ["funding", None], [1, "USD"], ["funding", "USD", "1"],
                                     ["funding", "USD", 1, True], ["funding", "USD", 1, 0, "2"], {}, None])
    def test_bad_rows(self, row: Any) -> None:
        """Missing type/currency, wrong types, or not an array: RemoteProtocolError about the wallet."""
        with pytest.raises(RemoteProtocolError, match="wallet"):
            Wallet.from_wire(row)

    def test_calc_request_key(self) -> None:
        """The calc key is wallet_TYPE_CURRENCY, as in the docs' example."""
        assert calc_request("funding", "USD") == "wallet_funding_USD"
        assert calc_request("margin", "BTC") == "wallet_margin_BTC"
