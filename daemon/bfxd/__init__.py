"""bfxd: one authenticated Bitfinex WebSocket session shared by local clients over a Unix socket."""

# The version is looked up only when asked for: importlib.metadata costs ~50 ms, and bfxctl's start-up time
# is felt on every call.


def __getattr__(name: str) -> str:
    if name == "__version__":
        from importlib.metadata import PackageNotFoundError, version

        try:
            return version("bfxd")
        except PackageNotFoundError:  # running from a source tree that was not installed
            return "0.0.0"
    raise AttributeError(f"module 'bfxd' has no attribute {name!r}")
