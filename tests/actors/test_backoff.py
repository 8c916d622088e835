"""Reconnect pacing: the pure backoff formula and the exchange's connection rate guard."""

from __future__ import annotations

import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bfxd.backoff import (
    EXCHANGE_MAX_CONNECTIONS,
    EXCHANGE_WINDOW_S,
    GUARD_MARGIN_S,
    ConnectGuard,
    reconnect_delay,
)

WINDOW = EXCHANGE_WINDOW_S + GUARD_MARGIN_S


class TestReconnectDelay:
    @pytest.mark.parametrize(
        ("attempt", "expected"),
        [(1, 1.0), (2, 2.0), (3, 4.0), (4, 8.0), (5, 16.0), (6, 32.0), (7, 60.0), (8, 60.0), (50, 60.0)],
    )
    def test_doubles_up_to_the_cap(self, attempt: int, expected: float) -> None:
        """With rand at its top end the delay doubles from *initial* and stops at *maximum*."""
        assert reconnect_delay(attempt, initial=1.0, maximum=60.0, rand=1.0) == expected

    @pytest.mark.parametrize("attempt", [1, 2, 3, 6, 7, 100])
    def test_rand_zero_gives_half(self, attempt: int) -> None:
        """The lowest draw waits exactly half the un-jittered delay ("equal jitter")."""
        full = reconnect_delay(attempt, initial=0.5, maximum=30.0, rand=1.0)
        assert reconnect_delay(attempt, initial=0.5, maximum=30.0, rand=0.0) == full / 2

    @given(attempt=st.integers(min_value=1, max_value=200), rand=st.floats(min_value=0.0, max_value=1.0,
                                                                            exclude_max=True))
    def test_jitter_stays_in_half_to_full(self, attempt: int, rand: float) -> None:
        """Every draw lands in [d/2, d] where d is the capped exponential delay."""
        d = min(60.0, 1.0 * 2.0 ** min(attempt - 1, 64))
        assert d / 2 <= reconnect_delay(attempt, initial=1.0, maximum=60.0, rand=rand) <= d

    @pytest.mark.parametrize("attempt", [0, -1, -(10**9)])
    def test_attempt_zero_or_less_waits_nothing(self, attempt: int) -> None:
        """Attempt 0 (the first dial) and nonsense negatives wait zero seconds."""
        assert reconnect_delay(attempt, initial=1.0, maximum=60.0, rand=0.7) == 0.0

    @pytest.mark.parametrize("attempt", [65, 1025, 10**6, 10**100])
    def test_huge_attempts_do_not_overflow(self, attempt: int) -> None:
        """Astronomical attempt counts give the cap instead of OverflowError or inf."""
        assert reconnect_delay(attempt, initial=1.0, maximum=60.0, rand=1.0) == 60.0
        assert reconnect_delay(attempt, initial=1.0, maximum=60.0, rand=0.0) == 30.0


def _check_rate(attempts: list[float]) -> None:
    # An attempt at t occupies [t, t + WINDOW); no six attempts may share one such window.
    n = EXCHANGE_MAX_CONNECTIONS
    for i in range(len(attempts) - n):
        assert attempts[i] + WINDOW <= attempts[i + n], (i, attempts[i : i + n + 1])


def _drive(guard: ConnectGuard, start: float, gaps: list[float]) -> list[float]:
    """Play the connection loop: wait as told, dial, fail after *gap* seconds (link life + backoff)."""
    now, made = start, []
    for gap in gaps:
        wait = guard.wait_before_next(now)
        assert wait >= 0.0
        if wait > 0:
            now += wait
            assert guard.wait_before_next(now) == 0.0, "the returned wait was not enough"
        guard.record(now)
        made.append(now)
        now += gap
    return made


class TestConnectGuard:
    def test_defaults_follow_the_exchange_limit(self) -> None:
        """The guard allows five attempts per 15 s plus the half-second margin."""
        guard = ConnectGuard()
        assert (guard.max_attempts, guard.window) == (5, 15.5)

    def test_five_immediate_then_exact_wait(self) -> None:
        """Five back-to-back attempts pass; the sixth waits until the first leaves the window, exactly."""
        guard = ConnectGuard()
        for t in (100.0, 100.0, 101.0, 102.0, 103.0):
            assert guard.wait_before_next(t) == 0.0
            guard.record(t)
        assert guard.wait_before_next(104.0) == 11.5
        assert guard.wait_before_next(115.4) == pytest.approx(0.1)
        assert guard.wait_before_next(115.5) == 0.0
        guard.record(115.5)  # both attempts of 100.0 left the window together: room for one more
        assert guard.wait_before_next(115.5) == 0.0
        guard.record(115.5)
        assert guard.wait_before_next(115.5) == 1.0  # now 101.0 must leave first

    def test_rounding_never_opens_the_gate_early(self) -> None:
        """After the exact wait, five attempts pass and the sixth waits, even where float rounding bites."""
        guard = ConnectGuard()
        for _ in range(5):
            guard.record(0.1)
        now = 0.1 + guard.wait_before_next(0.1)  # 0.1 + 15.5 rounds to 15.6, and 15.6 - 15.5 < 0.1
        allowed = 0
        while allowed < 10 and guard.wait_before_next(now) == 0.0:
            guard.record(now)
            allowed += 1
        assert allowed == 5
        wait = guard.wait_before_next(now)
        assert wait == pytest.approx(WINDOW)
        assert guard.wait_before_next(now + wait) == 0.0

    @pytest.mark.parametrize(
        ("first", "now"),
        [(2.164812324050797e-06, 6.123161847259198), (0.00864471167987966, 4.261996016626779)],
    )
    def test_returned_wait_is_enough(self, first: float, now: float) -> None:
        """Sleeping exactly the returned wait always reaches the reopening, even where now + wait rounds down."""
        guard = ConnectGuard()
        for _ in range(5):
            guard.record(first)
        wait = guard.wait_before_next(now)
        assert wait == pytest.approx(first + WINDOW - now)
        assert guard.wait_before_next(now + wait) == 0.0

    @settings(max_examples=200, deadline=None)
    @given(
        start=st.floats(min_value=0.0, max_value=1e7, allow_nan=False),
        gaps=st.lists(
            st.one_of(st.just(0.0), st.floats(min_value=0.0, max_value=30.0, allow_nan=False)),
            min_size=1, max_size=60,
        ),
    )
    def test_never_more_than_five_in_a_window(self, start: float, gaps: list[float]) -> None:
        """Whatever the fault pattern, no 15.5 s window ever holds more than five attempts."""
        _check_rate(_drive(ConnectGuard(), start, gaps))

    def test_seeded_fault_storm(self) -> None:
        """A long seeded run of instant failures and short links respects the limit and keeps dialling."""
        rng = random.Random(20240601)
        gaps = [rng.choice([0.0, 0.0, 0.001, rng.uniform(0, 2), rng.uniform(0, 20)]) for _ in range(2000)]
        made = _drive(ConnectGuard(), 1234.5678, gaps)
        _check_rate(made)
        # never slower than needed either: instant failures run at exactly five per window
        instant = _drive(ConnectGuard(), 0.0, [0.0] * 16)
        assert instant == [0.0] * 5 + [15.5] * 5 + [31.0] * 5 + [46.5]
