"""Integration fixtures: the simulator and the daemon in this test's trio run, and a log watcher to wait on."""

from __future__ import annotations

import resource
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import attrs
import pytest
import structlog
import trio
from tests.integration.helpers import API_KEY, API_SECRET, GUARD_S, fast_link, test_config, test_credentials

from bfxd.actors.session import SessionBoard
from bfxd.config import Config
from bfxd.daemon import run_daemon
from bfxd.simulator import Simulator, SimulatorConfig


@attrs.define
class RunningDaemon:
    """One in-process daemon: its config, its session board, and the switches to stop it and see it stop."""

    config: Config
    board: SessionBoard
    stop: trio.Event
    stopped: trio.Event

    @property
    def socket_path(self) -> Path:
        return self.config.socket.path

    async def shut_down(self) -> None:
        """Set *stop* and wait (under the hang guard) until run_daemon has returned."""
        self.stop.set()
        with trio.fail_after(GUARD_S):
            await self.stopped.wait()


StartDaemon = Callable[..., Awaitable[RunningDaemon]]


class LogWatch:
    """A structlog processor that keeps every event and lets a test wait for one, instead of sleeping."""

    def __init__(self) -> None:
        self.entries: list[dict[str, Any]] = []
        self._changed = trio.Event()

    def __call__(self, _logger: object, _method: str, event_dict: dict[str, Any]) -> dict[str, Any]:
        self.entries.append(dict(event_dict))
        self._changed.set()
        self._changed = trio.Event()
        return event_dict

    async def wait_until(self, predicate: Callable[[], bool]) -> None:
        """Return once *predicate* holds, checking it after each logged event (the daemon logs every change)."""
        with trio.fail_after(GUARD_S):
            while not predicate():
                await self._changed.wait()

    def find(self, event: str, **fields: Any) -> list[dict[str, Any]]:
        return [e for e in self.entries if e.get("event") == event and all(e.get(k) == v for k, v in fields.items())]

    async def wait_for(self, event: str, **fields: Any) -> dict[str, Any]:
        """The first entry named *event* carrying *fields*, once it has been logged."""
        with trio.fail_after(GUARD_S):
            while not (found := self.find(event, **fields)):
                await self._changed.wait()
        return found[0]


@pytest.fixture
def log_watch() -> Iterator[LogWatch]:
    """Every structlog event of the test, with the bound context (request_id, client_id…) merged in."""
    watch = LogWatch()
    with structlog.testing.capture_logs(processors=[structlog.contextvars.merge_contextvars, watch]):
        yield watch


@pytest.fixture
def sim_config() -> SimulatorConfig:
    """Five offers on the simulated account, with the daemon's test credentials."""
    return SimulatorConfig(api_key=API_KEY, api_secret=API_SECRET, offers=5, seed=11)


@pytest.fixture
async def sim(nursery: trio.Nursery, sim_config: SimulatorConfig) -> Simulator:
    """The exchange simulator, listening on a free loopback port in this trio run."""
    simulator = Simulator(sim_config)
    await nursery.start(simulator.serve)
    return simulator


@pytest.fixture
async def start_daemon(
    nursery: trio.Nursery, sim: Simulator, socket_dir: Path, log_watch: LogWatch
) -> AsyncIterator[StartDaemon]:
    """A factory: start the daemon in-process against *sim* (``test_config`` keywords); by default wait until its
    session is ready and its book holds the simulator's offers (the fos snapshot follows the auth answer)."""
    daemons: list[RunningDaemon] = []

    async def start(*, wait_ready: bool = True, **overrides: Any) -> RunningDaemon:
        config = test_config(sim.url, socket_dir / "bfxd.sock", **overrides)
        stop, stopped = trio.Event(), trio.Event()

        async def run(task_status: trio.TaskStatus[SessionBoard] = trio.TASK_STATUS_IGNORED) -> None:
            try:
                await run_daemon(config, test_credentials(), stop=stop, link=fast_link(sim.url),
                                 task_status=task_status)
            finally:
                stopped.set()

        board = await nursery.start(run)
        daemon = RunningDaemon(config, board, stop, stopped)
        daemons.append(daemon)
        if wait_ready:
            with trio.fail_after(GUARD_S):
                await board.wait_ready()
            await log_watch.wait_until(lambda: board.offers == len(sim.offers))
        return daemon

    yield start
    for daemon in daemons:  # a clean stop is part of every test: a daemon that does not drain fails it
        await daemon.shut_down()


@pytest.fixture
async def daemon(start_daemon: StartDaemon) -> RunningDaemon:
    """The daemon with the default test configuration, its exchange session ready."""
    return await start_daemon()


@pytest.fixture
def raise_fd_limit() -> Iterator[None]:
    """Raise the soft RLIMIT_NOFILE to the hard limit for the test (many sockets), then restore it."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))

