"""Liveness of one exchange link: a deadline that moves with every frame, a ping at half-time, a verdict at
full time.

The reader stamps the time of each frame; this task reads the stamp only when a deadline falls due, so a busy
link costs it nothing per frame (it wakes about once per ``max_silence / 2``) and the verdict is still exact.
Started inside the per-link nursery (connection.py), it lives exactly as long as one WebSocket: a verdict about
an old link can never reach, let alone kill, its successor.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import structlog
import trio

log = structlog.get_logger()


async def run_heartbeat(
    *,
    last_frame: Callable[[], float],
    send_ping: Callable[[], Awaitable[None]],
    max_silence: float,
) -> float:
    """Return the silence in seconds once the link is dead; run until cancelled while it lives.

    *last_frame()* is the trio time of the latest frame received (the link's start before any). After
    ``max_silence / 2`` without a frame, *send_ping* is awaited once (the exchange answers with a pong, which is
    a frame). After *max_silence* without a frame, the link is declared dead.
    """
    pinged_after: float | None = None  # the frame time the ping was about
    while True:
        seen = last_frame()
        await trio.sleep_until(seen + (max_silence if pinged_after == seen else max_silence / 2))
        if last_frame() != seen:
            continue  # a frame came meanwhile: measure from it
        if pinged_after != seen:
            pinged_after = seen
            log.info("exchange.ping", silent_for_s=round(trio.current_time() - seen, 3))
            # bounded by the final verdict: a ping that cannot even be written is as good as no answer
            with trio.move_on_at(seen + max_silence):
                await send_ping()
            continue
        silence = trio.current_time() - seen
        log.warning("exchange.link_silent", silent_for_s=round(silence, 3), max_silence_s=max_silence)
        return silence
