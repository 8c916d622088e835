"""The exchange side's internal API, as the command inbox (and the tests) use it.

``AccountClient`` turns a request into commands for the account router and waits for the outcome under the
caller's deadline. It adds two outcomes the router cannot know: ``NotReady`` (the deadline passed before the
frame could be sent: no ready session) and ``TimedOut`` (the frame went out, no answer before the deadline:
the outcome is unknown).
"""

from __future__ import annotations

import attrs
import trio

from bfxd.actors.messages import (
    AccountCommand,
    CancelCommand,
    CancelOutcome,
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


class PendingCancel:
    """One cancel on its way: its command for the router, and the channel the router answers on."""

    def __init__(self, commands: trio.MemorySendChannel[AccountCommand], offer_id: int, request_id: str) -> None:
        reply_in, self._replies = trio.open_memory_channel[CancelOutcome](1)
        self._commands = commands
        self._command = CancelCommand(offer_id, request_id, reply_in)
        self._submitted = False
        self._router_gone = False

    def try_submit(self) -> None:
        try:
            self._commands.send_nowait(self._command)
            self._submitted = True
        except trio.WouldBlock:
            pass  # the router is busy: ``outcome`` waits for room, within the deadline
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            self._router_gone = True

    async def outcome(self, deadline: float) -> CancelResult:
        """Wait for the result until *deadline* (trio time) at the most. Exactly one result, always.

        Await it once, and soon: until it returns, the router counts the requester as waiting."""
        replies = self._replies
        with replies:  # leaving closes our end: the router then knows nobody waits any more
            with trio.move_on_at(deadline):
                if self._router_gone:
                    return ShuttingDown()
                if not self._submitted:
                    try:
                        await self._commands.send(self._command)
                    except (trio.BrokenResourceError, trio.ClosedResourceError):
                        return ShuttingDown()
                    self._submitted = True
                try:
                    return await replies.receive()
                except trio.EndOfChannel:
                    return ShuttingDown()  # closed with no outcome: only the router's shutdown does that
            # The deadline may strike after the router delivered but before we read: an outcome already in the
            # channel is the answer.
            try:
                return replies.receive_nowait()
            except (trio.WouldBlock, trio.EndOfChannel):
                pass
        return TimedOut() if self._command.receipt.sent else NotReady()


class AccountClient:
    def __init__(self, commands: trio.MemorySendChannel[AccountCommand], board: SessionBoard) -> None:
        self._commands = commands
        self.board = board

    def status(self) -> SessionSnapshot:
        return self.board.snapshot()

    def start_cancel(self, offer_id: int, *, request_id: str) -> PendingCancel:
        """Hand a cancel to the router now, without a checkpoint when its inbox has room (the usual case): the
        router takes it in the very next scheduling round. ``PendingCancel.outcome`` waits for the result."""
        pending = PendingCancel(self._commands, offer_id, request_id)
        pending.try_submit()
        return pending

    async def cancel(self, offer_id: int, *, request_id: str, deadline: float) -> CancelResult:
        """Cancel one offer; wait until *deadline* (trio time) at the most. Exactly one result, always."""
        return await self.start_cancel(offer_id, request_id=request_id).outcome(deadline)

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
