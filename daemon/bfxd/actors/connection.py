"""The connection actor: owns the WebSocket to the exchange, one link at a time.

The link is a ``wslink.WebSocketLink`` over a TCP (+TLS) stream this actor opens and always closes itself.

Per link it runs, in one nursery: a reader (decode each frame, hand it on, stamp it for the heartbeat), a writer
(the only consumer of the outbound frame channel), the heartbeat watchdog, and watchers for relink requests
and for the stop signal. Whichever ends the link first gives the reason; the link is then closed and, unless
the daemon is stopping, a new one is dialled after a delay that obeys both the backoff and the exchange's
connection rate limit (backoff.py).

A frame the exchange sends that cannot be decoded is logged and skipped: one bad frame never costs the link.
"""

from __future__ import annotations

import random
import ssl
from collections.abc import Callable
from itertools import count
from urllib.parse import urlsplit

import attrs
import structlog
import trio

from bfxd.actors.channels import hand_over, note_received, take_waiting
from bfxd.actors.heartbeat import run_heartbeat
from bfxd.actors.messages import FromLink, LinkDown, LinkUp, OutboundFrame, Relink
from bfxd.actors.session import SessionBoard
from bfxd.backoff import (
    EXCHANGE_MAX_CONNECTIONS,
    EXCHANGE_WINDOW_S,
    GUARD_MARGIN_S,
    ConnectGuard,
    reconnect_delay,
)
from bfxd.errors import RemoteProtocolError
from bfxd.protocol import (
    AuthFailed,
    AuthOk,
    ErrorEvent,
    Info,
    InfoMessage,
    MaintenanceEnded,
    MaintenanceStarted,
    Notification,
    OfferCancel,
    OfferNew,
    OffersSnapshot,
    OfferUpdate,
    ServerRestarting,
    decode_exchange_frame,
    ping_frame,
)
from bfxd.wslink import HandshakeFailed, LinkClosed, WebSocketLink, open_link

log = structlog.get_logger()

_FOR_AUTH = (Info, InfoMessage, AuthOk, AuthFailed, MaintenanceStarted, MaintenanceEnded)
_FOR_ACCOUNT = (Notification, OffersSnapshot, OfferNew, OfferUpdate, OfferCancel, ErrorEvent)  # errors: the pace
STOPPING = "stopping"
_WRITE_BATCH = 64  # frames per write at most: a cancel_all's frames go out in a few writes, not one each


@attrs.frozen
class LinkSettings:
    # From the config (settings.py derives them; the defaults live in config.py only).
    url: str
    connect_timeout: float
    heartbeat_timeout: float
    initial_delay: float
    max_delay: float
    # A link that stayed up this long counts as healthy: the next failure starts the backoff afresh.
    healthy_after: float = 30.0
    close_timeout: float = 2.0
    # The exchange's connection rate limit (backoff.py); tests of many reconnects may relax it.
    max_connects: int = EXCHANGE_MAX_CONNECTIONS
    connect_window: float = EXCHANGE_WINDOW_S + GUARD_MARGIN_S
    max_message_bytes: int = 4 * 1024 * 1024


@attrs.frozen
class _LinkEnd:
    reason: str
    delay: float | None = None  # None: the usual backoff


@attrs.frozen
class _Endpoint:
    host: str
    port: int
    resource: str
    host_header: str
    ssl_context: ssl.SSLContext | None

    @classmethod
    def from_url(cls, url: str) -> _Endpoint:
        parts = urlsplit(url)
        secure = parts.scheme == "wss"
        if parts.scheme not in ("ws", "wss") or not parts.hostname:
            raise ValueError(f"not a ws:// or wss:// URL: {url!r}")
        port = parts.port or (443 if secure else 80)
        resource = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        host_header = parts.hostname if port in (80, 443) else f"{parts.hostname}:{port}"
        # wss:// uses the system's CA store (loaded once, not per reconnect); ws:// (the simulator) needs none.
        return cls(parts.hostname, port, resource, host_header, ssl.create_default_context() if secure else None)


async def _dial(endpoint: _Endpoint, max_message_bytes: int) -> tuple[WebSocketLink, trio.abc.Stream]:
    """Open the TCP (+TLS) stream, then the WebSocket link over it. The link never closes the stream: the caller
    does, after every ending (a close either side started, EOF, an error), so no socket waits for garbage collection.
    """
    stream: trio.abc.Stream
    if endpoint.ssl_context is None:
        stream = await trio.open_tcp_stream(endpoint.host, endpoint.port)
    else:
        stream = await trio.open_ssl_over_tcp_stream(endpoint.host, endpoint.port, ssl_context=endpoint.ssl_context,
                                                     https_compatible=True)
    try:
        # 64 KiB reads: a burst of frames comes in with one read, then goes to the reader without a wake-up each.
        link = await open_link(stream, host=endpoint.host_header, resource=endpoint.resource,
                               max_message_bytes=max_message_bytes, receive_bytes=64 * 1024)
    except BaseException:
        await trio.aclose_forcefully(stream)
        raise
    return link, stream


