"""Messages: posted with the room's next number, paged newest first, edited, deleted."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from bson import ObjectId
from pymongo import ReturnDocument

from webapp.data._query import find, get_by_id, insert, now, parse_id, update
from webapp.data.connection import Db
from webapp.data.models import Message, Room, RoomSequence, User


async def create(db: Db, *, room: Room, sender: User, body: str) -> Message:
    """One counter update for the room's next number and one insert, however many members the
    room has."""
    room_id = str(room.id)
    counter = await db[RoomSequence.__collection__].find_one_and_update(
        {"_id": room_id},
        {"$inc": {"value": 1}},
        upsert=True,
        return_document=ReturnDocument.AFTER,
    )
    assert counter is not None  # an upsert returning the document after it
    message = Message(  # type: ignore[call-arg]  # odmantic makes the id
        room_id=room_id,
        seq=counter["value"],
        sender_id=str(sender.id),
        sender_name=sender.username,
        body=body,
        created_at=now(),
    )
    return await insert(db, message)


async def by_id(db: Db, *, message_id: str) -> Message | None:
    oid = parse_id(message_id)
    return await get_by_id(db, Message, object_id=oid) if oid else None


async def many_by_id(db: Db, *, message_ids: Sequence[ObjectId]) -> dict[ObjectId, Message]:
    if not message_ids:
        return {}
    found = await find(db, Message, {"_id": {"$in": list(set(message_ids))}})
    return {message.id: message for message in found}


async def page(db: Db, *, room_id: str, before: Message | None = None, limit: int) -> list[Message]:
    """The latest `limit` messages of a room (or those before `before`), oldest first."""
    filter: dict[str, Any] = {"room_id": room_id}
    if before is not None:
        filter["$or"] = [
            {"created_at": {"$lt": before.created_at}},
            {"created_at": before.created_at, "_id": {"$lt": before.id}},
        ]
    newest_first = await find(
        db, Message, filter, sort=[("created_at", -1), ("_id", -1)], limit=limit
    )
    return newest_first[::-1]


async def edit(db: Db, *, message: Message, body: str) -> Message:
    return await update(db, message, body=body, stamp="edited_at")


async def delete(db: Db, *, message: Message) -> Message:
    return await update(db, message, body="", deleted=True)
