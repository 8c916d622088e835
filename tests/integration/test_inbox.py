"""The command inbox over a real Unix socket, with the daemon in-process against the simulator.

Every op, every error type, pipelining, isolation between clients, many clients, the socket file itself.
Real sockets in a short temporary directory, the real clock, generous hang guards; nothing waits by sleeping.
"""

from __future__ import annotations

import json
import os
import socket
import stat
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
import trio
from tests.integration.helpers import GUARD_S, LineClient

from bfxd.errors import ConfigError
from bfxd.protocol import CancelOfferInput
from bfxd.simulator import Simulator

if TYPE_CHECKING:  # the fixtures' types (conftest is pytest's to import)
    from tests.integration.conftest import RunningDaemon, StartDaemon
    from tests.logwatch import LogWatch

MAX_LINE = 64 * 1024
MAX_SAFE = 2**53 - 1


def foc_frames(sim: Simulator, offer_id: int | None = None) -> list[object]:
    """The cancel frames the simulator received (for one offer, or all)."""
    return [r for r in sim.received if isinstance(r.event, CancelOfferInput)
            and (offer_id is None or r.event.offer_id == offer_id)]


def is_foc(offer_id: int):  # type: ignore[no-untyped-def]
    return lambda r: isinstance(r.event, CancelOfferInput) and r.event.offer_id == offer_id


def offer_ids(sim: Simulator) -> list[int]:
    return sorted(sim.offers)


