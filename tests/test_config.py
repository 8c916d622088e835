"""bfxd.config: layering, parsing, validation, and error messages that name source and key."""

from __future__ import annotations

import json
import re
from pathlib import Path

import attrs
import pytest

from bfxd import config as config_module
from bfxd.config import (
    AccessConfig,
    Config,
    ExchangeConfig,
    LogConfig,
    MetricsConfig,
    ReconnectConfig,
    RequestsConfig,
    SocketConfig,
    config_as_dict,
    config_warnings,
    load_config,
)
from bfxd.config_values import ListenAddress, Principals
from bfxd.errors import ConfigError

EXAMPLE = Path(__file__).resolve().parents[1] / "config" / "bfxd.toml"


@pytest.fixture(autouse=True)
def no_default_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Tests never read this machine's /etc/bfxd/bfxd.toml."""
    monkeypatch.setattr(config_module, "DEFAULT_CONFIG_PATH", tmp_path / "absent.toml")


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "bfxd.toml"
    path.write_text(text)
    return path


class TestDefaults:
    def test_no_file_no_env_gives_the_documented_defaults(self) -> None:
        """path=None without a default file yields exactly the documented defaults."""
        config = load_config(env={})
        assert config == Config()
        assert config.exchange == ExchangeConfig(
            url="wss://api.bitfinex.com/ws/2",
            api_key_file=None,
            api_secret_file=None,
            heartbeat_timeout=30.0,
            auth_timeout=10.0,
            connect_timeout=10.0,
        )
        assert config.socket == SocketConfig(
            path=Path("/run/bfxd/bfxd.sock"), mode=0o660, allowed_uids=(), max_clients=1024
        )
        assert config.requests == RequestsConfig(timeout=10.0, shutdown_grace=3.0)
        assert config.reconnect == ReconnectConfig(initial_delay=1.0, max_delay=60.0)
        assert config.log == LogConfig(format="json", level="info")

    def test_default_path_is_read_when_it_exists(self, tmp_path: Path, monkeypatch) -> None:
        """path=None reads DEFAULT_CONFIG_PATH when that file exists."""
        default = write(tmp_path, '[log]\nlevel = "debug"\n')
        monkeypatch.setattr(config_module, "DEFAULT_CONFIG_PATH", default)
        assert load_config(env={}).log.level == "debug"

    def test_explicit_missing_path_is_an_error(self, tmp_path: Path) -> None:
        """An explicit path that does not exist is a ConfigError naming it."""
        missing = tmp_path / "nope.toml"
        with pytest.raises(ConfigError, match=re.escape(str(missing)) + ".*not found"):
            load_config(missing, env={})

    def test_config_is_frozen(self) -> None:
        """Config objects cannot be mutated after loading."""
        with pytest.raises(attrs.exceptions.FrozenInstanceError):
            Config().socket.path = Path("/tmp/x")  # type: ignore[misc]


FULL = """
[exchange]
url = "ws://127.0.0.1:8765/ws/2"
api_key_file = "/etc/bfxd/api-key"
api_secret_file = "secret"
heartbeat_timeout = 45
auth_timeout = 5.5
connect_timeout = 3.0
[socket]
path = "/tmp/bfxd.sock"
mode = "0600"
allowed_uids = [1000, 0]
max_clients = 8
[requests]
timeout = 2.5
shutdown_grace = 0
[reconnect]
initial_delay = 0.5
max_delay = 0.5
[log]
format = "console"
level = "warning"
[access]
read = [1000, "root", "group:0"]
trade = []
[metrics]
listen = "127.0.0.1:9187"
"""


