"""A log level that can change while the daemon runs (SIGHUP reload), at no cost per log call.

structlog's ``make_filtering_bound_logger(level)`` builds a class whose methods below the level are no-ops, and
``cache_logger_on_first_use`` keeps every logger bound to that class for ever. So the wrapper class here is one
class of bfxd's own whose methods are *replaced* by those of the filtering class for the new level: every
logger, cached ones included, follows at once, and a filtered-out call stays a call to a no-op.
"""

from __future__ import annotations

import structlog

__all__ = ["live_level_wrapper", "set_log_level"]

_wrapper: type | None = None


def _take_methods(cls: type, level: str) -> None:
    target = structlog.make_filtering_bound_logger(level)
    for name, value in vars(target).items():
        if not name.startswith("__"):
            setattr(cls, name, value)


def live_level_wrapper(level: str) -> type:
    """A fresh wrapper class filtering at *level* (structlog's ``wrapper_class``); set_log_level moves it."""
    global _wrapper
    base = structlog.make_filtering_bound_logger("debug")
    _wrapper = type("BoundLoggerLiveLevel", (base,), {})
    _take_methods(_wrapper, level)
    return _wrapper


def set_log_level(level: str) -> None:
    """Filter at *level* from now on, in every logger configured through live_level_wrapper."""
    if _wrapper is None:
        raise RuntimeError("logging is not configured with live_level_wrapper")
    _take_methods(_wrapper, level.lower())