class TestOps:
    @pytest.mark.parametrize("ref", ["abc", 7, -3, MAX_SAFE, "", None])
    async def test_ping_echoes_the_ref(self, daemon: RunningDaemon, ref: object) -> None:
        """A ping gets one ok answer carrying the client's ref (string or integer), or none when it sent none."""
        request = {"op": "ping"} if ref is None else {"op": "ping", "ref": ref}
        async with await LineClient.connect(daemon.socket_path) as client:
            answer = await client.request(request)
        expected = {"ok": True, "op": "ping"} if ref is None else {"ok": True, "op": "ping", "ref": ref}
        assert answer == expected

    async def test_crlf_and_surrounding_whitespace_are_accepted(self, daemon: RunningDaemon) -> None:
        """A line ending in CRLF (a hand-typed request) parses like any other JSON document."""
        async with await LineClient.connect(daemon.socket_path) as client:
            await client.send(b' {"op": "ping", "ref": 1}\r\n')
            assert await client.receive() == {"ok": True, "op": "ping", "ref": 1}

    async def test_status_reports_the_ready_session(self, daemon: RunningDaemon, sim: Simulator) -> None:
        """status shows the authenticated session, its user id, the offer count and the daemon version."""
        async with await LineClient.connect(daemon.socket_path) as client:
            answer = await client.request({"op": "status", "ref": "s"})
        assert (answer["ok"], answer["op"], answer["ref"]) == (True, "status", "s")
        status = answer["status"]
        assert {"state", "authenticated", "user_id", "since", "last_message_age_s", "reconnects", "pending",
                "offers", "version"} <= set(status)
        assert (status["state"], status["authenticated"]) == ("ready", True)
        assert status["user_id"] == sim.config.user_id
        assert (status["offers"], status["pending"], status["reconnects"]) == (len(sim.offers), 0, 0)
        assert isinstance(status["version"], str) and status["version"]

    async def test_offers_lists_the_live_book(self, daemon: RunningDaemon, sim: Simulator) -> None:
        """offers returns every active offer, each object as the exchange sent it."""
        async with await LineClient.connect(daemon.socket_path) as client:
            answer = await client.request({"op": "offers", "ref": 1})
        assert answer["ok"] is True
        assert sorted(answer["offers"], key=lambda o: o["id"]) == [sim.offers[i].to_json() for i in offer_ids(sim)]

    async def test_offers_filtered_by_symbol(self, daemon: RunningDaemon, sim: Simulator) -> None:
        """offers with a symbol returns only that symbol's offers; an unused symbol gives an empty list."""
        symbol = sim.offers[offer_ids(sim)[0]].symbol
        wanted = sorted(i for i, o in sim.offers.items() if o.symbol == symbol)
        assert 0 < len(wanted) < len(sim.offers)
        async with await LineClient.connect(daemon.socket_path) as client:
            answer = await client.request({"op": "offers", "symbol": symbol})
            none = await client.request({"op": "offers", "symbol": "fXYZ"})
        assert sorted(o["id"] for o in answer["offers"]) == wanted
        assert none == {"ok": True, "op": "offers", "offers": []}

    async def test_cancel_answers_success_with_the_offer(self, daemon: RunningDaemon, sim: Simulator) -> None:
        """A cancel sends one foc and answers SUCCESS with the exchange's text and the offer object."""
        offer_id = offer_ids(sim)[0]
        async with await LineClient.connect(daemon.socket_path) as client:
            answer = await client.request({"op": "cancel", "id": offer_id, "ref": "c1"})
        assert (answer["ok"], answer["op"], answer["ref"], answer["status"]) == (True, "cancel", "c1", "SUCCESS")
        assert str(offer_id) in answer["text"]
        assert answer["offer"]["id"] == offer_id
        assert offer_id not in sim.offers
        assert len(foc_frames(sim, offer_id)) == 1

    async def test_cancel_all_cancels_every_offer(self, daemon: RunningDaemon, sim: Simulator) -> None:
        """cancel_all answers one SUCCESS result per active offer, and the book is then empty."""
        before = offer_ids(sim)
        async with await LineClient.connect(daemon.socket_path) as client:
            answer = await client.request({"op": "cancel_all", "ref": 2})
        assert (answer["ok"], answer["ref"]) == (True, 2)
        assert sorted(r["id"] for r in answer["results"]) == before
        assert all(r["ok"] and r["status"] == "SUCCESS" for r in answer["results"])
        assert sim.offers == {}
        assert len(foc_frames(sim)) == len(before)

    async def test_cancel_all_with_symbol_spares_the_others(self, daemon: RunningDaemon, sim: Simulator) -> None:
        """cancel_all with a symbol cancels that symbol's offers only."""
        symbol = sim.offers[offer_ids(sim)[0]].symbol
        wanted = sorted(i for i, o in sim.offers.items() if o.symbol == symbol)
        others = sorted(set(sim.offers) - set(wanted))
        async with await LineClient.connect(daemon.socket_path) as client:
            answer = await client.request({"op": "cancel_all", "symbol": symbol})
        assert answer["ok"] is True
        assert sorted(r["id"] for r in answer["results"]) == wanted
        assert offer_ids(sim) == others

    async def test_watch_streams_offer_and_notification_events(self, daemon: RunningDaemon, sim: Simulator) -> None:
        """A watcher gets ok, then the notification and offer events caused by another client's cancel and a new
        offer."""
        offer_id = offer_ids(sim)[0]
        async with await LineClient.connect(daemon.socket_path) as watcher, \
                await LineClient.connect(daemon.socket_path) as other:
            assert await watcher.request({"op": "watch", "ref": "w"}) == {"ok": True, "op": "watch", "ref": "w"}
            assert (await other.request({"op": "cancel", "id": offer_id}))["ok"] is True
            new = sim.add_offer(symbol="fUSD", amount=250.0)
            events: list[dict[str, Any]] = []
            while len(events) < 3:  # wallet events (a calc's answer, the balance the cancel freed) come too
                event = await watcher.receive()
                if event["event"] in ("notification", "offer"):
                    events.append(event)
        kinds = sorted((e["event"], e.get("action") or e.get("type")) for e in events)
        assert kinds == [("notification", "foc-req"), ("offer", "cancel"), ("offer", "new")]
        by_kind = {(e["event"], e.get("action") or e.get("type")): e for e in events}
        note = by_kind["notification", "foc-req"]
        assert (note["status"], note["offer_id"]) == ("SUCCESS", offer_id)
        assert by_kind["offer", "cancel"]["offer"]["id"] == offer_id
        assert by_kind["offer", "new"]["offer"] == new.to_json()

    async def test_watch_reports_state_changes(self, daemon: RunningDaemon, sim: Simulator) -> None:
        """A watcher sees the exchange link drop and come back as state events, ending with ready."""
        async with await LineClient.connect(daemon.socket_path) as watcher:
            await watcher.request({"op": "watch"})
            await sim.drop(abrupt=True)
            states: list[str] = []
            while not states or states[-1] != "ready":
                event = await watcher.receive()
                if event["event"] == "state":
                    states.append(event["state"])
        assert states[0] != "ready" and len(states) >= 2

    async def test_watch_ends_with_a_reason_at_shutdown(self, daemon: RunningDaemon, sim: Simulator) -> None:
        """At shutdown a watcher gets the stopping state, then a last watch_ended line saying why, then the end of
        the connection."""
        async with await LineClient.connect(daemon.socket_path) as watcher:
            await watcher.request({"op": "watch", "ref": "w"})
            daemon.stop.set()
            lines = await watcher.receive_until_closed()
        assert [e["state"] for e in lines if e.get("event") == "state"] == ["stopping"]
        assert lines[-1] == {"event": "watch_ended", "reason": "daemon stopping"}


