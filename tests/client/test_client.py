"""bfxd.client.Client against a scripted fake daemon on a real Unix socket: requests sent, results parsed."""

from __future__ import annotations

import subprocess
import sys
import time
from decimal import Decimal

import pytest
from tests.fake_daemon import (
    CREDIT,
    GUARD,
    HELLO,
    OFFER,
    STATUS,
    WALLET,
    Peer,
    answering,
    cancelled,
    exchange_error,
    ok,
    refused,
)

from bfxd import client
from bfxd.client import Client, errors


def bare(request: dict) -> dict:
    return {k: v for k, v in request.items() if k not in ("ref", "deadline", "timeout")}


class TestReads:
    def test_status_is_typed(self, serve) -> None:
        """status() returns a frozen Status built from the answer; the answer line is kept as it came."""
        daemon = serve(answering(lambda req: ok(req, status=STATUS)))
        with Client(daemon.path) as bfxd:
            status = bfxd.status()
        assert status.state == "ready" and status.ready and status.user_id == 123 and status.since == 1764684000.5
        assert '"status"' in status.line
        with pytest.raises(AttributeError):
            status.state = "backoff"  # type: ignore[misc]

    def test_offers_parse_amounts_and_rates_exactly(self, serve) -> None:
        """Rates and amounts are Decimals of the JSON text (0.0002 exactly, not the nearest double)."""
        offers = [OFFER, {**OFFER, "id": 7, "amount": 12345.678901234567, "rate": 1e-05}]
        daemon = serve(answering(lambda req: ok(req, offers=offers)))
        with Client(daemon.path) as bfxd:
            first, second = bfxd.offers("fUSD")
        assert first.rate == Decimal("0.0002") and isinstance(first.amount, Decimal) and first.amount == 500
        assert second.amount == Decimal("12345.678901234567") and second.rate == Decimal("0.00001")
        assert [bare(r) for r in daemon.requests] == [{"op": "offers", "symbol": "fUSD"}]

    def test_wallets_credits_loans(self, serve) -> None:
        """The account reads: wallets, credits (with the position pair), loans (without), all typed."""
        loan = {k: v for k, v in CREDIT.items() if k != "position_pair"}
        answers = {"wallets": {"wallets": [WALLET, {**WALLET, "currency": "UST", "available": None}]},
                   "credits": {"credits": [CREDIT]}, "loans": {"loans": [loan]}}
        daemon = serve(answering(lambda req: ok(req, **answers[req["op"]])))
        with Client(daemon.path) as bfxd:
            usd, ust = bfxd.wallets()
            [credit] = bfxd.credits()
            [borrowed] = bfxd.loans("fUSD")
        assert (usd.balance, usd.available, ust.available) == (Decimal("1500.5"), Decimal(1000), None)
        assert credit.rate == Decimal("0.00021") and credit.position_pair == "tBTCUSD"
        assert credit.expires is not None and credit.opened is not None
        assert (credit.expires - credit.opened).days == 2
        assert borrowed.position_pair is None and borrowed.amount == 250
        assert [bare(r) for r in daemon.requests] == [{"op": "wallets"}, {"op": "credits"},
                                                      {"op": "loans", "symbol": "fUSD"}]

    def test_one_connection_and_one_hello_for_many_requests(self, serve) -> None:
        """The connection is opened once, checked with one hello, then reused."""
        daemon = serve(answering(lambda req: ok(req, status=STATUS)))
        with Client(daemon.path) as bfxd:
            for _ in range(3):
                bfxd.status()
        assert (daemon.connections, len(daemon.hellos), len(daemon.requests)) == (1, 1, 3)

    def test_a_read_reconnects_when_the_daemon_drops_the_connection(self, serve) -> None:
        """A read whose connection closes before the answer is sent again on a new connection."""
        def handler(peer: Peer) -> None:
            request = peer.read()
            if peer.daemon.connections == 1:
                return  # drop it unanswered, as a daemon restarting would
            peer.send(ok(request, status=STATUS))
            peer.read_or_none()

        daemon = serve(handler)
        with Client(daemon.path) as bfxd:
            assert bfxd.status().state == "ready"
        assert (daemon.connections, daemon.ops) == (2, ["status", "status"])

    def test_request_deadline_is_sent(self, serve) -> None:
        """Each request carries an absolute deadline (now + timeout) and the same span as timeout."""
        daemon = serve(answering(lambda req: ok(req, status=STATUS)))
        before = time.time()
        with Client(daemon.path, timeout=3) as bfxd:
            bfxd.status(timeout=1.5)
        [request] = daemon.requests
        assert request["timeout"] == 1.5 and before + 1.5 - 0.01 <= request["deadline"] <= time.time() + 1.5


