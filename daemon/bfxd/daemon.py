"""The daemon: every actor in one nursery, the channels between inbox and exchange side, and the stop sequence.

Channels (all opened here, by ``open_channels``; ``status`` shows each one's size and peak use)::

    inbox ──commands──▶ account ──frames──▶ connection (writer) ──▶ exchange
                          ▲   ▲                │ (reader)
                          │   └──to_account────┤ notifications, offers, LinkDown
                          │                    ▼
                          └──to_account─── auth ◀──to_auth── LinkUp/LinkDown, info, auth replies
                                  │ frames (auth), relinks ──▶ connection

Start-up: the socket is bound first (so a second daemon is refused before anything else happens), then the
exchange side and the inbox start, then systemd hears ``READY=1``: clients may connect while the exchange is
still connecting; their requests wait for a ready session within their deadlines.

Stop (``stop`` set by a signal): the board says ``stopping``, systemd hears ``STOPPING=1``, the inbox stops
accepting and drains (inbox.py), then closes the command channel; the account router answers what is left and
returns; the link closes with a close frame. A backstop deadline cancels whatever is still running after that.
"""

from __future__ import annotations

import gc
import time
from collections.abc import Awaitable, Callable
from functools import partial
from pathlib import Path
from typing import Any

import structlog
import trio

from bfxd.actors.api import AccountClient
from bfxd.actors.channels import ChannelBoard
from bfxd.actors.connection import LinkSettings
from bfxd.actors.inbox import run_inbox
from bfxd.actors.session import SessionBoard, SessionSnapshot
from bfxd.config import Config
from bfxd.credentials import Credentials
from bfxd.daemon_metrics import DaemonMetrics
from bfxd.exchange import ExchangeChannels, run_exchange_side
from bfxd.live import LiveSettings
from bfxd.metrics_http import open_metrics_listeners, serve_metrics
from bfxd.reload import follow_reloads
from bfxd.settings import account_settings, auth_settings, inbox_settings, link_settings
from bfxd.systemd import Notifier, run_watchdog
from bfxd.unix_socket import open_unix_listener

log = structlog.get_logger()

# How long the router may take to answer the watchdog's probe before it counts as wedged.
_PROBE_BUDGET_S = 1.0
# Added to the drain periods before the backstop cancels the stop sequence.
_STOP_SLACK_S = 5.0


def open_channels(board: ChannelBoard) -> tuple[Any, ExchangeChannels]:
    """Every long-lived channel between actors, with its size and the reason for it."""
    commands = board.open("commands", 1024, "inbox -> router. Room for a burst from many clients at once: a "
                          "request's input goes in without its task waiting (with no room, each of 100 busy clients' "
                          "requests parked and woke once more); beyond it, requests wait (backpressure). The router "
                          "refuses what waited past its deadline (not_ready, nothing sent).")
    frames = board.open("frames", 64, "auth + router -> the link's writer. The router keeps its own backlog "
                        "rather than block; 64 absorbs a cancel_all burst while the writer catches up.")
    to_auth = board.open("to_auth", 16, "connection -> auth: LinkUp/LinkDown and the few auth events of a link.")
    to_account = board.open("to_account", 256, "connection + auth -> router. The router never blocks, so this "
                            "only absorbs bursts (a snapshot is one message) and keeps the reader from waiting.")
    relinks = board.open("relinks", 4, "auth -> connection: 'replace link N'; one or two per link at most.")
    return commands, ExchangeChannels(frames=frames, to_auth=to_auth, to_account=to_account, relinks=relinks)


