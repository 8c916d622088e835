"""The hash chain over bfxd's JSON log lines, and the anchor file that keeps its head somewhere else.

Canonical form (what ``bfxd audit verify`` recomputes, and what the README documents):

- a sealed line is a JSON object whose last three members are ``"run":"<id>","seq":<n>,"chain":"<64 hex>"``,
  written with no spaces exactly like that, so it ends with ``,"chain":"<64 hex>"}``;
- its *canonical bytes* are the line's UTF-8 bytes with that ``,"chain":"…"`` member cut out: everything up to
  and including ``"seq":<n>``, then ``}``. They are the bytes on the wire, not a re-serialisation, so verifying
  needs no JSON canonicalisation and any change to any byte shows;
- ``chain`` = SHA-256( previous line's chain as 32 raw bytes ‖ canonical bytes ), in lowercase hex. The line
  with ``seq`` 0 of a run follows 32 zero bytes.

``run`` is a fresh random id per daemon start; ``seq`` counts that run's lines from 0. Lines are sealed when
they are logged, in the order they are logged (structlog and the stdlib bridge go through the same sink under
one lock), so batching the writes changes nothing in the chain.
"""

from __future__ import annotations

import hashlib
import os
import secrets
from pathlib import Path

import orjson

__all__ = ["GENESIS", "Chain", "read_last_anchor", "split_sealed", "write_anchor"]

GENESIS = bytes(32)
_CHAIN_KEY = ',"chain":"'
_SUFFIX_LEN = len(_CHAIN_KEY) + 64 + 2  # ,"chain":"<64 hex>"}
_CHAIN_KEY_BYTES = _CHAIN_KEY.encode()
_CHAIN_KEY_LEN = len(_CHAIN_KEY)


def new_run_id() -> str:
    return secrets.token_hex(6)


class Chain:
    """The state of one run's chain: the next ``seq`` and the head (the last line's chain, raw)."""

    __slots__ = ("head", "run", "seq")

    def __init__(self, run: str | None = None) -> None:
        self.run = run or new_run_id()
        self.seq = 0
        self.head = GENESIS

    def seal(self, rendered: str) -> str:
        """The line for one rendered JSON object: ``run``, ``seq`` and ``chain`` appended as its last members."""
        body = rendered[:-1]
        separator = "," if body.rstrip() != "{" else ""
        canonical = f'{body}{separator}"run":"{self.run}","seq":{self.seq}}}'
        digest = hashlib.sha256(self.head + canonical.encode()).digest()
        self.head = digest
        self.seq += 1
        return f'{canonical[:-1]}{_CHAIN_KEY}{digest.hex()}"}}'

    @property
    def last_seq(self) -> int:
        return self.seq - 1


def split_sealed(line: bytes) -> tuple[bytes, bytes] | None:
    """(canonical bytes, chain as ASCII hex bytes) of a sealed line, or None if it does not end like one.
    The hex is not validated here: a recomputed chain simply will not match it."""
    cut = len(line) - _SUFFIX_LEN
    if cut < 2 or not line.startswith(_CHAIN_KEY_BYTES, cut) or not line.endswith(b'"}'):
        return None
    return line[:cut] + b"}", line[cut + _CHAIN_KEY_LEN:-2]


def link(previous: bytes, canonical: bytes) -> bytes:
    return hashlib.sha256(previous + canonical).digest()


# ---- the anchor file ---------------------------------------------------------------------------------------
# One JSON object per line: {"timestamp", "run", "seq", "chain", "event"}. Kept "somewhere else" (another disk,
# another owner, shipped off the host): whoever rewrites the log consistently still cannot match these heads.


def write_anchor(path: Path, entry: dict[str, object]) -> None:
    """Append one head to the anchor file and fsync it (every few minutes: the cost does not matter)."""
    data = orjson.dumps(entry) + b"\n"
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o640)
    try:
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)


def read_anchors(path: Path) -> list[dict[str, object]]:
    entries = []
    with open(path, "rb") as file:
        for raw in file:
            try:
                entry = orjson.loads(raw)
            except orjson.JSONDecodeError:
                continue  # a torn last line (a crash mid-write): the earlier heads still count
            if isinstance(entry, dict) and {"run", "seq", "chain"} <= entry.keys():
                entries.append(entry)
    return entries


def read_last_anchor(path: Path) -> dict[str, object] | None:
    """The newest head in the anchor file (it only grows by appends), or None if there is none yet."""
    try:
        with open(path, "rb") as file:
            file.seek(0, os.SEEK_END)
            size = file.tell()
            file.seek(max(0, size - 8192))
            tail = file.read()
    except OSError:
        return None
    for raw in reversed(tail.splitlines()):
        try:
            entry = orjson.loads(raw)
        except orjson.JSONDecodeError:
            continue
        if isinstance(entry, dict) and {"run", "seq", "chain"} <= entry.keys():
            return entry
    return None
