"""bfxd.metrics and daemon_metrics: the registry, the text format (parsed by prometheus_client's own parser)."""

from __future__ import annotations

import math

import pytest
import trio
from prometheus_client.parser import text_string_to_metric_families

from bfxd.actors.session import SessionBoard
from bfxd.daemon_metrics import DaemonMetrics
from bfxd.metrics import Counter, Histogram, Registry


def parsed(text: str) -> dict[str, object]:
    """name → prometheus_client Metric, from our exposition."""
    return {family.name: family for family in text_string_to_metric_families(text)}


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


class TestRegistry:
    def test_counter_gauge_histogram_round_trip_through_the_official_parser(self) -> None:
        registry = Registry()
        requests = registry.counter("bfxd_requests", "requests by op", ("op", "outcome"))
        queue = registry.gauge("bfxd_input_queue", "queued frames")
        durations = registry.histogram("bfxd_request_duration_seconds", "durations", ("op",),
                                       buckets=(0.001, 0.01, 0.1))
        requests.labels("cancel", "ok").inc()
        requests.labels("cancel", "ok").inc(2)
        requests.labels("cancel", "timeout").inc()
        queue.labels().set(7)
        for value in (0.0005, 0.001, 0.05, 3.0):
            durations.labels("cancel").observe(value)
        text = registry.render()
        families = parsed(text)
        assert {f.type for f in families.values()} == {"counter", "gauge", "histogram"}
        got = samples(text)
        assert got[("bfxd_requests_total", (("op", "cancel"), ("outcome", "ok")))] == 3
        assert got[("bfxd_requests_total", (("op", "cancel"), ("outcome", "timeout")))] == 1
        assert got[("bfxd_input_queue", ())] == 7
        buckets = {labels: v for (name, labels), v in got.items() if name == "bfxd_request_duration_seconds_bucket"}
        assert buckets == {
            (("le", "0.001"), ("op", "cancel")): 2,  # 0.001 itself is "less or equal"
            (("le", "0.01"), ("op", "cancel")): 2,
            (("le", "0.1"), ("op", "cancel")): 3,
            (("le", "+Inf"), ("op", "cancel")): 4,
        }
        assert got[("bfxd_request_duration_seconds_count", (("op", "cancel"),))] == 4
        assert math.isclose(got[("bfxd_request_duration_seconds_sum", (("op", "cancel"),))], 3.0515)

    def test_label_values_and_help_are_escaped(self) -> None:
        registry = Registry()
        registry.counter("c", 'help with \\ and\nnewline', ("l",)).labels('a"b\\c\nd').inc()
        text = registry.render()
        family = parsed(text)["c"]
        assert family.documentation == "help with \\ and\nnewline"
        assert family.samples[0].labels == {"l": 'a"b\\c\nd'}

    def test_children_are_kept(self) -> None:
        family = Registry().counter("c", "h", ("op",))
        assert family.labels("cancel") is family.labels("cancel")

    def test_mistakes_raise(self) -> None:
        registry = Registry()
        family = registry.counter("c", "h", ("op",))
        with pytest.raises(ValueError, match="takes labels"):
            family.labels("a", "b")
        with pytest.raises(ValueError, match="already registered"):
            registry.counter("c", "h")
        with pytest.raises(ValueError, match="only goes up"):
            Counter().inc(-1)
        with pytest.raises(ValueError, match="not a metric name"):
            registry.gauge("bad-name", "h")
        with pytest.raises(ValueError, match="increasing"):
            registry.histogram("h", "h", buckets=(1.0, 0.5))

    def test_histogram_counts_every_value_once(self) -> None:
        hist = Histogram((1.0, 2.0))
        for value in (0.5, 1.0, 1.5, 2.0, 2.5, math.inf):
            hist.observe(value)
        assert hist.counts == [2, 2, 2]
        assert hist.count == 6

    def test_empty_registry_renders_nothing(self) -> None:
        assert Registry().render() == ""


class TestDaemonMetrics:
    async def test_board_values_are_read_when_scraped(self) -> None:
        board = SessionBoard(wall_clock=lambda: 1000.0)
        metrics = DaemonMetrics(board, wall_clock=lambda: 1000.0)
        got = samples(metrics.render())
        assert got[("bfxd_session_state", (("state", "connecting"),))] == 1
        assert got[("bfxd_session_state", (("state", "ready"),))] == 0
        assert ("bfxd_last_frame_age_seconds", ()) not in got  # no frame yet: no sample
        board.set_state("ready")
        board.offers, board.reconnects, board.pending = 12, 3, 1
        board.note_frame(trio.current_time() - 2.5)
        metrics.requests("cancel", "ok").inc()
        metrics.request_duration("cancel").observe(0.002)
        metrics.inputs_sent("foc").inc()
        metrics.clients.inc()
        metrics.input_queue.set(4)
        text = metrics.render()
        got = samples(text)
        assert got[("bfxd_session_state", (("state", "ready"),))] == 1
        assert got[("bfxd_session_state", (("state", "connecting"),))] == 0
        assert got[("bfxd_offers", ())] == 12
        assert got[("bfxd_reconnects_total", ())] == 3
        assert got[("bfxd_pending_cancels", ())] == 1
        assert 2.5 <= got[("bfxd_last_frame_age_seconds", ())] < 30
        assert got[("bfxd_requests_total", (("op", "cancel"), ("outcome", "ok")))] == 1
        assert got[("bfxd_request_duration_seconds_count", (("op", "cancel"),))] == 1
        assert got[("bfxd_inputs_sent_total", (("kind", "foc"),))] == 1
        assert got[("bfxd_clients", ())] == 1
        assert got[("bfxd_input_queue", ())] == 4
        assert got[("bfxd_start_time_seconds", ())] == 1000
        assert parsed(text)["bfxd_reconnects"].type == "counter"
