"""The auth actor: authenticates every new link and decides when inputs may flow.

Per link: on ``LinkUp`` it sends the auth frame with a fresh nonce and waits for the answer under
*auth_timeout*. ``OK`` → the account router is told inputs may be sent on this link (it declares the session
``ready`` once the link's offer snapshot is applied), or ``maintenance`` if the exchange said so.
``FAILED`` → ``auth_failed`` and a new link after *retry_delay* (the backoff ceiling: never a hot loop).
A nonce error → a new link at once with a nonce pushed well past the refused one.
Info 20060 (or a greeting with platform status 0) holds inputs; 20061 replaces the link, which re-authenticates
and brings a fresh snapshot: the resynchronisation the exchange advises. Messages about earlier links are
ignored.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable

import attrs
import structlog
import trio

from bfxd.actors.channels import note_received
from bfxd.actors.messages import FromLink, LinkDown, LinkUp, OutboundFrame, Relink, SessionHeld, SessionReady
from bfxd.actors.session import SessionBoard
from bfxd.protocol import (
    AuthFailed,
    AuthOk,
    Info,
    InfoMessage,
    MaintenanceEnded,
    MaintenanceStarted,
    NonceSource,
    auth_frame,
)
from bfxd.secret import Secret

log = structlog.get_logger()

_NONCE_STEP_US = 1_000_000  # after a nonce error, jump 1 s, 2 s, 4 s… of microseconds past the last nonce
_NONCE_STEP_MAX_US = 3600 * 1_000_000


@attrs.frozen
class AuthSettings:
    api_key: Secret
    api_secret: Secret
    auth_timeout: float
    retry_delay: float  # after a refusal: the reconnect backoff ceiling


def _wall_clock_us() -> int:
    return time.time_ns() // 1000


async def run_auth(
    *,
    settings: AuthSettings,
    board: SessionBoard,
    events: trio.MemoryReceiveChannel[LinkUp | LinkDown | FromLink],
    frames: trio.MemorySendChannel[OutboundFrame],
    to_account: trio.MemorySendChannel[SessionReady | SessionHeld],
    relinks: trio.MemorySendChannel[Relink],
    clock_us: Callable[[], int] = _wall_clock_us,
    task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Run until *events* ends (the connection actor is done)."""
    async with events, frames, to_account, relinks:
        structlog.contextvars.bind_contextvars(actor="auth")
        actor = _Auth(settings, board, frames, to_account, relinks, clock_us)
        task_status.started()
        while True:
            with trio.move_on_at(actor.deadline) as overdue:
                try:
                    message = await events.receive()
                except trio.EndOfChannel:
                    return
                note_received(events)
            try:
                if overdue.cancelled_caught:
                    await actor.answer_overdue()
                else:
                    await actor.handle(message)
            except trio.BrokenResourceError:
                return  # the connection actor is gone: the daemon is stopping


