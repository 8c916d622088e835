"""Typed, immutable events: what a decoded frame means.

Exchange → client events are decoded by ``decode_exchange_frame``; client → exchange inputs (the simulator's
side) by ``decode_client_frame``. Every event is a frozen attrs value, so tests compare them with ``==``.
"""

from __future__ import annotations

from typing import Any

import attrs

from bfxd.protocol.funding import FundingCredit, FundingLoan
from bfxd.protocol.offer import FundingOffer
from bfxd.protocol.wallet import Wallet

# Info codes with a meaning of their own (bitfinex-ws.md, "Connection").
INFO_RESTART = 20051
INFO_MAINTENANCE_START = 20060
INFO_MAINTENANCE_END = 20061

# Auth failure codes (bitfinex-ws.md, "Authentication").
AUTH_INVALID_KEY = 10100
AUTH_BAD_PAYLOAD = 10111
AUTH_BAD_SIGNATURE = 10112
AUTH_BAD_ENCRYPTION = 10113
AUTH_BAD_NONCE = 10114


# ---- exchange → client -----------------------------------------------------------------------------------


@attrs.frozen
class Info:
    """The greeting on connect: ``{"event":"info","version":2,"serverId":…,"platform":{"status":1}}``."""

    version: int | None
    server_id: str | None
    platform_status: int | None  # 1 operative, 0 maintenance, None when absent

    @property
    def in_maintenance(self) -> bool:
        return self.platform_status == 0


@attrs.frozen
class ServerRestarting:
    """Info 20051: the websocket server stops or restarts; reconnect."""

    message: str


@attrs.frozen
class MaintenanceStarted:
    """Info 20060: maintenance begins; keep the link, send no inputs."""

    message: str


@attrs.frozen
class MaintenanceEnded:
    """Info 20061: maintenance is over; re-authenticate / resynchronise, then resume."""

    message: str


@attrs.frozen
class InfoMessage:
    """Any other ``info`` event carrying a code."""

    code: int
    message: str


@attrs.frozen
class ConfAck:
    status: str | None
    flags: int | None


@attrs.frozen
class AuthOk:
    user_id: int | None
    auth_id: str | None
    caps: dict[str, Any] = attrs.field(factory=dict, eq=False, hash=False)


@attrs.frozen
class AuthFailed:
    code: int | None
    message: str

    @property
    def is_nonce_error(self) -> bool:
        return self.code == AUTH_BAD_NONCE or "nonce" in self.message.lower()


@attrs.frozen
class ErrorEvent:
    code: int | None
    message: str


@attrs.frozen
class Pong:
    cid: int | None
    ts: int | None


@attrs.frozen
class Heartbeat:
    chan_id: int


@attrs.frozen
class Notification:
    """``[0, "n", [MTS, TYPE, MESSAGE_ID, null, NOTIFY_INFO, CODE, STATUS, TEXT]]``.

    ``offer`` is the NOTIFY_INFO decoded leniently for ``fon-req``/``foc-req`` (any field may be null, the id
    included); ``None`` for other types or when NOTIFY_INFO is not an offer array.
    """

    mts: int | None
    type: str
    message_id: Any
    notify_info: Any = attrs.field(eq=False, hash=False)
    code: int | None
    status: str | None
    text: str | None
    offer: FundingOffer | None = None

    @property
    def succeeded(self) -> bool:
        return self.status == "SUCCESS"

    @property
    def offer_id(self) -> int | None:
        return self.offer.id if self.offer is not None else None


@attrs.frozen
class OffersSnapshot:
    offers: tuple[FundingOffer, ...]


@attrs.frozen
class OfferNew:
    offer: FundingOffer


@attrs.frozen
class OfferUpdate:
    offer: FundingOffer


@attrs.frozen
class OfferCancel:
    """``foc``: the offer is no longer active (cancelled or fully executed)."""

    offer: FundingOffer


# Snapshots of wallets, credits and loans skip a bad row rather than lose the frame: ``skipped`` says why each
# row was left out (row index and error), for the log; the rows that decoded are applied.


@attrs.frozen
class WalletsSnapshot:
    """``ws``: every wallet the auth filter lets through."""

    wallets: tuple[Wallet, ...]
    skipped: tuple[str, ...] = ()


@attrs.frozen
class WalletUpdate:
    """``wu``: one wallet changed, or a ``calc`` answer carrying its available balance."""

    wallet: Wallet


@attrs.frozen
class CreditsSnapshot:
    """``fcs``."""

    credits: tuple[FundingCredit, ...]
    skipped: tuple[str, ...] = ()


@attrs.frozen
class CreditNew:
    """``fcn``: an offer executed into funding used in a position."""

    credit: FundingCredit


@attrs.frozen
class CreditUpdate:
    """``fcu``."""

    credit: FundingCredit


@attrs.frozen
class CreditClose:
    """``fcc``: the credit ended (repaid, closed or expired)."""

    credit: FundingCredit


@attrs.frozen
class LoansSnapshot:
    """``fls``."""

    loans: tuple[FundingLoan, ...]
    skipped: tuple[str, ...] = ()


@attrs.frozen
class LoanNew:
    """``fln``: an offer executed into funding not used in a position."""

    loan: FundingLoan


@attrs.frozen
class LoanUpdate:
    """``flu``."""

    loan: FundingLoan


@attrs.frozen
class LoanClose:
    """``flc``."""

    loan: FundingLoan


@attrs.frozen
class Ignored:
    """Channel traffic bfxd accepts and does not use (orders, positions, trades, public channels…)."""

    chan_id: int
    kind: str


ExchangeEvent = (
    Info | ServerRestarting | MaintenanceStarted | MaintenanceEnded | InfoMessage | ConfAck | AuthOk | AuthFailed
    | ErrorEvent | Pong | Heartbeat | Notification | OffersSnapshot | OfferNew | OfferUpdate | OfferCancel | Ignored
    | WalletsSnapshot | WalletUpdate | CreditsSnapshot | CreditNew | CreditUpdate | CreditClose | LoansSnapshot
    | LoanNew | LoanUpdate | LoanClose
)
WalletEvent = WalletsSnapshot | WalletUpdate
CreditEvent = CreditsSnapshot | CreditNew | CreditUpdate | CreditClose
LoanEvent = LoansSnapshot | LoanNew | LoanUpdate | LoanClose


# ---- client → exchange (decoded by the simulator) ------------------------------------------------------


@attrs.frozen
class AuthRequest:
    api_key: str
    signature: str = attrs.field(repr=False)
    nonce: str
    payload: str
    filter: tuple[str, ...] | None
    dms: int | None


@attrs.frozen
class PingEvent:
    cid: Any


@attrs.frozen
class ConfRequest:
    flags: int


@attrs.frozen
class CancelOfferInput:
    """``[0, "foc", null, {"id": ID}]``; ``offer_id`` is None when the payload has no usable id."""

    offer_id: int | None


@attrs.frozen
class NewOfferInput:
    type: str
    symbol: str
    amount: str
    rate: str
    period: int
    flags: int


@attrs.frozen
class CalcInput:
    """``[0, "calc", null, [["wallet_funding_USD"], …]]``: the calculation keys asked for, in order."""

    requests: tuple[str, ...]


@attrs.frozen
class OtherInput:
    """An input frame this core does not model (``oc``, ``on``, …)."""

    kind: str
    payload: Any = attrs.field(eq=False, hash=False)


ClientEvent = (
    AuthRequest | PingEvent | ConfRequest | CancelOfferInput | NewOfferInput | CalcInput | OtherInput
)
