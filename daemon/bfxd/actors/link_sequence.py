"""One link's sequence numbers, as the connection actor checks them (the rules are ``protocol.sequence``'s).

A number out of line is first only *suspect*: a garbled frame (garbage that ends in a number) must not cost the
link. A real gap shows again in the next numbered frame, which carries the number after the suspect one (the
check never moves past a bad number, so that frame is out of line too); garbage does not, and the sequence simply
goes on. So a gap is confirmed by the next numbered frame that continues the suspect's numbers (at most a
heartbeat later, 15 s) and then ends the link. A frame out of line that does not continue them (a second garbled
frame, which may even repeat the first one's number) takes the suspect's place instead.
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
        if verdict.is_gap and suspect is not None and _continues(suspect, verdict):
            log.warning("exchange.sequence_gap", stream=suspect.stream, expected=suspect.expected, got=suspect.got,
                        generation=self._generation)
            return f"sequence gap ({suspect.describe()}): resynchronising"
        if verdict.is_gap:
            self._suspect = verdict
            log.info("exchange.sequence_suspect", stream=verdict.stream, expected=verdict.expected,
                     got=verdict.got, generation=self._generation)
        elif verdict.status == "ok" and suspect is not None:
            log.info("exchange.sequence_ignored", reason="one frame out of line, the sequence went on",
                     expected=suspect.expected, got=suspect.got, generation=self._generation)
            self._suspect = None
        return None


def _continues(suspect: SequenceVerdict, verdict: SequenceVerdict) -> bool:
    """Whether *verdict*'s number is the one after *suspect*'s on the same stream: the sequence really jumped.
    Strictly the next: a notification repeats the current auth number, and so does a garbled frame repeated, so
    a repeat only takes the suspect's place (the next advancing frame confirms a real gap)."""
    if verdict.stream != suspect.stream or verdict.got is None or suspect.got is None:
        return False
    return verdict.got == suspect.got + 1
