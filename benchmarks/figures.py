"""The benchmark's figures: delivery tallies, percentiles, the table and the JSON file."""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

from benchmarks.readers import Delivery


def percentile(values: Sequence[float], p: float) -> float | None:
    """Nearest-rank percentile; None for no values."""
    if not values:
        return None
    ordered = sorted(values)
    return ordered[max(0, math.ceil(p / 100 * len(ordered)) - 1)]


@dataclass
class Tally:
    """Which stream was sent which message, and when each delivery arrived.

    A message is expected on a set of streams from the moment its POST was sent; a delivery
    counts if it arrives before `deadline_ns` (10 s after the last post). A pair delivered
    twice or more is doubled; a pair never delivered in time is lost.
    """

    sent_ns: dict[str, int] = field(default_factory=dict)  # message id -> POST sent at
    recipients: dict[str, frozenset[int]] = field(default_factory=dict)
    first_ns: dict[str, dict[int, int]] = field(default_factory=dict)  # message -> stream -> ns
    doubled_pairs: set[tuple[str, int]] = field(default_factory=set)
    deadline_ns: int = 0  # 0: not set yet, every delivery counts

    def expect(self, message_id: str, sent_ns: int, recipients: Iterable[int]) -> None:
        self.sent_ns[message_id] = sent_ns
        self.recipients[message_id] = frozenset(recipients)

    def add(self, deliveries: Iterable[Delivery]) -> None:
        """Records deliveries; those of other messages are ignored (the caller may keep them)."""
        for stream, message_id, received_ns in deliveries:
            if self.deadline_ns and received_ns > self.deadline_ns:
                continue
            arrivals = self.first_ns.setdefault(message_id, {})
            if stream in arrivals:
                self.doubled_pairs.add((message_id, stream))
            else:
                arrivals[stream] = received_ns

    def missing(self) -> int:
        """Expected (stream, message) pairs not delivered (yet)."""
        return sum(
            len(streams - self.first_ns.get(message_id, {}).keys())
            for message_id, streams in self.recipients.items()
        )

    def latencies_ms(self, streams: frozenset[int] | None = None) -> list[float]:
        """From POST sent to arrival, for every expected pair delivered (of `streams` only)."""
        values = []
        for message_id, recipients in self.recipients.items():
            arrivals = self.first_ns.get(message_id, {})
            sent = self.sent_ns[message_id]
            for stream in recipients if streams is None else recipients & streams:
                if stream in arrivals:
                    values.append((arrivals[stream] - sent) / 1e6)
        return values

    def summary(self, streams: frozenset[int] | None = None) -> Latency:
        values = self.latencies_ms(streams)
        expected = sum(len(r if streams is None else r & streams) for r in self.recipients.values())
        doubled = sum(
            stream in self.recipients.get(message_id, ()) and (streams is None or stream in streams)
            for message_id, stream in self.doubled_pairs
        )
        return Latency(
            p50=percentile(values, 50),
            p95=percentile(values, 95),
            p99=percentile(values, 99),
            max=max(values) if values else None,
            expected=expected,
            lost=expected - len(values),
            doubled=doubled,
        )


@dataclass(frozen=True)
class Latency:
    """Delivery latencies in ms, and (stream, message) pair counts."""

    p50: float | None
    p95: float | None
    p99: float | None
    max: float | None
    expected: int
    lost: int
    doubled: int


@dataclass(frozen=True)
class Figure:
    """One row of the table: a measured value beside its target (if it has one)."""

    section: str
    name: str
    value: float | int | str | None
    unit: str = ""
    target: str = ""

    def shown(self) -> str:
        if self.value is None:
            return "-"
        if isinstance(self.value, float):
            digits = 0 if abs(self.value) >= 100 else 1 if abs(self.value) >= 10 else 2
            text = f"{self.value:,.{digits}f}"
        elif isinstance(self.value, int):
            text = f"{self.value:,}"
        else:
            text = self.value
        return f"{text} {self.unit}".strip()


def latency_figures(
    section: str, summary: Latency, *, p50: str = "", p99: str = "", lost: str = "0"
) -> list[Figure]:
    """The rows of one delivery scenario; targets as given ("" for none)."""
    return [
        Figure(section, "p50 latency", summary.p50, "ms", p50),
        Figure(section, "p95 latency", summary.p95, "ms"),
        Figure(section, "p99 latency", summary.p99, "ms", p99),
        Figure(section, "max latency", summary.max, "ms"),
        Figure(section, "lost (pairs)", summary.lost, f"of {summary.expected:,}", lost),
        Figure(section, "doubled (pairs)", summary.doubled, "", "0"),
    ]


def table(figures: Sequence[Figure], title: str) -> str:
    """The figures as one plain-text table, grouped by section."""
    width = max([len(f.name) + 2 for f in figures] + [20])  # a section has a line of its own
    value_width = max([len(f.shown()) for f in figures] + [len("this app")])
    target_width = max([len(f.target) for f in figures] + [len("target")])
    rule = "-" * (width + value_width + target_width + 6)
    lines = [title, rule, f"{'':{width}} | {'this app':>{value_width}} | {'target':{target_width}}"]
    lines.append(rule)
    section = None
    for figure in figures:
        if figure.section != section:
            section = figure.section
            lines.append(section)
        lines.append(
            f"{'  ' + figure.name:{width}} | {figure.shown():>{value_width}} | "
            f"{figure.target or '-':{target_width}}"
        )
    lines.append(rule)
    return "\n".join(lines)


def write_json(path: Path, figures: Sequence[Figure], run: dict[str, object]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    document = {"run": run, "figures": [asdict(figure) for figure in figures]}
    path.write_text(json.dumps(document, indent=2) + "\n")
