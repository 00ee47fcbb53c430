"""Workarounds for the embedded nx-27017 server, in one place.

Where nx-27017 differs from MongoDB's documented behaviour (see README, "The embedded
database"), the difference is handled here and nowhere else:

- getMore on a change stream answers at once when nothing is new (it ignores maxAwaitTimeMS),
  so a follower must pause between empty batches or it spins. On MongoDB the server waits
  and `pause_after_empty_batch` never sleeps. The pause ends early when this process writes
  (`WakeOnWrite`); another process's write is seen within the longest pause.
- After a restart it serves empty batches for cursors it no longer knows, and records changes
  only once someone watches again: followers reopen when the server returns (`ServerReturns`).
- Resume tokens look like {"_data": "nx:<n>"}, n counting the server's changes; a made-up
  cursor is not refused, so `cannot_replay` checks it. Only the last RETAINED_CHANGES changes
  of a collection are kept: a replay that reaches that many may have lost older ones.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import sys

from pymongo import monitoring
from pymongo.server_type import SERVER_TYPE

_NX_TOKEN = re.compile(r"nx:(\d+)")
RETAINED_CHANGES = 1000  # per collection
IDLE_PAUSES_SECS = (0.02, 0.05, 0.1, 0.25, 0.5, 1.0)  # after 1, 2, 3... quick empty batches
# Another process's message waits for this process's pause: keep that one short.
LONGEST_PAUSE_SECS = {"message": 0.06}


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


def longest_pause(collection: str) -> float:
    return LONGEST_PAUSE_SECS.get(collection, IDLE_PAUSES_SECS[-1])


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


class WakeOnWrite(monitoring.CommandListener):
    """Hears this process's own writes, so a pausing follower asks again at once.

    The pause only delays the question; the change itself still arrives through the change
    stream, like any other process's. Pymongo calls listeners from its own threads.
    """

    WRITES = frozenset({"insert", "update", "delete", "findAndModify"})

    def __init__(self) -> None:
        self._loop: asyncio.AbstractEventLoop | None = None
        self._events: set[asyncio.Event] = set()

    def new_event(self) -> asyncio.Event:
        self._loop = asyncio.get_running_loop()
        event = asyncio.Event()
        self._events.add(event)
        return event

    def _wake(self) -> None:
        for event in self._events:
            event.set()

    def succeeded(self, event: monitoring.CommandSucceededEvent) -> None:
        if event.command_name in self.WRITES and self._loop is not None:
            self._loop.call_soon_threadsafe(self._wake)

    def started(self, event: monitoring.CommandStartedEvent) -> None:
        pass

    def failed(self, event: monitoring.CommandFailedEvent) -> None:
        pass


wake_on_write = WakeOnWrite()


class ServerReturns(monitoring.ServerListener):
    """Counts the times the server came back after being unreachable.

    Restarted, nx-27017 answers getMore on a change-stream cursor it no longer knows with empty
    batches instead of an error, so a follower would wait on a dead cursor for ever; followers
    reopen their stream when this count moves. (It also drops its change triggers when it
    stops, so changes made before a follower reopens are not recorded at all.)
    """

    def __init__(self) -> None:
        self.count = 0

    def description_changed(self, event: monitoring.ServerDescriptionChangedEvent) -> None:
        unknown = SERVER_TYPE.Unknown
        if (
            event.previous_description.server_type == unknown
            and event.new_description.server_type != unknown
        ):
            self.count += 1

    def opened(self, event: monitoring.ServerOpeningEvent) -> None:
        pass

    def closed(self, event: monitoring.ServerClosedEvent) -> None:
        pass


server_returns = ServerReturns()


class IdlePacer:
    """Pauses after a change-stream batch that came back empty sooner than it should.

    The pause grows while nothing happens (so an idle server costs next to nothing) and ends
    early when this process writes.
    """

    def __init__(self, await_secs: float, *, longest: float = IDLE_PAUSES_SECS[-1]) -> None:
        self.await_secs = await_secs
        self._pauses = tuple(min(pause, longest) for pause in IDLE_PAUSES_SECS)
        self._quick_empties = 0
        self._woken = wake_on_write.new_event()

    def busy(self) -> None:
        self._quick_empties = 0

    async def pause_after_empty_batch(self, waited_secs: float) -> None:
        if waited_secs >= self.await_secs / 2:  # the server did wait: a real MongoDB
            self._quick_empties = 0
            return
        pause = self._pauses[min(self._quick_empties, len(self._pauses) - 1)]
        self._quick_empties += 1
        # asyncio.timeout, not wait_for: on Python 3.11 wait_for can swallow a cancellation
        # that lands as the wait ends, and a write wakes this wait often.
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(pause):
                await self._woken.wait()
        if self._woken.is_set():
            self._woken.clear()
            self._quick_empties = 0
