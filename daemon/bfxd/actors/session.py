"""The session board: the exchange session's state, as ``status`` shows it, and a way to wait on it.

States and who moves them::

                 connection                      auth                          auth
    connecting ─────────────▶ authenticating ─────────▶ ready ◀──────────▶ maintenance
        ▲   │ dial failed          │ FAILED / no answer  │ (20060 / info status 0)  │ 20061: relink
        │   ▼                      ▼                     │                          │
        └─ backoff ◀──────── auth_failed ◀──────────────┘ link lost / 20051 / silence (connection)
                                      (waits the backoff ceiling, then connecting)
    any state ──(SIGTERM)──▶ stopping

The connection actor writes connecting / backoff and the link counters, the auth actor authenticating /
maintenance / auth_failed and the user id, the account router ready (authenticated *and* the link's offer
snapshot applied, so the book is live) and the pending and offer counts, the daemon stopping. Readers take
``snapshot()``; waiters use ``wait_ready()`` or ``wait_changed()``.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, Literal

import attrs
import trio

State = Literal["connecting", "authenticating", "ready", "maintenance", "auth_failed", "backoff", "stopping"]


@attrs.frozen
class SessionSnapshot:
    state: State
    since: float  # wall-clock seconds (UNIX time) of the last state change
    user_id: int | None
    last_message_age_s: float | None
    reconnects: int
    pending: int
    offers: int
    queued_inputs: int
    pace: float | None
    detail: str | None  # why: the auth error, the backoff delay, the maintenance message…
    version: int  # increases on every state change

    def to_json(self) -> dict[str, Any]:
        return {
            "state": self.state,
            "authenticated": self.state in ("ready", "maintenance"),
            "user_id": self.user_id,
            "since": round(self.since, 3),
            "last_message_age_s": None if self.last_message_age_s is None else round(self.last_message_age_s, 3),
            "reconnects": self.reconnects,
            "pending": self.pending,
            "offers": self.offers,
            "inputs": {"queued": self.queued_inputs,
                       "per_second": None if self.pace is None else round(self.pace, 3)},
            "detail": self.detail,
        }


class SessionBoard:
    """Shared, written by the actors named in the module docstring; everything else only reads."""

    def __init__(self, *, wall_clock: Callable[[], float] = time.time) -> None:
        self._wall_clock = wall_clock
        self._state: State = "connecting"
        self._since = wall_clock()
        self._detail: str | None = None
        self._version = 0
        self._changed = trio.Event()
        # Counters, written by their actors on every change: plain attributes (no event per change).
        self.user_id: int | None = None
        self.reconnects = 0
        self.pending = 0
        self.offers = 0
        self.queued_inputs = 0  # waiting for their turn under the input pace
        self.pace: float | None = None  # inputs per second allowed now (None: no input sent yet)
        self._last_frame_at: float | None = None

    @property
    def state(self) -> State:
        return self._state

    @property
    def ready(self) -> bool:
        return self._state == "ready"

    def set_state(self, state: State, detail: str | None = None) -> None:
        """Move to *state*; waiters wake. Once ``stopping``, the board stays there."""
        if self._state == "stopping":
            return
        if state == self._state and detail == self._detail:
            return
        self._state, self._detail = state, detail
        self._since = self._wall_clock()
        self._version += 1
        # trio.Event cannot be cleared: wake the current waiters and give later ones a fresh event.
        self._changed.set()
        self._changed = trio.Event()

    def note_frame(self, now: float | None = None) -> None:
        self._last_frame_at = trio.current_time() if now is None else now

    def snapshot(self) -> SessionSnapshot:
        age = None if self._last_frame_at is None else max(0.0, trio.current_time() - self._last_frame_at)
        return SessionSnapshot(
            state=self._state, since=self._since, user_id=self.user_id, last_message_age_s=age,
            reconnects=self.reconnects, pending=self.pending, offers=self.offers, queued_inputs=self.queued_inputs,
            pace=self.pace, detail=self._detail,
            version=self._version,
        )

    async def wait_changed(self, since_version: int) -> None:
        """Return once the state changed after *since_version* (at once if it already has)."""
        while self._version == since_version:
            await self._changed.wait()

    async def wait_ready(self) -> None:
        while self._state != "ready":
            await self._changed.wait()
