"""A client WebSocket over a Trio stream, with no task of its own: wsproto's handshake, then bfxd.wsframes.

trio-websocket runs a reader task that queues each message in a memory channel, and its sender takes a
``trio.Lock`` whose ``acquire()`` always yields first: two scheduling rounds on every cancel's critical path.
Here the caller's task drives the socket directly. ``receive()`` parses what is already buffered before it
reads, and ``send()`` writes at once when no other task is sending.

The caller opens the stream and always closes it, whatever happened to the link (connection.py's ``_dial``):
nothing here closes it.

Failure contract:

- ``open_link`` raises ``HandshakeFailed`` when the upgrade does not complete: the server refused it (the HTTP
  status is in the message), answered something that is not a valid upgrade, closed the connection, or the
  stream broke.
- Once the link is open, every way it can end is one ``LinkClosed(code, reason)``: a close frame from the peer
  (its code and reason, after our answer is sent), EOF or a broken stream (code None: no close frame), a
  protocol error of the peer (1002, or 1007 for bad UTF-8), a message over *max_message_bytes* (1009), or our
  own ``close()``. In the last three we send the close frame. The first ending wins, and from then on every
  ``receive()`` and ``send()`` raises a ``LinkClosed`` with that same code and reason.
- Cancellation passes through untouched. A send cancelled midway may leave part of a frame on the wire, so
  the link counts as broken (code None) and writes nothing more; the caller then closes the stream.
"""

from __future__ import annotations

from typing import NoReturn

import trio
from wsproto import ConnectionType, WSConnection
from wsproto.events import AcceptConnection, RejectConnection, Request
from wsproto.utilities import RemoteProtocolError

from bfxd.wsframes import OP_PONG, OP_TEXT, Close, FrameError, FrameReader, MaskKeys, Ping, close_frame, frame

_STREAM_ERRORS = (trio.BrokenResourceError, trio.ClosedResourceError)


class LinkClosed(Exception):
    """The link has ended. *code*: the close code, or None when no close frame was exchanged. *by_us*: this
    side ended it (``close()``, a fault we detected, an interrupted send), so logs do not blame the peer."""

    def __init__(self, code: int | None, reason: str, by_us: bool = False) -> None:
        super().__init__(code, reason)
        self.code = code
        self.reason = reason
        self.by_us = by_us

    def __str__(self) -> str:
        return f"{self.reason} (code {self.code})" if self.code is not None else self.reason


class HandshakeFailed(Exception):
    """The WebSocket upgrade did not complete; the message says why in a few words (never the headers)."""


async def open_link(
    stream: trio.abc.Stream, *, host: str, resource: str, max_message_bytes: int, receive_bytes: int = 64 * 1024
) -> WebSocketLink:
    """Send the client handshake over *stream* and return the open link once the server accepts it.

    *host* is the Host header ("name" or "name:port"), *resource* the path and query. The caller bounds the
    handshake with a timeout. Raises ``HandshakeFailed`` (see the module docstring).
    """
    ws = WSConnection(ConnectionType.CLIENT)
    # wsproto reads the HTTP response and nothing after it: the frames that came in the same read as the 101
    # (it has no body, so they start after the blank line) are handed to the link's own framing.
    head = b""
    try:
        await stream.send_all(ws.send(Request(host=host, target=resource)))
        while True:
            data = await stream.receive_some(receive_bytes)
            if not data:
                raise HandshakeFailed("connection closed during the handshake")
            start, head = len(head), head + data
            end = head.find(b"\r\n\r\n", max(0, start - 3))
            ws.receive_data(bytes(data) if end < 0 else head[start:end + 4])
            for event in ws.events():
                if isinstance(event, AcceptConnection):
                    return WebSocketLink(stream, max_message_bytes, receive_bytes, buffered=head[end + 4:])
                if isinstance(event, RejectConnection):
                    raise HandshakeFailed(f"upgrade refused: HTTP {event.status_code}")
            if end >= 0:  # h11 answers a whole response with one of the two, or raises
                raise HandshakeFailed("bad handshake response: no answer to the upgrade")
    except RemoteProtocolError as exc:  # not HTTP, a bad Sec-WebSocket-Accept, headers over h11's 16 KiB cap
        raise HandshakeFailed(f"bad handshake response: {exc}") from None
    except _STREAM_ERRORS as exc:
        raise HandshakeFailed(f"stream broken during the handshake: {exc}") from exc


