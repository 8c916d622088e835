"""Liveness of one exchange link: a movable deadline, a ping at half-time, a verdict at full time.

Started inside the per-link nursery (connection.py), so it lives exactly as long as one WebSocket: a verdict
about an old link can never reach, let alone kill, its successor.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import structlog
import trio

log = structlog.get_logger()


async def run_heartbeat(
    *,
    ticks: trio.MemoryReceiveChannel[None],
    send_ping: Callable[[], Awaitable[None]],
    max_silence: float,
    task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED,
) -> float | None:
    """Watch *ticks* (one per frame received); return the silence in seconds once the link is dead.

    After ``max_silence / 2`` without a tick, *send_ping* is awaited once (the exchange answers with a pong,
    which is a tick). After *max_silence* without a tick, the link is declared dead and the silence returned.
    Returns None when *ticks* is closed (the link is going away for another reason).
    """
    async with ticks:
        task_status.started()
        last_seen = trio.current_time()
        pinged = False
        while True:
            deadline = last_seen + (max_silence if pinged else max_silence / 2)
            ticked = False
            with trio.move_on_at(deadline):
                try:
                    await ticks.receive()
                except trio.EndOfChannel:
                    return None
                ticked = True
            if ticked:
                last_seen, pinged = trio.current_time(), False
            elif not pinged:
                pinged = True
                log.info("exchange.ping", silent_for_s=round(trio.current_time() - last_seen, 3))
                # bounded by the final verdict: a ping that cannot even be written is as good as no answer
                with trio.move_on_at(last_seen + max_silence):
                    await send_ping()
            else:
                silence = trio.current_time() - last_seen
                log.warning("exchange.link_silent", silent_for_s=round(silence, 3), max_silence_s=max_silence)
                return silence
