"""The errors bfxd raises on purpose. A leaf module: it imports nothing from bfxd.

Names follow h11/wsproto: a *Remote* error means the other side (the exchange or a client) sent something we
cannot use (log it, answer it, carry on); a *Local* error means our own code tried something the protocol
forbids (a bug: let it crash loudly). Messages never contain secret values.
"""

from decimal import Decimal


class BfxdError(Exception):
    """Base class for errors bfxd raises on purpose."""


class ConfigError(BfxdError):
    """Configuration or credentials unusable; the daemon exits 78 (EX_CONFIG)."""


class ProtocolError(BfxdError):
    """Base class for wire-format errors."""


class RemoteProtocolError(ProtocolError):
    """The exchange or a client sent something we cannot use. The message carries a short excerpt."""


class LocalProtocolError(ProtocolError):
    """We tried to produce something the protocol forbids (a bug)."""


def excerpt(value: object, limit: int = 80) -> str:
    """A short, printable excerpt of *value* for error messages (never the whole frame)."""
    text = value if isinstance(value, str) else str(value) if isinstance(value, Decimal) else repr(value)
    if isinstance(value, (bytes, bytearray)):
        text = repr(bytes(value[: limit + 1]))
    return text if len(text) <= limit else text[:limit] + "…"
