"""The account-info router: the offer book, the pending cancels, and the watchers.

Rules (the contract's "semantics that users rely on"):
- One pending entry per offer id. A second cancel of the same offer joins the entry: one ``foc`` frame, every
  requester answered by the same notification.
- The session is ``ready`` (the router says so on the board) once its link is both authenticated (the auth
  actor's ``SessionReady``) and synchronised (its ``fos`` snapshot applied): only then do ``offers`` and
  ``cancel_all`` see the live book. A ``foc`` frame goes out only on a ready link; until then the entry waits,
  and the requester's own deadline bounds the wait.
- A ``foc-req`` notification settles the entry of its offer id. One without an id settles the oldest
  unanswered ``foc`` of the current link: the exchange answers the inputs of one connection in order.
  A notification reaches only the requesters of its offer (and the watchers, who asked for everything).
- When a link dies, entries whose frame went out on it are *in doubt*. The fresh ``fos`` snapshot after the
  next auth settles them: still active → sent again; gone → ``NoLongerActive``.
- Every entry leaves the table on every path: answer, all requesters gone (swept), shutdown.
- The router never blocks on a requester or a watcher (replies have room for everything they will be sent;
  a watcher that lags is cut off) nor on the writer (frames that do not fit wait in a backlog, in order).
"""

from __future__ import annotations

from collections import Counter, deque

import attrs
import structlog
import trio

from bfxd.actors.channels import take_waiting
from bfxd.actors.messages import (
    AccountCommand,
    Answered,
    CancelCommand,
    CancelOutcome,
    FromLink,
    LinkDown,
    NoLongerActive,
    NotificationWatchEvent,
    OffersQuery,
    OfferWatchEvent,
    OutboundFrame,
    Probe,
    SessionHeld,
    SessionReady,
    ShuttingDown,
    Subscribe,
    WatcherCutOff,
    WatchEvent,
)
from bfxd.actors.session import SessionBoard
from bfxd.protocol import (
    Notification,
    OfferBook,
    OfferCancel,
    OfferNew,
    OffersSnapshot,
    OfferUpdate,
    cancel_offer_frame,
)

log = structlog.get_logger()

RouterInput = FromLink | LinkDown | SessionReady | SessionHeld


@attrs.define
class _Pending:
    offer_id: int
    requesters: list[CancelCommand]  # those still waiting
    request_ids: list[str]  # everyone who asked, for the log
    sent_on: int | None = None  # link generation the foc frame went out on; None: not sent (again) yet
    in_doubt: bool = False  # sent on a link that died before the answer came
    announced: bool = False  # the requesters' receipts say the frame went out


