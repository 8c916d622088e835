"""bfxd.credentials: where credentials come from, and refusing files others could read (systemd.md §3.3)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from bfxd.config import ExchangeConfig
from bfxd.credentials import Credentials, load_credentials
from bfxd.errors import ConfigError
from bfxd.secret import Secret

KEY = "k3yVALUEabc123"
SECRET = "s3cretVALUExyz789"  # must never appear in an error message or a repr


def secret_file(path: Path, content: str | bytes, mode: int = 0o600) -> Path:
    path.write_bytes(content.encode() if isinstance(content, str) else content)
    path.chmod(mode)
    return path


def files_config(tmp_path: Path, key_mode: int = 0o600, secret_mode: int = 0o600) -> ExchangeConfig:
    return ExchangeConfig(
        api_key_file=secret_file(tmp_path / "api-key", KEY + "\n", key_mode),
        api_secret_file=secret_file(tmp_path / "api-secret", SECRET + "\n", secret_mode),
    )


def refused(exchange: ExchangeConfig, env: dict[str, str] | None = None) -> str:
    with pytest.raises(ConfigError) as info:
        load_credentials(exchange, env=env or {})
    message = str(info.value)
    assert SECRET not in message and KEY not in message
    return message


class TestSources:
    def test_configured_files(self, tmp_path: Path) -> None:
        """Two 0600 files give both values, the trailing newline stripped, source "files"."""
        creds = load_credentials(files_config(tmp_path), env={})
        assert (creds.api_key.reveal(), creds.api_secret.reveal(), creds.source) == (KEY, SECRET, "files")

    def test_credentials_directory_is_the_default(self, tmp_path: Path) -> None:
        """Without configured paths, $CREDENTIALS_DIRECTORY/api-key and api-secret are read."""
        secret_file(tmp_path / "api-key", KEY)
        secret_file(tmp_path / "api-secret", SECRET)
        creds = load_credentials(ExchangeConfig(), env={"CREDENTIALS_DIRECTORY": str(tmp_path)})
        assert creds == Credentials(api_key=Secret(KEY), api_secret=Secret(SECRET), source="files")

    def test_configured_path_beats_the_credentials_directory(self, tmp_path: Path) -> None:
        """A configured file wins over the credentials-directory default for that one credential."""
        creds_dir = tmp_path / "creds"
        creds_dir.mkdir()
        secret_file(creds_dir / "api-key", "fromdir")
        secret_file(creds_dir / "api-secret", SECRET)
        exchange = ExchangeConfig(api_key_file=secret_file(tmp_path / "mine", KEY))
        creds = load_credentials(exchange, env={"CREDENTIALS_DIRECTORY": str(creds_dir)})
        assert (creds.api_key.reveal(), creds.api_secret.reveal()) == (KEY, SECRET)

    def test_environment_for_development(self) -> None:
        """BFXD_API_KEY/BFXD_API_SECRET are used when no file is named; source says "environment"."""
        creds = load_credentials(ExchangeConfig(), env={"BFXD_API_KEY": KEY, "BFXD_API_SECRET": SECRET})
        assert (creds.api_key.reveal(), creds.api_secret.reveal(), creds.source) == (
            KEY,
            SECRET,
            "environment",
        )

    def test_files_win_over_the_environment(self, tmp_path: Path) -> None:
        """When files are named, the environment variables are not consulted."""
        env = {"BFXD_API_KEY": "other", "BFXD_API_SECRET": "other"}
        assert load_credentials(files_config(tmp_path), env=env).api_key.reveal() == KEY

    def test_nothing_configured_explains_both_ways(self) -> None:
        """No files and no variables: the message names the config keys, LoadCredential and the env vars."""
        message = refused(ExchangeConfig())
        for fragment in (
            "api_key_file",
            "api_secret_file",
            "LoadCredential=",
            "BFXD_API_KEY",
            "BFXD_API_SECRET",
        ):
            assert fragment in message

    def test_half_the_environment_names_the_missing_variable(self) -> None:
        """Only BFXD_API_KEY set: the error names BFXD_API_SECRET."""
        assert "BFXD_API_SECRET is not set" in refused(ExchangeConfig(), {"BFXD_API_KEY": KEY})

    def test_half_the_files_is_refused(self, tmp_path: Path) -> None:
        """A key file without a secret file (and no credentials directory) is an error, not a mix."""
        exchange = ExchangeConfig(api_key_file=secret_file(tmp_path / "api-key", KEY))
        assert "api_secret_file is not set" in refused(exchange, {"BFXD_API_SECRET": SECRET})

    def test_repr_hides_values(self, tmp_path: Path) -> None:
        """repr(Credentials) shows neither value."""
        text = repr(load_credentials(files_config(tmp_path), env={}))
        assert KEY not in text and SECRET not in text


class TestFileChecks:
    @pytest.mark.parametrize("mode", [0o644, 0o640, 0o604, 0o620, 0o602, 0o660])
    def test_group_or_other_access_is_refused_with_the_fix(self, tmp_path: Path, mode: int) -> None:
        """Outside $CREDENTIALS_DIRECTORY any group/other bit refuses the file, naming path, mode and fix."""
        exchange = files_config(tmp_path, secret_mode=mode)
        message = refused(exchange)
        path = exchange.api_secret_file
        assert f"API secret file {path}: mode {mode:04o} is too open" in message
        assert f"chmod 600 {path}" in message

    @pytest.mark.parametrize("mode", [0o600, 0o400])
    def test_owner_only_modes_are_accepted(self, tmp_path: Path, mode: int) -> None:
        """0600 and 0400 are accepted."""
        assert load_credentials(files_config(tmp_path, mode, mode), env={}).source == "files"

    def test_systemd_0440_is_accepted_inside_the_credentials_directory(self, tmp_path: Path) -> None:
        """Inside $CREDENTIALS_DIRECTORY a 0440 file (systemd's ACL mask) is accepted."""
        secret_file(tmp_path / "api-key", KEY, 0o440)
        secret_file(tmp_path / "api-secret", SECRET, 0o440)
        creds = load_credentials(ExchangeConfig(), env={"CREDENTIALS_DIRECTORY": str(tmp_path)})
        assert creds.api_secret.reveal() == SECRET

    def test_others_bits_are_refused_even_inside_the_credentials_directory(self, tmp_path: Path) -> None:
        """Inside $CREDENTIALS_DIRECTORY an others-readable file is still refused."""
        secret_file(tmp_path / "api-key", KEY, 0o400)
        secret_file(tmp_path / "api-secret", SECRET, 0o444)
        message = refused(ExchangeConfig(), {"CREDENTIALS_DIRECTORY": str(tmp_path)})
        assert "mode 0444 is too open" in message

    def test_0440_outside_the_credentials_directory_is_refused(self, tmp_path: Path) -> None:
        """The 0440 exception applies only inside $CREDENTIALS_DIRECTORY."""
        other = tmp_path / "creds"
        other.mkdir()
        assert "mode 0440 is too open" in refused(
            files_config(tmp_path, secret_mode=0o440), {"CREDENTIALS_DIRECTORY": str(other)}
        )

    def test_symlink_is_refused(self, tmp_path: Path) -> None:
        """A symlinked secret file is refused (O_NOFOLLOW), even if its target is fine."""
        exchange = files_config(tmp_path)
        link = tmp_path / "link"
        link.symlink_to(exchange.api_secret_file)
        message = refused(ExchangeConfig(api_key_file=exchange.api_key_file, api_secret_file=link))
        assert f"{link}: is a symbolic link" in message

    def test_directory_is_refused(self, tmp_path: Path) -> None:
        """A directory is not a regular file."""
        (tmp_path / "dir").mkdir(mode=0o700)
        exchange = ExchangeConfig(api_key_file=tmp_path / "dir", api_secret_file=tmp_path / "dir")
        assert "not a regular file" in refused(exchange)

    def test_fifo_is_refused_without_blocking(self, tmp_path: Path) -> None:
        """A FIFO at the path is refused at once (opening it must not wait for a writer)."""
        fifo = tmp_path / "fifo"
        os.mkfifo(fifo, 0o600)
        assert "not a regular file" in refused(ExchangeConfig(api_key_file=fifo, api_secret_file=fifo))

    def test_missing_file(self, tmp_path: Path) -> None:
        """A missing file is named in the error."""
        exchange = ExchangeConfig(api_key_file=tmp_path / "nope", api_secret_file=tmp_path / "nope")
        assert f"API key file {tmp_path / 'nope'}: not found" in refused(exchange)

    @pytest.mark.skipif(os.geteuid() != 0, reason="needs root to chown a file to another uid")
    def test_foreign_owner_is_refused(self, tmp_path: Path) -> None:
        """A file owned by neither root nor the daemon's uid is refused."""
        exchange = files_config(tmp_path)
        os.chown(exchange.api_secret_file, 54321, 54321)
        assert "owned by uid 54321" in refused(exchange)

    @pytest.mark.skipif(os.geteuid() == 0, reason="root reads any file")
    def test_unreadable_file(self, tmp_path: Path) -> None:
        """A file the daemon may not read gives "permission denied" naming it."""
        exchange = files_config(tmp_path, secret_mode=0o000)
        assert "permission denied" in refused(exchange)


class TestContents:
    @pytest.mark.parametrize(
        ("content", "fragment"),
        [
            (b"", "is empty"),
            (b"\n", "is empty"),
            (b"\r\n", "is empty"),
            (f"{SECRET}\n\n".encode(), "whitespace or non-printable"),  # only one newline is stripped
            (f"  {SECRET}".encode(), "whitespace or non-printable"),
            (f"{SECRET} x".encode(), "whitespace or non-printable"),
            (f"{SECRET}\tx".encode(), "whitespace or non-printable"),
            (f"{SECRET}\x00".encode(), "whitespace or non-printable"),
            (f"{SECRET}\x1b[0m".encode(), "whitespace or non-printable"),
            (f"{SECRET}\nsecond line\n".encode(), "whitespace or non-printable"),
            (f"{SECRET}é".encode(), "non-ASCII"),
            (SECRET.encode() + b"\xff", "non-ASCII"),
            (SECRET.encode() * 400, "larger than 4096 bytes"),
        ],
    )
    def test_bad_contents_are_refused_without_echoing_them(self, tmp_path: Path, content: bytes, fragment: str) -> None:
        """Empty, multi-line, non-printable, non-ASCII or oversized contents are refused; the message never
        includes the contents."""
        exchange = ExchangeConfig(
            api_key_file=secret_file(tmp_path / "api-key", KEY),
            api_secret_file=secret_file(tmp_path / "api-secret", content),
        )
        assert fragment in refused(exchange)

    @pytest.mark.parametrize("content", [SECRET, SECRET + "\n", SECRET + "\r\n"])
    def test_one_trailing_newline_is_stripped(self, tmp_path: Path, content: str) -> None:
        """A trailing \\n or \\r\\n (as editors write) is not part of the value."""
        exchange = ExchangeConfig(
            api_key_file=secret_file(tmp_path / "api-key", KEY),
            api_secret_file=secret_file(tmp_path / "api-secret", content),
        )
        assert load_credentials(exchange, env={}).api_secret.reveal() == SECRET

    def test_exactly_4_kib_is_accepted(self, tmp_path: Path) -> None:
        """A 4096-byte value is the largest accepted."""
        value = "a" * 4096
        exchange = ExchangeConfig(
            api_key_file=secret_file(tmp_path / "api-key", KEY),
            api_secret_file=secret_file(tmp_path / "api-secret", value),
        )
        assert load_credentials(exchange, env={}).api_secret.reveal() == value

    def test_environment_values_are_validated_too(self) -> None:
        """A BFXD_API_SECRET with whitespace is refused, naming the variable and not the value."""
        message = refused(ExchangeConfig(), {"BFXD_API_KEY": KEY, "BFXD_API_SECRET": f"{SECRET} "})
        assert "BFXD_API_SECRET" in message
