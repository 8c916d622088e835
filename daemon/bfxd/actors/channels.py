"""The channels between actors, and small helpers shared by the actors' hot paths.

Every long-lived channel is opened with ``ChannelBoard.open``: a name, a size and the reason for that size, so
``daemon.py`` lists them all in one place, and ``status`` (and ``make bench``) can show each one's peak use.
The peak is observed where a burst is taken (``take_waiting``): a buffer is fullest just before a receive, and
each actor takes what is waiting right after its first receive, so the burst it takes is the level it saw.
"""

from __future__ import annotations

import weakref
from collections.abc import Callable
from typing import Any, Generic, TypeVar

import attrs
import trio

T = TypeVar("T")

# receive end -> its gauge. Weak: a channel of a test or of a stopped daemon goes when its actors do.
_GAUGES: weakref.WeakKeyDictionary[trio.MemoryReceiveChannel[Any], ChannelGauge] = weakref.WeakKeyDictionary()


@attrs.define
class ChannelGauge:
    name: str
    size: int
    reason: str
    peak: int = 0  # most items seen waiting at once

    def observe(self, waiting: int) -> None:
        if waiting > self.peak:
            self.peak = waiting

    def to_json(self) -> dict[str, Any]:
        return {"size": self.size, "peak_buffer_used": self.peak}


@attrs.define
class ChannelBoard:
    """The daemon's channels, by name."""

    gauges: dict[str, ChannelGauge] = attrs.field(factory=dict)

    def open(self, name: str, size: int, reason: str) -> tuple[trio.MemorySendChannel[Any],
                                                               trio.MemoryReceiveChannel[Any]]:
        send, receive = trio.open_memory_channel[Any](size)
        gauge = ChannelGauge(name, size, reason)
        self.gauges[name] = gauge
        _GAUGES[receive] = gauge
        return send, receive

    def to_json(self) -> dict[str, Any]:
        return {name: gauge.to_json() for name, gauge in self.gauges.items()}


def note_received(channel: trio.MemoryReceiveChannel[Any]) -> None:
    """Called right after a receive that takes one item at a time: the item taken plus what still waits."""
    gauge = _GAUGES.get(channel)
    if gauge is not None:
        gauge.observe(1 + channel.statistics().current_buffer_used)


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
    Call it right after the burst's first receive: the burst it sees is the channel's level then.
    """
    items: list[T] = []
    while len(items) < limit:
        try:
            items.append(channel.receive_nowait())
        except (trio.WouldBlock, trio.EndOfChannel):
            break  # the end of the channel is seen by the caller's next receive()
    gauge = _GAUGES.get(channel)
    if gauge is not None:
        waiting = 1 + len(items)
        gauge.observe(waiting + channel.statistics().current_buffer_used if len(items) == limit else waiting)
    return items


def deliver_once(channel: trio.MemorySendChannel[T], value: T) -> None:
    """Send the one and only reply without ever blocking the sender; a receiver that left is simply skipped."""
    try:
        channel.send_nowait(value)
    except (trio.WouldBlock, trio.BrokenResourceError, trio.ClosedResourceError):
        pass
    channel.close()


_NOTHING: Any = object()  # a OneShot closed without a value


class OneShot(Generic[T]):
    """One value, from the router to the one request waiting for it: all a request's reply needs of a memory
    channel, for a fraction of its cost (a channel is a state and two ends; every request makes a reply).

    ``deliver`` never blocks and only its first call counts; ``close`` without a value makes ``receive`` raise
    ``EndOfChannel``, as a closed channel would. There is exactly one receiver, and it receives once; a value
    already there is received without a checkpoint (a task started after it finishes in one step).
    ``when_delivered`` registers the one function to call, synchronously, once the value (or the close) is in.
    """

    __slots__ = ("_arrived", "_then", "_value")

    def __init__(self) -> None:
        self._arrived = trio.Event()
        self._value: T = _NOTHING
        self._then: Callable[[], None] | None = None

    def deliver(self, value: T) -> None:
        if not self._arrived.is_set():
            self._value = value
            self._settle()

    def close(self) -> None:
        if not self._arrived.is_set():  # a value delivered before stays
            self._settle()

    def when_delivered(self, then: Callable[[], None]) -> None:
        if self._arrived.is_set():
            then()
        else:
            self._then = then

    def _settle(self) -> None:
        self._arrived.set()
        then, self._then = self._then, None
        if then is not None:
            then()

    async def wait(self) -> None:
        """Until the value (or the close) is in; without a checkpoint if it already is."""
        if not self._arrived.is_set():
            await self._arrived.wait()

    async def receive(self) -> T:
        await self.wait()
        return self.receive_nowait()

    def receive_nowait(self) -> T:
        """The value, if it is in: ``WouldBlock`` before, ``EndOfChannel`` if closed empty."""
        if not self._arrived.is_set():
            raise trio.WouldBlock
        if self._value is _NOTHING:
            raise trio.EndOfChannel
        return self._value
