"""wsframes: the link's own RFC 6455 framing, checked against wsproto's (a server framing for the reader, a
server parsing for what we send), byte by byte where a read can split a frame."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st
from wsproto import ConnectionType
from wsproto.connection import Connection
from wsproto.events import BytesMessage, CloseConnection, Event, Ping, Pong, TextMessage

from bfxd import wsframes
from bfxd.wsframes import OP_BINARY, OP_PING, OP_TEXT, Close, FrameError, FrameReader, MaskKeys, close_frame, frame


def server_frames(*events: Event) -> bytes:
    framer = Connection(ConnectionType.SERVER)
    return b"".join(framer.send(event) for event in events)


def read_all(data: bytes, *, max_message_bytes: int = 1 << 20, chunk: int | None = None) -> list[object]:
    reader = FrameReader(max_message_bytes)
    out: list[object] = []
    step = chunk or max(len(data), 1)
    for i in range(0, len(data), step):
        reader.feed(data[i:i + step])
        while (event := reader.next_event()) is not None:
            out.append(event)
    return out


def as_server_sees(data: bytes) -> list[Event]:
    server = Connection(ConnectionType.SERVER)
    server.receive_data(data)
    return list(server.events())


def describe(events: list[object]) -> list[tuple]:
    return [(type(e).__name__, getattr(e, "payload", None), getattr(e, "code", None), getattr(e, "reason", None))
            if isinstance(e, (wsframes.Ping, Close)) else ("message", e) for e in events]


class TestReader:
    def test_text_binary_ping_close_in_order_pong_dropped(self) -> None:
        data = server_frames(TextMessage(data="héllo"), BytesMessage(data=b"\x00\xff"), Pong(payload=b"x"),
                             Ping(payload=b"p"), CloseConnection(code=4001, reason="bye"))
        assert describe(read_all(data)) == [("message", "héllo"), ("message", b"\x00\xff"),
                                            ("Ping", b"p", None, None), ("Close", None, 4001, "bye")]

    @pytest.mark.parametrize("size", [0, 125, 126, 65535, 65536, 200_000], ids=lambda n: f"{n}B")
    def test_every_length_encoding(self, size: int) -> None:
        text = "a" * size
        assert read_all(server_frames(TextMessage(data=text))) == [text]

    def test_fragments_with_a_ping_between_them(self) -> None:
        data = server_frames(TextMessage(data="he", message_finished=False), Ping(payload=b"1"),
                             TextMessage(data="llo", message_finished=True),
                             BytesMessage(data=b"\x01", message_finished=False), BytesMessage(data=b"\x02"))
        assert describe(read_all(data)) == [("Ping", b"1", None, None), ("message", "hello"), ("message", b"\x01\x02")]

    def test_a_multibyte_character_split_across_fragments(self) -> None:
        encoded = "é".encode()
        data = bytes((0x01, 1)) + encoded[:1] + bytes((0x80, 1)) + encoded[1:]
        assert read_all(data) == ["é"]

    def test_nothing_is_parsed_after_a_close(self) -> None:
        data = server_frames(CloseConnection(code=1000, reason="")) + server_frames(TextMessage(data="late"))
        assert describe(read_all(data)) == [("Close", None, 1000, "")]

    def test_an_empty_close_is_1005(self) -> None:
        assert describe(read_all(b"\x88\x00")) == [("Close", None, 1005, "")]

    @given(st.lists(st.one_of(st.text(max_size=300).map(lambda t: TextMessage(data=t)),
                              st.binary(max_size=300).map(lambda b: BytesMessage(data=b)),
                              st.binary(max_size=125).map(lambda b: Ping(payload=b))), max_size=8),
           st.integers(min_value=1, max_value=70))
    def test_any_split_of_the_stream_gives_the_same_events(self, events: list[Event], chunk: int) -> None:
        """However the reads cut the bytes, the events are those of reading them whole, and those sent."""
        data = server_frames(*events)
        whole = describe(read_all(data))
        assert describe(read_all(data, chunk=chunk)) == whole
        expected = [("Ping", e.payload, None, None) if isinstance(e, Ping) else ("message", e.data) for e in events]
        assert whole == expected


class TestReaderFaults:
    @pytest.mark.parametrize(
        ("data", "code"),
        [
            (b"\x81\x82\x00\x00\x00\x00hi", 1002),  # masked: a server must not mask
            (b"\xc1\x01a", 1002),  # RSV1 without an extension
            (b"\x83\x00", 1002),  # reserved data opcode
            (b"\x8b\x00", 1002),  # reserved control opcode
            (b"\x09\x00", 1002),  # fragmented ping
            (b"\x89\x7e\x00\x7e" + b"a" * 126, 1002),  # control frame over 125 bytes
            (b"\x81\x7e\x00\x05hello", 1002),  # 2-byte length for 5 bytes
            (b"\x81\x7f" + (5).to_bytes(8, "big") + b"hello", 1002),  # 8-byte length for 5 bytes
            (b"\x81\x7f" + (1 << 63).to_bytes(8, "big"), 1002),  # length with the top bit set
            (b"\x80\x01a", 1002),  # continuation with nothing to continue
            (b"\x01\x01a\x81\x01b", 1002),  # a new message inside a fragmented one
            (b"\x88\x01\x03", 1002),  # one-byte close payload
            (b"\x88\x02\x03\xed", 1002),  # close code 1005 is local only
            (b"\x88\x02\x07\xd0", 1002),  # close code 2000 is reserved
            (b"\x81\x02\xff\xfe", 1007),  # text that is not UTF-8
            (b"\x88\x04\x03\xe8\xff\xfe", 1007),  # close reason that is not UTF-8
        ],
    )
    def test_broken_framing_names_its_close_code(self, data: bytes, code: int) -> None:
        with pytest.raises(FrameError) as error:
            read_all(data)
        assert error.value.code == code and error.value.reason

    def test_the_size_limit_is_checked_from_the_header_before_the_payload(self) -> None:
        reader = FrameReader(max_message_bytes=100)
        reader.feed(b"\x81\x7f" + (10 ** 12).to_bytes(8, "big"))  # a terabyte announced, nothing sent
        with pytest.raises(FrameError) as error:
            reader.next_event()
        assert (error.value.code, error.value.reason) == (1009, "message over 100 bytes")

    def test_the_limit_is_on_the_whole_message(self) -> None:
        data = server_frames(TextMessage(data="a" * 60, message_finished=False), TextMessage(data="a" * 41))
        with pytest.raises(FrameError) as error:
            read_all(data, max_message_bytes=100)
        assert error.value.code == 1009
        assert read_all(server_frames(TextMessage(data="a" * 60, message_finished=False),
                                      TextMessage(data="a" * 40)), max_message_bytes=100) == ["a" * 100]


class TestWriter:
    @pytest.mark.parametrize("size", [0, 1, 3, 125, 126, 65535, 65536, 100_001], ids=lambda n: f"{n}B")
    def test_frames_a_server_reads_back(self, size: int) -> None:
        keys = MaskKeys()
        text = "".join(chr(0x61 + i % 26) for i in range(size))
        data = frame(OP_TEXT, text.encode(), keys.next()) + frame(OP_BINARY, b"\x00" * size, keys.next())
        assert as_server_sees(data) == [TextMessage(data=text), BytesMessage(data=b"\x00" * size)]

    def test_every_frame_is_masked_with_its_own_key(self) -> None:
        keys = MaskKeys()
        one, two = frame(OP_PING, b"same", keys.next()), frame(OP_PING, b"same", keys.next())
        assert one[1] & 0x80 and two[1] & 0x80
        assert one[2:6] != two[2:6] and one[6:] != two[6:]  # 2**-32 odds of a false failure
        assert as_server_sees(one + two) == [Ping(payload=b"same"), Ping(payload=b"same")]

    def test_mask_keys_come_in_batches_and_do_not_repeat(self) -> None:
        keys = MaskKeys()
        drawn = [keys.next() for _ in range(3000)]  # crosses a batch boundary
        assert all(len(key) == 4 for key in drawn)
        assert len(set(drawn)) > 2990  # birthday odds of more than ten repeats in 3,000 draws: negligible

    @pytest.mark.parametrize(
        ("code", "reason", "seen"),
        [(1000, "bye", CloseConnection(code=1000, reason="bye")),
         (1005, "", CloseConnection(code=1005, reason="")),  # no code given: none sent back
         (1006, "x", CloseConnection(code=1000, reason="x")),  # local only: never on the wire
         (4000, "é" * 100, CloseConnection(code=4000, reason="é" * 61))],  # 123 bytes at most, whole characters
    )
    def test_close_frames(self, code: int, reason: str, seen: CloseConnection) -> None:
        assert as_server_sees(close_frame(code, reason, MaskKeys().next())) == [seen]


class TestLargeFrames:
    def test_a_frame_in_many_reads_is_buffered_in_place(self) -> None:
        """A 4 MiB binary message in 64 KiB reads arrives whole and as bytes, and each read grows one buffer
        rather than copying what came before (which would be quadratic)."""
        payload = bytes(range(256)) * (4 * 4096)
        data = server_frames(BytesMessage(data=payload), TextMessage(data="next"))
        reader = FrameReader(max_message_bytes=8 << 20)
        events: list[object] = []
        grown_in_place = 0
        for i in range(0, len(data), 65536):
            before = reader._buffer
            reader.feed(data[i:i + 65536])
            grown_in_place += reader._buffer is before
            while (event := reader.next_event()) is not None:
                events.append(event)
        assert events == [payload, "next"] and type(events[0]) is bytes
        assert grown_in_place >= len(data) // 65536 - 2  # all but the first read and the one after the message
