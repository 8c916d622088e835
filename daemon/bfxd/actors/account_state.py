"""The account books beside the offer book: wallets, funding credits, funding loans, and when to ask for ``calc``.

The router (account.py) hands every wallet/credit/loan event to ``AccountState.apply`` and carries out what it
returns: log lines (one audit event per change, one per snapshot row that was skipped), watch events rendered
once for every watcher, and the ``calc`` keys to ask for. No Trio here: the router owns the tasks and the clock.

Readiness is per book: a book is *synced* once its own snapshot (``ws``, ``fcs``, ``fls``) arrived on a link that
is still up. Until then the ``wallets``/``credits``/``loans`` ops answer ``not_ready``: an empty book from a link
that is down (or whose snapshot has not come yet) would read as "none".
"""

from __future__ import annotations

import math
from typing import Any, Literal

import attrs

from bfxd.actors.messages import AccountWatchEvent, ReadSynced
from bfxd.protocol import CreditBook, LoanBook, WalletBook
from bfxd.protocol.account_books import WalletChange
from bfxd.protocol.encode import CALCS_PER_SECOND, MAX_CALC_REQUESTS
from bfxd.protocol.events import (
    CreditClose,
    CreditNew,
    CreditsSnapshot,
    CreditUpdate,
    LoanClose,
    LoanNew,
    LoansSnapshot,
    LoanUpdate,
    WalletsSnapshot,
    WalletUpdate,
)
from bfxd.protocol.wallet import calc_request

BookName = Literal["wallets", "credits", "loans"]
ACCOUNT_EVENTS = (WalletsSnapshot, WalletUpdate, CreditsSnapshot, CreditNew, CreditUpdate, CreditClose,
                  LoansSnapshot, LoanNew, LoanUpdate, LoanClose)
_SNAPSHOTS: dict[type, tuple[BookName, str]] = {
    WalletsSnapshot: ("wallets", "ws"), CreditsSnapshot: ("credits", "fcs"), LoansSnapshot: ("loans", "fls")}

# Audit names of book changes, spelled out so each can be found with grep.
_WALLET_EVENTS = {"snapshot": "wallet.snapshot", "update": "wallet.update"}
_CREDIT_EVENTS = {"snapshot": "credit.snapshot", "new": "credit.new", "update": "credit.update",
                  "close": "credit.close"}
_LOAN_EVENTS = {"snapshot": "loan.snapshot", "new": "loan.new", "update": "loan.update", "close": "loan.close"}

# One calc frame at most every CALC_INTERVAL_S: a full batch (30 keys) is 30 calculations, and the exchange
# performs at most 8 a second per client, so 30 / 8 = 3.75 s, rounded up to keep a margin.
CALC_INTERVAL_S = math.ceil(MAX_CALC_REQUESTS / CALCS_PER_SECOND)

LogLine = tuple[str, dict[str, Any]]


@attrs.frozen
class Applied:
    """What one event did: audit lines, watch events, the book it synced (a snapshot), calc keys to ask for."""

    logs: list[LogLine]
    watch: list[AccountWatchEvent]
    synced: BookName | None = None
    calc: list[str] = attrs.field(factory=list)
    reads: list[ReadSynced] = attrs.field(factory=list)  # waiting reads of the book it synced: answer them now


def _wallet_log(change: WalletChange) -> LogLine:
    w = change.wallet
    return _WALLET_EVENTS[change.action], {"wallet_type": w.type, "currency": w.currency, "balance": w.balance,
                                           "unsettled_interest": w.unsettled_interest, "available": w.available}


def _funding_log(names: dict[str, str], action: str, item: Any, id_field: str) -> LogLine:
    return names[action], {id_field: item.id, "symbol": item.symbol, "status": item.status, "amount": item.amount,
                           "rate": item.rate, "period": item.period}


