"""Where the log sink's lines physically go, and what happens when they cannot go there.

Three outputs, one interface: ``write_lines(lines, lead)`` writes *lead* (``"\n"`` to end a line a failed write
left torn, else nothing) and whole lines, or raises :class:`WriteFailed` saying how many whole lines did get out
and whether one was left torn:

- :class:`FdOutput`: a file descriptor (stdout), written with ``os.write`` directly: a text stream's buffer
  would keep the bytes of a failed write and replay them later, out of order;
- :class:`JournalOutput`: journald's native protocol, a datagram per line (:mod:`bfxd.journal`);
- :class:`TextOutput`: any text stream (tests, ``io.StringIO``).

:class:`LogHealth` is what the ``status`` op reports about the log (``log_health().as_status()``).
"""

from __future__ import annotations

import datetime
import errno
import os
import sys
from typing import TextIO

import attrs

from bfxd.journal import JournalSender

__all__ = ["FdOutput", "JournalOutput", "LogHealth", "TextOutput", "WriteFailed"]


class WriteFailed(Exception):
    def __init__(self, written: int, torn: bool, error: OSError) -> None:
        super().__init__(f"{written} lines written, then {error}")
        self.written, self.torn, self.error = written, torn, error


class FdOutput:
    def __init__(self, fd: int) -> None:
        self.fd = fd

    def write_lines(self, lines: list[str], lead: str = "") -> None:
        data = (lead + "\n".join(lines) + "\n").encode("utf-8", "replace")
        view, done = memoryview(data), 0
        while done < len(data):
            try:
                done += os.write(self.fd, view[done:])
            except InterruptedError:
                continue
            except OSError as exc:
                whole = data.count(b"\n", len(lead), done)  # lines that got out complete
                torn = done > len(lead) and data[done - 1:done] != b"\n"
                raise WriteFailed(whole, torn, exc) from None


class JournalOutput:
    def __init__(self, sender: JournalSender) -> None:
        self.sender = sender

    def write_lines(self, lines: list[str], lead: str = "") -> None:
        for done, line in enumerate(lines):  # a datagram is never torn: *lead* is not needed
            try:
                self.sender.send_line(line)
            except OSError as exc:
                raise WriteFailed(done, False, exc) from None


class TextOutput:
    def __init__(self, stream: TextIO) -> None:
        self.stream = stream

    def write_lines(self, lines: list[str], lead: str = "") -> None:
        try:
            self.stream.write(lead + "\n".join(lines) + "\n")
            self.stream.flush()
        except OSError as exc:
            raise WriteFailed(0, False, exc) from None  # what a text stream kept is unknown: count all as lost
        except ValueError as exc:  # the stream was closed under us
            raise WriteFailed(0, False, OSError(errno.EBADF, str(exc))) from None


def _now() -> str:
    return datetime.datetime.now(datetime.UTC).isoformat().replace("+00:00", "Z")


@attrs.define
class LogHealth:
    """Whether log lines are getting out; read by the ``status`` op (:meth:`as_status`)."""

    failing: bool = False
    failing_since: str | None = None  # UTC ISO time of the first failed write of the current streak
    error: str | None = None  # the last write error, e.g. "EFBIG: File too large"
    lost_lines: int = 0  # since start
    failed_writes: int = 0  # since start
    streak_lost: int = 0  # lines lost in the current streak, for the log.lost line that ends it
    streak_torn: bool = False  # a line was left cut short in the output

    def fail(self, error: OSError, lost: int, torn: bool) -> bool:
        """Record a failed write; True if it starts a streak (say so once)."""
        first = not self.failing
        if first:
            self.failing, self.failing_since = True, _now()
        self.error = describe(error)
        self.lost_lines += lost
        self.streak_lost += lost
        self.failed_writes += 1
        self.streak_torn = self.streak_torn or torn
        return first

    def recovered(self) -> None:
        self.failing, self.failing_since, self.streak_lost, self.streak_torn = False, None, 0, False

    def as_status(self) -> dict[str, object]:
        return {"ok": not self.failing, "failing_since": self.failing_since, "error": self.error,
                "lost_lines": self.lost_lines, "failed_writes": self.failed_writes}


def describe(error: OSError) -> str:
    name = errno.errorcode.get(error.errno or 0, "")
    return f"{name}: {error.strerror}" if name and error.strerror else str(error)


def say_on_stderr(text: str) -> None:
    """A line on stderr that must not fail the caller (stderr may be the same full disk)."""
    try:
        sys.stderr.write(f"bfxd: {text}\n")
        sys.stderr.flush()
    except (OSError, ValueError):
        pass
