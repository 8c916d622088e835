"""What each op does, and how an outcome becomes an answer line (interface.md, "The socket protocol").

Every function here returns exactly one final answer for its request; the caller writes and logs it.
"""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable
from typing import Any

import attrs
import trio

import bfxd
from bfxd.actors.api import AccountClient, CancelResult, NotReady, PendingCancel, TimedOut
from bfxd.actors.messages import Answered, NoLongerActive, ShuttingDown
from bfxd.protocol import client_wire as wire
from bfxd.protocol.client_wire import CancelAllRequest, CancelRequest, OffersRequest, PingRequest, StatusRequest


@attrs.frozen
class Answer:
    """A final answer: the line to write, and what the audit log says about it."""

    line: bytes
    outcome: str  # "ok" or the error type
    fields: dict[str, Any] = attrs.field(factory=dict)  # extra audit fields (status, text, …)


def cancel_result(offer_id: int, result: CancelResult, *, waited_s: float) -> dict[str, Any]:
    """The JSON body of one cancel's answer (``ok``, ``id`` and either the result or ``error``)."""
    if isinstance(result, Answered):
        note = result.notification
        offer = note.offer.to_json() if note.offer is not None else None
        if result.succeeded:
            return {"ok": True, "id": offer_id, "status": note.status, "text": note.text, "offer": offer}
        return {"ok": False, "id": offer_id, "error": wire.error_body(
            wire.EXCHANGE, f"the exchange refused the cancel: {note.text}", status=note.status, text=note.text)}
    if isinstance(result, NoLongerActive):
        error = wire.error_body(wire.NOT_ACTIVE, "the link dropped after the cancel was sent, and the offer is no "
                                "longer active (cancelled or executed)")
    elif isinstance(result, NotReady):
        error = wire.error_body(wire.NOT_READY, f"no authenticated exchange session within {waited_s:g} s; "
                                "the cancel was not sent")
    elif isinstance(result, TimedOut):
        error = wire.error_body(wire.TIMEOUT, f"cancel sent, no answer within {waited_s:g} s: outcome unknown")
    else:
        assert isinstance(result, ShuttingDown)
        error = wire.error_body(wire.SHUTTING_DOWN, "the daemon is stopping; the outcome is unknown")
    return {"ok": False, "id": offer_id, "error": error}


def _line(op: str, ref: wire.Ref, body: dict[str, Any]) -> bytes:
    fields = {k: v for k, v in body.items() if k not in ("ok", "error")}
    if body["ok"]:
        return wire.answer_line(op, ref, **fields)
    error = {k: v for k, v in body["error"].items() if k not in ("type", "message")}
    return wire.error_line(op, ref, body["error"]["type"], body["error"]["message"], fields=fields, **error)


@functools.cache
def _version() -> str:
    return bfxd.__version__  # importlib.metadata: a millisecond per lookup, and it never changes


def start_request(
    request: wire.Request, *, account: AccountClient, request_id: str, default_timeout: float
) -> Callable[[], Awaitable[Answer]]:
    """Begin one non-streaming request now; return the wait for its final answer.

    A cancel reaches the router before this returns (no task switch in between: it is the hot path); the
    other ops start when the returned function is awaited.
    """
    if isinstance(request, CancelRequest):
        wait = request.timeout or default_timeout
        deadline = trio.current_time() + wait
        pending = account.start_cancel(request.offer_id, request_id=request_id)
        return functools.partial(_finish_cancel, request, pending, deadline, wait)
    return functools.partial(_run_request, request, account=account, request_id=request_id,
                             default_timeout=default_timeout)


async def _finish_cancel(request: CancelRequest, pending: PendingCancel, deadline: float, wait: float) -> Answer:
    result = await pending.outcome(deadline)
    body = cancel_result(request.offer_id, result, waited_s=wait)
    return Answer(_line(request.op, request.ref, body), _outcome(body), _audit(body))


async def _run_request(
    request: wire.Request, *, account: AccountClient, request_id: str, default_timeout: float
) -> Answer:
    """Carry out one non-streaming request other than a cancel; return its final answer."""
    op, ref = request.op, request.ref
    if isinstance(request, PingRequest):
        return Answer(wire.answer_line(op, ref), "ok")
    if isinstance(request, StatusRequest):
        status = {**account.status().to_json(), "version": _version()}
        return Answer(wire.answer_line(op, ref, status=status), "ok")
    wait = getattr(request, "timeout", None) or default_timeout
    deadline = trio.current_time() + wait
    if isinstance(request, OffersRequest):
        # The book is live only on a ready session: an empty list from a link that is down would read as
        # "no offers". Wait for one, as a cancel does.
        if not await _wait_ready(account, deadline):
            return _not_ready(request, wait, "the book is not live")
        offers = await account.offers(request.symbol)
        return Answer(wire.answer_line(op, ref, offers=[o.to_json() for o in offers]), "ok",
                      {"count": len(offers)})
    assert isinstance(request, CancelAllRequest)
    return await _cancel_all(request, account=account, request_id=request_id, deadline=deadline, wait=wait)


async def _cancel_all(
    request: CancelAllRequest, *, account: AccountClient, request_id: str, deadline: float, wait: float
) -> Answer:
    # The book is known only on a ready session: wait for one, as a cancel does. Without one, an empty book
    # would read as "nothing to cancel", ok.
    if not await _wait_ready(account, deadline):
        return _not_ready(request, wait, "nothing was cancelled")
    offers = await account.offers(request.symbol)
    results: list[dict[str, Any]] = [{}] * len(offers)

    async def cancel_one(index: int, offer_id: int) -> None:
        result = await account.cancel(offer_id, request_id=request_id, deadline=deadline)
        results[index] = cancel_result(offer_id, result, waited_s=wait)

    # One foc per offer, all at once: the exchange answers each independently.
    async with trio.open_nursery() as nursery:
        for index, offer in enumerate(offers):
            assert offer.id is not None
            nursery.start_soon(cancel_one, index, offer.id)
    failed = [r for r in results if not r["ok"]]
    audit = {"offers": len(results), "failed": len(failed)}
    if not failed:
        return Answer(wire.answer_line(request.op, request.ref, results=results), "ok", audit)
    first = failed[0]["error"]["type"]
    line = wire.error_line(request.op, request.ref, first, f"{len(failed)} of {len(results)} cancels failed",
                           fields={"results": results})
    return Answer(line, first, audit)


async def _wait_ready(account: AccountClient, deadline: float) -> bool:
    with trio.move_on_at(deadline):
        await account.board.wait_ready()
    return account.board.ready


def _not_ready(request: OffersRequest | CancelAllRequest, wait: float, consequence: str) -> Answer:
    message = f"no authenticated exchange session within {wait:g} s; {consequence}"
    return Answer(wire.error_line(request.op, request.ref, wire.NOT_READY, message), wire.NOT_READY)


def _outcome(body: dict[str, Any]) -> str:
    return "ok" if body["ok"] else body["error"]["type"]


def _audit(body: dict[str, Any]) -> dict[str, Any]:
    if body["ok"]:
        return {"status": body.get("status"), "text": body.get("text")}
    error = body["error"]
    return {"status": error.get("status"), "text": error.get("text"), "error": error.get("message")}
