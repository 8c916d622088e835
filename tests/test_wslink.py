"""wslink: the client WebSocket under the connection actor.

Against trio-websocket's server over loopback for the ordinary paths, and against a hand-driven wsproto server
over a memory stream pair for the edge cases a real server will not produce on demand.
"""

from __future__ import annotations

from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from functools import partial

import pytest
import trio
import trio.testing
import trio_websocket
from wsproto import ConnectionType, WSConnection
from wsproto.connection import Connection
from wsproto.events import (
    AcceptConnection,
    BytesMessage,
    CloseConnection,
    Event,
    Ping,
    Pong,
    RejectConnection,
    Request,
    TextMessage,
)

from bfxd.wslink import HandshakeFailed, LinkClosed, WebSocketLink, open_link

GUARD_S = 10  # hang guard only: every wait below ends on an event, never on this deadline

Handler = Callable[[trio_websocket.WebSocketRequest], Awaitable[None]]


# --- a real server (trio-websocket) over loopback -------------------------------------------------------------


async def start_server(nursery: trio.Nursery, handler: Handler) -> int:
    """Serve *handler* on 127.0.0.1, on a free port; return the port."""
    server = await nursery.start(
        partial(trio_websocket.serve_websocket, handler, "127.0.0.1", 0, None, max_message_size=16 * 1024 * 1024)
    )
    return server.port


async def echo(request: trio_websocket.WebSocketRequest) -> None:
    ws = await request.accept()
    try:
        while True:
            await ws.send_message(await ws.get_message())
    except trio_websocket.ConnectionClosed:
        pass


@asynccontextmanager
async def dial(port: int, *, max_message_bytes: int = 16 * 1024 * 1024) -> AsyncIterator[WebSocketLink]:
    """A link to 127.0.0.1:*port*; the stream is closed on exit, as the connection actor does."""
    stream = await trio.open_tcp_stream("127.0.0.1", port)
    try:
        with trio.fail_after(GUARD_S):
            link = await open_link(
                stream, host=f"127.0.0.1:{port}", resource="/ws", max_message_bytes=max_message_bytes
            )
        yield link
    finally:
        await trio.aclose_forcefully(stream)


# --- a hand-driven wsproto server over a memory stream pair ---------------------------------------------------


class RawServer:
    """The server end of a memory stream pair, framed by wsproto one event at a time."""

    def __init__(self, stream: trio.abc.Stream) -> None:
        self.stream = stream
        self.ws = WSConnection(ConnectionType.SERVER)
        self._pending: deque[Event] = deque()

    async def next_event(self) -> Event:
        while not self._pending:
            data = await self.stream.receive_some(65536)
            self.ws.receive_data(data or None)
            self._pending.extend(self.ws.events())
        return self._pending.popleft()

    async def accept(self, then: bytes = b"") -> None:
        """Answer the upgrade with 101, and *then* in the same write."""
        assert isinstance(await self.next_event(), Request)
        await self.stream.send_all(self.ws.send(AcceptConnection()) + then)

    def frame(self, *events: Event) -> bytes:
        return b"".join(self.ws.send(event) for event in events)

    async def send(self, *events: Event) -> None:
        await self.stream.send_all(self.frame(*events))


async def raw_pair(*, then: bytes = b"", max_message_bytes: int = 1024) -> tuple[WebSocketLink, RawServer]:
    client, server_stream = trio.testing.memory_stream_pair()
    server = RawServer(server_stream)
    with trio.fail_after(GUARD_S):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(server.accept, then)
            link = await open_link(client, host="test", resource="/ws", max_message_bytes=max_message_bytes)
    return link, server


