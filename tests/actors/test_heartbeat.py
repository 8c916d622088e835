"""The liveness watchdog of one link, on the virtual clock."""

from __future__ import annotations

import trio
import trio.testing

from bfxd.actors.heartbeat import run_heartbeat

MAX_SILENCE = 30.0


class Watchdog:
    """run_heartbeat in its own task, fed a last-frame stamp as the link's reader would, with a ping recorder."""

    def __init__(self) -> None:
        self.last_frame = 0.0
        self.pings: list[float] = []
        self.result: list[float] = []
        self.ended_at: float | None = None
        self.started_at = 0.0

    async def send_ping(self) -> None:
        self.pings.append(trio.current_time() - self.started_at)

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        self.started_at = self.last_frame = trio.current_time()
        task_status.started()
        with trio.fail_after(1000):  # guard only: in virtual time a watchdog that never decides fails at once
            result = await run_heartbeat(last_frame=lambda: self.last_frame, send_ping=self.send_ping,
                                         max_silence=MAX_SILENCE)
        self.result.append(result)
        self.ended_at = trio.current_time() - self.started_at

    async def frame_at(self, t: float) -> None:
        await trio.sleep_until(self.started_at + t)
        self.last_frame = trio.current_time()


async def _start(nursery: trio.Nursery) -> Watchdog:
    dog = Watchdog()
    await nursery.start(dog.run)
    return dog


class TestHeartbeat:
    async def test_silent_link_pinged_at_half_and_dead_at_full(self, autojump_clock: trio.testing.MockClock) -> None:
        """With no frame at all, one ping goes out at max_silence/2 and the verdict comes at max_silence."""
        async with trio.open_nursery() as nursery:
            dog = await _start(nursery)
        assert dog.pings == [15.0]
        assert dog.result == [30.0]
        assert dog.ended_at == 30.0

    async def test_frames_keep_it_alive(self, autojump_clock: trio.testing.MockClock) -> None:
        """A frame every 14 s never lets the silence reach the ping, let alone the verdict."""
        async with trio.open_nursery() as nursery:
            dog = await _start(nursery)
            for n in range(1, 11):
                await dog.frame_at(14.0 * n)
            await trio.testing.wait_all_tasks_blocked()
            assert (dog.pings, dog.result) == ([], [])
            nursery.cancel_scope.cancel()
        assert dog.result == []

    async def test_busy_link_costs_no_wakeup_per_frame(self, autojump_clock: trio.testing.MockClock) -> None:
        """A thousand frames a second still leave the verdict exact: max_silence after the last one."""
        async with trio.open_nursery() as nursery:
            dog = await _start(nursery)
            for n in range(1, 10_001):
                await dog.frame_at(n / 1000)
        assert dog.pings == [25.0]
        assert dog.result == [30.0]
        assert dog.ended_at == 40.0

    async def test_ping_once_then_verdict_measured_from_last_frame(
        self, autojump_clock: trio.testing.MockClock
    ) -> None:
        """After a last frame at 10 s the ping goes at 25 s, once, and the verdict at 40 s, exactly."""
        async with trio.open_nursery() as nursery:
            dog = await _start(nursery)
            await dog.frame_at(10.0)
        assert dog.pings == [25.0]
        assert dog.result == [30.0]
        assert dog.ended_at == 40.0

    async def test_frame_after_ping_resets(self, autojump_clock: trio.testing.MockClock) -> None:
        """A pong-like frame after the ping restarts the cycle: a new ping and verdict count from it."""
        async with trio.open_nursery() as nursery:
            dog = await _start(nursery)
            await dog.frame_at(20.0)  # after the ping at 15 s, before the verdict at 30 s
        assert dog.pings == [15.0, 35.0]
        assert dog.result == [30.0]
        assert dog.ended_at == 50.0

    async def test_slow_ping_is_bounded_by_the_verdict(self, autojump_clock: trio.testing.MockClock) -> None:
        """A ping that cannot be written does not delay the verdict past max_silence."""

        async def stuck_ping() -> None:
            await trio.sleep_forever()

        start = trio.current_time()
        silence = await run_heartbeat(last_frame=lambda: start, send_ping=stuck_ping, max_silence=MAX_SILENCE)
        assert silence == 30.0
        assert trio.current_time() - start == 30.0
