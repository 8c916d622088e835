"""The live offer book: every transition and the changes it reports."""

from __future__ import annotations

import attrs
import pytest

from bfxd.protocol.book import CLOSED_MEMORY, OfferBook, OfferChange
from bfxd.protocol.decode import decode_exchange_frame
from bfxd.protocol.events import OfferCancel, OfferNew, OffersSnapshot, OfferUpdate
from bfxd.protocol.offer import FundingOffer
from conftest import load_frame_text

from .expected import USD_ACTIVE, UST_ACTIVE, UST_CANCELED, UST_EXECUTED, UST_PARTIAL


def _offer(offer_id: int, symbol: str = "fUSD", status: str = "ACTIVE", amount: float = 100) -> FundingOffer:
    return FundingOffer(id=offer_id, symbol=symbol, status=status, amount=amount)


def _book(*offers: FundingOffer) -> OfferBook:
    book = OfferBook()
    book.apply(OffersSnapshot(offers=offers))
    return book


class TestSnapshot:
    def test_into_an_empty_book(self) -> None:
        """A snapshot fills an empty book and reports each offer as snapshot, by id."""
        book = OfferBook()
        changes = book.apply(OffersSnapshot(offers=(USD_ACTIVE, UST_ACTIVE)))
        assert changes == [OfferChange("snapshot", UST_ACTIVE), OfferChange("snapshot", USD_ACTIVE)]
        assert book.offers() == [UST_ACTIVE, USD_ACTIVE]

    def test_replaces_and_reports_removed_offers_as_cancel(self) -> None:
        """Offers missing from a new snapshot are reported as cancel first, then the snapshot's offers."""
        book = _book(_offer(1), _offer(2), _offer(3))
        changes = book.apply(OffersSnapshot(offers=(_offer(2, amount=50), _offer(4))))
        assert changes == [
            OfferChange("cancel", _offer(1)),
            OfferChange("cancel", _offer(3)),
            OfferChange("snapshot", _offer(2, amount=50)),
            OfferChange("snapshot", _offer(4)),
        ]
        assert book.offers() == [_offer(2, amount=50), _offer(4)]
        assert 1 not in book and 3 not in book

    def test_empty_snapshot_empties_the_book(self) -> None:
        """An empty snapshot removes every offer, each reported as cancel."""
        book = _book(_offer(1), _offer(2))
        assert book.apply(OffersSnapshot(offers=())) == [
            OfferChange("cancel", _offer(1)), OfferChange("cancel", _offer(2))
        ]
        assert len(book) == 0
        assert book.offers() == []

    def test_inactive_offers_in_a_snapshot_are_left_out(self) -> None:
        """A snapshot row with an EXECUTED or CANCELED status does not enter the book."""
        book = OfferBook()
        changes = book.apply(OffersSnapshot(offers=(_offer(1, status="EXECUTED at 0.02% (1.0)"), _offer(2))))
        assert changes == [OfferChange("snapshot", _offer(2))]
        assert book.offers() == [_offer(2)]

    def test_partially_filled_is_kept_in_a_snapshot(self) -> None:
        """A PARTIALLY FILLED row of a snapshot stays on the book."""
        book = _book(UST_PARTIAL)
        assert book.offers() == [UST_PARTIAL]

    def test_corpus_snapshot(self) -> None:
        """The corpus fos snapshot puts both offers on the book."""
        book = OfferBook()
        event = decode_exchange_frame(load_frame_text("fos-snapshot.json"))
        assert isinstance(event, OffersSnapshot)
        book.apply(event)
        assert book.offers() == [UST_ACTIVE, USD_ACTIVE]


class TestUpdates:
    def test_fon_adds_as_new(self) -> None:
        """fon of an unknown offer adds it and reports new."""
        book = OfferBook()
        assert book.apply(OfferNew(offer=USD_ACTIVE)) == [OfferChange("new", USD_ACTIVE)]
        assert book.get(41238935) == USD_ACTIVE
        assert 41238935 in book

    def test_fou_replaces_as_update(self) -> None:
        """fou of a known offer replaces it and reports update."""
        book = _book(UST_ACTIVE)
        changed = attrs.evolve(UST_ACTIVE, amount=450)
        assert book.apply(OfferUpdate(offer=changed)) == [OfferChange("update", changed)]
        assert book.get(41238934) == changed

    def test_fon_of_a_known_offer_is_an_update(self) -> None:
        """fon for an id already on the book replaces it and reports update."""
        book = _book(_offer(1))
        assert book.apply(OfferNew(offer=_offer(1, amount=5))) == [OfferChange("update", _offer(1, amount=5))]

    def test_fou_of_an_unknown_offer_is_new(self) -> None:
        """fou with an active status for an id not on the book adds it and reports new."""
        book = OfferBook()
        assert book.apply(OfferUpdate(offer=_offer(9))) == [OfferChange("new", _offer(9))]
        assert book.offers() == [_offer(9)]

    def test_partially_filled_stays(self) -> None:
        """fou with PARTIALLY FILLED keeps the offer on the book, updated."""
        book = _book(UST_ACTIVE)
        event = decode_exchange_frame(load_frame_text("fou-partial.json"))
        assert isinstance(event, OfferUpdate)
        assert book.apply(event) == [OfferChange("update", UST_PARTIAL)]
        assert book.offers() == [UST_PARTIAL]

    @pytest.mark.parametrize(
        "status",
        ["EXECUTED", "EXECUTED at 0.02% (500.0)", "CANCELED", "CANCELED was: PARTIALLY FILLED at 0.02% (200.0)"],
    )
    def test_fou_with_a_final_status_removes(self, status: str) -> None:
        """fou with EXECUTED, CANCELED or a compound final status removes the offer and reports cancel."""
        book = _book(_offer(1), _offer(2))
        gone = _offer(1, status=status)
        assert book.apply(OfferUpdate(offer=gone)) == [OfferChange("cancel", gone)]
        assert book.offers() == [_offer(2)]

    def test_fon_with_a_final_status_removes(self) -> None:
        """fon carrying a final status removes the offer too."""
        book = _book(_offer(1))
        gone = _offer(1, status="EXECUTED")
        assert book.apply(OfferNew(offer=gone)) == [OfferChange("cancel", gone)]
        assert len(book) == 0

    def test_final_status_of_an_unknown_offer_is_a_no_op(self) -> None:
        """fou with a final status for an id not on the book changes nothing and reports nothing."""
        book = _book(_offer(1))
        assert book.apply(OfferUpdate(offer=_offer(5, status="CANCELED"))) == []
        assert book.offers() == [_offer(1)]


