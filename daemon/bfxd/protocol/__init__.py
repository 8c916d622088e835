"""bfxd's sans-I/O core: the Bitfinex WebSocket v2 wire format and the local socket protocol.

Text in, typed events out; events in, text out. No Trio, no sockets, no clock, no randomness, no logging:
everything that varies (time, nonces, ids) is an argument. Errors: ``RemoteProtocolError`` when the other side
sent something unusable, ``LocalProtocolError`` when our own code asked for something the protocol forbids.
"""

from bfxd.errors import LocalProtocolError, RemoteProtocolError
from bfxd.protocol.book import OfferBook, OfferChange
from bfxd.protocol.decode import decode_client_frame, decode_exchange_frame, decode_exchange_message
from bfxd.protocol.encode import (
    DEFAULT_AUTH_FILTER,
    auth_frame,
    auth_signature,
    cancel_offer_frame,
    new_offer_frame,
    ping_frame,
)
from bfxd.protocol.events import *  # noqa: F403  (the event types are the module's vocabulary)
from bfxd.protocol.nonce import MAX_NONCE, NonceSource
from bfxd.protocol.offer import FundingOffer, is_active_status

__all__ = [
    "DEFAULT_AUTH_FILTER",
    "MAX_NONCE",
    "FundingOffer",
    "LocalProtocolError",
    "NonceSource",
    "OfferBook",
    "OfferChange",
    "RemoteProtocolError",
    "auth_frame",
    "auth_signature",
    "cancel_offer_frame",
    "decode_client_frame",
    "decode_exchange_frame",
    "decode_exchange_message",
    "is_active_status",
    "new_offer_frame",
    "ping_frame",
]
