"""bfxd's sans-I/O core: the Bitfinex WebSocket v2 wire format and the local socket protocol.

Text in, typed events out; events in, text out. No Trio, no sockets, no clock, no randomness, no logging:
everything that varies (time, nonces, ids) is an argument. Errors: ``RemoteProtocolError`` when the other side
sent something unusable, ``LocalProtocolError`` when our own code asked for something the protocol forbids.
"""

from bfxd.errors import LocalProtocolError, RemoteProtocolError
from bfxd.protocol.account_books import CreditBook, CreditChange, LoanBook, LoanChange, WalletBook, WalletChange
from bfxd.protocol.book import OfferBook, OfferChange
from bfxd.protocol.decode import decode_client_frame, decode_exchange_frame, decode_exchange_message, load_json
from bfxd.protocol.encode import (
    CALCS_PER_SECOND,
    DEFAULT_AUTH_FILTER,
    MAX_CALC_REQUESTS,
    auth_frame,
    auth_signature,
    calc_frame,
    cancel_offer_frame,
    conf_frame,
    new_offer_frame,
    ping_frame,
)
from bfxd.protocol.events import *  # noqa: F403  (the event types are the module's vocabulary)
from bfxd.protocol.funding import FundingCredit, FundingLoan
from bfxd.protocol.nonce import MAX_NONCE, NonceSource
from bfxd.protocol.offer import FundingOffer, is_active_status
from bfxd.protocol.sequence import SEQ_ALL, SequenceCheck, SequenceNumbers, SequenceVerdict, sequence_numbers
from bfxd.protocol.wallet import Wallet, calc_request

__all__ = [
    "CALCS_PER_SECOND",
    "DEFAULT_AUTH_FILTER",
    "MAX_CALC_REQUESTS",
    "MAX_NONCE",
    "SEQ_ALL",
    "CreditBook",
    "CreditChange",
    "FundingCredit",
    "FundingLoan",
    "FundingOffer",
    "LoanBook",
    "LoanChange",
    "LocalProtocolError",
    "NonceSource",
    "OfferBook",
    "OfferChange",
    "RemoteProtocolError",
    "SequenceCheck",
    "SequenceNumbers",
    "SequenceVerdict",
    "Wallet",
    "WalletBook",
    "WalletChange",
    "auth_frame",
    "auth_signature",
    "calc_frame",
    "calc_request",
    "cancel_offer_frame",
    "conf_frame",
    "decode_client_frame",
    "decode_exchange_frame",
    "decode_exchange_message",
    "is_active_status",
    "load_json",
    "new_offer_frame",
    "ping_frame",
    "sequence_numbers",
]
