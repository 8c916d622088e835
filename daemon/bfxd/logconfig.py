"""structlog configuration: JSON lines on stdout for journald, or a console renderer for terminals.

Called once by ``cli.py`` (and by tests, as often as they like: calling it again replaces the previous setup
instead of stacking handlers). Every line carries ``timestamp`` (UTC ISO-8601), ``level`` and ``event``.
trio and trio-websocket (the simulator's server) log through stdlib ``logging``; their WARNING-and-above records
are rendered by the same processors into the same stream, so an accept-loop error cannot disappear.

Writes: each line is written (and flushed) as it is logged, except inside :func:`batched_log_writes`, which the
daemon uses around its trio run: there lines are gathered and written in one go whenever trio is about to wait
for I/O, that is as soon as the daemon has nothing else to do (or after 50 ms or 64 KiB under constant load).
Order and timestamps are unchanged; what changes is one write, and one wake-up of journald, per burst of work
instead of per line, and none on a request's critical path.

Audit trail (``audit=`` given, JSON format): the sink (:mod:`bfxd.log_sink`) seals every line, structlog's and
the stdlib bridge's alike, with ``run``, ``seq`` and ``chain`` (see :mod:`bfxd.audit.chain` for the canonical
form) as it writes it, in the order logged; :func:`flush_log` writes what is gathered at once, which the
connection's writer calls before an input frame's bytes go out (the audit line is written ahead). A log that
cannot be written does not stop the daemon: see :mod:`bfxd.log_sink` and :func:`log_health`. Under systemd
(``journal="auto"``) lines go to journald through its native protocol (:mod:`bfxd.journal`).

Secrets: :func:`redact_secrets` replaces secret-named keys and any :class:`~bfxd.secret.Secret` value with
``"[redacted]"``, and tracebacks are rendered without frame locals (which would include the secret held by
the auth code). It is a second safety net; the first is never binding secrets at all.
"""

from __future__ import annotations

import atexit
import contextlib
import datetime
import io
import json
import logging
import os
import sys
import time
from collections.abc import Iterable, Iterator
from typing import Any, TextIO

import orjson
import structlog
import trio
from structlog.tracebacks import ExceptionDictTransformer
from structlog.typing import EventDict, Processor

from bfxd.audit.chain import Chain
from bfxd.audit.trail import AuditSettings, AuditTrail
from bfxd.journal import JOURNAL_SOCKET, JournalSender, stdout_is_journal
from bfxd.log_output import FdOutput, JournalOutput, LogHealth, TextOutput
from bfxd.log_sink import LineSink, Output
from bfxd.loglevel import live_level_wrapper
from bfxd.secret import Secret

__all__ = ["REDACTED", "STDLIB_LOGGERS", "AuditSettings", "LineSink", "LogHealth", "batched_log_writes",
           "close_audit_trail", "configure_logging", "flush_log", "log_health", "redact_secrets"]

REDACTED = "[redacted]"
SECRET_KEYS = frozenset({"api_secret", "api_key", "authSig", "authPayload", "signature", "secret"})
STDLIB_LOGGERS = ("trio", "trio-websocket")
_MAX_DEPTH = 4  # nested containers scanned for Secret values; event dicts are shallow in practice


