"""Small helpers shared by the actors' hot paths."""

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


def take_waiting(channel: trio.MemoryReceiveChannel[T], limit: int = 64) -> list[T]:
    """What is already waiting in *channel*, *limit* items at most, without a checkpoint.

    ``receive()`` yields even when an item is there; an actor that handles each item synchronously takes the
    rest of a burst with this, then yields once. The limit keeps one burst from starving the other tasks.
    """
    items: list[T] = []
    while len(items) < limit:
        try:
            items.append(channel.receive_nowait())
        except (trio.WouldBlock, trio.EndOfChannel):
            break  # the end of the channel is seen by the caller's next receive()
    return items
