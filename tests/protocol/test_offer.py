"""The funding offer value type: wire order, both boolean encodings, strict vs lenient, and its JSON form."""

from __future__ import annotations

import json
from typing import Any

import attrs
import pytest

from bfxd.errors import RemoteProtocolError
from bfxd.protocol.offer import FundingOffer, is_active_status

from .expected import USD_ACTIVE, UST_ACTIVE

# A row whose every field differs, so a field read from the wrong position cannot go unnoticed.
DISTINCT_ROW: list[Any] = [
    11, "fEUR", 1000, 2000, 3.5, 4.5, "FRRDELTAFIX", None, None, 64, "ACTIVE", None, None, None,
    0.0007, 120, True, False, None, True, None,
]


def _row(**fields: Any) -> list[Any]:
    """DISTINCT_ROW with some positions replaced, given as ``i<index>=value``."""
    row = list(DISTINCT_ROW)
    for name, value in fields.items():
        row[int(name[1:])] = value
    return row


class TestFromWire:
    def test_field_order(self) -> None:
        """Each field is read from its documented position."""
        assert FundingOffer.from_wire(DISTINCT_ROW) == FundingOffer(
            id=11, symbol="fEUR", mts_created=1000, mts_updated=2000, amount=3.5, amount_orig=4.5,
            type="FRRDELTAFIX", flags=64, status="ACTIVE", rate=0.0007, period=120, notify=True,
            hidden=False, renew=True,
        )

    @pytest.mark.parametrize(
        ("raw", "expected"), [(True, True), (False, False), (1, True), (0, False), (None, None)]
    )
    def test_boolean_encodings(self, raw: Any, expected: bool | None) -> None:
        """NOTIFY, HIDDEN and RENEW accept true/false and 0/1 (and null), always giving a bool."""
        offer = FundingOffer.from_wire(_row(i16=raw, i17=raw, i19=raw))
        assert (offer.notify, offer.hidden, offer.renew) == (expected, expected, expected)
        assert all(v is expected for v in (offer.notify, offer.hidden, offer.renew))

    @pytest.mark.parametrize("raw", [2, -1, 0.0, 1.0, "1", "true", [1]])
    @pytest.mark.parametrize("index", [16, 17, 19])
    def test_bad_boolean_is_rejected(self, index: int, raw: Any) -> None:
        """Any boolean field other than true/false/0/1/null is a RemoteProtocolError."""
        with pytest.raises(RemoteProtocolError, match=f"field {index}"):
            FundingOffer.from_wire(_row(**{f"i{index}": raw}))

    def test_longer_arrays_are_accepted(self) -> None:
        """Fields appended after position 20 are ignored (arrays may grow)."""
        assert FundingOffer.from_wire([*DISTINCT_ROW, "future", 1, [2]]) == FundingOffer.from_wire(DISTINCT_ROW)

    def test_placeholders_are_not_read(self) -> None:
        """Whatever the placeholder positions hold does not matter."""
        row = _row(i7="x", i8=[1], i11={}, i12=5, i13=True, i18="y", i20=0.5)
        assert FundingOffer.from_wire(row) == FundingOffer.from_wire(DISTINCT_ROW)

    @pytest.mark.parametrize(
        ("index", "value"),
        [
            (0, "11"), (0, 0), (0, -5), (0, True), (0, 11.0),
            (1, 5), (1, ["fUSD"]),
            (2, 1000.0), (2, "1000"), (2, False),
            (3, 2000.5),
            (4, "3.5"), (4, True), (4, [3.5]),
            (5, "4.5"), (5, False),
            (6, 1),
            (9, 64.0), (9, "64"), (9, True),
            (10, 1), (10, ["ACTIVE"]),
            (14, "0.0007"), (14, True),
            (15, 120.0), (15, "120"), (15, False),
        ],
    )
    def test_wrong_type_is_rejected(self, index: int, value: Any) -> None:
        """A field of the wrong type raises RemoteProtocolError naming the field, strict or lenient."""
        row = _row(**{f"i{index}": value})
        with pytest.raises(RemoteProtocolError, match=f"field {index} "):
            FundingOffer.from_wire(row)
        with pytest.raises(RemoteProtocolError, match=f"field {index} "):
            FundingOffer.from_wire(row, lenient=True)

    @pytest.mark.parametrize("row", [None, "x", 5, {"id": 1}, (11, "fEUR")], ids=repr)
    def test_not_an_array_is_rejected(self, row: Any) -> None:
        """Anything but a JSON array raises RemoteProtocolError, strict or lenient."""
        with pytest.raises(RemoteProtocolError, match="array"):
            FundingOffer.from_wire(row)
        with pytest.raises(RemoteProtocolError, match="array"):
            FundingOffer.from_wire(row, lenient=True)

    @pytest.mark.parametrize(
        "row",
        [
            _row(i0=None),
            _row(i1=None),
            _row(i10=None),
            [11, "fEUR"],
            [],
            [None] * 21,
        ],
        ids=["no-id", "no-symbol", "no-status", "two-fields", "empty", "all-null"],
    )
    def test_strict_needs_id_symbol_and_status(self, row: list[Any]) -> None:
        """Strict decoding refuses an offer lacking id, symbol or status."""
        with pytest.raises(RemoteProtocolError):
            FundingOffer.from_wire(row)

    def test_lenient_accepts_nulls(self) -> None:
        """Lenient decoding (a notification's NOTIFY_INFO) takes an all-null array with only an id."""
        assert FundingOffer.from_wire([41238999] + [None] * 20, lenient=True) == FundingOffer(id=41238999)

    def test_lenient_accepts_no_id_and_short_arrays(self) -> None:
        """Lenient decoding takes a missing id and an array shorter than the layout."""
        assert FundingOffer.from_wire([None] * 21, lenient=True) == FundingOffer(id=None)
        assert FundingOffer.from_wire([5, "fUSD"], lenient=True) == FundingOffer(id=5, symbol="fUSD")
        assert FundingOffer.from_wire([], lenient=True) == FundingOffer(id=None)

    def test_offers_are_frozen_values(self) -> None:
        """An offer cannot be modified and compares by value."""
        with pytest.raises(attrs.exceptions.FrozenInstanceError):
            UST_ACTIVE.status = "CANCELED"  # type: ignore[misc]
        assert FundingOffer.from_wire(DISTINCT_ROW) == FundingOffer.from_wire(list(DISTINCT_ROW))
        assert hash(FundingOffer.from_wire(DISTINCT_ROW)) == hash(FundingOffer.from_wire(list(DISTINCT_ROW)))


