"""What search finds a message by: its MessageWords, kept beside it (written before the message
and taken away after its deletion), and the search over them.

Written before the message, a message's words can outlast a failure that the message itself
did not survive, or a deletion whose second step failed: words that find nothing, since a
search shows only the messages that are there and not deleted (actions/finding.py). The other
way round, a message nobody could find, cannot happen.
"""

from __future__ import annotations

import asyncio
from collections.abc import Collection, Sequence
from datetime import datetime
from typing import Any

from bson import ObjectId
from pymongo.errors import BulkWriteError, DuplicateKeyError

from webapp.data import nx_compat
from webapp.data.connection import Db, Document
from webapp.data.models import Message, MessageWords
from webapp.data.together import InsertTogether, refusals

SEARCH_BATCH = 60  # candidates a room is first asked for; all of them the second time
# One room's, newest first: by the room too, so that the embedded server walks the (room_id,
# created_at) index and stops at the limit (data/nx_compat/queries.py).
NEWEST = [("room_id", -1), ("created_at", -1)]
_LAST_CHARACTER = "\U0010ffff"  # after every character a word can have: key + it ends the prefix
_TOGETHER = InsertTogether(MessageWords.__collection__)  # posts at once: one command


def document(
    message_id: ObjectId, room_id: str, created_at: datetime, words: list[str]
) -> Document:
    """A MessageWords as stored (a plain document: one is made for every post)."""
    return {"_id": message_id, "room_id": room_id, "created_at": created_at, "words": words}


async def store(
    db: Db, *, message_id: ObjectId, room_id: str, created_at: datetime, words: list[str]
) -> None:
    """A new message's words (posts at once share one insert)."""
    try:
        await _TOGETHER.insert(db, document(message_id, room_id, created_at, words))
    except DuplicateKeyError:  # the same message, posted again after a failure
        await _set(db, message_id, words)


async def replace(db: Db, *, message: Message, words: list[str]) -> None:
    """An edited message's words (stored again if a failure lost them)."""
    if not await _set(db, message.id, words):
        await store(
            db,
            message_id=message.id,
            room_id=message.room_id,
            created_at=message.created_at,
            words=words,
        )


async def forget(db: Db, *, message_id: ObjectId) -> None:
    await db[MessageWords.__collection__].delete_one({"_id": message_id})


async def add_many(db: Db, docs: list[Document]) -> None:
    """Inserts these (`document`s); those another process inserted already stay."""
    if not docs:
        return
    try:
        await db[MessageWords.__collection__].insert_many(docs, ordered=False)
    except BulkWriteError as error:
        if not all(isinstance(e, DuplicateKeyError) for e in refusals(error).values()):
            raise


async def _set(db: Db, message_id: ObjectId, words: list[str]) -> bool:
    changed = await db[MessageWords.__collection__].update_one(
        {"_id": message_id}, {"$set": {"words": words}}
    )
    return bool(changed.matched_count)


async def search(
    db: Db,
    *,
    room_ids: Collection[str],
    words: Sequence[str],
    before: Message | None = None,
    limit: int,
) -> list[ObjectId]:
    """The ids of the newest `limit` messages of these rooms (older than `before`) that have,
    for each of `words`, a word that is it or starts with it; none for no words.

    Each room is asked on its own (all at once) for its newest MessageWords with a word starting
    with the longest of `words` (a range on the multikey `words` index, or on the embedded
    server the room's index walked newest first); the other words are checked here, and the
    rooms' answers merged. (One query over every room, with `$in` and `$and`, is read row by row
    on the embedded server: data/nx_compat.)"""
    if not words or not room_ids:
        return []
    key = max(words, key=len)
    rooms = [_search_room(db, room_id, key, words, before, limit) for room_id in room_ids]
    found = [doc for docs in await asyncio.gather(*rooms) for doc in docs]
    found.sort(key=lambda doc: (doc["created_at"], doc["_id"]), reverse=True)
    return [doc["_id"] for doc in found[:limit]]


async def _search_room(
    db: Db,
    room_id: str,
    key: str,
    words: Sequence[str],
    before: Message | None,
    limit: int,
) -> list[dict[str, Any]]:
    """The room's newest `limit` matches older than `before`."""
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


def _has_every(stored: Sequence[str], words: Sequence[str]) -> bool:
    return all(any(word.startswith(asked) for word in stored) for asked in words)
