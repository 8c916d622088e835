"""RFC 6455 framing for the client end of an open WebSocket: the server's frames parsed, ours built. Sans-I/O.

wsproto does the opening handshake (``bfxd.wslink.open_link``); once the link is open, this module does the
framing. It is the part of RFC 6455 a client without extensions needs, and no more: text, binary and
continuation frames, ping, pong and close. wsproto's own framing parses each frame with a generator and an
incremental UTF-8 decoder and makes an event object per fragment, and it reads ``os.urandom(4)`` (a system
call) for every frame it masks: with 100 clients that was 14 % of the daemon's CPU on the cancel path.

What the peer can get wrong is a ``FrameError`` carrying the close code to fail the link with: 1002 for
broken framing (reserved bits, a masked frame from the server, an unknown opcode, a fragmented or oversized
control frame, a length not in its shortest form, a continuation out of place, a bad close payload), 1007
for text or a close reason that is not UTF-8, 1009 for a message over the size limit. The limit is checked
against the length in the header, before the payload is buffered.
"""

from __future__ import annotations

import os

__all__ = ["Close", "FrameError", "FrameReader", "MaskKeys", "Ping", "close_frame", "frame"]

OP_CONTINUATION, OP_TEXT, OP_BINARY, OP_CLOSE, OP_PING, OP_PONG = 0x0, 0x1, 0x2, 0x8, 0x9, 0xA
NO_STATUS = 1005  # a close frame without a code (RFC 6455 7.1.5)
_LOCAL_ONLY = frozenset({1004, 1005, 1006, 1015})  # reserved, or for reporting only: never on the wire
_MAX_CONTROL = 125
_MAX_REASON = _MAX_CONTROL - 2


class FrameError(Exception):
    """The peer broke the framing; *code* is the close code to fail the link with."""

    def __init__(self, code: int, reason: str) -> None:
        super().__init__(code, reason)
        self.code = code
        self.reason = reason


class Ping:
    __slots__ = ("payload",)

    def __init__(self, payload: bytes) -> None:
        self.payload = payload


class Close:
    """The peer's close frame: its code (1005 when it gave none) and reason."""

    __slots__ = ("code", "reason")

    def __init__(self, code: int, reason: str) -> None:
        self.code = code
        self.reason = reason


def _remote_code_allowed(code: int) -> bool:
    # 1000-1014 are defined (RFC 6455 7.4.1 and IANA's registry) less the local-only ones; 3000-4999 are for
    # libraries and applications; the rest is reserved.
    return (1000 <= code <= 1014 and code not in _LOCAL_ONLY) or 3000 <= code <= 4999


def _close_event(payload: bytes) -> Close:
    if not payload:
        return Close(NO_STATUS, "")
    if len(payload) == 1:
        raise FrameError(1002, "a close frame with a one-byte payload")
    code = int.from_bytes(payload[:2], "big")
    if not _remote_code_allowed(code):
        raise FrameError(1002, f"a close frame with code {code}, which a peer may not send")
    try:
        return Close(code, payload[2:].decode())
    except UnicodeDecodeError:
        raise FrameError(1007, "a close reason that is not UTF-8") from None


