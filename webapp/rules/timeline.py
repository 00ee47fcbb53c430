"""How a conversation's messages are laid out: a separator for each day, and runs of messages
from one sender shown under one name and time.

Pages are laid out here in UTC, which they say; the page's script lays the log out again in the
reader's own time zone, with the same rules, whenever messages arrive.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta, tzinfo

from webapp.data.models import Message

PAGE_SIZE = 50  # messages a page of a conversation shows
RUN_WINDOW = timedelta(minutes=5)  # a message this soon after the sender's last continues it


@dataclass(frozen=True)
class Day:
    """A day separator."""

    day: date
    label: str


@dataclass(frozen=True)
class Entry:
    message: Message
    continues: bool  # the same sender as the message before, soon after it, on the same day


def day_label(day: date, today: date) -> str:
    """ "Today", "Yesterday", a weekday and date this year, or a full date."""
    if day == today:
        return "Today"
    if day == today - timedelta(days=1):
        return "Yesterday"
    if day.year == today.year:
        return f"{day:%A} {day.day} {day:%B}"
    return f"{day.day} {day:%B %Y}"


def continues(previous: Message | None, message: Message, zone: tzinfo = UTC) -> bool:
    """Whether `message` belongs to the run of `previous`: same sender, same day, soon after."""
    if previous is None or previous.sender_id != message.sender_id:
        return False
    gap = message.created_at - previous.created_at
    same_day = (
        previous.created_at.astimezone(zone).date() == message.created_at.astimezone(zone).date()
    )
    return same_day and timedelta(0) <= gap <= RUN_WINDOW


def arrange(messages: Iterable[Message], *, now: datetime, zone: tzinfo = UTC) -> list[Day | Entry]:
    """The messages (oldest first) with a separator before each day's first one."""
    today = now.astimezone(zone).date()
    laid_out: list[Day | Entry] = []
    previous: Message | None = None
    for message in messages:
        day = message.created_at.astimezone(zone).date()
        if previous is None or previous.created_at.astimezone(zone).date() != day:
            laid_out.append(Day(day, day_label(day, today)))
        laid_out.append(Entry(message, continues(previous, message, zone)))
        previous = message
    return laid_out
