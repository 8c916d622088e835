"""The one-pass read of the usual row (rows.Layout) against the field-by-field read it stands in for.

``from_wire`` takes the one-pass read when a row passes it and falls back to ``from_wire_by_field`` otherwise,
so the two must agree on every row: the same value, or the same error. Rows are built from valid ones with
positions replaced by values at the edges of each check (bools for integers, 0/1/2 for booleans, a zero id,
floats, dicts, strings), cut short and grown long.
"""

from __future__ import annotations

from typing import Any

import attrs
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bfxd.errors import RemoteProtocolError
from bfxd.protocol import rows
from bfxd.protocol.funding import FundingCredit, FundingLoan
from bfxd.protocol.offer import FundingOffer

from .test_funding_rows import DISTINCT_CREDIT
from .test_offer import DISTINCT_ROW

EDGE_VALUES = st.sampled_from([None, True, False, 0, 1, 2, -1, 10**20, 0.0, 1.0, 1.5, "", "x", "ACTIVE", {},
                               {"a": 1}, [], [1]])


def _mutated(base: list[Any]) -> st.SearchStrategy[Any]:
    changes = st.lists(st.tuples(st.integers(0, len(base) + 2), EDGE_VALUES), max_size=4)
    return st.builds(_apply, st.just(base), changes, st.integers(0, len(base) + 3))


def _apply(base: list[Any], changes: list[tuple[int, Any]], length: int) -> list[Any]:
    row = [*base, None, None, None][:length]
    for index, value in changes:
        if index < len(row):
            row[index] = value
    return row


def _outcome(read: Any, row: Any) -> tuple[str, Any]:
    try:
        return "value", read(row)
    except RemoteProtocolError as exc:
        return "error", str(exc)


def _agree(fast: Any, by_field: Any, row: Any) -> None:
    fast_outcome, slow_outcome = _outcome(fast, row), _outcome(by_field, row)
    assert fast_outcome == slow_outcome
    if fast_outcome[0] == "value":  # equal values may still differ in type (1 == True == 1.0)
        fast_types = [type(v) for v in attrs.astuple(fast_outcome[1], recurse=False)]
        assert fast_types == [type(v) for v in attrs.astuple(slow_outcome[1], recurse=False)]


class TestSameAsFieldByField:
    @settings(max_examples=400)
    @given(_mutated(DISTINCT_ROW), st.booleans())
    def test_offers(self, row: list[Any], lenient: bool) -> None:
        _agree(lambda r: FundingOffer.from_wire(r, lenient=lenient),
               lambda r: FundingOffer.from_wire_by_field(r, lenient=lenient), row)

    @settings(max_examples=300)
    @given(_mutated(DISTINCT_CREDIT))
    def test_credits(self, row: list[Any]) -> None:
        _agree(FundingCredit.from_wire, FundingCredit.from_wire_by_field, row)

    @settings(max_examples=300)
    @given(_mutated(DISTINCT_CREDIT[:21]))
    def test_loans(self, row: list[Any]) -> None:
        _agree(FundingLoan.from_wire, FundingLoan.from_wire_by_field, row)

    @pytest.mark.parametrize("row", [None, "x", 5, {"0": 1}, (11, "fEUR")])
    def test_not_an_array(self, row: Any) -> None:
        _agree(FundingOffer.from_wire, FundingOffer.from_wire_by_field, row)


class TestLayout:
    LAYOUT = rows.Layout([(0, rows.INT), (2, rows.NUMBER), (3, rows.BOOL)])

    def test_reads_the_positions_in_order(self) -> None:
        assert self.LAYOUT.values([7, "skipped", 1.5, 1, "beyond"]) == [7, 1.5, True]

    @pytest.mark.parametrize(("raw", "expected"), [(0, False), (1, True), (False, False), (True, True),
                                                   (None, None)])
    def test_booleans_become_bools(self, raw: Any, expected: bool | None) -> None:
        values = self.LAYOUT.values([7, None, 2, raw])
        assert values is not None and values[2] is expected

    @pytest.mark.parametrize("row", [
        [True, None, 2, 0],  # a bool is not an integer
        [7, None, "2", 0],
        [7, None, 2, 2],  # a boolean is 0 or 1
        [7, None, 2, 1.0],
        [7, None, 2],  # short: read field by field, which pads
        (7, None, 2, 0),  # not a list
    ])
    def test_anything_else_is_left_to_the_field_by_field_read(self, row: Any) -> None:
        assert self.LAYOUT.values(row) is None
