"""Rooms: the public room, direct conversations and group rooms, found by id or key; and who
muted which."""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterable
from typing import Any

from bson import ObjectId
from pymongo.errors import DuplicateKeyError

from webapp.data import memberships
from webapp.data._query import find, find_one, get_by_id, insert, now, object_ids, parse_id, update
from webapp.data.connection import Db
from webapp.data.models import Room, RoomMute
from webapp.rules.access import DM, GROUP, PUBLIC
from webapp.rules.keys import PUBLIC as PUBLIC_KEY
from webapp.rules.keys import dm_key, member_key


async def _by_key_or_made(db: Db, *, key: str, new: Room) -> Room:
    """The room of this key, made as `new` if there is none (by any number of processes)."""
    found = await find_one(db, Room, {"key": key})
    if found is not None:
        return found
    try:
        return await insert(db, new)
    except DuplicateKeyError:  # another request or process made it first
        found = await find_one(db, Room, {"key": key})
        assert found is not None
        return found


async def public(db: Db) -> Room:
    """The public room, made on first use."""
    new = Room(kind=PUBLIC, key=PUBLIC_KEY, name="Public room", created_at=now())  # type: ignore[call-arg]  # odmantic makes the id
    return await _by_key_or_made(db, key=PUBLIC_KEY, new=new)


async def by_key(db: Db, *, key: str) -> Room | None:
    return await find_one(db, Room, {"key": key})


async def by_id(db: Db, *, room_id: str) -> Room | None:
    oid = parse_id(room_id)
    return await get_by_id(db, Room, object_id=oid) if oid else None


async def many_by_id(db: Db, *, room_ids: Iterable[str]) -> list[Room]:
    ids = object_ids(room_ids)
    return await find(db, Room, {"_id": {"$in": ids}}) if ids else []


async def dm(db: Db, *, a: str, b: str) -> Room:
    """The direct conversation between two users (one, for notes to self), made on first use."""
    key = dm_key(a, b)
    members = sorted({a, b})
    new = Room(kind=DM, key=key, members=members, created_at=now())  # type: ignore[call-arg]  # odmantic makes the id
    found = await find_one(db, Room, {"key": key})
    if found is not None:
        return found
    # The members first, so that the room never exists without them.
    await memberships.first_members(db, room_id=str(new.id), user_ids=members)
    room = await _by_key_or_made(db, key=key, new=new)
    if room.id != new.id:  # another request made it first: these memberships are of nothing
        await memberships.forget_room(db, room_id=str(new.id))
    return room


async def create_group(db: Db, *, name: str, topic: str, open: bool, owner_id: str) -> Room:
    """A group room, its owner its only member (the membership first: see dm)."""
    room_id = ObjectId()
    room = Room(
        id=room_id,
        kind=GROUP,
        key=str(room_id),
        name=name,
        name_key=name.casefold(),
        topic=topic,
        open=open,
        owner_id=owner_id,
        created_at=now(),
    )
    await memberships.join(db, room_id=str(room_id), user_id=owner_id)
    return await insert(db, room)


async def rename(db: Db, *, room: Room, name: str, topic: str) -> Room:
    return await update(db, room, name=name, name_key=name.casefold(), topic=topic)


async def set_ownership_if(db: Db, *, room: Room, owner_id: str, archived: bool) -> bool:
    """Gives the room this owner and archived flag, if it still has those it was read with
    (compare and set); False when someone changed them meanwhile."""
    seen = {"_id": room.id, "owner_id": room.owner_id, "archived": room.archived}
    change: dict[str, Any] = {"owner_id": owner_id}
    if archived != room.archived:  # (a boolean set is stored as 0 or 1 by the embedded server)
        change["archived"] = archived
    result = await db[Room.__collection__].update_one(seen, {"$set": change})
    return result.matched_count == 1


async def open_rooms(
    db: Db, *, name_part: str = "", after: Room | None = None, limit: int
) -> list[Room]:
    """Up to `limit` open group rooms by name (those after `after`; those whose name holds
    `name_part`, ignoring case)."""
    conditions: list[dict[str, Any]] = [{"open": True, "archived": False, "kind": GROUP}]
    if name_part:
        conditions.append({"name_key": {"$regex": re.escape(name_part.casefold())}})
    if after is not None:
        later = [
            {"name_key": {"$gt": after.name_key}},
            {"name_key": after.name_key, "_id": {"$gt": after.id}},
        ]
        conditions.append({"$or": later})
    return await find(
        db, Room, {"$and": conditions}, sort=[("name_key", 1), ("_id", 1)], limit=limit
    )


async def set_muted(db: Db, *, room: Room, user_id: str, muted: bool) -> None:
    """Mutes or unmutes the room for this member (a document each mute, deleted to unmute)."""
    mute_id = member_key(str(room.id), user_id)
    if not muted:
        await db[RoomMute.__collection__].delete_one({"_id": mute_id})
        return
    mute = RoomMute(id=mute_id, room_id=str(room.id), user_id=user_id, muted_at=now())
    with contextlib.suppress(DuplicateKeyError):  # muted already
        await insert(db, mute)


async def muted_ids(db: Db, *, user_id: str) -> set[str]:
    """The rooms this person has muted."""
    cursor = db[RoomMute.__collection__].find({"user_id": user_id}, {"room_id": 1})
    return {doc["room_id"] async for doc in cursor}
