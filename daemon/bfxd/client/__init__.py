"""The client library of bfxd: talk to the daemon's socket from a bot, blocking or with asyncio.

    from bfxd.client import Client

    with Client() as bfxd:  # $BFXD_SOCKET, else /run/bfxd/bfxd.sock
        for offer in bfxd.offers("fUSD"):
            print(offer.id, offer.amount, offer.rate)

``Client`` blocks; ``AsyncClient`` has the same methods for asyncio. Standard library only: importing this
package imports neither Trio nor asyncio (``AsyncClient`` loads asyncio, and the result classes dataclasses,
when first named or used). Results are frozen
dataclasses (``bfxd.client.models``), amounts and rates ``Decimal``; errors are ``BfxdError`` subclasses, one
per error type of the protocol (``bfxd.client.errors``). The protocol itself is described, as a JSON Schema
(2020-12) of every request, answer and event, by ``schema()``.
"""

from __future__ import annotations

from bfxd.client.codec import DEFAULT_SOCKET, DEFAULT_TIMEOUT, PROTOCOLS
from bfxd.client.errors import (
    BadAnswer,
    BadRequest,
    BfxdError,
    Busy,
    ConnectionLost,
    DaemonUnreachable,
    ExchangeError,
    Forbidden,
    NoAnswer,
    NotActive,
    NotConfirmed,
    NotReady,
    NotSent,
    ProtocolMismatch,
    RequestTimeout,
    ShuttingDown,
    UnknownOp,
)
from bfxd.client.sync import Client, Watch

TYPE_CHECKING = False  # typing costs ~10 ms to import, and bfxctl feels every one of them
if TYPE_CHECKING:
    from typing import Any

    from bfxd.client.aio import AsyncClient, AsyncWatch
    from bfxd.client.events import (
        CreditEvent,
        Event,
        LoanEvent,
        NotificationEvent,
        OfferEvent,
        StateEvent,
        UnknownEvent,
        WalletEvent,
        WatchEnded,
    )

# Loaded when first named: asyncio, and dataclasses (with the inspect module it imports), cost tens of
# milliseconds each, which `bfxctl status` must not pay.
_LAZY = {"AsyncClient": "aio", "AsyncWatch": "aio", "CancelResult": "models", "Credit": "models",
         "Hello": "models", "Loan": "models", "Offer": "models", "ReplaceResult": "models", "Status": "models",
         "SubmitResult": "models", "Wallet": "models", "CreditEvent": "events", "Event": "events",
         "LoanEvent": "events", "NotificationEvent": "events", "OfferEvent": "events", "StateEvent": "events",
         "UnknownEvent": "events", "WalletEvent": "events", "WatchEnded": "events"}

__all__ = [
    "DEFAULT_SOCKET", "DEFAULT_TIMEOUT", "PROTOCOLS", "AsyncClient", "AsyncWatch", "BadAnswer", "BadRequest",
    "BfxdError", "Busy", "CancelResult", "Client", "ConnectionLost", "Credit", "CreditEvent", "DaemonUnreachable",
    "Event", "ExchangeError", "Forbidden", "Hello", "Loan", "LoanEvent", "NoAnswer", "NotActive", "NotConfirmed",
    "NotReady", "NotSent", "NotificationEvent", "Offer", "OfferEvent", "ProtocolMismatch", "ReplaceResult",
    "RequestTimeout", "ShuttingDown", "StateEvent", "Status", "SubmitResult", "UnknownEvent", "UnknownOp",
    "Wallet", "WalletEvent", "Watch", "WatchEnded", "schema",
]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(f"bfxd.client.{_LAZY[name]}"), name)
    raise AttributeError(f"module 'bfxd.client' has no attribute {name!r}")


def schema() -> dict[str, Any]:
    """The protocol as a JSON Schema (2020-12): ``$defs`` holds every request, answer and event."""
    import json
    from importlib.resources import files

    return json.loads(files(__package__).joinpath("schema.json").read_text())
