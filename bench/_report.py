"""The figures, their targets (from the benchmark issue, for a 2-core machine) and the printed table."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import attrs


def get(results: dict, key: str) -> Any:
    node: Any = results
    for part in key.split("."):
        if not isinstance(node, dict) or part not in node:
            return None
        node = node[part]
    return node


@attrs.frozen
class Row:
    key: str  # dotted path into results.json
    label: str
    unit: str = ""
    target: str = ""  # as printed; empty: a reference figure, no target
    check: Callable[[Any, dict], bool] | None = None

    def verdict(self, results: dict) -> str | None:
        value = get(results, self.key)
        if self.check is None:
            return None
        if value is None:
            return "missing"
        return "pass" if self.check(value, results) else "FAIL"


def _latency_target(value: float, results: dict) -> bool:
    floor, official = get(results, "latency.floor_p50_us"), get(results, "latency.official_client_p50_us")
    return floor is not None and official is not None and value <= 1.5 * floor and value < official


def _at_most(limit: float) -> Callable[[Any, dict], bool]:
    return lambda value, results: value <= limit


ROWS = (
    Row("latency.daemon_p50_us", "cancel latency p50, bfxd", "µs", "≤ 1.5 x floor, < official", _latency_target),
    Row("latency.daemon_p99_us", "cancel latency p99, bfxd", "µs"),
    Row("latency.floor_p50_us", "  floor p50 (ws + unix line, no daemon)", "µs"),
    Row("latency.floor_p99_us", "  floor p99", "µs"),
    Row("latency.official_client_p50_us", "  official client p50 (bfxapi)", "µs"),
    Row("latency.official_client_p99_us", "  official client p99", "µs"),
    Row("latency.daemon_over_floor", "bfxd p50 / floor p50", "x", "≤ 1.5", lambda v, r: v <= 1.5),
    Row("latency.daemon_over_official_client", "bfxd p50 / official p50", "x", "< 1", lambda v, r: v < 1.0),
    Row("latency.daemon_p50_us_stub", "cancel latency p50, bfxd, against the stub", "µs"),
    Row("latency.daemon_p99_us_stub", "  p99", "µs"),
    Row("latency.floor_p50_us_stub", "  floor p50 against the stub (the transport)", "µs"),
    Row("latency.floor_p99_us_stub", "  floor p99 against the stub", "µs"),
    Row("latency.official_client_p50_us_stub", "  official client p50 against the stub", "µs"),
    Row("latency.daemon_added_us_stub", "  bfxd p50 - floor p50 (stub)", "µs", "≤ 150", _at_most(150)),
    Row("latency.daemon_added_us", "  bfxd p50 - floor p50 (simulator)", "µs"),
    Row("orders.submit_p50_us", "submit p50, bfxd (simulator)", "µs"),
    Row("orders.submit_p99_us", "  p99", "µs"),
    Row("orders.submit_floor_p50_us", "  floor p50 (fon → fon-req + a unix line)", "µs"),
    Row("orders.submit_over_floor", "  bfxd / floor", "x", "≤ 1.5", _at_most(1.5)),
    Row("orders.submit_p50_us_stub", "submit p50, bfxd (stub)", "µs"),
    Row("orders.submit_p99_us_stub", "  p99", "µs"),
    Row("orders.submit_floor_p50_us_stub", "  floor p50 (stub)", "µs"),
    Row("orders.submit_added_us_stub", "  bfxd p50 - floor p50 (stub)", "µs", "≤ 150", _at_most(150)),
    Row("orders.replace_p50_us", "replace p50, bfxd (simulator)", "µs"),
    Row("orders.replace_p99_us", "  p99", "µs"),
    Row("orders.replace_floor_p50_us", "  floor p50 (foc → foc, fon → fon-req + a unix line)", "µs"),
    Row("orders.replace_over_floor", "  bfxd / floor", "x", "≤ 1.5", _at_most(1.5)),
    Row("orders.replace_p50_us_stub", "replace p50, bfxd (stub)", "µs"),
    Row("orders.replace_p99_us_stub", "  p99", "µs"),
    Row("orders.replace_floor_p50_us_stub", "  floor p50 (stub)", "µs"),
    Row("orders.replace_added_us_stub", "  bfxd p50 - floor p50 (stub)", "µs", "≤ 150", _at_most(150)),
    Row("paced.cancel_all_s", "paced cancel_all of 1,000 offers (18/s, exchange limit 20/1)", "s"),
    Row("paced.ideal_s", "  offers / pace", "s"),
    Row("paced.cancel_all_over_ideal", "  elapsed / (offers / pace)", "x", "≤ 1.1", _at_most(1.1)),
    Row("paced.succeeded", "  cancels answered ok", "", "every offer", lambda v, r: v == get(r, "paced.offers")),
    Row("paced.disconnects", "  disconnects meanwhile", "", "0",
        lambda v, r: v == 0 and get(r, "paced.reconnects") == 0),
    Row("throughput.cancels_per_s_1_client", "cancels/s, 1 client", "/s"),
    Row("throughput.cancels_per_s_10_clients", "cancels/s, 10 clients", "/s"),
    Row("throughput.cancels_per_s_100_clients", "cancels/s, 100 clients", "/s", "≥ 5000", lambda v, r: v >= 5000),
    Row("throughput.daemon_cpu_pct_100_clients", "  bfxd CPU, 100 clients", "% core"),
    Row("throughput.daemon_cpu_us_per_cancel_100_clients", "  bfxd CPU per cancel, 100 clients", "µs"),
    Row("throughput.sim_cpu_us_per_cancel_100_clients", "  simulator CPU per cancel, 100 clients", "µs"),
    Row("throughput.sim_cpu_pct_100_clients", "  simulator CPU, 100 clients", "% core", "< 90 (not the bottleneck)",
        lambda v, r: v < 90),
    Row("throughput.client_cpu_pct_100_clients", "  client process CPU, 100 clients", "% core"),
    Row("throughput.cancels_per_s_100_clients_stub", "cancels/s, 100 clients, against the stub", "/s", "≥ 4000",
        lambda v, r: v >= 4000),
    Row("throughput.daemon_cpu_us_per_cancel_100_clients_stub", "  bfxd CPU per cancel, 100 clients (stub)", "µs",
        "≤ 200", _at_most(200)),
    Row("throughput.sim_cpu_us_per_cancel_100_clients_stub", "  stub CPU per cancel", "µs"),
    Row("throughput.log_bytes_per_cancel_100_clients_stub", "  log bytes per cancel, 100 clients (stub)", "B"),
    Row("throughput.cancels_per_s_100_clients_stub_pinned", "  cancels/s, the daemon on a CPU of its own", "/s"),
    Row("throughput.daemon_cpu_us_per_cancel_100_clients_stub_pinned", "  bfxd CPU per cancel, on its own CPU", "µs"),
    Row("throughput.p99_ms_at_1000_per_s", "p99 latency at 1,000 cancels/s", "ms", "≤ 10",
        lambda v, r: v <= 10 and not get(r, "throughput.failed_at_1000_per_s")),
    Row("throughput.failed_at_1000_per_s", "  cancels that failed at 1,000/s (timeouts)", ""),
    Row("throughput.achieved_per_s_at_1000", "  rate achieved (offered 1,000/s)", "/s"),
    Row("throughput.max_ms_at_1000_per_s", "  max latency at 1,000/s", "ms"),
    Row("tail.p99_ms_alone", "p99 at 1,000 cancels/s (stub), alone", "ms"),
    Row("tail.max_ms_alone", "  max, alone", "ms"),
    Row("tail.p99_ms_with_hog", "  p99 beside a one-core CPU hog", "ms", "≤ 20",
        lambda v, r: v <= 20 and not get(r, "tail.failed_with_hog")),
    Row("tail.max_ms_with_hog", "  max beside the hog", "ms"),
    Row("tail.achieved_per_s_with_hog", "  rate achieved beside the hog", "/s"),
    Row("throughput.log_lines_per_cancel", "log lines per cancel (info, JSON)", ""),
    Row("throughput.log_bytes_per_cancel", "log bytes per cancel", "B"),
    Row("fanout.events_per_s", "watch events/s delivered, 100 watchers", "/s"),
    Row("fanout.cancels_per_s_100_watchers", "  cancels/s meanwhile (10 clients)", "/s"),
    Row("fanout.events_per_s_with_stalled", "  events/s with one stalled watcher too", "/s"),
    Row("fanout.slowdown_with_stalled", "  slowdown caused by the stalled watcher", "x", "≤ 1.2 (noise)",
        lambda v, r: v <= 1.2),
    Row("fanout.stalled_watcher_cut_off", "  stalled watcher cut off, not waited for", "", "yes",
        lambda v, r: v is True),
    Row("fanout.watchers_with_every_event_with_stalled", "  healthy watchers that got every event", "/100", "100",
        lambda v, r: v == 100),
    Row("memory.rss_mb_idle", "RSS idle", "MB"),
    Row("memory.rss_mb_10k_offers", "RSS, 10,000 offers", "MB"),
    Row("memory.rss_mb_10k_offers_1k_clients", "RSS, 10,000 offers + 1,000 clients", "MB", "≤ 60",
        lambda v, r: v <= 60),
    Row("memory.rss_mb_10k_offers_10k_credits", "RSS, 10,000 offers + 10,000 credits", "MB"),
    Row("memory.rss_mb_10k_offers_10k_credits_1k_clients", "RSS, 10,000 offers + 10,000 credits + 1,000 clients",
        "MB", "≤ 70", _at_most(70)),
    Row("memory.credits_held", "  credits bfxd holds (— : no credits op)", ""),
    Row("memory.growth_mb_1m_frames", "RSS growth over 1M exchange frames", "MB", "< 2", lambda v, r: v < 2),
    Row("memory.frames_per_s", "  frames/s pushed through bfxd", "/s"),
    Row("startup.ready_s", "bfxd run → READY=1", "s", "≤ 1", lambda v, r: v <= 1),
    Row("startup.session_ready_s", "  → authenticated session", "s"),
    Row("startup.bfxctl_status_ms", "bfxctl status wall time", "ms", "≤ 80", lambda v, r: v <= 80),
    Row("startup.python_startup_ms", "  bare `python -c pass`", "ms"),
    Row("audit.seal_us_per_line", "audit: sealing a log line (run/seq/chain)", "µs"),
    Row("audit.write_ahead_us_per_lone_frame", "  write-ahead, a lone frame (one extra write)", "µs"),
    Row("audit.write_ahead_us_per_frame_batch_64", "  write-ahead per frame, batch of 64", "µs"),
    Row("audit.show_lines_per_s", "audit show --offer, lines read", "/s"),
    Row("audit.show_s_per_gb", "  seconds per GB of log", "s", "seconds", lambda v, r: v <= 10),
    Row("audit.verify_lines_per_s", "audit verify, lines checked", "/s"),
)
TARGETS = ROWS


def _fmt(value: Any) -> str:
    if value is None:
        return "—"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:,.2f}" if abs(value) < 100 else f"{value:,.0f}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


def render_table(results: dict, verdicts: dict[str, str | None]) -> str:
    rows = [("figure", "value", "unit", "target", "")]
    for row in ROWS:
        rows.append((row.label, _fmt(get(results, row.key)), row.unit, row.target, verdicts.get(row.key) or ""))
    widths = [max(len(r[i]) for r in rows) for i in range(5)]
    lines = []
    for i, r in enumerate(rows):
        lines.append("  ".join((r[0].ljust(widths[0]), r[1].rjust(widths[1]), r[2].ljust(widths[2]),
                                r[3].ljust(widths[3]), r[4])).rstrip())
        if i == 0:
            lines.append("  ".join("-" * w for w in widths))
    return "\n".join(lines)