# Lines that are not valid requests: (line, op and ref the answer should echo).
BAD_LINES = [
    pytest.param(b"\xff\xfe{}", None, None, id="not-utf8"),
    pytest.param(b'{"op":"ping","ref":"\xc3"}', None, None, id="truncated-utf8"),
    pytest.param(b'{"op":"ping"', None, None, id="not-json"),
    pytest.param(b"", None, None, id="empty-line"),
    pytest.param(b'{"op":"ping","ref":NaN}', None, None, id="nan-constant"),
    pytest.param(b"[" * 20000 + b"]" * 20000, None, None, id="deeply-nested"),
    pytest.param(b'[{"op":"ping"}]', None, None, id="array"),
    pytest.param(b'"ping"', None, None, id="string"),
    pytest.param(b"42", None, None, id="number"),
    pytest.param(b"null", None, None, id="null"),
    pytest.param(b'{"ref":"r"}', None, "r", id="missing-op"),
    pytest.param(b'{"op":7,"ref":"r"}', None, "r", id="op-not-string"),
    pytest.param(b'{"op":null,"ref":"r"}', None, "r", id="op-null"),
    pytest.param(b'{"op":"ping","ref":1.5}', "ping", None, id="ref-float"),
    pytest.param(b'{"op":"ping","ref":true}', "ping", None, id="ref-bool"),
    pytest.param(b'{"op":"ping","ref":{"a":1}}', "ping", None, id="ref-object"),
    pytest.param(b'{"op":"ping","ref":9007199254740992}', "ping", None, id="ref-over-2**53"),
    pytest.param(b'{"op":"ping","ref":"' + b"x" * 257 + b'"}', "ping", None, id="ref-too-long"),
    pytest.param(b'{"op":"cancel","ref":"r"}', "cancel", "r", id="cancel-missing-id"),
    pytest.param(b'{"op":"cancel","ref":"r","id":null}', "cancel", "r", id="cancel-id-null"),
    pytest.param(b'{"op":"cancel","ref":"r","id":"41000001"}', "cancel", "r", id="cancel-id-string"),
    pytest.param(b'{"op":"cancel","ref":"r","id":0}', "cancel", "r", id="cancel-id-zero"),
    pytest.param(b'{"op":"cancel","ref":"r","id":-5}', "cancel", "r", id="cancel-id-negative"),
    pytest.param(b'{"op":"cancel","ref":"r","id":1.5}', "cancel", "r", id="cancel-id-fraction"),
    pytest.param(b'{"op":"cancel","ref":"r","id":5.0}', "cancel", "r", id="cancel-id-integral-float"),
    pytest.param(b'{"op":"cancel","ref":"r","id":1e3}', "cancel", "r", id="cancel-id-exponent"),
    pytest.param(b'{"op":"cancel","ref":"r","id":true}', "cancel", "r", id="cancel-id-bool"),
    pytest.param(b'{"op":"cancel","ref":"r","id":[1]}', "cancel", "r", id="cancel-id-list"),
    pytest.param(b'{"op":"cancel","ref":"r","id":9007199254740992}', "cancel", "r", id="cancel-id-over-2**53"),
    pytest.param(b'{"op":"cancel","ref":"r","id":1' + b"0" * 400 + b"}", "cancel", "r", id="cancel-id-huge"),
    pytest.param(b'{"op":"cancel","ref":"r","id":1e400}', "cancel", "r", id="cancel-id-float-overflow"),
    pytest.param(b'{"op":"cancel","ref":"r","id":1' + b"0" * 5000 + b"}", None, None, id="cancel-id-5000-digits"),
    pytest.param(b'{"op":"cancel","ref":"r","id":41000001,"timeout":0}', "cancel", "r", id="timeout-zero"),
    pytest.param(b'{"op":"cancel","ref":"r","id":41000001,"timeout":-1}', "cancel", "r", id="timeout-negative"),
    pytest.param(b'{"op":"cancel","ref":"r","id":41000001,"timeout":"5"}', "cancel", "r", id="timeout-string"),
    pytest.param(b'{"op":"cancel","ref":"r","id":41000001,"timeout":1e400}', "cancel", "r", id="timeout-inf"),
    pytest.param(b'{"op":"cancel","ref":"r","id":41000001,"timeout":3601}', "cancel", "r", id="timeout-too-long"),
    pytest.param(b'{"op":"cancel","ref":"r","id":41000001,"timeout":1' + b"0" * 400 + b"}", "cancel", "r",
                 id="timeout-huge-int"),
    pytest.param(b'{"op":"offers","ref":"r","symbol":"USD"}', "offers", "r", id="symbol-not-funding"),
    pytest.param(b'{"op":"offers","ref":"r","symbol":5}', "offers", "r", id="symbol-not-string"),
    pytest.param(b'{"op":"cancel_all","ref":"r","symbol":"fUSD; x"}', "cancel_all", "r", id="cancel-all-symbol"),
]


