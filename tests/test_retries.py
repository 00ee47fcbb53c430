"""A client retry after a lost answer posts nothing twice: the page sends a key with each send
(client_key), kept unique per sender (DESIGN.md, "Operating it")."""

from __future__ import annotations

import secrets
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from bson import ObjectId
from prometheus_client import REGISTRY

from tests.support import Db, Person, alert_of, fragment, message_id, unique_name
from webapp.actions import posting as actions
from webapp.actions.seat import Seat
from webapp.data import messages, rooms, users
from webapp.data.connection import open_database
from webapp.data.models import Message
from webapp.errors import Forbidden

MakePerson = Callable[..., Person]


def send(someone: Person, body: str, key: str) -> httpx.Response:
    return someone.send("POST", "/rooms/public/messages", {"body": body, "client_key": key})


def stored(db: Db, body: str) -> int:
    return db["message"].count_documents({"body": body})


def test_a_retry_answers_with_the_message_it_made(person: Person, db: Db) -> None:
    key, body = secrets.token_hex(8), f"once {secrets.token_hex(4)}"
    first = send(person, body, key)
    assert first.status_code == 201
    again = send(person, body, key)
    assert again.status_code == 200
    assert message_id(again.text) == message_id(first.text)
    assert fragment(again.text).get("data-client-key") == key  # the author's own copy says so
    assert stored(db, body) == 1
    assert send(person, body, secrets.token_hex(8)).status_code == 201  # another key: another
    assert stored(db, body) == 2


def test_retries_at_once_make_one_message(person: Person, db: Db) -> None:
    key, body = secrets.token_hex(8), f"racing {secrets.token_hex(4)}"
    with ThreadPoolExecutor(4) as pool:
        answers = list(pool.map(lambda _: send(person, body, key), range(4)))
    assert sorted(a.status_code for a in answers) == [200, 200, 200, 201]
    assert len({message_id(a.text) for a in answers}) == 1
    assert stored(db, body) == 1


def test_keys_are_each_senders_own(make_person: MakePerson, db: Db) -> None:
    alice, bob = make_person(), make_person()
    key, body = secrets.token_hex(8), f"same key {secrets.token_hex(4)}"
    assert send(alice, body, key).status_code == 201
    assert send(bob, body, key).status_code == 201
    assert stored(db, body) == 2


@pytest.mark.parametrize("key", ["short", "x" * 65, "has space", "ünïcode-key", "$where:1"])
def test_a_bad_key_is_refused_and_nothing_is_posted(person: Person, db: Db, key: str) -> None:
    body = f"bad key {secrets.token_hex(4)}"
    answer = send(person, body, key)
    assert answer.status_code == 400
    assert alert_of(answer.text) == "client_key is 8 to 64 letters, digits, - or _."
    assert stored(db, body) == 0


def test_a_key_left_claimed_by_a_lost_first_try_is_taken_over(person: Person, db: Db) -> None:
    """A first try that lost the database after claiming its key could not let go of it (an
    outage): the retry, after a short wait for that try's message, makes the message under
    the id the key names, once; and a retry after that gets it."""
    key, body = secrets.token_hex(8), f"taken over {secrets.token_hex(4)}"
    user = db["user"].find_one({"username": person.username})
    assert user is not None
    left_behind = ObjectId()
    db["post_keys"].insert_one(
        {
            "_id": f"{user['_id']}:{key}",
            "message_id": str(left_behind),
            "at": datetime.now(UTC),
        }
    )
    first = send(person, body, key)
    assert first.status_code == 201, first.text
    assert message_id(first.text) == str(left_behind)
    again = send(person, body, key)
    assert again.status_code == 200
    assert message_id(again.text) == message_id(first.text)
    assert stored(db, body) == 1
    claim = db["post_keys"].find_one({"_id": f"{user['_id']}:{key}"})
    assert claim is not None and claim["message_id"] == str(left_behind)


async def test_a_first_try_that_lands_during_its_takeover_is_the_answer(
    mongo_uri: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The race a takeover allows for, called in this process to make it happen: the first
    try's message lands after the retry stopped waiting for it and before the retry's own
    insert. The two share an id, so only the first is stored, and it is the retry's answer."""
    connection = await open_database(mongo_uri)
    db = connection.db
    try:
        sender = await users.create(db, username=unique_name(), password_hash="-")
        room = await rooms.public(db)
        key, left_behind = secrets.token_hex(8), ObjectId()
        assert (
            await messages.claim_key(db, sender_id=str(sender.id), key=key, message_id=left_behind)
            is None
        )
        waited = actions._claimed

        async def then_the_first_try_lands(*args: Any) -> Message | None:
            assert await waited(*args) is None  # nothing yet: the retry takes over
            written = messages.Written(
                html="", plain="first", words=["first"], mentions=[], notify=[]
            )
            numbered = await messages.number(db, room=room, message_id=left_behind, written=written)
            await messages.insert(
                db, numbered, sender=sender, body="first", written=written, client_key=key
            )
            return None

        monkeypatch.setattr(actions, "CLAIM_LOOKS", 1)
        monkeypatch.setattr(actions, "_claimed", then_the_first_try_lands)
        seat = Seat(room=room, member=True)
        posted = await actions.post(db, seat, sender=sender, body="the retry", client_key=key)
        assert posted.again and posted.message.id == left_behind
        assert posted.message.body == "first"
        assert (
            await db["message"].count_documents({"client_key": key, "sender_id": str(sender.id)})
            == 1
        )
    finally:
        await connection.close()


async def test_a_post_gone_ahead_into_a_room_closed_meanwhile_leaves_nothing(
    mongo_uri: str,
) -> None:
    """A room closed between the page and the post (its last member left), called in this
    process to make it happen: the post, numbered at once with its count, is refused, and its
    words and key go with it."""
    connection = await open_database(mongo_uri)
    db = connection.db
    try:
        sender = await users.create(db, username=unique_name(), password_hash="-")
        room = await rooms.public(db)
        await actions.post(db, Seat(room=room, member=True), sender=sender, body="known")
        closed = room.model_copy(update={"archived": True})
        words_before = await db["message_words"].count_documents({"room_id": str(room.id)})
        in_vain = REGISTRY.get_sample_value("chat_posts_ahead_total", {"outcome": "in_vain"})
        key = secrets.token_hex(8)
        with pytest.raises(Forbidden, match=actions.CLOSED):
            await actions.post(
                db, Seat(room=closed, member=True), sender=sender, body="late", client_key=key
            )
        after = REGISTRY.get_sample_value("chat_posts_ahead_total", {"outcome": "in_vain"})
        assert after == (in_vain or 0.0) + 1  # it did go ahead
        assert await db["message"].count_documents({"sender_id": str(sender.id)}) == 1
        assert await db["message_words"].count_documents({"room_id": str(room.id)}) == words_before
        assert await db["post_keys"].find_one({"_id": f"{sender.id}:{key}"}) is None
    finally:
        await connection.close()
