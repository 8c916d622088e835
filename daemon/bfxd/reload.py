"""SIGHUP: read the configuration again, keep the old one if the new one is bad, hand a good one to the daemon.

What a reload changes, and what needs a restart:

- applied live: ``[log] level`` (here, at once); ``[socket] allowed_uids``, ``[access]``, ``[requests]``,
  ``[exchange]`` timeouts and ``[reconnect]`` (handed to the daemon, which pushes them into its actors);
- kept from the running configuration, with a ``config.reload_needs_restart`` warning naming each key that
  changed: the exchange URL and credential files (the session is authenticated with them), the socket's
  path, mode and client limit (the socket is bound), ``[log] format`` and ``[metrics]`` (bound at start).

The systemd side (systemd.md §1, §7): ``RELOADING=1`` with ``MONOTONIC_USEC`` in one datagram when the signal
arrives, ``READY=1`` once the daemon runs with the new settings (``daemon.py`` sends it after applying) or at
once when the file was refused (the daemon carries on, unchanged). The file is read synchronously inside the
event loop: a few kilobytes, once per operator action.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import attrs
import structlog
import trio

from bfxd.config import Config, config_as_dict, config_warnings
from bfxd.errors import ConfigError
from bfxd.loglevel import set_log_level
from bfxd.systemd import Notifier

__all__ = ["RESTART_KEYS", "Reloader", "changed_keys", "follow_reloads", "split_reload"]

RESTART_KEYS = frozenset({
    ("exchange", "url"), ("exchange", "api_key_file"), ("exchange", "api_secret_file"),
    ("socket", "path"), ("socket", "mode"), ("socket", "max_clients"),
    ("log", "format"), ("metrics", "listen"), ("metrics", "allow_remote"),
})
# Reloads waiting for the daemon to take them; more than this means it is stuck, and the reload is refused.
UPDATE_BUFFER = 4


def changed_keys(old: Config, new: Config) -> list[str]:
    """``section.key`` of every value that differs, in config order."""
    before, after = config_as_dict(old), config_as_dict(new)
    return [f"{section}.{key}" for section, table in after.items() for key, value in table.items()
            if before[section][key] != value]


def split_reload(old: Config, new: Config) -> tuple[Config, list[str]]:
    """The configuration to run with (*new*, except the keys only a restart can change, kept from *old*) and
    the keys that changed but need a restart."""
    kept = [key for key in changed_keys(old, new) if tuple(key.split(".", 1)) in RESTART_KEYS]
    sections = {}
    for field in attrs.fields(Config):
        section = field.name
        fixed = {key: getattr(getattr(old, section), key) for (sec, key) in RESTART_KEYS if sec == section}
        sections[section] = attrs.evolve(getattr(new, section), **fixed) if fixed else getattr(new, section)
    return Config(**sections), kept


class Reloader:
    """Called by the signal watcher on SIGHUP (synchronously: it never waits).

    *load* reads the configuration the same way the daemon's start did (same file, environment and flags).
    Good configurations go to *updates*, the daemon's end of which is ``run_daemon(reloads=...)``.
    """

    def __init__(self, load: Callable[[], Config], current: Config, notifier: Notifier,
                 updates: trio.MemorySendChannel[Config]) -> None:
        self._load, self.current, self._notifier, self._updates = load, current, notifier, updates

    def __call__(self) -> None:
        log = structlog.get_logger()
        self._notifier.reloading()
        log.info("config.reloading")
        try:
            loaded = self._load()
        except ConfigError as exc:
            log.error("config.reload_failed", error=str(exc), kept="the running configuration")
            self._notifier.ready("reload refused: " + str(exc))
            return
        new, needs_restart = split_reload(self.current, loaded)
        if needs_restart:
            log.warning("config.reload_needs_restart", keys=needs_restart,
                        advice="these keep their running values until the daemon restarts")
        changed = changed_keys(self.current, new)
        try:
            self._updates.send_nowait(new)
        except (trio.WouldBlock, trio.BrokenResourceError, trio.ClosedResourceError):
            log.error("config.reload_failed", error="the daemon has not taken the previous reload yet",
                      kept="the running configuration")
            self._notifier.ready()
            return
        # Logged before the new level applies, so that the change itself is on record either way.
        log.info("config.reloaded", changed=changed)
        for warning in config_warnings(new):
            log.warning("config.warning", warning=warning)
        set_log_level(new.log.level)
        self.current = new


async def follow_reloads(
    reloads: trio.MemoryReceiveChannel[Config],
    apply: Callable[[Config], Awaitable[None]],
    notifier: Notifier,
    status: Callable[[], str],
) -> None:
    """The daemon's side: ``await apply(config)`` for each reloaded configuration, then ``READY=1``.

    Runs until *reloads* is closed or the task is cancelled. An exception from *apply* propagates (a bug).
    """
    async for config in reloads:
        await apply(config)
        notifier.ready(status())