class TestWrites:
    def test_cancel_returns_the_result_and_raises_a_refusal(self, serve) -> None:
        """cancel() gives the exchange's text and the offer; a refusal raises ExchangeError with its text."""
        daemon = serve(answering(lambda req: cancelled(req) if req["id"] == 1 else exchange_error(req)))
        with Client(daemon.path) as bfxd:
            done = bfxd.cancel(1)
            with pytest.raises(errors.ExchangeError) as refusal:
                bfxd.cancel(2)
        assert done.ok and done.id == 1 and done.offer is not None and done.offer.status == "CANCELED"
        error = refusal.value
        assert (error.type, error.status, error.text) == ("exchange", "ERROR", "Offer not found")
        assert isinstance(error, client.BfxdError) and "Offer not found" in str(error)

    def test_cancel_many_is_pipelined_and_keeps_the_callers_order(self, serve) -> None:
        """All cancels go out before any answer is read; results come back in the order of the ids."""
        def handler(peer: Peer) -> None:
            requests = [peer.read() for _ in range(3)]  # a client waiting for each answer would stall here
            for req in reversed(requests):
                peer.send(exchange_error(req) | {"id": req["id"]} if req["id"] == 2 else cancelled(req))
            peer.read_or_none()

        daemon = serve(handler)
        with Client(daemon.path) as bfxd:
            results = bfxd.cancel_many([1, 2, 3])
        assert [(r.id, r.ok) for r in results] == [(1, True), (2, False), (3, True)]
        assert isinstance(results[1].error, errors.ExchangeError)

    def test_cancel_all_results_and_request_level_error(self, serve) -> None:
        """cancel_all gives one result per offer; a request-level not_ready raises NotReady."""
        answers = iter([ok({"op": "cancel_all"}, results=[cancelled({"op": "cancel", "id": 5}) | {"ok": True}]),
                        refused({"op": "cancel_all"}, "not_ready", "no session; nothing was cancelled")])

        def respond(req: dict) -> dict:
            return {**next(answers), "ref": req["ref"]}

        daemon = serve(answering(respond))
        with Client(daemon.path) as bfxd:
            [result] = bfxd.cancel_all("fUSD")
            with pytest.raises(errors.NotReady) as not_ready:
                bfxd.cancel_all()
        assert result.ok and result.id == 5 and not_ready.value.safe_to_retry

    def test_submit_sends_exact_decimal_strings(self, serve) -> None:
        """submit sends amount and rate as exact decimal strings and returns the placed offer."""
        placed = {**OFFER, "id": 77, "amount": 100.25, "rate": 0.00031, "period": 5}
        daemon = serve(answering(lambda req: ok(req, offer=placed, status="SUCCESS", text="Submitting funding offer")))
        with Client(daemon.path) as bfxd:
            done = bfxd.submit("fUSD", Decimal("100.25"), "0.00031", 5, flags=64)
        assert [bare(r) for r in daemon.requests] == [{"op": "submit", "symbol": "fUSD", "amount": "100.25",
                                                       "rate": "0.00031", "period": 5, "type": "LIMIT", "flags": 64}]
        assert done.offer.id == 77 and done.offer.rate == Decimal("0.00031") and done.status == "SUCCESS"

    def test_submit_is_not_resent_after_the_connection_drops(self, serve) -> None:
        """A submit whose connection closes after it was sent raises ConnectionLost; it is sent only once."""
        daemon = serve(lambda peer: peer.read())  # read it, close without answering
        with Client(daemon.path) as bfxd, pytest.raises(errors.ConnectionLost) as lost:
            bfxd.submit("fUSD", 100, "0.0002", 2)
        assert daemon.ops == ["submit"] and not lost.value.safe_to_retry

    def test_not_confirmed_and_not_sent_are_safe_to_retry(self, serve) -> None:
        """The contract's two new errors raise their own classes, both marked safe to retry."""
        kinds = iter(["not_confirmed", "not_sent"])
        daemon = serve(answering(lambda req: refused(req, next(kinds), "nothing happened")))
        with Client(daemon.path) as bfxd:
            with pytest.raises(errors.NotConfirmed) as first:
                bfxd.submit("fUSD", 100, "0.0002", 2)
            with pytest.raises(errors.NotSent) as second:
                bfxd.submit("fUSD", 100, "0.0002", 2)
        assert first.value.safe_to_retry and second.value.safe_to_retry
        assert daemon.ops == ["submit", "submit"]  # each call sent once: the client does not retry by itself

    def test_replace_success_and_failure_after_the_cancel(self, serve) -> None:
        """replace gives the old and the new offer; failing after the cancel, the error carries the old one."""
        old, new = {**OFFER, "status": "CANCELED"}, {**OFFER, "id": 99, "rate": 0.00025}

        def respond(req: dict) -> dict:
            if req.get("rate") == "0.00025":
                return ok(req, cancelled=old, offer=new, status="SUCCESS", text="done")
            return {**refused(req, "exchange", "submit refused", status="ERROR", text="Invalid offer"),
                    "cancelled": old}

        daemon = serve(answering(respond))
        with Client(daemon.path) as bfxd:
            done = bfxd.replace(OFFER["id"], rate="0.00025")
            with pytest.raises(errors.ExchangeError) as failed:
                bfxd.replace(OFFER["id"], amount=1, period=3)
        assert (done.cancelled.id, done.offer.id, done.offer.rate) == (OFFER["id"], 99, Decimal("0.00025"))
        assert failed.value.cancelled is not None and failed.value.cancelled.id == OFFER["id"]
        assert bare(daemon.requests[1]) == {"op": "replace", "id": OFFER["id"], "amount": "1", "period": 3}

    @pytest.mark.parametrize("bad", [float("nan"), "1e", True, "inf"])
    def test_amounts_must_be_finite_decimals(self, bad) -> None:
        """An amount that is not a finite decimal is refused before anything is sent."""
        with pytest.raises((ValueError, TypeError)):
            Client("/nonexistent").submit("fUSD", bad, "0.0002", 2)