async def run_connection(
    *,
    settings: LinkSettings,
    board: SessionBoard,
    frames: trio.MemoryReceiveChannel[OutboundFrame],
    to_auth: trio.MemorySendChannel[LinkUp | LinkDown | FromLink],
    to_account: trio.MemorySendChannel[LinkDown | FromLink],
    relinks: trio.MemoryReceiveChannel[Relink],
    stop: trio.Event,
    rand: Callable[[], float] = random.random,
    task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Keep one link to the exchange open until *stop* is set; then close it politely and return.

    Closing *to_auth* and *to_account* on return tells the auth and account actors the exchange side is done.
    """
    async with frames, to_auth, to_account, relinks:
        structlog.contextvars.bind_contextvars(actor="connection")
        link = _Connection(settings, board, frames, to_auth, to_account, relinks, stop)
        task_status.started()
        guard = ConnectGuard(settings.max_connects, settings.connect_window)
        generations, failures = count(1), 0
        while not stop.is_set():
            wait = guard.wait_before_next(trio.current_time())
            if wait > 0:
                log.info("exchange.rate_guard", wait_s=round(wait, 3))
                await _sleep_unless_stopped(wait, stop)
                continue
            guard.record(trio.current_time())
            board.set_state("connecting")
            end, healthy = await link.run_once(next(generations))
            if end.reason == STOPPING:
                return
            failures = 1 if healthy else failures + 1
            delay = end.delay
            if delay is None:
                delay = reconnect_delay(failures, initial=settings.initial_delay, maximum=settings.max_delay,
                                        rand=rand())
            if board.state != "auth_failed":  # keep the auth error visible while its retry waits
                board.set_state("backoff", f"{end.reason}; retry in {delay:.1f} s")
            log.warning("exchange.reconnect_scheduled", reason=end.reason, retry_in_s=round(delay, 3),
                        attempt=failures)
            await _sleep_unless_stopped(delay, stop)


async def _sleep_unless_stopped(seconds: float, stop: trio.Event) -> None:
    with trio.move_on_after(seconds):
        await stop.wait()


class _Connection:
    """One link at a time; the methods are the tasks of the per-link nursery."""

    def __init__(self, settings, board, frames, to_auth, to_account, relinks, stop) -> None:  # type: ignore[no-untyped-def]
        self.settings: LinkSettings = settings
        self.board: SessionBoard = board
        self.frames: trio.MemoryReceiveChannel[OutboundFrame] = frames
        self.to_auth: trio.MemorySendChannel[LinkUp | LinkDown | FromLink] = to_auth
        self.to_account: trio.MemorySendChannel[LinkDown | FromLink] = to_account
        self.relinks: trio.MemoryReceiveChannel[Relink] = relinks
        self.stop = stop
        self._ping_ids = count(1)
        self._ever_connected = False
        self._endpoint = _Endpoint.from_url(settings.url)

    async def run_once(self, generation: int) -> tuple[_LinkEnd, bool]:
        """Dial, serve the link until it ends, close it. Returns why it ended and whether it was healthy."""
        s = self.settings
        connected_at: float | None = None
        announced = False  # auth and the router were told the link is down
        end = _LinkEnd("connection failed")
        stream: trio.abc.Stream | None = None
        try:
            with trio.fail_after(s.connect_timeout):
                link, stream = await _dial(self._endpoint, s.max_message_bytes)
            connected_at = trio.current_time()
            if self._ever_connected:
                self.board.reconnects += 1
            self._ever_connected = True
            log.info("exchange.connected", url=s.url, generation=generation)
            end = await self._serve(link, generation)
            # Reader and writer are gone: say so now, not after the polite close, which may wait close_timeout
            # for a peer that no longer answers; meanwhile the router would hand frames to a dead writer and
            # report them sent (``timeout``), and a request arriving now would not wait for the next session.
            end, announced = await self._announce_down(generation, end), True
            with trio.move_on_after(s.close_timeout):  # the reason is cut to fit the close frame by wslink
                await link.close(1000 if end.reason == STOPPING else 1001, end.reason)
        except* trio.TooSlowError:
            end = _LinkEnd(f"no connection within {s.connect_timeout} s")
        except* (HandshakeFailed, OSError, trio.BrokenResourceError) as group:
            end = _LinkEnd(f"connection failed: {_describe(group)}")
        finally:
            if stream is not None:
                await trio.aclose_forcefully(stream)
        if connected_at is None:
            log.warning("exchange.connect_failed", url=s.url, reason=end.reason)
            return end, False
        log.warning("exchange.disconnected", reason=end.reason, generation=generation)
        if not announced:
            end = await self._announce_down(generation, end)
        return end, trio.current_time() - connected_at >= s.healthy_after

    async def _announce_down(self, generation: int, end: _LinkEnd) -> _LinkEnd:
        """Tell auth and the router that link *generation* is down (not when stopping: they are finishing)."""
        if end.reason == STOPPING:
            return end
        if self.board.state != "auth_failed":  # keep the auth error visible while its retry waits
            self.board.set_state("backoff", f"link lost: {end.reason}")  # not ready from this instant
        down = LinkDown(generation, end.reason)
        try:
            await self.to_auth.send(down)
            await self.to_account.send(down)
        except trio.BrokenResourceError:
            return _LinkEnd(STOPPING)
        return end

    async def _serve(self, ws: WebSocketLink, generation: int) -> _LinkEnd:
        ended: list[_LinkEnd] = []
        self._last_frame_at = trio.current_time()  # the heartbeat measures silence from here
        try:
            await self.to_auth.send(LinkUp(generation))
        except trio.BrokenResourceError:
            return _LinkEnd(STOPPING)

        async with trio.open_nursery() as link:

            def finish(end: _LinkEnd) -> None:
                if not ended:
                    ended.append(end)
                link.cancel_scope.cancel()

            link.start_soon(self._read, ws, generation, finish)
            link.start_soon(self._write, ws, generation, finish)
            link.start_soon(self._watch_silence, ws, finish)
            link.start_soon(self._watch_relinks, generation, finish)
            link.start_soon(self._watch_stop, finish)
        return ended[0] if ended else _LinkEnd("link ended")

    async def _read(self, ws, generation: int, finish) -> None:  # type: ignore[no-untyped-def]
        while True:
            try:
                text = await ws.receive()
            except LinkClosed as exc:
                finish(_LinkEnd(f"closed by the exchange ({_close_reason(exc)})"))
                return
            self._last_frame_at = now = trio.current_time()  # any frame at all proves the link is alive
            self.board.note_frame(now)
            try:
                event = decode_exchange_frame(text)
            except RemoteProtocolError as exc:
                log.warning("exchange.bad_frame", error=str(exc), generation=generation)
                continue
            try:
                if isinstance(event, _FOR_ACCOUNT):
                    await hand_over(self.to_account, FromLink(generation, event))
                elif isinstance(event, _FOR_AUTH):
                    await self.to_auth.send(FromLink(generation, event))
            except trio.BrokenResourceError:
                finish(_LinkEnd(STOPPING))  # the router or auth has finished: the daemon is stopping
                return
            if isinstance(event, ServerRestarting):
                log.warning("exchange.restarting", code=20051, message=event.message)
                finish(_LinkEnd("the exchange restarts its server (info 20051)", delay=0.0))
                return
            if isinstance(event, ErrorEvent):
                log.warning("exchange.error", code=event.code, message=event.message)

    async def _write(self, ws, generation: int, finish) -> None:  # type: ignore[no-untyped-def]
        while True:
            try:
                batch = [await self.frames.receive()]
            except trio.EndOfChannel:
                finish(_LinkEnd(STOPPING))  # every producer is gone: the daemon is stopping
                return
            batch += take_waiting(self.frames, _WRITE_BATCH - 1)  # what else is queued goes out in the same write
            frames = []
            for frame in batch:
                if frame.generation == generation:
                    frames.append(frame)
                else:
                    log.info("frame.dropped", kind=frame.kind, reason="meant for an earlier link", **frame.log)
            if not frames:
                continue
            try:
                await ws.send(*(frame.text for frame in frames))
            except LinkClosed as exc:
                for frame in frames:
                    log.info("frame.dropped", kind=frame.kind, reason="link closed", **frame.log)
                finish(_LinkEnd(f"closed while sending ({_close_reason(exc)})"))
                return
            for frame in frames:
                log.info("frame.sent", kind=frame.kind, generation=generation, **frame.log)

    async def _watch_silence(self, ws, finish) -> None:  # type: ignore[no-untyped-def]
        async def send_ping() -> None:
            try:
                await ws.send(ping_frame(next(self._ping_ids)))
            except LinkClosed:
                pass  # the reader reports the closed link

        silence = await run_heartbeat(last_frame=lambda: self._last_frame_at, send_ping=send_ping,
                                      max_silence=self.settings.heartbeat_timeout)
        finish(_LinkEnd(f"no frame for {silence:.1f} s"))

    async def _watch_relinks(self, generation: int, finish) -> None:  # type: ignore[no-untyped-def]
        async for relink in self.relinks:
            note_received(self.relinks)
            if relink.generation == generation:  # a request about an earlier link is stale: ignore it
                finish(_LinkEnd(relink.reason, relink.delay))
                return

    async def _watch_stop(self, finish) -> None:  # type: ignore[no-untyped-def]
        await self.stop.wait()
        finish(_LinkEnd(STOPPING))


def _close_reason(exc: LinkClosed) -> str:
    if exc.code is None:
        return "no close frame"
    return f"code {exc.code}" + (f": {exc.reason}" if exc.reason else "")


def _describe(group: BaseExceptionGroup) -> str:
    return "; ".join(f"{type(e).__name__}: {e}" for e in group.exceptions)[:200]


__all__ = ["STOPPING", "LinkSettings", "run_connection"]
