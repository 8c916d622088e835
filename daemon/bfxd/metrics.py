"""Metrics: counters, gauges and histograms cheap enough for the cancel path, and the Prometheus text format.

Pure: no Trio, no I/O, no clock. The HTTP side is ``metrics_http.py``; bfxd's own series are declared in
``daemon_metrics.py``.

Cost model (the cancel path is latency-critical). A family hands out one *child* per label combination and
keeps it; the caller keeps the child too (``REQUESTS = family.labels("cancel", "ok")``), so an increment is
one attribute add on a ``__slots__`` object, no dict lookup, no string work: about 40 ns in CPython 3.11 (see
``bench``-style figures in the report). ``labels()`` on an existing combination is a dict lookup (tens of ns)
for callers that cannot keep the child. Histograms find their bucket with ``bisect`` on a tuple (C code).
Values derived from state the daemon keeps anyway (the session board) are not counted at all: *function*
families read them when scraped.

Text format: https://prometheus.io/docs/instrumenting/exposition_formats/ (version 0.0.4): ``# HELP`` and
``# TYPE`` once per family, a counter's family and samples named ``<name>_total``, a histogram's ``_bucket``
(cumulative, ``le`` ending in ``+Inf``), ``_sum`` and ``_count``; label values escape ``\\``, ``"`` and newline.
"""

from __future__ import annotations

import math
from bisect import bisect_left
from collections.abc import Callable, Iterable, Sequence
from typing import Any

__all__ = [
    "CONTENT_TYPE",
    "DEFAULT_BUCKETS",
    "Counter",
    "CounterFamily",
    "FunctionFamily",
    "Gauge",
    "GaugeFamily",
    "Histogram",
    "HistogramFamily",
    "Registry",
]

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
# Request durations on this daemon run from ~1 ms (a cancel over loopback) to the 10 s default deadline.
DEFAULT_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


class Counter:
    """One counter series. ``inc`` only goes up (a negative amount is a bug and raises)."""

    __slots__ = ("value",)

    def __init__(self) -> None:
        self.value: float = 0

    def inc(self, amount: float = 1) -> None:
        if amount >= 0:  # the usual case first: one comparison, then the add
            self.value += amount
        else:
            raise ValueError(f"a counter only goes up, got {amount!r}")


class Gauge:
    """One gauge series: set, or moved up and down."""

    __slots__ = ("value",)

    def __init__(self) -> None:
        self.value: float = 0

    def set(self, value: float) -> None:
        self.value = value

    def inc(self, amount: float = 1) -> None:
        self.value += amount

    def dec(self, amount: float = 1) -> None:
        self.value -= amount


class Histogram:
    """One histogram series: per-bucket counts (not cumulative; the renderer sums), sum and count."""

    __slots__ = ("bounds", "count", "counts", "sum")

    def __init__(self, bounds: tuple[float, ...]) -> None:
        self.bounds = bounds
        self.counts = [0] * (len(bounds) + 1)  # the last one is +Inf
        self.sum: float = 0.0
        self.count = 0

    def observe(self, value: float) -> None:
        # bisect_left: a value equal to a bound belongs to that bucket ("le" is less-or-equal).
        self.counts[bisect_left(self.bounds, value)] += 1
        self.sum += value
        self.count += 1


