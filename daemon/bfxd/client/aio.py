"""``AsyncClient``: the asyncio client of bfxd, the same methods as ``Client``, awaited.

Imported only when ``bfxd.client.AsyncClient`` is first used: asyncio costs tens of milliseconds to import,
which a blocking caller (bfxctl) should not pay.
"""

# ASYNC109: `timeout` here is the request's deadline, sent to the daemon (as in Client), not a local wait that a
# cancel scope could replace: the daemon must know it to answer not_ready / timeout in time.
# ruff: noqa: ASYNC109

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Iterable
from decimal import Decimal

from bfxd.client import codec, errors, models
from bfxd.client.sync import _REASONS, RECONNECT_FIRST_DELAY, RECONNECT_MAX_DELAY

TYPE_CHECKING = False  # typing costs ~10 ms to import, and bfxctl feels every one of them
if TYPE_CHECKING:
    from typing import Any

    from bfxd.client import events


class _Link:
    """One asyncio connection; deadlines are monotonic (time.monotonic, as the event loop's clock may differ)."""

    def __init__(self, path: str, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.path, self.reader, self.writer, self.lines = path, reader, writer, codec.LineReader()

    @classmethod
    async def open(cls, path: str, deadline: float) -> _Link:
        try:
            async with _until(deadline):
                reader, writer = await asyncio.open_unix_connection(path)
        except TimeoutError:
            raise errors.NoAnswer(f"could not connect to {path} before the deadline") from None
        except OSError as exc:
            reason = _REASONS.get(type(exc), exc.strerror or str(exc))
            raise errors.DaemonUnreachable(f"daemon unreachable: {path}: {reason}") from None
        return cls(path, reader, writer)

    async def send(self, data: bytes, deadline: float) -> None:
        """Raises OSError as is (ConnectionError when the daemon had closed): the caller decides."""
        async with _until(deadline):
            self.writer.write(data)
            await self.writer.drain()

    async def receive(self, deadline: float | None) -> tuple[dict[str, Any], str]:
        while (line := self.lines.next_line()) is None:
            try:
                async with _until(deadline):
                    chunk = await self.reader.read(65536)
            except TimeoutError:
                raise errors.NoAnswer(f"no answer from {self.path} before the deadline; outcome unknown") from None
            except OSError as exc:
                raise errors.ConnectionLost(f"bfxd connection failed: {exc.strerror or exc}") from None
            if not chunk:
                raise errors.ConnectionLost("bfxd closed the connection")
            self.lines.feed(chunk)
        return codec.parse_line(line)

    def close(self) -> None:
        self.writer.close()  # no wait_closed: closing a Unix socket does not block, and close() must be sync


def _until(deadline: float | None) -> asyncio.Timeout:
    if deadline is None:
        return asyncio.timeout(None)
    loop = asyncio.get_running_loop()
    return asyncio.timeout_at(loop.time() + (deadline - time.monotonic()))


async def _ask(link: _Link, request: dict[str, Any], deadline: float) -> tuple[dict[str, Any], str]:
    batch = codec.Batch([request])
    try:
        await link.send(batch.encode(batch.requests), deadline)
    except TimeoutError:
        raise errors.NoAnswer(f"could not send to {link.path} before the deadline") from None
    except OSError:
        pass  # closed on us: its reason (busy, forbidden) may be waiting to be read
    while not batch.done:
        batch.take(*await link.receive(deadline))
    return batch.answers[request["ref"]]


class AsyncClient:
    """``Client`` for asyncio: the same behaviour (deadlines, reconnects, errors), every method awaited."""

    def __init__(self, path: str | os.PathLike[str] | None = None, *, timeout: float = codec.DEFAULT_TIMEOUT,
                 check_protocol: bool = True) -> None:
        self.path = codec.socket_path(path)
        self.timeout = timeout
        self.check_protocol = check_protocol
        self._hello: tuple[dict[str, Any], str] | None = None
        self._link: _Link | None = None
        self._dropped = False
        self._ref = 0
        self._lock = asyncio.Lock()  # one exchange at a time on the shared connection

    def _next_ref(self) -> int:
        self._ref += 1
        return self._ref

    async def _open(self, deadline: float) -> _Link:
        delay = RECONNECT_FIRST_DELAY
        while True:
            try:
                link = await _Link.open(self.path, deadline)
                break
            except errors.DaemonUnreachable:
                if not self._dropped or time.monotonic() + delay >= deadline:
                    raise
                await asyncio.sleep(delay)  # bounded backoff while a dropped daemon restarts
                delay = min(delay * 2, RECONNECT_MAX_DELAY)
        if self.check_protocol:
            try:
                self._hello = await _ask(link, codec.hello_request(self._next_ref(), deadline), deadline)
                codec.check_hello(*self._hello)
            except BaseException:
                link.close()
                raise
        self._dropped = False
        return link

    def _drop(self) -> None:
        if self._link is not None:
            self._link.close()
            self._link = None
            self._dropped = True

    async def aclose(self) -> None:
        if self._link is not None:
            self._link.close()
            self._link = None

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def _exchange(self, requests: list[dict[str, Any]], timeout: float | None) -> codec.Batch:
        timeout = self.timeout if timeout is None else timeout
        deadline = time.monotonic() + timeout + codec.ANSWER_GRACE
        wire_deadline = time.time() + timeout
        reads_only = all(r["op"] in codec.READS for r in requests)
        async with self._lock:  # refs too are taken under it: `+= 1` is not atomic between threads
            batch = codec.Batch([codec.stamp({**r, "ref": self._next_ref()}, wire_deadline, timeout)
                                 for r in requests])
            for attempt in range(2):
                link = self._link = self._link or await self._open(deadline)
                try:
                    await link.send(batch.encode(batch.waiting), deadline)
                except TimeoutError:
                    self._drop()
                    raise errors.NoAnswer(f"could not send to {self.path} before the deadline") from None
                except OSError:  # closed before we wrote: nothing sent; it may have said why (busy)
                    try:
                        while not batch.done:
                            batch.take(*await link.receive(deadline))
                    except errors.BfxdError:
                        pass
                    self._drop()
                    if batch.done:
                        return batch
                    if attempt == 0:
                        continue
                    lost = errors.ConnectionLost("bfxd closed the connection before reading the request: not sent")
                    lost.safe_to_retry = True
                    raise lost from None
                try:
                    while not batch.done:
                        batch.take(*await link.receive(deadline))
                except errors.ConnectionLost:
                    self._drop()
                    if reads_only and attempt == 0:
                        continue
                    return batch
                except (errors.NoAnswer, errors.BadAnswer):
                    self._drop()
                    raise
                if any(a.get("ok") is False and a.get("ref") is None for a, _ in batch.answers.values()):
                    self._drop()
                return batch
        raise AssertionError("unreachable")

    async def _call(self, request: dict[str, Any], timeout: float | None) -> tuple[dict[str, Any], str]:
        batch = await self._exchange([request], timeout)
        ref = batch.requests[0]["ref"]
        if ref not in batch.answers:
            raise errors.ConnectionLost(f"bfxd closed the connection before answering {request['op']}; "
                                        "outcome unknown")
        return batch.answers[ref]

    async def _typed(self, request: dict[str, Any], timeout: float | None) -> Any:
        return codec.result(*await self._call(request, timeout), request["op"])

    async def call(self, op: str, *, timeout: float | None = None, **fields: Any) -> tuple[dict[str, Any], str]:
        """Any op, untyped: the answer object (floats as Decimal) and its line; raises on an error answer."""
        answer, text = await self._call({"op": op, **fields}, timeout)
        if answer.get("ok") is not True:
            raise errors.error_from_answer(answer, text)
        return answer, text

    async def hello(self, *, timeout: float | None = None) -> models.Hello:
        self._hello = await self._call({"op": "hello"}, timeout)
        return codec.hello_from(*self._hello)

    @property
    def server(self) -> models.Hello | None:
        """The daemon's hello from the last connection (None before the first, or without check_protocol)."""
        return None if self._hello is None else codec.hello_from(*self._hello)

    async def status(self, *, timeout: float | None = None) -> models.Status:
        return await self._typed({"op": "status"}, timeout)

    async def offers(self, symbol: str | None = None, *, timeout: float | None = None) -> models.Rows:
        return await self._typed(codec.with_symbol({"op": "offers"}, symbol), timeout)

    async def wallets(self, *, timeout: float | None = None) -> models.Rows:
        return await self._typed({"op": "wallets"}, timeout)

    async def credits(self, symbol: str | None = None, *, timeout: float | None = None) -> models.Rows:
        return await self._typed(codec.with_symbol({"op": "credits"}, symbol), timeout)

    async def loans(self, symbol: str | None = None, *, timeout: float | None = None) -> models.Rows:
        return await self._typed(codec.with_symbol({"op": "loans"}, symbol), timeout)

    async def cancel(self, offer_id: int, *, timeout: float | None = None) -> models.CancelResult:
        return await self._typed({"op": "cancel", "id": offer_id}, timeout)

    async def cancel_many(self, offer_ids: Iterable[int], *,
                          timeout: float | None = None) -> list[models.CancelResult]:
        ids = list(offer_ids)
        if not ids:
            return []
        batch = await self._exchange([{"op": "cancel", "id": i} for i in ids], timeout)
        return [codec.cancel_outcome(batch, request) for request in batch.requests]

    async def cancel_all(self, symbol: str | None = None, *, timeout: float | None = None) -> models.Rows:
        return codec.cancel_all_result(*await self._call(codec.with_symbol({"op": "cancel_all"}, symbol), timeout))

    async def submit(self, symbol: str, amount: Decimal | int | str, rate: Decimal | int | str, period: int, *,
                     type: str = "LIMIT", flags: int = 0, timeout: float | None = None) -> models.SubmitResult:
        return await self._typed(codec.submit_request(symbol, amount, rate, period, type, flags), timeout)

    async def replace(self, offer_id: int, *, rate: Decimal | int | str | None = None,
                      amount: Decimal | int | str | None = None, period: int | None = None,
                      type: str | None = None, timeout: float | None = None) -> models.ReplaceResult:
        return await self._typed(codec.replace_request(offer_id, rate, amount, period, type), timeout)

    async def watch(self, *, timeout: float | None = None) -> AsyncWatch:
        timeout = self.timeout if timeout is None else timeout
        deadline = time.monotonic() + timeout + codec.ANSWER_GRACE
        async with self._lock:
            link = await self._open(deadline)
            request = codec.stamp({"op": "watch", "ref": self._next_ref()}, time.time() + timeout, timeout)
        try:
            answer, text = await _ask(link, request, deadline)
        except BaseException:
            link.close()
            raise
        if answer.get("ok") is not True:
            link.close()
            raise errors.error_from_answer(answer, text)
        return AsyncWatch(link, text)


class AsyncWatch:
    """The events of one watch, as an async iterator; ends after ``WatchEnded``; ``aclose()`` to stop."""

    def __init__(self, link: _Link, line: str) -> None:
        self._link: _Link | None = link
        self.line = line

    def __aiter__(self) -> AsyncWatch:
        return self

    async def __anext__(self) -> events.Event:
        if self._link is None:
            raise StopAsyncIteration
        from bfxd.client import events  # loaded with the first event: only watchers pay for it

        try:
            while True:
                obj, text = await self._link.receive(None)
                if "event" in obj:
                    event = events.event_from_json(obj, text)
                    if isinstance(event, events.WatchEnded):
                        await self.aclose()
                    return event
                if obj.get("ok") is False:
                    raise errors.error_from_answer(obj, text)
        except BaseException:
            await self.aclose()
            raise

    async def aclose(self) -> None:
        if self._link is not None:
            self._link.close()
            self._link = None

    async def __aenter__(self) -> AsyncWatch:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()
