"""Read positions and muted rooms over real HTTP and SSE.

Reading is the page's to say (POST .../read, optionally up to the message numbered `seq`):
opening a conversation reads nothing. A group room can be muted (POST /rooms/{id}/mute), which
is kept apart from the membership, whose changes reach the reader's tabs as read events.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from tests.html import Element, fragment, parse
from tests.support import (
    Db,
    Person,
    add_to_room,
    create_room,
    dm_key,
    message_element,
    message_id,
    open_stream,
    unique_name,
    unread_badge,
    user_id,
)

MakePerson = Callable[..., Person]
BAD_SEQS = ["", "x", "-1", "1.5", " 1", "1 ", "+1", "1e3", "0x10", "१", "9" * 19]
FORM = "application/x-www-form-urlencoded"
BAD_MUTES = ["", "yes", "ON", "true", "1", "on "]


def seq_of(html: str) -> int:
    """The seq of the message a fragment is."""
    return int(fragment(html).get("data-seq"))


def dm_unread(alice: Person, bob: Person) -> int:
    """Alice's count on bob's entry, seen from her notes to self (somewhere else)."""
    page = alice.page(f"/dm/{alice.username}")
    return unread_badge(page, dm_key(page, bob.username))


def read(someone: Person, path: str, seq: object = None, **headers: str) -> httpx.Response:
    data = {} if seq is None else {"seq": str(seq)}
    return someone.client.post(
        f"{path}/read", data=data, headers={"X-CSRF-Token": someone.csrf, **headers}
    )


def new_room(owner: Person, *members: Person, open_room: bool = False) -> str:
    """A room made by `owner` with these members in it: its path."""
    room_id = create_room(owner, open=open_room)
    for member in members:
        add_to_room(owner, room_id, member)
    return f"/rooms/{room_id}"


def test_messages_carry_their_seq(make_person: MakePerson) -> None:
    alice, bob = make_person(), make_person()
    first = bob.post_dm(alice.username, "one")
    second = bob.post_dm(alice.username, "two")
    assert (seq_of(first.text), seq_of(second.text)) == (1, 2)
    page = alice.page(f"/dm/{bob.username}")
    assert message_element(page, message_id(second.text)).get("data-seq") == "2"


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
    key = told.json()["key"]
    assert key == dm_key(alice.page(f"/dm/{alice.username}"), bob.username)
    assert told.json() == {"key": key, "read_seq": 1, "unread": 2, "upto": 4, "mentions": 0}
    told = read(alice, path, Accept="application/json")
    assert told.json() == {"key": key, "read_seq": 4, "unread": 0, "upto": 4, "mentions": 0}
    # A conversation nobody has written in yet.
    carol = make_person()
    told = read(alice, f"/dm/{carol.username}", 3, Accept="application/json")
    carols = dm_key(alice.page(f"/dm/{alice.username}"), carol.username)
    assert told.json() == {"key": carols, "read_seq": 0, "unread": 0, "upto": 0, "mentions": 0}


async def test_the_read_event_says_how_many_are_left(make_person: MakePerson) -> None:
    alice, bob = make_person(), make_person()
    posted = [bob.post_dm(alice.username, f"dm {n}") for n in range(3)]
    path = f"/dm/{bob.username}"
    key = dm_key(alice.page(f"/dm/{alice.username}"), bob.username)
    async with open_stream(alice.base_url, token=alice.token()) as other_tab:
        assert read(alice, path, seq_of(posted[1].text)).status_code == 204
        event = await other_tab.next_named("read")
        assert json.loads(event.data) == {
            "key": key,
            "read_seq": 2,
            "unread": 1,
            "upto": 3,
            "mentions": 0,
        }
        assert read(alice, path, 1).status_code == 204  # moves nothing: no event
        assert read(alice, path).status_code == 204
        event = await other_tab.next_named("read")
        assert json.loads(event.data) == {
            "key": key,
            "read_seq": 3,
            "unread": 0,
            "upto": 3,
            "mentions": 0,
        }


def test_the_public_room_is_read_from_where_one_joined(make_person: MakePerson, db: Db) -> None:
    """Someone new to the public room has read what came before them: reading an old message
    moves nothing."""
    early = make_person()
    old = early.post_public(f"before carol {unique_name('m')}")
    carol = make_person()
    early.post_public("after carol joined")
    assert unread_badge(carol.page(f"/dm/{carol.username}"), "public") == 1
    position = db["membership"].find_one({"user_id": user_id(db, carol)})  # from registering
    assert position is not None and position["read_seq"] == seq_of(old.text)
    assert read(carol, "/rooms/public", seq_of(old.text)).status_code == 204
    assert db["membership"].find_one({"user_id": user_id(db, carol)}) == position
    assert unread_badge(carol.page(f"/dm/{carol.username}"), "public") == 1
    assert read(carol, "/rooms/public").status_code == 204
    assert unread_badge(carol.page(f"/dm/{carol.username}"), "public") == 0


def test_a_number_lost_before_someone_registers_leaves_them_nothing_unread(
    make_person: MakePerson, db: Db
) -> None:
    """A post numbered and then lost (its insert failed) leaves a gap in the public room's
    numbers: counting the messages from before someone registered then came one short, and
    one old message stayed unread for everyone who came after."""
    early = make_person()
    early.post_public("before the gap")
    public = db["room"].find_one({"kind": "public"})
    assert public is not None
    db["room_sequences"].update_one({"_id": str(public["_id"])}, {"$inc": {"value": 1}})
    early.post_public("after the gap")
    carol = make_person()
    assert unread_badge(carol.page(f"/dm/{carol.username}"), "public") == 0
    early.post_public("after carol came")
    assert unread_badge(carol.page(f"/dm/{carol.username}"), "public") == 1


def test_new_messages_line_above_the_first_unread(make_person: MakePerson) -> None:
    alice, bob = make_person(), make_person()
    bob.post_dm(alice.username, "read already")
    path = f"/dm/{bob.username}"
    assert read(alice, path).status_code == 204
    own_reply = alice.post_dm(bob.username, "alice's own, after it")
    first = bob.post_dm(alice.username, "first unread")
    bob.post_dm(alice.username, "second unread")
    page = alice.page(path)
    [line] = new_messages_lines(page)
    assert line.text == "New messages"
    own = message_element(page, message_id(own_reply.text))
    assert page.before(own, line)
    assert page.before(line, message_element(page, message_id(first.text)))
    assert page.find(data_read_seq="1") is not None
    # The same in a page of older messages fetched by htmx, and none once read.
    listing = alice.client.get(f"{path}/messages", headers={"HX-Request": "true"}).text
    assert len(new_messages_lines(parse(listing))) == 1
    assert read(alice, path).status_code == 204
    assert new_messages_lines(alice.page(path)) == []
    # Bob's own messages are never new to him.
    assert read(bob, f"/dm/{alice.username}").status_code == 204
    bob.post_dm(alice.username, "bob again")
    assert new_messages_lines(bob.page(f"/dm/{alice.username}")) == []


# Muting a group room


def new_messages_lines(page: Element) -> list[Element]:
    return page.find_all("p", class_="new-messages")


def mute(someone: Person, path: str, muted: str, **headers: str) -> httpx.Response:
    return someone.client.post(
        f"{path}/mute",
        data={"muted": muted},
        headers={"X-CSRF-Token": someone.csrf, "HX-Request": "true", **headers},
    )


def entry_of(page: Element, path: str) -> Element:
    """The room's link in the sidebar's "Rooms"."""
    return page.one("ul", id="rooms").one("a", class_="room-link", href=path)


def mute_toggle(form: Element) -> bool:
    """Whether a room's mute form says it is muted; its button and field say the same."""
    muted = {"true": True, "false": False}[form.get("data-muted")]
    assert form.one("button").text == ("Unmute room" if muted else "Mute room"), form
    assert form.one("input", name="muted").get("value") == ("off" if muted else "on"), form
    return muted


