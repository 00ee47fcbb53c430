"""What the request path and the hub keep in memory, kept current by the feeds (feeds.py):
users and rooms (one directory, handed to whoever needs it), and signed-out sessions."""

from __future__ import annotations

from collections import OrderedDict
from datetime import datetime
from typing import TypeVar

from odmantic import Model

from webapp.data import rooms, sessions, users
from webapp.data._query import now
from webapp.data.connection import Db
from webapp.data.models import Room, User

USERS_KEPT = 10_000
ROOMS_KEPT = 10_000
M = TypeVar("M", bound=Model)
_EVERY_FIELD: dict[type[Model], set[str]] = {}


def share_bookkeeping(kept: M) -> M:
    """Has a copy about to be kept share its bookkeeping with the other kept copies of its model.

    Pydantic's set of the fields a copy was given and odmantic's set of those it changed both
    name every field of a document loaded whole: two sets of about 700 bytes a copy, most of
    a cached user (one per open stream). Setting a field adds its name to both, which a set of
    every name has already, and only odmantic's engine (which the app does not use) reads the
    second. A copy that lacks a field keeps its own sets.
    """
    every = _EVERY_FIELD.setdefault(type(kept), set(type(kept).model_fields))
    if kept.__pydantic_fields_set__ == every and kept.__fields_modified__ == every:
        object.__setattr__(kept, "__pydantic_fields_set__", every)
        object.__setattr__(kept, "__fields_modified__", every)
    return kept


def _keep(kept: OrderedDict[str, M], key: str, value: M, limit: int) -> None:
    """Keeps `value` as the most recently used, forgetting the least recent past `limit`."""
    kept[key] = share_bookkeeping(value)
    kept.move_to_end(key)
    if len(kept) > limit:
        kept.popitem(last=False)


class Directory:
    """The users and rooms seen lately, by id; the public room and DMs also by key (their keys
    and members never change; a group room is found by its id)."""

    def __init__(self, db: Db) -> None:
        self.db = db
        self.public: Room | None = None  # the public room, once started
        self._users: OrderedDict[str, User] = OrderedDict()
        self._rooms: OrderedDict[str, Room] = OrderedDict()
        self._room_ids: dict[str, str] = {}  # key -> id

    async def start(self) -> Room:
        self.public = await rooms.public(self.db)
        _keep(self._rooms, str(self.public.id), self.public, ROOMS_KEPT)
        return self.public

    async def user(self, user_id: str) -> User | None:
        user = self._users.get(user_id)
        if user is None:
            user = await users.by_id(self.db, user_id=user_id)
            if user is None:
                return None
            _keep(self._users, user_id, user, USERS_KEPT)
        else:
            self._users.move_to_end(user_id)
        return user

    async def room(self, room_id: str) -> Room | None:
        room = self._rooms.get(room_id)
        if room is None:
            room = await rooms.by_id(self.db, room_id=room_id)
            if room is None:
                return None
            _keep(self._rooms, room_id, room, ROOMS_KEPT)
        else:
            self._rooms.move_to_end(room_id)
        return room

    async def room_by_key(self, key: str) -> Room | None:
        """The public room or a DM by its key."""
        room_id = self._room_ids.get(key)
        room = self._rooms.get(room_id) if room_id else None
        if room is None:
            room = await rooms.by_key(self.db, key=key)
            if room is None:
                return None
            if len(self._room_ids) >= ROOMS_KEPT:
                self._room_ids.clear()
            self._room_ids[key] = str(room.id)
        _keep(self._rooms, str(room.id), room, ROOMS_KEPT)
        return room

    def user_changed(self, user: User) -> None:
        """A user's new copy, from the user feed: kept if it was."""
        if str(user.id) in self._users:
            _keep(self._users, str(user.id), user, USERS_KEPT)

    def room_changed(self, room: Room) -> None:
        """A room's new copy, from the room feed: kept if it was."""
        if str(room.id) in self._rooms:
            _keep(self._rooms, str(room.id), room, ROOMS_KEPT)


class Revocations:
    """The sessions signed out and not yet expired, so that checking a request's token costs no
    query: exact once the revocation feed is live (it adds each new one, in whichever process
    it was made), and this process's own sign-outs are added at once. Until it is live, the
    database is asked."""

    PRUNE_EVERY = 1000  # additions between sweeps of the expired ones

    def __init__(self, db: Db) -> None:
        self.db = db
        self._expiry: dict[str, datetime] = {}  # jti -> when the token would have expired
        self._live = False
        self._added = 0

    async def start(self) -> None:
        """Loads those signed out so far; called once the revocation feed is open, so that
        none falls between the two."""
        async for jti, expires_at in sessions.revoked_since(self.db, now()):
            self._expiry[jti] = expires_at
        self._live = True

    def add(self, jti: str, expires_at: datetime) -> None:
        self._expiry[jti] = expires_at
        self._added += 1
        if self._added % self.PRUNE_EVERY == 0:
            at = now()
            self._expiry = {j: when for j, when in self._expiry.items() if when > at}

    async def is_revoked(self, jti: str) -> bool:
        if not self._live:
            return await sessions.is_revoked(self.db, jti=jti)
        return jti in self._expiry