class RecordingStream(trio.abc.Stream):
    """Records what is sent, without a checkpoint (unless *gate* is set: then each send waits for it).

    Receiving returns *incoming* once, then waits forever. *broken*: every send raises BrokenResourceError.
    """

    def __init__(self, incoming: bytes = b"") -> None:
        self.sent: list[bytes] = []
        self.gate: trio.Event | None = None
        self.broken = False
        self._incoming = incoming

    async def send_all(self, data: bytes | bytearray | memoryview) -> None:
        if self.gate is not None:
            await self.gate.wait()
        if self.broken:
            raise trio.BrokenResourceError("connection reset")
        self.sent.append(bytes(data))

    async def wait_send_all_might_not_block(self) -> None:
        pass

    async def receive_some(self, max_bytes: int | None = None) -> bytes:
        if self._incoming:
            data, self._incoming = self._incoming, b""
            return data
        await trio.sleep_forever()
        raise AssertionError("unreachable")

    async def aclose(self) -> None:
        pass

    def events(self) -> list[Event]:
        """The sent bytes, as a server decodes them."""
        server = Connection(ConnectionType.SERVER)
        server.receive_data(b"".join(self.sent))
        return list(server.events())


class ChunkedStream(RecordingStream):
    """A wsproto server that answers the upgrade with 101 and two messages, given *chunk* bytes per read."""

    def __init__(self, chunk: int) -> None:
        super().__init__()
        self._chunk = chunk
        self._pending = b""

    async def send_all(self, data: bytes | bytearray | memoryview) -> None:
        server = WSConnection(ConnectionType.SERVER)
        server.receive_data(bytes(data))
        assert isinstance(next(server.events()), Request)
        self._pending = server.send(AcceptConnection()) + b"".join(
            server.send(TextMessage(data=text)) for text in ("first", "second"))

    async def receive_some(self, max_bytes: int | None = None) -> bytes:
        if self._pending:
            data, self._pending = self._pending[:self._chunk], self._pending[self._chunk:]
            return data
        return await super().receive_some(max_bytes)


def recording_link(incoming: bytes = b"") -> tuple[WebSocketLink, RecordingStream]:
    stream = RecordingStream(incoming)
    return WebSocketLink(stream, max_message_bytes=1024, receive_bytes=1024), stream


def server_frames(*events: Event) -> bytes:
    framer = Connection(ConnectionType.SERVER)  # frames the bytes only: it needs no handshake
    return b"".join(framer.send(event) for event in events)


async def receive_guarded(link: WebSocketLink) -> str | bytes:
    with trio.fail_after(GUARD_S):
        return await link.receive()


# --- tests --------------------------------------------------------------------------------------------------


