"""The exchange side of the daemon: connection, auth and account actors, and the channels between them.

Topology (sizes and reasons next to each channel below)::

    inbox ──commands──▶ account ──frames──▶ connection (writer) ──▶ exchange
                          ▲   ▲                │ (reader)
                          │   └───to_account───┤ notifications, offers, LinkDown
                          │                    ▼
                          └──to_account─── auth ◀──to_auth── LinkUp/LinkDown, info, auth replies
                                  │ frames (auth), relinks ──▶ connection

Stopping drains rather than cancels: when *commands* ends, the account router answers what is left and
returns; then the link is closed politely (close frame 1000) and the connection and auth actors return.
"""

from __future__ import annotations

from functools import partial

import trio

from bfxd.actors.account import RouterInput, run_account
from bfxd.actors.auth import AuthSettings, run_auth
from bfxd.actors.connection import LinkSettings, run_connection
from bfxd.actors.messages import AccountCommand, FromLink, LinkDown, LinkUp, OutboundFrame, Relink
from bfxd.actors.session import SessionBoard


async def run_exchange_side(
    *,
    link: LinkSettings,
    auth: AuthSettings,
    board: SessionBoard,
    commands: trio.MemoryReceiveChannel[AccountCommand],
    task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Hold the exchange session until *commands* ends, then close it and return."""
    # auth + account → the link's writer. The router never blocks on it (it keeps a backlog), auth sends one
    # frame per link; 64 absorbs a cancel_all burst while the writer catches up.
    frames_in, frames_out = trio.open_memory_channel[OutboundFrame](64)
    # connection → auth: LinkUp/LinkDown and the few auth-related events of a link.
    to_auth_in, to_auth_out = trio.open_memory_channel[LinkUp | LinkDown | FromLink](16)
    # connection + auth → router. The router never blocks, so this only absorbs bursts (a fos snapshot is
    # one message); 256 keeps the reader from waiting behind a burst of notifications.
    to_account_in, to_account_out = trio.open_memory_channel[RouterInput](256)
    # auth → connection: "replace link N". At most one or two per link.
    relinks_in, relinks_out = trio.open_memory_channel[Relink](4)
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
            account_events = to_account_out

        async def account_then_stop_link() -> None:
            try:
                await run_account(board=board, commands=commands, events=account_events, frames=account_frames)
            finally:
                link_stop.set()

        await nursery.start(_started_by, account_then_stop_link)
        task_status.started()


async def _started_by(fn, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:  # type: ignore[no-untyped-def]
    task_status.started()
    await fn()
