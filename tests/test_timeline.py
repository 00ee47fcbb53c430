"""Day separators and runs of one sender, as tables."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone

import pytest

from webapp.data.models import Message
from webapp.rules.timeline import Day, Entry, arrange, continues, day_label

NOW = datetime(2026, 12, 1, 15, 0, tzinfo=UTC)  # a Tuesday


def at(when: datetime, sender: str = "alice") -> Message:
    return Message(
        room_id="r", seq=1, sender_id=sender, sender_name=sender, body="hi", created_at=when
    )


@pytest.mark.parametrize(
    ("day", "label"),
    [
        (date(2026, 12, 1), "Today"),
        (date(2026, 11, 30), "Yesterday"),
        (date(2026, 11, 29), "Sunday 29 November"),
        (date(2026, 1, 1), "Thursday 1 January"),
        (date(2025, 12, 31), "31 December 2025"),  # another year: the year says so
        (date(2026, 12, 2), "Wednesday 2 December"),  # a clock ahead of the server's
    ],
)
def test_day_labels(day: date, label: str) -> None:
    assert day_label(day, NOW.date()) == label


MINUTE = timedelta(minutes=1)
MIDNIGHT = datetime(2026, 12, 1, tzinfo=UTC)


@pytest.mark.parametrize(
    ("previous", "message", "expected"),
    [
        (None, at(NOW), False),  # the first of a page
        (at(NOW), at(NOW + MINUTE), True),
        (at(NOW), at(NOW + 5 * MINUTE), True),  # the window's edge
        (at(NOW), at(NOW + 5 * MINUTE + timedelta(seconds=1)), False),
        (at(NOW), at(NOW + MINUTE, "bob"), False),  # someone else
        (at(NOW + MINUTE), at(NOW), False),  # out of order (a late arrival): its own header
        # Across midnight: a new day starts a new run, however close.
        (at(MIDNIGHT - MINUTE), at(MIDNIGHT + MINUTE), False),
    ],
)
def test_runs_of_one_sender(previous: Message | None, message: Message, expected: bool) -> None:
    assert continues(previous, message) is expected


def test_arrange_puts_a_separator_before_each_day_and_groups_runs() -> None:
    yesterday = NOW - timedelta(days=1)
    messages = [
        at(yesterday),
        at(yesterday + MINUTE),
        at(yesterday + 2 * MINUTE, "bob"),
        at(NOW),
        at(NOW + MINUTE),
        at(NOW + 10 * MINUTE),
    ]
    laid_out = arrange(messages, now=NOW)
    shape = [item.label if isinstance(item, Day) else item.continues for item in laid_out]
    assert shape == ["Yesterday", False, True, False, "Today", False, True, False]
    assert [item.message for item in laid_out if isinstance(item, Entry)] == messages


def test_arrange_follows_the_time_zone_it_is_given() -> None:
    # 23:30 UTC on the 30th is already the 1st in Tokyo: one day there, two in UTC.
    late, early = (
        datetime(2026, 11, 30, 23, 30, tzinfo=UTC),
        datetime(2026, 12, 1, 0, 30, tzinfo=UTC),
    )
    messages = [at(late), at(early)]
    tokyo, now = timezone(timedelta(hours=9)), datetime(2026, 12, 1, 10, 0, tzinfo=UTC)
    assert [i.label for i in arrange(messages, now=NOW) if isinstance(i, Day)] == [
        "Yesterday",
        "Today",
    ]
    assert [i.label for i in arrange(messages, now=now, zone=tokyo) if isinstance(i, Day)] == [
        "Today"
    ]


def test_an_empty_conversation_has_nothing_to_lay_out() -> None:
    assert arrange([], now=NOW) == []
