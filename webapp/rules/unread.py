"""Read positions and unread counts, from sequence numbers: each room numbers its messages
(seq), each membership keeps the number read up to."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Protocol, TypeVar

UNREAD_CAP = 999  # unread messages counted per room, at most
UNREAD_WINDOW = 10 * UNREAD_CAP  # the newest messages of a room looked at to count them


class Numbered(Protocol):
    @property
    def seq(self) -> int: ...
    @property
    def sender_id(self) -> str: ...
    @property
    def deleted(self) -> bool: ...


N = TypeVar("N", bound=Numbered)


def read_target(seq: int | None, count: int) -> int:
    """Where a reader who saw up to message `seq` (None: everything so far) stands in a room
    of `count` messages: never past its count."""
    return count if seq is None else min(seq, count)


def counted_since(read_seq: int, count: int) -> tuple[int, int] | None:
    """The seqs (after, up to) whose others' messages are unread, or None when nothing new
    came: at most UNREAD_WINDOW back, so that a room nobody read for years costs no more to
    count than one read last week."""
    if count <= read_seq:
        return None
    return max(read_seq, count - UNREAD_WINDOW), count


def is_unread(message: Numbered, read_seq: int, reader_id: str) -> bool:
    """Someone else's message, not deleted, after the reader's position."""
    return message.seq > read_seq and message.sender_id != reader_id and not message.deleted


def first_unread(messages: Iterable[N], read_seq: int, reader_id: str) -> N | None:
    """The first message here that its reader has not read, above which the page draws its
    "New messages" line."""
    return next((m for m in messages if is_unread(m, read_seq, reader_id)), None)