class TestFile:
    def test_every_key_is_read(self, tmp_path: Path) -> None:
        """Every key in the file lands in the tree, with numbers as floats and mode as an int."""
        config = load_config(write(tmp_path, FULL), env={})
        assert config == Config(
            exchange=ExchangeConfig(
                url="ws://127.0.0.1:8765/ws/2",
                api_key_file=Path("/etc/bfxd/api-key"),
                api_secret_file=tmp_path / "secret",  # relative to the file's directory
                heartbeat_timeout=45.0,
                auth_timeout=5.5,
                connect_timeout=3.0,
            ),
            socket=SocketConfig(path=Path("/tmp/bfxd.sock"), mode=0o600, allowed_uids=(1000, 0), max_clients=8),
            requests=RequestsConfig(timeout=2.5, shutdown_grace=0.0),
            reconnect=ReconnectConfig(initial_delay=0.5, max_delay=0.5),
            log=LogConfig(format="console", level="warning"),
            access=AccessConfig(
                read=Principals(uids=frozenset({1000, 0}), gids=frozenset({0}), spelled=("1000", "root", "group:0")),
                trade=Principals(uids=frozenset(), gids=frozenset(), spelled=()),
            ),
            metrics=MetricsConfig(listen=ListenAddress("tcp", host="127.0.0.1", port=9187)),
        )
        assert isinstance(config.exchange.heartbeat_timeout, float)

    def test_mode_may_be_a_toml_octal_integer(self, tmp_path: Path) -> None:
        """mode = 0o640 (a TOML integer) is accepted like "0640"."""
        assert load_config(write(tmp_path, "[socket]\nmode = 0o640\n"), env={}).socket.mode == 0o640

    def test_empty_credential_path_means_unset(self, tmp_path: Path) -> None:
        """api_key_file = "" leaves the credential file unset."""
        config = load_config(write(tmp_path, '[exchange]\napi_key_file = ""\n'), env={})
        assert config.exchange.api_key_file is None


class TestPrecedence:
    def test_env_beats_file_and_overrides_beat_env(self, tmp_path: Path) -> None:
        """overrides > environment > file > defaults, key by key."""
        path = write(tmp_path, '[socket]\npath = "/file.sock"\nmax_clients = 5\n[log]\nlevel = "debug"\n')
        env = {"BFXD_SOCKET_PATH": "/env.sock", "BFXD_SOCKET_MAX_CLIENTS": "6"}
        config = load_config(path, env=env, overrides={"socket.path": "/cli.sock"})
        assert config.socket.path == Path("/cli.sock")
        assert config.socket.max_clients == 6
        assert config.log.level == "debug"
        assert config.log.format == "json"

    @pytest.mark.parametrize(
        ("name", "value", "section", "key", "expected"),
        [
            ("BFXD_EXCHANGE_URL", "wss://example.test/ws/2", "exchange", "url", "wss://example.test/ws/2"),
            ("BFXD_EXCHANGE_API_KEY_FILE", "/k", "exchange", "api_key_file", Path("/k")),
            ("BFXD_EXCHANGE_API_SECRET_FILE", "", "exchange", "api_secret_file", None),
            ("BFXD_EXCHANGE_HEARTBEAT_TIMEOUT", "12.5", "exchange", "heartbeat_timeout", 12.5),
            ("BFXD_EXCHANGE_AUTH_TIMEOUT", "7", "exchange", "auth_timeout", 7.0),
            ("BFXD_EXCHANGE_CONNECT_TIMEOUT", "1e1", "exchange", "connect_timeout", 10.0),
            ("BFXD_SOCKET_PATH", "/s.sock", "socket", "path", Path("/s.sock")),
            ("BFXD_SOCKET_MODE", "0600", "socket", "mode", 0o600),
            ("BFXD_SOCKET_ALLOWED_UIDS", "1000, 1001", "socket", "allowed_uids", (1000, 1001)),
            ("BFXD_SOCKET_ALLOWED_UIDS", "", "socket", "allowed_uids", ()),
            ("BFXD_SOCKET_MAX_CLIENTS", "3", "socket", "max_clients", 3),
            ("BFXD_REQUESTS_TIMEOUT", "4", "requests", "timeout", 4.0),
            ("BFXD_REQUESTS_SHUTDOWN_GRACE", "0", "requests", "shutdown_grace", 0.0),
            ("BFXD_RECONNECT_INITIAL_DELAY", "2", "reconnect", "initial_delay", 2.0),
            ("BFXD_RECONNECT_MAX_DELAY", "90", "reconnect", "max_delay", 90.0),
            ("BFXD_LOG_FORMAT", "console", "log", "format", "console"),
            ("BFXD_LOG_LEVEL", "error", "log", "level", "error"),
        ],
    )
    def test_every_key_can_come_from_the_environment(self, name, value, section, key, expected) -> None:
        """BFXD_<SECTION>_<KEY> sets that key, parsed from text."""
        config = load_config(None, env={name: value}, overrides=None)
        assert getattr(getattr(config, section), key) == expected

    def test_unrelated_bfxd_variables_are_ignored(self) -> None:
        """BFXD_SOCKET (bfxctl), BFXD_API_KEY/SECRET (credentials) and other BFXD_ names are not config."""
        env = {
            "BFXD_SOCKET": "/x.sock",
            "BFXD_API_KEY": "k",
            "BFXD_API_SECRET": "s",
            "BFXD_FUZZ_EXAMPLES": "5000",
            "SOCKET_PATH": "/y",
        }
        assert load_config(env=env) == Config()

    def test_override_keys_are_dotted_and_parsed_like_env(self) -> None:
        """overrides take "section.key" and string values parsed like the environment."""
        config = load_config(None, env={}, overrides={"socket.mode": "0640", "socket.allowed_uids": "7"})
        assert (config.socket.mode, config.socket.allowed_uids) == (0o640, (7,))


