"""SIGTERM/SIGINT → a graceful stop. A second signal gets Python's default behaviour: a forced quit."""

from __future__ import annotations

import signal

import structlog
import trio

log = structlog.get_logger()


async def watch_signals(stop: trio.Event, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
    with trio.open_signal_receiver(signal.SIGTERM, signal.SIGINT) as received:
        task_status.started()
        async for signum in received:
            log.info("daemon.stopping", signal=signal.Signals(signum).name)
            stop.set()
            return