def _escape_label(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _escape_help(text: str) -> str:
    return text.replace("\\", "\\\\").replace("\n", "\\n")


def _number(value: float) -> str:
    if isinstance(value, int) or (isinstance(value, float) and value.is_integer() and abs(value) < 2**53):
        return str(int(value))
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    return repr(value)


def _labels_text(names: Sequence[str], values: Sequence[str], extra: str = "") -> str:
    pairs = [f'{name}="{_escape_label(value)}"' for name, value in zip(names, values, strict=True)]
    if extra:
        pairs.append(extra)
    return "{" + ",".join(pairs) + "}" if pairs else ""


class _Family:
    kind = ""

    def __init__(self, name: str, help_text: str, labelnames: Sequence[str] = ()) -> None:
        if not name.replace("_", "a").isalnum() or name[0].isdigit():
            raise ValueError(f"not a metric name: {name!r}")
        self.name, self.help, self.labelnames = name, help_text, tuple(labelnames)
        self._children: dict[tuple[str, ...], object] = {}

    def _new_child(self) -> object:
        raise NotImplementedError

    def labels(self, *values: str) -> Any:
        """The child for these label values (created on first use, then the same object every time).

        One implementation for every kind (no override, no super() call): this is on the hot path of callers
        that cannot keep their child.
        """
        try:
            return self._children[values]
        except KeyError:
            if len(values) != len(self.labelnames):
                raise ValueError(f"{self.name} takes labels {self.labelnames}, got {values!r}") from None
            child = self._children[values] = self._new_child()
            return child

    def header(self) -> list[str]:
        # In the 0.0.4 text format a counter's family carries the "_total" of its samples (as
        # prometheus_client's own output does); OpenMetrics would drop it.
        name = self.name + "_total" if self.kind == "counter" else self.name
        return [f"# HELP {name} {_escape_help(self.help)}", f"# TYPE {name} {self.kind}"]

    def render_lines(self) -> list[str]:
        raise NotImplementedError


class CounterFamily(_Family):
    kind = "counter"

    def _new_child(self) -> Counter:
        return Counter()

    def render_lines(self) -> list[str]:
        lines = self.header()
        for values, child in self._children.items():
            lines.append(f"{self.name}_total{_labels_text(self.labelnames, values)} {_number(child.value)}")  # type: ignore[attr-defined]
        return lines


class GaugeFamily(_Family):
    kind = "gauge"

    def _new_child(self) -> Gauge:
        return Gauge()

    def render_lines(self) -> list[str]:
        lines = self.header()
        for values, child in self._children.items():
            lines.append(f"{self.name}{_labels_text(self.labelnames, values)} {_number(child.value)}")  # type: ignore[attr-defined]
        return lines


class HistogramFamily(_Family):
    kind = "histogram"

    def __init__(self, name: str, help_text: str, labelnames: Sequence[str] = (),
                 buckets: Sequence[float] = DEFAULT_BUCKETS) -> None:
        super().__init__(name, help_text, labelnames)
        bounds = tuple(float(b) for b in buckets if not math.isinf(b))
        if list(bounds) != sorted(set(bounds)) or not bounds:
            raise ValueError(f"buckets must be increasing and distinct, got {buckets!r}")
        self.bounds = bounds

    def _new_child(self) -> Histogram:
        return Histogram(self.bounds)

    def render_lines(self) -> list[str]:
        lines = self.header()
        for values, child in self._children.items():
            hist: Histogram = child  # type: ignore[assignment]
            cumulative = 0
            for bound, count in zip((*hist.bounds, math.inf), hist.counts, strict=True):
                cumulative += count
                le = 'le="+Inf"' if math.isinf(bound) else f'le="{bound!r}"'  # 0.005, 1.0: as the client does
                lines.append(f"{self.name}_bucket{_labels_text(self.labelnames, values, le)} {cumulative}")
            labels = _labels_text(self.labelnames, values)
            lines.append(f"{self.name}_sum{labels} {_number(hist.sum)}")
            lines.append(f"{self.name}_count{labels} {hist.count}")
        return lines


class FunctionFamily(_Family):
    """Series computed when scraped: ``collect()`` yields ``(label values, value)`` pairs.

    ``kind`` is ``"gauge"`` or ``"counter"`` (a counter read from a total kept elsewhere, e.g. the board's
    reconnect count).
    """

    def __init__(self, name: str, help_text: str, collect: Callable[[], Iterable[tuple[Sequence[str], float]]],
                 *, labelnames: Sequence[str] = (), kind: str = "gauge") -> None:
        super().__init__(name, help_text, labelnames)
        if kind not in ("gauge", "counter"):
            raise ValueError(f"kind must be gauge or counter, got {kind!r}")
        self.kind, self._collect = kind, collect

    def render_lines(self) -> list[str]:
        lines = self.header()
        suffix = "_total" if self.kind == "counter" else ""
        for values, value in self._collect():
            if value is None:
                continue  # nothing to report yet (e.g. no frame received so far)
            lines.append(f"{self.name}{suffix}{_labels_text(self.labelnames, values)} {_number(value)}")
        return lines


class Registry:
    """The families, in the order they were added; ``render()`` is the whole exposition."""

    def __init__(self) -> None:
        self._families: dict[str, _Family] = {}

    def add(self, family: _Family) -> _Family:
        if family.name in self._families:
            raise ValueError(f"metric {family.name!r} is already registered")
        self._families[family.name] = family
        return family

    def counter(self, name: str, help_text: str, labelnames: Sequence[str] = ()) -> CounterFamily:
        return self.add(CounterFamily(name, help_text, labelnames))  # type: ignore[return-value]

    def gauge(self, name: str, help_text: str, labelnames: Sequence[str] = ()) -> GaugeFamily:
        return self.add(GaugeFamily(name, help_text, labelnames))  # type: ignore[return-value]

    def histogram(self, name: str, help_text: str, labelnames: Sequence[str] = (),
                  buckets: Sequence[float] = DEFAULT_BUCKETS) -> HistogramFamily:
        return self.add(HistogramFamily(name, help_text, labelnames, buckets))  # type: ignore[return-value]

    def function(self, name: str, help_text: str, collect: Callable[[], Iterable[tuple[Sequence[str], float]]],
                 *, labelnames: Sequence[str] = (), kind: str = "gauge") -> FunctionFamily:
        return self.add(FunctionFamily(name, help_text, collect, labelnames=labelnames, kind=kind))  # type: ignore[return-value]

    def render(self) -> str:
        """The Prometheus text exposition (version 0.0.4) of every family, ending in a newline."""
        lines: list[str] = []
        for family in self._families.values():
            lines.extend(family.render_lines())
        return "\n".join(lines) + "\n" if lines else ""
