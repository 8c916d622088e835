"""What the actors say to each other over their channels. Plain frozen values; no behaviour."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

import attrs
import trio

from bfxd.actors.channels import OneShot
from bfxd.protocol import FundingOffer, Notification
from bfxd.protocol.account_books import (
    CreditBook,
    CreditChange,
    LoanBook,
    LoanChange,
    WalletBook,
    WalletChange,
)
from bfxd.protocol.book import OfferBook, OfferChange
from bfxd.protocol.client_wire import event_line
from bfxd.protocol.events import ExchangeEvent
from bfxd.protocol.input_kinds import InputSpec, Outcome

# ---- connection → auth / account ------------------------------------------------------------------------


@attrs.frozen
class LinkUp:
    """A new WebSocket link is open; *generation* numbers links from 1, so stale messages can be told apart."""

    generation: int


@attrs.frozen
class LinkDown:
    generation: int
    reason: str


@attrs.frozen
class FromLink:
    """One decoded exchange event, tagged with the link it came from."""

    generation: int
    event: ExchangeEvent


# ---- auth → account ------------------------------------------------------------------------------------


@attrs.frozen
class SessionReady:
    """Link *generation* is authenticated and not in maintenance: inputs may be sent on it."""

    generation: int


@attrs.frozen
class SessionHeld:
    """Inputs must wait (maintenance, or the link is being replaced)."""

    generation: int
    reason: str


# ---- auth → connection ---------------------------------------------------------------------------------


@attrs.frozen
class Relink:
    """Close link *generation* and open a new one after *delay* seconds (None: the usual backoff)."""

    generation: int
    reason: str
    delay: float | None = None


# ---- anyone → connection writer ------------------------------------------------------------------------


@attrs.frozen
class OutboundFrame:
    """A frame for link *generation* only: a frame meant for a dead link is dropped, never sent on its
    successor (an input before auth would be refused). ``log`` holds the audit fields of ``frame.sent``: the
    text itself is never logged (the auth frame carries a signature)."""

    generation: int
    text: str
    kind: str
    log: dict[str, Any] = attrs.field(factory=dict)


# ---- inbox → account -----------------------------------------------------------------------------------


@attrs.define(eq=False)
class Requester:
    """One request's handle in the input machine: the router delivers its one outcome on *reply*."""

    request_id: str
    reply: OneShot[Outcome]  # one outcome is all it is ever sent: the router never blocks on it


@attrs.frozen
class InputCommand:
    """Send an exchange input for *requester*; the machine settles it by *deadline* (trio time) at the latest."""

    requester: Requester
    spec: InputSpec
    deadline: float


@attrs.frozen
class InputBatch:
    """Several inputs handed over at once (a cancel_all): one hand-over instead of one per input."""

    commands: tuple[InputCommand, ...]


@attrs.frozen
class Read:
    """Answer *query* over the router's live state (the offer book…) on *reply*, at once."""

    query: Callable[[AccountView], Any]
    reply: trio.MemorySendChannel[Any]  # capacity 1


class AccountView(Protocol):
    """What a ``Read`` query may look at."""

    @property
    def book(self) -> OfferBook: ...

    @property
    def wallets(self) -> WalletBook: ...

    @property
    def credits(self) -> CreditBook: ...

    @property
    def loans(self) -> LoanBook: ...


@attrs.frozen
class ReadSynced:
    """Answer *query* on *reply* once book *book* (``wallets``, ``credits``, ``loans``) holds the snapshot of a
    link that is up: at once if it does. The requester gives up at its deadline (its reply end closes)."""

    book: str
    query: Callable[[AccountView], Any]
    reply: trio.MemorySendChannel[Any]  # capacity 1


@attrs.frozen
class RequestCalc:
    """Ask the exchange for funding wallets' available balances (``calc``), under the calc and input paces.
    *refresh*: every funding wallet; else only those whose available balance is unknown. No answer."""

    refresh: bool


@attrs.frozen
class AwaitGone:
    """Answer on *reply* once offer *offer_id* is off the book: with its last state (None if it was never on it)."""

    offer_id: int
    reply: trio.MemorySendChannel[FundingOffer | None]  # capacity 1


@attrs.frozen
class SetPace:
    """A reloaded config's input pace."""

    per_second: float
    burst: int


@attrs.frozen
class Subscribe:
    """Register a watcher; it receives WatchEvents until it lags or closes its end."""

    events: trio.MemorySendChannel[WatchEvent]


@attrs.frozen
class Probe:
    """Liveness check for the watchdog: the router answers at once if its loop turns."""

    reply: trio.MemorySendChannel[None]  # capacity 1


AccountCommand = (InputCommand | InputBatch | Read | ReadSynced | RequestCalc | AwaitGone | SetPace | Subscribe
                  | Probe)


# ---- account → watchers --------------------------------------------------------------------------------


# Each carries its watch line, rendered once by the router for every watcher (a hundred watchers must not
# mean a hundred JSON encodings of the same event).


@attrs.frozen
class OfferWatchEvent:
    change: OfferChange
    line: bytes = attrs.field(default=b"", eq=False, repr=False)

    @classmethod
    def rendered(cls, change: OfferChange) -> OfferWatchEvent:
        return cls(change, event_line("offer", action=change.action, offer=change.offer.to_json()))


@attrs.frozen
class LinesWatchEvent:
    """Several watch lines as one item (a snapshot's offers): a watcher takes them in one turn."""

    line: bytes = attrs.field(repr=False)


@attrs.frozen
class NotificationWatchEvent:
    notification: Notification
    line: bytes = attrs.field(default=b"", eq=False, repr=False)

    @classmethod
    def rendered(cls, note: Notification) -> NotificationWatchEvent:
        offer = note.offer.to_json() if note.offer is not None else None
        return cls(note, event_line("notification", type=note.type, status=note.status, text=note.text,
                                    mts=note.mts, offer_id=note.offer_id, offer=offer))


@attrs.frozen
class AccountWatchEvent:
    """A wallet, credit or loan change: ``{"event": "wallet" | "credit" | "loan", "action": …, …}``."""

    change: WalletChange | CreditChange | LoanChange
    line: bytes = attrs.field(default=b"", eq=False, repr=False)

    @classmethod
    def rendered(cls, change: WalletChange | CreditChange | LoanChange) -> AccountWatchEvent:
        return cls(change, event_line(**change.to_json()))


@attrs.frozen
class WatcherCutOff:
    """Last event a lagging watcher receives before its channel closes."""

    reason: str


WatchEvent = OfferWatchEvent | LinesWatchEvent | NotificationWatchEvent | AccountWatchEvent | WatcherCutOff