class TestAgainstTrioWebsocket:
    async def test_echo(self, nursery: trio.Nursery) -> None:
        """A text message sent comes back from an echo server unchanged."""
        port = await start_server(nursery, echo)
        async with dial(port) as link:
            await link.send('[0,"foc",null,{"id":1}]')
            assert await receive_guarded(link) == '[0,"foc",null,{"id":1}]'

    async def test_large_message(self, nursery: trio.Nursery) -> None:
        """A 3 MiB message (many reads) arrives whole."""
        port = await start_server(nursery, echo)
        text = "".join(chr(ord("a") + i % 26) for i in range(3 * 1024 * 1024))
        async with dial(port, max_message_bytes=4 * 1024 * 1024) as link:
            await link.send(text)
            assert await receive_guarded(link) == text

    async def test_binary_message(self, nursery: trio.Nursery) -> None:
        """A binary message is returned as bytes."""

        async def send_bytes(request: trio_websocket.WebSocketRequest) -> None:
            ws = await request.accept()
            await ws.send_message(b"\x00\x01\xff")
            try:
                await ws.get_message()  # hold the connection open until the client is done
            except trio_websocket.ConnectionClosed:
                pass

        port = await start_server(nursery, send_bytes)
        async with dial(port) as link:
            assert await receive_guarded(link) == b"\x00\x01\xff"

    async def test_server_close_is_reported_and_answered(self, nursery: trio.Nursery) -> None:
        """A close from the server raises LinkClosed(code, reason), and our answer completes its close handshake."""
        server_done = trio.Event()

        async def close_at_once(request: trio_websocket.WebSocketRequest) -> None:
            ws = await request.accept()
            await ws.aclose(4000, "bye")  # returns only once the client has answered the close
            server_done.set()

        port = await start_server(nursery, close_at_once)
        async with dial(port) as link:
            with pytest.raises(LinkClosed) as closed:
                await receive_guarded(link)
            assert (closed.value.code, closed.value.reason) == (4000, "bye")
            assert link.closed is not None and link.closed.code == 4000
            with trio.fail_after(GUARD_S):
                await server_done.wait()  # the stream is still open here: only our close frame can end its wait

    async def test_our_close_is_answered(self, nursery: trio.Nursery) -> None:
        """close() sends the code and reason and returns once the server has answered."""
        seen: list[trio_websocket.CloseReason | None] = []

        async def record_close(request: trio_websocket.WebSocketRequest) -> None:
            ws = await request.accept()
            try:
                await ws.get_message()
            except trio_websocket.ConnectionClosed as exc:
                seen.append(exc.reason)

        port = await start_server(nursery, record_close)
        async with dial(port) as link:
            with trio.fail_after(GUARD_S):
                await link.close(1001, "stopping")
            assert link.closed is not None and (link.closed.code, link.closed.reason) == (1001, "stopping")
        assert seen and seen[0] is not None and (seen[0].code, seen[0].reason) == (1001, "stopping")

    async def test_fifty_concurrent_sends_arrive_intact(self, nursery: trio.Nursery) -> None:
        """50 tasks sending 128 KiB messages at once: every message arrives whole (no BusyResourceError)."""
        port = await start_server(nursery, echo)
        texts = {f"{i}:" + chr(ord("a") + i % 26) * 128 * 1024 for i in range(50)}
        received: set[str | bytes] = set()
        async with dial(port) as link:
            with trio.fail_after(GUARD_S):
                async with trio.open_nursery() as senders:
                    for text in texts:
                        senders.start_soon(link.send, text)
                    while len(received) < len(texts):  # read while sending: the echo would stall otherwise
                        received.add(await link.receive())
        assert received == texts

    async def test_rejected_handshake(self, nursery: trio.Nursery) -> None:
        """An HTTP 403 instead of the upgrade raises HandshakeFailed naming the status."""

        async def reject(request: trio_websocket.WebSocketRequest) -> None:
            await request.reject(403, body=b"go away")

        port = await start_server(nursery, reject)
        with pytest.raises(HandshakeFailed, match="403"):
            async with dial(port):
                pass


class TestFraming:
    async def test_fragments_are_reassembled(self) -> None:
        """A text and a binary message sent in fragments, a ping between them, arrive as two whole messages."""
        link, server = await raw_pair()
        await server.send(
            TextMessage(data="hel", message_finished=False),
            Ping(payload=b"p"),
            TextMessage(data="lo", message_finished=True),
            BytesMessage(data=b"\x01", message_finished=False),
            BytesMessage(data=b"\x02", message_finished=True),
        )
        assert await receive_guarded(link) == "hello"
        assert await receive_guarded(link) == b"\x01\x02"

    async def test_frames_in_the_same_write_as_the_101_are_delivered(self) -> None:
        """Messages sent in the same write as the handshake response are not lost."""
        link, _server = await raw_pair(then=server_frames(TextMessage(data="first"), TextMessage(data="second")))
        assert await receive_guarded(link) == "first"
        assert await receive_guarded(link) == "second"

    async def test_buffered_message_is_returned_without_a_checkpoint(self) -> None:
        """When a whole message is already buffered, receive() returns it without yielding."""
        link, server = await raw_pair()
        await server.send(TextMessage(data="one"), TextMessage(data="two"))
        assert await receive_guarded(link) == "one"  # this read brought both messages in
        with trio.testing.assert_no_checkpoints():
            assert await link.receive() == "two"

    async def test_uncontended_send_does_not_yield_before_writing(self) -> None:
        """send() with no other sender reaches send_all without a checkpoint (trio.Lock.acquire() would yield)."""
        link, stream = recording_link()
        with trio.testing.assert_no_checkpoints():
            await link.send("now")
        assert stream.events() == [TextMessage(data="now")]

    async def test_several_messages_go_out_in_one_write_in_order(self) -> None:
        link, stream = recording_link()
        await link.send("a", "b", "c")
        assert len(stream.sent) == 1
        assert stream.events() == [TextMessage(data="a"), TextMessage(data="b"), TextMessage(data="c")]

    @pytest.mark.parametrize(
        ("text", "fits"),
        [("a" * 100, True), ("a" * 101, False), ("é" * 50, True), ("é" * 51, False)],
        ids=["ascii-at-limit", "ascii-over", "utf8-at-limit", "utf8-over"],
    )
    async def test_message_size_limit_in_bytes(self, text: str, fits: bool) -> None:
        """A message of exactly max_message_bytes (UTF-8 bytes, not characters) arrives; one byte more is 1009."""
        link, server = await raw_pair(max_message_bytes=100)
        await server.send(TextMessage(data=text))
        if fits:
            assert await receive_guarded(link) == text
            return
        with pytest.raises(LinkClosed) as closed:
            await receive_guarded(link)
        assert closed.value.code == 1009
        with trio.fail_after(GUARD_S):
            assert await server.next_event() == CloseConnection(code=1009, reason="message over 100 bytes")

    async def test_fragmented_message_over_the_limit(self) -> None:
        """The limit applies to the whole message, not to each fragment."""
        link, server = await raw_pair(max_message_bytes=100)
        await server.send(TextMessage(data="a" * 60, message_finished=False), TextMessage(data="a" * 60))
        with pytest.raises(LinkClosed) as closed:
            await receive_guarded(link)
        assert closed.value.code == 1009

    async def test_ping_is_answered_with_pong(self) -> None:
        """A ping from the server is answered with a pong carrying its payload; an unsolicited pong is ignored."""
        link, server = await raw_pair()
        await server.send(Pong(payload=b"unasked"), Ping(payload=b"abc"), TextMessage(data="after"))
        assert await receive_guarded(link) == "after"
        with trio.fail_after(GUARD_S):
            assert await server.next_event() == Pong(payload=b"abc")


