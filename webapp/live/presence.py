"""Presence: one document per open stream (its id names its user), which the stream's process
keeps vouching for. A closed tab deletes its document; a process that died without a goodbye
has its documents swept once they lapse (PRESENCE_TTL_SECS)."""

from __future__ import annotations

import asyncio
import logging

from pymongo.errors import PyMongoError

from webapp import settings
from webapp.data import presence, users
from webapp.data.connection import Db
from webapp.live.registry import MAX_STREAMS_PER_USER, Registry
from webapp.live.streams import Stream

log = logging.getLogger(__name__)

STOP_TIMEOUT_SECS = 3
# Streams vouched for in one write. The embedded database serves one write at a time: all of
# 2,000 streams in one held every post behind it for about 150 ms.
VOUCH_BATCH = 100


class Presence:
    def __init__(self, db: Db, streams: Registry, *, batch: int = VOUCH_BATCH) -> None:
        self.db = db
        self.streams = streams
        self.batch = batch
        self._goodbyes: set[asyncio.Task[None]] = set()

    async def opened(self, stream: Stream) -> None:
        """Writes the stream's presence; a user holds at most MAX_STREAMS_PER_USER across every
        process: the newest closes the oldest (elsewhere through the presence feed)."""
        await presence.open(
            self.db,
            presence_id=stream.presence_id,
            user_id=stream.user_id,
            opened_at=stream.opened_at,
            ttl=settings.PRESENCE_TTL_SECS,
        )
        await presence.close_oldest(self.db, user_id=stream.user_id, keep=MAX_STREAMS_PER_USER)

    def closed(self, stream: Stream) -> None:
        """Removes the stream's presence in the background."""
        task = asyncio.create_task(self._goodbye(stream))
        self._goodbyes.add(task)
        task.add_done_callback(self._goodbyes.discard)

    async def _goodbye(self, stream: Stream) -> None:
        try:
            # "Last seen" first: the delete is what makes every sidebar refresh.
            await users.set_last_seen(self.db, user_ids=[stream.user_id])
            await presence.close(self.db, presence_id=stream.presence_id)
        except PyMongoError as exc:  # it lapses by itself after PRESENCE_TTL_SECS
            log.warning("Could not remove presence %s: %s", stream.presence_id, exc)

    def changed(self, presence_id: str, opened: bool) -> None:
        """A stream's presence was written or removed, in any process: a stream of this
        process whose presence was removed (to make room for a newer one) is closed."""
        if not opened and (stream := self.streams.by_presence(presence_id)):
            stream.cut("too_many")

    async def keep(self) -> None:
        """For ever: vouch for this process's streams, and sweep those of processes that died."""
        interval = settings.PRESENCE_TTL_SECS / 3
        while True:
            await asyncio.sleep(interval)
            try:
                await self._vouch_and_sweep()
            except PyMongoError as exc:
                log.warning("Presence upkeep failed: %s", exc)
            except Exception:  # a bug must not end the upkeep: it is tried again next time
                log.exception("Presence upkeep failed")

    async def _vouch_and_sweep(self) -> None:
        await self.vouch(spread_secs=settings.PRESENCE_TTL_SECS / 6)
        stale = await presence.stale(self.db)
        if stale:
            await users.set_last_seen(self.db, user_ids=[p.user_id for p in stale])
            await presence.delete_stale(self.db, presence_ids=[p.id for p in stale])

    async def vouch(self, spread_secs: float = 0.0) -> None:
        """Pushes back the expiry of every open stream's presence, `batch` at a time, the
        batches spread over `spread_secs`: a post waits behind one batch at most."""
        mine = [(s.presence_id, s.user_id, s.opened_at) for s in self.streams]
        batches = [mine[start : start + self.batch] for start in range(0, len(mine), self.batch)]
        for number, batch in enumerate(batches):
            if number:
                await asyncio.sleep(spread_secs / len(batches))
            await presence.refresh(self.db, presences=batch, ttl=settings.PRESENCE_TTL_SECS)

    async def goodbyes_said(self) -> None:
        """Waits (a little) for the presence removals under way."""
        if self._goodbyes:
            await asyncio.wait(self._goodbyes, timeout=STOP_TIMEOUT_SECS)
