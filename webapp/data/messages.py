"""Messages: posted with the room's next number, paged newest first, edited, deleted, and
found by their words (kept beside each message in MessageWords)."""

from __future__ import annotations

import asyncio
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from bson import ObjectId
from pymongo import ReturnDocument
from pymongo.errors import DuplicateKeyError

from webapp.data import nx_compat
from webapp.data._query import (
    InsertTogether,
    find,
    find_one,
    get_by_id,
    insert,
    now,
    parse_id,
    update,
)
from webapp.data.connection import Db
from webapp.data.models import Message, MessageWords, PostKey, Room, RoomSequence, User

# A reaction changes a message without notifying anyone of it (see Message.notify).
NOTHING_NEW: dict[str, Any] = {"notify": []}


@dataclass(frozen=True)
class Written:
    """What a post or an edit stores beside the text as typed: worked out once, by the action."""

    html: str
    plain: str
    words: list[str]
    mentions: list[str]  # ids
    notify: list[str]  # ids: those this change notifies


async def create(
    db: Db,
    *,
    room: Room,
    sender: User,
    body: str,
    written: Written,
    reply_to: str = "",
    message_id: ObjectId | None = None,
    client_key: str = "",
) -> Message:
    """One counter update for the room's next number, and the message and its words inserted,
    however many members the room has."""
    room_id = str(room.id)
    counter = await db[RoomSequence.__collection__].find_one_and_update(
        {"_id": room_id},
        {"$inc": {"value": 1}},
        upsert=True,
        return_document=ReturnDocument.AFTER,
    )
    assert counter is not None  # an upsert returning the document after it
    message_id = message_id or ObjectId()
    at = now()
    await _insert_words(db, message_id, room_id, at, written.words)
    message = Message(
        id=message_id,
        room_id=room_id,
        seq=counter["value"],
        sender_id=str(sender.id),
        sender_name=sender.username,
        body=body,
        html=written.html,
        plain=written.plain,
        mentions=written.mentions,
        notified=written.notify,
        notify=written.notify,
        reply_to=reply_to,
        client_key=client_key,
        created_at=at,
    )
    return await insert(db, message)


async def claim_key(db: Db, *, sender_id: str, key: str, message_id: ObjectId) -> str | None:
    """Claims a client's key for the message about to be posted: None when it is claimed now,
    else the id of the message it was claimed for before."""
    claim = PostKey(id=f"{sender_id}:{key}", message_id=str(message_id), at=now())
    try:
        await insert(db, claim)
    except DuplicateKeyError:
        found = await find_one(db, PostKey, {"_id": claim.id})
        return found.message_id if found else None
    return None


async def by_key(db: Db, *, sender_id: str, key: str) -> Message | None:
    """The message a client's key was claimed for, once it is there."""
    found = await find_one(db, PostKey, {"_id": f"{sender_id}:{key}"})
    return await by_id(db, message_id=found.message_id) if found else None


async def release_key(db: Db, *, sender_id: str, key: str) -> None:
    await db[PostKey.__collection__].delete_one({"_id": f"{sender_id}:{key}"})


async def by_id(db: Db, *, message_id: str) -> Message | None:
    oid = parse_id(message_id)
    return await get_by_id(db, Message, object_id=oid) if oid else None


async def many_by_id(db: Db, *, message_ids: Sequence[ObjectId]) -> dict[ObjectId, Message]:
    if not message_ids:
        return {}
    found = await find(db, Message, {"_id": {"$in": list(set(message_ids))}})
    return {message.id: message for message in found}