class TestActive:
    @pytest.mark.parametrize(
        ("status", "active"),
        [
            ("ACTIVE", True),
            ("PARTIALLY FILLED", True),
            ("PARTIALLY FILLED at 0.02% (200.0)", True),
            ("EXECUTED", False),
            ("EXECUTED at 0.02% (500.0)", False),
            ("CANCELED", False),
            ("CANCELED was: PARTIALLY FILLED at 0.02% (200.0)", False),
            ("", False),
            ("active", False),
            (None, False),
        ],
    )
    def test_is_active_status(self, status: str | None, active: bool) -> None:
        """Only ACTIVE and PARTIALLY FILLED (with or without detail) are live statuses."""
        assert is_active_status(status) is active
        assert FundingOffer(id=1, status=status).active is active


INTERFACE_OFFER_KEYS = [
    "id", "symbol", "mts_created", "mts_updated", "amount", "amount_orig", "type", "flags", "status",
    "rate", "period", "notify", "hidden", "renew",
]


class TestToJson:
    def test_keys_are_the_interface_offer_object(self) -> None:
        """to_json has exactly the keys of interface.md's offer object, in its order."""
        assert list(UST_ACTIVE.to_json()) == INTERFACE_OFFER_KEYS

    def test_values(self) -> None:
        """to_json carries every field with numbers as sent and booleans as booleans."""
        assert USD_ACTIVE.to_json() == {
            "id": 41238935, "symbol": "fUSD", "mts_created": 1575293960000, "mts_updated": 1575293960000,
            "amount": -1000.5, "amount_orig": -1000.5, "type": "FRRDELTAVAR", "flags": 0, "status": "ACTIVE",
            "rate": 0.0002, "period": 30, "notify": False, "hidden": True, "renew": True,
        }

    def test_json_text_keeps_number_forms(self) -> None:
        """An integer amount stays an integer in the JSON text and a decimal stays a decimal."""
        text = json.dumps(FundingOffer.from_wire(DISTINCT_ROW).to_json(), separators=(",", ":"))
        assert '"mts_created":1000,' in text
        assert '"amount":3.5,' in text
        assert '"notify":true,' in text
        ust = json.dumps(UST_ACTIVE.to_json(), separators=(",", ":"))
        assert '"amount":500,' in ust

    def test_lenient_offer_has_nulls(self) -> None:
        """A lenient offer's missing fields are null in its JSON form."""
        assert FundingOffer(id=7).to_json() == dict.fromkeys(INTERFACE_OFFER_KEYS) | {"id": 7}


class TestToWire:
    def test_layout_with_ints(self) -> None:
        """to_wire puts each field at its position, 0/1 booleans by default, nulls in placeholders."""
        assert FundingOffer.from_wire(DISTINCT_ROW).to_wire() == [
            11, "fEUR", 1000, 2000, 3.5, 4.5, "FRRDELTAFIX", None, None, 64, "ACTIVE", None, None, None,
            0.0007, 120, 1, 0, None, 1, None,
        ]

    def test_layout_with_bools(self) -> None:
        """bool_as_int=False writes true/false booleans."""
        row = FundingOffer.from_wire(DISTINCT_ROW).to_wire(bool_as_int=False)
        assert (row[16], row[17], row[19]) == (True, False, True)
        assert all(type(row[i]) is bool for i in (16, 17, 19))

    def test_ints_are_ints_not_bools(self) -> None:
        """The default 0/1 encoding produces plain ints."""
        row = FundingOffer.from_wire(DISTINCT_ROW).to_wire()
        assert all(type(row[i]) is int for i in (16, 17, 19))

    def test_none_booleans_stay_null(self) -> None:
        """An unknown boolean is written as null in either encoding."""
        assert FundingOffer(id=1).to_wire()[16] is None
        assert FundingOffer(id=1).to_wire(bool_as_int=False)[19] is None

    @pytest.mark.parametrize("bool_as_int", [True, False])
    @pytest.mark.parametrize("offer", [UST_ACTIVE, USD_ACTIVE, FundingOffer(id=3, symbol="fX", status="ACTIVE")])
    def test_round_trip(self, offer: FundingOffer, bool_as_int: bool) -> None:
        """to_wire then from_wire gives the same offer, also through JSON text."""
        row = offer.to_wire(bool_as_int=bool_as_int)
        assert FundingOffer.from_wire(row) == offer
        assert FundingOffer.from_wire(json.loads(json.dumps(row))) == offer