class TestBadRequests:
    @pytest.mark.parametrize(("line", "op", "ref"), BAD_LINES)
    async def test_bad_line_is_answered_and_the_connection_stays_usable(
        self, daemon: RunningDaemon, sim: Simulator, line: bytes, op: str | None, ref: object
    ) -> None:
        """A malformed line gets one bad_request answer echoing what could be read, and the next line works."""
        async with await LineClient.connect(daemon.socket_path) as client:
            await client.send(line + b"\n")
            answer = await client.receive()
            after = await client.request({"op": "ping", "ref": "after"})
        assert (answer["ok"], answer["op"], answer.get("ref")) == (False, op, ref)
        assert ("ref" in answer) == (ref is not None)
        assert answer["error"]["type"] == "bad_request"
        assert isinstance(answer["error"]["message"], str) and answer["error"]["message"]
        assert after == {"ok": True, "op": "ping", "ref": "after"}
        assert foc_frames(sim) == []

    async def test_unknown_op_names_the_known_ones(self, daemon: RunningDaemon) -> None:
        """An op the daemon does not know is answered unknown_op with the op and ref echoed."""
        async with await LineClient.connect(daemon.socket_path) as client:
            answer = await client.request({"op": "launch", "ref": 9})
            after = await client.request({"op": "ping"})
        assert (answer["ok"], answer["op"], answer["ref"], answer["error"]["type"]) == (False, "launch", 9,
                                                                                      "unknown_op")
        assert "cancel_all" in answer["error"]["message"]
        assert after["ok"] is True

    async def test_unknown_fields_are_ignored(self, daemon: RunningDaemon) -> None:
        """Fields an op does not use do not make the request bad (clients may be newer than the daemon)."""
        async with await LineClient.connect(daemon.socket_path) as client:
            answer = await client.request({"op": "ping", "ref": 1, "id": "x", "future": {"a": [1]}})
        assert answer == {"ok": True, "op": "ping", "ref": 1}

    @pytest.mark.parametrize("size", [MAX_LINE + 2, 4 * 1024 * 1024], ids=["just-over", "4MiB"])
    async def test_line_over_64k_is_answered_then_the_connection_closes(
        self, daemon: RunningDaemon, log_watch: LogWatch, size: int
    ) -> None:
        """A line over 64 KiB gets a bad_request answer that the client can read, then the connection is closed;
        other clients are not affected."""
        line = b'{"op":"ping","ref":"' + b"x" * size + b'"}\n'
        async with await LineClient.connect(daemon.socket_path) as client, \
                await LineClient.connect(daemon.socket_path) as bystander:

            async def send_everything() -> None:
                try:
                    await client.send(line)
                except trio.BrokenResourceError:
                    pass  # the daemon closed the connection before reading all of it: expected

            async with trio.open_nursery() as nursery:
                nursery.start_soon(send_everything)
                lines = await client.receive_until_closed()
            assert await bystander.request({"op": "ping", "ref": "b"}) == {"ok": True, "op": "ping", "ref": "b"}
        assert len(lines) == 1
        assert (lines[0]["ok"], lines[0]["error"]["type"]) == (False, "bad_request")
        assert "65536" in lines[0]["error"]["message"]
        assert log_watch.find("client.error") == []

    async def test_half_closed_client_still_gets_its_answers(self, daemon: RunningDaemon) -> None:
        """A client that sends its requests and then shuts down its sending side (echo … | socat) gets every
        answer, then the daemon closes the connection."""
        async with await LineClient.connect(daemon.socket_path) as client:
            await client.send(b'{"op":"ping","ref":1}\n{"op":"status","ref":2}\n{"op":"offers","ref":3}\n')
            await client.stream.send_eof()
            lines = await client.receive_until_closed()
        assert sorted(a["ref"] for a in lines) == [1, 2, 3]
        assert all(a["ok"] for a in lines)


