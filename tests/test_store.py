"""What the app writes is what MongoDB documents: dates stay dates, whatever the server."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

import pytest
from bson import ObjectId

from tests.support import (
    AppServer,
    Db,
    Person,
    StartApp,
    message_id,
    open_stream,
    user_id,
    wait_for,
)

MakePerson = Callable[..., Person]


@pytest.fixture(scope="module")
def quick_server(start_app: StartApp) -> AppServer:
    """A process that vouches for its streams every second or so."""
    return start_app(PRESENCE_TTL_SECS="3")


def test_an_edit_stamps_a_date(person: Person, db: Db) -> None:
    mid = message_id(person.post_public("first").text)
    assert person.send("PATCH", f"/messages/{mid}", {"body": "second"}).status_code == 200
    stored = db.message.find_one({"_id": ObjectId(mid)})
    assert stored is not None
    assert isinstance(stored["edited_at"], datetime)
    assert isinstance(stored["created_at"], datetime)
    words = db.message_words.find_one({"_id": ObjectId(mid)})  # what search finds it by
    assert words is not None and words["words"] == ["second"]
    assert words["created_at"] == stored["created_at"]


async def test_presence_upkeep_and_last_seen_keep_dates(
    make_person: MakePerson, db: Db, quick_server: AppServer
) -> None:
    someone = make_person(quick_server.url)
    mine = {"user_id": user_id(db, someone)}
    async with open_stream(quick_server.url, token=someone.token()):
        mine_now = db.presence.find_one(mine)
        assert mine_now is not None
        its_lease = {"_id": mine_now["process_id"]}  # its process's, vouching for it
        first = db.process_leases.find_one(its_lease)
        assert first is not None

        def vouched() -> bool:  # the process has vouched for its streams once
            now = db.process_leases.find_one(its_lease)
            assert now is not None
            return bool(now["expires_at"] != first["expires_at"])

        wait_for(vouched, what="the stream vouched for")
        now = db.process_leases.find_one(its_lease)
        assert now is not None
        assert isinstance(now["expires_at"], datetime)
        assert now["expires_at"] > first["expires_at"]
    # Closing the stream stamps "last seen" (in the background: poll the one field).
    wait_for(lambda: db.presence.count_documents(mine) == 0, what="the presence gone")
    user = db.user.find_one({"_id": ObjectId(mine["user_id"])})
    assert user is not None
    assert isinstance(user["last_seen_at"], datetime)
