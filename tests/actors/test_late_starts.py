"""Requests finished once their outcome is in (late_starts.py): not before, in the request's context, by a task
only when finishing at once is not possible, and the nursery held open until every one is done or started."""

from __future__ import annotations

import contextvars
from collections.abc import Awaitable, Callable

import structlog
import structlog.testing
import trio
import trio.testing

from bfxd.actors.api import PendingInput
from bfxd.actors.late_starts import LateStarts
from bfxd.actors.ops import AfterOutcome
from bfxd.protocol.input_kinds import CancelInput, NotReady, Outcome

REQUEST = contextvars.ContextVar[str]("REQUEST", default="none")


def _pending(submitted: bool = True) -> PendingInput:
    send, _receive = trio.open_memory_channel[object](1)
    pending = PendingInput(send, CancelInput(1), request_id="c1.1", deadline=trio.current_time() + 10)  # type: ignore[arg-type]
    if submitted:
        pending.submitted()
    return pending


def _cannot_finish_now() -> bool:
    return False  # the client's queue is full: a task must wait for room


def _register_as(request_id: str, late: LateStarts, after: AfterOutcome, task: Callable[[], Awaitable[None]],
                 finish_now: Callable[[], bool]) -> bool:
    """``start_when_settled`` from inside request *request_id*'s context, as the inbox's reader calls it."""
    token = REQUEST.set(request_id)
    try:
        return late.start_when_settled(after, task, finish_now)
    finally:
        REQUEST.reset(token)


def _deliver(pending: PendingInput, outcome: Outcome) -> None:
    pending.command.requester.reply.deliver(outcome)  # as the router does


async def test_the_task_starts_only_once_the_outcome_is_in(nursery: trio.Nursery) -> None:
    pending = _pending()
    after = AfterOutcome(pending, lambda outcome: type(outcome).__name__)  # type: ignore[arg-type,return-value]
    answers: list[tuple[str, object]] = []

    async def finish() -> None:
        with trio.testing.assert_no_checkpoints():  # started late, the task answers in its one step
            answers.append((REQUEST.get(), await after()))

    late = LateStarts()
    late.open(nursery)
    assert _register_as("c1.1", late, after, finish, _cannot_finish_now)
    await trio.testing.wait_all_tasks_blocked()
    assert answers == []  # no outcome, no task
    _deliver(pending, NotReady())
    await trio.testing.wait_all_tasks_blocked()
    assert answers == [("c1.1", "NotReady")]  # the request's context, not the deliverer's


async def test_an_input_not_yet_with_the_router_is_not_registered(nursery: trio.Nursery) -> None:
    late = LateStarts()
    late.open(nursery)
    after = AfterOutcome(_pending(submitted=False), lambda outcome: "")  # type: ignore[arg-type,return-value]

    async def finish() -> None:
        raise AssertionError("the caller starts it, not LateStarts")

    assert not late.start_when_settled(after, finish, _cannot_finish_now)
    with trio.testing.assert_no_checkpoints():
        await late.wait_all_started()  # nothing is waiting for it: it must not hold the nursery open


async def test_the_nursery_stays_open_until_every_task_has_started() -> None:
    pending = _pending()
    after = AfterOutcome(pending, lambda outcome: "answered")  # type: ignore[arg-type,return-value]
    steps: list[str] = []

    async def finish() -> None:
        steps.append(await after())

    async def deliver_later() -> None:
        await trio.testing.wait_all_tasks_blocked()
        steps.append("delivered")
        _deliver(pending, NotReady())

    async with trio.open_nursery() as outer:
        outer.start_soon(deliver_later)
        async with trio.open_nursery() as requests:
            late = LateStarts()
            late.open(requests)
            assert late.start_when_settled(after, finish, _cannot_finish_now)
            await late.wait_all_started()
            steps.append("all started")
        steps.append("nursery ended")
    assert steps[0] == "delivered" and steps[-1] == "nursery ended"  # the body waited for the late start
    assert sorted(steps[1:-1]) == ["all started", "answered"]  # and the task ran inside the nursery


async def test_an_outcome_after_close_starts_nothing_and_raises_nothing() -> None:
    pending = _pending()
    after = AfterOutcome(pending, lambda outcome: "")  # type: ignore[arg-type,return-value]
    started: list[str] = []

    async def finish() -> None:
        started.append("started")

    async with trio.open_nursery() as requests:
        late = LateStarts()
        late.open(requests)
        assert late.start_when_settled(after, finish, _cannot_finish_now)
    late.close()  # the nursery was cut off with a request still waiting (the stop's backstop)
    _deliver(pending, NotReady())  # the router delivers all the same: no error reaches it
    assert started == []


async def test_a_request_finished_at_once_needs_no_task(nursery: trio.Nursery) -> None:
    pending = _pending()
    after = AfterOutcome(pending, lambda outcome: type(outcome).__name__)  # type: ignore[arg-type,return-value]
    finished: list[tuple[str, object]] = []

    async def task() -> None:
        raise AssertionError("finished at once: no task")

    def finish_now() -> bool:
        finished.append((REQUEST.get(), after.answer_now()))
        return True

    late = LateStarts()
    late.open(nursery)
    assert _register_as("c1.2", late, after, task, finish_now)
    assert finished == []
    _deliver(pending, NotReady())
    assert finished == [("c1.2", "NotReady")]  # in the deliverer's own step, in the request's context
    with trio.testing.assert_no_checkpoints():
        await late.wait_all_started()  # nothing left to wait for


async def test_a_failing_finish_is_logged_not_raised_at_the_deliverer(nursery: trio.Nursery) -> None:
    pending = _pending()
    after = AfterOutcome(pending, lambda outcome: "")  # type: ignore[arg-type,return-value]

    async def task() -> None:
        raise AssertionError("not started after a failed finish")

    def finish_now() -> bool:
        raise RuntimeError("a bug")

    late = LateStarts()
    late.open(nursery)
    assert late.start_when_settled(after, task, finish_now)
    with structlog.testing.capture_logs() as logs:
        _deliver(pending, NotReady())  # the router must not see the bug
    assert [entry["event"] for entry in logs] == ["inbox.finish_failed"]
    with trio.testing.assert_no_checkpoints():
        await late.wait_all_started()  # and the nursery is not held open for it
