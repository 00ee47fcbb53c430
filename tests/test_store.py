"""What the app writes is what MongoDB documents: dates stay dates, whatever the server."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterator
from datetime import datetime

import pytest
from bson import ObjectId
from pymongo import MongoClient
from pymongo.database import Database

from tests.support import AppServer, Person, message_id, open_stream

MakePerson = Callable[..., Person]
Db = Database[dict[str, object]]


@pytest.fixture(scope="module")
def db(mongo_uri: str) -> Iterator[Db]:
    client: MongoClient[dict[str, object]] = MongoClient(mongo_uri, tz_aware=True)
    yield client.get_default_database()
    client.close()


@pytest.fixture(scope="module")
def quick_server(mongo_uri: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[AppServer]:
    """A process that vouches for its streams every second or so."""
    env = {"PRESENCE_TTL_SECS": "3"}
    with AppServer(mongo_uri, data_dir=tmp_path_factory.mktemp("quick"), env=env) as server:
        yield server


def test_an_edit_stamps_a_date(person: Person, db: Db) -> None:
    mid = message_id(person.post_public("first").text)
    assert person.send("PATCH", f"/messages/{mid}", {"body": "second"}).status_code == 200
    stored = db.message.find_one({"_id": ObjectId(mid)})
    assert stored is not None
    assert isinstance(stored["edited_at"], datetime)
    assert isinstance(stored["created_at"], datetime)


async def test_presence_upkeep_and_last_seen_keep_dates(
    make_person: MakePerson, db: Db, quick_server: AppServer
) -> None:
    someone = make_person(quick_server.url)
    user = db.user.find_one({"username": someone.username})
    assert user is not None
    async with open_stream(quick_server.url, token=someone.token()):
        first = db.presence.find_one({"user_id": str(user["_id"])})
        assert first is not None
        # Poll the one document until the process has vouched for the stream once.
        deadline = time.monotonic() + 10
        while True:
            now = db.presence.find_one({"_id": first["_id"]})
            assert now is not None
            if now["expires_at"] != first["expires_at"]:
                break
            assert time.monotonic() < deadline
            await asyncio.sleep(0.05)
        assert isinstance(now["expires_at"], datetime)
        assert now["expires_at"] > first["expires_at"]  # type: ignore[operator]
    # Closing the stream stamps "last seen" (in the background: poll the one field).
    deadline = time.monotonic() + 10
    while db.presence.count_documents({"user_id": str(user["_id"])}) > 0:
        assert time.monotonic() < deadline
        time.sleep(0.05)
    user = db.user.find_one({"_id": user["_id"]})
    assert user is not None
    assert isinstance(user["last_seen_at"], datetime)
