"""``Client``: the blocking client of bfxd (standard library only; safe to share between threads)."""

from __future__ import annotations

import os
import socket
import threading
import time
from collections.abc import Iterable, Iterator
from decimal import Decimal

from bfxd.client import codec, errors

TYPE_CHECKING = False  # typing costs ~10 ms to import, and bfxctl feels every one of them
if TYPE_CHECKING:
    from typing import Any

    from bfxd.client import events, models

RECONNECT_FIRST_DELAY = 0.05  # after a drop, the daemon may be restarting: try again, a bit slower each time
RECONNECT_MAX_DELAY = 1.0
_REASONS = {FileNotFoundError: "no such socket (is bfxd running?)",
            ConnectionRefusedError: "connection refused (is bfxd running?)",
            PermissionError: "permission denied"}


class _Link:
    """One connection: bytes out, parsed lines in, every blocking call bounded by a monotonic deadline."""

    def __init__(self, path: str, deadline: float | None) -> None:
        self.path, self.reader = path, codec.LineReader()
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            self._arm(deadline)
            self.sock.connect(path)
        except TimeoutError:
            self.sock.close()
            raise errors.NoAnswer(f"could not connect to {path} before the deadline") from None
        except OSError as exc:
            self.sock.close()
            reason = _REASONS.get(type(exc), exc.strerror or str(exc))
            raise errors.DaemonUnreachable(f"daemon unreachable: {path}: {reason}") from None

    def _arm(self, deadline: float | None) -> None:
        # Re-armed before each blocking call: one deadline covers the whole exchange, not each recv.
        if deadline is None:
            self.sock.settimeout(None)
            return
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise TimeoutError
        self.sock.settimeout(remaining)

    def send(self, data: bytes, deadline: float | None) -> None:
        """Raises OSError as is: the caller knows whether a failed send means "not sent"."""
        self._arm(deadline)
        self.sock.sendall(data)

    def receive(self, deadline: float | None) -> tuple[dict[str, Any], str]:
        while (line := self.reader.next_line()) is None:
            try:
                self._arm(deadline)
                chunk = self.sock.recv(65536)
            except TimeoutError:
                raise errors.NoAnswer(f"no answer from {self.path} before the deadline; outcome unknown") from None
            except OSError as exc:
                raise errors.ConnectionLost(f"bfxd connection failed: {exc.strerror or exc}") from None
            if not chunk:
                raise errors.ConnectionLost("bfxd closed the connection")
            self.reader.feed(chunk)
        return codec.parse_line(line)

    def close(self) -> None:
        self.sock.close()


