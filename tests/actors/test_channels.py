"""The hot-path channel helpers: no checkpoint while there is room (hand_over) or items (take_waiting)."""

from __future__ import annotations

import pytest
import trio
import trio.testing

from bfxd.actors.channels import ChannelBoard, OneShot, hand_over, note_received, take_waiting


async def test_hand_over_with_room_does_not_checkpoint() -> None:
    send, receive = trio.open_memory_channel[int](1)
    with trio.testing.assert_no_checkpoints():
        await hand_over(send, 1)
    assert receive.receive_nowait() == 1


async def test_hand_over_without_room_waits(nursery: trio.Nursery, autojump_clock: trio.testing.MockClock) -> None:
    send, receive = trio.open_memory_channel[int](0)
    with trio.testing.assert_checkpoints(), pytest.raises(trio.TooSlowError), trio.fail_after(1):
        await hand_over(send, 1)  # nobody receives: it waits, it does not drop
    nursery.start_soon(hand_over, send, 2)
    assert await receive.receive() == 2


def test_take_waiting_takes_up_to_the_limit_in_order() -> None:
    send, receive = trio.open_memory_channel[int](10)
    for i in range(5):
        send.send_nowait(i)
    assert take_waiting(receive, limit=3) == [0, 1, 2]
    assert take_waiting(receive) == [3, 4]
    assert take_waiting(receive) == []


async def test_take_waiting_leaves_the_end_of_channel_to_receive() -> None:
    send, receive = trio.open_memory_channel[int](10)
    send.send_nowait(1)
    send.close()
    assert take_waiting(receive) == [1]
    assert take_waiting(receive) == []
    with pytest.raises(trio.EndOfChannel):
        await receive.receive()


class TestChannelBoard:
    async def test_peak_is_the_largest_burst_taken(self) -> None:
        board = ChannelBoard()
        send, receive = board.open("jobs", 8, "a test")
        for burst in (3, 5, 2):
            for item in range(burst):
                send.send_nowait(item)
            [await receive.receive(), *take_waiting(receive)]
        assert board.to_json() == {"jobs": {"size": 8, "peak_buffer_used": 5}}

    async def test_a_burst_over_the_limit_counts_what_still_waits(self) -> None:
        board = ChannelBoard()
        send, receive = board.open("jobs", 16, "a test")
        for item in range(10):
            send.send_nowait(item)
        await receive.receive()
        assert len(take_waiting(receive, limit=4)) == 4
        assert board.gauges["jobs"].peak == 10

    async def test_single_receives_are_noted(self) -> None:
        board = ChannelBoard()
        send, receive = board.open("one", 4, "a test")
        send.send_nowait(1)
        send.send_nowait(2)
        await receive.receive()
        note_received(receive)
        assert board.gauges["one"].peak == 2


async def test_one_shot_keeps_the_first_value(nursery: trio.Nursery) -> None:
    reply = OneShot[int]()
    got: list[int] = []

    async def wait() -> None:
        got.append(await reply.receive())

    nursery.start_soon(wait)
    await trio.testing.wait_all_tasks_blocked()
    assert got == []  # nothing delivered yet: the receiver waits
    with trio.testing.assert_no_checkpoints():
        reply.deliver(1)
        reply.deliver(2)  # a second word is ignored: the first outcome stands
        reply.close()  # nor does a close after it take it away
    await trio.testing.wait_all_tasks_blocked()
    assert got == [1]


async def test_one_shot_closed_without_a_value_ends() -> None:
    reply = OneShot[int]()
    reply.close()
    reply.deliver(3)  # too late: it was closed empty
    with pytest.raises(trio.EndOfChannel):
        await reply.receive()


def test_one_shot_calls_back_once_on_delivery() -> None:
    reply = OneShot[int]()
    calls: list[str] = []
    reply.when_delivered(lambda: calls.append("settled"))
    assert calls == []  # registered, not called: nothing is in yet
    reply.deliver(1)
    assert calls == ["settled"]  # synchronously, inside deliver
    reply.deliver(2)
    reply.close()
    assert calls == ["settled"]  # later words call nothing


def test_one_shot_calls_back_at_once_when_already_settled() -> None:
    delivered, closed = OneShot[int](), OneShot[int]()
    delivered.deliver(5)
    closed.close()
    calls: list[str] = []
    delivered.when_delivered(lambda: calls.append("delivered"))
    closed.when_delivered(lambda: calls.append("closed"))
    assert calls == ["delivered", "closed"]


async def test_one_shot_close_calls_back_too() -> None:
    reply = OneShot[int]()
    calls: list[str] = []
    reply.when_delivered(lambda: calls.append("closed"))
    reply.close()
    assert calls == ["closed"]  # the waiter learns the end as it would learn a value
    with pytest.raises(trio.EndOfChannel):
        await reply.receive()


async def test_one_shot_with_a_value_receives_without_a_checkpoint() -> None:
    reply = OneShot[int]()
    reply.deliver(7)
    with trio.testing.assert_no_checkpoints():
        assert await reply.receive() == 7
