"""What the input machine (``bfxd.protocol.inputs``) returns for its shell to carry out: its effects.

Requesters are opaque handles: the machine only keeps them and hands them back in ``Settle`` and the audit effects.
"""

from __future__ import annotations

from collections.abc import Hashable
from typing import Any, Literal

import attrs

from bfxd.protocol.events import Notification
from bfxd.protocol.input_kinds import Outcome

__all__ = ["Effect", "Record", "Requester", "Routed", "SendFrame", "Settle"]

Requester = Hashable

# ---- effects ---------------------------------------------------------------------------------------------


@attrs.frozen
class SendFrame:
    """Send *text* on *link* once the pacer gives it a turn; report the turn with ``frame_sent(token)``."""

    token: int
    link: int
    kind: str
    text: str
    audit: dict[str, Any]
    requesters: tuple[Requester, ...]


@attrs.frozen
class Settle:
    requester: Requester
    outcome: Outcome


@attrs.frozen
class Routed:
    """A notification of an input kind, and whom it settled (none: a late answer, or ``unmatched``)."""

    notification: Notification
    matched_by: Literal["offer_id", "order"] | None
    requesters: tuple[Requester, ...]
    fields: dict[str, Any] = attrs.field(factory=dict)  # the audit fields of the input it answered
    unmatched: str | None = None  # why no input in flight could be its question


@attrs.frozen
class Record:
    """An audit event, named by one of the constants below."""

    event: str
    fields: dict[str, Any]
    requesters: tuple[Requester, ...] = ()


Effect = SendFrame | Settle | Routed | Record
