"""A credential value that cannot reach a repr, an f-string, a log line or a traceback by accident.

A leaf module (imports nothing from bfxd), usable from the sans-I/O protocol core.
"""

from __future__ import annotations

import hashlib
from typing import Any

import attrs


@attrs.frozen(repr=False, eq=False)
class Secret:
    """Holds a credential. ``str()``/``repr()`` print ``Secret('****')``; ``reveal()`` is the only way in."""

    _value: str

    def reveal(self) -> str:
        return self._value

    def fingerprint(self) -> str:
        """A short, stable, non-reversible name for the value (safe to log)."""
        return hashlib.sha256(self._value.encode()).hexdigest()[:8]

    def __repr__(self) -> str:
        return "Secret('****')"

    __str__ = __repr__

    def __format__(self, spec: str) -> str:
        return repr(self)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Secret):
            return NotImplemented
        return hashlib.sha256(self._value.encode()).digest() == hashlib.sha256(other._value.encode()).digest()

    def __hash__(self) -> int:
        return hash(self.fingerprint())

    def __reduce__(self) -> str | tuple[Any, ...]:  # pickling would copy the value somewhere we do not control
        raise TypeError("Secret values cannot be pickled")
