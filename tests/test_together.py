"""Writes that go together (data/together.py), on the real database: callers at once share one
command, and each gets its own outcome (a document inserted or refused, a number of its own, an
event admitted or refused by a rate limit); and a message's words, stored that way
(data/words.py)."""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import pytest
from bson import ObjectId
from pymongo import AsyncMongoClient, monitoring
from pymongo.errors import BulkWriteError, DuplicateKeyError, OperationFailure, PyMongoError

from tests.support import unique_name
from webapp.data import limits, words
from webapp.data.models import MessageWords, RateLimit
from webapp.data.together import CountTogether, InsertTogether, Together, refusals
from webapp.rules.rates import Rate


class Commands(monitoring.CommandListener):
    """Counts the insert and findAndModify commands the client sends."""

    def __init__(self) -> None:
        self.sent: Counter[str] = Counter()

    def started(self, event: monitoring.CommandStartedEvent) -> None:
        self.sent[event.command_name] += 1

    def succeeded(self, event: monitoring.CommandSucceededEvent) -> None:
        pass

    def failed(self, event: monitoring.CommandFailedEvent) -> None:
        pass


@pytest.fixture
async def counted(mongo_uri: str) -> AsyncIterator[tuple[Any, Commands]]:
    commands = Commands()
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(
        mongo_uri, tz_aware=True, event_listeners=[commands]
    )
    yield client.get_default_database(), commands
    await client.close()


async def test_callers_at_once_share_one_command_and_each_is_written(
    counted: tuple[Any, Commands],
) -> None:
    db, commands = counted
    together = InsertTogether(unique_name("together"))
    docs = [{"_id": ObjectId(), "n": n} for n in range(50)]
    # All fifty ask before the first insert begins (tasks start in the order made).
    await asyncio.gather(*(together.insert(db, doc) for doc in docs))
    assert commands.sent["insert"] == 1
    stored = [doc async for doc in db[together.collection].find({}, sort=[("n", 1)])]
    assert stored == docs
    # One alone, later: one command of its own.
    alone = {"_id": ObjectId(), "n": 50}
    await together.insert(db, alone)
    assert commands.sent["insert"] == 2
    assert await db[together.collection].count_documents({}) == 51


async def test_a_duplicate_fails_alone(counted: tuple[Any, Commands]) -> None:
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


async def test_counting_at_once_takes_one_range_and_numbers_callers_in_order(
    counted: tuple[Any, Commands],
) -> None:
    db, commands = counted
    numbers = CountTogether(unique_name("counters"))
    # Fifty callers of one counter ask before the first $inc: one command moves it by 50.
    assert await asyncio.gather(*(numbers.next(db, "room") for _ in range(50))) == list(
        range(1, 51)
    )
    assert commands.sent["findAndModify"] == 1
    assert await numbers.next(db, "room") == 51  # one alone, later: a command of its own
    assert commands.sent["findAndModify"] == 2
    stored = await db[numbers.collection].find_one({"_id": "room"})
    assert stored is not None and stored["value"] == 51


async def test_counters_at_once_keep_their_own_numbers(counted: tuple[Any, Commands]) -> None:
    db, commands = counted
    numbers = CountTogether(unique_name("counters"))
    rooms = ["a", "b", "a", "c", "b", "a"]
    assert await asyncio.gather(*(numbers.next(db, room) for room in rooms)) == [1, 1, 2, 1, 2, 3]
    assert commands.sent["findAndModify"] == 3  # one per counter


async def test_processes_counting_at_once_never_take_a_number_twice(mongo_uri: str) -> None:
    """Two clients, each with its own CountTogether (as two processes have), share counters:
    every number is given once, and none is skipped."""
    collection = unique_name("counters")
    clients: list[AsyncMongoClient[dict[str, Any]]] = [AsyncMongoClient(mongo_uri) for _ in "ab"]
    try:
        dbs = [client.get_default_database() for client in clients]
        counters = [CountTogether(collection) for _ in dbs]
        rounds = [
            asyncio.gather(*(counters[k].next(dbs[k], "room") for _ in range(size)))
            for k, size in [(0, 7), (1, 5), (0, 1), (1, 9), (0, 3)]
        ]
        taken = [n for batch in await asyncio.gather(*rounds) for n in batch]
    finally:
        for client in clients:
            await client.close()
    assert sorted(taken) == list(range(1, 26))