class TestErrorTypes:
    async def test_exchange_error_carries_status_and_text(self, daemon: RunningDaemon, sim: Simulator) -> None:
        """A cancel of an unknown id is answered exchange, with the exchange's ERROR status and text."""
        async with await LineClient.connect(daemon.socket_path) as client:
            answer = await client.request({"op": "cancel", "id": 123456789, "ref": "u"})
        assert (answer["ok"], answer["op"], answer["ref"], answer["id"]) == (False, "cancel", "u", 123456789)
        error = answer["error"]
        assert (error["type"], error["status"], error["text"]) == ("exchange", "ERROR", "Offer not found")
        assert "Offer not found" in error["message"]
        assert len(foc_frames(sim, 123456789)) == 1

    async def test_timeout_when_the_exchange_loses_the_frame(
        self, daemon: RunningDaemon, sim: Simulator, log_watch: LogWatch
    ) -> None:
        """A cancel whose frame the exchange silently drops is answered timeout (outcome unknown) at its
        per-request deadline."""
        offer_id = offer_ids(sim)[0]
        sim.lose_inputs(1)
        async with await LineClient.connect(daemon.socket_path) as client:
            started = trio.current_time()
            answer = await client.request({"op": "cancel", "id": offer_id, "ref": "t", "timeout": 0.5})
            waited = trio.current_time() - started
        assert (answer["ok"], answer["ref"], answer["id"], answer["error"]["type"]) == (False, "t", offer_id,
                                                                                      "timeout")
        assert 0.5 <= waited < 0.5 + GUARD_S / 3
        assert len(foc_frames(sim, offer_id)) == 1
        assert offer_id in sim.offers
        completed = await log_watch.wait_for("command.completed", ref="t")
        assert (completed["outcome"], completed["timeout_s"]) == ("timeout", 0.5)

    async def test_default_deadline_comes_from_the_config(self, start_daemon: StartDaemon, sim: Simulator) -> None:
        """Without a per-request timeout, a lost frame is answered timeout after [requests] timeout."""
        daemon = await start_daemon(request_timeout=0.4)
        sim.lose_inputs(1)
        async with await LineClient.connect(daemon.socket_path) as client:
            started = trio.current_time()
            answer = await client.request({"op": "cancel", "id": offer_ids(sim)[0]})
            waited = trio.current_time() - started
        assert answer["error"]["type"] == "timeout"
        assert "0.4" in answer["error"]["message"]
        assert 0.4 <= waited < 0.4 + GUARD_S / 3

    async def test_not_ready_when_the_exchange_rejects_every_auth(
        self, start_daemon: StartDaemon, sim: Simulator
    ) -> None:
        """With every auth refused, status says so and cancel, cancel_all and offers are answered not_ready at
        their deadline, with nothing sent to the exchange."""
        sim.reject_auth(1000)
        daemon = await start_daemon(wait_ready=False, request_timeout=0.3)
        await _wait_state(daemon, "auth_failed")
        offer_id = offer_ids(sim)[0]
        async with await LineClient.connect(daemon.socket_path) as client:
            status = await client.request({"op": "status"})
            cancel = await client.request({"op": "cancel", "id": offer_id, "ref": "c"})
            cancel_all = await client.request({"op": "cancel_all", "ref": "a", "timeout": 0.3})
            offers = await client.request({"op": "offers", "ref": "o"})
            ping = await client.request({"op": "ping"})
        assert status["status"]["authenticated"] is False
        assert status["status"]["state"] in ("auth_failed", "connecting", "authenticating", "backoff")
        assert (cancel["ok"], cancel["ref"], cancel["id"], cancel["error"]["type"]) == (False, "c", offer_id,
                                                                                      "not_ready")
        assert (cancel_all["ok"], cancel_all["ref"], cancel_all["error"]["type"]) == (False, "a", "not_ready")
        assert (offers["ok"], offers["ref"], offers["error"]["type"]) == (False, "o", "not_ready")  # not "no offers"
        assert ping["ok"] is True  # the daemon itself answers
        assert foc_frames(sim) == []
        assert offer_id in sim.offers

    async def test_cancel_waits_for_the_session_within_its_deadline(
        self, start_daemon: StartDaemon, sim: Simulator, log_watch: LogWatch
    ) -> None:
        """A cancel that arrives while the session is not ready waits for it and is then sent."""
        sim.reject_auth(1)  # the first auth fails; the retry, after [reconnect] max_delay, succeeds
        daemon = await start_daemon(wait_ready=False, request_timeout=GUARD_S)
        await _wait_state(daemon, "auth_failed")
        offer_id = offer_ids(sim)[0]
        async with await LineClient.connect(daemon.socket_path) as client:
            answer = await client.request({"op": "cancel", "id": offer_id, "ref": "early"})
        assert (answer["ok"], answer["status"]) == (True, "SUCCESS")
        assert sim.authenticated_count == 1 and len(foc_frames(sim, offer_id)) == 1
        received = log_watch.find("command.received", ref="early")[0]
        assert log_watch.entries.index(received) < log_watch.entries.index(log_watch.find("exchange.auth_ok")[0])

    async def test_cancel_all_while_the_session_is_down_cancels_every_offer_once_ready(
        self, start_daemon: StartDaemon, sim: Simulator
    ) -> None:
        """A cancel_all sent before the session is ready cancels the whole book once it is, not an empty one."""
        sim.reject_auth(1)
        daemon = await start_daemon(wait_ready=False, request_timeout=GUARD_S)
        await _wait_state(daemon, "auth_failed")
        before = offer_ids(sim)
        async with await LineClient.connect(daemon.socket_path) as client:
            answer = await client.request({"op": "cancel_all"})
        assert sorted(r["id"] for r in answer["results"]) == before
        assert sim.offers == {}

    async def test_busy_beyond_max_clients(self, start_daemon: StartDaemon, log_watch: LogWatch) -> None:
        """A client beyond max_clients is answered busy and closed; once a client leaves, a new one is served."""
        daemon = await start_daemon(max_clients=2)
        async with await LineClient.connect(daemon.socket_path) as first, \
                await LineClient.connect(daemon.socket_path) as second:
            assert (await first.request({"op": "ping"}))["ok"] and (await second.request({"op": "ping"}))["ok"]
            async with await LineClient.connect(daemon.socket_path) as third:
                await third.send({"op": "ping", "ref": 3})  # before reading: the refusal must still arrive
                lines = await third.receive_until_closed()
            assert len(lines) == 1 and lines[0]["ok"] is False
            assert lines[0]["error"]["type"] == "busy"
            assert (await first.request({"op": "ping", "ref": 1}))["ok"] is True  # the others are unaffected
        # the refused one logged neither connected nor disconnected (client.refused only, rate-limited)
        await log_watch.wait_until(lambda: len(log_watch.find("client.disconnected")) == 2)
        assert len(log_watch.find("client.refused", error="busy")) == 1
        async with await LineClient.connect(daemon.socket_path) as fourth:
            assert await fourth.request({"op": "ping", "ref": 4}) == {"ok": True, "op": "ping", "ref": 4}

    async def test_forbidden_uid_is_refused(self, start_daemon: StartDaemon, log_watch: LogWatch) -> None:
        """A peer whose uid (SO_PEERCRED) is not in allowed_uids is answered forbidden and closed."""
        daemon = await start_daemon(allowed_uids=(os.getuid() + 4242,))
        async with await LineClient.connect(daemon.socket_path) as client:
            await client.send({"op": "ping", "ref": 1})
            lines = await client.receive_until_closed()
        assert len(lines) == 1 and (lines[0]["ok"], lines[0]["error"]["type"]) == (False, "forbidden")
        assert str(os.getuid()) in lines[0]["error"]["message"]
        refused = await log_watch.wait_for("client.refused")
        assert (refused["peer_uid"], refused["peer_pid"]) == (os.getuid(), os.getpid())

    async def test_forbidden_for_another_uid_in_a_subprocess(
        self, start_daemon: StartDaemon, socket_dir: Path, log_watch: LogWatch
    ) -> None:
        """With allowed_uids = [0], a client running as uid 65534 is refused forbidden while root is served."""
        if os.getuid() != 0:
            pytest.skip("needs root to run a client under another uid")
        python = _python_for_other_users()
        daemon = await start_daemon(allowed_uids=(0,), mode=0o666)
        await trio.Path(socket_dir).chmod(0o711)  # let uid 65534 reach the socket file (mkdtemp made it 0700)
        client = ("import socket, sys\n"
                  "s = socket.socket(socket.AF_UNIX)\n"
                  "s.connect(sys.argv[1])\n"
                  "s.sendall(b'{\"op\":\"ping\",\"ref\":1}\\n')\n"
                  "data = b''\n"
                  "while (chunk := s.recv(65536)):\n"
                  "    data += chunk\n"
                  "sys.stdout.write(data.decode())\n")
        with trio.fail_after(GUARD_S):
            result = await trio.run_process(
                [python, "-I", "-c", client, str(daemon.socket_path)], capture_stdout=True, capture_stderr=True,
                check=False, cwd="/", user=65534, group=65534, extra_groups=[])
        assert result.returncode == 0, result.stderr.decode()
        lines = [json.loads(line) for line in result.stdout.decode().splitlines()]
        assert len(lines) == 1 and (lines[0]["ok"], lines[0]["error"]["type"]) == (False, "forbidden")
        assert "65534" in lines[0]["error"]["message"]
        assert (await log_watch.wait_for("client.refused"))["peer_uid"] == 65534
        async with await LineClient.connect(daemon.socket_path) as root_client:
            assert await root_client.request({"op": "ping", "ref": 2}) == {"ok": True, "op": "ping", "ref": 2}

    async def test_shutting_down_answers_and_drains(
        self, start_daemon: StartDaemon, sim: Simulator, log_watch: LogWatch
    ) -> None:
        """After stop, a new request is answered shutting_down at once, a cancel still unanswered after the grace
        period is answered shutting_down, every connection is closed and the socket file removed."""
        daemon = await start_daemon(shutdown_grace=0.5)
        offer_id = offer_ids(sim)[0]
        sim.delay_answers(60)  # the exchange answers nothing within the test
        async with await LineClient.connect(daemon.socket_path) as canceller, \
                await LineClient.connect(daemon.socket_path) as late:
            assert (await late.request({"op": "ping"}))["ok"] is True
            await canceller.send({"op": "cancel", "id": offer_id, "ref": "inflight"})
            with trio.fail_after(GUARD_S):
                await sim.wait_received(is_foc(offer_id))
            daemon.stop.set()
            answer = await late.request({"op": "ping", "ref": "late"})
            assert (answer["ok"], answer["ref"], answer["error"]["type"]) == (False, "late", "shutting_down")
            cancelled = await canceller.receive_until_closed()
            assert await late.receive_until_closed() == []
        assert len(cancelled) == 1
        assert (cancelled[0]["ref"], cancelled[0]["id"], cancelled[0]["error"]["type"]) == (
            "inflight", offer_id, "shutting_down")
        with trio.fail_after(GUARD_S):
            await daemon.stopped.wait()
        assert not daemon.socket_path.exists()
        assert (await log_watch.wait_for("command.completed", ref="inflight"))["outcome"] == "shutting_down"


