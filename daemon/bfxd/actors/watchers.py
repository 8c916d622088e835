"""The router's watchers: one bounded channel per ``watch`` client, fed without ever blocking the router.

A watcher that cannot take an event is cut off, not waited for (that would stall every client) and not silently
skipped (it would believe it saw every change): its channel is closed, its handler drains what it holds, then
tells the client why (``watch_ended``, reason ``lagging``).
"""

from __future__ import annotations

import structlog
import trio

from bfxd.actors.channels import deliver_once
from bfxd.actors.messages import WatchEvent

log = structlog.get_logger()


class Watchers:
    def __init__(self) -> None:
        self._channels: list[trio.MemorySendChannel[WatchEvent]] = []

    def __bool__(self) -> bool:
        return bool(self._channels)

    def add(self, channel: trio.MemorySendChannel[WatchEvent]) -> None:
        self._channels.append(channel)

    def broadcast(self, event: WatchEvent) -> None:
        for watcher in list(self._channels):
            try:
                watcher.send_nowait(event)
            except trio.WouldBlock:
                log.warning("watch.client_lagging", buffered=watcher.statistics().current_buffer_used)
                self._channels.remove(watcher)
                watcher.close()
            except trio.BrokenResourceError:
                self._channels.remove(watcher)  # the client left
                watcher.close()

    def end_all(self, last: WatchEvent) -> None:
        """Give every watcher *last* (room permitting) and close it: the daemon is stopping."""
        for watcher in self._channels:
            deliver_once(watcher, last)
        self._channels.clear()
