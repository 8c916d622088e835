"""The account-info router: a thin shell around the input machine, the offer book and the watchers.

The rules of inputs in flight (joins, matching answers, drops, deadlines) live in the pure
``bfxd.protocol.inputs.InputMachine``; this actor feeds it what happens and carries out what it returns: frames to
the link's writer, one outcome per requester, audit lines. It also keeps the session's readiness:

- The session is ``ready`` (the router says so on the board) once its link is both authenticated (the auth
  actor's ``SessionReady``) and synchronised (its ``fos`` snapshot applied): only then do ``offers`` and
  ``cancel_all`` see the live book, and only then may inputs go out.
- The machine's deadlines are kept by one timer task here, so a requester needs no timeout of its own.
- The router never blocks on a requester or a watcher (replies have room for everything they will be sent;
  a watcher that lags is cut off) nor on the writer (frames that do not fit wait in a backlog, in order).
- Wallets, credits and loans: ``account_state.AccountState``. A ``calc`` takes its turn under the input pace like
  any input, at most once per ``CALC_INTERVAL_S`` (``CalcSchedule``), with no answer to wait for.
"""

from __future__ import annotations

import math
from collections import deque

import structlog
import trio

from bfxd.actors.account_settings import AccountSettings
from bfxd.actors.account_state import ACCOUNT_EVENTS, AccountState, CalcSchedule
from bfxd.actors.channels import deliver_once, take_waiting
from bfxd.actors.frame_outbox import FrameOutbox
from bfxd.actors.messages import (
    AccountCommand,
    AwaitGone,
    FromLink,
    InputBatch,
    InputCommand,
    LinesWatchEvent,
    LinkDown,
    NotificationWatchEvent,
    OfferWatchEvent,
    OutboundFrame,
    Probe,
    Read,
    ReadSynced,
    RequestCalc,
    Requester,
    SessionHeld,
    SessionReady,
    SetPace,
    Subscribe,
    WatcherCutOff,
)
from bfxd.actors.session import SessionBoard
from bfxd.actors.watchers import Watchers
from bfxd.protocol import (
    ErrorEvent,
    FundingOffer,
    Notification,
    OfferBook,
    OfferCancel,
    OfferNew,
    OffersSnapshot,
    OfferUpdate,
    calc_frame,
)
from bfxd.protocol.input_effects import Effect, Record, Routed, SendFrame, Settle
from bfxd.protocol.input_kinds import NotReady
from bfxd.protocol.inputs import InputMachine
from bfxd.protocol.pacing import Pace

log = structlog.get_logger()

RouterInput = FromLink | LinkDown | SessionReady | SessionHeld
CALC_TURN = None  # a calc frame's place in the pacer's queue: its keys are taken when its turn comes

# Audit names of book changes, spelled out so each can be found with grep.
_OFFER_EVENTS = {"snapshot": "offer.snapshot", "new": "offer.new", "update": "offer.update", "cancel": "offer.cancel"}


