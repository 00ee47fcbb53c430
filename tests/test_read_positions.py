"""Read positions over real HTTP and SSE.

Reading is the page's to say (POST .../read, optionally up to the message numbered `seq`):
opening a conversation reads nothing.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
from pymongo import MongoClient
from pymongo.database import Database

from tests.support import Person, message_id, open_stream, unique_name

MakePerson = Callable[..., Person]
Db = Database[dict[str, Any]]
BAD_SEQS = ["", "x", "-1", "1.5", " 1", "1 ", "+1", "1e3", "0x10", "१", "9" * 19]
FORM = "application/x-www-form-urlencoded"


@pytest.fixture(scope="module")
def db(mongo_uri: str) -> Iterator[Db]:
    mongo: MongoClient[dict[str, Any]] = MongoClient(mongo_uri)
    yield mongo.get_default_database()
    mongo.close()


def user_id(db: Db, someone: Person) -> str:
    user = db["user"].find_one({"username": someone.username})
    assert user is not None
    return str(user["_id"])


def badge_of(page: str, conversation: str) -> int:
    """The unread count on the sidebar entry of this conversation key."""
    match = re.search(
        rf'data-conversation="{re.escape(conversation)}".*?<span class="badge"[^>]*>(\d*)<',
        page,
        re.S,
    )
    assert match, f"no entry for {conversation}"
    return int(match.group(1) or 0)


def dm_key_of(page: str, username: str) -> str:
    match = re.search(rf'data-conversation="(dm:[^"]+)"\s+data-username="{username}"', page)
    assert match
    return match.group(1)


def seq_of(fragment: str) -> int:
    match = re.search(r'data-seq="(\d+)"', fragment)
    assert match, fragment[:200]
    return int(match.group(1))


def dm_unread(alice: Person, bob: Person) -> int:
    """Alice's count on bob's entry, seen from her notes to self (somewhere else)."""
    page = alice.client.get(f"/dm/{alice.username}").text
    return badge_of(page, dm_key_of(page, bob.username))


def read(someone: Person, path: str, seq: object = None, **headers: str) -> httpx.Response:
    data = {} if seq is None else {"seq": str(seq)}
    return someone.client.post(
        f"{path}/read", data=data, headers={"X-CSRF-Token": someone.csrf, **headers}
    )


def new_room(owner: Person, *members: Person, open_room: bool = False) -> str:
    data = {"name": unique_name("room")} | ({"open": "on"} if open_room else {})
    made = owner.send("POST", "/rooms", data)
    assert made.status_code == 201, made.text
    path = str(made.headers["location"])
    for member in members:
        added = owner.send("POST", f"{path}/members", {"username": member.username})
        assert added.status_code == 201, added.text
    return path


def test_messages_carry_their_seq(make_person: MakePerson) -> None:
    alice, bob = make_person(), make_person()
    first = bob.post_dm(alice.username, "one")
    second = bob.post_dm(alice.username, "two")
    assert (seq_of(first.text), seq_of(second.text)) == (1, 2)
    page = alice.client.get(f"/dm/{bob.username}").text
    assert f'id="msg-{message_id(second.text)}"' in page
    assert re.search(rf'id="msg-{message_id(second.text)}"[^>]*data-seq="2"', page)


def test_reading_up_to_a_message_leaves_the_later_ones_unread(make_person: MakePerson) -> None:
    alice, bob = make_person(), make_person()
    posted = [bob.post_dm(alice.username, f"dm {n}") for n in range(3)]
    path = f"/dm/{bob.username}"
    assert dm_unread(alice, bob) == 3
    assert alice.client.get(path).status_code == 200  # opening it reads nothing
    assert dm_unread(alice, bob) == 3

    assert read(alice, path, seq_of(posted[1].text)).status_code == 204
    assert dm_unread(alice, bob) == 1
    assert read(alice, path, 1).status_code == 204  # a position never goes back
    assert dm_unread(alice, bob) == 1
    assert read(alice, path, 0).status_code == 204
    assert dm_unread(alice, bob) == 1

    # Past the room's count it stops at the count: what is posted next is unread.
    assert read(alice, path, 10**6).status_code == 204
    assert dm_unread(alice, bob) == 0
    bob.post_dm(alice.username, "after")
    assert dm_unread(alice, bob) == 1
    # Without a seq: everything so far.
    assert read(alice, path).status_code == 204
    assert dm_unread(alice, bob) == 0


def test_a_bad_seq_is_refused_and_changes_nothing(
    make_person: MakePerson, db: Db, subtests: pytest.Subtests
) -> None:
    alice, bob = make_person(), make_person()
    for n in range(2):
        bob.post_dm(alice.username, f"dm {n}")
    path = f"/dm/{bob.username}"
    assert read(alice, path, 1).status_code == 204
    membership = {"user_id": user_id(db, alice)}
    before = list(db["membership"].find(membership, sort=[("_id", 1)]))
    for seq in BAD_SEQS:
        with subtests.test(seq=seq):
            for headers in ({"HX-Request": "true"}, {"Accept": "application/json"}):
                refused = read(alice, path, seq, **headers)
                assert refused.status_code == 400, refused.text
                assert "seq is the number of a message" in refused.text
            assert list(db["membership"].find(membership, sort=[("_id", 1)])) == before
            assert dm_unread(alice, bob) == 1
    with subtests.test("seq twice"):
        refused = alice.client.post(
            f"{path}/read",
            content="seq=x&seq=2",
            headers={"X-CSRF-Token": alice.csrf, "Content-Type": FORM},
        )
        assert refused.status_code == 400
        assert dm_unread(alice, bob) == 1
    with subtests.test("no CSRF token"):
        assert alice.client.post(f"{path}/read", data={"seq": "2"}).status_code == 403
        assert dm_unread(alice, bob) == 1
    with subtests.test("nobody of that name"):
        assert read(alice, "/dm/nobody_by_that_name", 1).status_code == 404
    with subtests.test("a room one is not in"):
        carol = make_person()
        room = new_room(carol)
        assert read(alice, room, 1).status_code == 404


def test_a_reader_who_asks_is_told_what_is_left(make_person: MakePerson) -> None:
    alice, bob = make_person(), make_person()
    posted = [bob.post_dm(alice.username, f"dm {n}") for n in range(3)]
    alice.post_dm(bob.username, "my own never counts")
    path = f"/dm/{bob.username}"
    told = read(alice, path, seq_of(posted[0].text), Accept="application/json")
    assert told.status_code == 200
    assert told.json() == {"read_seq": 1, "unread": 2, "upto": 4}
    told = read(alice, path, Accept="application/json")
    assert told.json() == {"read_seq": 4, "unread": 0, "upto": 4}
    # A conversation nobody has written in yet.
    carol = make_person()
    told = read(alice, f"/dm/{carol.username}", 3, Accept="application/json")
    assert told.json() == {"read_seq": 0, "unread": 0, "upto": 0}


async def test_the_read_event_says_how_many_are_left(make_person: MakePerson) -> None:
    alice, bob = make_person(), make_person()
    posted = [bob.post_dm(alice.username, f"dm {n}") for n in range(3)]
    path = f"/dm/{bob.username}"
    page = alice.client.get(f"/dm/{alice.username}").text
    key = dm_key_of(page, bob.username)
    async with open_stream(alice.base_url, token=alice.token()) as other_tab:
        assert read(alice, path, seq_of(posted[1].text)).status_code == 204
        event = await other_tab.next_named("read")
        assert event.data.split() == [key, "2", "1", "3"]  # key, read seq, unread, upto
        assert read(alice, path, 1).status_code == 204  # moves nothing: no event
        assert read(alice, path).status_code == 204
        event = await other_tab.next_named("read")
        assert event.data.split() == [key, "3", "0", "3"]


def test_the_public_room_is_read_from_where_one_joined(make_person: MakePerson, db: Db) -> None:
    """Someone new to the public room has read what came before them: reading an old message
    moves nothing, and makes no membership."""
    early = make_person()
    old = early.post_public(f"before carol {unique_name('m')}")
    carol = make_person()
    early.post_public("after carol joined")
    page = carol.client.get(f"/dm/{carol.username}").text
    assert badge_of(page, "public") == 1
    assert read(carol, "/rooms/public", seq_of(old.text)).status_code == 204
    assert db["membership"].find_one({"user_id": user_id(db, carol)}) is None
    page = carol.client.get(f"/dm/{carol.username}").text
    assert badge_of(page, "public") == 1
    assert read(carol, "/rooms/public").status_code == 204
    page = carol.client.get(f"/dm/{carol.username}").text
    assert badge_of(page, "public") == 0


def test_new_messages_line_above_the_first_unread(make_person: MakePerson) -> None:
    alice, bob = make_person(), make_person()
    bob.post_dm(alice.username, "read already")
    path = f"/dm/{bob.username}"
    assert read(alice, path).status_code == 204
    alice.post_dm(bob.username, "alice's own, after it")
    first = bob.post_dm(alice.username, "first unread")
    bob.post_dm(alice.username, "second unread")
    page = alice.client.get(path).text
    assert page.count("New messages") == 1
    line = page.index('class="new-messages"')
    assert page.index("alice&#39;s own") < line < page.index(f'id="msg-{message_id(first.text)}"')
    assert 'data-read-seq="1"' in page
    # The same in a page of older messages fetched by htmx, and none once read.
    fragment = alice.client.get(f"{path}/messages", headers={"HX-Request": "true"}).text
    assert fragment.count("New messages") == 1
    assert read(alice, path).status_code == 204
    assert "New messages" not in alice.client.get(path).text
    # Bob's own messages are never new to him.
    assert read(bob, f"/dm/{alice.username}").status_code == 204
    bob.post_dm(alice.username, "bob again")
    assert "New messages" not in bob.client.get(f"/dm/{alice.username}").text
