"""One log watcher for the tests: structured log events kept in order, to look up and to wait on (never to sleep).

Two feeds, one interface:
- an in-process daemon: the watcher is a structlog processor, passed to
  ``structlog.testing.capture_logs(processors=[..., watch])``;
- a child process (``bfxd run`` logging JSON lines on stdout): ``feed(chunk)`` as its bytes arrive, ``close()``
  when its output ends, so that a wait for an event that can no longer come fails at once instead of at the guard.

Every wait is bounded by the loopback hang guard and wakes on each new event (the daemon logs every step it takes).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import trio
from tests.integration.helpers import GUARD_S

Entry = dict[str, Any]


class LogWatch:
    """Every event seen so far, in order (``entries``), with ``find``, ``wait_for`` and ``wait_until``."""

    def __init__(self, *, describe_end: Callable[[], str] = lambda: "") -> None:
        self.entries: list[Entry] = []
        self.ended = False  # the process's output has ended: no event will come any more
        self._describe_end = describe_end  # what to add to a failure once the feed has ended (say, stderr)
        self._unfinished = b""  # the start of a JSON line whose end has not arrived yet
        self._changed = trio.Event()

    # ---- feeds ------------------------------------------------------------------------------------------------

    def __call__(self, _logger: object, _method: str, event_dict: Entry) -> Entry:
        """As a structlog processor: keep a copy of the event (later processors may change theirs), pass it on."""
        self.entries.append(dict(event_dict))
        self._wake()
        return event_dict

    def feed(self, chunk: bytes) -> None:
        """Bytes of a JSON-lines log as they arrive: each complete line is one event (a stray line fails loudly)."""
        *lines, self._unfinished = (self._unfinished + chunk).split(b"\n")
        self.entries += [_parse(line) for line in lines if line.strip()]
        self._wake()

    def close(self) -> None:
        """The log's source has ended: keep its last line even without a newline, and fail waits from now on."""
        if self._unfinished.strip():
            self.entries.append(_parse(self._unfinished))
        self._unfinished = b""
        self.ended = True
        self._wake()

    # ---- looking and waiting ----------------------------------------------------------------------------------

    def find(self, event: str, **fields: Any) -> list[Entry]:
        """Every entry named *event* whose *fields* have these values, oldest first."""
        return [e for e in self.entries if e.get("event") == event and all(e.get(k) == v for k, v in fields.items())]

    async def wait_for(self, event: str, *, count: int = 1, **fields: Any) -> Entry:
        """The *count*-th entry named *event* with *fields*, once it has been logged."""
        await self.wait_until(lambda: len(self.find(event, **fields)) >= count,
                              what=f"{event} {fields or ''} (#{count})")
        return self.find(event, **fields)[count - 1]

    async def wait_until(self, predicate: Callable[[], bool], *, what: str = "the condition") -> None:
        """Return once *predicate* holds, checking it after each new event."""
        with trio.fail_after(GUARD_S):
            while not predicate():
                if self.ended:
                    raise AssertionError(f"the log ended without {what}. {self._describe_end()}")
                await self._changed.wait()

    def notice(self) -> None:
        """Something else the waiters' predicates look at has changed (a process's stderr, say)."""
        self._wake()

    def _wake(self) -> None:
        self._changed.set()
        self._changed = trio.Event()


def _parse(line: bytes) -> Entry:
    try:
        entry = json.loads(line)
    except ValueError:
        entry = None
    if not isinstance(entry, dict):
        raise AssertionError(f"not a JSON log line: {line!r}")
    return entry
