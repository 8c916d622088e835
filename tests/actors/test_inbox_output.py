"""The inbox's per-client output: answers straight to the socket when idle, through the queue otherwise; a
watch's forwarder keeps up with the router's bursts."""

from __future__ import annotations

import socket
import struct

import trio
import trio.testing

from bfxd.actors.channels import take_waiting
from bfxd.actors.client_output import Output, receive, write_lines
from bfxd.actors.messages import OfferWatchEvent, WatcherCutOff
from bfxd.actors.watch_stream import forward_events


def _stream_pair() -> tuple[trio.SocketStream, trio.SocketStream]:
    left, right = trio.socket.socketpair()
    return trio.SocketStream(left), trio.SocketStream(right)


async def _read_exactly(stream: trio.SocketStream, n: int) -> bytes:
    data = b""
    with trio.fail_after(10):
        while len(data) < n:
            data += await stream.receive_some(n - len(data))
    return data


async def test_idle_answer_is_written_without_the_writer() -> None:
    """Nothing queued, nothing sending: the answer is on the socket before answer() returns."""
    ours, client = _stream_pair()
    queue, _lines = trio.open_memory_channel[bytes](4)  # no writer task drains it
    output = Output(ours, queue)
    await output.answer(b"first\n")
    assert await _read_exactly(client, 6) == b"first\n"


async def test_answer_queues_behind_lines_waiting_for_the_writer(nursery: trio.Nursery) -> None:
    """With a line already queued, an answer joins the queue; the writer sends both, in order."""
    ours, client = _stream_pair()
    queue, lines = trio.open_memory_channel[bytes](4)
    output = Output(ours, queue)
    queue.send_nowait(b"event\n")
    await output.answer(b"answer\n")
    assert queue.statistics().current_buffer_used == 2
    nursery.start_soon(write_lines, output, lines)
    assert await _read_exactly(client, 13) == b"event\nanswer\n"


async def test_answer_waits_for_a_send_in_progress(nursery: trio.Nursery) -> None:
    """A send that blocks (the client does not read) holds the socket; the next answer queues, never
    interleaving its bytes with the blocked one."""
    ours, client = _stream_pair()
    queue, lines = trio.open_memory_channel[bytes](4)
    output = Output(ours, queue)
    big = b"x" * (4 * 1024 * 1024) + b"\n"  # far more than the socket buffers hold
    nursery.start_soon(output.answer, big)
    await trio.testing.wait_all_tasks_blocked()
    await output.answer(b"small\n")
    assert queue.statistics().current_buffer_used == 1
    nursery.start_soon(write_lines, output, lines)
    assert await _read_exactly(client, len(big) + 6) == big + b"small\n"


async def test_an_answer_with_room_in_the_socket_takes_no_task_step() -> None:
    """The answer path's last hop: with room in the socket's buffer the bytes go out without a checkpoint."""
    ours, client = _stream_pair()
    queue, _lines = trio.open_memory_channel[bytes](4)
    output = Output(ours, queue)
    with trio.testing.assert_no_checkpoints():
        await output.answer(b"answer\n")
    assert await _read_exactly(client, 7) == b"answer\n"


async def test_a_closed_stream_is_a_client_gone_not_a_write_elsewhere() -> None:
    """Once our side is closed its descriptor number is free for the next socket: a send must not use it."""
    ours, _client = _stream_pair()
    queue, _lines = trio.open_memory_channel[bytes](4)
    output = Output(ours, queue)
    await ours.aclose()
    bystander, bystander_peer = _stream_pair()  # may well get the number ours had
    assert await output.send(b"late\n") is False
    await bystander.send_all(b"own\n")
    assert await _read_exactly(bystander_peer, 4) == b"own\n"  # nothing of ours came first


class TestAnswerNowait:
    """The answer written from the router's step (late_starts.py): never a wait, never bytes out of order."""

    async def test_an_idle_socket_takes_the_answer_at_once(self) -> None:
        ours, client = _stream_pair()
        queue, _lines = trio.open_memory_channel[bytes](4)
        output = Output(ours, queue)
        assert output.has_room()
        output.answer_nowait(b"answer\n")
        assert queue.statistics().current_buffer_used == 0
        assert await _read_exactly(client, 7) == b"answer\n"

    async def test_what_the_socket_does_not_take_is_queued_first(self, nursery: trio.Nursery) -> None:
        ours, client = _stream_pair()
        queue, lines = trio.open_memory_channel[bytes](4)
        output = Output(ours, queue)
        big = bytes(range(256)) * (16 * 1024) + b"\n"  # 4 MB: far more than the socket buffers hold
        output.answer_nowait(big)
        assert queue.statistics().current_buffer_used == 1  # the rest, for the writer
        output.answer_nowait(b"next\n")  # behind it, not into the socket before it
        nursery.start_soon(write_lines, output, lines)
        assert await _read_exactly(client, len(big) + 5) == big + b"next\n"

    async def test_a_full_queue_has_no_room(self) -> None:
        ours, _client = _stream_pair()
        queue, _lines = trio.open_memory_channel[bytes](1)
        output = Output(ours, queue)
        queue.send_nowait(b"event\n")
        assert not output.has_room()  # the inbox then starts a task that waits for room

    async def test_a_departed_client_is_no_error(self) -> None:
        ours, client = _stream_pair()
        queue, _lines = trio.open_memory_channel[bytes](4)
        output = Output(ours, queue)
        await ours.aclose()
        output.answer_nowait(b"late\n")  # nothing raised, nothing queued: the outcome is in the log
        assert queue.statistics().current_buffer_used == 0
        await client.aclose()


