"""Data of the shape before rooms (messages keyed "public" or "dm:<a>:<b>" with copied
participants, read markers with DM counters), moved to rooms and memberships at start-up."""

from __future__ import annotations

from collections.abc import Callable

from pymongo import UpdateOne

from webapp.data import rooms
from webapp.data._query import now
from webapp.data.connection import Db, Document
from webapp.data.models import Membership, Message, Room, RoomSequence, Typing
from webapp.rules.access import PUBLIC
from webapp.rules.keys import PUBLIC as PUBLIC_KEY
from webapp.rules.keys import member_key


async def migrate_conversations(db: Db) -> int:
    """Moves data of the old shape to rooms; returns the messages moved.

    Idempotent, and safe in several processes at once: each step either finds its work done or
    does the same as any other process would (rooms by their unique key, memberships by their
    id, sequence numbers by the messages' order, positions by $max).
    """
    messages = db[Message.__collection__]
    old = {"room_id": {"$exists": False}, "conversation": {"$exists": True}}
    moved = 0
    for key in await messages.distinct("conversation", old):
        room = await _migrated_room(db, key)
        if room is None:
            continue
        moved += await _number_messages(db, room, key)
    await _migrate_read_markers(db)
    typing = db[Typing.__collection__]
    await typing.delete_many({"room_id": {"$exists": False}})  # lapse within seconds anyway
    return moved


async def _migrated_room(db: Db, key: str) -> Room | None:
    if key == PUBLIC_KEY:
        return await rooms.public(db)
    kind, _, pair = key.partition(":")
    first, _, second = pair.partition(":")
    if kind != "dm" or not first or not second:
        return None
    return await rooms.dm(db, a=first, b=second)


async def _number_messages(db: Db, room: Room, key: str) -> int:
    """Gives the room's old messages its id and their seq, in the order they were posted."""
    messages = db[Message.__collection__]
    room_id = str(room.id)
    cursor = messages.find({"conversation": key}, {"_id": 1}, sort=[("created_at", 1), ("_id", 1)])
    ids = [doc["_id"] async for doc in cursor]
    numbered = [
        UpdateOne(
            {"_id": oid, "room_id": {"$exists": False}},
            {"$set": {"room_id": room_id, "seq": seq}, "$unset": {"participants": ""}},
        )
        for seq, oid in enumerate(ids, start=1)
    ]
    if not numbered:
        return 0
    result = await messages.bulk_write(numbered, ordered=False)
    await db[RoomSequence.__collection__].update_one(
        {"_id": room_id}, {"$max": {"value": len(ids)}}, upsert=True
    )
    await messages.update_many({"room_id": room_id}, {"$unset": {"conversation": ""}})
    return result.modified_count


async def _migrate_read_markers(db: Db) -> None:
    """A marker's time (public room) or counter (DMs) becomes a read position.

    Positions are worked out from the messages' order, whichever shape each message is in yet,
    so that a process still numbering them elsewhere changes nothing here.
    """
    markers = db["read_markers"]
    async for marker in markers.find({}):
        key = marker.get("conversation", "")
        room = await rooms.by_key(db, key=key)
        user_id = marker.get("user_id", "")
        if room is not None and user_id:
            room_id = str(room.id)
            read_seq = await _position_of(db, room, key, marker, user_id)
            await db[Membership.__collection__].update_one(
                {"_id": member_key(room_id, user_id)},
                {
                    "$max": {"read_seq": read_seq},
                    "$setOnInsert": {"room_id": room_id, "user_id": user_id, "joined_at": now()},
                },
                upsert=room.kind == PUBLIC,
            )
        await markers.delete_one({"_id": marker["_id"]})


async def _position_of(db: Db, room: Room, key: str, marker: Document, user_id: str) -> int:
    """How many of the room's messages, in posting order, a marker says were read."""
    messages = db[Message.__collection__]
    of_room = {"$or": [{"conversation": key}, {"room_id": str(room.id)}]}
    if room.kind == PUBLIC:
        return await messages.count_documents(
            {**of_room, "created_at": {"$lte": marker["read_at"]}}
        )
    unread = int(marker.get("unread", 0))
    if unread <= 0:
        return await messages.count_documents(of_room)
    # The oldest unread one: the unread-th newest from someone else. Everything before it is read.
    oldest_unread = await messages.find_one(
        {**of_room, "sender_id": {"$ne": user_id}},
        sort=[("created_at", -1), ("_id", -1)],
        skip=unread - 1,
    )
    if oldest_unread is None:
        return 0
    at = oldest_unread["created_at"]
    earlier = [
        {"created_at": {"$lt": at}},
        {"created_at": at, "_id": {"$lt": oldest_unread["_id"]}},
    ]
    return await messages.count_documents({"$and": [of_room, {"$or": earlier}]})


WORDS_BATCH = 500  # messages given their search words at a time


async def index_words(db: Db, *, words_of: Callable[[str], tuple[str, list[str]]]) -> int:
    """Gives messages from before search their HTML, plain text and words (`words_of`: a
    message's text as typed -> its plain text and words), a batch at a time; idempotent, and
    one query when there is nothing to do. Returns how many it gave them."""
    messages = db[Message.__collection__]
    done = 0
    while True:
        batch = [
            doc
            async for doc in messages.find(
                {"words": {"$exists": False}}, {"body": 1}, limit=WORDS_BATCH
            )
        ]
        if not batch:
            return done
        updates = []
        for doc in batch:
            plain, words = words_of(doc.get("body", ""))
            updates.append(
                UpdateOne(
                    {"_id": doc["_id"], "words": {"$exists": False}},
                    {"$set": {"plain": plain, "words": words}},
                )
            )
        await messages.bulk_write(updates, ordered=False)
        done += len(batch)
