"""Delivering an event to this process's open streams: who may see it is asked once (the room's
members, for a group room), it is encoded once per audience, and every recipient's streams get
the same bytes."""

from __future__ import annotations

from webapp.data import memberships
from webapp.data.connection import Db
from webapp.data.models import Room
from webapp.data.nx_compat import token_sort_key
from webapp.live import wire
from webapp.live.events import Event
from webapp.live.registry import Registry
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
        room = event.room_of_members()
        audience = event.audience(await self.members(room) if room is not None else [])
        users = self.streams.users() if audience.users is None else audience.users
        targets = [u for u in users if self.streams.has_user(u) and u != audience.excluding]
        if not targets:
            return
        encoded = wire.encode_event(event)
        key = token_sort_key(event.id) if event.id else None
        for user_id in targets:
            self.streams.offer_to(user_id, encoded.for_user(user_id), key)
