"""The metrics HTTP server: ``GET /metrics`` (and ``HEAD``) over HTTP/1.1, on loopback TCP or a Unix socket.

HTTP parsing is h11's (already installed as wsproto's foundation): keep-alive, pipelining and malformed
requests are handled by a library that does nothing else. The server is deliberately small:

- one response per request, ``200`` with the exposition, ``404`` for another path, ``405`` for another method,
  ``400`` for a request h11 rejects (then the connection closes);
- a request head must arrive within ``REQUEST_TIMEOUT_S`` and stay under h11's 16 KiB limit, and an idle
  keep-alive connection is closed after the same time: a stuck scraper holds nothing for long;
- at most ``MAX_CONNECTIONS`` at once; one more is closed at once (Prometheus scrapes with one connection).

The renderer runs in the event loop: a few dozen series render in tens of microseconds.
"""

from __future__ import annotations

import contextlib
import os
import socket
from collections.abc import Callable
from functools import partial

import h11
import structlog
import trio

from bfxd.config_values import ListenAddress
from bfxd.errors import ConfigError
from bfxd.metrics import CONTENT_TYPE
from bfxd.unix_socket import open_unix_listener

__all__ = ["MAX_CONNECTIONS", "REQUEST_TIMEOUT_S", "open_metrics_listeners", "serve_metrics"]

REQUEST_TIMEOUT_S = 10.0
MAX_CONNECTIONS = 16
_RECEIVE_BYTES = 16 * 1024

log = structlog.get_logger()


async def open_metrics_listeners(address: ListenAddress) -> list[trio.SocketListener]:
    """Bind the configured address; ConfigError (exit 78) if it cannot be had."""
    if address.family == "unix":
        assert address.path is not None
        return [open_unix_listener(address.path, mode=0o660)]
    try:
        return await trio.open_tcp_listeners(address.port, host=address.host)
    except OSError as exc:
        raise ConfigError(f"[metrics] listen: cannot listen on {address}: {exc.strerror or exc}") from None


async def serve_metrics(
    listeners: list[trio.SocketListener],
    render: Callable[[], str],
    *,
    request_timeout: float = REQUEST_TIMEOUT_S,
    task_status: trio.TaskStatus[list[trio.SocketListener]] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Serve until cancelled (the listeners are closed then, a unix socket's file removed);
    ``task_status.started(listeners)`` once accepting.

    *request_timeout*: how long a request head may take to arrive, and how long a keep-alive connection may
    stay idle.
    """
    slots = trio.CapacityLimiter(MAX_CONNECTIONS)
    unix_paths = [name for listener in listeners if listener.socket.family == socket.AF_UNIX
                  and isinstance(name := listener.socket.getsockname(), str) and name]
    try:
        async with trio.open_nursery() as nursery:
            handler = partial(_serve_connection, render, slots, request_timeout)
            await nursery.start(partial(trio.serve_listeners, handler, listeners, handler_nursery=nursery))
            task_status.started(listeners)
            await trio.sleep_forever()
    finally:
        with trio.CancelScope(shield=True):
            for listener in listeners:
                await listener.aclose()
        for path in unix_paths:
            with contextlib.suppress(OSError):
                os.unlink(path)  # ours: bound by open_metrics_listeners


async def _serve_connection(render: Callable[[], str], slots: trio.CapacityLimiter, idle_s: float,
                            stream: trio.SocketStream) -> None:
    async with stream:
        try:
            slots.acquire_nowait()
        except trio.WouldBlock:
            log.warning("metrics.busy", limit=MAX_CONNECTIONS)
            return
        try:
            await _exchange(render, stream, h11.Connection(h11.SERVER), idle_s)
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            pass  # the scraper left
        finally:
            slots.release()


async def _exchange(render: Callable[[], str], stream: trio.SocketStream, conn: h11.Connection,
                    idle_s: float) -> None:
    while True:
        with trio.move_on_after(idle_s):
            request = await _next_request(stream, conn)
            if request is None:
                return
            await _respond(render, stream, conn, request)
            if conn.our_state is h11.MUST_CLOSE or conn.their_state is h11.MUST_CLOSE:
                return
            conn.start_next_cycle()
            continue
        return  # timed out: an idle or slow connection is closed


async def _next_request(stream: trio.SocketStream, conn: h11.Connection) -> h11.Request | None:
    """The next request (its body, if any, read and discarded), or None when the peer is done or broke HTTP."""
    request = None
    while True:
        try:
            event = conn.next_event()
        except h11.RemoteProtocolError as exc:
            await _send_error(stream, conn, exc.error_status_hint, str(exc))
            return None
        if event is h11.NEED_DATA:
            data = await stream.receive_some(_RECEIVE_BYTES)
            conn.receive_data(data)  # b"" is the peer closing: h11 turns it into ConnectionClosed
            continue
        if isinstance(event, h11.Request):
            request = event
        elif isinstance(event, h11.EndOfMessage):
            return request
        elif isinstance(event, h11.ConnectionClosed) or event is h11.PAUSED:
            return None


async def _respond(render: Callable[[], str], stream: trio.SocketStream, conn: h11.Connection,
                   request: h11.Request) -> None:
    target = request.target.split(b"?", 1)[0]
    if request.method not in (b"GET", b"HEAD"):
        await _send(stream, conn, 405, b"only GET and HEAD\n", extra=[(b"Allow", b"GET, HEAD")])
    elif target != b"/metrics":
        await _send(stream, conn, 404, b"see /metrics\n")
    else:
        body = render().encode()
        await _send(stream, conn, 200, body, content_type=CONTENT_TYPE.encode(), head=request.method == b"HEAD")


async def _send_error(stream: trio.SocketStream, conn: h11.Connection, status: int, reason: str) -> None:
    if conn.our_state in (h11.IDLE, h11.SEND_RESPONSE):
        await _send(stream, conn, status, (reason + "\n").encode(), close=True)


async def _send(stream: trio.SocketStream, conn: h11.Connection, status: int, body: bytes, *,
                content_type: bytes = b"text/plain; charset=utf-8", head: bool = False, close: bool = False,
                extra: list[tuple[bytes, bytes]] | None = None) -> None:
    headers = [(b"Content-Type", content_type), (b"Content-Length", str(len(body)).encode()), *(extra or [])]
    if close:
        headers.append((b"Connection", b"close"))
    data = conn.send(h11.Response(status_code=status, headers=headers))
    if not head:
        data += conn.send(h11.Data(data=body))
    data += conn.send(h11.EndOfMessage())
    await stream.send_all(data)
