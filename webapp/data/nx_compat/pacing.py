"""How long a follower waits before asking the embedded server again (its getMore never
waits)."""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

from webapp.data.nx_compat.waking import wake_on_write

# After 1, 2, 3... quick empty batches. Writes end a pause at once (WakeOnWrite, Peers), so
# the longest one only bounds how late a change nobody announced is seen.
IDLE_PAUSES_SECS = (0.02, 0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 4.0, 8.0)


class IdlePacer:
    """Pauses after a change-stream batch that came back empty sooner than it should.

    The pause grows while nothing happens (so an idle server costs next to nothing) and ends
    early when this process, or a peer on the same server, writes to the collection. Only a
    change makes the pauses short again (`busy`): a write the stream does not carry (a
    presence heartbeat, filtered out by the feed) ends one pause and no more.
    """

    def __init__(self, await_secs: float, *, collection: str) -> None:
        self.await_secs = await_secs
        self._pauses = IDLE_PAUSES_SECS
        self._quick_empties = 0
        self._server_waits: bool | None = None  # known after the first empty batch
        self._woken = wake_on_write.new_event(collection)

    def busy(self) -> None:
        self._quick_empties = 0

    def drained(self, changes: Any) -> bool:
        """Whether the change stream has handed over the whole batch it was sent, on a server
        that answers a getMore at once: the next one would most likely come back empty, and
        each costs a round trip and the embedded server a query. So the follower pauses as
        after an empty batch (a write ends the pause at once). On MongoDB, whose getMore waits
        for the next change, never."""
        if self._server_waits is not False:
            return False
        local = getattr(getattr(changes, "_cursor", None), "_data", None)  # pymongo's own batch
        return local is not None and len(local) == 0

    async def pause_if_drained(self, changes: Any) -> None:
        """After a change: pauses as after an empty batch when `drained`."""
        if self.drained(changes):
            await self._pause()

    async def pause_after_empty_batch(self, waited_secs: float) -> None:
        self._server_waits = waited_secs >= self.await_secs / 2
        if self._server_waits:  # the server did wait: a real MongoDB
            self._quick_empties = 0
            return
        await self._pause()

    async def _pause(self) -> None:
        """The next pause of the schedule, ended early by a write."""
        pause = self._pauses[min(self._quick_empties, len(self._pauses) - 1)]
        self._quick_empties += 1
        # asyncio.timeout, not wait_for: on Python 3.11 wait_for can swallow a cancellation
        # that lands as the wait ends, and a write wakes this wait often.
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(pause):
                await self._woken.wait()
        self._woken.clear()
