"""bfxctl against a scripted fake daemon: a thread serving a real AF_UNIX socket in a short temp dir."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

import pytest
from tests import fake_daemon
from tests.fake_daemon import (
    GUARD,
    OFFER,
    STATUS,
    Peer,
    answering,
    cancelled,
    exchange_error,
    ok,
    refused,
)
from tests.jsonlines import split

from bfxd import ctl
from bfxd.client import codec, sync

serve = fake_daemon.serve  # the fixture


def bare(request: dict) -> dict:
    """A request without what changes per run (ref, deadline, timeout): what the test chose to send."""
    return {k: v for k, v in request.items() if k not in ("ref", "deadline", "timeout")}


def run_ctl(*args: str) -> subprocess.CompletedProcess[str]:
    """bfxctl as the user runs it: the console script when installed, else `python -m bfxd.ctl`."""
    script = shutil.which("bfxctl", path=os.path.dirname(sys.executable))
    command = [script] if script else [sys.executable, "-m", "bfxd.ctl"]
    return subprocess.run([*command, *args], capture_output=True, text=True, timeout=GUARD, check=False)


class TestStatus:
    def test_ready_prints_key_value_lines_and_exits_0(self, serve, capsys) -> None:
        """A ready session prints one `key: value` line per status field and exits 0."""
        daemon = serve(answering(lambda req: ok(req, status=STATUS)))
        assert ctl.main(["-s", daemon.path, "status"]) == 0
        lines = capsys.readouterr().out.splitlines()
        assert [bare(r) for r in daemon.requests] == [{"op": "status"}] and len(daemon.hellos) == 1
        assert [line.split()[0] for line in lines] == [f"{key}:" for key in STATUS]
        assert lines[0].split() == ["state:", "ready"] and lines[1].split() == ["authenticated:", "yes"]

    def test_not_ready_exits_5(self, serve, capsys) -> None:
        """A daemon whose exchange session is not ready makes status exit 5 and say the state."""
        daemon = serve(answering(lambda req: ok(req, status={**STATUS, "state": "backoff"})))
        assert ctl.main(["-s", daemon.path, "status"]) == 5
        assert "backoff" in capsys.readouterr().err

    def test_json_prints_the_answer_as_one_line(self, serve, capsys) -> None:
        """--json prints the daemon's answer as one JSON document on one line."""
        daemon = serve(answering(lambda req: ok(req, status=STATUS)))
        assert ctl.main(["--json", "-s", daemon.path, "status"]) == 0
        [answer] = split(capsys.readouterr().out)
        assert answer == {"ok": True, "op": "status", "ref": daemon.requests[0]["ref"], "status": STATUS}

    def test_socket_from_environment_and_options_after_the_command(self, serve, capsys, monkeypatch) -> None:
        """$BFXD_SOCKET is used without -s, and global options are accepted after CMD."""
        daemon = serve(answering(lambda req: ok(req, status=STATUS)))
        monkeypatch.setenv("BFXD_SOCKET", daemon.path)
        assert ctl.main(["status", "--json"]) == 0
        assert json.loads(capsys.readouterr().out)["status"] == STATUS

    def test_socket_option_wins_over_environment(self, serve, monkeypatch) -> None:
        """-s overrides $BFXD_SOCKET."""
        daemon = serve(answering(lambda req: ok(req, status=STATUS)))
        monkeypatch.setenv("BFXD_SOCKET", os.path.join(daemon.dir, "missing.sock"))
        assert ctl.main(["-s", daemon.path, "status"]) == 0


