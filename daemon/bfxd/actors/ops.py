"""The operations table: for each request type, how it begins, how its typed result becomes an answer, what the
audit trail records of it, and whether it writes to the exchange.

``OPS`` is the only place that names operations: the inbox looks a parsed request up here and runs the row.
Every ``begin`` returns the wait for exactly one final answer; an op that sends an exchange input hands it to the
router before returning (no task switch in between: the cancel path is the hot one).
"""

from __future__ import annotations

import functools
import math
import time
from collections.abc import Awaitable, Callable
from decimal import Decimal
from typing import Any

import attrs
import trio

import bfxd
from bfxd.actors.api import AccountClient, PendingInput
from bfxd.actors.replies import Answer, Reply, cancel_reply, refused, submit_reply
from bfxd.daemon_metrics import DaemonMetrics
from bfxd.logconfig import log_health
from bfxd.protocol import client_wire as wire
from bfxd.protocol.client_requests import (
    OP_NAMES,
    CancelAllRequest,
    CancelRequest,
    CreditsRequest,
    HelloRequest,
    LoansRequest,
    MetricsRequest,
    OffersRequest,
    PingRequest,
    ReplaceRequest,
    StatusRequest,
    SubmitRequest,
    WalletsRequest,
    WatchRequest,
)
from bfxd.protocol.input_kinds import CancelInput, Outcome, SubmitInput

PROTOCOL_VERSION = 1  # the socket protocol's version, as ``hello`` tells it; raised on an incompatible change
WATCH_EVENTS = ("credit", "loan", "notification", "offer", "state", "wallet", "watch_ended")


@attrs.frozen
class OpContext:
    account: AccountClient
    request_id: str
    default_timeout: float
    metrics: DaemonMetrics


Wait = Callable[[], Awaitable[Answer]]


@attrs.frozen
class Op:
    begin: Callable[[Any, OpContext], Wait]  # starts the request now; returns the wait for its final answer
    audit: Callable[[Any], dict[str, Any]] = lambda request: {}  # fields of command.received (and .completed)
    writes: bool = False  # sends inputs to the exchange: drained on shutdown, the "trade" role
    streaming: bool = False  # answers, then streams events (the inbox runs it: there is no final wait)


class AfterOutcome:
    """The wait of an op that is one exchange input, its answer made from the input's outcome alone. The inbox
    may finish the request only once that outcome is in (``when_settled``), with no task waiting for it
    (late_starts.py)."""

    __slots__ = ("_answer", "_pending")

    def __init__(self, pending: PendingInput, answer: Callable[[Outcome], Answer]) -> None:
        self._pending, self._answer = pending, answer

    async def __call__(self) -> Answer:
        return self._answer(await self._pending.outcome())

    def when_settled(self, then: Callable[[], None]) -> bool:
        return self._pending.when_settled(then)

    def answer_now(self) -> Answer:
        """The answer, once ``when_settled`` has called back."""
        return self._answer(self._pending.outcome_now())


@functools.cache
def _version() -> str:
    return bfxd.__version__  # importlib.metadata: a millisecond per lookup, and it never changes


def _timing(request: Any, context: OpContext) -> tuple[float, float]:
    """The request's wait in seconds, and its deadline in trio time: its ``timeout`` (else the default), cut
    short by its absolute ``deadline`` when that comes first. The wait may be 0 or less: the client's deadline
    had passed when the daemon read the request."""
    wait = request.timeout or context.default_timeout
    if request.deadline is not None:
        wait = min(wait, request.deadline - time.time())
    return wait, trio.current_time() + wait


def _expired(request: Any, wait: float) -> Answer | None:
    """The answer to a request whose absolute deadline has already passed: nothing is done for it."""
    if wait > 0:
        return None
    reply = refused(wire.NOT_SENT, "its deadline had passed when the daemon read it; nothing was sent")
    return reply.answer(request.op, request.ref)


async def _answered(answer: Answer) -> Answer:
    return answer


def _at_once(answer: Callable[[Any, OpContext], Answer]) -> Callable[[Any, OpContext], Wait]:
    def begin(request: Any, context: OpContext) -> Wait:
        async def wait() -> Answer:
            return answer(request, context)
        return wait
    return begin


def _ping(request: PingRequest, context: OpContext) -> Answer:
    return Answer(wire.answer_line(request.op, request.ref), "ok")


def _status(request: StatusRequest, context: OpContext) -> Answer:
    status = {**context.account.status().to_json(), "version": _version(),
              "channels": context.account.channels.to_json(), "log": log_health().as_status()}
    return Answer(wire.answer_line(request.op, request.ref, status=status), "ok")


def _hello(request: HelloRequest, context: OpContext) -> Answer:
    return Answer(wire.answer_line(request.op, request.ref, protocol=PROTOCOL_VERSION, version=_version(),
                                   ops=sorted(OP_NAMES), events=list(WATCH_EVENTS)), "ok")


def _metrics(request: MetricsRequest, context: OpContext) -> Answer:
    return Answer(wire.answer_line(request.op, request.ref, text=context.metrics.render()), "ok")


