"""Read positions and unread counts (rules/unread.py), from the rooms' message counters."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from webapp.data._query import now
from webapp.data.connection import Db
from webapp.data.memberships import get as get_membership
from webapp.data.models import Membership, Message, Room, RoomSequence, User
from webapp.rules.access import PUBLIC
from webapp.rules.keys import member_key
from webapp.rules.unread import UNREAD_CAP, counted_since, read_target


async def room_count(db: Db, *, room_id: str) -> int:
    """How many messages the room has had (its sequence number so far)."""
    counter = await db[RoomSequence.__collection__].find_one({"_id": room_id})
    return int(counter["value"]) if counter else 0


async def room_counts(db: Db, *, room_ids: Iterable[str]) -> dict[str, int]:
    cursor = db[RoomSequence.__collection__].find({"_id": {"$in": list(room_ids)}})
    return {doc["_id"]: doc["value"] async for doc in cursor}


async def _starting_position(db: Db, *, room: Room, user: User) -> int:
    """Where someone who never read the public room stands, if they registered before their
    place was written when they came (start_reading): what was posted before they
    registered is history, not unread. Counted, as a seq would be: nx-27017's find() and
    aggregate() compare dates to the second, count_documents() exactly (README, "The embedded
    database"). A number given to a post that was then lost makes the count one short."""
    return await db[Message.__collection__].count_documents(
        {"room_id": str(room.id), "created_at": {"$lte": user.created_at}}
    )


async def position(db: Db, *, room: Room, user: User) -> int:
    """The seq up to which `user` has read the room."""
    membership = await get_membership(db, room_id=str(room.id), user_id=str(user.id))
    if membership is not None:
        return membership.read_seq
    if room.kind == PUBLIC:
        return await _starting_position(db, room=room, user=user)
    return 0


async def mark_read(db: Db, *, room: Room, user: User, seq: int | None = None) -> None:
    """The reader has read the room up to message `seq` (None: everything posted so far): their
    read position moves up to it (rules/unread.read_target), never back. Nothing is written
    when it would not move. In the public room the membership holds only this."""
    room_id, user_id = str(room.id), str(user.id)
    target = read_target(seq, await room_count(db, room_id=room_id))
    membership = await get_membership(db, room_id=room_id, user_id=user_id)
    if membership is not None:
        if target <= membership.read_seq:
            return
    elif room.kind == PUBLIC:  # never read before: from where they started
        if target <= await _starting_position(db, room=room, user=user):
            return
    else:
        return  # elsewhere a membership is never made by reading
    await _move_up(db, room, user_id, target)


async def start_reading(db: Db, *, public: Room, user: User) -> None:
    """A newcomer's place in the public room: what it had when they came (its counter) is
    history, not unread. Written at once, so that it never has to be worked out from the
    messages (_starting_position, for those who came before this was written)."""
    await _move_up(db, public, str(user.id), await room_count(db, room_id=str(public.id)))


async def _move_up(db: Db, room: Room, user_id: str, target: int) -> None:
    """The read position moved up to `target` (a public-room membership made for it)."""
    room_id = str(room.id)
    change: dict[str, Any] = {"$max": {"read_seq": target}}
    if room.kind == PUBLIC:
        change["$setOnInsert"] = {"room_id": room_id, "user_id": user_id, "joined_at": now()}
    await db[Membership.__collection__].update_one(
        {"_id": member_key(room_id, user_id)}, change, upsert=room.kind == PUBLIC
    )


def _others_between(room_id: str, user_id: str, after: int, upto: int) -> dict[str, Any]:
    return {
        "room_id": room_id,
        "seq": {"$gt": after, "$lte": upto},
        "sender_id": {"$ne": user_id},
        "deleted": False,
    }


@dataclass(frozen=True)
class Unread:
    """Others' messages after a reader's position (up to UNREAD_CAP), and of those, how many
    mention the reader."""

    messages: int = 0
    mentions: int = 0


def _counted(branches: list[dict[str, Any]], user_id: str) -> list[dict[str, Any]]:
    mentions_me = {"$in": [user_id, {"$ifNull": ["$mentions", []]}]}
    return [
        # Each branch carries every condition: nx-27017's aggregate drops fields beside an $or.
        {"$match": {"$or": branches}},
        {
            "$group": {
                "_id": "$room_id",
                "unread": {"$sum": 1},
                "mentions": {"$sum": {"$cond": [mentions_me, 1, 0]}},
            }
        },
    ]


async def count_unread(db: Db, *, room_id: str, user_id: str, after_seq: int, upto: int) -> Unread:
    """Others' messages in the room after `after_seq` and up to `upto` (deleted ones aside)."""
    since = counted_since(after_seq, upto)
    if since is None:
        return Unread()
    counted = await db[Message.__collection__].aggregate(
        _counted([_others_between(room_id, user_id, *since)], user_id)
    )
    found = [doc async for doc in counted]
    if not found:
        return Unread()
    return Unread(min(int(found[0]["unread"]), UNREAD_CAP), int(found[0]["mentions"]))


async def unread_counts(
    db: Db, *, user: User, public: Room, memberships: Sequence[Membership]
) -> dict[str, Unread]:
    """What is unread, by room id, in the public room and the rooms of these memberships.

    Two queries however many rooms there are and however many have news (three for someone
    who never read the public room): the counters, then one count of others' messages after
    the reader's position in every room whose counter moved past it.
    """
    user_id = str(user.id)
    positions = {m.room_id: m.read_seq for m in memberships}
    public_id = str(public.id)
    counts = await room_counts(db, room_ids=[*positions, public_id])
    if public_id in counts and public_id not in positions:  # never read: since joining
        positions[public_id] = await _starting_position(db, room=public, user=user)
    branches = [
        _others_between(room_id, user_id, *since)
        for room_id, count in counts.items()
        if (since := counted_since(positions.get(room_id, count), count)) is not None
    ]
    if not branches:
        return {}
    counted = await db[Message.__collection__].aggregate(_counted(branches, user_id))
    return {
        doc["_id"]: Unread(min(int(doc["unread"]), UNREAD_CAP), int(doc["mentions"]))
        async for doc in counted
    }