def muted_in_page(someone: Person, path: str) -> bool:
    page = someone.page(path)
    muted = entry_of(page, path).get("data-muted") == "true"
    assert mute_toggle(page.one("form", class_="mute-form")) == muted  # the toggle says the same
    return muted


def test_muting_and_unmuting_a_room(make_person: MakePerson, db: Db) -> None:
    alice, bob = make_person(), make_person()
    room = new_room(alice, bob)
    assert not muted_in_page(bob, room)

    toggled = mute(bob, room, "on")
    assert toggled.status_code == 200, toggled.text
    assert mute_toggle(fragment(toggled.text))  # the toggle now unmutes
    assert muted_in_page(bob, room)
    assert not muted_in_page(alice, room)  # each member's own
    assert mute(bob, room, "on").status_code == 200  # again: still muted, nothing doubled
    assert db["room_mutes"].count_documents({"user_id": user_id(db, bob)}) == 1

    toggled = mute(bob, room, "off")
    assert toggled.status_code == 200
    assert not mute_toggle(fragment(toggled.text))
    assert not muted_in_page(bob, room)
    assert mute(bob, room, "off").status_code == 200

    # Scripts get JSON, plain forms the room's page.
    token = bob.token()
    bearer = {"Authorization": f"Bearer {token}"}
    scripted = httpx.post(f"{bob.base_url}{room}/mute", data={"muted": "on"}, headers=bearer)
    assert (scripted.status_code, scripted.json()) == (200, {"muted": True})
    plain = bob.client.post(
        f"{room}/mute",
        data={"muted": "off", "csrf_token": bob.csrf},
        headers={"Accept": "text/html"},
    )
    assert (plain.status_code, plain.headers["location"]) == (303, room)
    assert not muted_in_page(bob, room)


