"""What every query module shares: finding, inserting and updating models with plain filters.

Reads go through the collection's find() with plain filters, not odmantic's aggregate-based
find: the embedded server does not match ObjectIds inside $match (README, "The embedded
database"), and find() is what MongoDB serves best from an index anyway.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, TypeVar

from bson import ObjectId
from odmantic import Model
from pymongo.errors import BulkWriteError, DuplicateKeyError, OperationFailure

from webapp.data.connection import Db, Document

M = TypeVar("M", bound=Model)
DUPLICATE_KEY = 11000  # the server's code for a write that a unique index refused
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


class InsertTogether:
    """Inserts into one collection, together: documents that come while an insert_many is in
    flight wait for it and go in the next one, so that under load many requests cost one
    command, and one alone costs an insert. Each caller gets its own document's outcome
    (DuplicateKeyError for its id)."""

    def __init__(self, collection: str) -> None:
        self.collection = collection
        self._waiting: dict[Db, list[tuple[Document, asyncio.Future[None]]]] = {}
        self._inserting: dict[Db, asyncio.Task[None]] = {}

    async def insert(self, db: Db, doc: Document) -> None:
        done = asyncio.get_running_loop().create_future()
        self._waiting.setdefault(db, []).append((doc, done))
        if db not in self._inserting:
            self._inserting[db] = asyncio.create_task(self._insert_all(db))
        await done

    async def _insert_all(self, db: Db) -> None:
        batch: list[tuple[Document, asyncio.Future[None]]] = []
        try:
            while batch := self._waiting.pop(db, []):
                await self._insert(db, batch)
        finally:  # (cancelled only when the app ends: nobody waits in vain)
            del self._inserting[db]
            for _, done in [*batch, *self._waiting.pop(db, [])]:
                done.cancel()

    async def _insert(self, db: Db, batch: list[tuple[Document, asyncio.Future[None]]]) -> None:
        failed: dict[int, Exception] = {}
        try:
            await db[self.collection].insert_many([doc for doc, _ in batch], ordered=False)
        except BulkWriteError as error:
            for written in error.details.get("writeErrors", []):
                kind = (
                    DuplicateKeyError if written.get("code") == DUPLICATE_KEY else OperationFailure
                )
                failed[written["index"]] = kind(written.get("errmsg", ""), written.get("code"))
        except Exception as error:  # the database could not be asked: nothing is known written
            failed = dict.fromkeys(range(len(batch)), error)
        for index, (_, done) in enumerate(batch):
            if done.done():  # its caller was cancelled
                continue
            if index in failed:
                done.set_exception(failed[index])
            else:
                done.set_result(None)
