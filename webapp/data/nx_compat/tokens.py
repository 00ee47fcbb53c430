"""nx-27017's resume tokens: their order, how far back they replay, which are unusable."""

from __future__ import annotations

import re
import sys

_NX_TOKEN = re.compile(r"nx:(\d+)")
RETAINED_CHANGES = 1000  # per collection


def token_sort_key(data: str) -> tuple[int, str]:
    """Orders resume tokens of one collection's stream by commit order.

    MongoDB's `_data` is a hex string whose byte order is the event order; nx tokens need
    their counter compared as a number.
    """
    match = _NX_TOKEN.fullmatch(data)
    return (int(match.group(1)), "") if match else (0, data)


def is_nx_token(data: str) -> bool:
    return _NX_TOKEN.fullmatch(data) is not None


def replay_limit(cursor: str) -> int:
    """How many changes after `cursor` can be replayed for sure: nx-27017 keeps the last
    RETAINED_CHANGES, and a replay that reaches that many may have lost older ones."""
    return RETAINED_CHANGES if is_nx_token(cursor) else sys.maxsize


def cannot_replay(cursor: str, position: str) -> bool:
    """True when nx-27017 would silently replay the wrong thing from `cursor`.

    `position` is a recent token of the same stream. A token of another kind, or one ahead of
    the stream (from before the database was reset), is not refused by nx-27017 but replays
    nothing. MongoDB refuses unusable tokens itself, so for its tokens this is always False.
    """
    head = _NX_TOKEN.fullmatch(position)
    if head is None:
        return False
    start = _NX_TOKEN.fullmatch(cursor)
    return start is None or int(start.group(1)) > int(head.group(1))
