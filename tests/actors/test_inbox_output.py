"""The inbox's per-client output: answers straight to the socket when idle, through the queue otherwise."""

from __future__ import annotations

import trio
import trio.testing

from bfxd.actors.inbox import _Output, _write_lines


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
    output = _Output(ours, queue)
    await output.answer(b"first\n")
    assert await _read_exactly(client, 6) == b"first\n"


async def test_answer_queues_behind_lines_waiting_for_the_writer(nursery: trio.Nursery) -> None:
    """With a line already queued, an answer joins the queue; the writer sends both, in order."""
    ours, client = _stream_pair()
    queue, lines = trio.open_memory_channel[bytes](4)
    output = _Output(ours, queue)
    queue.send_nowait(b"event\n")
    await output.answer(b"answer\n")
    assert queue.statistics().current_buffer_used == 2
    nursery.start_soon(_write_lines, output, lines)
    assert await _read_exactly(client, 13) == b"event\nanswer\n"


async def test_answer_waits_for_a_send_in_progress(nursery: trio.Nursery) -> None:
    """A send that blocks (the client does not read) holds the socket; the next answer queues, never
    interleaving its bytes with the blocked one."""
    ours, client = _stream_pair()
    queue, lines = trio.open_memory_channel[bytes](4)
    output = _Output(ours, queue)
    big = b"x" * (4 * 1024 * 1024) + b"\n"  # far more than the socket buffers hold
    nursery.start_soon(output.answer, big)
    await trio.testing.wait_all_tasks_blocked()
    await output.answer(b"small\n")
    assert queue.statistics().current_buffer_used == 1
    nursery.start_soon(_write_lines, output, lines)
    assert await _read_exactly(client, len(big) + 6) == big + b"small\n"


async def test_departed_client_is_reported() -> None:
    ours, client = _stream_pair()
    await client.aclose()
    queue, _lines = trio.open_memory_channel[bytes](4)
    assert await _Output(ours, queue).send(b"x" * 100_000) is False
