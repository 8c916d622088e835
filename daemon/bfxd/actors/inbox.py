"""The command inbox: the Unix socket server that turns client lines into requests and answers.

Per client: one reader (frames lines, parses and logs them, begins each request through its row in the
operations table, so an exchange input reaches the router at once, and starts a task per request to wait for
its answer), one writer (drains a bounded per-client queue in batches), and the request tasks. A final answer
goes straight to the socket when nothing is queued and no send is in progress, else through the queue
(``_Output``); watch lines always queue. A client may pipeline: answers go out as their requests finish, each
carrying its ``ref``.

Isolation: nothing a client sends can disturb another. Bad lines are answered ``bad_request`` and the
connection stays usable; a line over 64 KiB is answered, then the connection is closed. A client that leaves
mid-request does not cancel the exchange-side work: the request runs to its outcome, which is logged.

Shutdown (``stop`` set): accepting stops; requests that arrive now are answered ``shutting_down``; requests that
write to the exchange get *shutdown_grace* seconds; then the command channel closes, so the account router
answers whatever is left ``shutting_down`` too, and every client gets its last answers before its connection
closes.
"""

from __future__ import annotations

import itertools
from collections.abc import Awaitable, Callable, Iterator
from functools import partial

import attrs
import structlog
import trio

from bfxd.actors.api import AccountClient
from bfxd.actors.channels import hand_over, take_waiting
from bfxd.actors.messages import WatcherCutOff, WatchEvent
from bfxd.actors.ops import OPS, Op, OpContext
from bfxd.actors.replies import Answer
from bfxd.protocol import client_wire as wire
from bfxd.protocol.client_requests import parse_request
from bfxd.protocol.client_wire import LineBuffer, LineTooLong
from bfxd.unix_socket import PeerCred, peer_credentials

log = structlog.get_logger()

_RECEIVE_BYTES = 64 * 1024
_WATCH_BATCH = 256  # lines moved per turn at most, by a watch's forwarder and by the writer: a whole queue
_LINGER_S = 1.0  # how long a closing connection keeps reading (and discarding) for the client to close first


@attrs.frozen
class InboxSettings:
    # From the config (settings.py derives them; the defaults live in config.py only).
    allowed_uids: tuple[int, ...]
    max_clients: int
    request_timeout: float
    shutdown_grace: float
    # Answers waiting for a slow reader; beyond it the client's own requests wait (backpressure on it alone).
    client_buffer: int = 256
    # Requests one client may have in flight; more are read only as earlier ones finish.
    max_inflight: int = 1024
    # Watch events buffered per watcher before it counts as lagging and is cut off.
    watch_buffer: int = 1024
    # How long a stopping daemon waits for clients to read their last answers.
    flush_timeout: float = 2.0