class TestCancel:
    @pytest.mark.parametrize(
        ("frame", "final"), [("foc-canceled.json", UST_CANCELED), ("foc-executed.json", UST_EXECUTED)]
    )
    def test_foc_removes(self, frame: str, final: FundingOffer) -> None:
        """foc removes the offer and reports cancel with the offer's final state."""
        book = _book(UST_ACTIVE, USD_ACTIVE)
        event = decode_exchange_frame(load_frame_text(frame))
        assert isinstance(event, OfferCancel)
        assert book.apply(event) == [OfferChange("cancel", final)]
        assert book.offers() == [USD_ACTIVE]
        assert book.get(41238934) is None

    def test_foc_removes_even_with_an_active_status(self) -> None:
        """foc removes the offer whatever status it carries."""
        book = _book(_offer(1))
        assert book.apply(OfferCancel(offer=_offer(1))) == [OfferChange("cancel", _offer(1))]
        assert len(book) == 0

    def test_foc_of_an_unknown_id_is_a_no_op(self) -> None:
        """foc for an id not on the book changes nothing and reports nothing."""
        book = _book(_offer(1))
        assert book.apply(OfferCancel(offer=_offer(2, status="CANCELED"))) == []
        assert book.offers() == [_offer(1)]

    def test_foc_twice(self) -> None:
        """A second foc for the same offer is a no-op."""
        book = _book(_offer(1))
        book.apply(OfferCancel(offer=_offer(1, status="CANCELED")))
        assert book.apply(OfferCancel(offer=_offer(1, status="CANCELED"))) == []


class TestQueries:
    def test_offers_sorted_by_id(self) -> None:
        """offers() lists active offers by ascending id, whatever the arrival order."""
        book = OfferBook()
        for offer_id in (30, 10, 20):
            book.apply(OfferNew(offer=_offer(offer_id)))
        assert [o.id for o in book.offers()] == [10, 20, 30]

    def test_offers_filtered_by_symbol(self) -> None:
        """offers(symbol) keeps only that symbol's offers, still by id."""
        book = _book(_offer(3, "fUSD"), _offer(1, "fUST"), _offer(2, "fUSD"), _offer(4, "fBTC"))
        assert [o.id for o in book.offers("fUSD")] == [2, 3]
        assert [o.id for o in book.offers("fUST")] == [1]
        assert book.offers("fEUR") == []
        assert [o.id for o in book.offers(None)] == [1, 2, 3, 4]

    def test_len_contains_get(self) -> None:
        """len, in and get reflect the book's content."""
        book = _book(_offer(1), _offer(2))
        assert len(book) == 2
        assert 1 in book and 3 not in book and "1" not in book
        assert book.get(2) == _offer(2)
        assert book.get(3) is None

    def test_offers_returns_a_copy(self) -> None:
        """Changing the list offers() returned does not change the book."""
        book = _book(_offer(1))
        book.offers().clear()
        assert book.offers() == [_offer(1)]


class TestLateUpdates:
    def _offer(self, offer_id: int, status: str = "ACTIVE") -> FundingOffer:
        return FundingOffer(id=offer_id, symbol="fUSD", status=status, amount=1.0)

    def test_a_late_update_after_the_cancel_does_not_bring_the_offer_back(self) -> None:
        book = OfferBook()
        book.apply(OfferNew(self._offer(7)))
        book.apply(OfferCancel(self._offer(7, "CANCELED")))
        assert book.apply(OfferUpdate(self._offer(7))) == []
        assert 7 not in book

    def test_a_snapshot_listing_it_again_is_believed(self) -> None:
        book = OfferBook()
        book.apply(OfferCancel(self._offer(7, "CANCELED")))
        book.apply(OffersSnapshot((self._offer(7),)))
        assert 7 in book
        book.apply(OfferUpdate(self._offer(7)))
        assert 7 in book

    def test_the_memory_of_closed_ids_is_bounded(self) -> None:
        book = OfferBook()
        for offer_id in range(1, CLOSED_MEMORY + 2):
            book.apply(OfferCancel(self._offer(offer_id, "CANCELED")))
        assert book.apply(OfferNew(self._offer(1))) != []  # the oldest was forgotten
        assert book.apply(OfferNew(self._offer(2))) == []