class TestOffers:
    def test_table_is_aligned(self, serve, capsys) -> None:
        """Offers print as a table with a header; every column starts at the header's position."""
        offers = [OFFER, {**OFFER, "id": 7, "symbol": "fUST", "amount": 12345.5, "rate": 1e-05, "period": 30}]
        daemon = serve(answering(lambda req: ok(req, offers=offers)))
        assert ctl.main(["-s", daemon.path, "offers"]) == 0
        header, *rows = capsys.readouterr().out.splitlines()
        assert header.split() == ["ID", "SYMBOL", "AMOUNT", "RATE", "PERIOD", "STATUS", "TYPE"]
        for column, values in (("ID", ["41238934", "7"]), ("SYMBOL", ["fUSD", "fUST"]),
                               ("STATUS", ["ACTIVE"] * 2), ("TYPE", ["LIMIT"] * 2)):  # left-aligned
            start = header.index(column)
            assert [row[start:].split()[0] for row in rows] == values
            assert all(row[start - 1 : start] in ("", " ") for row in rows)
        for column, values in (("AMOUNT", ["500", "12345.5"]), ("RATE", ["0.0002", "0.00001"]),
                               ("PERIOD", ["2", "30"])):  # numbers: right-aligned under their header
            end = header.index(column) + len(column)
            assert [row[:end].split()[-1] for row in rows] == values
            assert all(row[end] == " " for row in rows)
        assert [bare(r) for r in daemon.requests] == [{"op": "offers"}]

    def test_symbol_is_sent(self, serve, capsys) -> None:
        """--symbol goes into the request."""
        daemon = serve(answering(lambda req: ok(req, offers=[])))
        assert ctl.main(["-s", daemon.path, "offers", "--symbol", "fUSD"]) == 0
        assert [bare(r) for r in daemon.requests] == [{"op": "offers", "symbol": "fUSD"}]
        assert capsys.readouterr().out == "no active offers\n"

    def test_not_ready_exits_5(self, serve, capsys) -> None:
        """A not_ready answer exits 5 and prints the daemon's message on stderr."""
        daemon = serve(answering(lambda req: refused(req, "not_ready", "no session before the deadline")))
        assert ctl.main(["-s", daemon.path, "offers"]) == 5
        assert "no session before the deadline" in capsys.readouterr().err