async def _wait_state(daemon: RunningDaemon, state: str) -> None:
    with trio.fail_after(GUARD_S):
        while daemon.board.state != state:
            await daemon.board.wait_changed(daemon.board.snapshot().version)


def _python_for_other_users() -> str:
    """An interpreter that uid 65534 may execute (the venv's may live under /root, mode 0700)."""
    for candidate in (sys.executable, "/usr/bin/python3"):
        path = Path(candidate).resolve()
        if path.exists() and all(p.stat().st_mode & stat.S_IXOTH for p in (path, *path.parents)):
            return str(path)
    pytest.skip("no Python interpreter executable by other users")


class TestConcurrency:
    async def test_pipelined_answers_come_out_of_order_matched_by_ref(
        self, daemon: RunningDaemon, sim: Simulator
    ) -> None:
        """A cancel the exchange delays, then a ping on the same connection: the ping's answer comes first."""
        offer_id = offer_ids(sim)[0]
        sim.delay_answers(0.5)
        async with await LineClient.connect(daemon.socket_path) as client:
            await client.send(json.dumps({"op": "cancel", "id": offer_id, "ref": "slow"}).encode() + b"\n"
                              + b'{"op":"ping","ref":"fast"}\n')
            first, second = await client.receive(), await client.receive()
        assert first == {"ok": True, "op": "ping", "ref": "fast"}
        assert (second["ref"], second["ok"], second["status"]) == ("slow", True, "SUCCESS")

    async def test_many_pipelined_requests_in_one_write(self, daemon: RunningDaemon, sim: Simulator) -> None:
        """Hundreds of requests in a single write each get exactly one answer with its own ref."""
        requests = [{"op": ("ping", "status", "offers")[i % 3], "ref": i} for i in range(300)]
        requests += [{"op": "cancel", "id": offer_id, "ref": f"c{offer_id}"} for offer_id in offer_ids(sim)]
        async with await LineClient.connect(daemon.socket_path) as client:
            await client.send(b"".join(json.dumps(r).encode() + b"\n" for r in requests))
            answers = [await client.receive() for _ in requests]
        assert sorted(map(str, (a["ref"] for a in answers))) == sorted(str(r["ref"]) for r in requests)
        assert all(a["ok"] for a in answers)
        assert sim.offers == {}

    async def test_two_clients_cancelling_one_offer_share_one_frame(
        self, daemon: RunningDaemon, sim: Simulator, log_watch: LogWatch
    ) -> None:
        """Two clients cancelling the same offer at once cause ONE foc frame, and both get the SUCCESS answer."""
        offer_id = offer_ids(sim)[0]
        sim.delay_answers(1.0)  # room for the second request to join the first
        async with await LineClient.connect(daemon.socket_path) as first, \
                await LineClient.connect(daemon.socket_path) as second:
            await first.send({"op": "cancel", "id": offer_id, "ref": "first"})
            with trio.fail_after(GUARD_S):
                await sim.wait_received(is_foc(offer_id))
            await second.send({"op": "cancel", "id": offer_id, "ref": "second"})
            await log_watch.wait_for("cancel.joined", offer_id=offer_id)
            answers = [await first.receive(), await second.receive()]
        assert [(a["ref"], a["ok"], a["status"]) for a in answers] == [("first", True, "SUCCESS"),
                                                                       ("second", True, "SUCCESS")]
        assert answers[0]["text"] == answers[1]["text"]
        assert len(foc_frames(sim, offer_id)) == 1

    async def test_vanished_client_outcome_is_still_logged(
        self, daemon: RunningDaemon, sim: Simulator, log_watch: LogWatch
    ) -> None:
        """A client that disconnects mid-cancel does not stop it: command.completed is logged for its request
        id, and the daemon and other clients carry on."""
        offer_id, other_id = offer_ids(sim)[:2]
        sim.delay_answers(0.5)
        async with await LineClient.connect(daemon.socket_path) as bystander:
            async with await LineClient.connect(daemon.socket_path) as leaver:
                await leaver.send({"op": "cancel", "id": offer_id, "ref": "gone"})
                with trio.fail_after(GUARD_S):
                    await sim.wait_received(is_foc(offer_id))
            request_id = (await log_watch.wait_for("command.received", ref="gone"))["request_id"]
            assert (await bystander.request({"op": "ping", "ref": 1}))["ok"] is True
            completed = await log_watch.wait_for("command.completed", request_id=request_id)
            other = await bystander.request({"op": "cancel", "id": other_id})
        assert (completed["outcome"], completed["status"], completed["offer_id"]) == ("ok", "SUCCESS", offer_id)
        assert offer_id not in sim.offers
        assert (other["ok"], other["status"]) == (True, "SUCCESS")
        assert log_watch.find("client.error") == []

    async def test_a_thousand_concurrent_clients_are_all_answered(
        self, daemon: RunningDaemon, raise_fd_limit: None, log_watch: LogWatch
    ) -> None:
        """1,000 clients connected at the same time each get their own answer."""
        count = 1000
        answers: dict[int, dict[str, object]] = {}
        all_answered = trio.Event()
        # The listen backlog is 512, and trio takes an AF_UNIX connect refused with EAGAIN (backlog full) for one
        # in progress: keep at most 256 connections waiting for the daemon's accept at any time.
        not_yet_accepted = trio.CapacityLimiter(256)

        async def one_client(n: int) -> None:
            client = None
            try:
                async with not_yet_accepted:
                    client = await LineClient.connect(daemon.socket_path)
                    answers[n] = await client.request({"op": ("ping", "status")[n % 2], "ref": n})
                if len(answers) == count:
                    all_answered.set()
                await all_answered.wait()  # every connection stays open until all are answered
            finally:
                if client is not None:
                    await client.aclose()

        with trio.fail_after(GUARD_S * 2):
            async with trio.open_nursery() as nursery:
                for n in range(count):
                    nursery.start_soon(one_client, n)
        assert sorted(answers) == list(range(count))
        assert all(a["ok"] is True and a["ref"] == n for n, a in answers.items())
        assert len({e["client_id"] for e in log_watch.find("client.connected")}) == count
        async with await LineClient.connect(daemon.socket_path) as client:
            assert (await client.request({"op": "status"}))["status"]["state"] == "ready"


