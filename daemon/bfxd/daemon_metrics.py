"""bfxd's own series: what ``GET /metrics`` and the ``metrics`` op show. One ``DaemonMetrics`` per daemon.

Read from the session board when scraped (no cost between scrapes): the session state, reconnects, offers,
pending cancels, the age of the last frame. Counted by the actors (the hot-path API; keep the child):

- ``metrics.requests(op, outcome).inc()`` — a request's final answer; *outcome* is ``ok`` or the error type;
- ``metrics.request_duration(op).observe(seconds)`` — from the request line parsed to its answer written;
- ``metrics.inputs_sent(kind).inc()`` — an input frame went out (``foc``, ``fon``, ``auth``, ``ping`` …);
- ``metrics.input_queue.set(n)`` — frames waiting for their turn under the input pace;
- ``metrics.clients.inc()`` / ``.dec()`` — a client connected / left.

``requests`` and the other calls are the families' bound ``labels`` methods: after the first call with given
labels, a dict lookup plus the add. A caller on the cancel path may keep the child itself and pay only the add.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Sequence
from typing import get_args

import bfxd
from bfxd.actors.session import SessionBoard, State
from bfxd.metrics import Counter, Gauge, Histogram, Registry

__all__ = ["DaemonMetrics"]

_STATES: tuple[str, ...] = get_args(State)


class DaemonMetrics:
    def __init__(self, board: SessionBoard | None = None, *, wall_clock: Callable[[], float] = time.time) -> None:
        self.registry = registry = Registry()
        self._board = board
        started, version = wall_clock(), bfxd.__version__
        registry.function("bfxd_info", "bfxd's version (always 1)", lambda: [((version,), 1)],
                          labelnames=("version",))
        registry.function("bfxd_start_time_seconds", "when this daemon started (UNIX time)", lambda: [((), started)])
        registry.function("bfxd_session_state", "1 for the exchange session's current state, 0 for the others",
                          self._states, labelnames=("state",))
        registry.function("bfxd_reconnects", "links to the exchange opened after the first", self._board_value(
            "reconnects"), kind="counter")
        registry.function("bfxd_offers", "active funding offers in the live book", self._board_value("offers"))
        registry.function("bfxd_pending_cancels", "cancels sent and not yet answered",
                          self._board_value("pending"))
        registry.function("bfxd_last_frame_age_seconds", "seconds since the last frame from the exchange",
                          self._last_frame_age)
        self._requests = registry.counter("bfxd_requests", "client requests by op and outcome (ok or error type)",
                                          ("op", "outcome"))
        self._durations = registry.histogram("bfxd_request_duration_seconds",
                                             "time from a request line read to its answer, by op", ("op",))
        self._inputs = registry.counter("bfxd_inputs_sent", "input frames sent to the exchange, by kind", ("kind",))
        self.input_queue: Gauge = registry.gauge("bfxd_input_queue", "input frames waiting for their turn").labels()
        self.clients: Gauge = registry.gauge("bfxd_clients", "connected local clients").labels()
        # Bound once: each call below is then one method call and one dict lookup.
        self.requests: Callable[[str, str], Counter] = self._requests.labels
        self.request_duration: Callable[[str], Histogram] = self._durations.labels
        self.inputs_sent: Callable[[str], Counter] = self._inputs.labels

    def attach(self, board: SessionBoard) -> None:
        """Read the session series from *board* (run_daemon attaches its own board to the metrics it is given)."""
        self._board = board

    def render(self) -> str:
        """The Prometheus text exposition: what the ``metrics`` op answers and ``GET /metrics`` serves."""
        return self.registry.render()

    def _states(self) -> Iterable[tuple[Sequence[str], float]]:
        if self._board is None:
            return []
        current = self._board.state
        return [((state,), 1 if state == current else 0) for state in _STATES]

    def _board_value(self, name: str) -> Callable[[], Iterable[tuple[Sequence[str], float]]]:
        def collect() -> Iterable[tuple[Sequence[str], float]]:
            return [] if self._board is None else [((), getattr(self._board, name))]

        return collect

    def _last_frame_age(self) -> Iterable[tuple[Sequence[str], float]]:
        if self._board is None:
            return []
        age = self._board.snapshot().last_message_age_s
        return [] if age is None else [((), round(age, 6))]
