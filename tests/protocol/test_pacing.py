"""The input pace: a token bucket, halved on a refusal until a quiet minute passes."""

from __future__ import annotations

import pytest

from bfxd.protocol.pacing import Pace


def turns_in(pace: Pace, seconds: float, *, step: float = 0.01, start: float = 0.0) -> list[float]:
    """When each turn was taken, trying every *step* seconds over *seconds*."""
    taken, now = [], start
    while now < start + seconds:
        while pace.take(now):
            taken.append(round(now, 6))
        now += step
    return taken


def test_burst_then_the_rate() -> None:
    pace = Pace(per_second=10, burst=5)
    taken = turns_in(pace, 1.0)
    assert taken[:5] == [0.0] * 5  # the burst at once
    # then one every 0.1 s (the first at the first try after 0.1 s: the tries are 10 ms apart)
    assert taken[5:] == pytest.approx([0.11, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9], abs=0.011)


def test_wait_says_when_the_next_turn_comes() -> None:
    pace = Pace(per_second=4, burst=1)
    assert pace.wait(0.0) == 0.0 and pace.take(0.0)
    assert pace.wait(0.0) == pytest.approx(0.25)
    assert not pace.take(0.2)
    assert pace.take(0.25)


def test_a_refusal_halves_the_pace_until_a_quiet_minute() -> None:
    pace = Pace(per_second=8, burst=8)
    pace.limited(10.0)
    assert pace.slowed and pace.current == 4
    assert not pace.take(10.0)  # the bucket was emptied
    pace.limited(20.0)
    assert pace.current == 2
    assert pace.wait(79.9) == 0.0 and pace.slowed  # 59.9 s after the last refusal: still slowed
    pace.take(80.0)
    assert not pace.slowed and pace.current == 8  # a quiet minute: the configured pace is back


def test_repeated_refusals_stop_at_a_floor() -> None:
    pace = Pace(per_second=64, burst=1)
    for t in range(20):
        pace.limited(float(t))
    assert pace.current == 1.0


@pytest.mark.parametrize(("per_second", "burst"), [(0, 1), (-1, 1), (1, 0)])
def test_nonsense_is_refused(per_second: float, burst: int) -> None:
    with pytest.raises(ValueError, match="per_second > 0"):
        Pace(per_second=per_second, burst=burst)
