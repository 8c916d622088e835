"""How each configuration value is read (from TOML and from environment/command-line text), checked and shown.

Split from ``config.py`` so the tree and the loader stay readable. Pure and synchronous, except that user and
group names in ``[access]`` are resolved through the system's user database (``pwd``/``grp``) when read.

Bounds: a value outside its bounds is an error (exit 78) whose message says the allowed range; a value inside
them that is still risky is accepted and named by ``config.config_warnings``.
"""

from __future__ import annotations

import grp
import math
import os
import pwd
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import attrs

from bfxd.errors import excerpt

MAX_UID = 2**32 - 2  # (uid_t)-1 is "no uid"
# sun_path is 108 bytes on Linux, one of them the terminating NUL.
MAX_SOCKET_PATH_BYTES = 107


class Invalid(ValueError):
    """A value is wrong; the loader adds where it came from.

    ``also`` restates a cross-field error from the other key's side, ``(key, expected, got)``, so the message
    can name the key the user actually set.
    """

    def __init__(self, key: str, expected: str, got: object, also: tuple[tuple[str, str, object], ...] = ()) -> None:
        super().__init__(f"{key}: expected {expected}, got {excerpt(got)}")
        self.key, self.expected, self.got, self.also = key, expected, got, also


class BadEntry(ValueError):
    """A value has the right shape but names something that does not exist (an unknown user or group)."""


@attrs.frozen
class Kind:
    expected: str
    from_toml: Callable[[Any], Any]
    from_text: Callable[[str], Any]
    render: Callable[[Any], Any] = lambda value: value


def not_bool(value: Any, *types: type) -> bool:
    return isinstance(value, types) and not isinstance(value, bool)  # TOML true is an int to Python


def _toml_number(value: Any) -> float:
    if not not_bool(value, int, float):
        raise TypeError
    return float(value)


def _toml_int(value: Any) -> int:
    if not not_bool(value, int):
        raise TypeError
    return value


def _toml_str(value: Any) -> str:
    if not isinstance(value, str):
        raise TypeError
    return value


def _toml_bool(value: Any) -> bool:
    if not isinstance(value, bool):
        raise TypeError
    return value


def _bool_text(text: str) -> bool:
    words = {"true": True, "1": True, "yes": True, "false": False, "0": False, "no": False}
    try:
        return words[text.strip().lower()]
    except KeyError:
        raise ValueError from None


def _path(text: str) -> Path:
    if not text:
        raise ValueError
    return Path(text)


def _mode_text(text: str) -> int:
    return int(text, 8)  # "0660" and "0o660" both parse; "rw-rw----" does not


def _mode_toml(value: Any) -> int:
    return _mode_text(value) if isinstance(value, str) else _toml_int(value)  # 0o660 is valid TOML


def _uids_text(text: str) -> tuple[int, ...]:
    return tuple(int(part, 10) for part in text.split(",")) if text.strip() else ()


def _uids_toml(value: Any) -> tuple[int, ...]:
    if not isinstance(value, list):
        raise TypeError
    return tuple(_toml_int(item) for item in value)


# --- [access] entries: who may use a role --------------------------------------------------------------


@attrs.frozen
class Principals:
    """The uids and gids one ``[access]`` rule admits, and the entries as the operator wrote them."""

    uids: frozenset[int]
    gids: frozenset[int]
    spelled: tuple[str, ...]

    def admits(self, uid: int, gids: frozenset[int] | set[int] | tuple[int, ...]) -> bool:
        return uid in self.uids or not self.gids.isdisjoint(gids)