def message_of(path: Path | None, env: dict[str, str] | None = None, overrides=None) -> str:
    with pytest.raises(ConfigError) as info:
        load_config(path, env=env or {}, overrides=overrides)
    return str(info.value)


class TestErrorsNameSourceAndKey:
    @pytest.mark.parametrize(
        ("toml", "fragments"),
        [
            ('[socket]\nmode = "rw-rw----"\n', ["[socket] mode", "octal"]),
            ('[socket]\nmode = "0999"\n', ["[socket] mode", "octal"]),
            ("[socket]\nmode = 660\n", ["[socket] mode", "0777"]),  # decimal 660 is not 0o660
            ('[socket]\nallowed_uids = "1000"\n', ["[socket] allowed_uids", "list of uids"]),
            ("[socket]\nallowed_uids = [-1]\n", ["[socket] allowed_uids", "uids"]),
            ("[socket]\nmax_clients = 0\n", ["[socket] max_clients", "an integer from 1 to 100000"]),
            ("[socket]\nmax_clients = 1.5\n", ["[socket] max_clients", "integer"]),
            ('[socket]\npath = ""\n', ["[socket] path", "path"]),
            ('[exchange]\nheartbeat_timeout = "30"\n', ["[exchange] heartbeat_timeout", "a number"]),
            ("[exchange]\nheartbeat_timeout = true\n", ["[exchange] heartbeat_timeout", "a number"]),
            ("[exchange]\nauth_timeout = 0\n", ["[exchange] auth_timeout", "seconds from 0.5 to 300"]),
            ("[exchange]\nconnect_timeout = -1\n", ["[exchange] connect_timeout", "from 0.5 to 300"]),
            ("[exchange]\nconnect_timeout = inf\n", ["[exchange] connect_timeout", "from 0.5 to 300"]),
            ("[requests]\ntimeout = nan\n", ["[requests] timeout", "from 0.01 to 3600"]),
            ("[requests]\nshutdown_grace = -0.5\n", ["[requests] shutdown_grace", "from 0 to 600"]),
            # issue 15 item 7: values that were accepted without a word
            ("[exchange]\nheartbeat_timeout = 0.001\n", ["[exchange] heartbeat_timeout", "from 1 to 600", "0.001"]),
            ("[exchange]\nheartbeat_timeout = 1e9\n", ["[exchange] heartbeat_timeout", "from 1 to 600"]),
            ("[requests]\ntimeout = 1e9\n", ["[requests] timeout", "from 0.01 to 3600", "1000000000.0"]),
            # issue 15 item 8: the mode is reported as written, not as the decimal it parsed to
            ('[socket]\nmode = "4777"\n', ["[socket] mode", "no setuid", "got 4777"]),
            (f'[socket]\npath = "/{"x" * 120}"\n', ["[socket] path", "at most 107 bytes", "has 121"]),
            ("[access]\nread = 5\n", ["[access] read", "a list of uids, user names"]),
            ('[access]\ntrade = ["no-such-user-bfxd"]\n', ["[access] trade", "no such user 'no-such-user-bfxd'"]),
            ('[access]\ntrade = ["group:no-such-group-bfxd"]\n', ["[access] trade", "no such group"]),
            ('[metrics]\nlisten = "0.0.0.0:9187"\n', ["[metrics] listen", "loopback", "allow_remote"]),
            ('[metrics]\nlisten = "127.0.0.1"\n', ["[metrics] listen", "HOST:PORT"]),
            ('[metrics]\nlisten = "::1:9187"\n', ["[metrics] listen", "HOST:PORT"]),
            ('[metrics]\nallow_remote = "yes"\n', ["[metrics] allow_remote", "true or false"]),
            ('[exchange]\nurl = "https://api.bitfinex.com/ws/2"\n', ["[exchange] url", "ws:// or wss://"]),
            ('[exchange]\nurl = "wss://"\n', ["[exchange] url", "host"]),
            ('[exchange]\nurl = "wss://h:notaport/"\n', ["[exchange] url", "ws:// or wss://"]),
            ("[exchange]\napi_key_file = 5\n", ["[exchange] api_key_file", "path"]),
            ('[log]\nformat = "xml"\n', ["[log] format", "json, console"]),
            ('[log]\nlevel = "verbose"\n', ["[log] level", "debug, info, warning, error"]),
            ("[reconnect]\ninitial_delay = 10\nmax_delay = 5\n", ["[reconnect] max_delay", "initial_delay"]),
            ("[socket]\npth = 1\n", ["[socket]", "unknown key 'pth'", "path, mode"]),
            ("[sockets]\npath = 1\n", ["unknown section [sockets]", "[socket]"]),
            ("socket = 1\n", ["[socket] must be a table"]),
            ("[socket\n", ["invalid TOML"]),
        ],
    )
    def test_file_errors(self, tmp_path: Path, toml: str, fragments: list[str]) -> None:
        """A bad file value raises ConfigError naming the file, the key and what was expected."""
        path = write(tmp_path, toml)
        message = message_of(path)
        assert message.startswith(f"{path}: ")
        for fragment in fragments:
            assert fragment in message

    def test_non_utf8_file(self, tmp_path: Path) -> None:
        """A file that is not UTF-8 is a ConfigError naming it."""
        path = tmp_path / "bad.toml"
        path.write_bytes(b'[log]\nlevel = "\xff"\n')
        assert message_of(path).startswith(f"{path}: ")

    def test_unreadable_file(self, tmp_path: Path) -> None:
        """A directory (or unreadable file) given as config is a ConfigError naming it."""
        assert message_of(tmp_path).startswith(f"{tmp_path}: cannot read")

    @pytest.mark.parametrize(
        ("env", "fragments"),
        [
            ({"BFXD_SOCKET_MODE": "abc"}, ["environment variable BFXD_SOCKET_MODE: [socket] mode", "octal"]),
            ({"BFXD_SOCKET_ALLOWED_UIDS": "1000,,1"}, ["BFXD_SOCKET_ALLOWED_UIDS", "[socket] allowed_uids"]),
            ({"BFXD_SOCKET_PATH": ""}, ["BFXD_SOCKET_PATH", "[socket] path"]),
            ({"BFXD_SOCKET_PTH": "/x"}, ["environment variable BFXD_SOCKET_PTH", "unknown key 'pth'"]),
            ({"BFXD_LOG_LEVEL": "INFO"}, ["BFXD_LOG_LEVEL", "[log] level", "debug, info"]),
            ({"BFXD_EXCHANGE_HEARTBEAT_TIMEOUT": "soon"}, ["BFXD_EXCHANGE_HEARTBEAT_TIMEOUT", "a number"]),
            (
                {"BFXD_RECONNECT_INITIAL_DELAY": "100"},
                ["BFXD_RECONNECT_INITIAL_DELAY", "[reconnect] initial_delay", "<= max_delay (60.0)"],
            ),
        ],
    )
    def test_env_errors(self, env: dict[str, str], fragments: list[str]) -> None:
        """A bad environment value raises ConfigError naming the variable and the key."""
        message = message_of(None, env)
        for fragment in fragments:
            assert fragment in message

    def test_cross_field_error_blames_the_key_that_was_set(self, tmp_path: Path) -> None:
        """max_delay from the environment below initial_delay from the file names the env variable."""
        path = write(tmp_path, "[reconnect]\ninitial_delay = 5\n")
        message = message_of(path, {"BFXD_RECONNECT_MAX_DELAY": "2"})
        assert message.startswith("environment variable BFXD_RECONNECT_MAX_DELAY: [reconnect] max_delay")
        assert ">= initial_delay (5.0)" in message

    @pytest.mark.parametrize(
        ("overrides", "fragments"),
        [
            ({"socket.mode": "x"}, ["command line (socket.mode)", "[socket] mode"]),
            ({"socket.nope": "x"}, ["command line (socket.nope)", "unknown key 'nope'"]),
            ({"nope.path": "x"}, ["command line (nope.path)", "unknown section"]),
        ],
    )
    def test_override_errors(self, overrides: dict[str, str], fragments: list[str]) -> None:
        """A bad command-line override raises ConfigError naming the flag's key."""
        message = message_of(None, {}, overrides)
        for fragment in fragments:
            assert fragment in message

    def test_direct_construction_validates_too(self) -> None:
        """Building a section in code runs the same checks (a ValueError naming the field)."""
        with pytest.raises(ValueError, match="heartbeat_timeout"):
            ExchangeConfig(heartbeat_timeout=0)
        with pytest.raises(ValueError, match="max_delay"):
            ReconnectConfig(initial_delay=2, max_delay=1)


