"""Refused connections, logged without letting a flood of connects flood the log.

The first refusal of a (reason, uid) pair in each window is logged (``client.refused``); the rest are counted and
the count goes out with the next line logged for that pair (``suppressed``), so nothing is lost, only folded.
"""

from __future__ import annotations

import attrs
import structlog
import trio

from bfxd.unix_socket import PeerCred

log = structlog.get_logger()

WINDOW_S = 10.0


@attrs.define
class _Tally:
    logged_at: float
    suppressed: int = 0


@attrs.define
class RefusalLog:
    window_s: float = WINDOW_S
    _tallies: dict[tuple[str, int], _Tally] = attrs.field(factory=dict)

    def note(self, error_type: str, peer: PeerCred, message: str) -> None:
        now = trio.current_time()
        key = (error_type, peer.uid)
        tally = self._tallies.get(key)
        if tally is not None and now - tally.logged_at < self.window_s:
            tally.suppressed += 1
            return
        suppressed = tally.suppressed if tally is not None else 0
        self._tallies[key] = _Tally(now)
        if len(self._tallies) > 4096:  # many uids: forget the oldest tallies rather than grow without bound
            for stale in [k for k, t in self._tallies.items() if now - t.logged_at >= self.window_s]:
                del self._tallies[stale]
        log.warning("client.refused", error=error_type, reason=message, peer_uid=peer.uid, peer_pid=peer.pid,
                    suppressed=suppressed)
