"""The recent message changes a process has seen, kept for replay."""

from __future__ import annotations

from collections import deque
from dataclasses import replace
from typing import Any

from webapp import settings
from webapp.live.events import MessageEvent
from webapp.live.streams import SortKey

RING_SIZE = settings.REPLAY_RING_SIZE


class Ring:
    """The recent message changes this process has seen, in commit order, for replay.

    Complete from `start` on: any cursor at or after it replays from here. Each entry replays
    the message as it is now (its post and its edit both show the edit), as a replay from the
    database does.
    """

    def __init__(self, size: int = RING_SIZE) -> None:
        self.start: SortKey | None = None
        self._size = size
        # key, token, message id, whether the change posted it
        self._entries: deque[tuple[SortKey, str, Any, bool]] = deque()
        self._latest: dict[Any, MessageEvent] = {}
        self._entries_of: dict[Any, int] = {}  # message id -> entries that name it

    def reset(self) -> None:
        self.start = None
        self._entries.clear()
        self._latest.clear()
        self._entries_of.clear()

    def begin(self, position: SortKey) -> None:
        """Nothing before `position` is kept: it is where the ring's record begins."""
        if self.start is None:
            self.start = position

    def add(self, key: SortKey, event: MessageEvent) -> None:
        message_id = event.message.id
        self.begin(key)
        self._entries.append((key, event.id, message_id, event.posted))
        self._latest[message_id] = event
        self._entries_of[message_id] = self._entries_of.get(message_id, 0) + 1
        if len(self._entries) > self._size:
            self.start, _, old_id, _ = self._entries.popleft()
            self._entries_of[old_id] -= 1
            if not self._entries_of[old_id]:
                del self._entries_of[old_id], self._latest[old_id]

    def covers(self, cursor: SortKey) -> bool:
        return self.start is not None and cursor >= self.start

    def after(self, cursor: SortKey) -> list[tuple[SortKey, MessageEvent]]:
        """The changes after `cursor`, oldest first (the ring must cover it)."""
        newer = []
        for entry in reversed(self._entries):
            if entry[0] <= cursor:
                break
            newer.append(entry)
        replayed = []
        for key, token, message_id, posted in newer[::-1]:
            latest = self._latest[message_id]
            replayed.append((key, replace(latest, id=token, posted=posted)))
        return replayed
