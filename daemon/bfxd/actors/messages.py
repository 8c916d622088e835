"""What the actors say to each other over their channels. Plain frozen values; no behaviour."""

from __future__ import annotations

from typing import Any

import attrs
import trio

from bfxd.protocol import FundingOffer, Notification
from bfxd.protocol.book import OfferChange
from bfxd.protocol.events import ExchangeEvent

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
    successor (an input before auth would be refused). ``log`` holds the audit fields of ``frame.sent``;
    ``secret`` marks frames whose text must never be logged (auth)."""

    generation: int
    text: str
    kind: str
    log: dict[str, Any] = attrs.field(factory=dict)


# ---- inbox → account -----------------------------------------------------------------------------------


@attrs.frozen
class FrameSent:
    """Progress report on a cancel: its ``foc`` frame was handed to the link (sent once, even if resent)."""


@attrs.frozen
class Answered:
    """The exchange answered with a ``foc-req`` notification (SUCCESS, ERROR or FAILURE)."""

    notification: Notification

    @property
    def succeeded(self) -> bool:
        return self.notification.succeeded


@attrs.frozen
class NoLongerActive:
    """The link dropped after the frame was sent, and the fresh snapshot no longer lists the offer."""

    offer_id: int


@attrs.frozen
class ShuttingDown:
    """The daemon stopped before the exchange answered."""


CancelOutcome = Answered | NoLongerActive | ShuttingDown
CancelProgress = FrameSent | CancelOutcome


@attrs.frozen
class CancelCommand:
    offer_id: int
    request_id: str
    # capacity 2: at most one FrameSent and one outcome are ever sent, so the router never blocks on it.
    reply: trio.MemorySendChannel[CancelProgress]


@attrs.frozen
class OffersQuery:
    symbol: str | None
    reply: trio.MemorySendChannel[list[FundingOffer]]  # capacity 1


@attrs.frozen
class Subscribe:
    """Register a watcher; it receives WatchEvents until it lags or closes its end."""

    events: trio.MemorySendChannel[WatchEvent]


@attrs.frozen
class Probe:
    """Liveness check for the watchdog: the router answers at once if its loop turns."""

    reply: trio.MemorySendChannel[None]  # capacity 1


AccountCommand = CancelCommand | OffersQuery | Subscribe | Probe


# ---- account → watchers --------------------------------------------------------------------------------


@attrs.frozen
class OfferWatchEvent:
    change: OfferChange


@attrs.frozen
class NotificationWatchEvent:
    notification: Notification


@attrs.frozen
class WatcherCutOff:
    """Last event a lagging watcher receives before its channel closes."""

    reason: str


WatchEvent = OfferWatchEvent | NotificationWatchEvent | WatcherCutOff