async def run_daemon(
    config: Config,
    credentials: Credentials,
    *,
    stop: trio.Event,
    notifier: Notifier | None = None,
    watchdog_period: float | None = None,
    link: LinkSettings | None = None,
    reloads: trio.MemoryReceiveChannel[Config] | None = None,
    metrics: DaemonMetrics | None = None,
    listener: trio.SocketListener | None = None,
    task_status: trio.TaskStatus[SessionBoard] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Serve until *stop* is set and everything has drained. ``task_status.started`` once the socket listens.

    *link* replaces the link settings derived from *config* (tests relax the connection rate guard with it).
    *reloads* brings the configurations a SIGHUP read (reload.py); each goes through ``_apply_config``, then
    systemd hears ``READY=1``. *metrics* is created here when not given. *listener* is a listening socket
    handed over by socket activation: served as is instead of binding ``[socket] path``, and never unlinked.
    """
    notifier = notifier or Notifier(env={})
    board = SessionBoard()
    metrics = metrics or DaemonMetrics()
    metrics.attach(board)
    metrics_listeners = await _open_metrics(config)
    inherited = listener is not None
    listener = listener or open_unix_listener(config.socket.path, mode=config.socket.mode)
    socket_name = listener.socket.getsockname() if inherited else str(config.socket.path)
    channels = ChannelBoard()
    (commands_in, commands_out), exchange_channels = open_channels(channels)
    account = AccountClient(commands_in, board, channels)
    inbox = LiveSettings(inbox_settings(config))

    async def apply_config(new: Config) -> None:
        """A reloaded configuration (keys that need a restart already reset to their running values); the log
        level is live already (reload.py)."""
        inbox.value = inbox_settings(new)
        await account.set_pace(account_settings(new))
        log.info("daemon.config_applied", allowed_uids=list(new.socket.allowed_uids),
                 request_timeout=new.requests.timeout, inputs_per_second=new.exchange.inputs_per_second,
                 input_burst=new.exchange.input_burst)
    inbox_exited = trio.Event()  # the watchdog withholds pings once the inbox is gone

    async def probe() -> list[str]:
        stale = ["inbox"] if inbox_exited.is_set() else []
        stale += _exchange_side_stale(board.snapshot(), config)
        with trio.move_on_after(_PROBE_BUDGET_S) as scope:
            await account.probe()  # through the same channel a cancel takes
        return [*stale, "account"] if scope.cancelled_caught else stale

    async with trio.open_nursery() as helpers:
        helpers.start_soon(_publish_status, board, notifier)
        if metrics_listeners:
            await helpers.start(serve_metrics, metrics_listeners, metrics.render)
        if reloads is not None:
            helpers.start_soon(follow_reloads, reloads, apply_config, notifier, partial(_status_line, board))
        if watchdog_period is not None and notifier.enabled:
            await helpers.start(partial(run_watchdog, notifier, period=watchdog_period, probe=probe))
        async with trio.open_nursery() as core:
            await core.start(partial(run_exchange_side, link=link or link_settings(config),
                                     auth=auth_settings(config, credentials), account=account_settings(config),
                                     board=board, commands=commands_out,
                                     channels=exchange_channels))
            await core.start(_run_then_set, partial(
                run_inbox, listener, account=account, commands=commands_in, settings=inbox, stop=stop,
                metrics=metrics),
                inbox_exited)
            # Everything allocated so far lives as long as the daemon: keep the cyclic GC from rescanning it
            # (full collections otherwise walk every module and class, a latency spike of milliseconds).
            gc.freeze()
            notifier.ready(_status_line(board))
            log.info("daemon.ready", socket=socket_name, socket_activated=inherited, url=config.exchange.url,
                     key_fingerprint=credentials.api_key.fingerprint(), credentials=credentials.source)
            task_status.started(board)
            await stop.wait()
            board.set_state("stopping")
            notifier.stopping()
            core.cancel_scope.deadline = trio.current_time() + (
                config.requests.shutdown_grace + inbox.value.flush_timeout + _STOP_SLACK_S)
        helpers.cancel_scope.cancel()
    if not inherited:  # an inherited socket's file is the service manager's; it keeps clients waiting meanwhile
        _unlink_quietly(config.socket.path)
    log.info("daemon.stopped")


async def _open_metrics(config: Config) -> list[trio.SocketListener]:
    if config.metrics.listen is None:
        return []
    listeners = await open_metrics_listeners(config.metrics.listen)
    log.info("metrics.listening", listen=str(config.metrics.listen),
             addresses=[listener.socket.getsockname() for listener in listeners])
    return listeners


async def _run_then_set(run: Callable[..., Awaitable[None]], done: trio.Event, *,
                        task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
    try:
        await run(task_status=task_status)
    finally:
        done.set()


def _exchange_side_stale(snapshot: SessionSnapshot, config: Config) -> list[str]:
    """Actors of the exchange side that are stuck, judged from the board (an outage is not "stuck").

    Dialling and authenticating are bounded by their own timeouts; a ready link hears a frame at least every
    15 s, and the heartbeat actor replaces it after heartbeat_timeout. Twice those bounds, with slack, means
    the actor itself no longer makes progress.
    """
    stale = []
    waited = time.time() - snapshot.since
    bound = 2 * (config.exchange.connect_timeout + config.exchange.auth_timeout) + _STOP_SLACK_S
    if snapshot.state in ("connecting", "authenticating") and waited > bound:
        stale.append(f"connection ({snapshot.state} for {waited:.0f} s)")
    age = snapshot.last_message_age_s
    if snapshot.state == "ready" and age is not None and age > 2 * config.exchange.heartbeat_timeout + _STOP_SLACK_S:
        stale.append(f"heartbeat (no frame for {age:.0f} s on a ready link)")
    return stale


def _status_line(board: SessionBoard) -> str:
    snap = board.snapshot()
    text = f"{snap.state}, {snap.offers} offers, {snap.pending} pending"
    return f"{text} ({snap.detail})" if snap.detail else text


async def _publish_status(board: SessionBoard, notifier: Notifier) -> None:
    """STATUS= follows the session state (on changes only, not on every tick)."""
    version = board.snapshot().version
    while True:
        await board.wait_changed(version)
        version = board.snapshot().version
        notifier.status(_status_line(board))
        log.info("daemon.state", state=board.state, detail=board.snapshot().detail)


def _unlink_quietly(path: Path) -> None:
    try:
        path.unlink()
    except OSError:
        pass
