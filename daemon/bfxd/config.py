"""bfxd configuration: a frozen attrs tree built from defaults < TOML file < environment < command line.

Pure and synchronous (no trio): ``cli.py`` calls :func:`load_config` before the event loop exists.

Contract:
- Every key is optional; the shape and defaults are the attrs classes below.
- Environment: ``BFXD_<SECTION>_<KEY>`` (``BFXD_SOCKET_PATH``, ``BFXD_SOCKET_ALLOWED_UIDS="1000,1001"``).
  Variables whose name does not start with a known section (``BFXD_SOCKET``, ``BFXD_API_KEY``,
  ``BFXD_API_SECRET``) are not configuration and are ignored; an unknown key after a known section
  (``BFXD_SOCKET_PTH``) is an error, so a typo never passes silently.
- Command-line overrides use dotted keys (``"socket.path"``) with string values parsed like the environment.
- Relative paths in the file are relative to the file's directory (the daemon's cwd is ``/`` under systemd);
  relative paths from the environment or command line are left as given (relative to the cwd).
- Every problem raises :class:`~bfxd.errors.ConfigError` whose message names the source (file path,
  environment variable or command-line key), the key as ``[section] key`` and what was expected.
- The attrs classes validate themselves too, so a ``Config`` built in code is as valid as a loaded one
  (direct construction raises ``ValueError``).
"""

from __future__ import annotations

import math
import os
import tomllib
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import attrs

from bfxd.errors import ConfigError, excerpt

__all__ = [
    "DEFAULT_CONFIG_PATH",
    "DEFAULT_SOCKET_PATH",
    "DEFAULT_URL",
    "LOG_FORMATS",
    "LOG_LEVELS",
    "Config",
    "ExchangeConfig",
    "LogConfig",
    "ReconnectConfig",
    "RequestsConfig",
    "SocketConfig",
    "config_as_dict",
    "load_config",
]

DEFAULT_CONFIG_PATH = Path("/etc/bfxd/bfxd.toml")
DEFAULT_URL = "wss://api.bitfinex.com/ws/2"
DEFAULT_SOCKET_PATH = Path("/run/bfxd/bfxd.sock")
_ENV_PREFIX = "BFXD_"
LOG_FORMATS = ("json", "console")
LOG_LEVELS = ("debug", "info", "warning", "error")
_MAX_UID = 2**32 - 2  # (uid_t)-1 is "no uid"


class _Invalid(ValueError):
    """A value is wrong; the loader adds where it came from.

    ``also`` restates a cross-field error from the other key's side, ``(key, expected, got)``, so the message
    can name the key the user actually set.
    """

    def __init__(self, key: str, expected: str, got: object, also: tuple[tuple[str, str, object], ...] = ()) -> None:
        super().__init__(f"{key}: expected {expected}, got {excerpt(got)}")
        self.key, self.expected, self.got, self.also = key, expected, got, also


# --- value kinds: how a key is read from TOML and from text (env/CLI), and rendered for check-config ------


@attrs.frozen
class _Kind:
    expected: str
    from_toml: Callable[[Any], Any]
    from_text: Callable[[str], Any]
    render: Callable[[Any], Any] = lambda value: value


def _not_bool(value: Any, *types: type) -> bool:
    return isinstance(value, types) and not isinstance(value, bool)  # TOML true is an int to Python


def _toml_number(value: Any) -> float:
    if not _not_bool(value, int, float):
        raise TypeError
    return float(value)


def _toml_int(value: Any) -> int:
    if not _not_bool(value, int):
        raise TypeError
    return value


def _toml_str(value: Any) -> str:
    if not isinstance(value, str):
        raise TypeError
    return value


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


NUMBER = _Kind("a number", _toml_number, float)
INTEGER = _Kind("an integer", _toml_int, lambda text: int(text, 10))
STRING = _Kind("a string", _toml_str, str)
PATH = _Kind("a non-empty path string", lambda v: _path(_toml_str(v)), _path, str)
OPTIONAL_PATH = _Kind(
    "a path string",
    lambda v: _path(_toml_str(v)) if v != "" else None,  # "" in the file means "not set"
    lambda text: _path(text) if text else None,
    lambda value: None if value is None else str(value),
)
MODE = _Kind('an octal mode string such as "0660"', _mode_toml, _mode_text, lambda value: f"{value:04o}")
UIDS = _Kind("a list of uids (comma-separated in the environment)", _uids_toml, _uids_text, list)


