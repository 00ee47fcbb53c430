"""Who is online, told to every page: people coming, going or changing their away message are
announced together, every half second, each entry rendered once for everyone.

Streams open and close by the hundred when a deploy restarts or a crowd arrives; each change
on its own would wake every stream. Above LIVE_PRESENCE_LIMIT people online, an entry goes
live only to those who share a room with the person, and to everyone with the next slow
refresh, so that presence does not grow with the square of the users.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque

from pymongo.errors import PyMongoError

from webapp import settings
from webapp.data import memberships, presence
from webapp.data.connection import Db
from webapp.data.models import User
from webapp.live import wire
from webapp.live.cache import Directory
from webapp.live.events import PersonEvent
from webapp.live.registry import Registry
from webapp.ops import metrics

log = logging.getLogger(__name__)

BATCH_SECS = 0.5  # presence and away changes are announced together, this often
RECENT_SECS = 10.0  # a new stream gets the entries announced this lately
# A slow refresh goes out in slices this big at most, one every BATCH_SECS: a thousand people
# changed (a restart, past LIVE_PRESENCE_LIMIT) are half a megabyte, a stream's whole backlog.
REFRESH_SLICE_BYTES = 64 * 1024


class People:
    def __init__(self, db: Db, streams: Registry, directory: Directory) -> None:
        self.db = db
        self.streams = streams
        self.directory = directory
        self.online: set[str] = set()  # users with an open stream in any process
        # Away messages seen since start: without updateDescription (nx-27017 has none), this
        # tells an away message from "last seen" among user changes. A user's first change
        # after start is always announced.
        self._away: dict[str, str] = {}
        self._unsettled: set[str] = set()  # whose presence changed, to look at
        self._changed: dict[str, User] = {}  # whose away message changed
        self._settling: asyncio.Task[None] | None = None
        self._recent: deque[tuple[float, bytes]] = deque()
        # Past LIVE_PRESENCE_LIMIT online: entries not yet sent to everyone, by user.
        self._deferred: dict[str, PersonEvent] = {}
        self._refreshing: asyncio.Task[None] | None = None

    async def start(self) -> None:
        """Who is online now (read once the feeds are open, so no change falls between)."""
        self.online = await presence.online_ids(self.db)

    def stop(self) -> None:
        for task in (self._settling, self._refreshing):
            if task is not None:
                task.cancel()

    def presence_changed(self, user_id: str) -> None:
        self._unsettled.add(user_id)
        self._settle()

    def user_changed(self, user: User) -> None:
        user_id = str(user.id)
        if self._away.get(user_id) != user.away_message:  # a new person, or a new away message
            self._away[user_id] = user.away_message
            self._changed[user_id] = user
            self._settle()

    def recent(self) -> list[bytes]:
        """The batches of entries announced lately: a page rendered just before one of them
        went out, and whose stream opened just after, learns of it from these."""
        now = asyncio.get_running_loop().time()
        while self._recent and self._recent[0][0] < now - RECENT_SECS:
            self._recent.popleft()
        return [data for _, data in self._recent]

    def _settle(self) -> None:
        if self._settling is None or self._settling.done():
            self._settling = asyncio.create_task(self._announce())

    async def _announce(self) -> None:
        """Every short while, whoever came, went or changed their away message since then:
        one query for who of them is online, and one batch of entries for every stream."""
        while self._unsettled or self._changed:
            await asyncio.sleep(BATCH_SECS)
            unsettled, self._unsettled = self._unsettled, set()
            changed, self._changed = self._changed, {}
            try:
                await self._announce_batch(unsettled, changed)
            except PyMongoError as exc:
                log.warning("Could not tell who is online: %s", exc)
                self._unsettled |= unsettled
                self._changed = changed | self._changed
            except Exception:  # a bug must not end the announcing: the next batch is tried
                log.exception("Could not announce who came and went")

    async def _announce_batch(self, unsettled: set[str], changed: dict[str, User]) -> None:
        """One batch: who of `unsettled` came or went (one query), with `changed` (people
        whose entry changed otherwise), announced."""
        online = await presence.online_among(self.db, user_ids=unsettled)
        for user_id in unsettled:
            if (user_id in online) != (user_id in self.online):
                (self.online.add if user_id in online else self.online.discard)(user_id)
                if user_id not in changed and (user := await self.directory.user(user_id)):
                    changed[user_id] = user
        if not changed:
            return
        people = [PersonEvent(user, uid in self.online) for uid, user in changed.items()]
        metrics.PRESENCE_BATCH.observe(len(people))
        if len(self.online) > settings.LIVE_PRESENCE_LIMIT:
            await self._announce_to_contacts(people)
        else:
            self._announce_to_everyone([wire.encode_event(person).shared for person in people])

    def _announce_to_everyone(self, encoded: list[bytes]) -> None:
        data = b"".join(encoded)
        self.streams.offer_to_everyone(data)
        metrics.EVENTS_DELIVERED.labels(PersonEvent.name).inc(len(encoded) * len(self.streams))
        self._recent.append((asyncio.get_running_loop().time(), data))

    async def _announce_to_contacts(self, people: list[PersonEvent]) -> None:
        """Each entry goes live only to those who share a room with that person, and to
        everyone with the next slow refresh (_refresh)."""
        assert self.directory.public is not None
        try:
            contacts = await memberships.contacts_of(
                self.db,
                user_ids=[str(p.user.id) for p in people],
                public_id=str(self.directory.public.id),
            )
        except PyMongoError as exc:
            log.warning("Could not tell who shares a room: %s", exc)
            contacts = {}
        chunks: dict[str, list[bytes]] = {}
        for person in people:
            user_id = str(person.user.id)
            self._deferred[user_id] = person
            data = wire.encode_event(person).shared
            for contact in contacts.get(user_id, {user_id}):
                if self.streams.has_user(contact):
                    chunks.setdefault(contact, []).append(data)
        for contact, parts in chunks.items():
            self.streams.offer_to(contact, b"".join(parts))
        if self._refreshing is None or self._refreshing.done():
            self._refreshing = asyncio.create_task(self._refresh())

    async def _refresh(self) -> None:
        """Every PRESENCE_REFRESH_SECS while there is any, the entries held back from those
        who share no room with the person, for every stream: in slices of at most
        REFRESH_SLICE_BYTES, one every BATCH_SECS (an entry held back again meanwhile goes
        with the next refresh)."""
        while self._deferred:
            await asyncio.sleep(settings.PRESENCE_REFRESH_SECS)
            deferred, self._deferred = self._deferred, {}
            slices = _slices([wire.encode_event(person).shared for person in deferred.values()])
            for number, entries in enumerate(slices):
                if number:
                    await asyncio.sleep(BATCH_SECS)
                self._announce_to_everyone(entries)


def _slices(encoded: list[bytes]) -> list[list[bytes]]:
    """Entries in order, in runs of at most REFRESH_SLICE_BYTES (an entry bigger alone)."""
    slices: list[list[bytes]] = [[]]
    size = 0
    for entry in encoded:
        if slices[-1] and size + len(entry) > REFRESH_SLICE_BYTES:
            slices.append([])
            size = 0
        slices[-1].append(entry)
        size += len(entry)
    return slices
