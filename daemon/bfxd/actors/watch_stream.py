"""One client's watches, as the inbox runs them: their cancel scopes, the forwarding of the router's events and
of the session's state.

The router hands on a burst of exchange frames per turn, so a watch moves all that is waiting each turn too
(without a checkpoint while the client's queue has room), or a healthy watcher would fall behind and be cut off.
"""

from __future__ import annotations

import trio

from bfxd.actors.channels import take_waiting
from bfxd.actors.client_output import WATCH_BATCH, send_line
from bfxd.actors.messages import WatcherCutOff, WatchEvent
from bfxd.actors.session import SessionBoard
from bfxd.protocol import client_wire as wire

__all__ = ["ClientWatches", "forward_events", "forward_states"]


class ClientWatches:
    """The cancel scopes of one client's watches. Once the client has left, a watch that registers late (its
    answer was still on the way) is cancelled at once rather than streaming to nobody forever."""

    def __init__(self) -> None:
        self._scopes: set[trio.CancelScope] = set()
        self._closed = False

    def add(self, scope: trio.CancelScope) -> None:
        self._scopes.add(scope)
        if self._closed:
            scope.cancel()

    def discard(self, scope: trio.CancelScope) -> None:
        self._scopes.discard(scope)

    def close(self) -> None:
        self._closed = True
        for scope in self._scopes:
            scope.cancel()


async def forward_events(events: trio.MemoryReceiveChannel[WatchEvent], out: trio.MemorySendChannel[bytes]) -> str:
    """Forward events until the router ends the watch; the reason it gave (or that it cut the watcher off)."""
    async for first in events:
        for event in (first, *take_waiting(events, WATCH_BATCH)):
            if isinstance(event, WatcherCutOff):
                return event.reason
            await send_line(out, event.line)  # rendered once by the router for every watcher
    return "lagging: events came faster than this client read them"


async def forward_states(board: SessionBoard, out: trio.MemorySendChannel[bytes]) -> None:
    """Forward every change of the session's state, as a ``state`` event line, until cancelled."""
    version = board.snapshot().version
    while True:
        await board.wait_changed(version)
        snapshot = board.snapshot()
        version = snapshot.version
        await send_line(out, wire.event_line("state", state=snapshot.state, detail=snapshot.detail,
                                             since=round(snapshot.since, 3)))
