"""A small WebSocket test client for the simulator, and the nursery-started simulator itself."""

from __future__ import annotations

import itertools
import json
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import trio
import trio_websocket

from bfxd.protocol import auth_frame
from bfxd.secret import Secret
from bfxd.simulator import Simulator, SimulatorConfig

GUARD_S = 10.0  # hang guard for one loopback wait: generous, never a "wait a bit"
KEY, SECRET = "test-key", "test-secret"
_nonces = itertools.count(1_700_000_000_000_000)  # strictly increasing across a test run, as the exchange wants


def config(**overrides: Any) -> SimulatorConfig:
    return SimulatorConfig(**{"api_key": KEY, "api_secret": SECRET, "offers": 3, "seed": 7, **overrides})


async def start(nursery: trio.Nursery, **overrides: Any) -> Simulator:
    sim = Simulator(config(**overrides))
    await nursery.start(sim.serve)
    return sim


def auth_text(*, key: str = KEY, secret: str = SECRET, nonce: int | None = None,
              filter: tuple[str, ...] | None = None) -> str:
    return auth_frame(Secret(key), Secret(secret), next(_nonces) if nonce is None else nonce, filter=filter)


class Client:
    """One WebSocket connection to the simulator, reading JSON frames with a hang guard."""

    def __init__(self, ws: trio_websocket.WebSocketConnection) -> None:
        self.ws = ws

    async def send(self, frame: Any) -> None:
        await self.ws.send_message(frame if isinstance(frame, str) else json.dumps(frame))

    async def receive_text(self) -> str:
        with trio.fail_after(GUARD_S):
            message = await self.ws.get_message()
        assert isinstance(message, str)
        return message

    async def receive(self) -> Any:
        return json.loads(await self.receive_text())

    async def receive_until(self, predicate: Callable[[Any], bool]) -> list[Any]:
        """Frames up to and including the first that matches *predicate*."""
        frames = []
        while True:
            frames.append(await self.receive())
            if predicate(frames[-1]):
                return frames

    async def nothing_within(self, seconds: float) -> bool:
        """True when no frame arrives for *seconds* (a bounded check of absence, not a wait for something)."""
        with trio.move_on_after(seconds):
            frame = await self.ws.get_message()
            raise AssertionError(f"expected silence, got {frame!r}")
        return True

    async def authenticate(self, **auth: Any) -> list[Any]:
        """Send a valid auth; return the frames up to the last snapshot (fls) or the auth answer if it failed."""
        await self.send(auth_text(**auth))
        answer = await self.receive()
        assert answer["event"] == "auth", answer
        if answer["status"] != "OK":
            return [answer]
        return [answer, *await self.receive_until(lambda f: isinstance(f, list) and f[1] == "fls")]


@asynccontextmanager
async def connect(url: str, *, authenticated: bool = False) -> AsyncIterator[Client]:
    """A client past the info greeting (and past auth and snapshots when *authenticated*)."""
    async with trio_websocket.open_websocket_url(url, connect_timeout=GUARD_S, disconnect_timeout=2) as ws:
        client = Client(ws)
        info = await client.receive()
        assert info["event"] == "info", info
        if authenticated:
            frames = await client.authenticate()
            assert frames[0]["status"] == "OK", frames
        yield client


def kinds(frames: list[Any]) -> list[str]:
    """The channel-0 abbreviations (or event names) of some frames, for order assertions."""
    return [f[1] if isinstance(f, list) else f["event"] for f in frames]
