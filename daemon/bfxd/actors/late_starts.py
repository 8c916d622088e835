"""Request tasks started once their outcome is in, not when the request begins.

A cancel's task used to start at once, run until it waited for the router's outcome, and be woken for it: two
task steps, where the answer needs one. For an op whose wait is an ``ops.AfterOutcome`` the inbox asks instead
to be called when the outcome arrives, and only then starts the task (in the request's own context, so its log
lines carry the request id): it answers, logs and ends in one step. With 100 busy clients that was a fifth of
the daemon's task steps.

The client's request nursery must stay open until every such task has started: ``wait_all_started``, before the
nursery ends. If the nursery is cut off all the same (the stop sequence's backstop), later outcomes start
nothing: the router, which calls back, never sees an error for it.
"""

from __future__ import annotations

import contextvars
from collections.abc import Awaitable, Callable
from functools import partial

import trio

from bfxd.actors.ops import AfterOutcome


class LateStarts:
    __slots__ = ("_closed", "_idle", "_nursery", "_waiting")

    def __init__(self, nursery: trio.Nursery) -> None:
        self._nursery = nursery
        self._waiting = 0  # registered, not started yet
        self._idle: trio.Event | None = None
        self._closed = False

    def start_when_settled(self, wait: AfterOutcome, task: Callable[[], Awaitable[None]]) -> bool:
        """Start *task* once *wait*'s outcome is in, and return True; False if that cannot be waited for here
        (the input is not with the router yet): start it now."""
        self._waiting += 1
        if wait.when_settled(partial(self._start, task, contextvars.copy_context())):
            return True
        self._waiting -= 1
        return False

    def _start(self, task: Callable[[], Awaitable[None]], context: contextvars.Context) -> None:
        self._waiting -= 1
        if not self._closed:
            context.run(self._nursery.start_soon, task)  # the task copies this context: the request's
        if not self._waiting and self._idle is not None:
            self._idle.set()

    async def wait_all_started(self) -> None:
        while self._waiting:
            self._idle = trio.Event()
            await self._idle.wait()

    def close(self) -> None:
        """The nursery has ended: nothing more may start in it."""
        self._closed = True
