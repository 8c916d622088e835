"""The tests' one reader of JSON Lines, and the protocol schema check of each line read.

Every test that reads the daemon's socket (or a fake daemon's, or bfxctl's --json output) parses lines here,
so that each line is also checked against ``bfxd/client/schema.json``: a daemon line that the published
contract does not describe fails the test that received it.
"""

from __future__ import annotations

import functools
import json
from typing import Any

import jsonschema

from bfxd.client import schema


@functools.cache
def _validator(kind: str) -> jsonschema.Draft202012Validator:
    document = schema()
    return jsonschema.Draft202012Validator({**document, "anyOf": [{"$ref": f"#/$defs/{kind}"}]})


def check(obj: Any, kind: str = "from_daemon") -> dict[str, Any]:
    """*obj* if it is valid under ``#/$defs/<kind>`` (from_daemon, request, answer, event, answer.status...);
    else an AssertionError naming the line and the closest schema error."""
    error = jsonschema.exceptions.best_match(_validator(kind).iter_errors(obj))
    if error is not None:
        where = "/".join(map(str, error.absolute_path)) or "(the line)"
        raise AssertionError(f"{kind} line breaks the protocol schema at {where}: {error.message}\n  {obj!r}")
    return obj


def loads(line: bytes | str, kind: str | None = "from_daemon") -> dict[str, Any]:
    """One line as a JSON object, schema-checked as *kind* (None: not checked, for deliberately bad lines)."""
    obj = json.loads(line)
    assert isinstance(obj, dict), f"not a JSON object: {line!r}"
    return obj if kind is None else check(obj, kind)


def split(data: bytes | str, kind: str | None = "from_daemon") -> list[dict[str, Any]]:
    """Every complete line of *data* (a trailing partial line is an error: the writer stopped mid-line)."""
    text = data.decode() if isinstance(data, bytes) else data
    assert not text or text.endswith("\n"), f"output ends mid-line: {text[-80:]!r}"
    return [loads(line, kind) for line in text.splitlines() if line.strip()]


class Lines:
    """Incremental: feed bytes as they arrive, take the complete lines (checked) as they form."""

    def __init__(self, kind: str | None = "from_daemon") -> None:
        self.kind = kind
        self._buffer = b""

    def feed(self, chunk: bytes) -> None:
        self._buffer += chunk

    def drain(self) -> list[dict[str, Any]]:
        """Every complete line fed so far."""
        lines = []
        while (line := self.next()) is not None:
            lines.append(line)
        return lines

    def next(self) -> dict[str, Any] | None:
        """The next complete line, or None until more is fed."""
        if b"\n" not in self._buffer:
            return None
        line, self._buffer = self._buffer.split(b"\n", 1)
        return loads(line, self.kind)

    @property
    def pending(self) -> bytes:
        return self._buffer
