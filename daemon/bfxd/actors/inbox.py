"""The command inbox: the Unix socket server that turns client lines into requests and answers.

Per client: one reader (frames lines, parses and logs them, begins each request through its row in the operations
table, so an exchange input reaches the router at once; a request that is one input is finished once its outcome is
in, others get a task to wait for their answer), one writer (drains a bounded per-client queue in batches), and the
request tasks. A final answer goes straight to the socket when nothing is queued and no send is in progress, else
through the queue (``Output``); watch lines always queue. A client may pipeline: answers go out as their requests
finish, each carrying its ``ref``.

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
from collections import Counter
from collections.abc import Awaitable, Callable, Iterator
from functools import partial

import attrs
import structlog
import trio

from bfxd.access import decide, forbidden_message, peer_groups
from bfxd.actors.api import AccountClient
from bfxd.actors.client_output import Output, linger, receive, send_line, write_lines
from bfxd.actors.late_starts import LateStarts
from bfxd.actors.ops import OPS, AfterOutcome, Op, OpContext
from bfxd.actors.refusals import RefusalLog
from bfxd.actors.replies import Answer
from bfxd.actors.watch_stream import ClientWatches, forward_events, forward_states
from bfxd.config import AccessConfig
from bfxd.daemon_metrics import DaemonMetrics
from bfxd.live import LiveSettings
from bfxd.peer_identity import peer_identity
from bfxd.protocol import client_wire as wire
from bfxd.protocol.client_requests import Request, parse_request
from bfxd.protocol.client_wire import LineBuffer, LineTooLong
from bfxd.unix_socket import PeerCred, peer_credentials

log = structlog.get_logger()


@attrs.frozen
class InboxSettings:
    # From the config (settings.py derives them; the defaults live in config.py only).
    access: AccessConfig  # who may use each role (access.py)
    allowed_uids: tuple[int, ...]
    max_clients: int
    max_clients_per_uid: int
    idle_timeout: float
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
    settings: LiveSettings[InboxSettings],
    stop: trio.Event,
    metrics: DaemonMetrics | None = None,
    task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Serve clients until *stop* is set and every request has its answer; then close *commands*."""
    inbox = _Inbox(account, settings, stop, metrics or DaemonMetrics())
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
            with trio.move_on_after(settings.value.shutdown_grace):
                await inbox.wait_writes_done()
            await commands.aclose()  # the router answers what is left ShuttingDown and ends the watches
            inbox.stop_reading()
            clients.cancel_scope.deadline = trio.current_time() + settings.value.flush_timeout  # backstop