class TestHello:
    def test_hello_is_checked_on_connect(self, serve) -> None:
        """The first request is preceded by hello; its answer is kept as client.server."""
        daemon = serve(answering(lambda req: ok(req, status=STATUS)))
        with Client(daemon.path) as bfxd:
            bfxd.status()
            assert bfxd.server is not None and bfxd.server.protocol == 1 and "submit" in bfxd.server.ops
            assert bfxd.hello().version == HELLO["version"]

    def test_an_older_daemon_is_protocol_0(self, serve) -> None:
        """unknown_op to hello (today's daemon) is protocol 0, with the ops interface.md lists."""
        daemon = serve(answering(lambda req: ok(req, status=STATUS)), hello=None)
        with Client(daemon.path) as bfxd:
            assert bfxd.status().ready
            hello = bfxd.hello()
        assert hello.protocol == 0 and hello.version is None and "cancel" in hello.ops and "submit" not in hello.ops

    def test_an_unknown_protocol_is_refused_before_any_request(self, serve) -> None:
        """A protocol this client does not know raises ProtocolMismatch naming both; the request is not sent."""
        daemon = serve(answering(lambda req: ok(req, status=STATUS)), hello={**HELLO, "protocol": 7})
        with Client(daemon.path) as bfxd, pytest.raises(errors.ProtocolMismatch) as mismatch:
            bfxd.cancel(5)
        assert "protocol 7" in str(mismatch.value) and "knows 0, 1" in str(mismatch.value)
        assert daemon.requests == []


