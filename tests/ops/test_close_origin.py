"""Issue 15 item 8: a close bfxd made is not logged as "closed by the exchange"."""

from __future__ import annotations

import pytest
import trio
from tests.test_wslink import GUARD_S, raw_pair, receive_guarded
from wsproto.events import CloseConnection, TextMessage

from bfxd.wslink import LinkClosed


async def test_a_fault_we_detected_is_ours() -> None:
    link, server = await raw_pair(max_message_bytes=10)
    await server.send(TextMessage(data="x" * 11))
    with pytest.raises(LinkClosed) as closed:
        await receive_guarded(link)
    assert (closed.value.code, closed.value.by_us) == (1009, True)
    with pytest.raises(LinkClosed) as again:  # every later call reports the same origin
        await link.send("late")
    assert again.value.by_us is True


async def test_a_close_frame_from_the_peer_is_theirs() -> None:
    link, server = await raw_pair()
    await server.send(CloseConnection(code=1001, reason="going away"))
    with pytest.raises(LinkClosed) as closed:
        await receive_guarded(link)
    assert (closed.value.code, closed.value.by_us) == (1001, False)


async def test_our_close_is_ours() -> None:
    link, server = await raw_pair()
    async with trio.open_nursery() as nursery:
        nursery.start_soon(link.close, 1000, "stopping")
        with trio.fail_after(GUARD_S):
            frame = await server.next_event()
        assert frame == CloseConnection(code=1000, reason="stopping")
        await server.send(frame.response())
    with pytest.raises(LinkClosed) as closed:
        await link.send("late")
    assert closed.value.by_us is True
