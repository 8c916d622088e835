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
  (direct construction raises ``ValueError``). Values have bounds (``config_values.py``: how each kind is
  read, checked and shown); risky values inside them are named by :func:`config_warnings`.
- ``[access]`` names users and groups; they are resolved to ids when the file is read (unknown: an error).
"""

from __future__ import annotations

import math
import os
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import attrs

from bfxd.config_values import (
    BOOLEAN,
    INTEGER,
    LISTEN,
    MODE,
    NUMBER,
    OPTIONAL_PATH,
    PATH,
    PRINCIPALS,
    STRING,
    UIDS,
    BadEntry,
    Invalid,
    Kind,
    ListenAddress,
    Principals,
    file_mode,
    int_between,
    is_path,
    kind,
    not_bool,
    one_of,
    optional_listen,
    optional_principals,
    seconds_between,
    socket_path,
    uid_tuple,
    websocket_url,
)
from bfxd.errors import ConfigError, excerpt

__all__ = [
    "DEFAULT_CONFIG_PATH",
    "DEFAULT_SOCKET_PATH",
    "DEFAULT_URL",
    "LOG_FORMATS",
    "LOG_LEVELS",
    "AccessConfig",
    "Config",
    "ExchangeConfig",
    "LogConfig",
    "MetricsConfig",
    "ReconnectConfig",
    "RequestsConfig",
    "SocketConfig",
    "config_as_dict",
    "config_warnings",
    "load_config",
]

DEFAULT_CONFIG_PATH = Path("/etc/bfxd/bfxd.toml")
DEFAULT_URL = "wss://api.bitfinex.com/ws/2"
DEFAULT_SOCKET_PATH = Path("/run/bfxd/bfxd.sock")
_ENV_PREFIX = "BFXD_"
LOG_FORMATS = ("json", "console")
LOG_LEVELS = ("debug", "info", "warning", "error")


# --- the tree --------------------------------------------------------------------------------------------


_optional_path = is_path(optional=True)
# Bounds (operator mistakes become exit 78 with the range): the exchange sends a heartbeat after 15 s of
# silence and answers a ping at once, so a link can be judged in a second at the least, and ten minutes of
# silence is no longer "liveness". A request waits at most an hour (the socket protocol's own limit).
_heartbeat = seconds_between(1, 600)
_handshake = seconds_between(0.5, 300)
_request_timeout = seconds_between(0.01, 3600)
# 0 is meaningful here (stop without draining), so it is the one duration that may be zero.
_shutdown_grace = seconds_between(0, 600)
_initial_delay = seconds_between(0.01, 3600)
_max_delay = seconds_between(0.01, 86400)


def _inputs_per_second(_instance: object, attribute: attrs.Attribute, value: Any) -> None:  # type: ignore[type-arg]
    # Up to 100,000: far beyond any exchange's limit, so benchmarks (and a stub exchange) can lift the pace.
    if not (not_bool(value, int, float) and math.isfinite(value) and 0.01 <= value <= 100_000):
        raise Invalid(attribute.name, "a number of inputs per second from 0.01 to 100000", value)


@attrs.frozen
class ExchangeConfig:
    url: str = attrs.field(default=DEFAULT_URL, validator=websocket_url, metadata=kind(STRING))
    api_key_file: Path | None = attrs.field(default=None, validator=_optional_path, metadata=kind(OPTIONAL_PATH))
    api_secret_file: Path | None = attrs.field(default=None, validator=_optional_path, metadata=kind(OPTIONAL_PATH))
    heartbeat_timeout: float = attrs.field(default=30.0, validator=_heartbeat, metadata=kind(NUMBER))
    auth_timeout: float = attrs.field(default=10.0, validator=_handshake, metadata=kind(NUMBER))
    connect_timeout: float = attrs.field(default=10.0, validator=_handshake, metadata=kind(NUMBER))
    # The pace of inputs (foc, fon, calc): the docs publish no websocket input limit (README, "Pacing").
    inputs_per_second: float = attrs.field(default=5.0, validator=_inputs_per_second, metadata=kind(NUMBER))
    input_burst: int = attrs.field(default=20, validator=int_between(1, 1_000_000), metadata=kind(INTEGER))


@attrs.frozen
class SocketConfig:
    path: Path = attrs.field(default=DEFAULT_SOCKET_PATH, validator=socket_path, metadata=kind(PATH))
    mode: int = attrs.field(default=0o660, validator=file_mode, metadata=kind(MODE))
    allowed_uids: tuple[int, ...] = attrs.field(default=(), validator=uid_tuple, metadata=kind(UIDS))
    max_clients: int = attrs.field(default=1024, validator=int_between(1, 100_000), metadata=kind(INTEGER))
    # One uid may hold this many connections at most, so no local user can take every slot.
    max_clients_per_uid: int = attrs.field(default=128, validator=int_between(1, 100_000), metadata=kind(INTEGER))
    # A connection with no request in flight and no watch is closed after this many idle seconds.
    idle_timeout: float = attrs.field(default=300.0, validator=seconds_between(1, 86_400), metadata=kind(NUMBER))


@attrs.frozen
class RequestsConfig:
    timeout: float = attrs.field(default=10.0, validator=_request_timeout, metadata=kind(NUMBER))
    shutdown_grace: float = attrs.field(default=3.0, validator=_shutdown_grace, metadata=kind(NUMBER))


@attrs.frozen
class ReconnectConfig:
    initial_delay: float = attrs.field(default=1.0, validator=_initial_delay, metadata=kind(NUMBER))
    max_delay: float = attrs.field(default=60.0, validator=_max_delay, metadata=kind(NUMBER))

    def __attrs_post_init__(self) -> None:
        if self.max_delay < self.initial_delay:
            raise Invalid(
                "max_delay",
                f"a number >= initial_delay ({self.initial_delay})",
                self.max_delay,
                also=(("initial_delay", f"a number <= max_delay ({self.max_delay})", self.initial_delay),),
            )


@attrs.frozen
class LogConfig:
    format: str = attrs.field(default="json", validator=one_of(LOG_FORMATS), metadata=kind(STRING))
    level: str = attrs.field(default="info", validator=one_of(LOG_LEVELS), metadata=kind(STRING))
    # The audit trail's heads, appended at each checkpoint and at exit: keep it somewhere else than the log.
    anchor_file: Path | None = attrs.field(default=None, validator=_optional_path, metadata=kind(OPTIONAL_PATH))
    checkpoint_interval: float = attrs.field(default=300.0, validator=seconds_between(1, 86400),
                                             metadata=kind(NUMBER))


@attrs.frozen
class AccessConfig:
    """Who may use each role (access.py decides). None: the role is open to every client that may connect
    (``[socket] allowed_uids`` still applies first); a list, even an empty one: only those uids and groups."""

    read: Principals | None = attrs.field(default=None, validator=optional_principals, metadata=kind(PRINCIPALS))
    trade: Principals | None = attrs.field(default=None, validator=optional_principals, metadata=kind(PRINCIPALS))


@attrs.frozen
class MetricsConfig:
    """Prometheus exposition over HTTP: off unless ``listen`` is set; loopback or unix only unless
    ``allow_remote`` says otherwise (the figures reveal trading activity)."""

    listen: ListenAddress | None = attrs.field(default=None, validator=optional_listen, metadata=kind(LISTEN))
    allow_remote: bool = attrs.field(default=False, validator=attrs.validators.instance_of(bool),
                                     metadata=kind(BOOLEAN))

    def __attrs_post_init__(self) -> None:
        if self.listen is not None and not self.listen.is_local and not self.allow_remote:
            raise Invalid("listen", "a loopback address (127.0.0.1, [::1], localhost) or unix:PATH, "
                          "or allow_remote = true", str(self.listen),
                          also=(("allow_remote", f"true to listen on {self.listen}", self.allow_remote),))


@attrs.frozen
class Config:
    exchange: ExchangeConfig = attrs.field(factory=ExchangeConfig)
    socket: SocketConfig = attrs.field(factory=SocketConfig)
    requests: RequestsConfig = attrs.field(factory=RequestsConfig)
    reconnect: ReconnectConfig = attrs.field(factory=ReconnectConfig)
    log: LogConfig = attrs.field(factory=LogConfig)
    access: AccessConfig = attrs.field(factory=AccessConfig)
    metrics: MetricsConfig = attrs.field(factory=MetricsConfig)


_SECTIONS: dict[str, type] = {field.name: field.default.factory for field in attrs.fields(Config)}


def _kinds(section: str) -> dict[str, Kind]:
    return {field.name: field.metadata["kind"] for field in attrs.fields(_SECTIONS[section])}


# --- loading ----------------------------------------------------------------------------------------------

# (section, key) -> (value, source). The source is the prefix of any error message about that key.
_Layer = dict[tuple[str, str], tuple[Any, str]]


def _error(source: str, section: str, key: str, expected: str, got: object) -> ConfigError:
    return ConfigError(f"{source}: [{section}] {key}: expected {expected}, got {excerpt(got)}")


def _parse(value_kind: Kind, raw: Any, *, text: bool, source: str, section: str, key: str) -> Any:
    try:
        return value_kind.from_text(raw) if text else value_kind.from_toml(raw)
    except BadEntry as exc:
        raise ConfigError(f"{source}: [{section}] {key}: {exc}") from None
    except (TypeError, ValueError):
        raise _error(source, section, key, value_kind.expected, raw) from None


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
        except Invalid as exc:
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


def config_warnings(config: Config) -> list[str]:
    """Values inside their bounds that are still risky, one sentence each (``check-config`` prints them,
    ``bfxd run`` logs them as ``config.warning``)."""
    warnings = []
    heartbeat = config.exchange.heartbeat_timeout
    if heartbeat < 10:
        warnings.append(f"[exchange] heartbeat_timeout = {heartbeat:g}: a ping goes out after {heartbeat / 2:g} s "
                        "of silence and a pong later than that replaces the link; 30 is the default")
    elif heartbeat > 120:
        warnings.append(f"[exchange] heartbeat_timeout = {heartbeat:g}: a silent dead link goes unnoticed for "
                        f"{heartbeat:g} s (the exchange sends a heartbeat every 15 s); 30 is the default")
    if config.requests.timeout > 300:
        warnings.append(f"[requests] timeout = {config.requests.timeout:g}: a client may wait that long for an "
                        "answer while the exchange is unreachable; 10 is the default")
    if config.requests.shutdown_grace > 15:
        warnings.append(f"[requests] shutdown_grace = {config.requests.shutdown_grace:g}: longer than the units' "
                        "TimeoutStopSec=20s allows (systemd kills the daemon before the drain ends)")
    open_access = config.access.read is None or config.access.trade is None
    if config.socket.mode & 0o002 and not config.socket.allowed_uids and open_access:
        warnings.append(f'[socket] mode = "{config.socket.mode:04o}" lets every local user connect, and no '
                        "[socket] allowed_uids or [access] rule limits who may send requests")
    if config.metrics.listen is not None and not config.metrics.listen.is_local:
        warnings.append(f"[metrics] listen = {config.metrics.listen}: the figures (offers, requests) are served "
                        "beyond this host; put a firewall or a proxy in front")
    return warnings
