"""What every query module shares: finding, inserting and updating models with plain filters.

Reads go through the collection's find() with plain filters, not odmantic's aggregate-based
find: the embedded server does not match ObjectIds inside $match (README, "The embedded
database"), and find() is what MongoDB serves best from an index anyway.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, TypeVar

from bson import ObjectId
from odmantic import Model

from webapp.data.connection import Db

M = TypeVar("M", bound=Model)
Sort = Sequence[tuple[str, int]]


def now() -> datetime:
    return datetime.now(UTC)


def parse_id(value: str) -> ObjectId | None:
    """The ObjectId a string spells, or None for anything else."""
    return ObjectId(value) if len(value) == 24 and ObjectId.is_valid(value) else None


def object_ids(values: Iterable[str]) -> list[ObjectId]:
    return [oid for oid in map(parse_id, values) if oid is not None]


async def find(
    db: Db, model: type[M], filter: Mapping[str, Any], *, sort: Sort = (), limit: int = 0
) -> list[M]:
    cursor = db[model.__collection__].find(filter, sort=list(sort) or None, limit=limit)
    return [model.model_validate_doc(doc) async for doc in cursor]


async def find_one(db: Db, model: type[M], filter: Mapping[str, Any]) -> M | None:
    doc = await db[model.__collection__].find_one(filter)
    return model.model_validate_doc(doc) if doc is not None else None


async def get_by_id(db: Db, model: type[M], *, object_id: ObjectId) -> M | None:
    return await find_one(db, model, {"_id": object_id})


async def insert(db: Db, instance: M) -> M:
    await db[type(instance).__collection__].insert_one(instance.model_dump_doc())
    return instance


async def update(db: Db, instance: M, *, stamp: str = "", **changes: Any) -> M:
    """Sets these fields, and `stamp` to the server's time, in the database and on the instance.

    Times are only ever written whole (in a new document) or as the server's $currentDate:
    nx-27017 stores a date given to $set as a string (README, "The embedded database").
    """
    change: dict[str, Any] = {"$set": changes} if changes else {}
    if stamp:
        change["$currentDate"] = {stamp: True}
        changes[stamp] = now()  # the instance's copy; the database has the server's
    await db[type(instance).__collection__].update_one({"_id": instance.id}, change)
    for name, value in changes.items():
        setattr(instance, name, value)
    return instance
