"""Frames on their way from the account router to the link's writer, without ever blocking the router.

``send`` hands a frame to the writer's channel when it has room (the usual case, no task switch); a frame that
does not fit waits in an ordered backlog, which ``run`` (a task of the router's nursery) moves on, blocking there
instead of in the router. Order is kept: once anything waits in the backlog, later frames queue behind it.
"""

from __future__ import annotations

from collections import deque

import trio

from bfxd.actors.messages import OutboundFrame


class FrameOutbox:
    def __init__(self, frames: trio.MemorySendChannel[OutboundFrame]) -> None:
        self._frames = frames
        self._backlog: deque[OutboundFrame] = deque()
        self._backlog_waiting = trio.Event()

    def send(self, frame: OutboundFrame) -> None:
        if not self._backlog:
            try:
                self._frames.send_nowait(frame)
                return
            except trio.WouldBlock:
                pass
            except trio.BrokenResourceError:
                return  # the writer is gone: the daemon is stopping
        self._backlog.append(frame)
        self._backlog_waiting.set()

    async def run(self) -> None:
        """Move frames that did not fit in the channel, in order."""
        while True:
            await self._backlog_waiting.wait()
            self._backlog_waiting = trio.Event()
            while self._backlog:
                try:
                    await self._frames.send(self._backlog[0])
                except trio.BrokenResourceError:
                    self._backlog.clear()  # the writer is gone: the daemon is stopping
                    return
                self._backlog.popleft()