class TestFailures:
    def test_no_socket_is_unreachable(self, tmp_path) -> None:
        """No socket: DaemonUnreachable at once, naming the path, safe to retry."""
        path = str(tmp_path / "none.sock")
        with pytest.raises(errors.DaemonUnreachable) as unreachable:
            Client(path).status()
        assert path in str(unreachable.value) and unreachable.value.safe_to_retry

    def test_busy_at_connect(self, serve) -> None:
        """The daemon's busy line (no ref, sent before reading) raises Busy."""
        daemon = serve(lambda peer: peer.send({"ok": False, "op": None, "error": {"type": "busy", "message": "full"}}))
        with Client(daemon.path) as bfxd, pytest.raises(errors.Busy):
            bfxd.offers()

    def test_no_answer_before_the_deadline(self, serve) -> None:
        """A daemon that never answers: NoAnswer once the deadline and the grace have passed."""
        daemon = serve(lambda peer: (peer.read(), peer.hang()))
        with Client(daemon.path, timeout=0.1) as bfxd, pytest.raises(errors.NoAnswer):
            bfxd.status()

    @pytest.mark.parametrize("garbage", [b"not json", b"[1]", b'{"ok": true, "op": "status", "ref": %d, "status": 5}'])
    def test_unreadable_answers(self, serve, garbage) -> None:
        """A line that is not an object, or a status that is not an object, raises BadAnswer."""
        def handler(peer: Peer) -> None:
            request = peer.read()
            peer.conn.sendall((garbage.replace(b"%d", str(request["ref"]).encode())) + b"\n")
            peer.read_or_none()

        daemon = serve(handler)
        with Client(daemon.path) as bfxd, pytest.raises(errors.BadAnswer):
            bfxd.status()

    def test_an_unknown_error_type_is_a_plain_bfxd_error(self, serve) -> None:
        """An error type from a newer daemon raises BfxdError with that type."""
        daemon = serve(answering(lambda req: refused(req, "brand_new", "something new")))
        with Client(daemon.path) as bfxd, pytest.raises(client.BfxdError) as error:
            bfxd.status()
        assert type(error.value) is client.BfxdError and error.value.type == "brand_new"


class TestWatch:
    def test_typed_events_until_watch_ended(self, serve) -> None:
        """watch() yields typed events and stops after WatchEnded."""
        events = [{"event": "offer", "action": "new", "offer": OFFER},
                  {"event": "wallet", "action": "update", "wallet": WALLET},
                  {"event": "credit", "action": "new", "credit": CREDIT},
                  {"event": "state", "state": "backoff", "detail": "retry in 1 s", "since": 1764684000.5},
                  {"event": "watch_ended", "reason": "lagging"}]
        daemon = serve(lambda peer: (peer.send(ok(peer.read()), *events), peer.hang()))
        with Client(daemon.path).watch() as watch:
            received = list(watch)
        assert [type(e).__name__ for e in received] == ["OfferEvent", "WalletEvent", "CreditEvent", "StateEvent",
                                                        "WatchEnded"]
        assert received[0].offer.rate == Decimal("0.0002") and received[1].wallet.available == 1000
        assert received[-1] == client.WatchEnded("lagging")

    def test_the_daemon_closing_without_watch_ended_raises(self, serve) -> None:
        """A watch whose connection closes without watch_ended raises ConnectionLost: events may be missing."""
        daemon = serve(lambda peer: peer.send(ok(peer.read()), {"event": "offer", "action": "new", "offer": OFFER}))
        watch = Client(daemon.path).watch()
        assert isinstance(next(watch), client.OfferEvent)
        with pytest.raises(errors.ConnectionLost):
            next(watch)

    def test_a_refused_watch_raises_at_once(self, serve) -> None:
        """watch() raises the daemon's error (here shutting_down) before returning."""
        daemon = serve(answering(lambda req: refused(req, "shutting_down", "bye")))
        with pytest.raises(errors.ShuttingDown):
            Client(daemon.path).watch()