class FrameReader:
    """The server's byte stream in, messages and control frames out.

    ``feed()`` what the socket gave; ``next_event()`` returns the next whole message (``str`` for text,
    ``bytes`` for binary), a ``Ping`` or a ``Close``, or None when more bytes are needed. Pongs are consumed
    without an event (the heartbeat is at the application level). After a ``Close`` nothing more is parsed.
    """

    __slots__ = ("_buffer", "_closed", "_max_message_bytes", "_partial_opcode", "_partial_size", "_parts",
                 "_pos")

    def __init__(self, max_message_bytes: int) -> None:
        self._max_message_bytes = max_message_bytes
        self._buffer: bytes | bytearray = b""
        self._pos = 0  # where the next frame starts in _buffer
        self._partial_opcode = 0  # OP_TEXT or OP_BINARY while a fragmented message is arriving, else 0
        self._partial_size = 0
        self._parts: list[bytes | bytearray] = []
        self._closed = False

    def feed(self, data: bytes) -> None:
        buffer, pos = self._buffer, self._pos
        if pos >= len(buffer):
            self._buffer = data  # the usual case: the last read ended on a frame boundary
        else:
            # A frame is still arriving: grow a bytearray in place (a snapshot of megabytes comes in 64 KiB
            # reads, and joining bytes afresh on every read would copy it over and over).
            rest = buffer if isinstance(buffer, bytearray) and not pos else bytearray(buffer[pos:])
            rest += data
            self._buffer = rest
        self._pos = 0

    def next_event(self) -> str | bytes | Ping | Close | None:
        while not self._closed:
            frame = self._next_frame()
            if frame is None:
                return None
            opcode, fin, payload = frame
            if opcode in (OP_TEXT, OP_BINARY):
                if self._partial_opcode:
                    raise FrameError(1002, "a new message began inside a fragmented one")
                if fin:
                    return _decoded(opcode, payload)
                self._partial_opcode, self._partial_size, self._parts = opcode, len(payload), [payload]
            elif opcode == OP_CONTINUATION:
                if not self._partial_opcode:
                    raise FrameError(1002, "a continuation frame with no message to continue")
                self._parts.append(payload)
                self._partial_size += len(payload)
                if fin:
                    message = _decoded(self._partial_opcode, b"".join(self._parts))
                    self._partial_opcode, self._partial_size, self._parts = 0, 0, []
                    return message
            elif opcode == OP_PING:
                return Ping(bytes(payload))
            elif opcode == OP_CLOSE:
                self._closed = True
                return _close_event(bytes(payload))
            # OP_PONG: nothing to do
        return None

    def _next_frame(self) -> tuple[int, int, bytes | bytearray] | None:
        """(opcode, fin, payload) of the next whole frame, or None when it has not all arrived."""
        buffer, pos = self._buffer, self._pos
        available = len(buffer) - pos
        if available < 2:
            return None
        first, second = buffer[pos], buffer[pos + 1]
        if first & 0x70:
            raise FrameError(1002, "reserved bits set (no extension was negotiated)")
        if second & 0x80:
            raise FrameError(1002, "a masked frame from the server")
        opcode, fin, length, header = first & 0x0F, first & 0x80, second & 0x7F, 2
        if length == 126:
            if available < 4:
                return None
            length, header = int.from_bytes(buffer[pos + 2:pos + 4], "big"), 4
            if length <= _MAX_CONTROL:
                raise FrameError(1002, "a length in 2 bytes that fits in 1")
        elif length == 127:
            if available < 10:
                return None
            length, header = int.from_bytes(buffer[pos + 2:pos + 10], "big"), 10
            if length <= 0xFFFF or length >> 63:
                raise FrameError(1002, "a length in 8 bytes that fits in 2, or over 2**63")
        if opcode >= OP_CLOSE:
            if opcode > OP_PONG:
                raise FrameError(1002, f"unknown opcode {opcode}")
            if not fin or length > _MAX_CONTROL:
                raise FrameError(1002, "a fragmented control frame, or one over 125 bytes")
        elif opcode > OP_BINARY:
            raise FrameError(1002, f"unknown opcode {opcode}")
        elif length + (self._partial_size if opcode == OP_CONTINUATION else 0) > self._max_message_bytes:
            raise FrameError(1009, f"message over {self._max_message_bytes} bytes")
        end = pos + header + length
        if len(buffer) < end:
            return None
        self._pos = end
        return opcode, fin, buffer[pos + header:end]


def _decoded(opcode: int, payload: bytes | bytearray) -> str | bytes:
    if opcode == OP_BINARY:
        return bytes(payload)
    try:
        return payload.decode()
    except UnicodeDecodeError:
        raise FrameError(1007, "a text message that is not UTF-8") from None


class MaskKeys:
    """Masking keys from the OS's random source, read 1,024 at a time (RFC 6455 5.3 asks for strong entropy;
    it does not ask for a system call per frame)."""

    __slots__ = ("_keys", "_pos")

    _BATCH = 4 * 1024

    def __init__(self) -> None:
        self._keys = b""
        self._pos = 0

    def next(self) -> bytes:
        pos = self._pos
        if pos >= len(self._keys):
            self._keys, pos = os.urandom(self._BATCH), 0
        self._pos = pos + 4
        return self._keys[pos:pos + 4]


def frame(opcode: int, payload: bytes, key: bytes) -> bytes:
    """One final, masked frame (a client must mask every frame it sends)."""
    length = len(payload)
    if length <= _MAX_CONTROL:
        header = bytes((0x80 | opcode, 0x80 | length))
    elif length <= 0xFFFF:
        header = bytes((0x80 | opcode, 0x80 | 126)) + length.to_bytes(2, "big")
    else:
        header = bytes((0x80 | opcode, 0x80 | 127)) + length.to_bytes(8, "big")
    # XOR as one big integer: a C loop, where a Python loop over the bytes would cost microseconds per frame.
    mask = int.from_bytes((key * (length // 4 + 1))[:length], "little")
    return header + key + (int.from_bytes(payload, "little") ^ mask).to_bytes(length, "little")


def close_frame(code: int, reason: str, key: bytes) -> bytes:
    """A close frame; 1005 sends none (the peer gave none), another local-only code goes out as 1000, and the
    reason is cut to the 123 bytes a close frame holds, on a character boundary."""
    if code == NO_STATUS:
        return frame(OP_CLOSE, b"", key)
    if code in _LOCAL_ONLY:
        code = 1000
    encoded = reason.encode()
    if len(encoded) > _MAX_REASON:
        encoded = encoded[:_MAX_REASON].decode(errors="ignore").encode()
    return frame(OP_CLOSE, code.to_bytes(2, "big") + encoded, key)
