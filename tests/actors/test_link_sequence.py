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


def test_two_garbled_frames_with_the_same_number_cost_nothing() -> None:
    """Found by ``make fuzz``: ``[-1837]`` twice (a channel id that is also its only number), with a frame in
    between, was taken for a confirmed gap and cost the link."""
    link = LinkSequence(1)
    link.feed(hb(1))
    assert link.feed([-1837]) is None
    assert link.feed([-1837]) is None  # out of line again, but not after -1837: garbage again
    assert link.feed(hb(2)) is None and link.feed(hb(3)) is None


def test_a_real_gap_behind_garbage_is_still_confirmed() -> None:
    link = LinkSequence(1)
    link.feed(hb(1))
    assert link.feed(hb(3)) is None  # 2 was lost: suspect
    assert link.feed([5, 777]) is None  # garbage takes the suspect's place
    assert link.feed(hb(4)) is None  # out of line, not after 777: suspect again
    reason = link.feed(hb(5))  # continues 4: the sequence really jumped
    assert reason is not None and "sequence gap" in reason


def test_a_repeated_number_never_confirms_but_the_next_advancing_frame_does() -> None:
    """Found by ``make fuzz`` too: the same garbled notification three times (its auth number repeated) must not
    cost the link; a real auth gap is confirmed by the next account frame, past the notifications that repeat."""
    garbled = [0, "n", [1, "fon-req", None, None, None, None, "SUCCESS", "x"], 87]
    link = LinkSequence(1)
    assert link.feed([0, "wu", [], 1, 1]) is None  # the public start (its auth number is not looked at)
    assert link.feed([0, "wu", [], 2, 2]) is None  # the auth start
    assert all(link.feed(garbled) is None for _ in range(3))
    assert link.feed([0, "wu", [], 3, 3]) is None  # in line: forgiven
    assert link.feed([0, "wu", [], 4, 5]) is None  # auth 4 was lost: suspect on the auth stream
    assert link.feed([0, "n", [0, "x"], 5, 5]) is None  # a notification repeats the current auth number, 5
    reason = link.feed([0, "wu", [], 6, 6])  # the next account frame continues 5: the sequence really jumped
    assert reason is not None and "auth" in reason