class WebSocketLink:
    """One open client link. One task at a time may call ``receive()``; any number may call ``send()``.

    *buffered*: bytes that arrived after the handshake response, in the same read (the first frames).
    """

    def __init__(self, stream: trio.abc.Stream, max_message_bytes: int, receive_bytes: int,
                 buffered: bytes = b"") -> None:
        self._stream = stream
        self._receive_bytes = receive_bytes
        self._reader = FrameReader(max_message_bytes)
        self._reader.feed(buffered)
        self._keys = MaskKeys()
        self._send_lock = trio.Lock()
        self._writable = True  # False once the stream broke or a send was cut short: no more bytes go out
        self._closing = False  # our close frame is on its way: it must be the last frame
        self._closed: LinkClosed | None = None

    @property
    def closed(self) -> LinkClosed | None:
        """Why the link ended, or None while it is open."""
        return self._closed

    async def receive(self) -> str | bytes:
        """The next complete message: str for a text message, bytes for a binary one.

        When a complete message is already buffered it is returned without a checkpoint: the caller's task
        does not yield, so a burst read in one go is handed on at once. The task only yields when it has to
        read the stream (``receive_some`` always checkpoints, so a reader loop still yields regularly) or to
        answer a ping. Raises ``LinkClosed``.
        """
        if self._closed is not None:
            raise self._error()
        while True:
            event = await self._next_event()
            if isinstance(event, (str, bytes)):
                return event
            if isinstance(event, Ping):
                await self._send(frame(OP_PONG, event.payload, self._keys.next()))
            else:
                await self._on_close_frame(event)  # always raises

    async def send(self, *texts: str) -> None:
        """Send text messages, in order, with one write. Safe from several tasks at once; frames never
        interleave. Raises ``LinkClosed``."""
        keys = self._keys
        await self._send(b"".join([frame(OP_TEXT, text.encode(), keys.next()) for text in texts]))

    async def close(self, code: int = 1000, reason: str = "") -> None:
        """Send a close frame, then read (discarding messages) until the peer's close frame or EOF.

        Idempotent: does nothing once the link has ended. *reason* is cut to the 123 bytes a close frame can
        carry. The caller bounds the wait with a timeout, and calls this only when no task is in
        ``receive()``.
        """
        if self._closed is not None:
            return
        self._end(code, reason, by_us=True)
        try:
            await self._send_close(code, reason)
            while not isinstance(await self._next_event(), Close):
                pass  # the peer's answer, or a protocol error of its own: either way nothing more is coming
        except LinkClosed:
            pass  # EOF or a broken stream: the peer is gone, which is what closing wanted

    async def _next_event(self) -> str | bytes | Ping | Close:
        """The next message or control frame; reads the stream only when none is buffered."""
        reader = self._reader
        while True:
            try:
                event = reader.next_event()
            except FrameError as error:
                prefix = "" if error.code == 1009 else "protocol error: "
                await self._fail(error.code, prefix + error.reason)  # always raises
            if event is not None:
                return event
            try:
                data = await self._stream.receive_some(self._receive_bytes)
            except _STREAM_ERRORS as exc:
                self._writable = False
                raise self._end(None, f"stream broken: {exc or type(exc).__name__}") from None
            if not data:
                raise self._end(None, "EOF without a close frame")
            reader.feed(bytes(data))  # trio streams give bytes (typed bytes | bytearray)

    async def _on_close_frame(self, event: Close) -> None:
        self._end(event.code, event.reason)
        try:
            await self._send_close(event.code, event.reason)  # the peer started the close: answer it (RFC 6455)
        except LinkClosed:
            pass  # the stream broke before the answer went out; the peer's close code is what matters
        raise self._error()

    async def _fail(self, code: int, reason: str) -> NoReturn:
        """End the link for a fault we detected: tell the peer with a close frame, then raise."""
        self._end(code, reason, by_us=True)
        try:
            await self._send_close(code, reason)
        except LinkClosed:
            pass
        raise self._error()

    async def _send_close(self, code: int, reason: str) -> None:
        await self._send(close_frame(code, reason, self._keys.next()), closing=True)

    async def _send(self, data: bytes, *, closing: bool = False) -> None:
        # Uncontended, the lock is taken without yielding, so the bytes go out before this task is rescheduled
        # (trio.Lock.acquire() always checkpoints first). Contended, acquire() waits: on release trio hands the
        # lock to the longest waiter, so the fast path cannot jump the queue.
        try:
            self._send_lock.acquire_nowait()
        except trio.WouldBlock:
            await self._send_lock.acquire()
        try:
            # Checked under the lock: a close frame that went out while this task waited must be the last frame.
            if not self._writable or self._closing or (self._closed is not None and not closing):
                raise self._error()
            self._closing = closing
            try:
                await self._stream.send_all(data)
            except _STREAM_ERRORS as exc:
                self._writable = False
                raise self._end(None, f"stream broken: {exc or type(exc).__name__}") from None
            except BaseException:  # cancelled: part of the frame may be on the wire
                self._writable = False
                self._end(None, "a send was interrupted", by_us=True)
                raise
        finally:
            self._send_lock.release()

    def _end(self, code: int | None, reason: str, *, by_us: bool = False) -> LinkClosed:
        """Record why the link ended (the first reason wins) and return a fresh exception to raise."""
        if self._closed is None:
            self._closed = LinkClosed(code, reason, by_us)
        return self._error()

    def _error(self) -> LinkClosed:
        # A fresh instance each time: raising one instance again and again would grow its traceback.
        assert self._closed is not None
        return LinkClosed(self._closed.code, self._closed.reason, self._closed.by_us)


__all__ = ["HandshakeFailed", "LinkClosed", "WebSocketLink", "open_link"]