def as_text(value: object) -> str:
    """A config_as_dict value spelled as an environment variable would spell it."""
    if isinstance(value, list):
        return ",".join(map(str, value))
    return "" if value is None else str(value)


class TestConfigAsDict:
    def test_round_trips_through_json_in_toml_spelling(self, tmp_path: Path) -> None:
        """config_as_dict is JSON-able, spells mode as "0660", and its values load back to the same Config."""
        config = load_config(write(tmp_path, FULL), env={})
        data = json.loads(json.dumps(config_as_dict(config)))
        assert data["socket"]["mode"] == "0600"
        assert data["socket"]["allowed_uids"] == [1000, 0]
        assert data["exchange"]["api_secret_file"] == str(tmp_path / "secret")
        overrides = {f"{s}.{k}": as_text(v) for s, table in data.items() for k, v in table.items()
                     if v is not None or s != "access"}  # an unset [access] role has no text spelling
        assert load_config(None, env={}, overrides=overrides) == config
        assert config_as_dict(Config())["exchange"]["api_key_file"] is None


class TestExampleFile:
    def test_example_loads_to_the_defaults(self) -> None:
        """config/bfxd.toml, as shipped (everything commented out), loads to the defaults."""
        assert load_config(EXAMPLE, env={}) == Config()

    def test_example_documents_every_key_with_valid_values(self, tmp_path: Path) -> None:
        """Uncommenting every `# key = value` line of the example gives a valid config covering every key."""
        lines = EXAMPLE.read_text().splitlines()
        uncommented = [re.sub(r"^# (?=[a-z_]+ = )", "", line) for line in lines]
        documented = set(_keys_by_section(uncommented))
        expected = {(s, k) for s, table in config_as_dict(Config()).items() for k in table}
        assert documented == expected
        config = load_config(write(tmp_path, "\n".join(uncommented)), env={})
        assert config.exchange.api_key_file == Path("/etc/bfxd/api-key")
        assert config.socket == Config().socket