def _begin_cancel(request: CancelRequest, context: OpContext) -> Wait:
    wait, deadline = _timing(request, context)
    if (expired := _expired(request, wait)) is not None:
        return functools.partial(_answered, expired)
    pending = context.account.start(CancelInput(request.offer_id), request_id=context.request_id, deadline=deadline)
    return AfterOutcome(pending, lambda outcome: cancel_reply(request.offer_id, outcome, waited_s=wait).answer(
        request.op, request.ref))


async def _ready_within(account: AccountClient, deadline: float) -> bool:
    """The book is live only on a ready session: an empty book from a link that is down would read as "none"."""
    with trio.move_on_at(deadline):
        await account.board.wait_ready()
    return account.board.ready


def _begin_offers(request: OffersRequest, context: OpContext) -> Wait:
    async def finish() -> Answer:
        wait, deadline = _timing(request, context)
        if (expired := _expired(request, wait)) is not None:
            return expired
        if not await _ready_within(context.account, deadline):
            reply = refused(wire.NOT_READY, f"no authenticated exchange session within {wait:g} s; the book is "
                            "not live")
            return reply.answer(request.op, request.ref)
        offers = await context.account.read(lambda state: state.book.offers(request.symbol))
        return Reply({"offers": [o.to_json() for o in offers]}, audit={"count": len(offers)}).answer(
            request.op, request.ref)
    return finish


def _begin_cancel_all(request: CancelAllRequest, context: OpContext) -> Wait:
    async def finish() -> Answer:
        account = context.account
        wait, deadline = _timing(request, context)
        if (expired := _expired(request, wait)) is not None:
            return expired
        if not await _ready_within(account, deadline):
            reply = refused(wire.NOT_READY, f"no authenticated exchange session within {wait:g} s; nothing was "
                            "cancelled")
            return reply.answer(request.op, request.ref)
        offers = await account.read(lambda state: state.book.offers(request.symbol))
        if request.timeout is None and offers:
            # Without a timeout of its own, a cancel_all also gets the time the pace needs for every offer (a
            # thousand offers at five inputs a second take 200 s), never past the client's absolute deadline.
            extra = len(offers) / (account.board.pace or 1.0)
            cap = math.inf if request.deadline is None else trio.current_time() + request.deadline - time.time()
            deadline, wait = min(deadline + extra, cap), wait + extra
        # One foc per offer, all handed over at once: the exchange answers each independently.
        ids = [o.id for o in offers if o.id is not None]
        pending = await account.start_many([CancelInput(i) for i in ids], request_id=context.request_id,
                                           deadline=deadline)
        replies = [cancel_reply(offer_id, await p.outcome(), waited_s=wait)
                   for offer_id, p in zip(ids, pending, strict=True)]
        results = [r.to_json() for r in replies]
        failed = [r for r in replies if not r.ok]
        audit = {"offers": len(replies), "failed": len(failed)}
        if not failed:
            return Answer(wire.answer_line(request.op, request.ref, results=results), "ok", audit)
        first = failed[0].failure
        assert first is not None
        line = wire.error_line(request.op, request.ref, first.type, f"{len(failed)} of {len(replies)} cancels "
                               "failed", fields={"results": results})
        return Answer(line, first.type, audit)
    return finish


def _begin_submit(request: SubmitRequest, context: OpContext) -> Wait:
    wait, deadline = _timing(request, context)
    if (expired := _expired(request, wait)) is not None:
        return functools.partial(_answered, expired)
    spec = SubmitInput(symbol=request.symbol, amount=request.amount, rate=request.rate, period=request.period,
                       type=request.type, flags=request.flags)
    pending = context.account.start(spec, request_id=context.request_id, deadline=deadline)
    return AfterOutcome(pending, lambda outcome: submit_reply(outcome, waited_s=wait).answer(request.op,
                                                                                              request.ref))


def _begin_replace(request: ReplaceRequest, context: OpContext) -> Wait:
    async def finish() -> Answer:
        wait, deadline = _timing(request, context)
        if (expired := _expired(request, wait)) is not None:
            return expired
        reply = await _replace(request, context, wait, deadline)
        return reply.answer(request.op, request.ref)
    return finish