class TestCancel:
    def test_pipelined_answers_out_of_order(self, serve, capsys) -> None:
        """All cancels are sent before any answer; answers coming in reverse order are matched by ref."""

        def handler(peer: Peer) -> None:
            requests = [peer.read() for _ in range(3)]  # a client waiting for each answer would stall here
            for req in reversed(requests):
                peer.send(exchange_error(req) if req["id"] == 2 else cancelled(req))

        daemon = serve(handler)
        assert ctl.main(["-s", daemon.path, "cancel", "1", "2", "3"]) == 1
        assert [bare(r) for r in daemon.requests] == [{"op": "cancel", "id": n} for n in (1, 2, 3)]
        rows = [line.split(None, 2) for line in capsys.readouterr().out.splitlines()]
        assert rows == [["1", "cancelled", "Submitted for cancellation (ID: 1)."],
                        ["2", "refused", "(ERROR)  Offer not found"],
                        ["3", "cancelled", "Submitted for cancellation (ID: 3)."]]

    def test_json_prints_each_answer(self, serve, capsys) -> None:
        """--json prints one answer document per id, and all succeeding exits 0."""
        daemon = serve(answering(cancelled))
        assert ctl.main(["--json", "-s", daemon.path, "cancel", "5", "6"]) == 0
        answers = split(capsys.readouterr().out)
        assert [(a["offer"]["id"], a["status"]) for a in answers] == [(5, "SUCCESS"), (6, "SUCCESS")]

    @pytest.mark.parametrize(("kind", "code"), [("exchange", 1), ("timeout", 4), ("not_active", 4),
                                                ("not_ready", 5), ("busy", 3), ("forbidden", 3),
                                                ("shutting_down", 3), ("bad_request", 1), ("unknown_op", 1),
                                                ("not_confirmed", 4), ("not_sent", 5), ("novel", 1)])
    def test_error_type_exit_code(self, serve, kind, code) -> None:
        """Each error type maps to its documented exit code."""
        daemon = serve(answering(lambda req: refused(req, kind)))
        assert ctl.main(["-s", daemon.path, "cancel", "9"]) == code

    def test_most_severe_result_wins(self, serve, capsys) -> None:
        """Refused, not ready and timed out together exit 4 (3 > 4 > 5 > 1 > 0)."""
        kinds = {1: "exchange", 2: "not_ready", 3: "timeout"}
        daemon = serve(answering(lambda req: refused(req, kinds[req["id"]]) if req["id"] in kinds
                                 else cancelled(req)))
        assert ctl.main(["-s", daemon.path, "cancel", "1", "2", "3", "4"]) == 4
        verdicts = [line.split()[1] for line in capsys.readouterr().out.splitlines()]
        assert verdicts == ["refused", "not", "timed", "cancelled"]
        assert ctl.main(["-s", daemon.path, "cancel", "1", "2", "4"]) == 5

    def test_every_request_carries_an_absolute_deadline(self, serve) -> None:
        """Each request says when it expires: `deadline` (UNIX time) = now + --timeout (default 10 s), and the
        same span as `timeout` for daemons older than `deadline`."""
        daemon = serve(answering(cancelled))
        before = time.time()
        assert ctl.main(["-s", daemon.path, "--timeout", "2.5", "cancel", "8"]) == 0
        assert ctl.main(["-s", daemon.path, "cancel", "8"]) == 0
        after = time.time()
        first, second = daemon.requests
        assert before + 2.5 - 0.01 <= first["deadline"] <= after + 2.5 and first["timeout"] == 2.5
        assert before + 10 - 0.01 <= second["deadline"] <= after + 10 and second["timeout"] == 10
        assert all("deadline" in hello for hello in daemon.hellos)

    @pytest.mark.parametrize("timeout", ["0", "-1", "nan", "inf", "3600.5"])
    def test_timeout_out_of_range_is_a_usage_error(self, timeout) -> None:
        """--timeout must be within the daemon's range (0, 3600] s: exit 2, nothing sent."""
        with pytest.raises(SystemExit) as exc:
            ctl.main(["-s", "/nonexistent", "--timeout", timeout, "status"])
        assert exc.value.code == 2

    def test_connection_closed_before_every_answer_exits_3(self, serve, capsys) -> None:
        """The answers that came are shown; the missing one is unknown and the exit code is 3."""

        def handler(peer: Peer) -> None:
            first, _ = peer.read(), peer.read()
            peer.send(cancelled(first))

        daemon = serve(handler)
        assert ctl.main(["-s", daemon.path, "cancel", "1", "2"]) == 3
        out, err = capsys.readouterr()
        assert [line.split()[:2] for line in out.splitlines()] == [["1", "cancelled"], ["2", "unknown"]]
        assert "closed the connection" in err

    def test_busy_without_ref_exits_3(self, serve, capsys) -> None:
        """A busy answer sent at connect time (no ref, before hello is read) exits 3 and says busy."""
        busy = {"ok": False, "op": None, "error": {"type": "busy", "message": "too many clients"}}
        daemon = serve(lambda peer: peer.send(busy))
        assert ctl.main(["-s", daemon.path, "cancel", "1", "2"]) == 3
        assert "busy: too many clients" in capsys.readouterr().err

    @pytest.mark.parametrize("bad", ["0", "-5", "abc", "1.5", "+3", "٣", str(2**53)])
    def test_ids_must_be_positive_integers(self, bad, capsys) -> None:
        """An id that is not a positive integer is a usage error (exit 2), and nothing is sent."""
        with pytest.raises(SystemExit) as exc:
            ctl.main(["-s", "/nonexistent", "cancel", "1", bad])
        assert exc.value.code == 2
        assert "positive integer" in capsys.readouterr().err

    def test_interrupted_exits_130(self, serve, monkeypatch, capsys) -> None:
        """Ctrl-C while waiting for a cancel answer exits 130 and says the outcome is unknown."""

        def interrupt(self: sync._Link, deadline: float | None) -> dict:
            raise KeyboardInterrupt

        monkeypatch.setattr(sync._Link, "receive", interrupt)
        daemon = serve(lambda peer: peer.read_or_none())
        assert ctl.main(["-s", daemon.path, "cancel", "1"]) == 130
        assert "unknown" in capsys.readouterr().err


class TestCancelAll:
    def test_results_one_line_each(self, serve, capsys) -> None:
        """Each per-offer result prints one line; one refusal makes the exit code 1."""

        def respond(req: dict) -> dict:
            good = cancelled({"op": "cancel", "ref": None, "id": 1}) | {"id": 1}
            bad = exchange_error({"op": "cancel", "ref": None}) | {"id": 2}
            return {"ok": False, "op": req["op"], "ref": req["ref"], "results": [good, bad],
                    "error": {"type": "exchange", "message": "1 of 2 cancels failed"}}

        daemon = serve(answering(respond))
        assert ctl.main(["-s", daemon.path, "cancel-all", "--symbol", "fUSD"]) == 1
        assert [bare(r) for r in daemon.requests] == [{"op": "cancel_all", "symbol": "fUSD"}]
        assert [line.split()[:2] for line in capsys.readouterr().out.splitlines()] == [
            ["1", "cancelled"], ["2", "refused"]]

    def test_nothing_to_cancel(self, serve, capsys) -> None:
        """No active offers: a message and exit 0."""
        daemon = serve(answering(lambda req: ok(req, results=[])))
        assert ctl.main(["-s", daemon.path, "--timeout", "3", "cancel-all"]) == 0
        assert [bare(r) for r in daemon.requests] == [{"op": "cancel_all"}]
        assert daemon.requests[0]["timeout"] == 3.0
        assert capsys.readouterr().out == "no active offers to cancel\n"