async def page(
    db: Db,
    *,
    room_id: str,
    before: Message | None = None,
    through: Message | None = None,
    limit: int,
) -> list[Message]:
    """The latest `limit` messages of a room (or those before `before`, or those up to and
    including `through`), oldest first."""
    filter: dict[str, Any] = {"room_id": room_id}
    if before is not None or through is not None:
        edge = before or through
        assert edge is not None
        same_time = {"$lt": edge.id} if before is not None else {"$lte": edge.id}
        filter["$or"] = [
            {"created_at": {"$lt": edge.created_at}},
            {"created_at": edge.created_at, "_id": same_time},
        ]
    newest_first = await find(
        db, Message, filter, sort=[("created_at", -1), ("_id", -1)], limit=limit
    )
    return newest_first[::-1]


async def search(
    db: Db,
    *,
    room_ids: Collection[str],
    words: Sequence[str],
    before: Message | None = None,
    limit: int,
) -> list[Message]:
    """The newest `limit` messages of these rooms (older than `before`) that have, for each of
    `words`, a word that is it or starts with it; none for no words.

    Each room is asked on its own (all at once) for its newest MessageWords with a word starting
    with the longest of `words` (a range on the multikey `words` index, or on the embedded
    server the room's index walked newest first); the other words are checked here, and the
    rooms' answers merged. (One query over every room, with `$in` and `$and`, is read row by row
    on the embedded server: data/nx_compat.py.)"""
    if not words or not room_ids:
        return []
    key = max(words, key=len)
    rooms = [_search_room(db, room_id, key, words, before, limit) for room_id in room_ids]
    found = [doc for docs in await asyncio.gather(*rooms) for doc in docs]
    found.sort(key=lambda doc: (doc["created_at"], doc["_id"]), reverse=True)
    ids = [doc["_id"] for doc in found[:limit]]
    loaded = await many_by_id(db, message_ids=ids)
    # (Words whose message is gone or deleted: what a failed post or deletion can leave.)
    return [loaded[i] for i in ids if i in loaded and not loaded[i].deleted]


SEARCH_BATCH = 60  # candidates a room is first asked for; all of them the second time
NEWEST = [("room_id", -1), ("created_at", -1)]  # one room's: the (room_id, created_at) index


async def _search_room(
    db: Db,
    room_id: str,
    key: str,
    words: Sequence[str],
    before: Message | None,
    limit: int,
) -> list[dict[str, Any]]:
    """The room's newest `limit` matches older than `before`: their _id and created_at."""
    filter: dict[str, Any] = {
        "room_id": nx_compat.indexed_equal(room_id),
        "words": {"$elemMatch": {"$gte": key, "$lt": key + _LAST_CHARACTER}},
    }
    if before is not None:  # (to the second on the embedded server: exact below)
        filter["created_at"] = {"$lte": before.created_at}
    collection = db[MessageWords.__collection__]
    for asked in (SEARCH_BATCH, 0):  # (0: no limit)
        docs = [doc async for doc in collection.find(filter, sort=NEWEST, limit=asked)]
        matches = [
            doc
            for doc in docs
            if _has_every(doc["words"], words)
            and (before is None or (doc["created_at"], doc["_id"]) < (before.created_at, before.id))
        ]
        if len(matches) >= limit or len(docs) < asked:
            break
    return matches[:limit]


_LAST_CHARACTER = "\U0010ffff"  # after every character a word can have: key + it ends the prefix


def _has_every(stored: Sequence[str], words: Sequence[str]) -> bool:
    return all(any(word.startswith(asked) for word in stored) for asked in words)


_WORDS = InsertTogether(MessageWords.__collection__)  # posts at once: one command


async def _insert_words(
    db: Db, message_id: ObjectId, room_id: str, created_at: datetime, words: list[str]
) -> None:
    """A message's MessageWords, stored before the message: a failure in between leaves words
    that find nothing (search shows only messages that are there), never a message that
    cannot be found. (A plain document: this is on the way of every post.)"""
    doc = {"_id": message_id, "room_id": room_id, "created_at": created_at, "words": words}
    try:
        await _WORDS.insert(db, doc)
    except DuplicateKeyError:  # the same message, posted again after such a failure
        await db[MessageWords.__collection__].update_one(
            {"_id": message_id}, {"$set": {"words": words}}
        )


