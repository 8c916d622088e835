"""examples/lending_bot.py, run as a program against a fake daemon that keeps a small account: a wallet whose
available balance follows the cancels and submits, and a book of offers."""

from __future__ import annotations

import subprocess
import sys
import time
from decimal import Decimal
from pathlib import Path

from tests.fake_daemon import GUARD, OFFER, WALLET, Peer, ok

BOT = Path(__file__).parent.parent.parent / "examples" / "lending_bot.py"


class Account:
    """The exchange side of the bot's round, as the daemon would report it (CONTRACT.md shapes)."""

    def __init__(self, available: Decimal, offers: list[dict]) -> None:
        self.available, self.offers, self.next_id = available, {o["id"]: o for o in offers}, 900

    def __call__(self, peer: Peer) -> None:
        while (req := peer.read_or_none()) is not None:
            peer.send(self.answer(req))

    def answer(self, req: dict) -> dict:
        if req["op"] == "wallets":
            return ok(req, wallets=[{**WALLET, "available": float(self.available)}])
        if req["op"] == "offers":
            return ok(req, offers=[o for o in self.offers.values() if o["symbol"] == req.get("symbol", "fUSD")])
        if req["op"] == "cancel":
            offer = self.offers.pop(req["id"])
            self.available += Decimal(str(offer["amount"]))
            return ok(req, id=req["id"], status="SUCCESS", text="cancelled", offer={**offer, "status": "CANCELED"})
        assert req["op"] == "submit", req
        amount = Decimal(req["amount"])
        assert amount <= self.available, "the bot offered more than is available"
        self.available -= amount
        self.next_id += 1
        offer = {**OFFER, "id": self.next_id, "amount": float(amount), "amount_orig": float(amount),
                 "rate": float(req["rate"]), "period": req["period"], "mts_created": int(time.time() * 1000)}
        self.offers[offer["id"]] = offer
        return ok(req, offer=offer, status="SUCCESS", text="Submitting funding offer")


def run_bot(path: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, str(BOT), "--socket", path, "--once", *args], capture_output=True,
                          text=True, timeout=GUARD, check=False)


def test_a_round_cancels_stale_offers_and_lends_the_balance_in_chunks(serve) -> None:
    """Stale (old, or at another rate) offers are cancelled; 1,200 available + 300 freed = three chunks of 500;
    the fresh offer at the right rate stays; every step is logged."""
    now = int(time.time() * 1000)
    fresh = {**OFFER, "id": 1, "rate": 0.0002, "mts_created": now}
    old = {**OFFER, "id": 2, "rate": 0.0002, "amount": 200, "mts_created": now - 3_600_000}
    cheap = {**OFFER, "id": 3, "rate": 0.0001, "amount": 100, "mts_created": now}
    account = Account(Decimal(1200), [fresh, old, cheap])
    daemon = serve(account)
    result = run_bot(daemon.path, "--rate", "0.0002", "--chunk", "500", "--min-chunk", "150", "--stale-after", "600")
    assert result.returncode == 0, result.stderr
    cancels = [r["id"] for r in daemon.requests if r["op"] == "cancel"]
    submits = [(r["amount"], r["rate"], r["period"]) for r in daemon.requests if r["op"] == "submit"]
    assert sorted(cancels) == [2, 3]
    assert submits == [("500", "0.0002", 2)] * 3
    assert account.available == 0 and 1 in account.offers
    log = result.stderr
    assert "cancel 2 (3600 s old): cancelled" in log and "cancel 3 (rate 0.0001 is not 0.0002): cancelled" in log
    assert log.count("submit fUSD 500 at 0.0002 for 2 days: offer") == 3


def test_a_remainder_under_the_minimum_stays(serve) -> None:
    """570.5 available in chunks of 400, minimum 200: one offer of 400; 170.5 stays, nothing is cancelled."""
    account = Account(Decimal("570.5"), [])
    daemon = serve(account)
    result = run_bot(daemon.path, "--chunk", "400", "--min-chunk", "200")
    assert result.returncode == 0, result.stderr
    assert [r["amount"] for r in daemon.requests if r["op"] == "submit"] == ["400"]
    assert account.available == Decimal("170.5") and "cancel" not in daemon.ops


def test_an_older_daemon_is_refused_clearly(serve) -> None:
    """Against a daemon without wallets and submit (protocol 0), the bot says so and exits 1, sending nothing."""
    daemon = serve(Account(Decimal(0), []), hello=None)
    result = run_bot(daemon.path)
    assert result.returncode == 1
    assert "does not serve submit, wallets: upgrade the daemon" in result.stderr and daemon.requests == []


def test_no_daemon_exits_3(tmp_path) -> None:
    result = run_bot(str(tmp_path / "none.sock"))
    assert result.returncode == 3 and "unreachable" in result.stderr


def test_the_readme_bot_runs(serve, monkeypatch, capsys) -> None:
    """The README's bot (section "Client library"), run as written against the fake account."""
    readme = (Path(__file__).parent.parent.parent / "README.md").read_text()
    section = readme[readme.index("### Client library"):]
    code = section[section.index("```python\n") + 10: section.index("```\n", section.index("```python\n") + 10)]
    assert 12 <= len(code.splitlines()) <= 20, "the README promises a bot in about 15 lines"
    now = int(time.time() * 1000)
    account = Account(Decimal(1000), [{**OFFER, "id": 1, "rate": 0.0001, "amount": 200, "mts_created": now}])
    daemon = serve(account)
    monkeypatch.setenv("BFXD_SOCKET", daemon.path)
    exec(compile(code, "README.md", "exec"), {})
    assert daemon.ops == ["offers", "cancel", "wallets", "submit", "submit", "submit"]
    assert [Decimal(r["amount"]) for r in daemon.requests if r["op"] == "submit"] == [500, 500, 200]
    assert capsys.readouterr().out.count("placed") == 3
