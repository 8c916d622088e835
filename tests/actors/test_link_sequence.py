"""A number out of line is only suspect until the next numbered frame: garbage costs nothing, a gap the link."""

from __future__ import annotations

from bfxd.actors.link_sequence import LinkSequence


def hb(public: int) -> list[object]:
    return [0, "hb", public]


def test_a_garbled_number_is_ignored_when_the_sequence_goes_on() -> None:
    link = LinkSequence(1)
    assert link.feed(hb(1)) is None and link.feed(hb(2)) is None
    assert link.feed(hb(9000)) is None  # garbage: suspect
    assert link.feed(hb(3)) is None  # the sequence goes on: forgiven
    assert link.feed(hb(4)) is None


def test_a_real_gap_is_confirmed_by_the_next_frame() -> None:
    link = LinkSequence(1)
    link.feed(hb(1))
    assert link.feed(hb(3)) is None  # 2 was lost: suspect
    reason = link.feed(hb(4))
    assert reason is not None and "sequence gap" in reason and "2" in reason
