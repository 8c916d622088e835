"""Integration fixtures: the simulator and the daemon in this test's trio run, a log watcher to wait on, and
``bfxd run`` as a child process."""

from __future__ import annotations

import resource
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from subprocess import PIPE
from typing import Any

import attrs
import pytest
import structlog
import trio
from tests.integration.helpers import API_KEY, API_SECRET, GUARD_S, fast_link, test_config, test_credentials
from tests.integration.process import BFXD, BfxdProcess, daemon_env
from tests.logwatch import LogWatch

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



StartBfxd = Callable[..., Awaitable[BfxdProcess]]


@pytest.fixture
async def start_bfxd(nursery: trio.Nursery) -> AsyncIterator[StartBfxd]:
    """A factory: ``bfxd run -c CONFIG`` as a child process (``env``: extra environment), its output read in the
    background; killed at the end if the test left it running."""
    started: list[BfxdProcess] = []

    async def start(config_path: Path, *, env: dict[str, str] | None = None) -> BfxdProcess:
        process = await trio.lowlevel.open_process([*BFXD, "run", "-c", str(config_path)],
                                                   stdout=PIPE, stderr=PIPE, env=daemon_env(env))
        bfxd = BfxdProcess(process)
        started.append(bfxd)
        await nursery.start(bfxd.pump)
        return bfxd

    yield start
    for bfxd in started:
        if bfxd.process.returncode is None:
            bfxd.process.kill()
            await bfxd.wait()
