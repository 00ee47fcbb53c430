"""Inserts that go together (data/_query.InsertTogether), on the real database: callers at once
share one command, and each gets its own document's outcome; and a message's words, stored that
way (data/words.py)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import pytest
from bson import ObjectId
from pymongo import AsyncMongoClient, monitoring
from pymongo.errors import DuplicateKeyError, PyMongoError

from tests.support import unique_name
from webapp.data import words
from webapp.data._query import InsertTogether
from webapp.data.models import MessageWords


class Inserts(monitoring.CommandListener):
    """Counts the insert commands the client sends."""

    def __init__(self) -> None:
        self.sent = 0

    def started(self, event: monitoring.CommandStartedEvent) -> None:
        self.sent += event.command_name == "insert"

    def succeeded(self, event: monitoring.CommandSucceededEvent) -> None:
        pass

    def failed(self, event: monitoring.CommandFailedEvent) -> None:
        pass


@pytest.fixture
async def counted(mongo_uri: str) -> AsyncIterator[tuple[Any, Inserts]]:
    inserts = Inserts()
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(
        mongo_uri, tz_aware=True, event_listeners=[inserts]
    )
    yield client.get_default_database(), inserts
    await client.close()


async def test_callers_at_once_share_one_command_and_each_is_written(
    counted: tuple[Any, Inserts],
) -> None:
    db, inserts = counted
    together = InsertTogether(unique_name("together"))
    docs = [{"_id": ObjectId(), "n": n} for n in range(50)]
    # All fifty ask before the first insert begins (tasks start in the order made).
    await asyncio.gather(*(together.insert(db, doc) for doc in docs))
    assert inserts.sent == 1
    stored = [doc async for doc in db[together.collection].find({}, sort=[("n", 1)])]
    assert stored == docs
    # One alone, later: one command of its own.
    alone = {"_id": ObjectId(), "n": 50}
    await together.insert(db, alone)
    assert inserts.sent == 2
    assert await db[together.collection].count_documents({}) == 51


async def test_a_duplicate_fails_alone(counted: tuple[Any, Inserts]) -> None:
    db, _ = counted
    together = InsertTogether(unique_name("together"))
    taken = {"_id": ObjectId(), "n": 0}
    await db[together.collection].insert_one(dict(taken))
    docs = [{"_id": ObjectId(), "n": 1}, {**taken, "n": 2}, {"_id": ObjectId(), "n": 3}]
    outcomes = await asyncio.gather(
        *(together.insert(db, doc) for doc in docs), return_exceptions=True
    )
    assert [type(outcome) for outcome in outcomes] == [type(None), DuplicateKeyError, type(None)]
    stored = [doc async for doc in db[together.collection].find({}, sort=[("n", 1)])]
    assert [doc["n"] for doc in stored] == [0, 1, 3]  # the one there first kept its own


async def test_without_a_database_every_caller_is_told() -> None:
    # A port nobody listens on: the driver gives up choosing a server.
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(
        "mongodb://127.0.0.1:9/chat", serverSelectionTimeoutMS=200
    )
    together = InsertTogether(unique_name("together"))
    try:
        outcomes = await asyncio.gather(
            *(together.insert(client.get_default_database(), {"n": n}) for n in range(3)),
            return_exceptions=True,
        )
    finally:
        await client.close()
    assert all(isinstance(outcome, PyMongoError) for outcome in outcomes), outcomes


async def test_a_message_stored_again_keeps_its_latest_words(counted: tuple[Any, Inserts]) -> None:
    """A post tried again with the same id after a failure that left its words: the second
    store replaces them (the duplicate is not an error), and so does an edit."""
    db, _ = counted
    message_id, when = ObjectId(), datetime(2026, 1, 2, tzinfo=UTC)
    for said in (["first", "try"], ["second", "try"]):
        await words.store(db, message_id=message_id, room_id="r", created_at=when, words=said)
    stored = await db[MessageWords.__collection__].find_one({"_id": message_id})
    assert stored is not None and stored["words"] == ["second", "try"]
    assert stored["created_at"] == when
    await words.forget(db, message_id=message_id)
    assert await db[MessageWords.__collection__].find_one({"_id": message_id}) is None
