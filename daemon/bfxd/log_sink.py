"""The log sink: where every rendered line goes (structlog's logger and the stdlib bridge alike, so their order
holds), sealed into the audit chain as it is written, and what happens when it cannot be written.

Writes through by default; ``batch()`` makes it gather lines until ``flush()``.

Sealing happens at the write, in the order the lines were logged: a write that fails rolls the chain back to the
last whole line that got out, so lost lines leave no gap in ``seq``. An unwritable log (disk full, ``ulimit -f``,
journald gone) never stops the daemon: the lines of failed writes are dropped and counted (``health``), the first
failure of a streak is said once on stderr, every later write tries again, and the first one that succeeds begins
with a ``log.lost`` line (``lost_lines``, ``since``, ``error``, ``torn``) that the chain then carries on from. A line
cut short by a failed write is ended by a newline before that ``log.lost`` line (``torn: true``).
"""

from __future__ import annotations

import datetime
import threading
import time

import orjson

from bfxd.audit.chain import Chain
from bfxd.log_output import FdOutput, JournalOutput, LogHealth, TextOutput, WriteFailed, say_on_stderr

__all__ = ["LineSink", "Output"]

Output = FdOutput | JournalOutput | TextOutput


class LineSink:
    def __init__(self, output: Output, chain: Chain | None = None, *, json_lines: bool = True) -> None:
        self.output = output
        self.chain = chain  # None: lines are written as rendered (console format, tests)
        self.health = LogHealth()
        self._json = json_lines
        self._lock = threading.Lock()  # a stdlib record may come from a worker thread
        self._lines: list[str] = []
        self._size = 0
        self._max_bytes: int | None = None  # None: write through
        self.oldest: float | None = None  # time.monotonic() of the oldest line not written yet

    def msg(self, message: str) -> None:
        with self._lock:
            if self._max_bytes is None:
                self._write([message])
                return
            if not self._lines:
                self.oldest = time.monotonic()
            self._lines.append(message)
            self._size += len(message)
            if self._size >= self._max_bytes:
                self._write_batch()

    # structlog calls the method named after the level
    debug = info = warning = warn = error = err = critical = exception = fatal = failure = log = msg

    def batch(self, max_bytes: int) -> None:
        with self._lock:
            self._max_bytes = max_bytes

    def write_through(self) -> None:
        with self._lock:
            self._write_batch()
            self._max_bytes = None

    def flush(self) -> None:
        with self._lock:
            self._write_batch()

    def head(self) -> tuple[str, int, str]:
        """(run, seq, chain) of the newest line written, after writing what is gathered."""
        with self._lock:
            self._write_batch()
            assert self.chain is not None
            return self.chain.run, self.chain.last_seq, self.chain.head.hex()

    def _write_batch(self) -> None:
        if self._lines:
            lines, self._lines = self._lines, []
            self._size, self.oldest = 0, None
            self._write(lines)

    def _write(self, lines: list[str]) -> None:
        health = self.health
        notice = 1 if health.failing else 0
        if notice:
            lines = [self._lost_line(), *lines]
        sealed, undo = self._seal(lines)
        try:
            self.output.write_lines(sealed, "\n" if notice and health.streak_torn else "")
        except WriteFailed as failed:
            undo(failed.written)
            if notice and failed.written:
                health.recovered()  # the log.lost line got out: that streak is told
                notice = 0
            if health.fail(failed.error, len(lines) - failed.written - notice, failed.torn):
                say_on_stderr(f"cannot write the log ({health.error}); still serving, log lines are lost until "
                              "writes work again (the status op shows it)")
            return
        if notice:
            lost = health.streak_lost
            health.recovered()
            say_on_stderr(f"the log is written again; {lost} lines were lost (see the log.lost line)")

    def _seal(self, lines: list[str]):  # type: ignore[no-untyped-def]
        """The lines with run/seq/chain, and how to roll the chain back to the first *n* of them."""
        chain = self.chain
        if chain is None:
            return lines, lambda _n: None
        start = (chain.seq, chain.head)
        heads = []
        sealed = []
        for line in lines:
            sealed.append(chain.seal(line) if line.endswith("}") else line)
            heads.append((chain.seq, chain.head))

        def undo(written: int) -> None:
            chain.seq, chain.head = heads[written - 1] if written else start

        return sealed, undo

    def _lost_line(self) -> str:
        health = self.health
        fields = {"lost_lines": health.streak_lost, "since": health.failing_since, "error": health.error,
                  "torn": health.streak_torn}
        if not self._json:
            return "log.lost " + " ".join(f"{k}={v}" for k, v in fields.items())
        stamp = datetime.datetime.now(datetime.UTC).isoformat().replace("+00:00", "Z")
        return orjson.dumps({**fields, "event": "log.lost", "level": "warning", "timestamp": stamp}).decode()
