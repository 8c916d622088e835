"""bfxd: one authenticated Bitfinex WebSocket session shared by local clients over a Unix socket."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("bfxd")
except PackageNotFoundError:  # running from a source tree that was not installed
    __version__ = "0.0.0"
