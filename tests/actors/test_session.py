"""The session board: state, version, waiters and the status JSON."""

from __future__ import annotations

import trio
import trio.testing

from bfxd.actors.session import SessionBoard, State


class FakeWallClock:
    def __init__(self, now: float = 1_700_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


class TestSessionBoard:
    async def test_starts_connecting(self) -> None:
        """A new board is connecting, unauthenticated, version 0, with no frame seen yet."""
        board = SessionBoard(wall_clock=FakeWallClock(1000.0))
        snap = board.snapshot()
        assert (snap.state, snap.version, snap.last_message_age_s, board.ready) == ("connecting", 0, None, False)
        assert snap.since == 1000.0

    async def test_state_change_bumps_version_and_since(self) -> None:
        """Each real change bumps the version and stamps the wall clock; a repeat of the same state does not."""
        clock = FakeWallClock(1000.0)
        board = SessionBoard(wall_clock=clock)
        clock.now = 1005.25
        board.set_state("authenticating")
        assert (board.snapshot().version, board.snapshot().since) == (1, 1005.25)
        clock.now = 1010.0
        board.set_state("authenticating")
        assert (board.snapshot().version, board.snapshot().since) == (1, 1005.25)
        board.set_state("authenticating", "second try")  # same state, new detail: a change
        assert (board.snapshot().version, board.snapshot().detail) == (2, "second try")

    async def test_wait_changed_wakes_on_change(self, autojump_clock: trio.testing.MockClock) -> None:
        """wait_changed blocks while the version is unchanged and returns once the state moves."""
        board = SessionBoard()
        woke_at: list[float] = []

        async def waiter() -> None:
            with trio.fail_after(60):  # guard only: in virtual time a waiter that never wakes fails at once
                await board.wait_changed(board.snapshot().version)
            woke_at.append(trio.current_time())

        async with trio.open_nursery() as nursery:
            nursery.start_soon(waiter)
            await trio.sleep(7)
            assert woke_at == []
            board.set_state("authenticating")
        assert woke_at == [7]

    async def test_wait_changed_returns_at_once_when_behind(self) -> None:
        """A waiter holding an old version returns without blocking."""
        board = SessionBoard()
        board.set_state("authenticating")
        with trio.move_on_after(0) as scope:  # already expired: any block would be cancelled
            await board.wait_changed(0)
        assert not scope.cancelled_caught

    async def test_wait_ready_ignores_other_states(self, autojump_clock: trio.testing.MockClock) -> None:
        """wait_ready sleeps through authenticating and maintenance and returns at the ready transition."""
        board = SessionBoard()
        ready_at: list[float] = []

        async def waiter() -> None:
            with trio.fail_after(60):  # guard only
                await board.wait_ready()
            ready_at.append(trio.current_time())

        async with trio.open_nursery() as nursery:
            nursery.start_soon(waiter)
            await trio.sleep(1)
            board.set_state("authenticating")
            await trio.sleep(1)
            board.set_state("maintenance", "exchange maintenance")
            await trio.testing.wait_all_tasks_blocked()
            assert ready_at == []
            await trio.sleep(1)
            board.set_state("ready")
        assert ready_at == [3]
        assert board.ready

    async def test_stopping_is_final(self) -> None:
        """Once stopping, later state changes are ignored and the version stays put."""
        board = SessionBoard()
        board.set_state("ready")
        board.set_state("stopping")
        version = board.snapshot().version
        board.set_state("connecting")
        board.set_state("ready")
        board.set_state("stopping", "again")
        snap = board.snapshot()
        assert (snap.state, snap.version, snap.detail) == ("stopping", version, None)

    async def test_last_message_age_follows_trio_time(self, autojump_clock: trio.testing.MockClock) -> None:
        """The age of the last frame is measured on trio's clock from note_frame()."""
        board = SessionBoard()
        await trio.sleep(3)
        board.note_frame()
        await trio.sleep(2.5)
        assert board.snapshot().last_message_age_s == 2.5

    async def test_to_json_keys_and_values(self, autojump_clock: trio.testing.MockClock) -> None:
        """to_json carries exactly the status keys, rounded, with authenticated derived from the state."""
        board = SessionBoard(wall_clock=FakeWallClock(1_700_000_000.123456))
        board.note_frame()
        await trio.sleep(1.23456)
        board.user_id, board.reconnects, board.pending, board.offers = 42, 3, 2, 7
        board.queued_inputs, board.pace = 4, 2.5
        board.set_state("maintenance", "exchange maintenance")
        assert board.snapshot().to_json() == {
            "state": "maintenance",
            "authenticated": True,
            "user_id": 42,
            "since": 1_700_000_000.123,
            "last_message_age_s": 1.235,
            "reconnects": 3,
            "pending": 2,
            "offers": 7,
            "inputs": {"queued": 4, "per_second": 2.5},
            "detail": "exchange maintenance",
        }

    async def test_authenticated_only_when_ready_or_maintenance(self) -> None:
        """Only ready and maintenance count as authenticated in the JSON form."""
        board = SessionBoard()
        seen = {}
        states: tuple[State, ...] = (
            "connecting", "authenticating", "ready", "maintenance", "auth_failed", "backoff", "stopping")
        for state in states:
            board.set_state(state)
            seen[state] = board.snapshot().to_json()["authenticated"]
        assert [s for s, auth in seen.items() if auth] == ["ready", "maintenance"]
        assert board.snapshot().to_json()["last_message_age_s"] is None