def _resolve_entry(entry: Any, uids: set[int], gids: set[int]) -> str:
    """Add one entry (``1000``, ``"alice"``, ``"group:traders"``, ``"group:1001"``) to the sets; its spelling."""
    if not_bool(entry, int):
        if not 0 <= entry <= MAX_UID:
            raise ValueError
        uids.add(entry)
        return str(entry)
    if not isinstance(entry, str) or not entry.strip():
        raise TypeError
    text = entry.strip()
    if text.startswith("group:"):
        name = text[len("group:"):]
        if name.isdigit():
            gids.add(int(name))
            return text
        try:
            gids.add(grp.getgrnam(name).gr_gid)
        except KeyError:
            raise BadEntry(f"no such group {name!r}") from None
        return text
    if text.isdigit():
        uids.add(int(text))
        return text
    try:
        uids.add(pwd.getpwnam(text).pw_uid)
    except KeyError:
        raise BadEntry(f"no such user {text!r}") from None
    return text


def _principals(entries: list[Any]) -> Principals:
    uids: set[int] = set()
    gids: set[int] = set()
    spelled = tuple(_resolve_entry(entry, uids, gids) for entry in entries)
    return Principals(uids=frozenset(uids), gids=frozenset(gids), spelled=spelled)


def _principals_toml(value: Any) -> Principals:
    if not isinstance(value, list):
        raise TypeError
    return _principals(value)


def _principals_text(text: str) -> Principals:
    entries = [part.strip() for part in text.split(",")] if text.strip() else []
    return _principals([int(e) if e.isdigit() else e for e in entries])


NUMBER = Kind("a number", _toml_number, float)
INTEGER = Kind("an integer", _toml_int, lambda text: int(text, 10))
STRING = Kind("a string", _toml_str, str)
BOOLEAN = Kind("true or false", _toml_bool, _bool_text)
PATH = Kind("a non-empty path string", lambda v: _path(_toml_str(v)), _path, str)
OPTIONAL_PATH = Kind(
    "a path string",
    lambda v: _path(_toml_str(v)) if v != "" else None,  # "" in the file means "not set"
    lambda text: _path(text) if text else None,
    lambda value: None if value is None else str(value),
)
MODE = Kind('an octal mode string such as "0660"', _mode_toml, _mode_text, lambda value: f"{value:04o}")
UIDS = Kind("a list of uids (comma-separated in the environment)", _uids_toml, _uids_text, list)
PRINCIPALS = Kind(
    'a list of uids, user names and "group:NAME" or "group:GID" entries (comma-separated in the environment)',
    _principals_toml,
    _principals_text,
    lambda value: None if value is None else list(value.spelled),
)


# --- validators (attrs): values, not types of source text ------------------------------------------------


def seconds_between(low: float, high: float) -> Callable[[object, attrs.Attribute, Any], None]:
    """A duration in [low, high] seconds (finite, not a bool)."""

    def check(_instance: object, attribute: attrs.Attribute, value: Any) -> None:
        if not (not_bool(value, int, float) and math.isfinite(value) and low <= value <= high):
            raise Invalid(attribute.name, f"a number of seconds from {low:g} to {high:g}", value)

    return check


def int_between(low: int, high: int) -> Callable[[object, attrs.Attribute, Any], None]:
    def check(_instance: object, attribute: attrs.Attribute, value: Any) -> None:
        if not (not_bool(value, int) and low <= value <= high):
            raise Invalid(attribute.name, f"an integer from {low} to {high}", value)

    return check


def websocket_url(_instance: object, attribute: attrs.Attribute, value: Any) -> None:
    try:
        parts = urlsplit(value) if isinstance(value, str) else None
        valid = parts is not None and parts.scheme in ("ws", "wss") and bool(parts.hostname)
        if valid:
            _ = parts.port  # raises ValueError for a non-numeric or out-of-range port
    except ValueError:
        valid = False
    if not valid:
        raise Invalid(attribute.name, "a ws:// or wss:// URL with a host", value)


def is_path(optional: bool) -> Callable[[object, attrs.Attribute, Any], None]:
    def check(_instance: object, attribute: attrs.Attribute, value: Any) -> None:
        if not ((optional and value is None) or (isinstance(value, Path) and str(value) not in ("", "."))):
            raise Invalid(attribute.name, "a path", value)

    return check


