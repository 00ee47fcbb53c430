"""Delivering an event to this process's open streams: who may see it is asked once (the room's
members, for a group room), it is encoded once per audience, and every recipient's streams get
the same bytes."""

from __future__ import annotations

import time

from webapp.data import memberships
from webapp.data.connection import Db
from webapp.data.models import Room
from webapp.data.nx_compat import token_sort_key
from webapp.live import wire
from webapp.live.events import Event
from webapp.live.registry import Registry
from webapp.ops import metrics
from webapp.rules import access


class Fanout:
    def __init__(self, db: Db, streams: Registry) -> None:
        self.db = db
        self.streams = streams

    async def members(self, room: Room) -> list[str]:
        """Who is in the room now: asked of the database once per event for a group room, so
        that a membership made or ended just before the event counts. A DM's two never
        change; the public room's are everyone (access.readers)."""
        if access.lists_members(room):
            return await memberships.member_ids(self.db, room_id=str(room.id))
        return list(room.members)

    async def deliver(self, event: Event) -> None:
        """Offers the event to every open stream here that may see it."""
        started = time.perf_counter()
        room = event.room_of_members()
        audience = event.audience(await self.members(room) if room is not None else [])
        if audience.users is None:
            recipients = self.streams.by_user()
        else:
            recipients = [(u, self.streams.of_user(u)) for u in audience.users]
        encoded: wire.Encoded | None = None
        key = token_sort_key(event.id) if event.id else None
        offered = 0
        for user_id, streams in recipients:
            if not streams or user_id == audience.excluding:
                continue
            encoded = encoded or wire.encode_event(event)  # once, if anyone here gets it
            data, chunk = encoded.for_user(user_id)
            for stream in streams:
                stream.offer(data, key, chunk)
                offered += 1
        if offered:  # counted once per event, however many streams got it
            metrics.EVENTS_DELIVERED.labels(event.name).inc(offered)
        metrics.FANOUT_SECONDS.observe(time.perf_counter() - started)
