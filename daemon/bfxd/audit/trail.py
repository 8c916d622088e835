"""One run of the audit trail: its first line, its checkpoints, its last line, and the anchor file.

- ``audit.started`` (seq 0): the run id is new; with an anchor file it also names the previous run's last
  recorded head (``prev_run``, ``prev_seq``, ``prev_chain``), so ``verify`` can tell a run whose end was cut
  off from one that simply stopped.
- ``audit.checkpoint`` every ``checkpoint_interval`` seconds while lines are being written: ``head_seq`` and
  ``head_chain`` name the line before it; the checkpoint's own (run, seq, chain) is appended to the anchor file.
- ``audit.closed`` on the way out of the process (atexit), anchored too: after a clean stop, the anchor file
  holds the run's very last head, so no tail can go missing unseen.
"""

from __future__ import annotations

import datetime
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import attrs

from bfxd.audit.chain import read_last_anchor, write_anchor

__all__ = ["AuditSettings", "AuditTrail"]

Head = tuple[str, int, str]  # run, seq of the newest sealed line, its chain (hex)


@attrs.frozen
class AuditSettings:
    anchor_file: Path | None = None
    checkpoint_interval: float = 300.0


class AuditTrail:
    def __init__(self, settings: AuditSettings, head: Callable[[], Head], log: Any,
                 clock: Callable[[], float] = time.monotonic) -> None:
        """*log*: a structlog logger that writes to the sealed sink whatever the configured level (the trail's
        own lines are never filtered out)."""
        self.settings, self.log = settings, log
        self._head, self._clock = head, clock
        self._next_checkpoint = clock() + settings.checkpoint_interval
        self._seq_anchored = -1
        self.closed = False
        self.anchor_error: str | None = None

    def start(self) -> None:
        previous = read_last_anchor(self.settings.anchor_file) if self.settings.anchor_file else None
        fields: dict[str, object] = {"pid": os.getpid()}
        if self.settings.anchor_file is not None:
            fields["anchor_file"] = str(self.settings.anchor_file)
        if previous is not None:
            fields.update(prev_run=previous["run"], prev_seq=previous["seq"], prev_chain=previous["chain"])
        self.log.info("audit.started", **fields)

    def due(self) -> bool:
        """Cheap: called whenever trio is about to wait."""
        return not self.closed and self._clock() >= self._next_checkpoint

    def checkpoint(self) -> None:
        self._next_checkpoint = self._clock() + self.settings.checkpoint_interval
        _run, seq, chain = self._head()
        if seq <= self._seq_anchored:
            return  # nothing logged since the last checkpoint: its head still holds
        self._mark("audit.checkpoint", seq, chain)

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            _run, seq, chain = self._head()
            self._mark("audit.closed", seq, chain)

    def _mark(self, event: str, head_seq: int, head_chain: str) -> None:
        self.log.info(event, head_seq=head_seq, head_chain=head_chain)
        run, seq, chain = self._head()  # the line just logged is the newest head
        self._seq_anchored = seq
        if self.settings.anchor_file is None:
            return
        stamp = datetime.datetime.now(datetime.UTC).isoformat().replace("+00:00", "Z")
        try:
            write_anchor(self.settings.anchor_file, {"timestamp": stamp, "event": event, "run": run, "seq": seq,
                                                     "chain": chain})
            self.anchor_error = None
        except OSError as exc:
            if self.anchor_error is None:  # once per failure streak, not every few minutes
                self.anchor_error = f"{type(exc).__name__}: {exc.strerror or exc}"
                self.log.warning("audit.anchor_failed", anchor_file=str(self.settings.anchor_file),
                            error=self.anchor_error)
