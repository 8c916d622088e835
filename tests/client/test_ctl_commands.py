"""bfxctl's commands for the contract's new ops (hello, submit, replace, wallets, credits, loans), and its human
times, against the scripted fake daemon."""

from __future__ import annotations

import time

import pytest
from tests.fake_daemon import CREDIT, HELLO, OFFER, STATUS, WALLET, answering, ok, refused
from tests.jsonlines import split

from bfxd import ctl
from bfxd.ctl_format import ago


def bare(request: dict) -> dict:
    return {k: v for k, v in request.items() if k not in ("ref", "deadline", "timeout")}


def columns(out: str) -> tuple[list[str], list[list[str]]]:
    header, *rows = out.splitlines()
    return header.split(), [row.split("  ") for row in rows]


class TestSubmitAndReplace:
    def test_submit_sends_what_was_typed(self, serve, capsys) -> None:
        """submit SYMBOL AMOUNT RATE PERIOD --type --flags: exact decimal strings, the placed offer as a table."""
        placed = {**OFFER, "id": 55, "amount": 100.5, "rate": 0.00025, "period": 3}
        daemon = serve(answering(lambda req: ok(req, offer=placed, status="SUCCESS", text="Submitting")))
        assert ctl.main(["-s", daemon.path, "submit", "fUSD", "100.50", "0.00025", "3", "--flags", "64"]) == 0
        assert [bare(r) for r in daemon.requests] == [{"op": "submit", "symbol": "fUSD", "amount": "100.50",
                                                       "rate": "0.00025", "period": 3, "type": "LIMIT", "flags": 64}]
        out = capsys.readouterr().out
        assert out.splitlines()[1].split()[:5] == ["55", "fUSD", "100.5", "0.00025", "3"]
        assert "SUCCESS: Submitting" in out

    @pytest.mark.parametrize(("kind", "code"), [("not_confirmed", 4), ("not_sent", 5), ("exchange", 1),
                                                ("not_ready", 5)])
    def test_submit_errors_exit_codes(self, serve, capsys, kind, code) -> None:
        daemon = serve(answering(lambda req: refused(req, kind, "it did not happen")))
        assert ctl.main(["-s", daemon.path, "submit", "fUSD", "100", "0.0002", "2"]) == code
        assert f"{kind}: it did not happen" in capsys.readouterr().err

    def test_replace_sends_only_what_changes(self, serve, capsys) -> None:
        """replace ID --rate: the id and the new rate only; prints the old and the new offer."""
        new = {**OFFER, "id": 56, "rate": 0.0003}
        daemon = serve(answering(lambda req: ok(req, cancelled=OFFER, offer=new, status="SUCCESS", text="ok")))
        assert ctl.main(["-s", daemon.path, "replace", str(OFFER["id"]), "--rate", "0.0003"]) == 0
        assert [bare(r) for r in daemon.requests] == [{"op": "replace", "id": OFFER["id"], "rate": "0.0003"}]
        assert capsys.readouterr().out.startswith(f"cancelled {OFFER['id']}, placed 56\n")

    def test_replace_failing_after_the_cancel_says_so(self, serve, capsys) -> None:
        """The old offer is gone though the new one failed: stderr says which one was cancelled."""
        failure = {"type": "exchange", "message": "submit refused", "status": "ERROR", "text": "Invalid offer"}
        daemon = serve(answering(lambda req: {"ok": False, "op": "replace", "ref": req["ref"], "cancelled": OFFER,
                                              "error": failure}))
        assert ctl.main(["-s", daemon.path, "replace", str(OFFER["id"]), "--amount", "50", "--period", "4"]) == 1
        err = capsys.readouterr().err
        assert f"offer {OFFER['id']} was cancelled, but its replacement failed" in err and "Invalid offer" in err


