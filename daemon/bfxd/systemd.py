"""The sd_notify protocol in plain Python, and the watchdog that decides when to ping (systemd.md §1-§2).

No libsystemd: the protocol is one datagram of ``KEY=VALUE`` lines to ``$NOTIFY_SOCKET``. The notifier is
synchronous and never blocks (a non-blocking socket; a full queue drops the message), so it works before
``trio.run`` (``STATUS=config error…``) and inside the loop without awaiting. When not supervised, every
send is a no-op returning False.

The watchdog pings ``WATCHDOG=1`` only while the loop is responsive and no registered actor is stale; a dead
exchange link is not a reason to ping less (reconnecting is the connection actor's job).
"""

from __future__ import annotations

import math
import os
import socket
import time
from collections.abc import Awaitable, Callable, MutableMapping, Sequence

import structlog
import trio

__all__ = ["ActorProgress", "Notifier", "run_watchdog", "watchdog_period"]

LOOP_LAG_WARNING = 1.0  # seconds a tick may wake late before it is worth a log line


def _notify_address(raw: str) -> str | bytes | None:
    if raw.startswith("@"):
        return b"\0" + raw[1:].encode()  # Linux abstract namespace
    return raw if raw.startswith("/") else None  # "vsock:…", empty or garbage: not supervised


class Notifier:
    """Sends sd_notify messages. Reads ``NOTIFY_SOCKET`` and removes it from ``env`` so children don't
    inherit it. Every method returns True if the datagram was handed to the kernel, False otherwise; none
    raises (a missing or busy service manager must not take the daemon down)."""

    def __init__(self, env: MutableMapping[str, str] = os.environ) -> None:
        self._address = _notify_address(env.pop("NOTIFY_SOCKET", ""))
        self._sock: socket.socket | None = None
        if self._address is not None:
            try:
                # Python sockets are close-on-exec already; non-blocking so a full queue never stalls us.
                self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
                self._sock.setblocking(False)
            except OSError:
                self._sock = None

    @property
    def enabled(self) -> bool:
        return self._sock is not None

    def send(self, *fields: str) -> bool:
        """Send ``fields`` as one datagram (they must not contain newlines; use status() for free text)."""
        if self._sock is None or self._address is None:
            return False
        try:
            self._sock.sendto("\n".join(fields).encode(), self._address)
        except OSError:  # ENOENT/ECONNREFUSED: manager gone; EAGAIN: queue full. Both: drop the message.
            return False
        return True

    def ready(self, status: str | None = None) -> bool:
        return self.send("READY=1", *([_status_field(status)] if status is not None else []))

    def status(self, text: str) -> bool:
        return self.send(_status_field(text))

    def stopping(self) -> bool:
        return self.send("STOPPING=1")

    def reloading(self) -> bool:
        """``RELOADING=1`` with ``MONOTONIC_USEC`` in the same datagram, as Type=notify-reload requires."""
        usec = time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000
        return self.send("RELOADING=1", f"MONOTONIC_USEC={usec}")

    def watchdog(self) -> bool:
        return self.send("WATCHDOG=1")

    def watchdog_trigger(self) -> bool:
        """Ask systemd to act as if the watchdog expired now (v243+): an immediate, explained restart."""
        return self.send("WATCHDOG=trigger")

    def close(self) -> None:
        if self._sock is not None:
            self._sock.close()
            self._sock = None

    def __enter__(self) -> Notifier:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def _status_field(text: str) -> str:
    return "STATUS=" + " ".join(text.splitlines())  # one line: a newline would start a new KEY=


def watchdog_period(env: MutableMapping[str, str] = os.environ) -> float | None:
    """Seconds between pings (half of ``WATCHDOG_USEC``, as sd_watchdog_enabled(3) advises), or None.

    None when the variable is absent or malformed, or ``WATCHDOG_PID`` names another process. Both
    variables are removed from ``env`` either way, so children never see them.
    """
    usec, pid = env.pop("WATCHDOG_USEC", None), env.pop("WATCHDOG_PID", None)
    try:
        if pid is not None and int(pid) != os.getpid():
            return None
        value = int(usec) if usec is not None else 0
    except ValueError:
        return None
    return value / 2 / 1e6 if value > 0 else None


class ActorProgress:
    """Who has made progress lately. Pure bookkeeping, times passed in (``trio.current_time()``).

    An actor registers with the longest quiet time it can legitimately have (e.g. its own timeout plus a
    margin), stamps whenever it transitions or wakes, and unregisters when it ends. Stamps for names that
    are not registered are ignored (an actor racing its own unregistration at shutdown).
    """

    def __init__(self) -> None:
        self._max_quiet: dict[str, float] = {}
        self._last: dict[str, float] = {}

    def register(self, name: str, max_quiet: float, now: float) -> None:
        if not max_quiet > 0:
            raise ValueError(f"max_quiet must be positive, got {max_quiet!r}")
        self._max_quiet[name] = max_quiet
        self._last[name] = now

    def stamp(self, name: str, now: float) -> None:
        if name in self._last:
            self._last[name] = max(self._last[name], now)

    def unregister(self, name: str) -> None:
        self._max_quiet.pop(name, None)
        self._last.pop(name, None)

    def stale(self, now: float) -> list[str]:
        """Sorted names of actors quiet for longer than they said they could be."""
        return sorted(name for name, last in self._last.items() if now - last > self._max_quiet[name])


async def run_watchdog(
    notifier: Notifier,
    *,
    period: float,
    probe: Callable[[], Awaitable[Sequence[str]]],
    task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Every ``period`` seconds: measure loop lag, ask ``probe()`` for stale actors, then ping or withhold.

    Runs until cancelled. Ticks are at ``start + n * period`` (no drift); ticks missed because the loop was
    blocked are skipped, not replayed in a burst. A probe that does not answer within
    ``min(1, period / 2)`` counts as stale ``["probe"]`` (the command path itself is wedged). Unhealthy:
    log ``watchdog.withheld`` and send ``WATCHDOG=trigger`` once per unhealthy spell. An exception from
    ``probe`` propagates: it is a bug, and the daemon should exit 1 and be restarted.
    """
    if not (period > 0 and math.isfinite(period)):
        raise ValueError(f"period must be a positive number of seconds, got {period!r}")
    log = structlog.get_logger()  # per call, not per module: a cached module-level proxy defeats capture_logs
    probe_budget = min(1.0, period / 2)
    start = trio.current_time()
    tick = 1
    triggered = False
    task_status.started()
    while True:
        deadline = start + tick * period
        await trio.sleep_until(deadline)
        lag = trio.current_time() - deadline
        if lag > LOOP_LAG_WARNING:
            log.warning("loop.lag", lag_s=round(lag, 3), period_s=period)
        stale: list[str] = ["probe"]
        with trio.move_on_after(probe_budget):
            stale = list(await probe())
        if not stale:
            notifier.watchdog()
            triggered = False
        else:
            log.error("watchdog.withheld", stale=stale)
            if not triggered:
                # If the datagram could not be sent, try again next tick rather than never.
                triggered = notifier.watchdog_trigger()
        # Next tick strictly in the future: after a long block, skip the missed ones.
        tick = max(tick + 1, math.floor((trio.current_time() - start) / period) + 1)