async def _replace(request: ReplaceRequest, context: OpContext, wait: float, deadline: float) -> Reply:
    """Cancel, wait until the offer is off the book, then submit its fields with the request's changes."""
    account = context.account
    if not await _ready_within(account, deadline):
        return refused(wire.NOT_READY, f"no authenticated exchange session within {wait:g} s; nothing was done")
    old = await account.read(lambda state: state.book.get(request.offer_id))
    if old is None:
        return refused(wire.NOT_ACTIVE, f"offer {request.offer_id} is not on the book; nothing was done")
    cancelled = cancel_reply(request.offer_id, await account.send(
        CancelInput(request.offer_id), request_id=context.request_id, deadline=deadline), waited_s=wait)
    if cancelled.failure is not None:
        failure = cancelled.failure
        return Reply({}, attrs.evolve(failure, message=f"the cancel failed ({failure.message}); nothing was "
                                      "submitted"), cancelled.audit)
    # The confirmation: the offer leaves the book (its funds are free again), with its final remaining amount.
    with trio.move_on_at(deadline):
        old = await account.offer_gone(request.offer_id) or old
    spec = SubmitInput(symbol=old.symbol or "", amount=request.amount or _decimal_text(old.amount),
                       rate=request.rate or _decimal_text(old.rate), period=request.period or old.period or 2,
                       type=request.type or old.type or "LIMIT", flags=old.flags or 0)
    submitted = submit_reply(await account.send(spec, request_id=context.request_id, deadline=deadline),
                             waited_s=max(0.0, deadline - trio.current_time()))
    fields = {"cancelled": old.to_json(), **submitted.fields}
    # offer_id is the replaced offer's (command.received's field); the new one's id is new_offer_id
    audit = {"new_offer_id" if k == "offer_id" else k: v for k, v in submitted.audit.items()}
    if submitted.failure is None:
        return Reply(fields, audit=audit)
    failure = submitted.failure
    return Reply(fields, attrs.evolve(failure, message=f"offer {request.offer_id} was cancelled, but the new "
                                      f"offer failed: {failure.message}"), audit)


def _decimal_text(number: float | int | Decimal | None) -> str:
    """An amount or rate the exchange sent (a JSON number), as decimal text for a new offer."""
    assert number is not None
    return format(Decimal(repr(number)) if isinstance(number, float) else Decimal(number), "f")


def _begin_account_book(book: str, rows: Callable[[Any, Any], list[Any]]) -> Callable[[Any, OpContext], Wait]:
    """An op answered from one of the account books (wallets, credits, loans): ``not_ready`` until that book's
    own snapshot arrived on a live link (an empty book before it would read as "none")."""
    def begin(request: Any, context: OpContext) -> Wait:
        async def finish() -> Answer:
            wait, deadline = _timing(request, context)
            if (expired := _expired(request, wait)) is not None:
                return expired
            account = context.account
            items = None
            if await _ready_within(account, deadline):
                with trio.move_on_at(deadline):
                    items = await account.read_synced(book, lambda state: rows(state, request))
            if items is None:
                reply = refused(wire.NOT_READY, f"no {book} snapshot from an authenticated exchange session within "
                                f"{wait:g} s; the {book} are not live")
                return reply.answer(request.op, request.ref)
            if book == "wallets" and (request.refresh or any(w.available is None for w in items)):
                await account.request_calc(refresh=request.refresh)  # the figures come as wallet updates
            return Reply({book: [i.to_json() for i in items]}, audit={"count": len(items)}).answer(
                request.op, request.ref)
        return finish
    return begin


def _unused(request: Any, context: OpContext) -> Wait:
    raise AssertionError("a streaming op is run by the inbox")


def _with_timeout(fields: dict[str, Any], request: Any) -> dict[str, Any]:
    return {**fields, "timeout_s": request.timeout} if request.timeout is not None else fields


OPS: dict[type, Op] = {
    PingRequest: Op(_at_once(_ping)),
    HelloRequest: Op(_at_once(_hello)),
    StatusRequest: Op(_at_once(_status)),
    MetricsRequest: Op(_at_once(_metrics)),
    OffersRequest: Op(_begin_offers, audit=lambda r: {"symbol": r.symbol} if r.symbol else {}),
    CancelRequest: Op(_begin_cancel, audit=lambda r: _with_timeout({"offer_id": r.offer_id}, r), writes=True),
    CancelAllRequest: Op(_begin_cancel_all, writes=True,
                         audit=lambda r: _with_timeout({"symbol": r.symbol} if r.symbol else {}, r)),
    SubmitRequest: Op(_begin_submit, writes=True,
                      audit=lambda r: _with_timeout({"symbol": r.symbol, "amount": r.amount, "rate": r.rate,
                                                     "period": r.period, "offer_type": r.type, "flags": r.flags}, r)),
    ReplaceRequest: Op(_begin_replace, writes=True,
                       audit=lambda r: _with_timeout({k: v for k, v in (
                           ("offer_id", r.offer_id), ("amount", r.amount), ("rate", r.rate), ("period", r.period),
                           ("offer_type", r.type)) if v is not None}, r)),
    WalletsRequest: Op(_begin_account_book("wallets", lambda state, r: state.wallets.wallets()),
                       audit=lambda r: {"refresh": True} if r.refresh else {}),
    CreditsRequest: Op(_begin_account_book("credits", lambda state, r: state.credits.credits(r.symbol)),
                       audit=lambda r: {"symbol": r.symbol} if r.symbol else {}),
    LoansRequest: Op(_begin_account_book("loans", lambda state, r: state.loans.loans(r.symbol)),
                     audit=lambda r: {"symbol": r.symbol} if r.symbol else {}),
    WatchRequest: Op(_unused, streaming=True),
}
