"""One change of the simulated account, as the account channel reports it, and the frame that reports it."""

from __future__ import annotations

from collections.abc import Callable

import attrs

from bfxd.protocol import FundingCredit, FundingLoan, FundingOffer, Wallet, encode

Item = FundingOffer | FundingCredit | FundingLoan | Wallet


@attrs.frozen
class Change:
    """``fon``/``fou``/``foc`` (an offer), ``fcn``/``fcu``/``fcc`` (a credit), ``fln``/``flu``/``flc`` (a loan) or
    ``wu`` (a wallet), with the value after the change."""

    kind: str
    item: Item

    @property
    def offer(self) -> FundingOffer:
        assert isinstance(self.item, FundingOffer), self.kind
        return self.item

    def frame(self) -> str:
        item = self.item
        if isinstance(item, FundingOffer):
            return encode.offer_frame(self.kind, item)
        if isinstance(item, FundingCredit):
            return encode.credit_frame(self.kind, item)
        if isinstance(item, FundingLoan):
            return encode.loan_frame(self.kind, item)
        return encode.wallet_frame(item)

    def wanted(self, wants: Callable[[str, str], bool]) -> bool:
        """Whether an auth filter (``Connection.wants``) lets this change through."""
        if isinstance(self.item, Wallet):
            return wants("wallet", f"{self.item.type}-{self.item.currency}")
        return wants("funding", self.item.symbol or "")