def _keys_by_section(lines: list[str]):
    section = None
    for line in lines:
        if header := re.match(r"^\[(\w+)\]", line):
            section = header.group(1)
        elif key := re.match(r"^([a-z_]+) = ", line):
            yield section, key.group(1)


class TestBoundsAndWarnings:
    """Issue 15 item 7: risky values inside the bounds are named, one sentence each."""

    @pytest.mark.parametrize(
        ("toml", "fragment"),
        [
            ("[exchange]\nheartbeat_timeout = 2\n", "heartbeat_timeout = 2: a ping goes out after 1 s"),
            ("[exchange]\nheartbeat_timeout = 300\n", "goes unnoticed for 300 s"),
            ("[requests]\ntimeout = 3600\n", "[requests] timeout = 3600"),
            ("[requests]\nshutdown_grace = 30\n", "TimeoutStopSec=20s"),
            ('[socket]\nmode = "0777"\n', 'mode = "0777" lets every local user connect'),
            ('[socket]\nmode = 0o666\n[access]\nread = []\n', 'mode = "0666" lets every local user connect'),
            ('[metrics]\nlisten = "0.0.0.0:9187"\nallow_remote = true\n', "beyond this host"),
        ],
    )
    def test_risky_values_warn(self, tmp_path: Path, toml: str, fragment: str) -> None:
        warnings = config_warnings(load_config(write(tmp_path, toml), env={}))
        assert len(warnings) == 1
        assert fragment in warnings[0]

    @pytest.mark.parametrize(
        "toml",
        [
            "",
            '[socket]\nmode = "0777"\nallowed_uids = [1000]\n',
            '[socket]\nmode = "0777"\n[access]\nread = [1000]\ntrade = [1000]\n',
            '[metrics]\nlisten = "[::1]:9187"\n',
            '[metrics]\nlisten = "unix:/run/bfxd/metrics.sock"\n',
        ],
    )
    def test_safe_values_do_not_warn(self, tmp_path: Path, toml: str) -> None:
        assert config_warnings(load_config(write(tmp_path, toml), env={})) == []

    def test_bounds_hold_for_direct_construction(self) -> None:
        with pytest.raises(ValueError, match="from 1 to 600"):
            ExchangeConfig(heartbeat_timeout=0.001)
        with pytest.raises(ValueError, match=r"from 0\.01 to 3600"):
            RequestsConfig(timeout=1e9)


