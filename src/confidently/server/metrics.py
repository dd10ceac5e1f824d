"""Counters, gauges and histograms in the Prometheus text exposition format (version 0.0.4).

Written here rather than with ``prometheus_client``: the series need ~100 lines; each app keeps its
own :class:`Metrics` (tests run several servers in one process); and the production loop's gauges
(drift, live accuracy, canaries) are computed afresh at each scrape from state the loop keeps, which
a plain set-at-scrape :class:`Gauge` does without a client library's collector machinery. The
output is checked in the tests with ``prometheus_client``'s own parser. Updates come from the
event loop and the model's worker thread, hence the lock.
"""

from __future__ import annotations

import math
import threading
from collections import defaultdict

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128)


def _labels(names: tuple[str, ...], values: tuple[str, ...], extra: str = "") -> str:
    pairs = [f'{n}="{_escape(v)}"' for n, v in zip(names, values)]
    if extra:
        pairs.append(extra)
    return "{" + ",".join(pairs) + "}" if pairs else ""


def _escape(value: str) -> str:
    return value.replace("\\", r"\\").replace("\n", r"\n").replace('"', r"\"")


def _number(value: float) -> str:
    return "+Inf" if math.isinf(value) else repr(float(value))


class Counter:
    def __init__(self, name: str, help: str, labels: tuple[str, ...] = ()):
        self.name, self.help, self.labels = name, help, labels
        self.values: dict[tuple[str, ...], float] = defaultdict(float)

    def inc(self, *values: str, amount: float = 1.0) -> None:
        self.values[values] += amount

    def lines(self) -> list[str]:
        out = [f"# HELP {self.name} {self.help}", f"# TYPE {self.name} counter"]
        out += [f"{self.name}{_labels(self.labels, k)} {_number(v)}" for k, v in sorted(self.values.items())]
        return out


class Gauge:
    """A value computed when scraped (drift statistics, live accuracy), set afresh each time."""

    def __init__(self, name: str, help: str, labels: tuple[str, ...] = ()):
        self.name, self.help, self.labels = name, help, labels
        self.values: dict[tuple[str, ...], float] = {}

    def set(self, value: float, *values: str) -> None:
        self.values[values] = value

    def lines(self) -> list[str]:
        out = [f"# HELP {self.name} {self.help}", f"# TYPE {self.name} gauge"]
        out += [f"{self.name}{_labels(self.labels, k)} {_number(v)}" for k, v in sorted(self.values.items())]
        return out


class Histogram:
    def __init__(self, name: str, help: str, buckets: tuple[float, ...], labels: tuple[str, ...] = ()):
        self.name, self.help, self.labels = name, help, labels
        self.bounds = (*buckets, math.inf)
        self.series: dict[tuple[str, ...], list[float]] = {}  # bucket counts..., sum, count

    def observe(self, value: float, *values: str) -> None:
        row = self.series.setdefault(values, [0.0] * (len(self.bounds) + 2))
        for i, bound in enumerate(self.bounds):
            if value <= bound:
                row[i] += 1
        row[-2] += value
        row[-1] += 1

    def lines(self) -> list[str]:
        out = [f"# HELP {self.name} {self.help}", f"# TYPE {self.name} histogram"]
        for key, row in sorted(self.series.items()):
            for bound, count in zip(self.bounds, row):
                le = 'le="' + ("+Inf" if math.isinf(bound) else f"{bound:g}") + '"'
                out.append(f"{self.name}_bucket{_labels(self.labels, key, le)} {_number(count)}")
            out.append(f"{self.name}_sum{_labels(self.labels, key)} {_number(row[-2])}")
            out.append(f"{self.name}_count{_labels(self.labels, key)} {_number(row[-1])}")
        return out


class Metrics:
    """The server's series: requests, latency, batch sizes, texts per adapter, decisions."""

    BASE = "(base)"  # adapter label of the base model; no adapter name can start with "("

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.requests = Counter("confidently_requests_total", "HTTP requests by route, method and status.",
                                ("route", "method", "status"))
        self.latency = Histogram("confidently_request_duration_seconds", "HTTP request latency by route.",
                                 LATENCY_BUCKETS, ("route",))
        self.batch_size = Histogram("confidently_batch_size_texts", "Texts scored per model batch.", BATCH_BUCKETS)
        self.texts = Counter("confidently_texts_total", "Texts classified, by adapter.", ("adapter",))
        self.decisions = Counter("confidently_decisions_total", "Decisions made, by adapter.",
                                 ("adapter", "decision"))
        self.reviews = Counter("confidently_review_reasons_total", "Texts decided review, by adapter and why "
                               "(truncated: cut to fit, so never automated).", ("adapter", "reason"))

    def request(self, route: str, method: str, status: int, seconds: float) -> None:
        with self._lock:
            self.requests.inc(route, method, str(status))
            self.latency.observe(seconds, route)

    def batch(self, adapter: str | None, decisions: list[str | None]) -> None:
        """One forward pass of one adapter's texts."""
        self.mixed_batch([(adapter, decisions)])

    def mixed_batch(self, groups: list[tuple[str | None, list[str | None]]]) -> None:
        """One forward pass of several adapters' texts: its size once, texts and decisions per adapter."""
        with self._lock:
            self.batch_size.observe(sum(len(decisions) for _, decisions in groups))
            for adapter, decisions in groups:
                name = self.BASE if adapter is None else adapter
                self.texts.inc(name, amount=len(decisions))
                for decision in decisions:
                    self.decisions.inc(name, decision or "none")

    def review_reasons(self, adapter: str | None, reasons: list[str | None]) -> None:
        """Why an adapter's texts were decided review (None: not reviewed)."""
        with self._lock:
            for reason in reasons:
                if reason is not None:
                    self.reviews.inc(self.BASE if adapter is None else adapter, reason)

    def render(self, queued_texts: int) -> str:
        with self._lock:
            lines = [*self.requests.lines(), *self.latency.lines(), *self.batch_size.lines(),
                     *self.texts.lines(), *self.decisions.lines(), *self.reviews.lines()]
        lines += ["# HELP confidently_queued_texts Texts waiting for the model.",
                  "# TYPE confidently_queued_texts gauge", f"confidently_queued_texts {queued_texts}"]
        return "\n".join(lines) + "\n"