class _Inbox:
    def __init__(self, account: AccountClient, settings: LiveSettings[InboxSettings], stop: trio.Event,
                 metrics: DaemonMetrics) -> None:
        self.account, self._settings, self.stop, self.metrics = account, settings, stop, metrics
        self._per_uid: Counter[int] = Counter()  # connections held, by uid
        self._refusals = RefusalLog()
        self.client_ids = itertools.count(1)
        self.clients = 0
        self.inflight_writes = 0
        self._writes_done = trio.Event()
        self._reader_scopes: set[trio.CancelScope] = set()

    @property
    def settings(self) -> InboxSettings:
        return self._settings.value  # afresh each time: a reload may have replaced it

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
        refusal = self._refusal(peer)
        if refusal is not None:
            # Neither connected nor disconnected is logged for a refused client: a flood of connects must not
            # flood the log (the refusals are logged at most once per uid and reason every few seconds, counted).
            error_type, message = refusal
            self._refusals.note(error_type, peer, message)
            async with stream:
                with trio.move_on_after(1):
                    await stream.send_all(wire.error_line(None, None, error_type, message))
                await linger(stream)
            return
        with structlog.contextvars.bound_contextvars(client_id=client_id, peer_pid=peer.pid, peer_uid=peer.uid,
                                                     peer_gid=peer.gid):
            self.clients += 1
            self._per_uid[peer.uid] += 1
            self.metrics.clients.inc()
            log.info("client.connected", **peer_identity(peer.pid))
            try:
                async with stream:
                    await self._serve(stream, client_id, peer)
                    await linger(stream)
            except Exception as exc:  # one misbehaving client must not take the daemon down
                log.warning("client.error", error=f"{type(exc).__name__}: {exc}", exc_info=True)
            finally:
                self.clients -= 1
                self._per_uid[peer.uid] -= 1
                if not self._per_uid[peer.uid]:
                    del self._per_uid[peer.uid]
                self.metrics.clients.dec()
                log.info("client.disconnected")

    def _refusal(self, peer: PeerCred) -> tuple[str, str] | None:
        settings = self.settings
        if self.clients >= settings.max_clients:
            return wire.BUSY, f"too many clients ({settings.max_clients})"
        if settings.allowed_uids and peer.uid not in settings.allowed_uids:
            return wire.FORBIDDEN, f"uid {peer.uid} may not use this daemon"
        if self._per_uid[peer.uid] >= settings.max_clients_per_uid:
            return wire.BUSY, f"too many connections for uid {peer.uid} ({settings.max_clients_per_uid})"
        if self.stop.is_set():
            return wire.SHUTTING_DOWN, "the daemon is stopping"
        return None

    async def _serve(self, stream: trio.SocketStream, client_id: int, peer: PeerCred) -> None:
        # request tasks → writer. Bounded: a client that does not read stalls only its own requests.
        out_in, out = trio.open_memory_channel[bytes](self.settings.client_buffer)
        output = Output(stream, out_in)
        async with trio.open_nursery() as nursery:
            # Started with the first queued line, if any (most clients queue none). Every line is queued
            # before the body below ends: requests and watches run inside it.
            output.start_writer_when_needed(partial(nursery.start_soon, write_lines, output, out))
            async with out_in:
                gids = peer_groups(stream.socket, peer.pid, peer.gid)  # type: ignore[arg-type]  # trio wraps a socket
                client = _Client(client_id, peer.uid, gids)
                await self._read_requests(stream, client, output)

    async def _read_requests(self, stream: trio.SocketStream, client: _Client, output: Output) -> None:
        buffer, request_numbers = LineBuffer(), itertools.count(1)
        inflight = trio.Semaphore(self.settings.max_inflight)
        reading = trio.CancelScope()
        self._reader_scopes.add(reading)
        watches = ClientWatches()  # this client's watches end when it leaves
        late = LateStarts()
        try:
            async with trio.open_nursery() as requests:
                late.open(requests)
                with reading:
                    await self._read_lines(stream, buffer, inflight, late, client, request_numbers, output,
                                           watches)
                if not reading.cancelled_caught:  # the client left: its watches end now
                    watches.close()
                # else stopping: the router ends each watch (watch_ended) after its events; the backstop covers the rest
                await late.wait_all_started()  # every request runs to its outcome, the client there or not
        finally:
            late.close()
            self._reader_scopes.discard(reading)

    async def _read_lines(self, stream: trio.SocketStream, buffer: LineBuffer, inflight: trio.Semaphore,
                          late: LateStarts, client: _Client, numbers: Iterator[int], output: Output,
                          watches: ClientWatches) -> None:
        while True:
            if inflight.value == self.settings.max_inflight:  # no request in flight, no watch (it holds one)
                with trio.move_on_after(self.settings.idle_timeout) as waiting:
                    chunk = await receive(stream)
                if waiting.cancelled_caught:
                    log.info("client.idle_closed", idle_s=self.settings.idle_timeout)
                    return
            else:
                chunk = await receive(stream)  # busy: no timeout scope on the hot path
            if not chunk:
                return  # the client left; its requests still run to their outcomes
            buffer.feed(chunk)
            try:
                while (line := buffer.next_line()) is not None:
                    try:
                        inflight.acquire_nowait()  # no checkpoint (so no task switch) while there is room
                    except trio.WouldBlock:
                        await inflight.acquire()
                    request_id = f"{client.id}.{next(numbers)}"
                    # Begun here, in the reader: an input reaches the router without waiting for a task to be
                    # scheduled first. What finishes it gets this binding's context: the request id. By token, not
                    # bound_contextvars(), which copies the whole context first (7 µs a request).
                    bound = structlog.contextvars.bind_contextvars(request_id=request_id)
                    try:
                        self._start(self._begin(line, request_id, client), output.clone(), inflight, watches, late)
                    finally:
                        structlog.contextvars.reset_contextvars(**bound)
            except LineTooLong as exc:
                log.warning("command.rejected", error=wire.BAD_REQUEST, reason=str(exc))
                output.writer_needed()
                await send_line(output.queue, wire.error_line(None, None, wire.BAD_REQUEST,
                                                          f"{exc}; closing the connection"))
                return

    def _start(self, job: _Job, output: Output, inflight: trio.Semaphore, watches: ClientWatches,
               late: LateStarts) -> None:
        """Its task, or for one input its finish once the outcome is in (late_starts.py). A method of its own so
        that the reader's frame keeps none of it while an idle client waits (700 bytes a client, measured)."""
        task = partial(self._finish, job, output, inflight, watches)
        if not (isinstance(job.wait, AfterOutcome)
                and late.start_when_settled(job.wait, task, partial(self._finish_now, job, output, inflight))):
            late.start(task)

    def _begin(self, line: bytes, request_id: str, client: _Client) -> _Job:
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
        rule = decide(request.op, client.uid, client.gids, self.settings.access)
        if rule is not None:
            job.answer = Answer(wire.error_line(request.op, request.ref, wire.FORBIDDEN,
                                                forbidden_message(request.op, client.uid, rule), rule=rule),
                                wire.FORBIDDEN, {"rule": rule})
        elif self.stop.is_set():
            job.answer = Answer(wire.error_line(request.op, request.ref, wire.SHUTTING_DOWN,
                                                "the daemon is stopping"), wire.SHUTTING_DOWN)
        elif not op.streaming:
            if op.writes:
                self.inflight_writes += 1  # ``_wait_done`` counts it down, whatever happens
            job.wait = op.begin(request, OpContext(self.account, request_id, self.settings.request_timeout,
                                                   self.metrics))
        return job

    async def _finish(self, job: _Job, output: Output, inflight: trio.Semaphore, watches: ClientWatches) -> None:
        with output.queue:
            try:
                await self._complete(job, output, watches)
            finally:
                inflight.release()

    async def _complete(self, job: _Job, output: Output, watches: ClientWatches) -> None:
        if job.rejection is not None:
            await output.answer(job.rejection)
            return
        request = job.request
        assert request is not None
        answer = job.answer
        if answer is None and job.op is not None and job.op.streaming:
            output.writer_needed()  # a watch's lines always queue
            await self._watch(request, output.queue, watches)
            return
        if answer is None:
            answer = await self._run(job)
        took = trio.current_time() - job.started
        await output.answer(answer.line)  # the answer first: the audit line is not on the client's critical path
        self._completed(request, job, answer, took)

    def _finish_now(self, job: _Job, output: Output, inflight: trio.Semaphore) -> bool:
        """``_finish`` in the caller's own step, once the outcome is in (late_starts.py calls it then): nothing is
        left that waits, unless the client's queue is full. False (nothing done): start the task instead."""
        if not output.has_room():
            return False
        assert isinstance(job.wait, AfterOutcome) and job.request is not None
        with output.queue:
            try:
                answer = job.wait.answer_now()
                took = trio.current_time() - job.started
                output.answer_nowait(answer.line)
                self._completed(job.request, job, answer, took)
            finally:
                self._wait_done(job)
                inflight.release()
        return True

    def _completed(self, request: Request, job: _Job, answer: Answer, took: float) -> None:
        # one dict: an answer's audit field may repeat a request's (the last word is the answer's)
        log.info("command.completed", **{**job.fields, "outcome": answer.outcome,
                                         "latency_ms": round(took * 1000, 3), **answer.fields})
        self.metrics.requests(request.op, answer.outcome).inc()
        self.metrics.request_duration(request.op).observe(took)

    async def _run(self, job: _Job) -> Answer:
        request, wait = job.request, job.wait
        assert request is not None and wait is not None
        try:
            return await wait()
        except (trio.BrokenResourceError, trio.ClosedResourceError):  # the router has gone: stopping
            return Answer(wire.error_line(request.op, request.ref, wire.SHUTTING_DOWN, "the daemon is stopping"),
                          wire.SHUTTING_DOWN)
        finally:
            self._wait_done(job)

    def _wait_done(self, job: _Job) -> None:
        if job.op is not None and job.op.writes:
            self.inflight_writes -= 1
            if not self.inflight_writes:
                self._writes_done.set()
                self._writes_done = trio.Event()

    async def _watch(self, request: Request, out: trio.MemorySendChannel[bytes], watches: ClientWatches) -> None:
        try:
            events = await self.account.subscribe(self.settings.watch_buffer)
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            await send_line(out, wire.error_line(request.op, request.ref, wire.SHUTTING_DOWN, "the daemon is stopping"))
            return
        log.info("command.completed", op=request.op, ref=request.ref, outcome="ok", streaming=True)
        await send_line(out, wire.answer_line(request.op, request.ref))
        # The client leaving ends the stream, never the answer above (it may have only shut down its sending
        # side, as `echo '{"op":"watch"}' | socat …` does, and still be reading).
        with events, trio.CancelScope() as scope:
            watches.add(scope)
            try:
                async with trio.open_nursery() as streams:
                    streams.start_soon(forward_states, self.account.board, out)
                    reason = await forward_events(events, out)
                    streams.cancel_scope.cancel()
            finally:
                watches.discard(scope)
        if scope.cancelled_caught:
            return
        # Reached only when the router ended the watch (lagging, stopping); a client that left cancels us.
        log.info("watch.ended", reason=reason)
        await send_line(out, wire.event_line("watch_ended", reason=reason))


@attrs.frozen
class _Client:
    """Who is on the other end of one connection, as the kernel recorded it at connect."""

    id: int
    uid: int
    gids: frozenset[int]  # primary and supplementary groups, for the access rules


@attrs.define
class _Job:
    """One request as the reader began it, for its task to finish."""

    request: Request | None
    op: Op | None  # its row in the operations table
    fields: dict[str, object]  # the audit fields of command.received, repeated in command.completed
    started: float
    rejection: bytes | None = None  # the line could not be parsed: answered with this, nothing else
    answer: Answer | None = None  # final already (the daemon is stopping)
    wait: Callable[[], Awaitable[Answer]] | None = None  # started: await it for the answer