class TestEndings:
    async def test_peer_close_is_reported_and_answered(self) -> None:
        """A close frame raises LinkClosed(code, reason) and the same code goes back to the peer."""
        link, server = await raw_pair()
        await server.send(CloseConnection(code=1001, reason="going away"))
        with pytest.raises(LinkClosed) as closed:
            await receive_guarded(link)
        assert (closed.value.code, closed.value.reason) == (1001, "going away")
        assert str(closed.value) == "going away (code 1001)"
        with trio.fail_after(GUARD_S):
            assert await server.next_event() == CloseConnection(code=1001, reason="going away")

    async def test_every_receive_and_send_after_the_end_raises_the_same(self) -> None:
        """Once closed, receive() and send() keep raising LinkClosed with the first code and reason."""
        link, server = await raw_pair()
        await server.send(CloseConnection(code=4001, reason="x"))
        for _ in range(2):
            with pytest.raises(LinkClosed) as closed:
                await receive_guarded(link)
            assert (closed.value.code, closed.value.reason) == (4001, "x")
        with pytest.raises(LinkClosed) as closed:
            await link.send("late")
        assert (closed.value.code, closed.value.reason) == (4001, "x")

    async def test_eof_without_close_frame(self) -> None:
        """The stream ending with no close frame raises LinkClosed with code None."""
        link, server = await raw_pair()
        await server.send(TextMessage(data="last"))
        await server.stream.aclose()
        assert await receive_guarded(link) == "last"
        with pytest.raises(LinkClosed) as closed:
            await receive_guarded(link)
        assert closed.value.code is None

    @pytest.mark.parametrize("first", ["receive", "send"])
    async def test_stream_closed_under_the_link(self, first: str) -> None:
        """A stream closed by its owner ends the link with code None, whichever call meets it first."""
        client, _server_stream = trio.testing.memory_stream_pair()
        link = WebSocketLink(client, max_message_bytes=1024, receive_bytes=1024)
        await client.aclose()
        calls = [partial(receive_guarded, link), partial(link.send, "x")]
        for call in calls if first == "receive" else calls[::-1]:
            with pytest.raises(LinkClosed) as closed:
                await call()
            assert closed.value.code is None and "stream broken" in closed.value.reason

    @pytest.mark.parametrize(
        ("garbage", "code"),
        [
            (b"\x81\x82\x00\x00\x00\x00hi", 1002),  # a masked frame: servers must not mask
            (b"\xff\xff\xff\xff", 1002),  # reserved bits and a bad opcode
            (b"\x81\x02\xff\xfe", 1007),  # text that is not UTF-8
        ],
        ids=["masked-frame", "bad-opcode", "bad-utf8"],
    )
    async def test_protocol_error_from_the_peer(self, garbage: bytes, code: int) -> None:
        """Bytes that break the framing raise LinkClosed with the RFC 6455 code, also sent to the peer."""
        link, server = await raw_pair()
        await server.stream.send_all(garbage)
        with pytest.raises(LinkClosed) as closed:
            await receive_guarded(link)
        assert closed.value.code == code
        with trio.fail_after(GUARD_S):
            event = await server.next_event()
        assert isinstance(event, CloseConnection) and event.code == code

    async def test_close_is_idempotent_and_bounded(self, autojump_clock: trio.testing.MockClock) -> None:
        """close() waits for the peer's answer only as long as the caller allows; a second close() does nothing."""
        link, server = await raw_pair()
        with trio.move_on_after(2) as scope:
            await link.close(1000, "bye")
        assert scope.cancelled_caught
        with trio.fail_after(GUARD_S):
            assert await server.next_event() == CloseConnection(code=1000, reason="bye")
        with trio.testing.assert_no_checkpoints():
            await link.close(1001, "again")
        assert link.closed is not None and (link.closed.code, link.closed.reason) == (1000, "bye")
        with pytest.raises(LinkClosed):
            await link.send("after close")

    @pytest.mark.parametrize(
        ("incoming", "code"),
        [
            (server_frames(CloseConnection(code=1001, reason="going away")), 1001),
            (server_frames(TextMessage(data="a" * 2000)), 1009),
        ],
        ids=["peer-close", "too-big"],
    )
    async def test_close_frame_that_cannot_be_sent(self, incoming: bytes, code: int) -> None:
        """When our close frame cannot go out (stream broken), the link still ends with the meaningful code."""
        link, stream = recording_link(incoming)
        stream.broken = True
        with pytest.raises(LinkClosed) as closed:
            await receive_guarded(link)
        assert closed.value.code == code and stream.sent == []

    async def test_cancelled_send_leaves_the_link_broken(self) -> None:
        """A send cancelled midway may have written part of a frame: nothing more is written, close included."""
        link, stream = recording_link()
        stream.gate = trio.Event()  # never set: the send hangs inside send_all
        with trio.move_on_after(0) as scope:
            await link.send("cut short")
        assert scope.cancelled_caught
        assert link.closed is not None and link.closed.code is None
        stream.gate = None
        with pytest.raises(LinkClosed):
            await link.send("next")
        with trio.testing.assert_no_checkpoints():
            await link.close()
        assert stream.sent == []

    async def test_close_returns_on_eof(self) -> None:
        """close() returns when the peer hangs up instead of answering the close frame."""
        link, server = await raw_pair()
        async with trio.open_nursery() as nursery:
            nursery.start_soon(link.close)
            with trio.fail_after(GUARD_S):
                assert await server.next_event() == CloseConnection(code=1000, reason="")
                await server.stream.aclose()
        assert link.closed is not None and link.closed.code == 1000

    async def test_close_discards_messages_until_the_answer(self) -> None:
        """close() reads past messages still in flight and returns on the peer's close frame."""
        link, server = await raw_pair()
        await server.send(TextMessage(data="in flight"))
        async with trio.open_nursery() as nursery:
            nursery.start_soon(link.close)
            with trio.fail_after(GUARD_S):
                assert await server.next_event() == CloseConnection(code=1000, reason="")
                await server.send(CloseConnection(code=1000, reason=""))
        assert link.closed is not None and link.closed.code == 1000

    async def test_long_close_reason_is_truncated(self) -> None:
        """A close reason over 123 bytes is cut to fit the close frame, on a character boundary."""
        link, stream = recording_link()
        with trio.move_on_after(0):  # the recording stream never answers
            await link.close(1001, "é" * 100)
        (event,) = stream.events()
        assert isinstance(event, CloseConnection) and event.code == 1001
        assert event.reason == "é" * 61  # 122 bytes: a 62nd character would need 124

    async def test_send_queued_behind_a_close_is_not_sent(self) -> None:
        """A message waiting for the send lock when close() starts is refused, never sent after the close frame."""
        link, stream = recording_link()
        stream.gate = trio.Event()
        failures: list[LinkClosed] = []

        async def send_late() -> None:
            try:
                await link.send("late")
            except LinkClosed as exc:
                failures.append(exc)

        with trio.fail_after(GUARD_S):
            async with trio.open_nursery() as nursery:
                nursery.start_soon(link.send, "first")  # holds the lock, blocked on the gate
                await trio.testing.wait_all_tasks_blocked()
                nursery.start_soon(link.close)
                await trio.testing.wait_all_tasks_blocked()
                nursery.start_soon(send_late)
                await trio.testing.wait_all_tasks_blocked()
                stream.gate.set()
                await trio.testing.wait_all_tasks_blocked()
                nursery.cancel_scope.cancel()  # close() waits for an answer that never comes
        assert stream.events() == [TextMessage(data="first"), CloseConnection(code=1000, reason="")]
        assert len(failures) == 1