EVENTS = [{"event": "state", "state": "ready", "detail": None, "since": 1764684000.5},
          {"event": "offer", "action": "new", "offer": OFFER},
          {"event": "notification", "type": "foc-req", "status": "SUCCESS", "text": "Submitted", "mts": 1764684000000,
           "offer_id": OFFER["id"], "offer": OFFER}]
ENDED = {"event": "watch_ended", "reason": "the daemon is stopping"}


class TestWatch:
    def test_events_until_the_daemon_closes(self, serve, capsys) -> None:
        """--json prints the ok answer and every event as received; the daemon closing exits 3."""

        def handler(peer: Peer) -> None:
            peer.send(ok(peer.read()), *EVENTS)

        daemon = serve(handler)
        assert ctl.main(["--json", "-s", daemon.path, "watch"]) == 3
        out, err = capsys.readouterr()
        answer, *events = split(out)
        assert answer == {"ok": True, "op": "watch", "ref": daemon.requests[0]["ref"]} and events == EVENTS
        assert "closed the connection" in err

    def test_watch_ended_exits_3(self, serve, capsys) -> None:
        """The daemon ending the watch (watch_ended) prints the event and exits 3, saying why."""
        daemon = serve(lambda peer: (peer.send(ok(peer.read()), EVENTS[0], ENDED), peer.hang()))
        assert ctl.main(["-s", daemon.path, "watch"]) == 3
        out, err = capsys.readouterr()
        assert [line.split()[1] for line in out.splitlines()] == ["state", "watch_ended"]
        assert "ended the watch (the daemon is stopping)" in err

    def test_human_lines(self, serve, capsys) -> None:
        """Human output is one line per event, naming the kind and the offer."""
        daemon = serve(lambda peer: peer.send(ok(peer.read()), *EVENTS))
        assert ctl.main(["-s", daemon.path, "watch"]) == 3
        lines = capsys.readouterr().out.splitlines()
        assert [line.split()[1:3] for line in lines] == [["state", "state=ready"], ["offer", "new"],
                                                         ["notification", "type=foc-req"]]
        assert "id=41238934" in lines[1]

    def test_error_during_watch(self, serve, capsys) -> None:
        """A shutting_down answer after the subscription exits 3 with the daemon's message."""
        daemon = serve(lambda peer: peer.send(ok(req := peer.read()), refused(req, "shutting_down", "bye")))
        assert ctl.main(["-s", daemon.path, "watch"]) == 3
        assert "bye" in capsys.readouterr().err

    def test_ctrl_c_exits_0(self, serve) -> None:
        """SIGINT ends a running watch with exit 0."""
        daemon = serve(lambda peer: (peer.send(ok(peer.read()), EVENTS[0]), peer.hang()))
        proc = subprocess.Popen([sys.executable, "-m", "bfxd.ctl", "-s", daemon.path, "--json", "watch"],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            assert json.loads(proc.stdout.readline())["ok"] is True
            assert json.loads(proc.stdout.readline()) == EVENTS[0]  # the client is now in its read loop
            proc.send_signal(signal.SIGINT)
            assert proc.wait(GUARD) == 0
        finally:
            proc.kill()
            proc.communicate()


class TestFailures:
    def test_socket_missing_exits_3_naming_the_path(self, capsys) -> None:
        """A missing socket is 'daemon unreachable' (3), and the message names the path."""
        path = os.path.join(tempfile.gettempdir(), "bfxd-test-missing.sock")
        assert ctl.main(["-s", path, "status"]) == 3
        err = capsys.readouterr().err
        assert path in err and "unreachable" in err

    def test_connection_refused_exits_3(self, capsys) -> None:
        """A socket file nobody listens on is 'connection refused' (3)."""
        directory = tempfile.mkdtemp(prefix="bfxd-")
        path = os.path.join(directory, "bfxd.sock")
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as bound:
            bound.bind(path)  # bound, not listening
            assert ctl.main(["-s", path, "status"]) == 3
        shutil.rmtree(directory)
        assert "connection refused" in capsys.readouterr().err

    @pytest.mark.skipif(os.geteuid() == 0, reason="root ignores file permissions")
    def test_permission_denied_exits_3(self, serve, capsys) -> None:
        """A socket the user may not open is 'permission denied' (3)."""
        daemon = serve(answering(lambda req: ok(req, status=STATUS)))
        os.chmod(daemon.path, 0)
        assert ctl.main(["-s", daemon.path, "status"]) == 3
        assert "permission denied" in capsys.readouterr().err

    def test_no_answer_before_the_client_deadline_exits_4(self, serve, capsys) -> None:
        """A daemon that never answers is given up on at --timeout: exit 4, outcome unknown."""
        daemon = serve(lambda peer: (peer.read(), peer.hang()))
        assert ctl.main(["-s", daemon.path, "--timeout", "0.2", "status"]) == 4
        assert "outcome unknown" in capsys.readouterr().err

    @pytest.mark.parametrize("garbage", [b"x" * (codec.MAX_LINE + 1), b"not json\n", b"[1, 2]\n"])
    def test_unreadable_answer_exits_4(self, serve, garbage) -> None:
        """A line over 1 MiB, or one that is not a JSON object, leaves the outcome unknown (4)."""
        daemon = serve(lambda peer: (peer.read(), peer.conn.sendall(garbage)))
        assert ctl.main(["-s", daemon.path, "status"]) == 4

    def test_version(self, capsys) -> None:
        """--version prints the package version on stdout and exits 0."""
        with pytest.raises(SystemExit) as exc:
            ctl.main(["--version"])
        assert exc.value.code == 0
        assert capsys.readouterr().out.startswith("bfxctl ")

    @pytest.mark.parametrize("argv", [[], ["frobnicate"], ["cancel"], ["--timeout", "0", "status"],
                                      ["--timeout", "nan", "status"], ["submit", "fUSD", "x", "0.0002", "2"],
                                      ["submit", "USD", "100", "0.0002", "2"], ["submit", "fUSD", "100", "1", "0"],
                                      ["replace", "abc"], ["credits", "--symbol", "usd"]])
    def test_usage_errors_exit_2(self, argv) -> None:
        """Bad command lines exit 2 through argparse."""
        with pytest.raises(SystemExit) as exc:
            ctl.main(argv)
        assert exc.value.code == 2


class TestAsAProgram:
    @pytest.mark.parametrize(("argv", "code"), [(["status"], 0), (["cancel", "1", "2"], 1),
                                                (["cancel", "x"], 2)])
    def test_exit_codes(self, serve, argv, code) -> None:
        """The installed command returns the documented exit codes to the shell."""
        daemon = serve(answering(lambda req: ok(req, status=STATUS) if req["op"] == "status"
                                 else exchange_error(req) if req["id"] == 2 else cancelled(req)))
        assert run_ctl("-s", daemon.path, *argv).returncode == code

    def test_missing_socket_exits_3(self) -> None:
        """The installed command exits 3 when the socket does not exist."""
        result = run_ctl("-s", "/nonexistent/bfxd.sock", "status")
        assert (result.returncode, result.stdout) == (3, "")
        assert "/nonexistent/bfxd.sock" in result.stderr

    def test_does_not_import_the_daemon_stack(self, serve) -> None:
        """A status call imports no trio, attrs, structlog, asyncio, typing or dataclasses, and from bfxd only
        bfxctl and the client's core (start-up time is bfxctl's latency)."""
        daemon = serve(answering(lambda req: ok(req, status=STATUS)))
        command = [sys.executable, "-X", "importtime", "-m", "bfxd.ctl", "-s", daemon.path, "status"]
        result = subprocess.run(command, capture_output=True, text=True, timeout=GUARD, check=False)
        assert result.returncode == 0, result.stderr
        imported = {line.rsplit("|", 1)[1].strip() for line in result.stderr.splitlines()
                    if line.startswith("import time:") and "|" in line}
        assert "json" in imported  # the parse works: the list is not empty by accident
        heavy = {"trio", "attr", "attrs", "structlog", "asyncio", "typing", "dataclasses", "inspect"}
        assert {m for m in imported if m.split(".")[0] in heavy} == set()
        assert {m for m in imported if m.split(".")[0] == "bfxd"} <= {
            "bfxd", "bfxd.ctl", "bfxd.ctl_format", "bfxd.client", "bfxd.client.codec", "bfxd.client.errors",
            "bfxd.client.sync"}

