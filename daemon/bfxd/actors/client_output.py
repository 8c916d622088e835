"""Everything written to one client's socket: answers directly when the socket is idle, the rest through a
bounded queue drained by a writer task in batches; the gentle close; and the reads (``receive``)."""

from __future__ import annotations

import os
from collections.abc import Callable

import trio

from bfxd.actors.channels import hand_over, take_waiting

RECEIVE_BYTES = 64 * 1024
WATCH_BATCH = 256  # lines moved per turn at most, by a watch's forwarder and by the writer: a whole queue
_LINGER_S = 1.0  # how long a closing connection keeps reading (and discarding) for the client to close first


class Output:
    """Everything written to one client's socket: a final answer directly, the rest through the queue.

    An answer goes straight to the socket when nothing is queued and no send is in progress: no task switch
    on its way out, which is the answer path's last hop. Otherwise it joins the queue that the writer task
    drains in batches. Watch lines always queue, so a stream keeps its order; independent answers may pass
    each other, which the contract allows (answers carry their ``ref``).

    The writer task may be started only when the first line is queued (``start_writer_when_needed``): most
    clients never queue one, and a task with its frames is 2.9 KB an idle client (tracemalloc). Whoever queues
    calls ``writer_needed()`` first; ``answer`` and ``answer_nowait`` do.
    """

    __slots__ = ("_state", "queue")  # one per client, a thousand clients and more

    def __init__(self, stream: trio.SocketStream, queue: trio.MemorySendChannel[bytes]) -> None:
        self._state = _SocketState(stream)
        self.queue = queue

    def clone(self) -> Output:
        """A handle with its own queue end: the writer stops once every handle is closed."""
        twin = Output.__new__(Output)
        twin._state, twin.queue = self._state, self.queue.clone()
        return twin

    def _idle(self) -> bool:
        """Nothing queued, no send in progress: an answer may go straight to the socket."""
        return self.queue.statistics().current_buffer_used == 0 and not self._state.sending

    def start_writer_when_needed(self, start: Callable[[], None]) -> None:
        """*start* starts the writer task; it is called once, by the first ``writer_needed()``."""
        self._state.start_writer = start

    def writer_needed(self) -> None:
        """A line is about to be queued: start the writer if it has not been."""
        state = self._state
        if state.start_writer is not None:
            start, state.start_writer = state.start_writer, None
            start()

    async def answer(self, line: bytes) -> None:
        if self._idle():
            await self.send(line)
        else:
            self.writer_needed()
            await send_line(self.queue, line)

    def has_room(self) -> bool:
        """Whether ``answer_nowait`` can take a line now."""
        stats = self.queue.statistics()
        return stats.current_buffer_used < stats.max_buffer_size

    def answer_nowait(self, line: bytes) -> None:
        """``answer`` without waiting, when ``has_room`` (checked in the same step: nothing can fill the queue in
        between). Written at once when the socket is idle; what the socket does not take then, or all of it when
        lines are queued or a send is in progress, joins the queue, in order."""
        if self._idle():
            try:
                sent = _write_now(self._state.stream, line)
            except OSError:
                return  # the client has gone; the outcome is in the log
            if sent == len(line):
                return
            line = line[sent:]  # the queue is empty and nothing is sending: the rest goes out first
        self.writer_needed()
        try:
            self.queue.send_nowait(line)
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            pass  # the client left

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
            sent = _write_now(state.stream, data)
            if sent < len(data):  # the socket's buffer is full: wait for room the trio way
                await state.stream.send_all(memoryview(data)[sent:])
        except (trio.BrokenResourceError, trio.ClosedResourceError, OSError):
            return False
        finally:
            state.sending = False
            if state.idle is not None:
                state.idle.set()
                state.idle = None
        return True


class _SocketState:
    """Shared by one client's output handles: its socket, and whether a send is in progress."""

    __slots__ = ("idle", "sending", "start_writer", "stream")

    def __init__(self, stream: trio.SocketStream) -> None:
        self.stream = stream
        self.sending = False
        self.idle: trio.Event | None = None  # set when the send in progress ends, for the one waiting
        self.start_writer: Callable[[], None] | None = None  # None: the writer runs, or its owner runs it




def _write_now(stream: trio.SocketStream, data: bytes) -> int:
    """Write what the socket takes at once, without trio: its ``send_all`` yields after every send, and on the
    answer path that is one more task step per request (a fifth of the daemon's steps with 100 clients).

    The descriptor is read at the moment of the write, never kept: a closed stream says -1 (EBADF, an OSError),
    so the number can never reach a socket that reused it. ``EAGAIN`` writes nothing: the caller waits for
    room. Python ignores SIGPIPE, so a client that left is an OSError (EPIPE), not a signal.
    """
    if not data:
        return 0
    try:
        return os.write(stream.socket.fileno(), data)
    except BlockingIOError:
        return 0


async def receive(stream: trio.SocketStream) -> bytes:
    """What the client sent next, or b"" once it has left (EOF, a reset, the stream closed under us).

    Waits for the socket to be readable, then reads it with ``os.read``. trio's ``receive_some`` reads first
    and waits only when that fails, and for a client that waits for each answer before its next request the
    first read fails every time: one system call, one exception and trio's wrapper for nothing, per request.
    Either way the task yields once per read. The descriptor is read at the moment of the read, as in
    ``_write_now``.
    """
    while True:
        if stream.socket.fileno() == -1:
            return b""  # closed before we came to wait (epoll refuses descriptor -1)
        try:
            await trio.lowlevel.wait_readable(stream.socket)
        except trio.ClosedResourceError:
            return b""
        try:
            return os.read(stream.socket.fileno(), RECEIVE_BYTES)
        except BlockingIOError:
            continue  # reported readable, yet nothing to read: wait again
        except OSError:
            return b""  # ECONNRESET, or EBADF once the stream is closed


async def send_line(out: trio.MemorySendChannel[bytes], line: bytes) -> None:
    try:
        await hand_over(out, line)
    except (trio.BrokenResourceError, trio.ClosedResourceError):
        pass  # the client left; the outcome is in the log


async def linger(stream: trio.SocketStream) -> None:
    """Close gently: half-close, then discard what the client still sends until it closes (bounded in time).

    Closing a socket with unread input resets the connection: the client's next read fails (ECONNRESET) instead
    of seeing the end, and its writes fail (EPIPE), so a client that sends before reading may never read our
    last answer (busy, forbidden, a line over 64 KiB).
    """
    with trio.move_on_after(_LINGER_S):
        try:
            await stream.send_eof()
            while await stream.receive_some(RECEIVE_BYTES):
                pass
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            pass


async def write_lines(output: Output, lines: trio.MemoryReceiveChannel[bytes]) -> None:
    """Drains the queue of one client's lines, batching whatever is queued into one send."""
    async with lines:
        async for line in lines:
            if not await output.send(b"".join([line, *take_waiting(lines, WATCH_BATCH)])):
                return  # the client left; request tasks see a closed channel and only log