async def run_account(
    *,
    board: SessionBoard,
    commands: trio.MemoryReceiveChannel[AccountCommand],
    events: trio.MemoryReceiveChannel[RouterInput],
    frames: trio.MemorySendChannel[OutboundFrame],
    settings: AccountSettings,
    task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Route until *commands* ends (the inbox is done); then answer what is left ``ShuttingDown``."""
    async with commands, events, frames:
        structlog.contextvars.bind_contextvars(actor="account")
        router = AccountRouter(board, frames, Pace(settings.inputs_per_second, settings.input_burst))
        task_status.started()
        try:
            async with trio.open_nursery() as nursery:
                nursery.start_soon(router.consume, events)
                nursery.start_soon(router.outbox.run)
                nursery.start_soon(router.expire_deadlines)
                nursery.start_soon(router.pace_inputs)
                nursery.start_soon(router.pace_calcs)
                async for command in commands:
                    router.on_command(command)
                    for waiting in take_waiting(commands):
                        router.on_command(waiting)
                nursery.cancel_scope.cancel()
        finally:
            router.shut_down()


class AccountRouter:
    """The router's state and its synchronous handlers; the tasks in ``run_account`` feed it."""

    def __init__(self, board: SessionBoard, frames: trio.MemorySendChannel[OutboundFrame], pace: Pace) -> None:
        self.board = board
        self.book = OfferBook()
        self.inputs = InputMachine(self.book)
        self.pace = pace
        self._turns: deque[SendFrame | None] = deque()  # inputs waiting for their turn under the pace, in order
        self.account = AccountState()
        self.calcs = CalcSchedule()
        self._calc_waiting = trio.Event()
        self._turn_waiting = trio.Event()
        self._gone_waiters: dict[int, list[trio.MemorySendChannel[FundingOffer | None]]] = {}
        self.outbox = FrameOutbox(frames)
        self._note_queue()
        self._ready_generation: int | None = None  # the link inputs may go out on: authenticated and synced
        self._authenticated_generation: int | None = None
        self._synced_generation: int | None = None  # the link whose fos snapshot the book holds
        self._last_dead_generation = 0
        self._watchers = Watchers()
        self._answered = 0  # outcomes delivered so far
        self._timer = trio.CancelScope()  # its deadline is the machine's next one

    # What a Read query may look at (messages.AccountView), besides the offer book.
    wallets = property(lambda self: self.account.wallets)
    credits = property(lambda self: self.account.credits)
    loans = property(lambda self: self.account.loans)

    # ---- tasks ------------------------------------------------------------------------------------------

    async def consume(self, events: trio.MemoryReceiveChannel[RouterInput]) -> None:
        while True:
            try:
                burst = [await events.receive(), *take_waiting(events)]
            except trio.EndOfChannel:
                return
            answered_before, yielded = self._answered, False
            for index, message in enumerate(burst):
                self.on_event(message)
                if not yielded and self._answered > answered_before and index + 1 < len(burst):
                    # A requester was answered: let its task (if it has one: most are finished at once,
                    # late_starts.py) write its answer before the rest of the burst (the foc update that came
                    # with the notification, its log line, the watchers). Tasks woken now run in trio's next
                    # batch, in either order with this one; after a second checkpoint they all have. Once per
                    # burst, so a burst of answers costs two checkpoints, not two each. Kept for requests
                    # finished at once too: the two batches let the clients' next requests in, and dropping
                    # them took 100 clients from 1.5 to 3.1 task steps and 1.22 x the CPU per cancel.
                    yielded = True
                    await trio.lowlevel.checkpoint()
                    await trio.lowlevel.checkpoint()

    async def expire_deadlines(self) -> None:
        """Settle requesters whose deadline passed; the timer's deadline follows the machine's next one."""
        while True:
            self._timer = trio.CancelScope(deadline=self.inputs.next_deadline() or math.inf)
            with self._timer:
                await trio.sleep_forever()
            self._carry_out(self.inputs.expire(trio.current_time()))

    async def pace_inputs(self) -> None:
        """Give queued inputs their turns, in order, as the pace allows."""
        while True:
            await self._turn_waiting.wait()
            self._turn_waiting = trio.Event()
            while self._turns:
                turn = self._turns[0]
                if not (self._ready_generation is not None if turn is None else self.inputs.wanted(turn.token)):
                    self._turns.popleft()  # its requesters left, or its link is gone: it takes no turn
                    self.calcs.queued &= turn is not CALC_TURN  # a calc waits for the next ready session
                    continue
                wait = self.pace.wait(trio.current_time())
                if wait > 0:
                    await trio.sleep(wait)
                    continue
                self.pace.take(trio.current_time())
                self._give_turn(self._turns.popleft())
            self._note_queue()

    async def pace_calcs(self) -> None:
        """Queue a calc turn for the wanted keys once the calc interval allows, while a session is ready."""
        while True:
            await self._calc_waiting.wait()
            self._calc_waiting = trio.Event()
            while self._ready_generation is not None and (due := self.calcs.due(trio.current_time())) is not None:
                if due > trio.current_time():
                    await trio.sleep_until(due)
                    continue  # the link may have gone meanwhile
                self.calcs.queued = True
                self._queue_turn(CALC_TURN)

    # ---- commands ---------------------------------------------------------------------------------------

    def on_command(self, command: AccountCommand) -> None:
        if isinstance(command, InputCommand):
            self._on_input(command)
        elif isinstance(command, InputBatch):
            for each in command.commands:
                self._on_input(each)
        elif isinstance(command, Read):
            deliver_once(command.reply, command.query(self))
        elif isinstance(command, ReadSynced):
            if self.account.hold_unless_synced(command):
                deliver_once(command.reply, command.query(self))
        elif isinstance(command, RequestCalc):
            self._want_calc(self.account.calc_keys(refresh=command.refresh))
        elif isinstance(command, AwaitGone):
            if command.offer_id in self.book:
                self._gone_waiters.setdefault(command.offer_id, []).append(command.reply)
            else:
                deliver_once(command.reply, None)
        elif isinstance(command, SetPace):
            self.pace = Pace(command.per_second, command.burst)
            self._turn_waiting.set()  # the pacer re-reads the pace for what is queued
            self._note_queue()
        elif isinstance(command, Subscribe):
            self._watchers.add(command.events)
        elif isinstance(command, Probe):
            deliver_once(command.reply, None)

    def _on_input(self, command: InputCommand) -> None:
        if command.deadline <= trio.current_time():
            # It waited in the command channel past its deadline (a router far behind): its requester has been
            # told nothing yet, and nothing is sent for it, as when the channel had no room until the deadline.
            command.requester.reply.deliver(NotReady())
            self._answered += 1
            return
        self._carry_out(self.inputs.request(command.requester, command.spec, command.deadline))
        if command.deadline < self._timer.deadline:
            self._timer.deadline = command.deadline

    # ---- exchange side ----------------------------------------------------------------------------------

    def on_event(self, message: RouterInput) -> None:
        if isinstance(message, FromLink):
            self._on_exchange_event(message.generation, message.event)
        elif isinstance(message, SessionReady):
            if message.generation <= self._last_dead_generation:
                return  # that link died while auth was announcing it
            self._authenticated_generation = message.generation
            self._become_ready_if_synced()
        elif isinstance(message, SessionHeld):
            if message.generation == self._authenticated_generation:
                self._authenticated_generation = self._ready_generation = None
                self._carry_out(self.inputs.held())
        elif isinstance(message, LinkDown):
            if _rate_limited(message.reason):
                self.slow_down(message.reason)
            self._last_dead_generation = max(self._last_dead_generation, message.generation)
            self._ready_generation = self._authenticated_generation = self._synced_generation = None
            self.account.link_down()
            self.calcs.clear()
            self._carry_out(self.inputs.link_down())

    def _on_exchange_event(self, generation: int, event: object) -> None:
        if isinstance(event, ErrorEvent):
            if _rate_limited(event.message):
                self.slow_down(event.message)
        elif isinstance(event, Notification):
            if self._watchers:
                self._watchers.broadcast(NotificationWatchEvent.rendered(event))
            effects = self.inputs.notification(generation, event)
            if not effects:
                log.info("notification.received", type=event.type, status=event.status, text=event.text,
                         offer_id=event.offer_id)
            self._carry_out(effects)
        elif isinstance(event, (OffersSnapshot, OfferNew, OfferUpdate, OfferCancel)):
            # A snapshot's changes reach each watcher as one item, however many offers: thousands of items at
            # once would overflow a healthy watcher's buffer and cut it off on every reconnect.
            burst: list[OfferWatchEvent] = []
            for change in self.book.apply(event):
                log.info(_OFFER_EVENTS[change.action], offer_id=change.offer.id, symbol=change.offer.symbol,
                         status=change.offer.status, amount=change.offer.amount, rate=change.offer.rate)
                if self._watchers:
                    burst.append(OfferWatchEvent.rendered(change))
                if change.action == "cancel" and change.offer.id in self._gone_waiters:
                    for reply in self._gone_waiters.pop(change.offer.id):
                        deliver_once(reply, change.offer)
            if len(burst) == 1:
                self._watchers.broadcast(burst[0])
            elif burst:
                self._watchers.broadcast(LinesWatchEvent(b"".join(e.line for e in burst)))
            self.board.offers = len(self.book)
            if isinstance(event, OffersSnapshot) and generation > self._last_dead_generation:
                self._synced_generation = generation
                self._carry_out(self.inputs.snapshot_applied())
                self._become_ready_if_synced()
        elif isinstance(event, ACCOUNT_EVENTS):
            self._on_account_event(generation, event)

    def _on_account_event(self, generation: int, event: object) -> None:
        applied = self.account.apply(generation, event, live_link=generation > self._last_dead_generation,
                                     watched=bool(self._watchers))
        for name, fields in applied.logs:
            (log.warning if name == "exchange.bad_row" else log.info)(name, **fields)
        if len(applied.watch) == 1:
            self._watchers.broadcast(applied.watch[0])
        elif applied.watch:  # a snapshot: one item per watcher, however many rows (see the offers above)
            self._watchers.broadcast(LinesWatchEvent(b"".join(e.line for e in applied.watch)))
        for read in applied.reads:
            deliver_once(read.reply, read.query(self))
        self._want_calc(applied.calc)

    def _want_calc(self, keys: list[str]) -> None:
        if keys:
            self.calcs.want(keys)
            self._calc_waiting.set()

    def _become_ready_if_synced(self) -> None:
        generation = self._authenticated_generation
        if generation is None or generation != self._synced_generation or generation == self._ready_generation:
            return
        self._ready_generation = generation
        self.board.set_state("ready")
        self._carry_out(self.inputs.ready(generation))
        self._calc_waiting.set()  # calcs wanted before the session was ready may go now

    # ---- the machine's effects --------------------------------------------------------------------------

    def _carry_out(self, effects: list[Effect]) -> None:
        settled: list[Settle] = []
        for effect in effects:
            if isinstance(effect, Settle):
                settled.append(effect)
            elif isinstance(effect, SendFrame):
                self._queue_turn(effect)
            elif isinstance(effect, Routed):
                note = effect.notification
                event = "notification.received" if effect.unmatched is None else "notification.unmatched"
                log.info(event, type=note.type, status=note.status, text=note.text,
                         **{"offer_id": note.offer_id, **effect.fields}, matched_by=effect.matched_by,
                         request_ids=_ids(effect.requesters), reason=effect.unmatched)
            else:
                assert isinstance(effect, Record)
                log.info(effect.event, **effect.fields, request_ids=_ids(effect.requesters))
        # Outcomes last: a delivery may finish its request at once (late_starts.py), whose command.completed
        # must follow the lines above (the notification that answered it) in the audit trail.
        for settle in settled:
            requester = settle.requester
            assert isinstance(requester, Requester)
            requester.reply.deliver(settle.outcome)
            self._answered += 1
        self.board.pending = self.inputs.pending

    def _queue_turn(self, turn: SendFrame | None) -> None:
        if not self._turns and self.pace.take(trio.current_time()):
            self._give_turn(turn)  # the usual case: a turn is free, the frame goes out now
        else:
            self._turns.append(turn)
            self._turn_waiting.set()
            self._note_queue()

    def _give_turn(self, send: SendFrame | None) -> None:
        if send is None:  # CALC_TURN; the pacer (or pace_calcs) saw a ready session
            if keys := self.calcs.take(trio.current_time()):  # none: a link went down since it was queued
                self.outbox.send(OutboundFrame(self._ready_generation or 0, calc_frame(keys), "calc",
                                               {"requests": keys}))
            self._calc_waiting.set()  # more keys than one batch: the next one after the interval
        elif self.inputs.frame_sent(send.token):
            self.outbox.send(OutboundFrame(send.link, send.text, send.kind,
                                           {**send.audit, "request_ids": _ids(send.requesters)}))

    def _note_queue(self) -> None:
        self.board.queued_inputs = len(self._turns)
        self.board.pace = self.pace.current

    def slow_down(self, why: str) -> None:
        """The exchange refused an input for its rate: halve the pace until a quiet minute passes."""
        self.pace.limited(trio.current_time())
        log.warning("exchange.rate_limited", reason=why, inputs_per_second=round(self.pace.current, 3),
                    queued=len(self._turns))
        self._note_queue()

    def shut_down(self) -> None:
        self._carry_out(self.inputs.shut_down())
        for replies in self._gone_waiters.values():
            for reply in replies:
                reply.close()  # no answer: the waiter sees the end of the channel (the daemon is stopping)
        self._gone_waiters.clear()
        self.account.shut_down()
        self._watchers.end_all(WatcherCutOff("daemon stopping"))


def _rate_limited(text: str) -> bool:
    """The exchange's rate-limit refusals: "ERR_RATE_LIMIT" (an error event, or the reason of its close)."""
    return "rate_limit" in text.lower() or "ratelimit" in text.lower()


def _ids(requesters: tuple[object, ...]) -> list[str]:
    return [r.request_id for r in requesters if isinstance(r, Requester)]
