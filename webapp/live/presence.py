"""Presence: one document per open stream (its id names its user), under the lease of the
stream's process, which vouches for all its streams at once by extending the lease (one write
every PRESENCE_TTL_SECS/3, however many streams). A closed tab deletes its document; a process
that died without a goodbye has its lease lapse (PRESENCE_TTL_SECS), and its documents are
swept."""

from __future__ import annotations

import asyncio
import logging
import secrets

from pymongo.errors import PyMongoError

from webapp import settings
from webapp.data import presence, users
from webapp.data.connection import Db
from webapp.data.models import Presence as PresenceDoc
from webapp.live.registry import MAX_STREAMS_PER_USER, Registry
from webapp.live.streams import Stream

log = logging.getLogger(__name__)

STOP_TIMEOUT_SECS = 3


class Presence:
    def __init__(
        self, db: Db, streams: Registry, *, ttl: float = settings.PRESENCE_TTL_SECS
    ) -> None:
        self.db = db
        self.streams = streams
        self.ttl = ttl
        self.process_id = secrets.token_hex(8)  # this process's lease, for as long as it runs
        self._goodbyes: set[asyncio.Task[None]] = set()

    async def start(self) -> None:
        """Takes the lease (before any stream opens), and sweeps what no lease covers: the
        streams of a process that died just as its lease was ended, or from before leases."""
        await self.vouch()
        await self._sweep(await presence.held_by_none(self.db))

    async def opened(self, stream: Stream) -> None:
        """Writes the stream's presence; a user holds at most MAX_STREAMS_PER_USER across every
        process: the newest closes the oldest (elsewhere through the presence feed)."""
        await presence.open(
            self.db,
            presence_id=stream.presence_id,
            user_id=stream.user_id,
            opened_at=stream.opened_at,
            process_id=self.process_id,
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
        while True:
            await asyncio.sleep(self.ttl / 3)
            try:
                await self.vouch()
                await self.sweep_lapsed()
            except PyMongoError as exc:
                log.warning("Presence upkeep failed: %s", exc)
            except Exception:  # a bug must not end the upkeep: it is tried again next time
                log.exception("Presence upkeep failed")

    async def vouch(self) -> None:
        """Extends this process's lease: every stream it holds stays present, in one write."""
        await presence.vouch(self.db, process_id=self.process_id, ttl=self.ttl)

    async def sweep_lapsed(self) -> None:
        """The streams of processes whose lease lapsed go (their users' "last seen" first),
        and then the leases."""
        lapsed = await presence.lapsed_processes(self.db)
        if lapsed:
            await self._sweep(await presence.held_by(self.db, process_ids=lapsed))
            await presence.end_lapsed_leases(self.db, process_ids=lapsed)

    async def _sweep(self, stale: list[PresenceDoc]) -> None:
        if stale:
            await users.set_last_seen(self.db, user_ids=[p.user_id for p in stale])
            await presence.delete(self.db, presence_ids=[p.id for p in stale])

    async def goodbyes_said(self) -> None:
        """Waits (a little) for the presence removals under way, then ends the lease: what is
        left of this process's presence lapses at once, for the next sweep."""
        if self._goodbyes:
            await asyncio.wait(self._goodbyes, timeout=STOP_TIMEOUT_SECS)
        try:
            await presence.end_lease(self.db, process_id=self.process_id)
        except PyMongoError as exc:  # it lapses by itself after the TTL
            log.warning("Could not end this process's lease: %s", exc)
