"""Who is in which room: one membership per member and room, its id their member key.

The public room's members are implicit: a membership there only keeps a read position.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from pymongo.errors import DuplicateKeyError

from webapp.data._query import find, find_one, now
from webapp.data.connection import Db
from webapp.data.models import Membership, Room, RoomMute
from webapp.rules import access
from webapp.rules.access import member_by_kind
from webapp.rules.keys import member_key


async def join(db: Db, *, room_id: str, user_id: str, read_seq: int = 0) -> bool:
    """Makes `user_id` a member, read up to `read_seq`; False when they were one already."""
    membership = _membership(room_id, user_id, now(), read_seq)
    try:
        await db[Membership.__collection__].insert_one(membership.model_dump_doc())
    except DuplicateKeyError:
        return False
    return True


async def first_members(db: Db, *, room_id: str, user_ids: list[str]) -> None:
    """Makes these people the first members of a room about to be made (its id is new: none
    of them can be a member yet), in one insert."""
    at = now()
    members = [_membership(room_id, user_id, at).model_dump_doc() for user_id in user_ids]
    await db[Membership.__collection__].insert_many(members)


def _membership(room_id: str, user_id: str, joined_at: datetime, read_seq: int = 0) -> Membership:
    return Membership(
        id=member_key(room_id, user_id),
        room_id=room_id,
        user_id=user_id,
        read_seq=read_seq,
        joined_at=joined_at,
    )


async def leave(db: Db, *, room_id: str, user_id: str) -> None:
    """Ends a membership, and forgets whether its member had muted the room."""
    key = member_key(room_id, user_id)
    await db[Membership.__collection__].delete_one({"_id": key})
    await db[RoomMute.__collection__].delete_one({"_id": key})


async def forget_room(db: Db, *, room_id: str) -> None:
    """Deletes every membership of a room that was never made (see rooms.dm_room)."""
    await db[Membership.__collection__].delete_many({"room_id": room_id})


async def get(db: Db, *, room_id: str, user_id: str) -> Membership | None:
    return await find_one(db, Membership, {"_id": member_key(room_id, user_id)})


async def is_member(db: Db, *, room: Room, user_id: str) -> bool:
    """Whether `user_id` belongs to the room: by its kind, or by a membership (group rooms)."""
    by_kind = member_by_kind(room, user_id)
    if by_kind is not None:
        return by_kind
    return await get(db, room_id=str(room.id), user_id=user_id) is not None


async def members_among(db: Db, *, room: Room, user_ids: Iterable[str]) -> set[str]:
    """Those of these users who belong to the room: one query at most."""
    ids = list(user_ids)
    if not ids:
        return set()
    if not access.lists_members(room):
        return {user_id for user_id in ids if member_by_kind(room, user_id)}
    cursor = db[Membership.__collection__].find(
        {"room_id": str(room.id), "user_id": {"$in": ids}}, {"user_id": 1}
    )
    return {doc["user_id"] async for doc in cursor}


async def member_ids(db: Db, *, room_id: str) -> list[str]:
    """The room's members, longest-standing first."""
    cursor = db[Membership.__collection__].find(
        {"room_id": room_id}, {"user_id": 1}, sort=[("joined_at", 1), ("_id", 1)]
    )
    return [doc["user_id"] async for doc in cursor]


async def of_user(db: Db, *, user_id: str) -> list[Membership]:
    return await find(db, Membership, {"user_id": user_id})


async def room_ids_of(db: Db, *, user_id: str) -> set[str]:
    cursor = db[Membership.__collection__].find({"user_id": user_id}, {"room_id": 1})
    return {doc["room_id"] async for doc in cursor}


async def contacts_of(db: Db, *, user_ids: Iterable[str], public_id: str) -> dict[str, set[str]]:
    """For each of these users, everyone who shares a DM or a group room with them (and
    themselves): two queries, however many users and rooms."""
    ids = list(user_ids)
    memberships = db[Membership.__collection__]
    theirs = memberships.find({"user_id": {"$in": ids}}, {"room_id": 1, "user_id": 1})
    rooms_of: dict[str, set[str]] = {user_id: set() for user_id in ids}
    async for doc in theirs:
        if doc["room_id"] != public_id:  # everyone's: memberships there only hold positions
            rooms_of[doc["user_id"]].add(doc["room_id"])
    room_ids = set().union(*rooms_of.values())
    members: dict[str, set[str]] = {}
    if room_ids:
        cursor = memberships.find(
            {"room_id": {"$in": list(room_ids)}}, {"room_id": 1, "user_id": 1}
        )
        async for doc in cursor:
            members.setdefault(doc["room_id"], set()).add(doc["user_id"])
    return {
        user_id: {user_id}.union(*(members.get(room, set()) for room in rooms))
        for user_id, rooms in rooms_of.items()
    }


async def counts(db: Db, *, room_ids: Iterable[str]) -> dict[str, int]:
    """How many members each of these rooms has."""
    counted = await db[Membership.__collection__].aggregate(
        [
            {"$match": {"room_id": {"$in": list(room_ids)}}},
            {"$group": {"_id": "$room_id", "members": {"$sum": 1}}},
        ]
    )
    return {doc["_id"]: doc["members"] async for doc in counted}
