"""The exchange side's internal API, as the ops (and the tests) use it.

``AccountClient`` hands requests to the account router and waits for their outcome. The router's input machine
settles every input by its deadline, so waiting needs no timeout here; the one case decided here is a command
channel with no room until the deadline (``NotReady``: nothing was sent). A command that found room but waited
there past its deadline, the router answers ``NotReady`` itself.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import trio

from bfxd.actors.account_settings import AccountSettings
from bfxd.actors.channels import ChannelBoard, OneShot
from bfxd.actors.messages import (
    AccountCommand,
    AccountView,
    AwaitGone,
    InputBatch,
    InputCommand,
    Probe,
    Read,
    ReadSynced,
    RequestCalc,
    Requester,
    SetPace,
    Subscribe,
    WatchEvent,
)
from bfxd.actors.session import SessionBoard, SessionSnapshot
from bfxd.protocol import FundingOffer
from bfxd.protocol.input_kinds import InputSpec, NotReady, Outcome, ShuttingDown

T = TypeVar("T")


class PendingInput:
    """One input on its way: its command for the router, and the channel the router answers on."""

    __slots__ = ("_command", "_commands", "_reply", "_submitted")

    def __init__(self, commands: trio.MemorySendChannel[AccountCommand], spec: InputSpec, request_id: str,
                 deadline: float) -> None:
        self._reply = OneShot[Outcome]()
        self._commands = commands
        self._command = InputCommand(Requester(request_id, self._reply), spec, deadline)
        self._submitted: bool | None = False  # None: the router is gone

    @property
    def command(self) -> InputCommand:
        return self._command

    def submitted(self) -> None:
        self._submitted = True

    def router_gone(self) -> None:
        self._submitted = None

    def try_submit(self) -> None:
        try:
            self._commands.send_nowait(self._command)
            self._submitted = True
        except trio.WouldBlock:
            pass  # the router is busy: ``outcome`` waits for room, within the deadline
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            self._submitted = None

    def when_settled(self, then: Callable[[], None]) -> bool:
        """Call *then* once the outcome is in, and return True; False (nothing registered) if the input is not
        with the router yet: ``outcome`` must run now to hand it over."""
        if not self._submitted:
            return False
        self._reply.when_delivered(then)
        return True

    def outcome_now(self) -> Outcome:
        """The outcome, once ``when_settled`` has called back (it is in: no waiting)."""
        try:
            return self._reply.receive_nowait()
        except trio.EndOfChannel:
            return ShuttingDown()  # closed with no outcome: only the router's shutdown does that

    async def outcome(self) -> Outcome:
        """The one outcome, at the request's deadline at the latest. Await it once."""
        if self._submitted is None:
            return ShuttingDown()
        if not self._submitted:
            with trio.move_on_at(self._command.deadline) as scope:
                try:
                    await self._commands.send(self._command)
                except (trio.BrokenResourceError, trio.ClosedResourceError):
                    return ShuttingDown()
            if scope.cancelled_caught:
                return NotReady()  # the router never took it: nothing was sent
        await self._reply.wait()
        return self.outcome_now()


class AccountClient:
    def __init__(self, commands: trio.MemorySendChannel[AccountCommand], board: SessionBoard,
                 channels: ChannelBoard | None = None) -> None:
        self._commands = commands
        self.board = board
        self.channels = channels or ChannelBoard()  # for status: each channel's size and peak use

    def status(self) -> SessionSnapshot:
        return self.board.snapshot()

    def start(self, spec: InputSpec, *, request_id: str, deadline: float) -> PendingInput:
        """Hand an input to the router now, without a checkpoint when its inbox has room (the usual case): the
        router takes it in the very next scheduling round. ``PendingInput.outcome`` waits for the result."""
        pending = PendingInput(self._commands, spec, request_id, deadline)
        pending.try_submit()
        return pending

    async def start_many(self, specs: list[InputSpec], *, request_id: str, deadline: float) -> list[PendingInput]:
        """Hand several inputs to the router in one command; each ``PendingInput.outcome`` waits for its result."""
        pending = [PendingInput(self._commands, spec, request_id, deadline) for spec in specs]
        with trio.move_on_at(deadline):  # if it strikes, each outcome() says NotReady: nothing was handed over
            try:
                await self._commands.send(InputBatch(tuple(p.command for p in pending)))
            except (trio.BrokenResourceError, trio.ClosedResourceError):
                for p in pending:
                    p.router_gone()
                return pending
            for p in pending:
                p.submitted()
        return pending

    async def send(self, spec: InputSpec, *, request_id: str, deadline: float) -> Outcome:
        """One input; its outcome by *deadline* (trio time) at the latest. Exactly one outcome, always."""
        return await self.start(spec, request_id=request_id, deadline=deadline).outcome()

    async def read(self, query: Callable[[AccountView], T]) -> T:
        """*query* run over the router's live state, between two of its events."""
        reply_in, replies = trio.open_memory_channel[Any](1)
        async with replies:
            await self._commands.send(Read(query, reply_in))
            result: T = await replies.receive()
            return result

    async def read_synced(self, book: str, query: Callable[[AccountView], T]) -> T:
        """*query* over the live state once book *book* (``wallets``, ``credits``, ``loans``) holds the snapshot of
        a link that is up: at once if it does. Bound it with the request's deadline."""
        reply_in, replies = trio.open_memory_channel[Any](1)
        async with replies:
            await self._commands.send(ReadSynced(book, query, reply_in))
            result: T = await replies.receive()
            return result

    async def request_calc(self, *, refresh: bool) -> None:
        """Ask for funding wallets' available balances (all with *refresh*, else the unknown ones); no answer."""
        await self._commands.send(RequestCalc(refresh))

    async def offer_gone(self, offer_id: int) -> FundingOffer | None:
        """Once offer *offer_id* is off the book: its last state (None if it was not on the book)."""
        reply_in, replies = trio.open_memory_channel[FundingOffer | None](1)
        async with replies:
            await self._commands.send(AwaitGone(offer_id, reply_in))
            return await replies.receive()

    async def set_pace(self, settings: AccountSettings) -> None:
        await self._commands.send(SetPace(settings.inputs_per_second, settings.input_burst))

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
