"""The exchange side of the daemon: the connection, auth and account actors, wired with the channels that
``daemon.py`` opens (the topology, sizes and reasons are listed there).

Stopping drains rather than cancels: when *commands* ends, the account router answers what is left and
returns; then the link is closed politely (close frame 1000) and the connection and auth actors return.
"""

from __future__ import annotations

from functools import partial
from typing import Any

import attrs
import trio

from bfxd.actors.account import AccountSettings, run_account
from bfxd.actors.auth import AuthSettings, run_auth
from bfxd.actors.connection import LinkSettings, run_connection
from bfxd.actors.session import SessionBoard


@attrs.frozen
class ExchangeChannels:
    """Both ends of each exchange-side channel (daemon.py opens them)."""

    frames: tuple[trio.MemorySendChannel[Any], trio.MemoryReceiveChannel[Any]]
    to_auth: tuple[trio.MemorySendChannel[Any], trio.MemoryReceiveChannel[Any]]
    to_account: tuple[trio.MemorySendChannel[Any], trio.MemoryReceiveChannel[Any]]
    relinks: tuple[trio.MemorySendChannel[Any], trio.MemoryReceiveChannel[Any]]


async def run_exchange_side(
    *,
    link: LinkSettings,
    auth: AuthSettings,
    account: AccountSettings,
    board: SessionBoard,
    commands: trio.MemoryReceiveChannel[Any],
    channels: ExchangeChannels,
    task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Hold the exchange session until *commands* ends, then close it and return."""
    frames_in, frames_out = channels.frames
    to_auth_in, to_auth_out = channels.to_auth
    to_account_in, to_account_out = channels.to_account
    relinks_in, relinks_out = channels.relinks
    link_stop = trio.Event()

    async with trio.open_nursery() as nursery:
        # The originals are closed once the clones are handed out, so each receiver sees EndOfChannel only
        # when every one of its producers is done (trio's channels-mpmc-fixed pattern).
        async with frames_in, to_account_in:
            await nursery.start(partial(
                run_connection, settings=link, board=board, frames=frames_out, to_auth=to_auth_in,
                to_account=to_account_in.clone(), relinks=relinks_out, stop=link_stop))
            await nursery.start(partial(
                run_auth, settings=auth, board=board, events=to_auth_out, frames=frames_in.clone(),
                to_account=to_account_in.clone(), relinks=relinks_in))
            account_frames = frames_in.clone()

        async def account_then_stop_link() -> None:
            try:
                await run_account(board=board, commands=commands, events=to_account_out, frames=account_frames,
                                  settings=account)
            finally:
                link_stop.set()

        await nursery.start(_started_by, account_then_stop_link)
        task_status.started()


async def _started_by(fn: Any, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
    task_status.started()
    await fn()
