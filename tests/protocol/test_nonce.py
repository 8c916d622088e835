"""Auth nonces: strictly increasing whatever the clock does, capped at 2**53 - 1."""

from __future__ import annotations

import pytest

from bfxd.errors import LocalProtocolError
from bfxd.protocol.nonce import MAX_NONCE, NonceSource

T0 = 1_700_000_000_000_000  # a wall-clock time in microseconds


def test_max_nonce_is_javascript_max_safe_integer() -> None:
    """The cap is Number.MAX_SAFE_INTEGER, 9007199254740991."""
    assert MAX_NONCE == 9007199254740991


def test_follows_an_advancing_clock() -> None:
    """With a clock that moves forward, each nonce is the clock value."""
    source = NonceSource()
    assert [source.next(T0), source.next(T0 + 5), source.next(T0 + 1_000_000)] == [T0, T0 + 5, T0 + 1_000_000]
    assert source.last == T0 + 1_000_000


def test_starts_at_one_with_a_zero_clock() -> None:
    """A fresh source never issues 0, even if the clock reads 0."""
    assert NonceSource().next(0) == 1


def test_clock_going_backwards() -> None:
    """When the clock steps back, nonces keep increasing by one from the last issued."""
    source = NonceSource()
    source.next(T0)
    assert source.next(T0 - 10_000_000) == T0 + 1
    assert source.next(T0 - 5) == T0 + 2
    assert source.next(T0 + 100) == T0 + 100


def test_same_microsecond_twice() -> None:
    """Two nonces asked for within the same microsecond differ by one."""
    source = NonceSource()
    assert (source.next(T0), source.next(T0), source.next(T0)) == (T0, T0 + 1, T0 + 2)


def test_reaching_the_maximum_exactly_is_allowed() -> None:
    """2**53 - 1 itself can be issued."""
    assert NonceSource().next(MAX_NONCE) == 9007199254740991


def test_exceeding_the_maximum_is_a_local_error() -> None:
    """Past 2**53 - 1 the source raises LocalProtocolError and keeps its last nonce."""
    source = NonceSource()
    source.next(MAX_NONCE)
    with pytest.raises(LocalProtocolError):
        source.next(T0)
    assert source.last == 9007199254740991


def test_clock_beyond_the_maximum_is_a_local_error() -> None:
    """A clock value above 2**53 - 1 raises LocalProtocolError instead of issuing it."""
    source = NonceSource()
    with pytest.raises(LocalProtocolError):
        source.next(2**53)
    assert source.last == 0


def test_skip_past_after_nonce_small() -> None:
    """After skip_past(n) the next nonce is above n even with an older clock."""
    source = NonceSource()
    source.next(T0)
    source.skip_past(T0 + 50_000)
    assert source.next(T0 + 1) == T0 + 50_001


def test_skip_past_never_goes_back() -> None:
    """skip_past with a smaller value does not lower the floor."""
    source = NonceSource()
    source.next(T0)
    source.skip_past(5)
    assert source.last == T0
    assert source.next(0) == T0 + 1


def test_skip_past_to_the_maximum() -> None:
    """skip_past(2**53 - 1) leaves no nonce to issue."""
    source = NonceSource()
    source.skip_past(MAX_NONCE)
    with pytest.raises(LocalProtocolError):
        source.next(T0)


def test_sources_are_independent() -> None:
    """Each source keeps its own last nonce (one per API key)."""
    a, b = NonceSource(), NonceSource()
    a.next(T0)
    assert b.next(T0 - 1) == T0 - 1
