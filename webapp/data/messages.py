"""Messages: posted with the room's next number (and their words stored, data/words.py),
paged newest first, edited, deleted, reacted to."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from bson import ObjectId
from pymongo.errors import DuplicateKeyError

from webapp.data import words
from webapp.data._query import find, find_one, get_by_id, now, parse_id, update
from webapp.data.connection import Db
from webapp.data.models import Message, PostKey, Room, RoomSequence, User
from webapp.data.together import CountTogether, InsertTogether

# A reaction changes a message without notifying anyone of it (see Message.notify).
NOTHING_NEW: dict[str, Any] = {"notify": []}
# Posts at once share the commands that claim their keys, number them (one per room) and
# insert them.
_CLAIMS = InsertTogether(PostKey.__collection__)
_NUMBERS = CountTogether(RoomSequence.__collection__)
_INSERTS = InsertTogether(Message.__collection__)


@dataclass(frozen=True)
class Written:
    """What a post or an edit stores beside the text as typed: worked out once, by the action."""

    html: str
    plain: str
    words: list[str]
    mentions: list[str]  # ids
    notify: list[str]  # ids: those this change notifies


@dataclass(frozen=True)
class Numbered:
    """A new message's first step: its id, its number in its room and its time."""

    id: ObjectId
    room_id: str
    seq: int
    at: datetime


async def number(db: Db, *, room: Room, message_id: ObjectId, written: Written) -> Numbered:
    """A new message's first step: its time and the room's next number for it, with its words
    stored. With `insert`, three commands however many members the room has, each shared with
    posts made at the same moment. The number and the words are asked for at once (neither
    needs the other); the message goes after them, so that it never exists without them. Its
    time is taken first, so that within a process times and numbers keep the same order."""
    room_id, at = str(room.id), now()
    seq, _ = await asyncio.gather(
        _NUMBERS.next(db, room_id),
        words.store(db, message_id=message_id, room_id=room_id, created_at=at, words=written.words),
    )
    return Numbered(message_id, room_id, seq, at)


async def insert(
    db: Db,
    numbered: Numbered,
    *,
    sender: User,
    body: str,
    written: Written,
    reply_to: str = "",
    client_key: str = "",
) -> Message:
    """The message numbered, stored."""
    message = Message(
        id=numbered.id,
        room_id=numbered.room_id,
        seq=numbered.seq,
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
        created_at=numbered.at,
    )
    await _INSERTS.insert(db, message.model_dump_doc())
    return message


async def unnumber(db: Db, numbered: Numbered) -> None:
    """A numbered message that will not be made: its words go (its number stays unused)."""
    await words.forget(db, message_id=numbered.id)


async def claim_key(db: Db, *, sender_id: str, key: str, message_id: ObjectId) -> str | None:
    """Claims a client's key for the message about to be posted: None when it is claimed now,
    else the id of the message it was claimed for before."""
    claim = PostKey(id=f"{sender_id}:{key}", message_id=str(message_id), at=now())
    for _ in range(3):
        try:
            await _CLAIMS.insert(db, claim.model_dump_doc())
        except DuplicateKeyError:
            if found := await find_one(db, PostKey, {"_id": claim.id}):
                return found.message_id
            continue  # let go of in between: claim it again
        return None
    raise DuplicateKeyError(f"The key {key!r} keeps changing hands.")


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


async def edit(db: Db, *, message: Message, body: str, written: Written) -> Message:
    await words.replace(db, message=message, words=written.words)
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
    await words.forget(db, message_id=message.id)
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