async def run_account(
    *,
    board: SessionBoard,
    commands: trio.MemoryReceiveChannel[AccountCommand],
    events: trio.MemoryReceiveChannel[RouterInput],
    frames: trio.MemorySendChannel[OutboundFrame],
    sweep_interval: float = 1.0,
    task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Route until *commands* ends (the inbox is done); then answer what is left ``ShuttingDown``."""
    async with commands, events, frames:
        structlog.contextvars.bind_contextvars(actor="account")
        router = AccountRouter(board, frames)
        task_status.started()
        try:
            async with trio.open_nursery() as nursery:
                nursery.start_soon(router.consume, events)
                nursery.start_soon(router.flush_backlog)
                nursery.start_soon(router.sweep_every, sweep_interval)
                async for command in commands:
                    router.on_command(command)
                    for waiting in take_waiting(commands):
                        router.on_command(waiting)
                nursery.cancel_scope.cancel()
        finally:
            router.shut_down()


class AccountRouter:
    """The router's state and its synchronous handlers; the tasks in ``run_account`` feed it."""

    def __init__(self, board: SessionBoard, frames: trio.MemorySendChannel[OutboundFrame]) -> None:
        self.board = board
        self.book = OfferBook()
        self._frames = frames
        self._pending: dict[int, _Pending] = {}
        # Every foc frame on the current link not answered yet, oldest first. Frames whose requesters left stay
        # in line: their answers still come, in order, and must not be taken for the answer to a younger frame.
        self._unanswered = _SendOrder()
        self._ready_generation: int | None = None  # the link inputs may go out on: authenticated and synced
        self._authenticated_generation: int | None = None
        self._synced_generation: int | None = None  # the link whose fos snapshot the book holds
        self._last_dead_generation = 0
        self._watchers: list[trio.MemorySendChannel[WatchEvent]] = []
        self._answered = 0  # outcomes delivered so far
        self._backlog: deque[OutboundFrame] = deque()
        self._backlog_waiting = trio.Event()

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
                    # A requester was answered: let it write its answer before the rest of the burst (the
                    # foc update that came with the notification, its log line, the watchers). Tasks woken
                    # now run in trio's next batch, in either order with this one; after a second checkpoint
                    # they all have. Once per burst, so a burst of answers costs two checkpoints, not two each.
                    yielded = True
                    await trio.lowlevel.checkpoint()
                    await trio.lowlevel.checkpoint()

    async def flush_backlog(self) -> None:
        """Move frames that did not fit in the channel, in order, blocking here instead of in the router."""
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

    async def sweep_every(self, interval: float) -> None:
        while True:
            await trio.sleep(interval)
            self.sweep()

    # ---- commands ---------------------------------------------------------------------------------------

    def on_command(self, command: AccountCommand) -> None:
        if isinstance(command, CancelCommand):
            self._on_cancel(command)
        elif isinstance(command, OffersQuery):
            _deliver(command.reply, self.book.offers(command.symbol))
        elif isinstance(command, Subscribe):
            self._watchers.append(command.events)
        elif isinstance(command, Probe):
            _deliver(command.reply, None)

    def _on_cancel(self, command: CancelCommand) -> None:
        entry = self._pending.get(command.offer_id)
        if entry is not None and not self._prune(entry):
            # Everyone who asked before has left (their deadlines passed): a retry must not wait on a frame
            # that was lost or refused, so it is a new entry with a frame of its own.
            entry = None
        if entry is not None:
            entry.requesters.append(command)
            entry.request_ids.append(command.request_id)
            log.info("cancel.joined", offer_id=command.offer_id, request_id=command.request_id,
                     sharing_with=entry.request_ids[0])
            command.receipt.sent = entry.announced
            return
        entry = _Pending(command.offer_id, [command], [command.request_id])
        self._pending[command.offer_id] = entry
        self.board.pending = len(self._pending)
        if self._ready_generation is not None:
            self._send_cancel(entry)

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
        elif isinstance(message, LinkDown):
            self._last_dead_generation = max(self._last_dead_generation, message.generation)
            self._ready_generation = self._authenticated_generation = self._synced_generation = None
            self._unanswered.clear()
            for entry in self._pending.values():
                if entry.sent_on is not None:
                    entry.sent_on, entry.in_doubt = None, True

    def _on_exchange_event(self, generation: int, event: object) -> None:
        if isinstance(event, Notification):
            self._on_notification(generation, event)
        elif isinstance(event, (OffersSnapshot, OfferNew, OfferUpdate, OfferCancel)):
            for change in self.book.apply(event):
                log.info(f"offer.{change.action}", offer_id=change.offer.id, symbol=change.offer.symbol,
                         status=change.offer.status, amount=change.offer.amount, rate=change.offer.rate)
                if self._watchers:
                    self._broadcast(OfferWatchEvent.rendered(change))
            self.board.offers = len(self.book)
            if isinstance(event, OffersSnapshot) and generation > self._last_dead_generation:
                self._synced_generation = generation
                self._settle_in_doubt()
                self._become_ready_if_synced()

    def _become_ready_if_synced(self) -> None:
        generation = self._authenticated_generation
        if generation is None or generation != self._synced_generation or generation == self._ready_generation:
            return
        self._ready_generation = generation
        self.board.set_state("ready")
        for entry in list(self._pending.values()):
            if entry.sent_on is None and not entry.in_doubt:
                self._send_cancel(entry)

    def _on_notification(self, generation: int, note: Notification) -> None:
        if self._watchers:
            self._broadcast(NotificationWatchEvent.rendered(note))
        if note.type != "foc-req":
            log.info("notification.received", type=note.type, status=note.status, text=note.text,
                     offer_id=note.offer_id)
            return
        offer_id = note.offer_id
        matched_by = "offer_id"
        if offer_id is None:
            # the current link, not only the ready one: during maintenance the link and its queue live on
            oldest = self._unanswered.pop_oldest(generation)
            if oldest is not None:
                offer_id, matched_by = oldest, "order"
        else:
            self._unanswered.answered(generation, offer_id)
        entry = self._pending.get(offer_id) if offer_id is not None else None
        log.info("notification.received", type=note.type, status=note.status, text=note.text,
                 offer_id=offer_id, matched_by=matched_by if entry else None,
                 request_ids=entry.request_ids if entry else [])
        if entry is not None:
            self._settle(entry, Answered(note))

    def _settle_in_doubt(self) -> None:
        """After a fresh snapshot: still active → queued to be sent again once ready; gone → NoLongerActive."""
        for entry in [e for e in self._pending.values() if e.in_doubt]:
            if entry.offer_id in self.book:
                entry.in_doubt = False
                log.info("cancel.resend", offer_id=entry.offer_id, request_ids=entry.request_ids)
                if self._ready_generation is not None:
                    self._send_cancel(entry)
            else:
                log.info("cancel.settled_by_snapshot", offer_id=entry.offer_id, request_ids=entry.request_ids)
                self._settle(entry, NoLongerActive(entry.offer_id))

    # ---- helpers ----------------------------------------------------------------------------------------

    def _send_cancel(self, entry: _Pending) -> None:
        generation = self._ready_generation
        assert generation is not None
        if not self._prune(entry):
            return  # every requester left (NotReady promised them no frame would go out): send nothing
        entry.sent_on = generation
        self._unanswered.sent(generation, entry.offer_id)
        frame = OutboundFrame(generation, cancel_offer_frame(entry.offer_id), "foc",
                              {"offer_id": entry.offer_id, "request_ids": list(entry.request_ids)})
        self._send_frame(frame)
        entry.announced = True
        for requester in entry.requesters:
            requester.receipt.sent = True

    def _send_frame(self, frame: OutboundFrame) -> None:
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

    def _settle(self, entry: _Pending, outcome: CancelOutcome) -> None:
        if self._pending.get(entry.offer_id) is entry:
            del self._pending[entry.offer_id]
        self.board.pending = len(self._pending)
        for requester in entry.requesters:
            _deliver(requester.reply, outcome)
        self._answered += 1

    def sweep(self) -> None:
        """Forget requesters that left (deadline or disconnect); drop entries nobody waits for any more."""
        for entry in list(self._pending.values()):
            self._prune(entry)
        self.board.pending = len(self._pending)

    def _prune(self, entry: _Pending) -> bool:
        """Forget the requesters of *entry* that left; drop the entry if none is left. True if one still waits."""
        alive: list[CancelCommand] = []
        for requester in entry.requesters:
            if requester.reply.statistics().open_receive_channels > 0:
                alive.append(requester)
            else:
                requester.reply.close()
        entry.requesters = alive
        if alive:
            return True
        if self._pending.get(entry.offer_id) is entry:
            del self._pending[entry.offer_id]
            self.board.pending = len(self._pending)
            log.info("cancel.abandoned", offer_id=entry.offer_id, request_ids=entry.request_ids,
                     frame_sent=entry.announced)
        return False

    def _broadcast(self, event: WatchEvent) -> None:
        for watcher in list(self._watchers):
            try:
                watcher.send_nowait(event)
            except trio.WouldBlock:
                # Cut off, not waited for (that would stall every client) and not silently skipped (it would
                # believe it saw every change). Its handler drains, then tells the client why.
                log.warning("watch.client_lagging", buffered=watcher.statistics().current_buffer_used)
                self._watchers.remove(watcher)
                watcher.close()
            except trio.BrokenResourceError:
                self._watchers.remove(watcher)  # the client left
                watcher.close()

    def shut_down(self) -> None:
        for entry in list(self._pending.values()):
            self._settle(entry, ShuttingDown())
        for watcher in self._watchers:
            _deliver(watcher, WatcherCutOff("daemon stopping"))
        self._watchers.clear()


class _SendOrder:
    """The foc frames of the current link that await an answer, in send order, every operation O(1).

    An answer by offer id takes that frame out of line; an answer without an id takes the oldest frame still in
    line. Frames answered by id stay in the deque as tombstones, skipped when they reach the front, so the
    router never scans the line on the per-notification path (a cancel_all of thousands of offers).
    """

    def __init__(self) -> None:
        self._order: deque[tuple[int, int]] = deque()
        self._waiting: Counter[tuple[int, int]] = Counter()  # frames in line, per (generation, offer id)
        self._tombstones: Counter[tuple[int, int]] = Counter()  # of those, answered by id already

    def sent(self, generation: int, offer_id: int) -> None:
        self._order.append((generation, offer_id))
        self._waiting[(generation, offer_id)] += 1

    def answered(self, generation: int, offer_id: int) -> None:
        key = (generation, offer_id)
        if self._waiting[key] > self._tombstones[key]:
            self._tombstones[key] += 1  # the oldest of its frames: it is the next of them to reach the front

    def pop_oldest(self, generation: int) -> int | None:
        """The offer id of the oldest unanswered frame, if it went out on *generation*; it leaves the line."""
        while self._order:
            key = self._order[0]
            if self._tombstones[key]:
                self._tombstones[key] -= 1
                self._drop_front(key)
                continue
            if key[0] != generation:
                return None
            self._drop_front(key)
            return key[1]
        return None

    def clear(self) -> None:
        self._order.clear()
        self._waiting.clear()
        self._tombstones.clear()

    def _drop_front(self, key: tuple[int, int]) -> None:
        self._order.popleft()
        self._waiting[key] -= 1
        if not self._waiting[key]:
            del self._waiting[key]
            self._tombstones.pop(key, None)


def _deliver(channel: trio.MemorySendChannel, value: object) -> None:  # type: ignore[type-arg]
    """Send the one and only reply without ever blocking the router; a requester that left is simply skipped."""
    try:
        channel.send_nowait(value)
    except (trio.WouldBlock, trio.BrokenResourceError, trio.ClosedResourceError):
        pass
    channel.close()
