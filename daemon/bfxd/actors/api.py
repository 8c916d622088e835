"""The exchange side's internal API, as the command inbox (and the tests) use it.

``AccountClient`` turns a request into commands for the account router and waits for the outcome under the
caller's deadline. It adds two outcomes the router cannot know: ``NotReady`` (the deadline passed before the
frame could be sent: no ready session) and ``TimedOut`` (the frame went out, no answer before the deadline:
the outcome is unknown).
"""

from __future__ import annotations

import attrs
import trio

from bfxd.actors.channels import hand_over
from bfxd.actors.messages import (
    AccountCommand,
    CancelCommand,
    CancelOutcome,
    CancelProgress,
    FrameSent,
    OffersQuery,
    Probe,
    ShuttingDown,
    Subscribe,
    WatchEvent,
)
from bfxd.actors.session import SessionBoard, SessionSnapshot
from bfxd.protocol import FundingOffer


@attrs.frozen
class NotReady:
    """No authenticated session before the deadline; the frame was never sent."""


@attrs.frozen
class TimedOut:
    """The frame was sent and no answer came before the deadline: the outcome is unknown."""


CancelResult = CancelOutcome | NotReady | TimedOut


class AccountClient:
    def __init__(self, commands: trio.MemorySendChannel[AccountCommand], board: SessionBoard) -> None:
        self._commands = commands
        self.board = board

    def status(self) -> SessionSnapshot:
        return self.board.snapshot()

    async def cancel(self, offer_id: int, *, request_id: str, deadline: float) -> CancelResult:
        """Cancel one offer; wait until *deadline* (trio time) at the most. Exactly one result, always."""
        reply_in, replies = trio.open_memory_channel[CancelProgress](2)
        sent = False
        async with replies:  # leaving closes our end: the router then knows nobody waits any more
            with trio.move_on_at(deadline):
                try:
                    await hand_over(self._commands, CancelCommand(offer_id, request_id, reply_in))
                except (trio.BrokenResourceError, trio.ClosedResourceError):
                    return ShuttingDown()
                async for progress in replies:
                    if isinstance(progress, FrameSent):
                        sent = True
                        continue
                    return progress
                return ShuttingDown()  # closed with no outcome: only the router's shutdown does that
            # The deadline may strike after the router delivered but before we read: what is already in the
            # channel counts (FrameSent means the frame did go out; an outcome is the answer).
            while True:
                try:
                    progress = replies.receive_nowait()
                except (trio.WouldBlock, trio.EndOfChannel):
                    break
                if not isinstance(progress, FrameSent):
                    return progress
                sent = True
        return TimedOut() if sent else NotReady()

    async def offers(self, symbol: str | None = None) -> list[FundingOffer]:
        reply_in, replies = trio.open_memory_channel[list[FundingOffer]](1)
        async with replies:
            await self._commands.send(OffersQuery(symbol, reply_in))
            return await replies.receive()

    async def subscribe(self, buffer: int) -> trio.MemoryReceiveChannel[WatchEvent]:
        """Events from now on, through a *buffer*-deep channel; a watcher that falls behind is cut off."""
        events_in, events = trio.open_memory_channel[WatchEvent](buffer)
        await self._commands.send(Subscribe(events_in))
        return events

    async def probe(self) -> None:
        """Returns once the router has turned its loop (the watchdog's liveness check)."""
        reply_in, replies = trio.open_memory_channel[None](1)
        async with replies:
            await self._commands.send(Probe(reply_in))
            await replies.receive()
