"""Encoding the account frames: conf and calc inputs byte for byte, the simulator's wallet/credit/loan frames back
through the decoders, and exact decimal numbers."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

import attrs
import pytest

from bfxd.errors import LocalProtocolError
from bfxd.protocol.decode import decode_client_frame, decode_exchange_frame
from bfxd.protocol.encode import (
    CALCS_PER_SECOND,
    MAX_CALC_REQUESTS,
    account_frame,
    calc_frame,
    conf_frame,
    credit_frame,
    credits_snapshot_frame,
    loan_frame,
    loans_snapshot_frame,
    notification_frame,
    offer_frame,
    wallet_frame,
    wallets_snapshot_frame,
)
from bfxd.protocol.events import (
    CalcInput,
    ConfRequest,
    CreditClose,
    CreditNew,
    CreditsSnapshot,
    CreditUpdate,
    LoanClose,
    LoanNew,
    LoansSnapshot,
    LoanUpdate,
    OfferNew,
    WalletsSnapshot,
    WalletUpdate,
)
from bfxd.protocol.wallet import Wallet
from conftest import load_frame, load_frame_text

from .expected import BTC_LOAN_NEW, CREDIT_DOCS, CREDIT_FCN, LOAN_FLS, USD_ACTIVE

USD = Wallet(type="funding", currency="USD", balance=1000.5, unsettled_interest=0.25, available=250.5)


class TestInputs:
    def test_conf_frame_turns_on_sequence_numbers(self) -> None:
        """conf with SEQ_ALL is the documented object, compact, and the simulator reads it back."""
        assert conf_frame(65536) == '{"event":"conf","flags":65536}'
        assert json.loads(conf_frame(65536)) == load_frame("input-conf-seq.json")
        assert decode_client_frame(conf_frame(65536 | 32768)) == ConfRequest(flags=98304)

    @pytest.mark.parametrize("flags", [-1, True, 1.0, "65536"])
    def test_conf_frame_refuses_non_flags(self, flags: Any) -> None:
        with pytest.raises(LocalProtocolError):
            conf_frame(flags)

    def test_calc_frame_is_the_documented_input(self) -> None:
        """calc keys go out as one-string arrays in order: the corpus calc input, byte for byte in JSON."""
        text = calc_frame(["wallet_funding_USD", "wallet_funding_BTC"])
        assert text == '[0,"calc",null,[["wallet_funding_USD"],["wallet_funding_BTC"]]]'
        assert json.loads(text) == load_frame("input-calc.json")
        assert decode_client_frame(text) == CalcInput(requests=("wallet_funding_USD", "wallet_funding_BTC"))

    def test_calc_limits_are_the_documented_ones(self) -> None:
        """Up to 30 calculations per batch, 8 per second (docs changelog)."""
        assert (MAX_CALC_REQUESTS, CALCS_PER_SECOND) == (30, 8)
        assert len(json.loads(calc_frame([f"wallet_funding_C{i}" for i in range(30)]))[3]) == 30

    @pytest.mark.parametrize("requests", [[], ["k"] * 31, "wallet_funding_USD", [""], [5], ["ok", None]])
    def test_calc_frame_refuses_bad_batches(self, requests: Any) -> None:
        """An empty or oversized batch, a bare string, or a non-string key is our bug."""
        with pytest.raises(LocalProtocolError):
            calc_frame(requests)


ROUND_TRIPS = [
    (wallets_snapshot_frame([USD]), WalletsSnapshot(wallets=(USD,))),
    (wallets_snapshot_frame([]), WalletsSnapshot(wallets=())),
    (wallet_frame(USD), WalletUpdate(wallet=USD)),
    (wallet_frame(USD, description="Funding offer executed"), WalletUpdate(wallet=USD)),
    (credits_snapshot_frame([CREDIT_DOCS, CREDIT_FCN]), CreditsSnapshot(credits=(CREDIT_DOCS, CREDIT_FCN))),
    (credit_frame("fcn", CREDIT_FCN), CreditNew(credit=CREDIT_FCN)),
    (credit_frame("fcu", CREDIT_FCN), CreditUpdate(credit=CREDIT_FCN)),
    (credit_frame("fcc", CREDIT_FCN), CreditClose(credit=CREDIT_FCN)),
    (loans_snapshot_frame([LOAN_FLS]), LoansSnapshot(loans=(LOAN_FLS,))),
    (loan_frame("fln", BTC_LOAN_NEW), LoanNew(loan=BTC_LOAN_NEW)),
    (loan_frame("flu", BTC_LOAN_NEW), LoanUpdate(loan=BTC_LOAN_NEW)),
    (loan_frame("flc", BTC_LOAN_NEW), LoanClose(loan=BTC_LOAN_NEW)),
]


@pytest.mark.parametrize(("text", "expected"), ROUND_TRIPS)
def test_simulator_account_frames_round_trip(text: str, expected: object) -> None:
    """Every simulator wallet/credit/loan frame decodes on the daemon side to the event it was built from."""
    assert decode_exchange_frame(text) == expected


def test_frames_have_the_corpus_shape() -> None:
    """The simulator's frames have the JSON shape of the docs' examples."""
    assert json.loads(credits_snapshot_frame([CREDIT_DOCS])) == load_frame("fcs-docs-example.json")
    assert json.loads(loans_snapshot_frame([LOAN_FLS])) == load_frame("fls-snapshot.json")
    assert json.loads(wallet_frame(USD)) == load_frame("wu-calc-answer.json")


@pytest.mark.parametrize(("maker", "kind"), [(credit_frame, "fln"), (credit_frame, "fos"), (loan_frame, "fcn"),
                                             (loan_frame, "")])
def test_update_frames_refuse_other_kinds(maker: Any, kind: str) -> None:
    with pytest.raises(LocalProtocolError):
        maker(kind, CREDIT_FCN)


class TestExactNumbers:
    @pytest.mark.parametrize(("text", "wire"), [
        ("50.0", "50.0"), ("0.00012345", "0.00012345"), ("1e-4", "0.0001"), ("1E2", "1E+2"), ("-0", "-0"),
        ("0.1000000000000000000001", "0.1000000000000000000001"), ("150", "150"),
    ])
    def test_decimals_are_written_as_their_digits(self, text: str, wire: str) -> None:
        """A Decimal amount goes on the wire as its own digits: valid JSON, never rounded through float."""
        offer = attrs.evolve(USD_ACTIVE, amount=Decimal(text), amount_orig=Decimal(text), rate=Decimal(text))
        frame = offer_frame("fon", offer)
        row = json.loads(frame, parse_float=Decimal, parse_int=Decimal)[2]
        assert (row[4], row[14]) == (Decimal(text), Decimal(text))
        assert f",{wire},{wire},\"FRRDELTAVAR\"," in frame  # AMOUNT and AMOUNT_ORIG, digit for digit
        assert isinstance(decode_exchange_frame(frame), OfferNew)

    def test_nested_values_and_notifications(self) -> None:
        """Decimals inside a notification's offer array and inside objects are exact too."""
        offer = attrs.evolve(USD_ACTIVE, amount=Decimal("123.456789012345678"))
        text = notification_frame(mts=1, type="fon-req", status="SUCCESS", text="t", notify_info=offer.to_wire())
        assert "123.456789012345678" in text
        assert account_frame("x", {"a": [Decimal("1.10")], "b": (1, 2)}) == '[0,"x",{"a":[1.10],"b":[1,2]}]'

    def test_floats_are_unchanged(self) -> None:
        """Without Decimals the frame is exactly json.dumps' compact text."""
        assert offer_frame("fon", USD_ACTIVE) == json.dumps([0, "fon", USD_ACTIVE.to_wire()], separators=(",", ":"))
        assert json.loads(offer_frame("fon", USD_ACTIVE)) == json.loads(load_frame_text("fon.json").replace(
            "false", "0").replace("true", "1"))

    @pytest.mark.parametrize("value", ["NaN", "Infinity", "-Infinity"])
    def test_non_finite_decimal_is_refused(self, value: str) -> None:
        with pytest.raises(LocalProtocolError):
            account_frame("x", [Decimal(value)])
