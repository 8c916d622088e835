"""bfxctl's human output: aligned tables, times as people read them, one line per watch event.

No colour, ever (so ``NO_COLOR`` holds trivially, and output piped to a file stays plain).
"""

from __future__ import annotations

import time
from decimal import Decimal

TYPE_CHECKING = False
if TYPE_CHECKING:
    from bfxd.client import Credit, Offer, Wallet


def text(value: object) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, Decimal):
        return format(value, "f")  # 1E-5 reads badly in a rate column: 0.00001
    if isinstance(value, float) and "e" in repr(value):
        return f"{value:.12f}".rstrip("0").rstrip(".")
    if isinstance(value, list | tuple | frozenset | set):
        return ", ".join(sorted(map(text, value))) or "-"
    return str(value)


def table(rows: list[list[str]], right: tuple[int, ...] = ()) -> str:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return "\n".join("  ".join(c.rjust(w) if i in right else c.ljust(w) for i, (c, w) in
                               enumerate(zip(row, widths, strict=True))).rstrip() for row in rows)


def ago(seconds: float) -> str:
    """How long ago, in the largest unit that reads well: "12 s ago", "5 min ago", "3 h 20 min ago", "2 d ago"."""
    if seconds < 0:
        return "in the future (clocks differ)"
    if seconds < 60:
        return f"{seconds:.0f} s ago"
    if seconds < 3600:
        return f"{seconds // 60:.0f} min ago"
    if seconds < 86400:
        return f"{seconds // 3600:.0f} h {seconds % 3600 // 60:.0f} min ago"
    return f"{seconds // 86400:.0f} d ago"


def clock(unix_s: float) -> str:
    """A local wall-clock time with its zone, e.g. 2026-12-02 14:20:01 UTC."""
    return time.strftime("%Y-%m-%d %H:%M:%S %Z", time.localtime(unix_s))


def since(unix_s: object, now: float | None = None) -> str:
    """The status's ``since``: "2026-12-02 14:20:01 UTC (5 min ago)"; anything not a number as it is."""
    if isinstance(unix_s, bool) or not isinstance(unix_s, int | float | Decimal):
        return text(unix_s)
    now = time.time() if now is None else now
    return f"{clock(float(unix_s))} ({ago(now - float(unix_s))})"


def mts(value: int | None) -> str:
    """An exchange time (milliseconds) to the minute: 2026-12-02 14:20 UTC."""
    return "-" if value is None else time.strftime("%Y-%m-%d %H:%M %Z", time.localtime(value / 1000))


def offer_rows(offers: list[Offer]) -> str:
    rows = [["ID", "SYMBOL", "AMOUNT", "RATE", "PERIOD", "STATUS", "TYPE"]]
    rows += [[text(o.id), text(o.symbol), text(o.amount), text(o.rate), text(o.period), text(o.status),
              text(o.type)] for o in offers]
    return table(rows, right=(2, 3, 4))


def wallet_rows(wallets: list[Wallet]) -> str:
    rows = [["TYPE", "CURRENCY", "BALANCE", "UNSETTLED", "AVAILABLE"]]
    rows += [[text(w.type), text(w.currency), text(w.balance), text(w.unsettled_interest), text(w.available)]
             for w in wallets]
    return table(rows, right=(2, 3, 4))


def credit_rows(credits: list[Credit], *, pair: bool) -> str:
    """Credits (with the position's pair) or loans: amount, rate, period, opened, expires = opening + period."""
    header = ["ID", "SYMBOL", "AMOUNT", "RATE", "PERIOD", "OPENED", "EXPIRES", "STATUS"] + (["PAIR"] if pair else [])
    rows = [header]
    for c in credits:
        expires = None if c.mts_opening is None or c.period is None else c.mts_opening + c.period * 86_400_000
        row = [text(c.id), text(c.symbol), text(c.amount), text(c.rate), text(c.period), mts(c.mts_opening),
               mts(expires), text(c.status)]
        rows.append(row + ([text(c.position_pair)] if pair else []))
    return table(rows, right=(2, 3, 4))


def describe(event: dict) -> str:
    """One watch event (as parsed from its line) in one line: time, kind, action, fields, the object's key fields."""
    kind, rest = event.get("event"), {k: v for k, v in event.items() if k != "event"}
    parts = [time.strftime("%H:%M:%S"), text(kind)]
    if "action" in rest:
        parts.append(text(rest.pop("action")))
    if kind == "state" and isinstance(rest.get("since"), int | float | Decimal):
        rest["since"] = clock(float(rest["since"]))
    objects = {k: rest.pop(k) for k in list(rest) if isinstance(rest[k], dict)}
    parts += [f"{k}={text(v)}" for k, v in rest.items() if not isinstance(v, list)]
    for obj in objects.values():
        keys = [k for k in ("id", "symbol", "type", "currency", "amount", "balance", "available", "rate", "period",
                            "status") if k in obj]
        parts.append(" ".join(f"{k}={text(obj.get(k))}" for k in keys))
    return "  ".join(parts)