async def test_a_write_that_fails_fails_its_callers_and_the_next_batch_goes_on() -> None:
    """The write raises for one batch: each of its callers gets the error; callers who came
    meanwhile go in the next write. A caller who gave up does not stop the others."""
    gate = asyncio.Event()
    batches: list[list[int]] = []

    async def write(key: str, items: list[int]) -> list[int | Exception]:
        batches.append(items)
        if len(batches) == 1:
            await gate.wait()
            raise ConnectionError("the database went away")
        return [item * 10 for item in items]

    together: Together[str, int, int] = Together(write)
    first = asyncio.gather(together("k", 1), together("k", 2), return_exceptions=True)
    await asyncio.sleep(0)  # the first write is in flight, waiting at the gate
    second = [asyncio.ensure_future(together("k", n)) for n in (3, 4, 5)]
    await asyncio.sleep(0)
    second[1].cancel()  # the caller of 4 gives up
    gate.set()
    failed = await first
    assert [type(outcome) for outcome in failed] == [ConnectionError, ConnectionError]
    assert await second[0] == 30 and await second[2] == 50
    assert second[1].cancelled()
    assert batches == [[1, 2], [3, 4, 5]]


async def test_a_message_stored_again_keeps_its_latest_words(counted: tuple[Any, Commands]) -> None:
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


async def test_limits_restarted_at_once_share_one_command(counted: tuple[Any, Commands]) -> None:
    """Twenty people's first posts at the same moment: one update admits them all."""
    db, commands = counted
    rate = Rate(interval=100.0, burst=3)
    keys = [unique_name("limit") for _ in range(20)]
    before = time.time()
    outcomes = await asyncio.gather(*(limits.count_event(db, key=k, rate=rate) for k in keys))
    assert outcomes == [None] * 20
    assert commands.sent["update"] == 1
    stored = db[RateLimit.__collection__].find({"_id": {"$in": keys}})
    tats = [doc["tat"] async for doc in stored]
    assert len(tats) == 20 and all(before + 100 <= tat <= time.time() + 100 for tat in tats)


async def test_one_key_at_once_admits_its_burst_exactly(counted: tuple[Any, Commands]) -> None:
    """Forty events of one key at once (some in the shared restart, the rest on their own):
    exactly the burst is admitted, and each refusal says how long to wait."""
    db, _ = counted
    rate, key = Rate(interval=100.0, burst=30), unique_name("limit")
    events = [limits.count_event(db, key=key, rate=rate) for _ in range(40)]
    outcomes = await asyncio.gather(*events)
    assert outcomes.count(None) == 30
    assert all(isinstance(wait, int) and wait >= 1 for wait in outcomes if wait is not None)


async def test_a_key_past_its_burst_is_refused_beside_others_admitted(
    counted: tuple[Any, Commands],
) -> None:
    db, _ = counted
    rate, ahead = Rate(interval=100.0, burst=2), unique_name("limit")
    far = time.time() + 1000
    await db[RateLimit.__collection__].insert_one({"_id": ahead, "tat": far})
    others = [unique_name("limit") for _ in range(5)]
    outcomes = await asyncio.gather(
        *(limits.count_event(db, key=k, rate=rate) for k in [ahead, *others])
    )
    assert outcomes[1:] == [None] * 5
    wait = outcomes[0]
    assert wait is not None and 890 <= wait <= 900  # until its tat is within the burst again
    stored = await db[RateLimit.__collection__].find_one({"_id": ahead})
    assert stored is not None and stored["tat"] == far  # a refusal counts nothing


@pytest.mark.parametrize(
    ("errors", "expected"),
    [
        ([], {}),
        ([{"index": 1, "code": 11000, "errmsg": "dup"}], {1: DuplicateKeyError}),
        ([{"index": 0, "code": 2, "errmsg": "bad value"}], {0: OperationFailure}),
        (
            [{"index": 2, "code": 11000, "errmsg": "dup"}, {"index": 4, "code": 121}],
            {2: DuplicateKeyError, 4: OperationFailure},
        ),
    ],
)
def test_what_a_bulk_write_refused_is_told_by_index(
    errors: list[dict[str, Any]], expected: dict[int, type[Exception]]
) -> None:
    """A duplicate is told apart from any other refusal (which no caller takes for a
    duplicate: InsertTogether passes it on, a limit's restart raises it)."""
    refused = refusals(BulkWriteError({"writeErrors": errors}))
    assert {index: type(error) for index, error in refused.items()} == expected
    for write in errors:
        error = refused[write["index"]]
        assert isinstance(error, OperationFailure) and error.code == write["code"]
