"""Writes that go together: calls that come while a write is in flight wait for it and go in
the next one, so that under load many requests cost one command, and one alone costs one.

Each key (a collection, a room's counter) has at most one write in flight; different keys do
not wait for each other. Each caller gets its own outcome: a write error names the documents
it refused, and a database that cannot be asked fails every caller of that write.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Hashable, Sequence
from typing import Generic, TypeVar

from pymongo import ReturnDocument
from pymongo.errors import BulkWriteError, DuplicateKeyError, OperationFailure

from webapp.data.connection import Db, Document

DUPLICATE_KEY = 11000  # the server's code for a write that a unique index refused

K = TypeVar("K", bound=Hashable)
I = TypeVar("I")  # noqa: E741 (what one caller brings)
R = TypeVar("R")  # what one caller gets back


def refusals(error: BulkWriteError) -> dict[int, Exception]:
    """What a bulk write refused, by the index of the operation: DuplicateKeyError where a
    unique index refused it, OperationFailure for any other reason."""
    refused: dict[int, Exception] = {}
    for write in error.details.get("writeErrors", []):
        code = write.get("code")
        kind = DuplicateKeyError if code == DUPLICATE_KEY else OperationFailure
        refused[write["index"]] = kind(write.get("errmsg", ""), code)
    return refused


class Together(Generic[K, I, R]):
    """Runs `write(key, items)` for the items callers bring under one key, a batch at a time;
    `write` answers with one outcome per item, in order."""

    def __init__(self, write: Callable[[K, list[I]], Awaitable[Sequence[R | Exception]]]) -> None:
        self._write = write
        self._waiting: dict[K, list[tuple[I, asyncio.Future[R]]]] = {}
        self._writing: dict[K, asyncio.Task[None]] = {}

    async def __call__(self, key: K, item: I) -> R:
        done: asyncio.Future[R] = asyncio.get_running_loop().create_future()
        self._waiting.setdefault(key, []).append((item, done))
        if key not in self._writing:
            self._writing[key] = asyncio.create_task(self._write_all(key))
        return await done

    async def _write_all(self, key: K) -> None:
        batch: list[tuple[I, asyncio.Future[R]]] = []
        try:
            while batch := self._waiting.pop(key, []):
                try:
                    outcomes = await self._write(key, [item for item, _ in batch])
                except Exception as error:  # the database could not be asked: nothing is known
                    outcomes = [error] * len(batch)
                for (_, done), outcome in zip(batch, outcomes, strict=True):
                    if done.done():  # its caller was cancelled
                        continue
                    if isinstance(outcome, Exception):
                        done.set_exception(outcome)
                    else:
                        done.set_result(outcome)
        finally:  # (cancelled only when the app ends: nobody waits in vain)
            del self._writing[key]
            for _, done in [*batch, *self._waiting.pop(key, [])]:
                done.cancel()


class InsertTogether:
    """Inserts into one collection, together (one insert_many per batch); a caller whose
    document a unique index refused gets DuplicateKeyError, the others are written."""

    def __init__(self, collection: str) -> None:
        self.collection = collection
        self._together: Together[Db, Document, None] = Together(self._insert)

    async def insert(self, db: Db, doc: Document) -> None:
        await self._together(db, doc)

    async def _insert(self, db: Db, docs: list[Document]) -> list[Exception | None]:
        outcomes: list[Exception | None] = [None] * len(docs)
        try:
            await db[self.collection].insert_many(docs, ordered=False)
        except BulkWriteError as error:
            for index, refused in refusals(error).items():
                outcomes[index] = refused
        return outcomes


class CountTogether:
    """Numbers from counters in one collection, each counter's callers together: one $inc by
    the batch's size, and each caller one number of the range it moved over, in the order
    they came. Counters start at 1 and never give a number twice, in any number of processes."""

    def __init__(self, collection: str) -> None:
        self.collection = collection
        self._together: Together[tuple[Db, str], None, int] = Together(self._take)

    async def next(self, db: Db, counter_id: str) -> int:
        return await self._together((db, counter_id), None)

    async def _take(self, key: tuple[Db, str], callers: list[None]) -> list[int | Exception]:
        db, counter_id = key
        counter = await db[self.collection].find_one_and_update(
            {"_id": counter_id},
            {"$inc": {"value": len(callers)}},
            upsert=True,
            return_document=ReturnDocument.AFTER,
        )
        assert counter is not None  # an upsert returning the document after it
        last = int(counter["value"])
        return list(range(last - len(callers) + 1, last + 1))