def _scrub(value: Any, depth: int) -> Any:
    if isinstance(value, Secret):
        return REDACTED
    if depth >= _MAX_DEPTH:
        return value
    if isinstance(value, dict):
        return {k: REDACTED if k in SECRET_KEYS else _scrub(v, depth + 1) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(_scrub(item, depth + 1) for item in value)
    return value


_PLAIN = frozenset({str, int, float, bool, type(None)})  # exact types: a str subclass gets the full look


def _clean(value: Any, depth: int) -> bool:
    """Whether *value* holds nothing to redact; a walk that builds nothing (most lines have nothing to hide,
    and copying every nested dict to find that out cost 5 µs a line)."""
    if type(value) in _PLAIN:
        return True
    if isinstance(value, Secret):
        return False  # at any depth, as _scrub finds it
    if depth >= _MAX_DEPTH:
        return True
    if isinstance(value, dict):
        if not SECRET_KEYS.isdisjoint(value):
            return False
        items: Iterable[Any] = value.values()
    elif isinstance(value, (list, tuple)):
        items = value
    else:
        return True
    return all(type(item) in _PLAIN or _clean(item, depth + 1) for item in items)


def redact_secrets(_logger: object, _method: str, event_dict: EventDict) -> EventDict:
    """Replace values under secret-named keys, and every Secret instance (also inside dicts/lists), with
    ``"[redacted]"``. Use it in ``capture_logs(processors=[redact_secrets])`` to test for leaks."""
    for key, value in event_dict.items():
        if key in SECRET_KEYS:
            event_dict[key] = REDACTED
        elif type(value) not in _PLAIN and not _clean(value, 0):  # only containers and Secrets need a look
            event_dict[key] = _scrub(value, 0)
    return event_dict


class _UtcStamp:
    """``timestamp``: UTC ISO-8601 with microseconds, as structlog's ``TimeStamper(fmt="iso", utc=True)`` writes
    it, at a fifth of the cost: the date and time of day are formatted once a second."""

    def __init__(self) -> None:
        self._second = -1
        self._prefix = ""

    def __call__(self, _logger: object, _method: str, event_dict: EventDict) -> EventDict:
        second, micros = divmod(round(time.time() * 1_000_000), 1_000_000)  # rounded, as datetime does
        if second != self._second:
            self._prefix = datetime.datetime.fromtimestamp(second, datetime.UTC).strftime("%Y-%m-%dT%H:%M:%S")
            self._second = second
        event_dict["timestamp"] = f"{self._prefix}.{micros:06d}Z"
        return event_dict


def _dumps(obj: Any, **_options: Any) -> str:
    """orjson when it can (5 µs less per line than the json module), json for what orjson refuses
    (integers beyond 64 bits, which an exchange frame could carry)."""
    try:
        return orjson.dumps(obj, default=str, option=orjson.OPT_NON_STR_KEYS).decode()
    except TypeError:
        return json.dumps(obj, default=str)


# show_locals=False: the default dumps every frame's locals, secrets included.
_render_exception = structlog.processors.ExceptionRenderer(ExceptionDictTransformer(show_locals=False))


def _render_json(logger: Any, method: str, event_dict: EventDict) -> str:
    """structlog's ExceptionRenderer and JSONRenderer in one step; the first only when there is an exception."""
    if "exc_info" in event_dict:
        event_dict = _render_exception(logger, method, event_dict)
    return _dumps(event_dict)


def _shared_processors() -> list[Processor]:
    return [
        structlog.contextvars.merge_contextvars,  # first, so request/actor context is on every line
        structlog.processors.add_log_level,
        _UtcStamp(),  # key "timestamp"
        redact_secrets,
    ]


def _renderers(fmt: str, stream: TextIO) -> list[Processor]:
    if fmt == "json":
        return [_render_json]
    if fmt == "console":
        isatty = getattr(stream, "isatty", None)
        colors = bool(isatty and isatty()) and not os.environ.get("NO_COLOR")  # https://no-color.org
        # plain_traceback: rich's pretty tracebacks would show locals too.
        return [structlog.dev.ConsoleRenderer(colors=colors, exception_formatter=structlog.dev.plain_traceback)]
    raise ValueError(f"unknown log format {fmt!r} (expected json or console)")


class _FlushWhenIdle(trio.abc.Instrument):
    def __init__(self, sink: LineSink, max_delay: float) -> None:
        self._sink, self._max_delay = sink, max_delay

    def before_io_wait(self, timeout: float) -> None:
        trail = _trail
        if trail is not None and trail.due():
            trail.checkpoint()
        oldest = self._sink.oldest
        if oldest is not None and (timeout > 0 or time.monotonic() - oldest >= self._max_delay):
            self._sink.flush()


_sink = LineSink(TextOutput(sys.stdout))
_trail: AuditTrail | None = None


def log_health() -> LogHealth:
    """Whether log lines are getting out (for the ``status`` op: ``log_health().as_status()``)."""
    return _sink.health


def _output(stream: TextIO, journal: str | None) -> Output:
    """journald's socket if asked for (``"auto"``: when stdout is the journal and journald listens), else the
    stream's file descriptor, written directly; a stream without one (tests) as a text stream."""
    if journal is not None and journal != "auto":
        return JournalOutput(JournalSender(journal))
    try:
        fd = stream.fileno()
    except (OSError, ValueError, io.UnsupportedOperation):
        return TextOutput(stream)
    if journal == "auto" and stdout_is_journal(fd=fd) and os.path.exists(JOURNAL_SOCKET):
        return JournalOutput(JournalSender(JOURNAL_SOCKET))
    stream.flush()  # what was printed before goes first
    return FdOutput(fd)


def flush_log() -> None:
    """Write the lines gathered so far, now (write-ahead: before the bytes they describe leave)."""
    _sink.flush()


def close_audit_trail() -> None:
    """At exit: the run's last line (``audit.closed``, anchored), written out."""
    global _trail
    trail, _trail = _trail, None
    if trail is not None:
        trail.close()
        _sink.write_through()


@contextlib.contextmanager
def batched_log_writes(*, max_delay: float = 0.05, max_bytes: int = 64 * 1024) -> Iterator[None]:
    """Inside ``trio.run``: gather log lines; write them whenever trio is about to sleep waiting for I/O, or
    once they are *max_delay* seconds old or *max_bytes* long (under load trio may not sleep for a while).
    Everything gathered is written on the way out, whatever the way out is."""
    sink = _sink
    instrument = _FlushWhenIdle(sink, max_delay)
    sink.batch(max_bytes)
    trio.lowlevel.add_instrument(instrument)
    try:
        yield
    finally:
        trio.lowlevel.remove_instrument(instrument)
        sink.write_through()


class _BridgeHandler(logging.Handler):
    """Hands stdlib records (trio, trio-websocket) to the sink; marks the handler we install, so a second
    configure_logging() replaces it instead of adding one."""

    def __init__(self, sink: LineSink) -> None:
        super().__init__()
        self._sink = sink

    def emit(self, record: logging.LogRecord) -> None:
        try:
            self._sink.msg(self.format(record))
        except Exception:
            self.handleError(record)


def configure_logging(*, fmt: str, level: str, stream: TextIO = sys.stdout, cache: bool = True,
                      audit: AuditSettings | None = None, journal: str | None = None) -> None:
    """Configure structlog (and the stdlib bridge) to write one rendered line per event to ``stream``.

    ``fmt`` is ``"json"`` or ``"console"``; ``level`` one of debug/info/warning/error. ``cache=False`` in
    tests, because cached loggers ignore ``structlog.testing.capture_logs()``. With ``audit`` (JSON only), a new
    run of the audit trail begins: every line is sealed into the hash chain, ``audit.started`` is its first
    line, and ``audit.closed`` its last, at exit. ``journal``: None (write to *stream*), a journald socket path,
    or ``"auto"`` (journald's native protocol when *stream* is the journal, as under systemd).
    """
    global _sink, _trail
    close_audit_trail()  # the previous run's last line goes to the previous stream
    _sink.write_through()  # whatever the previous sink still holds
    _sink = sink = LineSink(_output(stream, journal), Chain() if audit is not None and fmt == "json" else None,
                            json_lines=fmt == "json")
    renderers = _renderers(fmt, stream)
    structlog.configure(
        processors=[*_shared_processors(), *renderers],
        wrapper_class=live_level_wrapper(level.lower()),  # set_log_level() changes it live (SIGHUP)
        logger_factory=lambda *_args: sink,
        cache_logger_on_first_use=cache,
    )
    handler = _BridgeHandler(sink)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            foreign_pre_chain=[
                structlog.stdlib.add_logger_name,  # "logger": "trio-websocket" etc.
                structlog.stdlib.ExtraAdder(),
                *_shared_processors(),
            ],
            processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, *renderers],
        )
    )
    for name in STDLIB_LOGGERS:
        logger = logging.getLogger(name)
        for old in [h for h in logger.handlers if isinstance(h, _BridgeHandler)]:
            logger.removeHandler(old)
        logger.addHandler(handler)
        logger.setLevel(logging.WARNING)
        logger.propagate = False  # the root logger's handlers (if any) would print it a second time
    if sink.chain is not None:
        assert audit is not None
        unfiltered = structlog.wrap_logger(sink, processors=[*_shared_processors(), *renderers],
                                           wrapper_class=structlog.make_filtering_bound_logger(logging.DEBUG))
        _trail = AuditTrail(audit, sink.head, unfiltered)
        _trail.start()


atexit.register(close_audit_trail)
