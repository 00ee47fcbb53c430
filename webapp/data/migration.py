"""Data of the shape before rooms (messages keyed "public" or "dm:<a>:<b>" with copied
participants, read markers with DM counters), moved to rooms and memberships at start-up."""

from __future__ import annotations

import contextlib
from collections.abc import Callable

from pymongo import UpdateOne
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.errors import OperationFailure

from webapp.data import rooms, words
from webapp.data._query import now
from webapp.data.connection import Db, Document
from webapp.data.models import Membership, Message, Room, RoomSequence, Typing
from webapp.rules.access import PUBLIC
from webapp.rules.keys import PUBLIC as PUBLIC_KEY
from webapp.rules.keys import member_key

Collection = AsyncCollection[Document]


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
    """Gives every message its MessageWords, a batch at a time: messages from before search get
    their plain text and words worked out (`words_of`: a message's text as typed -> its plain
    text and words), and messages that kept their words on themselves (before MessageWords)
    have them moved. Idempotent, safe in several processes at once, and three queries when
    there is nothing to do. Returns how many messages it gave words."""
    messages = db[Message.__collection__]
    done = 0
    before_search = {"plain": {"$exists": False}}
    while batch := await _batch(
        messages, before_search, {"body": 1, "room_id": 1, "created_at": 1, "deleted": 1}
    ):
        worked_out = {doc["_id"]: words_of(doc.get("body", "")) for doc in batch}
        found = [_words_of(doc, worked_out[doc["_id"]][1]) for doc in _kept(batch)]
        await words.add_many(db, found)
        await messages.bulk_write(
            [
                UpdateOne({"_id": oid, **before_search}, {"$set": {"plain": plain}})
                for oid, (plain, _) in worked_out.items()
            ],
            ordered=False,
        )
        done += len(batch)
    on_message = {"words": {"$exists": True}}
    projection = {"words": 1, "room_id": 1, "created_at": 1, "deleted": 1}
    while batch := await _batch(messages, on_message, projection):
        await words.add_many(db, [_words_of(doc, doc.get("words") or []) for doc in _kept(batch)])
        ids = [doc["_id"] for doc in batch]
        await messages.update_many({"_id": {"$in": ids}}, {"$unset": {"words": ""}})
        done += len(batch)
    await _drop_index(messages, {"words": 1})
    return done


async def _batch(messages: Collection, filter: Document, projection: Document) -> list[Document]:
    return [doc async for doc in messages.find(filter, projection, limit=WORDS_BATCH)]


def _kept(batch: list[Document]) -> list[Document]:
    return [doc for doc in batch if not doc.get("deleted")]  # a deleted message has no words


def _words_of(doc: Document, found: list[str]) -> Document:
    return words.document(doc["_id"], doc["room_id"], doc["created_at"], list(found))


async def _drop_index(collection: Collection, key: Document) -> None:
    """Drops the index on `key`, if there is one (another process may drop it first)."""
    async for index in await collection.list_indexes():
        if dict(index["key"]) == key:
            with contextlib.suppress(OperationFailure):
                await collection.drop_index(index["name"])
