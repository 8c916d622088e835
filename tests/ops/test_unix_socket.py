"""bfxd.unix_socket: error messages that say what went wrong."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from bfxd.errors import ConfigError


def test_a_socket_path_too_long_for_af_unix_says_why(tmp_path: Path) -> None:
    """Issue 15 item 8: bind's "AF_UNIX path too long" has no strerror; the message must not say "None"."""
    from bfxd.unix_socket import open_unix_listener

    deep = tmp_path
    while len(os.fsencode(deep)) < 110:
        deep = deep / ("d" * 20)
    deep.mkdir(parents=True)
    with pytest.raises(ConfigError) as caught:
        open_unix_listener(deep / "bfxd.sock", mode=0o600)
    message = str(caught.value)
    assert "None" not in message and "too long" in message
