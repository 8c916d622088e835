"""Load the API key and secret, refusing files that others could read (systemd.md §3.3).

Synchronous: called before ``trio.run``. Where the credentials come from, first match wins:

1. ``[exchange] api_key_file`` / ``api_secret_file`` when set;
2. ``$CREDENTIALS_DIRECTORY/api-key`` / ``api-secret`` for whichever file is not set, when systemd exported
   that variable (``LoadCredential=api-key:…``);
3. ``BFXD_API_KEY`` / ``BFXD_API_SECRET`` from the environment (development only), used only when neither
   1 nor 2 names a file. ``Credentials.source`` says which, so the caller can warn about (3) under systemd.

Every problem raises ConfigError (exit 78). Messages name the file and the fix, never the contents.
"""

from __future__ import annotations

import errno
import os
import stat
from collections.abc import Mapping
from pathlib import Path
from typing import Literal

import attrs

from bfxd.config import ExchangeConfig
from bfxd.errors import ConfigError
from bfxd.secret import Secret

__all__ = ["MAX_CREDENTIAL_BYTES", "Credentials", "load_credentials"]

MAX_CREDENTIAL_BYTES = 4096
# O_NONBLOCK: opening a FIFO planted at the path would otherwise block the daemon's start for ever; it has no
# effect on regular files, and anything that is not one is refused after fstat anyway.
_OPEN_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK


@attrs.frozen
class Credentials:
    """The API key pair. ``source`` is ``"files"`` or ``"environment"``."""

    api_key: Secret
    api_secret: Secret
    source: Literal["files", "environment"] = "files"


def load_credentials(exchange: ExchangeConfig, *, env: Mapping[str, str] = os.environ) -> Credentials:
    """Return the credentials, or raise ConfigError explaining what is wrong and how to fix it."""
    cred_dir = env.get("CREDENTIALS_DIRECTORY") or None
    key_file = exchange.api_key_file or (Path(cred_dir, "api-key") if cred_dir else None)
    secret_file = exchange.api_secret_file or (Path(cred_dir, "api-secret") if cred_dir else None)
    if key_file is not None and secret_file is not None:
        return Credentials(
            api_key=_read_file("API key", key_file, cred_dir),
            api_secret=_read_file("API secret", secret_file, cred_dir),
            source="files",
        )
    if key_file is not None or secret_file is not None:
        # Half from a file and half from the environment would be too easy to get wrong unnoticed.
        missing = "api_secret_file" if secret_file is None else "api_key_file"
        raise ConfigError(
            f"[exchange] {missing} is not set while its partner is: set both credential files "
            "(or provide both through systemd LoadCredential=api-key:… and LoadCredential=api-secret:…)"
        )
    key, secret = env.get("BFXD_API_KEY"), env.get("BFXD_API_SECRET")
    if key is None and secret is None:
        raise ConfigError(
            "no API credentials: set [exchange] api_key_file and api_secret_file to files readable only by "
            "the daemon (chmod 600), or under systemd use LoadCredential=api-key:PATH and "
            "LoadCredential=api-secret:PATH; for development only, export BFXD_API_KEY and BFXD_API_SECRET"
        )
    if key is None or secret is None:
        missing = "BFXD_API_KEY" if key is None else "BFXD_API_SECRET"
        raise ConfigError(f"environment variable {missing} is not set (set both BFXD_API_KEY and BFXD_API_SECRET)")
    return Credentials(
        api_key=Secret(_validate(key, "environment variable BFXD_API_KEY")),
        api_secret=Secret(_validate(secret, "environment variable BFXD_API_SECRET")),
        source="environment",
    )


def _inside(path: Path, directory: str | None) -> bool:
    if directory is None:
        return False
    return Path(os.path.abspath(path)).is_relative_to(os.path.abspath(directory))


def _read_file(what: str, path: Path, cred_dir: str | None) -> Secret:
    """Open on an fd (no TOCTOU between the checks and the read), check type/owner/mode, read, validate."""
    where = f"{what} file {path}"
    try:
        fd = os.open(path, _OPEN_FLAGS)
    except FileNotFoundError:
        hint = " (is LoadCredential= set in the unit?)" if _inside(path, cred_dir) else ""
        raise ConfigError(f"{where}: not found{hint}") from None
    except PermissionError:
        raise ConfigError(f"{where}: permission denied for uid {os.geteuid()}") from None
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise ConfigError(f"{where}: is a symbolic link; point the config at the file itself") from None
        raise ConfigError(f"{where}: cannot open: {exc.strerror}") from None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise ConfigError(f"{where}: not a regular file")
        euid = os.geteuid()
        if info.st_uid not in (euid, 0):
            raise ConfigError(
                f"{where}: owned by uid {info.st_uid}; it must belong to root or to the daemon's uid {euid}"
            )
        mode = stat.S_IMODE(info.st_mode)
        # systemd's own credential files may show 0440 (an ACL mask on a private read-only mount), so inside
        # $CREDENTIALS_DIRECTORY only the "others" bits count; anywhere else the full ssh rule applies.
        if _inside(path, cred_dir):
            if mode & 0o007:
                raise ConfigError(f"{where}: mode {mode:04o} is too open (accessible by others)")
        elif mode & 0o077:
            raise ConfigError(
                f"{where}: mode {mode:04o} is too open (accessible by group or others); run: chmod 600 {path}"
            )
        data = _read_at_most(fd, MAX_CREDENTIAL_BYTES + 1)
    except OSError as exc:
        raise ConfigError(f"{where}: cannot read: {exc.strerror}") from None
    finally:
        os.close(fd)
    if len(data) > MAX_CREDENTIAL_BYTES:
        raise ConfigError(f"{where}: larger than {MAX_CREDENTIAL_BYTES} bytes; is this the right file?")
    try:
        text = data.decode("ascii")
    except UnicodeDecodeError:
        raise ConfigError(f"{where}: contains non-ASCII bytes") from None
    return Secret(_validate(text, where))


def _read_at_most(fd: int, limit: int) -> bytes:
    chunks: list[bytes] = []
    size = 0
    while size < limit:
        chunk = os.read(fd, limit - size)
        if not chunk:
            break
        chunks.append(chunk)
        size += len(chunk)
    return b"".join(chunks)


def _validate(text: str, where: str) -> str:
    """Strip one trailing newline (editors add one); refuse empty, whitespace or control characters."""
    value = text.removesuffix("\n").removesuffix("\r") if text.endswith("\n") else text
    if not value:
        raise ConfigError(f"{where}: is empty")
    if not (value.isascii() and value.isprintable()) or any(char.isspace() for char in value):
        # Never say which character or where: the message must not leak anything about the secret.
        raise ConfigError(f"{where}: contains whitespace or non-printable characters (expected one line)")
    return value
