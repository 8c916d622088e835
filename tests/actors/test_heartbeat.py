"""The liveness watchdog of one link, on the virtual clock."""

from __future__ import annotations

from functools import partial

import trio
import trio.testing

from bfxd.actors.heartbeat import run_heartbeat

MAX_SILENCE = 30.0


class Watchdog:
    """run_heartbeat in its own task, with the ticks channel and a ping recorder."""

    def __init__(self) -> None:
        self.ticks, self._ticks_out = trio.open_memory_channel[None](1)
        self.pings: list[float] = []
        self.result: list[float | None] = []
        self.ended_at: float | None = None
        self.started_at = 0.0

    async def send_ping(self) -> None:
        self.pings.append(trio.current_time() - self.started_at)

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        self.started_at = trio.current_time()
        with trio.fail_after(1000):  # guard only: in virtual time a watchdog that never decides fails at once
            result = await run_heartbeat(ticks=self._ticks_out, send_ping=self.send_ping,
                                         max_silence=MAX_SILENCE, task_status=task_status)
        self.result.append(result)
        self.ended_at = trio.current_time() - self.started_at

    async def tick_at(self, t: float) -> None:
        await trio.sleep_until(self.started_at + t)
        self.ticks.send_nowait(None)


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

    async def test_ticks_keep_it_alive(self, autojump_clock: trio.testing.MockClock) -> None:
        """A tick every 14 s never lets the silence reach the ping, let alone the verdict."""
        async with trio.open_nursery() as nursery:
            dog = await _start(nursery)
            for n in range(1, 11):
                await dog.tick_at(14.0 * n)
            await trio.testing.wait_all_tasks_blocked()
            assert (dog.pings, dog.result) == ([], [])
            await dog.ticks.aclose()
        assert dog.result == [None]
        assert dog.ended_at == 140.0

    async def test_ping_once_then_verdict_measured_from_last_tick(
        self, autojump_clock: trio.testing.MockClock
    ) -> None:
        """After a last tick at 10 s the ping goes at 25 s, once, and the verdict at 40 s, exactly."""
        async with trio.open_nursery() as nursery:
            dog = await _start(nursery)
            await dog.tick_at(10.0)
        assert dog.pings == [25.0]
        assert dog.result == [30.0]
        assert dog.ended_at == 40.0

    async def test_tick_after_ping_resets(self, autojump_clock: trio.testing.MockClock) -> None:
        """A pong-like tick after the ping restarts the cycle: a new ping and verdict count from it."""
        async with trio.open_nursery() as nursery:
            dog = await _start(nursery)
            await dog.tick_at(20.0)  # after the ping at 15 s, before the verdict at 30 s
        assert dog.pings == [15.0, 35.0]
        assert dog.result == [30.0]
        assert dog.ended_at == 50.0

    async def test_slow_ping_is_bounded_by_the_verdict(self, autojump_clock: trio.testing.MockClock) -> None:
        """A ping that cannot be written does not delay the verdict past max_silence."""
        ticks_in, ticks = trio.open_memory_channel[None](1)

        async def stuck_ping() -> None:
            await trio.sleep_forever()

        start = trio.current_time()
        async with ticks_in:
            silence = await run_heartbeat(ticks=ticks, send_ping=stuck_ping, max_silence=MAX_SILENCE)
        assert silence == 30.0
        assert trio.current_time() - start == 30.0

    async def test_closed_ticks_return_none(self, autojump_clock: trio.testing.MockClock) -> None:
        """Closing the ticks channel ends the watchdog at once with None: no verdict, no ping."""
        async with trio.open_nursery() as nursery:
            dog = await _start(nursery)
            await trio.sleep(5)
            await dog.ticks.aclose()
        assert (dog.result, dog.pings, dog.ended_at) == ([None], [], 5.0)

    async def test_started_lets_the_parent_continue(self, nursery: trio.Nursery) -> None:
        """nursery.start returns once the watchdog is running, and it owns (closes) its ticks end."""
        ticks_in, ticks = trio.open_memory_channel[None](1)

        async def ping() -> None:
            pass

        await nursery.start(partial(run_heartbeat, ticks=ticks, send_ping=ping, max_silence=MAX_SILENCE))
        await ticks_in.aclose()
        await trio.testing.wait_all_tasks_blocked()
        assert ticks.statistics().open_receive_channels == 0