async def run_inbox(
    listener: trio.SocketListener,
    *,
    account: AccountClient,
    commands: trio.MemorySendChannel[object],
    settings: InboxSettings,
    stop: trio.Event,
    task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Serve clients until *stop* is set and every request has its answer; then close *commands*."""
    inbox = _Inbox(account, settings, stop)
    async with commands:  # closing it after the drain tells the router no more work will come
        structlog.contextvars.bind_contextvars(actor="inbox")
        async with trio.open_nursery() as clients:
            async with trio.open_nursery() as accepting:
                await accepting.start(partial(trio.serve_listeners, inbox.serve_client, [listener],
                                              handler_nursery=clients))
                task_status.started()
                await stop.wait()
                accepting.cancel_scope.cancel()
            log.info("inbox.stopped_accepting", clients=inbox.clients, inflight_writes=inbox.inflight_writes)
            with trio.move_on_after(settings.shutdown_grace):
                await inbox.wait_writes_done()
            await commands.aclose()  # the router answers what is left ShuttingDown and ends the watches
            inbox.stop_reading()
            clients.cancel_scope.deadline = trio.current_time() + settings.flush_timeout  # backstop


class _Inbox:
    def __init__(self, account: AccountClient, settings: InboxSettings, stop: trio.Event) -> None:
        self.account, self.settings, self.stop = account, settings, stop
        self.client_ids = itertools.count(1)
        self.clients = 0
        self.inflight_writes = 0
        self._writes_done = trio.Event()
        self._reader_scopes: set[trio.CancelScope] = set()

    async def wait_writes_done(self) -> None:
        while self.inflight_writes:
            await self._writes_done.wait()

    def stop_reading(self) -> None:
        """Stopping: read no more requests; each client gets its last answers, then its connection closes."""
        for scope in list(self._reader_scopes):
            scope.cancel()

    async def serve_client(self, stream: trio.SocketStream) -> None:
        client_id = next(self.client_ids)
        try:
            peer = peer_credentials(stream.socket)
        except OSError:
            peer = PeerCred(-1, -1, -1)
        with structlog.contextvars.bound_contextvars(client_id=client_id, peer_pid=peer.pid, peer_uid=peer.uid,
                                                     peer_gid=peer.gid):
            self.clients += 1
            log.info("client.connected")
            try:
                async with stream:
                    await self._serve(stream, client_id, peer)
                    await _linger(stream)
            except Exception as exc:  # one misbehaving client must not take the daemon down
                log.warning("client.error", error=f"{type(exc).__name__}: {exc}", exc_info=True)
            finally:
                self.clients -= 1
                log.info("client.disconnected")

    async def _serve(self, stream: trio.SocketStream, client_id: int, peer: PeerCred) -> None:
        refusal = None
        if self.clients > self.settings.max_clients:
            refusal = wire.error_line(None, None, wire.BUSY, f"too many clients ({self.settings.max_clients})")
        elif self.settings.allowed_uids and peer.uid not in self.settings.allowed_uids:
            refusal = wire.error_line(None, None, wire.FORBIDDEN, f"uid {peer.uid} may not use this daemon")
        elif self.stop.is_set():
            refusal = wire.error_line(None, None, wire.SHUTTING_DOWN, "the daemon is stopping")
        if refusal is not None:
            log.warning("client.refused", reason=refusal.decode().strip())
            with trio.move_on_after(1):
                await stream.send_all(refusal)
            return
        # request tasks → writer. Bounded: a client that does not read stalls only its own requests.
        out_in, out = trio.open_memory_channel[bytes](self.settings.client_buffer)
        output = _Output(stream, out_in)
        async with trio.open_nursery() as nursery:
            nursery.start_soon(_write_lines, output, out)
            async with out_in:
                await self._read_requests(stream, client_id, output)

    async def _read_requests(self, stream: trio.SocketStream, client_id: int, output: _Output) -> None:
        buffer, request_numbers = LineBuffer(), itertools.count(1)
        inflight = trio.Semaphore(self.settings.max_inflight)
        reading = trio.CancelScope()
        self._reader_scopes.add(reading)
        watches = _Watches()  # this client's watches end when it leaves
        try:
            async with trio.open_nursery() as requests:
                with reading:
                    await self._read_lines(stream, buffer, inflight, requests, client_id, request_numbers, output,
                                           watches)
                if not reading.cancelled_caught:  # the client left: its watches end now
                    watches.close()
                # else stopping: the router ends each watch (watch_ended, "daemon stopping") after the events it
                # still holds; the clients' backstop deadline covers a watcher that does not read them.
        finally:
            self._reader_scopes.discard(reading)

    async def _read_lines(self, stream: trio.SocketStream, buffer: LineBuffer, inflight: trio.Semaphore,
                          requests: trio.Nursery, client_id: int, numbers: Iterator[int], output: _Output,
                          watches: _Watches) -> None:
        while True:
            try:
                chunk = await stream.receive_some(_RECEIVE_BYTES)
            except (trio.BrokenResourceError, trio.ClosedResourceError):
                chunk = b""
            if not chunk:
                return  # the client left; its requests still run to their outcomes
            buffer.feed(chunk)
            try:
                while (line := buffer.next_line()) is not None:
                    try:
                        inflight.acquire_nowait()  # no checkpoint (so no task switch) while there is room
                    except trio.WouldBlock:
                        await inflight.acquire()
                    request_id = f"{client_id}.{next(numbers)}"
                    # Begun here, in the reader: an input reaches the router without waiting for its own task
                    # to be scheduled first. The task waits for the answer and writes it; it is started inside
                    # the binding, so its copy of the context carries the request id too.
                    with structlog.contextvars.bound_contextvars(request_id=request_id):
                        job = self._begin(line, request_id)
                        requests.start_soon(self._finish, job, output.clone(), inflight, watches)
            except LineTooLong as exc:
                log.warning("command.rejected", error=wire.BAD_REQUEST, reason=str(exc))
                await _send(output.queue, wire.error_line(None, None, wire.BAD_REQUEST,
                                                          f"{exc}; closing the connection"))
                return

    def _begin(self, line: bytes, request_id: str) -> _Job:
        """Parse and log one request, and start it; never blocks."""
        try:
            request = parse_request(line)
        except wire.RequestRejected as exc:
            log.info("command.rejected", error=exc.error_type, reason=exc.message, op=exc.op, ref=exc.ref)
            return _Job(None, None, {}, 0.0, rejection=wire.rejection_line(exc))
        op = OPS[type(request)]
        fields = {"op": request.op, "ref": request.ref, **op.audit(request)}
        log.info("command.received", **fields)
        job = _Job(request, op, fields, trio.current_time())
        if self.stop.is_set():
            job.answer = Answer(wire.error_line(request.op, request.ref, wire.SHUTTING_DOWN,
                                                "the daemon is stopping"), wire.SHUTTING_DOWN)
        elif not op.streaming:
            if op.writes:
                self.inflight_writes += 1  # the task's ``_run`` counts it down, whatever happens
            job.wait = op.begin(request, OpContext(self.account, request_id, self.settings.request_timeout))
        return job

    async def _finish(self, job: _Job, output: _Output, inflight: trio.Semaphore, watches: _Watches) -> None:
        with output.queue:
            try:
                await self._complete(job, output, watches)
            finally:
                inflight.release()

    async def _complete(self, job: _Job, output: _Output, watches: _Watches) -> None:
        if job.rejection is not None:
            await output.answer(job.rejection)
            return
        request = job.request
        assert request is not None
        answer = job.answer
        if answer is None and job.op is not None and job.op.streaming:
            await self._watch(request, output.queue, watches)
            return
        if answer is None:
            answer = await self._run(job)
        latency_ms = round((trio.current_time() - job.started) * 1000, 3)
        await output.answer(answer.line)  # the answer first: the audit line is not on the client's critical path
        log.info("command.completed", **job.fields, outcome=answer.outcome, latency_ms=latency_ms, **answer.fields)

    async def _run(self, job: _Job) -> Answer:
        request, wait = job.request, job.wait
        assert request is not None and wait is not None
        try:
            return await wait()
        except (trio.BrokenResourceError, trio.ClosedResourceError):  # the router has gone: stopping
            return Answer(wire.error_line(request.op, request.ref, wire.SHUTTING_DOWN, "the daemon is stopping"),
                          wire.SHUTTING_DOWN)
        finally:
            if job.op is not None and job.op.writes:
                self.inflight_writes -= 1
                if not self.inflight_writes:
                    self._writes_done.set()
                    self._writes_done = trio.Event()

    async def _watch(self, request: wire.Request, out: trio.MemorySendChannel[bytes], watches: _Watches) -> None:
        try:
            events = await self.account.subscribe(self.settings.watch_buffer)
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            await _send(out, wire.error_line(request.op, request.ref, wire.SHUTTING_DOWN, "the daemon is stopping"))
            return
        log.info("command.completed", op=request.op, ref=request.ref, outcome="ok", streaming=True)
        await _send(out, wire.answer_line(request.op, request.ref))
        # The client leaving ends the stream, never the answer above (it may have only shut down its sending
        # side, as `echo '{"op":"watch"}' | socat …` does, and still be reading).
        with events, trio.CancelScope() as scope:
            watches.add(scope)
            try:
                async with trio.open_nursery() as streams:
                    streams.start_soon(self._forward_states, out)
                    reason = await _forward_events(events, out)
                    streams.cancel_scope.cancel()
            finally:
                watches.discard(scope)
        if scope.cancelled_caught:
            return
        # Reached only when the router ended the watch (lagging, stopping); a client that left cancels us.
        log.info("watch.ended", reason=reason)
        await _send(out, wire.event_line("watch_ended", reason=reason))

    async def _forward_states(self, out: trio.MemorySendChannel[bytes]) -> None:
        board = self.account.board
        version = board.snapshot().version
        while True:
            await board.wait_changed(version)
            snapshot = board.snapshot()
            version = snapshot.version
            await _send(out, wire.event_line("state", state=snapshot.state, detail=snapshot.detail,
                                             since=round(snapshot.since, 3)))


@attrs.define
class _Job:
    """One request as the reader began it, for its task to finish."""

    request: wire.Request | None
    op: Op | None  # its row in the operations table
    fields: dict[str, object]  # the audit fields of command.received, repeated in command.completed
    started: float
    rejection: bytes | None = None  # the line could not be parsed: answered with this, nothing else
    answer: Answer | None = None  # final already (the daemon is stopping)
    wait: Callable[[], Awaitable[Answer]] | None = None  # started: await it for the answer


class _Output:
    """Everything written to one client's socket: a final answer directly, the rest through the queue.

    An answer goes straight to the socket when nothing is queued and no send is in progress: no task switch
    on its way out, which is the answer path's last hop. Otherwise it joins the queue that the writer task
    drains in batches. Watch lines always queue, so a stream keeps its order; independent answers may pass
    each other, which the contract allows (answers carry their ``ref``).
    """

    __slots__ = ("_state", "queue")  # one per client, a thousand clients and more

    def __init__(self, stream: trio.SocketStream, queue: trio.MemorySendChannel[bytes]) -> None:
        self._state = _SocketState(stream)
        self.queue = queue

    def clone(self) -> _Output:
        """A handle with its own queue end: the writer stops once every handle is closed."""
        twin = _Output.__new__(_Output)
        twin._state, twin.queue = self._state, self.queue.clone()
        return twin

    async def answer(self, line: bytes) -> None:
        if self.queue.statistics().current_buffer_used == 0 and not self._state.sending:
            await self.send(line)
        else:
            await _send(self.queue, line)

    async def send(self, data: bytes) -> bool:
        """Write *data* now, after the send in progress if any; False if the client has gone.

        At most two tasks ever send: the writer, and a request task whose answer found the socket idle (an
        answer that finds it busy queues), so a flag and one event do what a lock would, in less memory.
        """
        state = self._state
        while state.sending:
            if state.idle is None:
                state.idle = trio.Event()
            await state.idle.wait()
        state.sending = True  # no checkpoint before the bytes go out, in the usual case
        try:
            await state.stream.send_all(data)
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            return False
        finally:
            state.sending = False
            if state.idle is not None:
                state.idle.set()
                state.idle = None
        return True


class _SocketState:
    """Shared by one client's output handles: its socket, and whether a send is in progress."""

    __slots__ = ("idle", "sending", "stream")

    def __init__(self, stream: trio.SocketStream) -> None:
        self.stream = stream
        self.sending = False
        self.idle: trio.Event | None = None  # set when the send in progress ends, for the one waiting


class _Watches:
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


async def _forward_events(events: trio.MemoryReceiveChannel[WatchEvent], out: trio.MemorySendChannel[bytes]) -> str:
    # The router hands on a burst of exchange frames per turn: move all that is waiting each turn too (without a
    # checkpoint while the client's queue has room), or a healthy watcher would fall behind and be cut off.
    async for first in events:
        for event in (first, *take_waiting(events, _WATCH_BATCH)):
            if isinstance(event, WatcherCutOff):
                return event.reason
            await _send(out, event.line)  # rendered once by the router for every watcher
    return "lagging: events came faster than this client read them"


async def _send(out: trio.MemorySendChannel[bytes], line: bytes) -> None:
    try:
        await hand_over(out, line)
    except (trio.BrokenResourceError, trio.ClosedResourceError):
        pass  # the client left; the outcome is in the log


async def _linger(stream: trio.SocketStream) -> None:
    """Close gently: half-close, then discard what the client still sends until it closes (bounded in time).

    Closing a socket with unread input resets the connection: the client's next read fails (ECONNRESET) instead
    of seeing the end, and its writes fail (EPIPE), so a client that sends before reading may never read our
    last answer (busy, forbidden, a line over 64 KiB).
    """
    with trio.move_on_after(_LINGER_S):
        try:
            await stream.send_eof()
            while await stream.receive_some(_RECEIVE_BYTES):
                pass
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            pass


async def _write_lines(output: _Output, lines: trio.MemoryReceiveChannel[bytes]) -> None:
    """Drains the queue of one client's lines, batching whatever is queued into one send."""
    async with lines:
        async for line in lines:
            if not await output.send(b"".join([line, *take_waiting(lines, _WATCH_BATCH)])):
                return  # the client left; request tasks see a closed channel and only log