class TestHandshake:
    @pytest.mark.parametrize("chunk", [1, 2, 3, 5, 64], ids=lambda n: f"{n}B-reads")
    async def test_response_and_frames_split_across_reads(self, chunk: int) -> None:
        """However the reads cut the 101 and the frames after it, the handshake completes and no frame is lost."""
        stream = ChunkedStream(chunk)
        with trio.fail_after(GUARD_S):
            link = await open_link(stream, host="test", resource="/ws", max_message_bytes=1024)
            assert [await link.receive(), await link.receive()] == ["first", "second"]

    async def test_broken_stream(self) -> None:
        """A stream that fails during the handshake raises HandshakeFailed, not a stream error."""
        client, _server_stream = trio.testing.memory_stream_pair()
        await client.aclose()
        with pytest.raises(HandshakeFailed, match="stream broken"):
            await open_link(client, host="test", resource="/", max_message_bytes=1024)

    async def test_eof_during_handshake(self) -> None:
        """The server hanging up before answering the upgrade raises HandshakeFailed."""
        client, server_stream = trio.testing.memory_stream_pair()
        async with trio.open_nursery() as nursery:

            async def hang_up() -> None:
                await server_stream.receive_some(65536)
                await server_stream.aclose()

            nursery.start_soon(hang_up)
            with pytest.raises(HandshakeFailed, match="closed"), trio.fail_after(GUARD_S):
                await open_link(client, host="test", resource="/", max_message_bytes=1024)

    async def test_garbage_response(self) -> None:
        """A response that is not HTTP raises HandshakeFailed."""
        client, server_stream = trio.testing.memory_stream_pair()
        async with trio.open_nursery() as nursery:

            async def answer_garbage() -> None:
                await server_stream.receive_some(65536)
                await server_stream.send_all(b"SSH-2.0-OpenSSH\r\n\r\n")

            nursery.start_soon(answer_garbage)
            with pytest.raises(HandshakeFailed, match="bad handshake"), trio.fail_after(GUARD_S):
                await open_link(client, host="test", resource="/", max_message_bytes=1024)

    async def test_rejection_names_the_status(self) -> None:
        """A refusal from a raw server raises HandshakeFailed with its status code."""
        client, server_stream = trio.testing.memory_stream_pair()
        server = RawServer(server_stream)
        async with trio.open_nursery() as nursery:

            async def refuse() -> None:
                assert isinstance(await server.next_event(), Request)
                await server.send(RejectConnection(status_code=429))

            nursery.start_soon(refuse)
            with pytest.raises(HandshakeFailed, match="HTTP 429"), trio.fail_after(GUARD_S):
                await open_link(client, host="test", resource="/", max_message_bytes=1024)
