"""Sequence numbers (``conf`` flag SEQ_ALL, 65536): which frames carry them, and the check for a missed frame.

With the flag on, the exchange appends numbers to array frames. The rules below are the official Node client's,
``WSv2._validateMessageSeq`` (npm ``bitfinex-api-node`` 7.0.0, ``lib/transports/ws2.js``, read in the
repository's latest version; an older one skipped only ERROR notifications' public number), restated:

- Only arrays carry numbers; events (objects) never do.
- The *public* number counts every array frame of the connection: it is the last element, or for channel-0
  frames other than ``hb`` the second to last. ``*-req`` notifications (the answers to inputs) carry none.
- The *auth* number counts channel-0 account frames: the last element of every channel-0 frame except ``hb``.
  A notification repeats the current auth number (it does not advance it); every other account frame advances
  it by exactly one. 0 means "still syncing" and is not checked.
- The first public number seen is taken as the start, unchecked, and that frame's auth number is not looked at
  (the client returns before reaching it). Likewise the first auth number checked is taken as the start.
- A frame whose number is missing or not a finite number is accepted as it is and changes nothing, so a
  connection whose exchange never sends numbers is never refused (and never resynchronised in a loop).

``sequence_numbers(msg)`` reads the numbers off an already parsed frame (``decode.load_json``) without
touching its decoding: decode it with ``decode_exchange_message`` as usual, whether or not it decodes. Feed
*every* parsed frame to one ``SequenceCheck`` per connection, in arrival order, bad frames included: a frame
that fails to decode still took its numbers. After a gap the link is to be replaced (fresh link, fresh check).
"""

from __future__ import annotations

import math
from typing import Any, Literal

import attrs

from bfxd.protocol.encode import FLAG_SEQ_ALL

SEQ_ALL = FLAG_SEQ_ALL


def _number(value: object) -> int | float | None:
    """lodash ``_isFinite``: a finite number (bools are not numbers here), else None."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    if isinstance(value, int):
        return value  # always finite; math.isfinite would overflow on a huge one
    return value if math.isfinite(value) else None


@attrs.frozen
class SequenceNumbers:
    """What one array frame says about sequencing. ``public``/``auth`` are None where the frame has none."""

    public: int | float | None
    auth: int | float | None
    is_request_answer: bool  # a ``*-req`` notification: no public number by design
    is_notification: bool  # channel-0 ``n``: the auth number must not advance


def _is_request_answer(msg: list[Any]) -> bool:
    # ws2.js: `${(msg[2] || [])[1] || ''}`.slice(-4) !== '-req'. Only a string TYPE can end in "-req"; the
    # client's string coercion of other values (arrays of rows) cannot produce a match we need to reproduce.
    payload = msg[2] if len(msg) > 2 else None
    kind = payload[1] if isinstance(payload, list) and len(payload) > 1 else None
    return isinstance(kind, str) and kind.endswith("-req")


def sequence_numbers(msg: Any) -> SequenceNumbers | None:
    """The numbers an already parsed frame carries (None for objects and empty arrays)."""
    if not isinstance(msg, list) or not msg:
        return None
    kind = msg[1] if len(msg) > 1 else None
    account = msg[0] == 0 and not isinstance(msg[0], bool) and kind != "hb"
    request_answer = _is_request_answer(msg)
    public = None
    position = -2 if account else -1  # counted from the end; JavaScript reads a missing index as undefined
    if not request_answer and len(msg) >= -position:
        public = _number(msg[position])
    return SequenceNumbers(public=public, auth=_number(msg[-1]) if account else None,
                           is_request_answer=request_answer, is_notification=account and kind == "n")


@attrs.frozen
class SequenceVerdict:
    """``ok`` (checked, or a start), ``no-number`` (nothing to check), or ``gap`` with what was expected."""

    status: Literal["ok", "no-number", "gap"]
    stream: Literal["public", "auth"] | None = None
    expected: int | float | None = None
    got: int | float | None = None

    @property
    def is_gap(self) -> bool:
        return self.status == "gap"

    def describe(self) -> str:
        """One line for the log (``exchange.sequence_gap``)."""
        if not self.is_gap:
            return self.status
        return f"{self.stream} sequence: expected {self.expected}, got {self.got}"


OK = SequenceVerdict("ok")
NO_NUMBER = SequenceVerdict("no-number")


def _gap(stream: Literal["public", "auth"], expected: int | float, got: int | float) -> SequenceVerdict:
    return SequenceVerdict("gap", stream, expected, got)


@attrs.define
class SequenceCheck:
    """One connection's last numbers; ``feed`` each frame's ``sequence_numbers`` in arrival order.

    A gap leaves the state as it was (the Node client does not move past a bad number either).
    """

    last_public: int | float | None = None
    last_auth: int | float | None = None

    def feed(self, numbers: SequenceNumbers | None) -> SequenceVerdict:
        if numbers is None:
            return NO_NUMBER
        if not numbers.is_request_answer:
            public = numbers.public
            if public is None:
                return NO_NUMBER
            if self.last_public is None:
                self.last_public = public
                return OK
            if public != self.last_public + 1:
                return _gap("public", self.last_public + 1, public)
            self.last_public = public
        auth = numbers.auth
        if auth is None:
            return NO_NUMBER if numbers.is_request_answer else OK
        if auth == 0:
            return OK  # "still syncing"
        if numbers.is_notification:
            expected = -1 if self.last_auth is None else self.last_auth
            return OK if auth == expected else _gap("auth", expected, auth)
        if auth == self.last_auth:
            return _gap("auth", auth + 1, auth)
        if self.last_auth is not None and auth != self.last_auth + 1:
            return _gap("auth", self.last_auth + 1, auth)
        self.last_auth = auth
        return OK
