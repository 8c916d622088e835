"""A scripted fake bfxd: a thread serving a real AF_UNIX socket in a short temp dir, one connection at a time.

For what today's daemon cannot do yet (hello, submit, replace, wallets, credits, loans: CONTRACT.md) and for
faults a real daemon will not produce on demand. Each connection runs *handler(peer)*; ``hello`` requests are
answered by the fake itself (as protocol 1 by default; ``hello=None`` answers unknown_op like today's daemon),
so that handlers script only the requests under test. Every line the fake sends is checked against the protocol
schema, and so is every request it reads: the fake cannot drift from the contract unnoticed.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import tempfile
import threading
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from tests.jsonlines import check, loads

GUARD = 10.0  # seconds: an upper bound on waits that should end at once, never a delay

HELLO = {"protocol": 1, "version": "0.2.0",
         "ops": sorted(["cancel", "cancel_all", "credits", "hello", "loans", "metrics", "offers", "ping", "replace",
                        "status", "submit", "wallets", "watch"]),
         "events": sorted(["credit", "loan", "notification", "offer", "state", "wallet", "watch_ended"])}

OFFER = {"id": 41238934, "symbol": "fUSD", "mts_created": 1575293959000, "mts_updated": 1575294374000,
         "amount": 500, "amount_orig": 500, "type": "LIMIT", "flags": 0, "status": "ACTIVE", "rate": 0.0002,
         "period": 2, "notify": False, "hidden": False, "renew": False}
STATUS = {"state": "ready", "authenticated": True, "user_id": 123, "since": 1764684000.5,
          "last_message_age_s": 0.4, "reconnects": 0, "pending": 0, "offers": 1, "detail": None, "version": "0.1.0"}
WALLET = {"type": "funding", "currency": "USD", "balance": 1500.5, "unsettled_interest": 0.01, "available": 1000}
CREDIT = {"id": 9001, "symbol": "fUSD", "side": 1, "mts_create": 1764600000000, "mts_update": 1764600000000,
          "amount": 250, "flags": 0, "status": "ACTIVE", "rate_type": "FIXED", "rate": 0.00021, "period": 2,
          "mts_opening": 1764600000000, "mts_last_payout": None, "notify": False, "hidden": False, "renew": False,
          "no_close": False, "position_pair": "tBTCUSD"}


def ok(req: dict, **fields: object) -> dict:
    return {"ok": True, "op": req["op"], "ref": req.get("ref"), **fields}


def refused(req: dict, kind: str, message: str = "nope", **extra: object) -> dict:
    error = {"type": kind, "message": message, **extra}
    return {"ok": False, "op": req["op"], "ref": req.get("ref"), "error": error}


def exchange_error(req: dict) -> dict:
    return refused(req, "exchange", "the exchange refused", status="ERROR", text="Offer not found")


def cancelled(req: dict) -> dict:
    return ok(req, id=req["id"], status="SUCCESS", text=f"Submitted for cancellation (ID: {req['id']}).",
              offer={**OFFER, "id": req["id"], "status": "CANCELED"})


class Peer:
    """The daemon's side of one client connection, as seen by a scripted handler."""

    def __init__(self, conn: socket.socket, daemon: FakeDaemon) -> None:
        self.conn, self.daemon, self.reader = conn, daemon, conn.makefile("rb")

    def read(self) -> dict:
        """The next request that is not a hello (hellos are answered here, as the fake is configured)."""
        while True:
            line = self.reader.readline()
            if not line:
                raise EOFError("the client closed the connection")
            assert line.endswith(b"\n"), f"client sent a partial line: {line!r}"
            request = loads(line, "request")
            if request["op"] == "hello" and self.daemon.answer_hello:
                self.daemon.hellos.append(request)
                hello = self.daemon.hello
                self.send(ok(request, **hello) if hello is not None
                          else refused(request, "unknown_op", "unknown op 'hello'; known: cancel, ..."))
                continue
            self.daemon.requests.append(request)
            return request

    def read_or_none(self) -> dict | None:
        """Like read, but None when the client closed the connection."""
        try:
            return self.read()
        except (EOFError, ConnectionError):
            return None

    def send(self, *lines: dict) -> None:
        for line in lines:
            check(line)
        self.conn.sendall(b"".join(json.dumps(line).encode() + b"\n" for line in lines))

    def hang(self) -> None:
        """Answer nothing until the test ends (the fixture releases it)."""
        assert self.daemon.release.wait(GUARD), "hung handler was never released"


Handler = Callable[[Peer], None]


class FakeDaemon:
    """Serves connections one after another, each with *handler*; records requests and handler errors."""

    def __init__(self, handler: Handler, *, hello: dict[str, Any] | None = HELLO, answer_hello: bool = True) -> None:
        self.dir = tempfile.mkdtemp(prefix="bfxd-")
        self.path = os.path.join(self.dir, "bfxd.sock")
        self.handler, self.hello, self.answer_hello = handler, hello, answer_hello
        self.requests: list[dict] = []
        self.hellos: list[dict] = []
        self.errors: list[BaseException] = []
        self.connections = 0
        self.current: socket.socket | None = None  # the connection being served, shut down by stop()
        self.release, self.stopping = threading.Event(), False
        self.listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.listener.bind(self.path)
        self.listener.listen(8)
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    @property
    def ops(self) -> list[str]:
        return [r["op"] for r in self.requests]

    def _serve(self) -> None:
        while True:
            conn, _ = self.listener.accept()
            with conn:
                if self.stopping:
                    return
                self.connections += 1
                self.current = conn
                conn.settimeout(GUARD)
                try:
                    self.handler(Peer(conn, self))
                except Exception as exc:  # reported by the fixture, so the test fails
                    self.errors.append(exc)

    def stop(self) -> None:
        self.stopping = True
        self.release.set()
        if (current := self.current) is not None:  # a handler still reading a client the test left open
            try:
                current.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass  # already closed
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as wake:  # unblocks accept()
            wake.connect(self.path)
        self.thread.join(GUARD)
        self.listener.close()
        shutil.rmtree(self.dir)
        assert not self.thread.is_alive(), "fake daemon did not stop"
        assert not self.errors, f"fake daemon handler failed: {self.errors!r}"


@pytest.fixture
def serve() -> Iterator[Callable[..., FakeDaemon]]:
    daemons: list[FakeDaemon] = []

    def start(handler: Handler, **options: Any) -> FakeDaemon:
        daemons.append(FakeDaemon(handler, **options))
        return daemons[-1]

    yield start
    for daemon in daemons:
        daemon.stop()


def answering(respond: Callable[[dict], dict]) -> Handler:
    """A handler that answers each request of the connection with respond(request), until the client leaves."""

    def handler(peer: Peer) -> None:
        while (request := peer.read_or_none()) is not None:
            peer.send(respond(request))

    return handler
