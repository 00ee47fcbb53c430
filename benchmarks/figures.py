"""The benchmark's figures: delivery tallies, percentiles, and the table and the JSON file that
show the floor's figures (benchmarks/bare.py) and the app's side by side, with their ratio."""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
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


SUBJECTS = ("floor", "app")  # the columns, in this order: the bare app, then the app


@dataclass(frozen=True)
class Figure:
    """One measured value of one subject ("floor" or "app"), beside its target (if any)."""

    section: str
    name: str
    value: float | int | str | None
    unit: str = ""
    target: str = ""
    subject: str = "app"

    @property
    def number(self) -> float | None:
        """The value when it is a number."""
        if isinstance(self.value, bool) or not isinstance(self.value, int | float):
            return None
        return float(self.value)

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


# Rows: the floor's and the app's figure of the same thing, side by side

Key = tuple[str, str, int]  # section, name, and which of the rows so named in that section


@dataclass(frozen=True)
class Row:
    """One line of the table: a figure's value for each subject that measured it."""

    section: str
    name: str
    values: dict[str, Figure]  # subject -> its figure
    target: str = ""

    def ratio(self) -> float | None:
        """The app's value over the floor's, when both are numbers and the floor's is not 0."""
        floor, app = self.values.get("floor"), self.values.get("app")
        if floor is None or app is None or floor.number is None or app.number is None:
            return None
        return app.number / floor.number if floor.number else None

    def ratio_shown(self) -> str:
        ratio = self.ratio()
        if ratio is None:
            return "-"
        return f"{ratio:,.0f}x" if ratio >= 100 else f"{ratio:.2f}x"


def _keys(figures: Iterable[Figure]) -> list[tuple[Key, Figure]]:
    seen: dict[tuple[str, str], int] = {}
    keyed = []
    for figure in figures:
        n = seen.get((figure.section, figure.name), 0)
        seen[(figure.section, figure.name)] = n + 1
        keyed.append(((figure.section, figure.name, n), figure))
    return keyed


def _merge_order(first: Sequence[Key], second: Sequence[Key]) -> list[Key]:
    """`first` in its order, with the keys only `second` has put where `second` has them:
    before the next key the two share."""
    in_first = set(first)
    where = {key: n for n, key in enumerate(second)}
    order: list[Key] = []
    done = 0  # the keys of `second` before this one are placed
    for key in first:
        if key in where and where[key] >= done:
            order += [k for k in second[done : where[key]] if k not in in_first]
            done = where[key] + 1
        order.append(key)
    order += [k for k in second[done:] if k not in in_first]
    return order


def rows(figures: Sequence[Figure], leading: Sequence[str] = ("setup",)) -> list[Row]:
    """The figures as rows, the same figure of each subject on one row; grouped by section,
    the `leading` sections first, then the sections and their rows as they were measured."""
    by_subject = {
        subject: _keys(f for f in figures if f.subject == subject)
        for subject in dict.fromkeys(["app", *SUBJECTS, *(f.subject for f in figures)])
    }
    order: list[Key] = []
    for keyed in by_subject.values():  # the app's rows first: it has more
        order = _merge_order(order, [key for key, _ in keyed])
    values: dict[Key, dict[str, Figure]] = {key: {} for key in order}
    for subject, keyed in by_subject.items():
        for key, figure in keyed:
            values[key][subject] = figure
    sections = list(dict.fromkeys([*leading, *(section for section, _, _ in order)]))
    order.sort(key=lambda key: sections.index(key[0]))  # stable: rows keep their order
    result = []
    for key in order:
        found = values[key]
        target = next((f.target for f in found.values() if f.target), "")
        result.append(Row(key[0], key[1], found, target))
    return result


def table(lines: Sequence[Row], title: str, notes: Sequence[str] = ()) -> str:
    """The rows as one plain-text table, grouped by section: a column for each subject there
    is, their ratio when there are both, and the target."""
    subjects = [s for s in SUBJECTS if any(s in row.values for row in lines)]
    subjects += sorted({s for row in lines for s in row.values} - set(subjects))
    both = "floor" in subjects and "app" in subjects

    def cells(row: Row) -> list[str]:
        shown = [row.values[s].shown() if s in row.values else "-" for s in subjects]
        return [*shown, row.ratio_shown()] if both else shown

    headers = [*subjects, "app/floor"] if both else subjects
    width = max([len(row.name) + 2 for row in lines] + [20])  # a section has a line of its own
    widths = [
        max([len(cells(row)[n]) for row in lines] + [len(header)])
        for n, header in enumerate(headers)
    ]
    target_width = max([len(row.target) for row in lines] + [len("target")])
    rule = "-" * (width + sum(w + 3 for w in widths) + target_width)

    def line(name: str, values: Sequence[str], target: str) -> str:
        columns = " | ".join(f"{v:>{w}}" for v, w in zip(values, widths, strict=True))
        return f"{name:{width}} | {columns} | {target}".rstrip()

    text = [title, *notes, rule, line("", headers, "target"), rule]
    section = None
    for row in lines:
        if row.section != section:
            section = row.section
            text.append(section)
        text.append(line("  " + row.name, cells(row), row.target or "-"))
    text.append(rule)
    return "\n".join(text)


def write_json(path: Path, lines: Sequence[Row], run: dict[str, object]) -> None:
    """The rows as JSON: each with its value (and unit) per subject, and their ratio."""
    path.parent.mkdir(parents=True, exist_ok=True)
    figures = [
        {
            "section": row.section,
            "name": row.name,
            "target": row.target,
            **{
                subject: {"value": row.values[subject].value, "unit": row.values[subject].unit}
                for subject in dict.fromkeys([*SUBJECTS, *row.values])
                if subject in row.values
            },
            "app_over_floor": row.ratio(),
        }
        for row in lines
    ]
    path.write_text(json.dumps({"run": run, "figures": figures}, indent=2) + "\n")
