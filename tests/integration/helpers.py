"""Test helpers: a JSON Lines client for the daemon's socket, and in-process daemon/simulator wiring."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import trio

from bfxd.actors.connection import LinkSettings
from bfxd.config import Config, ExchangeConfig, ReconnectConfig, RequestsConfig, SocketConfig
from bfxd.credentials import Credentials
from bfxd.secret import Secret

API_KEY = "test-key-0123456789"
API_SECRET = "test-secret-do-not-leak-4f1c9a"
GUARD_S = 15.0  # hang guard for loopback waits: generous, never a "wait a bit"


def test_credentials() -> Credentials:
    return Credentials(api_key=Secret(API_KEY), api_secret=Secret(API_SECRET), source="environment")


def test_config(url: str, socket_path: Path, *, heartbeat_timeout: float = 30.0, request_timeout: float = 5.0,
                shutdown_grace: float = 1.0, allowed_uids: tuple[int, ...] = (), max_clients: int = 1024,
                mode: int = 0o600, inputs_per_second: float = 1000.0, input_burst: int = 1000) -> Config:
    """A config for loopback tests: short timeouts, and an input pace that only the pacing tests hold back."""
    return Config(
        exchange=ExchangeConfig(url=url, heartbeat_timeout=heartbeat_timeout, auth_timeout=5.0, connect_timeout=5.0,
                                inputs_per_second=inputs_per_second, input_burst=input_burst),
        socket=SocketConfig(path=socket_path, mode=mode, allowed_uids=allowed_uids, max_clients=max_clients),
        requests=RequestsConfig(timeout=request_timeout, shutdown_grace=shutdown_grace),
        reconnect=ReconnectConfig(initial_delay=0.05, max_delay=0.5),
    )


def fast_link(url: str, **overrides: Any) -> LinkSettings:
    """Link settings for loopback tests: quick backoff, and a relaxed connection guard so a test may reconnect
    many times (the guard itself is tested in tests/actors/test_backoff.py)."""
    settings = {"url": url, "connect_timeout": 5.0, "heartbeat_timeout": 30.0, "initial_delay": 0.05,
                "max_delay": 0.5, "max_connects": 1000, "connect_window": 15.0, **overrides}
    return LinkSettings(**settings)


class LineClient:
    """A client of the daemon's socket speaking JSON Lines."""

    def __init__(self, stream: trio.SocketStream) -> None:
        self.stream = stream
        self._buffer = b""

    @classmethod
    async def connect(cls, path: Path) -> LineClient:
        return cls(await trio.open_unix_socket(str(path)))

    async def send(self, request: dict[str, Any] | bytes) -> None:
        data = request if isinstance(request, bytes) else json.dumps(request).encode() + b"\n"
        await self.stream.send_all(data)

    async def receive(self) -> dict[str, Any]:
        with trio.fail_after(GUARD_S):
            while b"\n" not in self._buffer:
                chunk = await self.stream.receive_some(65536)
                if not chunk:
                    raise EOFError("the daemon closed the connection")
                self._buffer += chunk
        line, self._buffer = self._buffer.split(b"\n", 1)
        return json.loads(line)

    async def receive_until_closed(self) -> list[dict[str, Any]]:
        lines = []
        while True:
            try:
                lines.append(await self.receive())
            except EOFError:
                return lines

    async def request(self, request: dict[str, Any]) -> dict[str, Any]:
        await self.send(request)
        return await self.receive()

    async def aclose(self) -> None:
        await self.stream.aclose()

    async def __aenter__(self) -> LineClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()


# Helpers named test_* are not tests.
test_credentials.__test__ = False  # type: ignore[attr-defined]
test_config.__test__ = False  # type: ignore[attr-defined]
