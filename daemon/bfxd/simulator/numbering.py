"""Sequence numbers on one connection's frames, once the client asked for them with ``conf`` flag SEQ_ALL (65536).

What is numbered, mirroring what the official Node client checks (``bfxd.protocol.sequence`` has the rules):
- every array frame takes the next *public* number, except the answers to inputs (``*-req`` notifications);
- channel-0 account frames (snapshots and updates) also take the next *auth* number and carry both,
  ``[0, KIND, PAYLOAD, PUBLIC, AUTH]``; heartbeats carry only the public number, ``[CHAN, "hb", PUBLIC]``;
- an input's answer carries the current auth number without advancing it, ``[0, "n", [...], AUTH]``.
Both counters start at 1 with the first frame numbered after the ``conf``. Events (objects) are never numbered.
"""

from __future__ import annotations

from typing import Literal

import attrs

from bfxd.protocol import SEQ_ALL, encode

# How a frame is numbered: account snapshot / account update / input answer / heartbeat / other array frame.
FrameKind = Literal["snapshot", "update", "answer", "heartbeat", "public"]


@attrs.define
class Numbering:
    enabled: bool = False
    public: int = 0
    auth: int = 0

    def configure(self, flags: int) -> None:
        """A ``conf`` request: numbering is on while its flags include SEQ_ALL."""
        self.enabled = bool(flags & SEQ_ALL)

    def number(self, frame: str, kind: FrameKind) -> str:
        """The frame with its numbers appended (unchanged while numbering is off). Counts it either way."""
        if not self.enabled:
            return frame
        if kind == "answer":
            return encode.with_sequence(frame, self.auth)
        self.public += 1
        if kind in ("heartbeat", "public"):
            return encode.with_sequence(frame, self.public)
        self.auth += 1
        return encode.with_sequence(frame, self.public, self.auth)
