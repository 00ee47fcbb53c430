"""Presence: one document per open event stream, and one lease per app process that vouches
for all of its streams at once (a write per process, however many streams it holds)."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime, timedelta

from webapp.data._query import find, insert, now
from webapp.data.connection import Db
from webapp.data.models import Presence, ProcessLease

PRESENCE = Presence.__collection__
LEASES = ProcessLease.__collection__
LAPSED = datetime(2000, 1, 1, tzinfo=UTC)  # a lease ended by its process


async def open(
    db: Db, *, presence_id: str, user_id: str, opened_at: datetime, process_id: str
) -> None:
    presence = Presence(id=presence_id, user_id=user_id, opened_at=opened_at, process_id=process_id)
    await insert(db, presence)


async def close_oldest(db: Db, *, user_id: str, keep: int) -> None:
    """Closes this user's oldest streams beyond the newest `keep`, in whatever process."""
    cursor = db[PRESENCE].find(
        {"user_id": user_id}, {"_id": 1}, sort=[("opened_at", -1)], skip=keep
    )
    extra = [doc["_id"] async for doc in cursor]
    if extra:
        await db[PRESENCE].delete_many({"_id": {"$in": extra}})


async def close(db: Db, *, presence_id: str) -> None:
    await db[PRESENCE].delete_one({"_id": presence_id})


async def vouch(db: Db, *, process_id: str, ttl: float) -> None:
    """Extends the process's lease, and with it the presence of every stream it holds."""
    lease = ProcessLease(id=process_id, expires_at=now() + timedelta(seconds=ttl))
    # Replaced whole (with its _id, which nx-27017 needs for an upsert): see _query.update.
    await db[LEASES].replace_one({"_id": process_id}, lease.model_dump_doc(), upsert=True)


async def end_lease(db: Db, *, process_id: str) -> None:
    """The process is going: its lease lapses now, and whatever presence of its is left goes
    with the next sweep."""
    lease = ProcessLease(id=process_id, expires_at=LAPSED)
    await db[LEASES].replace_one({"_id": process_id}, lease.model_dump_doc())


async def _leases(db: Db, filter: dict[str, object]) -> list[str]:
    """The ids of the processes whose lease matches."""
    return [str(doc["_id"]) async for doc in db[LEASES].find(filter, {"_id": 1})]


async def live_processes(db: Db) -> list[str]:
    """The processes whose lease lasts."""
    return await _leases(db, {"expires_at": {"$gte": now()}})


async def lapsed_processes(db: Db) -> list[str]:
    """The processes whose lease has lapsed (they died, or stalled for longer than it lasts)."""
    return await _leases(db, {"expires_at": {"$lt": now()}})


async def held_by(db: Db, *, process_ids: list[str]) -> list[Presence]:
    return await find(db, Presence, {"process_id": {"$in": process_ids}})


async def held_by_none(db: Db) -> list[Presence]:
    """Presence that no lease covers, live or lapsed (its process died as its lease ended,
    or came from before leases): a look at the whole collection, made when a process starts."""
    return await find(db, Presence, {"process_id": {"$nin": await _leases(db, {})}})


async def delete(db: Db, *, presence_ids: list[str]) -> None:
    await db[PRESENCE].delete_many({"_id": {"$in": presence_ids}})


async def end_lapsed_leases(db: Db, *, process_ids: list[str]) -> None:
    """These leases, unless they were extended meanwhile."""
    await db[LEASES].delete_many({"_id": {"$in": process_ids}, "expires_at": {"$lt": now()}})


async def online_ids(db: Db) -> set[str]:
    live = await live_processes(db)
    cursor = db[PRESENCE].find({"process_id": {"$in": live}}, {"user_id": 1})
    return {doc["user_id"] async for doc in cursor}


async def online_among(db: Db, *, user_ids: Iterable[str]) -> set[str]:
    """Those of these users with an open stream in any process."""
    ids = list(user_ids)
    if not ids:
        return set()
    live = await live_processes(db)
    filter = {"user_id": {"$in": ids}, "process_id": {"$in": live}}
    cursor = db[PRESENCE].find(filter, {"user_id": 1})
    return {doc["user_id"] async for doc in cursor}