def test_leaving_a_room_forgets_its_mute(make_person: MakePerson, db: Db) -> None:
    alice, bob = make_person(), make_person()
    room = new_room(alice, bob, open_room=True)
    assert mute(bob, room, "on").status_code == 200
    assert bob.send("POST", f"{room}/leave").status_code == 200
    assert db["room_mutes"].count_documents({"user_id": user_id(db, bob)}) == 0
    assert bob.send("POST", f"{room}/join").status_code == 201
    assert not muted_in_page(bob, room)


async def test_muting_is_not_a_read(make_person: MakePerson, db: Db) -> None:
    """The mute is kept apart from the membership, whose changes reach tabs as read events."""
    alice, bob = make_person(), make_person()
    room = new_room(alice, bob)
    membership = {"user_id": user_id(db, bob), "room_id": room.rsplit("/", 1)[1]}
    before = db["membership"].find_one(membership)
    async with open_stream(bob.base_url, token=bob.token()) as tab:
        assert mute(bob, room, "on").status_code == 200
        # A marker: his read position in the public room moves. Membership changes reach
        # tabs in the order they were made: a read event of the mute would come first.
        assert alice.post_public(unique_name("to read")).status_code == 201
        assert read(bob, "/rooms/public").status_code == 204
        seen = await tab.until("read")
        assert [json.loads(e.data)["key"] for e in seen if e.event == "read"] == ["public"]
    assert db["membership"].find_one(membership) == before


def test_bad_mutes_are_refused_and_change_nothing(
    make_person: MakePerson, db: Db, subtests: pytest.Subtests
) -> None:
    alice, bob, carol = make_person(), make_person(), make_person()
    room = new_room(alice, bob)
    open_room = new_room(alice, open_room=True)
    assert mute(bob, room, "on").status_code == 200
    mutes = db["room_mutes"]

    def state() -> list[dict[str, Any]]:
        return list(mutes.find({}, {"muted_at": 0}, sort=[("_id", 1)]))

    before = state()
    for value in BAD_MUTES:
        with subtests.test(muted=value):
            refused = mute(bob, room, value)
            assert refused.status_code == 400
            assert "muted is" in refused.text
            assert state() == before
    with subtests.test("no muted field"):
        refused = bob.client.post(
            f"{room}/mute", data={}, headers={"X-CSRF-Token": bob.csrf, "HX-Request": "true"}
        )
        assert refused.status_code == 400
        assert state() == before
    with subtests.test("no CSRF token"):
        assert bob.client.post(f"{room}/mute", data={"muted": "off"}).status_code == 403
        assert state() == before
    with subtests.test("a private room one is not in: as if there were none"):
        refused = mute(carol, room, "on")
        missing = mute(carol, "/rooms/" + "0" * 24, "on")
        assert refused.status_code == missing.status_code == 404
        assert refused.text == missing.text
        assert state() == before
    with subtests.test("an open room one has not joined"):
        refused = mute(carol, open_room, "on")
        assert refused.status_code == 403
        assert "Join this room" in refused.text
        assert state() == before
    with subtests.test("the public room and direct conversations are not group rooms"):
        assert mute(bob, "/rooms/public", "on").status_code in (404, 405)
        bob.post_dm(alice.username, "a dm room")
        dm = db["room"].find_one({"kind": "dm", "members": user_id(db, bob)})
        assert dm is not None
        assert mute(bob, f"/rooms/{dm['_id']}", "on").status_code == 404
        assert state() == before