# --- validators (attrs): values, not types of source text ------------------------------------------------


def _positive(_instance: object, attribute: attrs.Attribute, value: Any) -> None:
    if not (_not_bool(value, int, float) and math.isfinite(value) and value > 0):
        raise _Invalid(attribute.name, "a positive number of seconds", value)


def _non_negative(_instance: object, attribute: attrs.Attribute, value: Any) -> None:
    if not (_not_bool(value, int, float) and math.isfinite(value) and value >= 0):
        raise _Invalid(attribute.name, "a number of seconds >= 0", value)


def _websocket_url(_instance: object, attribute: attrs.Attribute, value: Any) -> None:
    try:
        parts = urlsplit(value) if isinstance(value, str) else None
        valid = parts is not None and parts.scheme in ("ws", "wss") and bool(parts.hostname)
        if valid:
            _ = parts.port  # raises ValueError for a non-numeric or out-of-range port
    except ValueError:
        valid = False
    if not valid:
        raise _Invalid(attribute.name, "a ws:// or wss:// URL with a host", value)


def _is_path(optional: bool) -> Callable[[object, attrs.Attribute, Any], None]:
    def check(_instance: object, attribute: attrs.Attribute, value: Any) -> None:
        if not ((optional and value is None) or (isinstance(value, Path) and str(value) not in ("", "."))):
            raise _Invalid(attribute.name, "a path", value)

    return check


def _file_mode(_instance: object, attribute: attrs.Attribute, value: Any) -> None:
    if not (_not_bool(value, int) and 0 <= value <= 0o777):
        raise _Invalid(attribute.name, 'a permission mode between "0000" and "0777"', value)


def _uid_tuple(_instance: object, attribute: attrs.Attribute, value: Any) -> None:
    if not (isinstance(value, tuple) and all(_not_bool(u, int) and 0 <= u <= _MAX_UID for u in value)):
        raise _Invalid(attribute.name, "a list of uids (integers >= 0)", value)


def _positive_int(_instance: object, attribute: attrs.Attribute, value: Any) -> None:
    if not (_not_bool(value, int) and value > 0):
        raise _Invalid(attribute.name, "a positive integer", value)


def _one_of(choices: tuple[str, ...]) -> Callable[[object, attrs.Attribute, Any], None]:
    def check(_instance: object, attribute: attrs.Attribute, value: Any) -> None:
        if value not in choices:
            raise _Invalid(attribute.name, "one of " + ", ".join(choices), value)

    return check


_optional_path = _is_path(optional=True)
_required_path = _is_path(optional=False)
_log_format = _one_of(LOG_FORMATS)
_log_level = _one_of(LOG_LEVELS)


def _kind(kind: _Kind) -> dict[str, _Kind]:
    """Field metadata: how the loader reads the key and how check-config renders it."""
    return {"kind": kind}


# --- the tree --------------------------------------------------------------------------------------------


@attrs.frozen
class ExchangeConfig:
    url: str = attrs.field(default=DEFAULT_URL, validator=_websocket_url, metadata=_kind(STRING))
    api_key_file: Path | None = attrs.field(default=None, validator=_optional_path, metadata=_kind(OPTIONAL_PATH))
    api_secret_file: Path | None = attrs.field(default=None, validator=_optional_path, metadata=_kind(OPTIONAL_PATH))
    heartbeat_timeout: float = attrs.field(default=30.0, validator=_positive, metadata=_kind(NUMBER))
    auth_timeout: float = attrs.field(default=10.0, validator=_positive, metadata=_kind(NUMBER))
    connect_timeout: float = attrs.field(default=10.0, validator=_positive, metadata=_kind(NUMBER))
    # The pace of inputs (foc, fon, calc): the docs publish no websocket input limit (README, "Pacing").
    inputs_per_second: float = attrs.field(default=5.0, validator=_positive, metadata=_kind(NUMBER))
    input_burst: int = attrs.field(default=20, validator=_positive_int, metadata=_kind(INTEGER))