class Client:
    """A blocking connection to bfxd, opened on first use, reopened when it drops.

    ``timeout`` (seconds) is each request's deadline, sent to the daemon with it; the client waits a second
    longer for the daemon's own answer. Reads (hello, status, offers, wallets, credits, loans) that lose their
    connection are sent again on a new one; a cancel, submit or replace is sent again only when it certainly
    was not sent (the daemon had already closed the connection). Errors are ``BfxdError`` subclasses.
    """

    def __init__(self, path: str | os.PathLike[str] | None = None, *, timeout: float = codec.DEFAULT_TIMEOUT,
                 check_protocol: bool = True) -> None:
        self.path = codec.socket_path(path)
        self.timeout = timeout
        self.check_protocol = check_protocol
        self._hello: tuple[dict[str, Any], str] | None = None  # the daemon's hello answer, last connection
        self._link: _Link | None = None
        self._dropped = False  # a connection was lost: the next connect waits for a restarting daemon
        self._ref = 0
        self._lock = threading.Lock()

    # --- connection -----------------------------------------------------------------------------------------

    def _next_ref(self) -> int:
        self._ref += 1
        return self._ref

    def _open(self, deadline: float) -> _Link:
        """A new connection (after hello, when checking). Patient only after a drop."""
        delay = RECONNECT_FIRST_DELAY
        while True:
            try:
                link = _Link(self.path, deadline)
                break
            except errors.DaemonUnreachable:
                if not self._dropped or time.monotonic() + delay >= deadline:
                    raise
                time.sleep(delay)  # bounded backoff while a dropped daemon restarts, within the deadline
                delay = min(delay * 2, RECONNECT_MAX_DELAY)
        if self.check_protocol:
            try:
                self._hello = self._hello_on(link, deadline)
            except BaseException:
                link.close()
                raise
        self._dropped = False
        return link

    def _hello_on(self, link: _Link, deadline: float) -> tuple[dict[str, Any], str]:
        answer = _ask(link, codec.hello_request(self._next_ref(), deadline), deadline)
        codec.check_hello(*answer)
        return answer

    @property
    def server(self) -> models.Hello | None:
        """The daemon's hello from the last connection (None before the first, or without check_protocol)."""
        return None if self._hello is None else codec.hello_from(*self._hello)

    def _drop(self) -> None:
        if self._link is not None:
            self._link.close()
            self._link = None
            self._dropped = True

    def close(self) -> None:
        with self._lock:
            if self._link is not None:
                self._link.close()
                self._link = None

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- requests -------------------------------------------------------------------------------------------

    def _exchange(self, requests: list[dict[str, Any]], timeout: float | None) -> codec.Batch:
        """Send *requests* pipelined and collect their answers. Missing answers (the connection dropped after
        sending a write) are left out of the batch; read-only batches are sent once more on a new connection."""
        timeout = self.timeout if timeout is None else timeout
        deadline = time.monotonic() + timeout + codec.ANSWER_GRACE
        wire_deadline = time.time() + timeout
        reads_only = all(r["op"] in codec.READS for r in requests)
        with self._lock:  # refs too are taken under it: `+= 1` is not atomic between threads
            batch = codec.Batch([codec.stamp({**r, "ref": self._next_ref()}, wire_deadline, timeout)
                                 for r in requests])
            for attempt in range(2):
                link = self._link = self._link or self._open(deadline)
                try:
                    link.send(batch.encode(batch.waiting), deadline)
                except TimeoutError:
                    self._drop()
                    raise errors.NoAnswer(f"could not send to {self.path} before the deadline") from None
                except OSError:  # closed before we wrote: nothing sent; it may have said why (busy)
                    self._read_what_is_left(link, batch, deadline)
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
                        batch.take(*link.receive(deadline))
                except errors.ConnectionLost:
                    self._drop()
                    if reads_only and attempt == 0:
                        continue
                    return batch
                except (errors.NoAnswer, errors.BadAnswer):
                    self._drop()  # the stream is out of step: later answers would be misread
                    raise
                if any(a.get("ok") is False and a.get("ref") is None for a, _ in batch.answers.values()):
                    self._drop()  # busy or forbidden: the daemon closes this connection
                return batch
        raise AssertionError("unreachable")

    @staticmethod
    def _read_what_is_left(link: _Link, batch: codec.Batch, deadline: float) -> None:
        try:
            while not batch.done:
                batch.take(*link.receive(deadline))
        except errors.BfxdError:
            pass

    def _call(self, request: dict[str, Any], timeout: float | None) -> tuple[dict[str, Any], str]:
        batch = self._exchange([request], timeout)
        ref = batch.requests[0]["ref"]
        if ref not in batch.answers:
            raise errors.ConnectionLost(f"bfxd closed the connection before answering {request['op']}; "
                                        "outcome unknown")
        return batch.answers[ref]

    def _typed(self, request: dict[str, Any], timeout: float | None) -> Any:
        return codec.result(*self._call(request, timeout), request["op"])

    def call(self, op: str, *, timeout: float | None = None, **fields: Any) -> tuple[dict[str, Any], str]:
        """Any op, untyped: the answer object (floats as Decimal) and its line as sent; raises on an error answer.
        For ops this client has no method for, and for callers that want the answer as it came."""
        answer, text = self._call({"op": op, **fields}, timeout)
        if answer.get("ok") is not True:
            raise errors.error_from_answer(answer, text)
        return answer, text

    def hello(self, *, timeout: float | None = None) -> models.Hello:
        """Protocol version, daemon version, ops and events; protocol 0 for a daemon older than hello."""
        self._hello = self._call({"op": "hello"}, timeout)
        return codec.hello_from(*self._hello)

    def status(self, *, timeout: float | None = None) -> models.Status:
        return self._typed({"op": "status"}, timeout)

    def offers(self, symbol: str | None = None, *, timeout: float | None = None) -> models.Rows:
        return self._typed(codec.with_symbol({"op": "offers"}, symbol), timeout)

    def wallets(self, *, timeout: float | None = None) -> models.Rows:
        return self._typed({"op": "wallets"}, timeout)

    def credits(self, symbol: str | None = None, *, timeout: float | None = None) -> models.Rows:
        return self._typed(codec.with_symbol({"op": "credits"}, symbol), timeout)

    def loans(self, symbol: str | None = None, *, timeout: float | None = None) -> models.Rows:
        return self._typed(codec.with_symbol({"op": "loans"}, symbol), timeout)

    def cancel(self, offer_id: int, *, timeout: float | None = None) -> models.CancelResult:
        """Cancel one offer; raises the error (ExchangeError "Offer not found", RequestTimeout, ...)."""
        outcome = self._typed({"op": "cancel", "id": offer_id}, timeout)
        return outcome

    def cancel_many(self, offer_ids: Iterable[int], *, timeout: float | None = None) -> list[models.CancelResult]:
        """Cancel several offers, pipelined; one result per id in the order given, failures as values."""
        ids = list(offer_ids)
        if not ids:
            return []
        batch = self._exchange([{"op": "cancel", "id": i} for i in ids], timeout)
        return [codec.cancel_outcome(batch, request) for request in batch.requests]

    def cancel_all(self, symbol: str | None = None, *, timeout: float | None = None) -> models.Rows:
        """Cancel every active offer (of *symbol*); one CancelResult per offer. Raises request-level errors."""
        return codec.cancel_all_result(*self._call(codec.with_symbol({"op": "cancel_all"}, symbol), timeout))

    def submit(self, symbol: str, amount: Decimal | int | str, rate: Decimal | int | str, period: int, *,
               type: str = "LIMIT", flags: int = 0, timeout: float | None = None) -> models.SubmitResult:
        """Place a funding offer; never re-sent unless it certainly was not sent."""
        return self._typed(codec.submit_request(symbol, amount, rate, period, type, flags), timeout)

    def replace(self, offer_id: int, *, rate: Decimal | int | str | None = None,
                amount: Decimal | int | str | None = None, period: int | None = None, type: str | None = None,
                timeout: float | None = None) -> models.ReplaceResult:
        """Cancel an offer and place its successor; a failure after the cancel carries ``error.cancelled``."""
        return self._typed(codec.replace_request(offer_id, rate, amount, period, type), timeout)

    def watch(self, *, timeout: float | None = None) -> Watch:
        """Subscribe on a connection of its own; iterate the returned Watch for typed events."""
        timeout = self.timeout if timeout is None else timeout
        deadline = time.monotonic() + timeout + codec.ANSWER_GRACE
        with self._lock:
            link = self._open(deadline)
            request = codec.stamp({"op": "watch", "ref": self._next_ref()}, time.time() + timeout, timeout)
        try:
            answer, text = _ask(link, request, deadline)
        except BaseException:
            link.close()
            raise
        if answer.get("ok") is not True:
            link.close()
            raise errors.error_from_answer(answer, text)
        return Watch(link, text)


