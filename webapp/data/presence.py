"""Presence: one document per open event stream, kept by the stream's process."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta

from pymongo import ReplaceOne

from webapp.data._query import find, insert, now
from webapp.data.connection import Db
from webapp.data.models import Presence


async def open(db: Db, *, presence_id: str, user_id: str, opened_at: datetime, ttl: float) -> None:
    expires_at = now() + timedelta(seconds=ttl)
    presence = Presence(id=presence_id, user_id=user_id, expires_at=expires_at, opened_at=opened_at)
    await insert(db, presence)


async def close_oldest(db: Db, *, user_id: str, keep: int) -> None:
    """Closes this user's oldest streams beyond the newest `keep`, in whatever process."""
    cursor = db[Presence.__collection__].find(
        {"user_id": user_id}, {"_id": 1}, sort=[("opened_at", -1)], skip=keep
    )
    extra = [doc["_id"] async for doc in cursor]
    if extra:
        await db[Presence.__collection__].delete_many({"_id": {"$in": extra}})


async def close(db: Db, *, presence_id: str) -> None:
    await db[Presence.__collection__].delete_one({"_id": presence_id})


async def refresh(db: Db, *, presences: Sequence[tuple[str, str, datetime]], ttl: float) -> None:
    """Pushes back the expiry of these (presence id, user id, opened at) streams, in one trip.

    Whole documents are replaced rather than $set: see _query.update. One that was swept or closed
    meanwhile stays gone.
    """
    expires_at = now() + timedelta(seconds=ttl)
    await db[Presence.__collection__].bulk_write(
        [
            ReplaceOne(
                {"_id": presence_id},
                Presence(
                    id=presence_id, user_id=user_id, expires_at=expires_at, opened_at=opened_at
                ).model_dump_doc(),
            )
            for presence_id, user_id, opened_at in presences
        ],
        ordered=False,
    )


async def stale(db: Db) -> list[Presence]:
    """The presence of streams whose process stopped vouching for them."""
    return await find(db, Presence, {"expires_at": {"$lt": now()}})


async def delete_stale(db: Db, *, presence_ids: list[str]) -> None:
    await db[Presence.__collection__].delete_many(
        {"_id": {"$in": presence_ids}, "expires_at": {"$lt": now()}}
    )


async def online_ids(db: Db) -> set[str]:
    present = await find(db, Presence, {"expires_at": {"$gte": now()}})
    return {p.user_id for p in present}


async def online_among(db: Db, *, user_ids: Iterable[str]) -> set[str]:
    """Those of these users with an open stream in any process."""
    ids = list(user_ids)
    if not ids:
        return set()
    filter = {"user_id": {"$in": ids}, "expires_at": {"$gte": now()}}
    cursor = db[Presence.__collection__].find(filter, {"user_id": 1})
    return {doc["user_id"] async for doc in cursor}
