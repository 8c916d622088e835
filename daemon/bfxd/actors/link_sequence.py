"""One link's sequence numbers, as the connection actor checks them (the rules are ``protocol.sequence``'s).

A number out of line is first only *suspect*: a garbled frame (garbage that ends in a number) must not cost the
link. A real gap shows again in the next numbered frame, since the check never moves past a bad number; garbage
does not, and the sequence simply goes on. So a gap is confirmed by the next numbered frame (at most a heartbeat
later, 15 s) and then ends the link.
"""

from __future__ import annotations

from typing import Any

import structlog

from bfxd.protocol import SequenceCheck, SequenceVerdict, sequence_numbers

log = structlog.get_logger()


class LinkSequence:
    def __init__(self, generation: int) -> None:
        self._generation = generation
        self._check = SequenceCheck()  # one per link: a new link numbers afresh
        self._suspect: SequenceVerdict | None = None

    def feed(self, msg: Any) -> str | None:
        """Check one parsed frame; the reason to end the link if a gap is confirmed, else None."""
        verdict = self._check.feed(sequence_numbers(msg))
        suspect = self._suspect
        if verdict.is_gap and suspect is None:
            self._suspect = verdict
            log.info("exchange.sequence_suspect", stream=verdict.stream, expected=verdict.expected,
                     got=verdict.got, generation=self._generation)
        elif verdict.is_gap:
            assert suspect is not None
            log.warning("exchange.sequence_gap", stream=suspect.stream, expected=suspect.expected, got=suspect.got,
                        generation=self._generation)
            return f"sequence gap ({suspect.describe()}): resynchronising"
        elif verdict.status == "ok" and suspect is not None:
            log.info("exchange.sequence_ignored", reason="one frame out of line, the sequence went on",
                     expected=suspect.expected, got=suspect.got, generation=self._generation)
            self._suspect = None
        return None