async def test_departed_client_is_reported() -> None:
    ours, client = _stream_pair()
    await client.aclose()
    queue, _lines = trio.open_memory_channel[bytes](4)
    assert await Output(ours, queue).send(b"x" * 100_000) is False


async def test_a_watch_keeps_up_with_a_router_that_hands_on_bursts(nursery: trio.Nursery) -> None:
    """The router hands a burst of events to each watcher per turn (it takes frames in bursts). A watch's
    forwarder must move a burst per turn too: at one event per turn, a watcher that reads would fill its
    buffer within a few turns and be cut off as lagging."""
    events_in, events = trio.open_memory_channel[object](1024)  # the router's watcher channel, as the inbox sizes it
    out_in, out = trio.open_memory_channel[bytes](256)  # the client's queue
    lines: list[bytes] = []
    outcome: list[str] = []

    async def forward() -> None:
        outcome.append(await forward_events(events, out_in))

    async def client_reads() -> None:  # the writer and a client that keeps up, one batch per turn
        async for line in out:
            lines.extend([line, *take_waiting(out, 256)])

    nursery.start_soon(forward)
    nursery.start_soon(client_reads)
    cut_off = False
    sent = 0
    for _turn in range(60):  # 60 turns of 65 events: 3,900 events, almost four times the buffer
        for _ in range(65):
            try:
                events_in.send_nowait(OfferWatchEvent(None, b"%d\n" % sent))  # type: ignore[arg-type]
            except trio.WouldBlock:
                cut_off = True
            sent += 1
        await trio.lowlevel.checkpoint()
    events_in.send_nowait(WatcherCutOff("done"))
    events_in.close()
    await trio.testing.wait_all_tasks_blocked()
    assert not cut_off
    assert outcome == ["done"]
    assert lines == [b"%d\n" % i for i in range(sent)]


class TestReceive:
    """The inbox's reads: wait for readable, then read; a client gone, however it went, is b""."""

    async def test_what_the_client_sent_arrives_once_it_is_sent(self, nursery: trio.Nursery) -> None:
        ours, client = _stream_pair()
        got: list[bytes] = []
        done = trio.Event()

        async def read() -> None:
            got.append(await receive(ours))
            done.set()

        nursery.start_soon(read)
        await trio.testing.wait_all_tasks_blocked()
        assert got == []  # nothing sent yet: the reader waits, it does not spin or return empty
        await client.send_all(b"cancel 1\n")
        with trio.fail_after(10):
            await done.wait()
        assert got == [b"cancel 1\n"]

    async def test_eof_is_empty(self) -> None:
        ours, client = _stream_pair()
        await client.aclose()
        with trio.fail_after(10):
            assert await receive(ours) == b""

    async def test_a_reset_is_empty_not_an_error(self) -> None:
        ours, client = _stream_pair()
        await ours.send_all(b"unread\n")  # closing with unread data makes the kernel send a reset
        client.socket.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        await client.aclose()
        with trio.fail_after(10):
            assert await receive(ours) == b""

    async def test_the_stream_closed_under_a_waiting_reader_is_empty(self, nursery: trio.Nursery) -> None:
        ours, _client = _stream_pair()
        got: list[bytes] = []
        done = trio.Event()

        async def read() -> None:
            got.append(await receive(ours))
            done.set()

        nursery.start_soon(read)
        await trio.testing.wait_all_tasks_blocked()
        await ours.aclose()
        with trio.fail_after(10):
            await done.wait()
        assert got == [b""]

    async def test_a_closed_stream_reads_empty(self) -> None:
        ours, _client = _stream_pair()
        await ours.aclose()
        assert await receive(ours) == b""


class TestWriterStartedWhenNeeded:
    """The writer task is started by the first queued line, once; an answer that goes straight out starts none."""

    def _lazy(self, nursery: trio.Nursery) -> tuple[Output, trio.SocketStream, list[int]]:
        ours, client = _stream_pair()
        queue, lines = trio.open_memory_channel[bytes](8)
        output = Output(ours, queue)
        starts: list[int] = []

        def start() -> None:
            starts.append(1)
            nursery.start_soon(write_lines, output, lines)

        output.start_writer_when_needed(start)
        return output, client, starts

    async def test_a_direct_answer_starts_no_writer(self, nursery: trio.Nursery) -> None:
        output, client, starts = self._lazy(nursery)
        await output.answer(b"direct\n")
        output.answer_nowait(b"again\n")
        assert await _read_exactly(client, 13) == b"direct\nagain\n"
        assert starts == []

    async def test_the_first_queued_line_starts_it_once(self, nursery: trio.Nursery) -> None:
        output, client, starts = self._lazy(nursery)
        output.queue.send_nowait(b"watch event\n")  # as a watch does, after writer_needed()
        output.writer_needed()
        await output.answer(b"answer\n")  # lines are queued: it queues behind them
        output.answer_nowait(b"late\n")
        assert starts == [1]
        assert await _read_exactly(client, 24) == b"watch event\nanswer\nlate\n"

    async def test_answer_nowait_behind_a_busy_socket_starts_it(self, nursery: trio.Nursery) -> None:
        output, client, starts = self._lazy(nursery)
        big = b"x" * (4 * 1024 * 1024) + b"\n"  # more than the socket buffers take: the rest is queued
        output.answer_nowait(big)
        assert starts == [1]
        assert await _read_exactly(client, len(big)) == big

    async def test_a_clone_shares_the_one_start(self, nursery: trio.Nursery) -> None:
        output, _client, starts = self._lazy(nursery)
        twin = output.clone()
        twin.writer_needed()
        output.writer_needed()
        assert starts == [1]
