"""The live books of the account a lender decides on: wallets, funding credits, funding loans. Pure state machines.

Like ``book.OfferBook``: ``apply(event)`` changes the book and returns the changes it made, in order, for
watchers and the audit log; every change has ``to_json()``, the body of its watch event line.

Wallet rules (``WalletBook``):
- ``ws`` (snapshot) replaces the book; each wallet in it is reported as a ``snapshot`` change.
- ``wu`` replaces one wallet (or adds it), reported as ``update``. Its BALANCE_AVAILABLE is taken as sent: null
  means the exchange no longer vouches for a figure (docs: "null if the value is not fresh enough"), so the book
  forgets it too and ``calc_requests()`` lists the wallet again until a ``calc`` answer brings a number.

Credit and loan rules (``CreditBook``, ``LoanBook``, keyed by id):
- the snapshot (``fcs``/``fls``) replaces the book: each entry is a ``snapshot`` change, and an entry that was on
  the book and is missing from the snapshot is reported as a ``close`` change (it ended while we were away);
- new (``fcn``/``fln``) and update (``fcu``/``flu``) insert or replace, reported as ``new`` or ``update`` by
  whether the id was known (an update for an unknown id is a ``new``; an ``fcn`` for a known id an ``update``);
- close (``fcc``/``flc``) removes the entry, reported as ``close`` (nothing when it was not on the book).
"""

from __future__ import annotations

from typing import Any, Generic, Literal, TypeVar

import attrs

from bfxd.protocol.events import (
    CreditClose,
    CreditEvent,
    CreditsSnapshot,
    LoanClose,
    LoanEvent,
    LoansSnapshot,
    WalletEvent,
    WalletsSnapshot,
)
from bfxd.protocol.funding import FundingCredit, FundingLoan
from bfxd.protocol.wallet import Wallet, calc_request

# ---- wallets ---------------------------------------------------------------------------------------------

WalletAction = Literal["snapshot", "update"]


@attrs.frozen
class WalletChange:
    action: WalletAction
    wallet: Wallet

    def to_json(self) -> dict[str, Any]:
        """``{"event":"wallet","action":…,"wallet":{…}}``."""
        return {"event": "wallet", "action": self.action, "wallet": self.wallet.to_json()}


@attrs.define
class WalletBook:
    _wallets: dict[tuple[str, str], Wallet] = attrs.field(factory=dict)

    def __len__(self) -> int:
        return len(self._wallets)

    def get(self, wallet_type: str, currency: str) -> Wallet | None:
        return self._wallets.get((wallet_type, currency))

    def wallets(self, wallet_type: str | None = None) -> list[Wallet]:
        """The wallets by (type, currency), optionally of one type (``funding``)."""
        return [w for _, w in sorted(self._wallets.items()) if wallet_type is None or w.type == wallet_type]

    def calc_requests(self, wallet_type: str | None = "funding") -> list[str]:
        """``calc`` keys for the wallets whose available balance is unknown (funding wallets by default)."""
        return [calc_request(w.type, w.currency) for w in self.wallets(wallet_type) if w.available is None]

    def apply(self, event: WalletEvent) -> list[WalletChange]:
        if isinstance(event, WalletsSnapshot):
            self._wallets = {w.key: w for w in event.wallets}
            return [WalletChange("snapshot", w) for _, w in sorted(self._wallets.items())]
        self._wallets[event.wallet.key] = event.wallet
        return [WalletChange("update", event.wallet)]


# ---- credits and loans -----------------------------------------------------------------------------------

FundingAction = Literal["snapshot", "new", "update", "close"]
Item = TypeVar("Item", FundingCredit, FundingLoan)


@attrs.frozen
class CreditChange:
    action: FundingAction
    credit: FundingCredit

    def to_json(self) -> dict[str, Any]:
        """``{"event":"credit","action":…,"credit":{…}}``."""
        return {"event": "credit", "action": self.action, "credit": self.credit.to_json()}


@attrs.frozen
class LoanChange:
    action: FundingAction
    loan: FundingLoan

    def to_json(self) -> dict[str, Any]:
        """``{"event":"loan","action":…,"loan":{…}}``."""
        return {"event": "loan", "action": self.action, "loan": self.loan.to_json()}


@attrs.define
class _FundingBook(Generic[Item]):
    """The rules both books share, on ``(action, item)`` pairs; the subclasses give them their types."""

    _items: dict[int, Item] = attrs.field(factory=dict)

    def __len__(self) -> int:
        return len(self._items)

    def __contains__(self, item_id: object) -> bool:
        return item_id in self._items

    def get(self, item_id: int) -> Item | None:
        return self._items.get(item_id)

    def _list(self, symbol: str | None) -> list[Item]:
        return [i for _, i in sorted(self._items.items()) if symbol is None or i.symbol == symbol]

    def _replace(self, items: tuple[Item, ...]) -> list[tuple[FundingAction, Item]]:
        fresh = {i.id: i for i in items}
        gone: list[tuple[FundingAction, Item]] = [
            ("close", i) for key, i in sorted(self._items.items()) if key not in fresh]
        self._items = fresh
        return gone + [("snapshot", i) for _, i in sorted(fresh.items())]

    def _upsert(self, item: Item) -> list[tuple[FundingAction, Item]]:
        action: FundingAction = "update" if item.id in self._items else "new"
        self._items[item.id] = item
        return [(action, item)]

    def _close(self, item: Item) -> list[tuple[FundingAction, Item]]:
        return [("close", item)] if self._items.pop(item.id, None) is not None else []


@attrs.define
class CreditBook(_FundingBook[FundingCredit]):
    def credits(self, symbol: str | None = None) -> list[FundingCredit]:
        """The credits by id, optionally of one symbol (``fUSD``)."""
        return self._list(symbol)

    def apply(self, event: CreditEvent) -> list[CreditChange]:
        if isinstance(event, CreditsSnapshot):
            changes = self._replace(event.credits)
        elif isinstance(event, CreditClose):
            changes = self._close(event.credit)
        else:
            changes = self._upsert(event.credit)
        return [CreditChange(action, credit) for action, credit in changes]


@attrs.define
class LoanBook(_FundingBook[FundingLoan]):
    def loans(self, symbol: str | None = None) -> list[FundingLoan]:
        """The loans by id, optionally of one symbol (``fUSD``)."""
        return self._list(symbol)

    def apply(self, event: LoanEvent) -> list[LoanChange]:
        if isinstance(event, LoansSnapshot):
            changes = self._replace(event.loans)
        elif isinstance(event, LoanClose):
            changes = self._close(event.loan)
        else:
            changes = self._upsert(event.loan)
        return [LoanChange(action, loan) for action, loan in changes]

