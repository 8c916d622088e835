"""journald's native protocol: one datagram per log line, with PRIORITY and the audit fields as journal fields.

Under systemd (stdout is the journal: ``$JOURNAL_STREAM`` names stdout's device and inode, as systemd.exec(5)
advises checking), bfxd sends each line to journald's socket instead of writing it to stdout:

- ``MESSAGE``: the JSON line exactly as it would have gone to stdout (sealed), so ``journalctl -o cat`` and
  ``bfxd audit verify`` see the same bytes;
- ``PRIORITY``: from the line's level (debug 7, info 6, warning 4, error 3, critical 2), so ``journalctl -p
  warning`` filters;
- ``SYSLOG_IDENTIFIER=bfxd``;
- ``BFXD_<KEY>`` for each top-level scalar member of the line (``BFXD_EVENT``, ``BFXD_OFFER_ID``,
  ``BFXD_REQUEST_ID``, ``BFXD_PEER_UID``, ``BFXD_RUN``, ``BFXD_SEQ``…; not ``timestamp``, ``level`` or ``chain``),
  and for a list of scalars one field per element; ``request_ids`` also gives one ``BFXD_REQUEST_ID`` per id,
  so ``journalctl BFXD_REQUEST_ID=7.3`` finds the router's lines about that request too.

Wire format (systemd's "Native Journal Protocol"): ``KEY=value\\n`` per field, or, for a value holding a newline,
``KEY\\n`` + the value's length as 64-bit little-endian + the value + ``\\n``. A datagram too large for the socket
goes as a sealed memfd passed with SCM_RIGHTS, as sd_journal_send does.
"""

from __future__ import annotations

import array
import errno
import fcntl
import os
import re
import socket
import struct
from collections.abc import Iterator, Mapping

import orjson

__all__ = ["JOURNAL_SOCKET", "JournalSender", "encode_entry", "journal_fields", "stdout_is_journal"]

JOURNAL_SOCKET = "/run/systemd/journal/socket"
PRIORITIES = {"debug": 7, "info": 6, "warning": 4, "warn": 4, "error": 3, "exception": 3, "critical": 2}
_SKIPPED = frozenset({"timestamp", "level", "chain"})  # journald has its own time and PRIORITY; chain is noise
_NOT_FIELD_CHAR = re.compile(r"[^A-Z0-9_]")
_MAX_NAME = 64  # journald ignores longer field names
_MAX_VALUE = 4096  # characters of a field value (MESSAGE is never cut)
_MAX_ITEMS = 64  # list elements turned into fields


def stdout_is_journal(env: Mapping[str, str] = os.environ, fd: int = 1) -> bool:
    """True if *fd* is the stream systemd connected to the journal (``JOURNAL_STREAM=dev:ino`` matches it)."""
    device, _, inode = env.get("JOURNAL_STREAM", "").partition(":")
    try:
        st = os.fstat(fd)
        return (int(device), int(inode)) == (st.st_dev, st.st_ino)
    except (ValueError, OSError):
        return False


def _name(key: str) -> str:
    return ("BFXD_" + _NOT_FIELD_CHAR.sub("_", key.upper()))[:_MAX_NAME]


def _text(value: object) -> str | None:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (str, int, float)):
        return str(value)[:_MAX_VALUE]
    return None


def journal_fields(line: str) -> Iterator[tuple[str, str]]:
    """The fields of one rendered (JSON) log line; a line that is not a JSON object goes as MESSAGE alone."""
    yield "MESSAGE", line
    try:
        record = orjson.loads(line)
    except orjson.JSONDecodeError:
        record = None
    if not isinstance(record, dict):
        yield "PRIORITY", "6"
        yield "SYSLOG_IDENTIFIER", "bfxd"
        return
    yield "PRIORITY", str(PRIORITIES.get(str(record.get("level", "info")), 6))
    yield "SYSLOG_IDENTIFIER", "bfxd"
    for key, value in record.items():
        if key in _SKIPPED or value is None:
            continue
        if isinstance(value, list):
            items = [t for t in map(_text, value[:_MAX_ITEMS]) if t is not None]
            names = [_name(key)] + (["BFXD_REQUEST_ID"] if key == "request_ids" else [])
            for name in names:
                for item in items:
                    yield name, item
            continue
        text = _text(value)
        if text is not None:
            yield _name(key), text


def encode_entry(fields: Iterator[tuple[str, str]] | list[tuple[str, str]]) -> bytes:
    parts = []
    for name, value in fields:
        data = value.encode("utf-8", "replace")
        if b"\n" in data:
            parts.append(name.encode() + b"\n" + struct.pack("<Q", len(data)) + data + b"\n")
        else:
            parts.append(name.encode() + b"=" + data + b"\n")
    return b"".join(parts)


class JournalSender:
    """A datagram socket to journald; ``send`` raises OSError when journald cannot take the entry."""

    def __init__(self, path: str = JOURNAL_SOCKET) -> None:
        self.path = path
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC)

    def send_line(self, line: str) -> None:
        self.send(encode_entry(journal_fields(line)))

    def send(self, datagram: bytes) -> None:
        try:
            self.sock.sendto(datagram, self.path)
        except OSError as exc:
            if exc.errno not in (errno.EMSGSIZE, errno.ENOBUFS):
                raise
            self._send_as_memfd(datagram)

    def _send_as_memfd(self, datagram: bytes) -> None:
        fd = os.memfd_create("bfxd-journal", os.MFD_CLOEXEC | os.MFD_ALLOW_SEALING)
        try:
            os.write(fd, datagram)
            fcntl.fcntl(fd, fcntl.F_ADD_SEALS, fcntl.F_SEAL_SHRINK | fcntl.F_SEAL_GROW | fcntl.F_SEAL_WRITE
                        | fcntl.F_SEAL_SEAL)
            # sendmsg, not socket.send_fds, which drops the address (CPython 3.11)
            self.sock.sendmsg([b""], [(socket.SOL_SOCKET, socket.SCM_RIGHTS, array.array("i", [fd]))], 0, self.path)
        finally:
            os.close(fd)

    def close(self) -> None:
        self.sock.close()