class _Auth:
    def __init__(self, settings, board, frames, to_account, relinks, clock_us) -> None:  # type: ignore[no-untyped-def]
        self.settings: AuthSettings = settings
        self.board: SessionBoard = board
        self.frames = frames
        self.to_account = to_account
        self.relinks = relinks
        self.clock_us = clock_us
        self.nonces = NonceSource()
        self.key_fingerprint = settings.api_key.fingerprint()
        self.generation: int | None = None
        self.authenticated = False
        self.maintenance = False
        self.nonce_errors = 0
        self.deadline = math.inf

    async def handle(self, message: LinkUp | LinkDown | FromLink) -> None:
        if isinstance(message, LinkUp):
            await self._authenticate(message.generation)
        elif isinstance(message, LinkDown):
            if message.generation == self.generation:
                self.generation, self.deadline = None, math.inf
        elif message.generation == self.generation:
            await self._on_event(message.event)

    async def answer_overdue(self) -> None:
        self.deadline = math.inf
        log.warning("exchange.auth_timeout", waited_s=self.settings.auth_timeout)
        await self._relink(f"no auth answer within {self.settings.auth_timeout} s", None)

    async def _authenticate(self, generation: int) -> None:
        self.generation, self.authenticated, self.maintenance = generation, False, False
        self.board.set_state("authenticating")
        nonce = self.nonces.next(self.clock_us())
        text = auth_frame(self.settings.api_key, self.settings.api_secret, nonce)
        # The frame text holds the signature: only these fields are ever logged.
        await self.frames.send(OutboundFrame(generation, text, "auth",
                                             {"key_fingerprint": self.key_fingerprint, "nonce": nonce}))
        self.deadline = trio.current_time() + self.settings.auth_timeout

    async def _on_event(self, event: object) -> None:
        if isinstance(event, AuthOk):
            if self.authenticated:
                # A second auth OK on the same link answers no auth frame of ours: it changes nothing (the link's
                # session belongs to the first user id), and it is said out loud.
                log.warning("exchange.auth_duplicate", user_id=event.user_id, kept_user_id=self.board.user_id)
                return
            previous = self.board.user_id
            if previous is not None and previous != event.user_id:
                # The same key now answers for another account: the book is rebuilt from the new snapshot, but
                # an operator must hear of it.
                log.error("exchange.user_changed", previous_user_id=previous, user_id=event.user_id,
                          key_fingerprint=self.key_fingerprint)
            self.deadline, self.authenticated, self.nonce_errors = math.inf, True, 0
            self.board.user_id = event.user_id
            log.info("exchange.auth_ok", user_id=event.user_id, key_fingerprint=self.key_fingerprint)
            await self._publish()
        elif isinstance(event, AuthFailed):
            self.deadline = math.inf
            await self._auth_failed(event)
        elif isinstance(event, (MaintenanceStarted, Info)):
            if isinstance(event, Info) and not event.in_maintenance:
                log.info("exchange.info", version=event.version, server_id=event.server_id)
                return
            self.maintenance = True
            log.warning("exchange.maintenance", phase="start",
                        message=getattr(event, "message", "platform status 0 on connect"))
            await self._publish()
        elif isinstance(event, MaintenanceEnded):
            log.info("exchange.maintenance", phase="end", message=event.message)
            await self._relink("maintenance ended (info 20061): re-authenticate and resynchronise", 0.0)
        elif isinstance(event, InfoMessage):
            log.info("exchange.info", code=event.code, message=event.message)

    async def _publish(self) -> None:
        """Tell the board and the account router whether inputs may flow on this link."""
        assert self.generation is not None
        if not self.authenticated:
            if self.maintenance:
                self.board.set_state("maintenance", "exchange maintenance")
            return
        if self.maintenance:
            self.board.set_state("maintenance", "exchange maintenance")
            await self.to_account.send(SessionHeld(self.generation, "maintenance"))
        else:
            # "ready" is the router's word: it waits for this link's fos snapshot too (account.py).
            await self.to_account.send(SessionReady(self.generation))

    async def _auth_failed(self, event: AuthFailed) -> None:
        if event.is_nonce_error:
            self.nonce_errors += 1
            step = min(_NONCE_STEP_MAX_US, _NONCE_STEP_US * 2 ** min(self.nonce_errors - 1, 20))
            self.nonces.skip_past(self.nonces.last + step)
            log.warning("exchange.auth_nonce_error", code=event.code, message=event.message,
                        next_nonce_after=self.nonces.last)
            await self._relink(f"nonce refused ({event.message})", 0.0)
            return
        self.board.set_state("auth_failed", f"{event.code}: {event.message}")
        log.error("exchange.auth_failed", code=event.code, message=event.message,
                  key_fingerprint=self.key_fingerprint, retry_in_s=self.settings.retry_delay)
        await self._relink(f"auth refused ({event.code}: {event.message})", self.settings.retry_delay)

    async def _relink(self, reason: str, delay: float | None) -> None:
        if self.generation is not None:
            if self.authenticated:
                await self.to_account.send(SessionHeld(self.generation, "relinking"))
            await self.relinks.send(Relink(self.generation, reason, delay))