class TestAccount:
    def test_wallets_table(self, serve, capsys) -> None:
        daemon = serve(answering(lambda req: ok(req, wallets=[WALLET, {**WALLET, "currency": "UST",
                                                                         "available": None}])))
        assert ctl.main(["-s", daemon.path, "wallets"]) == 0
        header, rows = columns(capsys.readouterr().out)
        assert header == ["TYPE", "CURRENCY", "BALANCE", "UNSETTLED", "AVAILABLE"]
        assert [row[-1].strip() for row in rows] == ["1000", "-"]

    @pytest.mark.parametrize("command", ["credits", "loans"])
    def test_credits_and_loans_show_opened_and_expires(self, serve, capsys, command) -> None:
        """opened = mts_opening, expires = opening + period days; credits add the position's pair."""
        item = CREDIT if command == "credits" else {k: v for k, v in CREDIT.items() if k != "position_pair"}
        daemon = serve(answering(lambda req: ok(req, **{command: [item]})))
        assert ctl.main(["-s", daemon.path, command, "--symbol", "fUSD"]) == 0
        assert [bare(r) for r in daemon.requests] == [{"op": command, "symbol": "fUSD"}]
        out = capsys.readouterr().out
        opened = time.strftime("%Y-%m-%d %H:%M", time.localtime(CREDIT["mts_opening"] / 1000))
        expires = time.strftime("%Y-%m-%d %H:%M", time.localtime(CREDIT["mts_opening"] / 1000 + 2 * 86400))
        assert opened in out and expires in out
        assert out.split()[:5] == ["ID", "SYMBOL", "AMOUNT", "RATE", "PERIOD"]
        assert ("tBTCUSD" in out) == (command == "credits")

    def test_empty_lists_say_so(self, serve, capsys) -> None:
        daemon = serve(answering(lambda req: ok(req, **{req["op"]: []})))
        for command in ("wallets", "credits", "loans"):
            assert ctl.main(["-s", daemon.path, command]) == 0
        assert capsys.readouterr().out.splitlines() == ["no wallets", "no active credits", "no active loans"]

    def test_json_prints_the_answer_line(self, serve, capsys) -> None:
        daemon = serve(answering(lambda req: ok(req, wallets=[WALLET])))
        assert ctl.main(["-s", daemon.path, "--json", "wallets"]) == 0
        assert split(capsys.readouterr().out)[0]["wallets"] == [WALLET]

    def test_an_older_daemon_says_unknown_op(self, serve, capsys) -> None:
        """Today's daemon has no wallets op: unknown_op, exit 1."""
        daemon = serve(answering(lambda req: refused(req, "unknown_op", "unknown op 'wallets'")), hello=None)
        assert ctl.main(["-s", daemon.path, "wallets"]) == 1
        assert "unknown_op" in capsys.readouterr().err


class TestHelloAndTimes:
    def test_hello_lists_protocol_version_ops_events(self, serve, capsys) -> None:
        daemon = serve(answering(lambda req: ok(req)))
        assert ctl.main(["-s", daemon.path, "hello"]) == 0
        lines = dict(line.split(None, 1) for line in capsys.readouterr().out.splitlines())
        assert lines["protocol:"].strip() == "1" and lines["version:"].strip() == HELLO["version"]
        assert "submit" in lines["ops:"] and "watch_ended" in lines["events:"]

    def test_hello_of_an_older_daemon_is_protocol_0(self, serve, capsys) -> None:
        daemon = serve(answering(lambda req: ok(req)), hello=None)
        assert ctl.main(["-s", daemon.path, "hello"]) == 0
        assert "protocol:  0 (a daemon older than hello)" in capsys.readouterr().out

    def test_an_unknown_protocol_exits_1_and_says_what_to_do(self, serve, capsys) -> None:
        daemon = serve(answering(lambda req: ok(req, status=STATUS)), hello={**HELLO, "protocol": 3})
        assert ctl.main(["-s", daemon.path, "status"]) == 1
        assert "speaks protocol 3" in capsys.readouterr().err and daemon.requests == []

    def test_status_since_reads_as_time_ago(self, serve, capsys) -> None:
        """since: a wall-clock time and how long ago ("5 min ago")."""
        daemon = serve(answering(lambda req: ok(req, status={**STATUS, "since": time.time() - 301})))
        assert ctl.main(["-s", daemon.path, "status"]) == 0
        since = next(line for line in capsys.readouterr().out.splitlines() if line.startswith("since:"))
        assert since.endswith("(5 min ago)")

    @pytest.mark.parametrize(("seconds", "shown"), [(3, "3 s ago"), (59.4, "59 s ago"), (60, "1 min ago"),
                                                    (3599, "59 min ago"), (3600 * 3 + 1200, "3 h 20 min ago"),
                                                    (86400 * 2 + 5, "2 d ago")])
    def test_ago(self, seconds, shown) -> None:
        assert ago(seconds) == shown

    def test_a_string_id_is_named_as_a_string(self, capsys) -> None:
        """A bad id is shown quoted as the string it is."""
        with pytest.raises(SystemExit):
            ctl.main(["-s", "/nonexistent", "replace", "12a"])
        assert 'not the string "12a"' in capsys.readouterr().err
