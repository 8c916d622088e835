"""Signals: SIGTERM/SIGINT → a graceful stop; SIGHUP → a reload, or a stop where there is nothing to reload.

A second SIGTERM/SIGINT gets Python's default behaviour (a forced quit): the receiver is closed once the stop
begins. SIGHUP never kills the daemon: without a reload hook (``bfxd demo``, where SIGHUP means the terminal
went away) it stops it cleanly like SIGTERM, so temporary files are removed.
"""

from __future__ import annotations

import signal
from collections.abc import Callable

import structlog
import trio

log = structlog.get_logger()


def ignore_hangup_until_ready() -> None:
    """SIGHUP's default action terminates; until the receiver below is open, a reload request is ignored.

    Called before ``trio.run``; trio's receiver replaces the disposition while it is open.
    """
    signal.signal(signal.SIGHUP, signal.SIG_IGN)


async def watch_signals(
    stop: trio.Event,
    *,
    reload: Callable[[], None] | None = None,
    task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED,
) -> None:
    with trio.open_signal_receiver(signal.SIGTERM, signal.SIGINT, signal.SIGHUP) as received:
        task_status.started()
        async for signum in received:
            if signum == signal.SIGHUP and reload is not None:
                reload()
                continue
            log.info("daemon.stopping", signal=signal.Signals(signum).name)
            stop.set()
            return
