"""A small helper shared by the actors' hot paths."""

from __future__ import annotations

from typing import TypeVar

import trio

T = TypeVar("T")


async def hand_over(channel: trio.MemorySendChannel[T], value: T) -> None:
    """Send *value*; when there is room (the usual case) without a checkpoint, so without a task switch.

    On the cancel path every switch costs microseconds on each hop. Waiting, when there is no room, keeps
    the channel's backpressure. Raises what ``send`` raises (BrokenResourceError, ClosedResourceError).
    """
    try:
        channel.send_nowait(value)
    except trio.WouldBlock:
        await channel.send(value)