class TestAccessAndMetricsKeys:
    def test_access_from_the_environment(self) -> None:
        config = load_config(None, env={"BFXD_ACCESS_TRADE": "1000, root,group:0", "BFXD_ACCESS_READ": ""})
        assert config.access.trade == Principals(uids=frozenset({1000, 0}), gids=frozenset({0}),
                                                 spelled=("1000", "root", "group:0"))
        assert config.access.read == Principals(uids=frozenset(), gids=frozenset(), spelled=())

    def test_unset_roles_are_none(self) -> None:
        assert Config().access == AccessConfig(read=None, trade=None)
        assert config_as_dict(Config())["access"] == {"read": None, "trade": None}

    @pytest.mark.parametrize(
        ("text", "expected"),
        [
            ("127.0.0.1:9187", ListenAddress("tcp", host="127.0.0.1", port=9187)),
            ("[::1]:9187", ListenAddress("tcp", host="::1", port=9187)),
            ("localhost:1", ListenAddress("tcp", host="localhost", port=1)),
            ("unix:/run/m.sock", ListenAddress("unix", path=Path("/run/m.sock"))),
            ("", None),
        ],
    )
    def test_metrics_listen_forms(self, text: str, expected: ListenAddress | None) -> None:
        config = load_config(None, env={"BFXD_METRICS_LISTEN": text})
        assert config.metrics.listen == expected
        assert config_as_dict(config)["metrics"]["listen"] == text

    @pytest.mark.parametrize("text", ["127.0.0.1:0", "127.0.0.1:65536", "127.0.0.1:http", ":9187", "10.1.2.3:9187",
                                      "metrics.example:9187"])
    def test_metrics_listen_refused(self, text: str) -> None:
        with pytest.raises(ConfigError, match=r"\[metrics\] listen"):
            load_config(None, env={"BFXD_METRICS_LISTEN": text})