def socket_path(instance: object, attribute: attrs.Attribute, value: Any) -> None:
    is_path(optional=False)(instance, attribute, value)
    size = len(os.fsencode(value))
    if size > MAX_SOCKET_PATH_BYTES:
        raise Invalid(attribute.name, f"a path of at most {MAX_SOCKET_PATH_BYTES} bytes (the AF_UNIX limit), "
                      f"this one has {size}", str(value))


def file_mode(_instance: object, attribute: attrs.Attribute, value: Any) -> None:
    if not (not_bool(value, int) and 0 <= value <= 0o777):
        # Shown in octal, as written ("4777"), never as the decimal it parsed to.
        got = f"{value:04o}" if not_bool(value, int) and value >= 0 else value
        raise Invalid(attribute.name, 'a permission mode from "0000" to "0777" (no setuid, setgid or sticky bits)',
                      got)


def uid_tuple(_instance: object, attribute: attrs.Attribute, value: Any) -> None:
    if not (isinstance(value, tuple) and all(not_bool(u, int) and 0 <= u <= MAX_UID for u in value)):
        raise Invalid(attribute.name, "a list of uids (integers >= 0)", value)


def optional_principals(_instance: object, attribute: attrs.Attribute, value: Any) -> None:
    if value is not None and not isinstance(value, Principals):
        raise Invalid(attribute.name, PRINCIPALS.expected, value)


def one_of(choices: tuple[str, ...]) -> Callable[[object, attrs.Attribute, Any], None]:
    def check(_instance: object, attribute: attrs.Attribute, value: Any) -> None:
        if value not in choices:
            raise Invalid(attribute.name, "one of " + ", ".join(choices), value)

    return check


def kind(value_kind: Kind) -> dict[str, Kind]:
    """Field metadata: how the loader reads the key and how check-config renders it."""
    return {"kind": value_kind}


# --- [metrics] listen -----------------------------------------------------------------------------------

_LOOPBACK_NAMES = ("localhost",)


@attrs.frozen
class ListenAddress:
    """Where the metrics HTTP server listens: ``unix`` with a path, or ``tcp`` with host and port."""

    family: str
    host: str = ""
    port: int = 0
    path: Path | None = None

    @property
    def is_local(self) -> bool:
        if self.family == "unix":
            return True
        import ipaddress

        if self.host in _LOOPBACK_NAMES:
            return True
        try:
            return ipaddress.ip_address(self.host).is_loopback
        except ValueError:
            return False  # a host name other than localhost: it may resolve to anything

    def __str__(self) -> str:
        if self.family == "unix":
            return f"unix:{self.path}"
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"


def parse_listen(text: str) -> ListenAddress | None:
    """``""`` → None (off); ``"unix:/path"``; ``"127.0.0.1:9187"``; ``"[::1]:9187"``; ``"localhost:9187"``."""
    text = text.strip()
    if not text:
        return None
    if text.startswith("unix:"):
        return ListenAddress("unix", path=_path(text[len("unix:"):]))
    host, sep, port_text = text.rpartition(":")
    if not sep or not host or not port_text.isdigit():
        raise ValueError
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    elif ":" in host:
        raise ValueError  # an IPv6 address needs brackets: "[::1]:9187"
    port = int(port_text)
    if not 0 < port < 65536:
        raise ValueError
    return ListenAddress("tcp", host=host, port=port)


def _listen_toml(value: Any) -> ListenAddress | None:
    return parse_listen(_toml_str(value))


LISTEN = Kind('"" (off), "HOST:PORT", "[IPV6]:PORT" or "unix:PATH"', _listen_toml, parse_listen,
              lambda value: "" if value is None else str(value))


def optional_listen(_instance: object, attribute: attrs.Attribute, value: Any) -> None:
    if value is not None and not isinstance(value, ListenAddress):
        raise Invalid(attribute.name, LISTEN.expected, value)