class TestSocketFile:
    @pytest.mark.parametrize("mode", [0o600, 0o660, 0o666])
    async def test_socket_file_has_the_configured_mode(self, start_daemon: StartDaemon, mode: int) -> None:
        """The socket file's permission bits are exactly [socket] mode."""
        daemon = await start_daemon(mode=mode)
        st = daemon.socket_path.stat()
        assert stat.S_ISSOCK(st.st_mode)
        assert stat.S_IMODE(st.st_mode) == mode

    async def test_stale_socket_file_is_replaced(self, start_daemon: StartDaemon, socket_dir: Path) -> None:
        """A socket file nobody listens on (left by a crash) is replaced, and the daemon serves on it."""
        path = socket_dir / "bfxd.sock"
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as stale:
            stale.bind(str(path))
        assert stat.S_ISSOCK(path.lstat().st_mode)
        daemon = await start_daemon()
        async with await LineClient.connect(daemon.socket_path) as client:
            assert (await client.request({"op": "ping"}))["ok"] is True

    async def test_live_socket_is_refused(self, start_daemon: StartDaemon, socket_dir: Path) -> None:
        """A socket someone listens on is left alone: the daemon refuses to start with a ConfigError."""
        path = socket_dir / "bfxd.sock"
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as live:
            live.bind(str(path))
            live.listen(4)
            with pytest.raises(ConfigError, match="another daemon is already listening"):
                await start_daemon()
            assert stat.S_ISSOCK(path.lstat().st_mode)
            with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as probe:
                probe.connect(str(path))  # still the first owner's socket

    async def test_a_file_that_is_not_a_socket_is_refused(self, start_daemon: StartDaemon, socket_dir: Path) -> None:
        """A regular file at the socket path is never replaced."""
        path = socket_dir / "bfxd.sock"
        path.write_text("precious")
        with pytest.raises(ConfigError, match="not a socket"):
            await start_daemon()
        assert path.read_text() == "precious"

    async def test_socket_file_is_removed_on_stop(self, daemon: RunningDaemon) -> None:
        """A clean stop removes the socket file, so the next start finds no stale one."""
        assert daemon.socket_path.exists()
        await daemon.shut_down()
        assert not daemon.socket_path.exists()