@attrs.frozen
class SocketConfig:
    path: Path = attrs.field(default=DEFAULT_SOCKET_PATH, validator=_required_path, metadata=_kind(PATH))
    mode: int = attrs.field(default=0o660, validator=_file_mode, metadata=_kind(MODE))
    allowed_uids: tuple[int, ...] = attrs.field(default=(), validator=_uid_tuple, metadata=_kind(UIDS))
    max_clients: int = attrs.field(default=1024, validator=_positive_int, metadata=_kind(INTEGER))


@attrs.frozen
class RequestsConfig:
    timeout: float = attrs.field(default=10.0, validator=_positive, metadata=_kind(NUMBER))
    # 0 is meaningful here (stop without draining), so it is the one duration that may be zero.
    shutdown_grace: float = attrs.field(default=3.0, validator=_non_negative, metadata=_kind(NUMBER))


@attrs.frozen
class ReconnectConfig:
    initial_delay: float = attrs.field(default=1.0, validator=_positive, metadata=_kind(NUMBER))
    max_delay: float = attrs.field(default=60.0, validator=_positive, metadata=_kind(NUMBER))

    def __attrs_post_init__(self) -> None:
        if self.max_delay < self.initial_delay:
            raise _Invalid(
                "max_delay",
                f"a number >= initial_delay ({self.initial_delay})",
                self.max_delay,
                also=(("initial_delay", f"a number <= max_delay ({self.max_delay})", self.initial_delay),),
            )


@attrs.frozen
class LogConfig:
    format: str = attrs.field(default="json", validator=_log_format, metadata=_kind(STRING))
    level: str = attrs.field(default="info", validator=_log_level, metadata=_kind(STRING))


@attrs.frozen
class Config:
    exchange: ExchangeConfig = attrs.field(factory=ExchangeConfig)
    socket: SocketConfig = attrs.field(factory=SocketConfig)
    requests: RequestsConfig = attrs.field(factory=RequestsConfig)
    reconnect: ReconnectConfig = attrs.field(factory=ReconnectConfig)
    log: LogConfig = attrs.field(factory=LogConfig)


_SECTIONS: dict[str, type] = {field.name: field.default.factory for field in attrs.fields(Config)}


def _kinds(section: str) -> dict[str, _Kind]:
    return {field.name: field.metadata["kind"] for field in attrs.fields(_SECTIONS[section])}


# --- loading ----------------------------------------------------------------------------------------------

# (section, key) -> (value, source). The source is the prefix of any error message about that key.
_Layer = dict[tuple[str, str], tuple[Any, str]]


def _error(source: str, section: str, key: str, expected: str, got: object) -> ConfigError:
    return ConfigError(f"{source}: [{section}] {key}: expected {expected}, got {excerpt(got)}")


def _parse(kind: _Kind, raw: Any, *, text: bool, source: str, section: str, key: str) -> Any:
    try:
        return kind.from_text(raw) if text else kind.from_toml(raw)
    except (TypeError, ValueError):
        raise _error(source, section, key, kind.expected, raw) from None


def _unknown_key(source: str, section: str, key: str) -> ConfigError:
    known = ", ".join(_kinds(section))
    return ConfigError(f"{source}: [{section}] unknown key {key!r} (known keys: {known})")