class Watch:
    """The events of one watch, as an iterator; ends after ``WatchEnded``. Close it (or use ``with``) to stop.

    The daemon closing the connection without ``watch_ended`` raises ConnectionLost: events may be missing.
    """

    def __init__(self, link: _Link, line: str) -> None:
        self._link: _Link | None = link
        self.line = line  # the subscription's ok answer

    def __iter__(self) -> Iterator[events.Event]:
        return self

    def __next__(self) -> events.Event:
        if self._link is None:
            raise StopIteration
        from bfxd.client import events  # loaded with the first event: only watchers pay for it

        try:
            while True:
                obj, text = self._link.receive(None)  # events may be minutes apart: no deadline
                if "event" in obj:
                    event = events.event_from_json(obj, text)
                    if isinstance(event, events.WatchEnded):
                        self.close()
                    return event
                if obj.get("ok") is False:  # e.g. shutting_down, for the watch as a whole
                    raise errors.error_from_answer(obj, text)
        except BaseException:
            self.close()
            raise

    def close(self) -> None:
        if self._link is not None:
            self._link.close()
            self._link = None

    def __enter__(self) -> Watch:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _ask(link: _Link, request: dict[str, Any], deadline: float) -> tuple[dict[str, Any], str]:
    """One request on a fresh connection, and its answer (or the busy/forbidden line sent instead)."""
    batch = codec.Batch([request])
    try:
        link.send(batch.encode(batch.requests), deadline)
    except TimeoutError:
        raise errors.NoAnswer(f"could not send to {link.path} before the deadline") from None
    except OSError:
        pass  # closed on us: its reason (busy, forbidden) may be waiting to be read; else receive says closed
    while not batch.done:
        batch.take(*link.receive(deadline))
    return batch.answers[request["ref"]]