class TestAuditTrail:
    async def test_events_of_one_cancel_are_tied_by_request_id(
        self, daemon: RunningDaemon, sim: Simulator, log_watch: LogWatch
    ) -> None:
        """command.received, frame.sent, notification.received and command.completed of one cancel carry its
        request id, in that order."""
        offer_id = offer_ids(sim)[0]
        async with await LineClient.connect(daemon.socket_path) as client:
            answer = await client.request({"op": "cancel", "id": offer_id, "ref": "audit"})
        assert answer["ok"] is True
        received = await log_watch.wait_for("command.received", ref="audit")
        request_id = received["request_id"]
        completed = await log_watch.wait_for("command.completed", request_id=request_id)
        sent = [e for e in log_watch.find("frame.sent", kind="foc") if request_id in e["request_ids"]]
        noted = [e for e in log_watch.find("notification.received", type="foc-req")
                 if request_id in e["request_ids"]]
        assert len(sent) == 1 and len(noted) == 1
        assert (received["op"], received["offer_id"]) == ("cancel", offer_id)
        assert sent[0]["offer_id"] == offer_id
        assert (noted[0]["status"], noted[0]["offer_id"]) == ("SUCCESS", offer_id)
        assert (completed["outcome"], completed["status"], completed["ref"]) == ("ok", "SUCCESS", "audit")
        assert isinstance(completed["latency_ms"], float | int) and completed["latency_ms"] >= 0
        order = [log_watch.entries.index(e) for e in (received, sent[0], noted[0], completed)]
        assert order == sorted(order)


def _writer_tasks() -> int:
    """How many client writer tasks run in this trio run (the daemon is in-process)."""
    count, nurseries = 0, list(trio.lowlevel.current_root_task().child_nurseries)
    while nurseries:
        for task in nurseries.pop().child_tasks:
            count += task.coro.cr_code.co_name == "write_lines"
            nurseries.extend(task.child_nurseries)
    return count


class TestWriterTask:
    """A client's writer task is started by its first queued line: an idle or plain request/answer client has
    none (2.9 KB a client), a watcher has one."""

    async def test_only_a_client_whose_lines_queue_gets_one(self, daemon: RunningDaemon) -> None:
        async with await LineClient.connect(daemon.socket_path) as plain, \
                await LineClient.connect(daemon.socket_path) as watcher:
            assert (await plain.request({"op": "ping"}))["ok"] is True
            assert (await plain.request({"op": "offers"}))["ok"] is True
            assert _writer_tasks() == 0
            assert (await watcher.request({"op": "watch"}))["ok"] is True
            assert _writer_tasks() == 1
            assert (await plain.request({"op": "ping"}))["ok"] is True  # the other client is unaffected