def _file_layer(path: Path) -> _Layer:
    source = str(path)
    try:
        with path.open("rb") as fp:
            document = tomllib.load(fp)
    except FileNotFoundError:
        raise ConfigError(f"{source}: config file not found") from None
    except OSError as exc:
        raise ConfigError(f"{source}: cannot read config file: {exc.strerror or exc}") from None
    except UnicodeDecodeError:
        raise ConfigError(f"{source}: not valid UTF-8 (TOML files are UTF-8)") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{source}: invalid TOML: {exc}") from None
    base = Path(os.path.abspath(path)).parent
    layer: _Layer = {}
    for section, table in document.items():
        if section not in _SECTIONS:
            known = ", ".join(f"[{name}]" for name in _SECTIONS)
            raise ConfigError(f"{source}: unknown section [{section}] (known sections: {known})")
        if not isinstance(table, dict):
            raise ConfigError(f"{source}: [{section}] must be a table (a [{section}] header), got {table!r}")
        kinds = _kinds(section)
        for key, raw in table.items():
            if key not in kinds:
                raise _unknown_key(source, section, key)
            value = _parse(kinds[key], raw, text=False, source=source, section=section, key=key)
            if isinstance(value, Path) and not value.is_absolute():
                value = base / value
            layer[section, key] = (value, source)
    return layer


def _env_layer(env: Mapping[str, str]) -> _Layer:
    layer: _Layer = {}
    for name in sorted(env):
        if not name.startswith(_ENV_PREFIX):
            continue
        rest = name[len(_ENV_PREFIX) :]
        section = next((s for s in _SECTIONS if rest.startswith(s.upper() + "_")), None)
        if section is None:  # BFXD_SOCKET (bfxctl), BFXD_API_KEY (credentials), ...: not config keys
            continue
        key, source = rest[len(section) + 1 :].lower(), f"environment variable {name}"
        kinds = _kinds(section)
        if key not in kinds:
            raise _unknown_key(source, section, key)
        layer[section, key] = (
            _parse(kinds[key], env[name], text=True, source=source, section=section, key=key),
            source,
        )
    return layer


def _override_layer(overrides: Mapping[str, str]) -> _Layer:
    layer: _Layer = {}
    for dotted, raw in overrides.items():
        section, _, key = dotted.partition(".")
        source = f"command line ({dotted})"
        if section not in _SECTIONS:
            raise ConfigError(f"{source}: unknown section [{section}]")
        kinds = _kinds(section)
        if key not in kinds:
            raise _unknown_key(source, section, key)
        text = os.fspath(raw) if isinstance(raw, os.PathLike) else raw
        layer[section, key] = (
            _parse(kinds[key], text, text=True, source=source, section=section, key=key),
            source,
        )
    return layer


def _build(layer: _Layer) -> Config:
    sections = {}
    for section, cls in _SECTIONS.items():
        values = {key: value for (sec, key), (value, _src) in layer.items() if sec == section}
        try:
            sections[section] = cls(**values)
        except _Invalid as exc:
            # Blame the first of the involved keys that the user set (some key was set, or the defaults
            # themselves would be invalid).
            candidates = [(exc.key, exc.expected, exc.got), *exc.also]
            key, expected, got = next((c for c in candidates if (section, c[0]) in layer), candidates[0])
            source = layer.get((section, key), (None, "defaults"))[1]
            raise _error(source, section, key, expected, got) from None
    return Config(**sections)


def load_config(
    path: Path | None = None,
    *,
    env: Mapping[str, str] = os.environ,
    overrides: Mapping[str, str] | None = None,
) -> Config:
    """Build the effective configuration; raise ConfigError naming source, key and expectation on any problem.

    ``path=None`` reads DEFAULT_CONFIG_PATH when it exists and uses the defaults otherwise; an explicit
    ``path`` must exist. Precedence: ``overrides`` > ``env`` > file > defaults.
    """
    if path is None and DEFAULT_CONFIG_PATH.exists():
        path = DEFAULT_CONFIG_PATH
    layer: _Layer = {}
    if path is not None:
        layer.update(_file_layer(Path(path)))
    layer.update(_env_layer(env))
    layer.update(_override_layer(overrides or {}))
    return _build(layer)


def config_as_dict(config: Config) -> dict[str, dict[str, Any]]:
    """The effective config as JSON-able data, in TOML spelling (mode as "0660"), for ``bfxd check-config``.

    The config holds no secret values (only paths to them), so nothing needs redacting here.
    """
    result: dict[str, dict[str, Any]] = {}
    for section in _SECTIONS:
        instance = getattr(config, section)
        result[section] = {
            field.name: field.metadata["kind"].render(getattr(instance, field.name))
            for field in attrs.fields(type(instance))
        }
    return result