@attrs.define
class AccountState:
    wallets: WalletBook = attrs.field(factory=WalletBook)
    credits: CreditBook = attrs.field(factory=CreditBook)
    loans: LoanBook = attrs.field(factory=LoanBook)
    _synced: dict[str, int] = attrs.field(factory=dict)  # book -> the link whose snapshot it holds
    _waiting: list[ReadSynced] = attrs.field(factory=list)  # reads of a book not synced yet

    def is_synced(self, book: str) -> bool:
        return book in self._synced

    def hold_unless_synced(self, read: ReadSynced) -> bool:
        """True: answer *read* now. False: it is kept until its book's next snapshot on a live link."""
        if self.is_synced(read.book):
            return True
        # Forget the reads whose requesters gave up (their deadline passed): their reply ends are closed.
        self._waiting = [r for r in self._waiting if r.reply.statistics().open_receive_channels]
        self._waiting.append(read)
        return False

    def calc_keys(self, *, refresh: bool) -> list[str]:
        """The calc keys of an on-demand request: every funding wallet (*refresh*), else the unknown ones."""
        if refresh:
            return [calc_request(w.type, w.currency) for w in self.wallets.wallets("funding")]
        return self.wallets.calc_requests()

    def link_down(self) -> None:
        """The link is gone: no book is live until its next snapshot."""
        self._synced.clear()

    def shut_down(self) -> None:
        for read in self._waiting:
            read.reply.close()  # the requester sees the end of the channel: the daemon is stopping
        self._waiting.clear()

    def apply(self, generation: int, event: Any, *, live_link: bool, watched: bool) -> Applied:
        """Apply one wallet/credit/loan event from link *generation* (*live_link*: not known to be dead).

        *watched*: render watch events (skipped when nobody watches: a 10,000-credit snapshot is not free).
        """
        logs: list[LogLine] = []
        watch: list[AccountWatchEvent] = []
        snapshot = _SNAPSHOTS.get(type(event))
        if snapshot is not None:
            for reason in event.skipped:
                logs.append(("exchange.bad_row", {"kind": snapshot[1], "error": reason, "generation": generation}))
        calc: list[str] = []
        if isinstance(event, (WalletsSnapshot, WalletUpdate)):
            for wallet_change in self.wallets.apply(event):
                logs.append(_wallet_log(wallet_change))
                if watched:
                    watch.append(AccountWatchEvent.rendered(wallet_change))
            # After each snapshot ask for every funding wallet's unknown figure; after a wu that forgot one, for it.
            if isinstance(event, WalletsSnapshot):
                calc = self.wallets.calc_requests()
            elif event.wallet.type == "funding" and event.wallet.available is None:
                calc = [calc_request(event.wallet.type, event.wallet.currency)]
        elif isinstance(event, (CreditsSnapshot, CreditNew, CreditUpdate, CreditClose)):
            for credit_change in self.credits.apply(event):
                logs.append(_funding_log(_CREDIT_EVENTS, credit_change.action, credit_change.credit, "credit_id"))
                if watched:
                    watch.append(AccountWatchEvent.rendered(credit_change))
        else:
            assert isinstance(event, (LoansSnapshot, LoanNew, LoanUpdate, LoanClose)), event
            for loan_change in self.loans.apply(event):
                logs.append(_funding_log(_LOAN_EVENTS, loan_change.action, loan_change.loan, "loan_id"))
                if watched:
                    watch.append(AccountWatchEvent.rendered(loan_change))
        synced: BookName | None = None
        reads: list[ReadSynced] = []
        if snapshot is not None and live_link:
            synced = snapshot[0]
            self._synced[synced] = generation
            reads = [r for r in self._waiting if r.book == synced]
            self._waiting = [r for r in self._waiting if r.book != synced]
        return Applied(logs, watch, synced, calc, reads)


@attrs.define
class CalcSchedule:
    """The ``calc`` keys wanted, and when the next calc frame may go: one frame per *interval* at most, each
    carrying up to MAX_CALC_REQUESTS keys, oldest wish first. Times are numbers the caller passes in."""

    interval: float = CALC_INTERVAL_S
    _wanted: dict[str, None] = attrs.field(factory=dict)  # an ordered set
    _last: float = -math.inf
    queued: bool = False  # a calc turn waits in the pacer's queue: wishes join it, no second one

    def __len__(self) -> int:
        return len(self._wanted)

    def want(self, keys: list[str]) -> None:
        for key in keys:
            self._wanted[key] = None

    def due(self, now: float) -> float | None:
        """When the next calc turn should be queued (None: nothing wanted, or a turn is already queued)."""
        if not self._wanted or self.queued:
            return None
        return max(now, self._last + self.interval)

    def take(self, now: float) -> list[str]:
        """The keys of the calc frame going out now (its turn came); the interval starts again."""
        batch = list(self._wanted)[:MAX_CALC_REQUESTS]
        self.queued = False
        if not batch:
            return batch  # wanted keys were cleared (a link went down): nothing goes out, the interval stands
        for key in batch:
            del self._wanted[key]
        self._last, self.queued = now, False
        return batch

    def clear(self) -> None:
        """The link is gone: the next snapshot asks again for what it does not know."""
        self._wanted.clear()
        self.queued = False


__all__ = ["ACCOUNT_EVENTS", "CALC_INTERVAL_S", "AccountState", "Applied", "CalcSchedule"]