def test_importing_the_client_imports_no_trio_and_no_asyncio() -> None:
    """import bfxd.client stays cheap: no trio, no asyncio, no structlog, no typing (AsyncClient loads asyncio)."""
    code = ("import sys, bfxd.client; heavy = {'trio', 'asyncio', 'structlog', 'attrs', 'typing'}; "
            "print(sorted(heavy & set(sys.modules))); bfxd.client.AsyncClient; print('asyncio' in sys.modules)")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=GUARD, check=True)
    assert result.stdout.split("\n")[:2] == ["[]", "True"]


@pytest.mark.parametrize("stray", [{"ok": True, "op": "status", "ref": [1]}, {"ok": True, "op": "status", "ref": True},
                                   {"ok": True, "op": "status", "ref": "other"}])
def test_lines_that_are_not_ours_are_skipped(serve, stray) -> None:
    """A line whose ref is not one the client sent (a list, a boolean, another string) is skipped, not taken."""
    import json

    def handler(peer: Peer) -> None:
        request = peer.read()
        peer.conn.sendall(json.dumps(stray).encode() + b"\n")
        peer.send(ok(request, status=STATUS))
        peer.read_or_none()

    daemon = serve(handler)
    with Client(daemon.path) as bfxd:
        assert bfxd.status().ready


def test_a_write_is_resent_only_when_it_was_not_sent(serve) -> None:
    """The daemon closed the idle connection (a restart): the next submit fails to write on it, so it was not
    sent; the client sends it on a new connection, and the daemon sees it exactly once."""
    import socket
    import threading

    closed = threading.Event()

    def handler(peer: Peer) -> None:
        request = peer.read()
        if request["op"] == "status":
            peer.send(ok(request, status=STATUS))
            peer.conn.shutdown(socket.SHUT_RDWR)  # the client's connection is now dead, and it does not know yet
            closed.set()
            return
        peer.send(ok(request, offer=OFFER, status="SUCCESS", text="ok"))
        peer.read_or_none()

    daemon = serve(handler)
    with Client(daemon.path) as bfxd:
        bfxd.status()
        assert closed.wait(GUARD)
        assert bfxd.submit("fUSD", 100, "0.0002", 2).offer.id == OFFER["id"]
    assert daemon.ops == ["status", "submit"] and daemon.connections == 2


def test_one_client_shared_by_threads(serve) -> None:
    """Eight threads cancelling through one Client each get the answer to their own request."""
    from concurrent.futures import ThreadPoolExecutor

    daemon = serve(answering(cancelled))
    with Client(daemon.path) as bfxd, ThreadPoolExecutor(8) as pool:
        ids = list(pool.map(lambda i: bfxd.cancel(i).id, range(1, 41)))
    assert ids == list(range(1, 41)) and daemon.connections == 1


def test_the_public_names_resolve_and_results_are_frozen_dataclasses() -> None:
    """Every name in bfxd.client.__all__ resolves (some lazily); every result and event class is frozen."""
    import dataclasses

    values = [getattr(client, name) for name in client.__all__]
    classes = [v for v in values if isinstance(v, type) and dataclasses.is_dataclass(v)]
    assert {c.__name__ for c in classes} >= {"Offer", "Credit", "Wallet", "Hello", "Status", "CancelResult",
                                             "SubmitResult", "ReplaceResult", "OfferEvent", "WatchEnded"}
    assert all(c.__dataclass_params__.frozen for c in classes)