async def _set_words(db: Db, message: Message, words: list[str]) -> None:
    """An edited message's words, stored before its text (for the same reason)."""
    changed = await db[MessageWords.__collection__].update_one(
        {"_id": message.id}, {"$set": {"words": words}}
    )
    if not changed.matched_count:  # none yet (see _insert_words)
        await _insert_words(db, message.id, message.room_id, message.created_at, words)


async def edit(db: Db, *, message: Message, body: str, written: Written) -> Message:
    await _set_words(db, message, written.words)
    return await update(
        db,
        message,
        body=body,
        html=written.html,
        plain=written.plain,
        mentions=written.mentions,
        notified=sorted({*message.notified, *written.notify}),
        notify=written.notify,
        stamp="edited_at",
    )


async def delete(db: Db, *, message: Message) -> Message:
    """Its words, mentions and reactions go; a tombstone stays."""
    deleted = await update(
        db,
        message,
        body="",
        html="",
        plain="",
        mentions=[],
        notify=[],
        reactions={},
        reaction_kinds=0,
        deleted=True,
    )
    await db[MessageWords.__collection__].delete_one({"_id": message.id})
    return deleted


async def react(db: Db, *, message_id: ObjectId, emoji: str, username: str, kinds_max: int) -> str:
    """Adds `username`'s reaction, in one atomic update (two people at once both count):
    "added"; "already" when it was there; "full" when it is a new emoji and the message has
    `kinds_max` kinds already; "gone" when the message is not there or deleted."""
    collection = db[Message.__collection__]
    field = f"reactions.{emoji}"
    for _ in range(3):
        to_existing = await collection.update_one(
            {
                "_id": message_id,
                "deleted": False,
                f"{field}.by.{username}": {"$exists": False},
                f"{field}.n": {"$gte": 1},
            },
            {"$set": {f"{field}.by.{username}": True, **NOTHING_NEW}, "$inc": {f"{field}.n": 1}},
        )
        if to_existing.matched_count:
            return "added"
        room_for_one = [
            {"reaction_kinds": {"$lt": kinds_max}},
            {"reaction_kinds": {"$exists": False}},
        ]
        new = await collection.update_one(
            {
                # (_id in an $and: the embedded server's update_one misreads it beside an $or)
                "$and": [
                    {"_id": message_id},
                    {"deleted": False},
                    {field: {"$exists": False}},
                    {"$or": room_for_one},
                ]
            },
            {
                "$set": {field: {"n": 1, "by": {username: True}}, **NOTHING_NEW},
                "$inc": {"reaction_kinds": 1},
            },
        )
        if new.matched_count:
            return "added"
        doc = await collection.find_one({"_id": message_id})
        if doc is None or doc.get("deleted"):
            return "gone"
        entry = doc.get("reactions", {}).get(emoji)
        if entry is not None and username in entry.get("by", {}):
            return "already"
        if entry is None and doc.get("reaction_kinds", 0) >= kinds_max:
            return "full"
        # someone added or removed this emoji in between: look again
    return "already"  # still moving after three looks: as if it had been there


async def unreact(db: Db, *, message_id: ObjectId, emoji: str, username: str) -> bool:
    """Takes `username`'s reaction away (an emoji nobody has left goes too); whether it was
    there."""
    collection = db[Message.__collection__]
    field = f"reactions.{emoji}"
    removed = await collection.update_one(
        {"_id": message_id, f"{field}.by.{username}": {"$exists": True}},
        {
            "$unset": {f"{field}.by.{username}": ""},
            "$inc": {f"{field}.n": -1},
            "$set": NOTHING_NEW,
        },
    )
    if not removed.matched_count:
        return False
    await collection.update_one(
        {"_id": message_id, f"{field}.n": 0},
        {"$unset": {field: ""}, "$inc": {"reaction_kinds": -1}, "$set": NOTHING_NEW},
    )
    return True
