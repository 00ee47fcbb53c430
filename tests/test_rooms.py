"""Group rooms over real HTTP and real event streams: who gets what, who may do what, and what
is stored.

Every "nobody else got it" is proved with a marker: a later event on the same change stream
(messages, typing, memberships or rooms) that the person does get. The hub handles each
collection's changes in commit order, so had the room's event reached them it would have come
before the marker.
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import httpx
import pytest
from bson import ObjectId

from tests.html import Element, fragment, parse
from tests.support import (
    AppServer,
    Db,
    EventStream,
    Person,
    SSEEvent,
    StartApp,
    add_to_room,
    alert_of,
    bearer_client,
    create_room,
    member_ids,
    memberships,
    message_id,
    open_stream,
    plain_form,
    post_in_room,
    room_doc,
    user_id,
)
from tests.support import unique_name as unique

MakePerson = Callable[..., Person]

NO_SUCH_ROOM = "There is no such room."
OWNER_REMOVES = "Only the room's owner can remove other people."
OWNER_RENAMES = "Only the room's owner can change its name and topic."
NO_NAME = "Give the room a name."
LONG_NAME = "Room names are at most 64 characters."
LONG_TOPIC = "Topics are at most 200 characters."
WAIT = 10.0  # seconds, for any one event


@pytest.fixture(scope="module")
def small_ring_server(start_app: StartApp) -> AppServer:
    """Another process, whose ring keeps one change: its replays come from the database."""
    return start_app(REPLAY_RING_SIZE="1")


@pytest.fixture(scope="module")
def regular(app_server: AppServer) -> Iterator[tuple[Person, str]]:
    """One person, with a Bearer token, shared by the tests of refused rooms: a refusal makes
    nothing, so they cannot disturb one another."""
    with Person.register(app_server.url) as someone:
        yield someone, someone.token()


def sequence(db: Db, room_id: str) -> int:
    counter = db["room_sequences"].find_one({"_id": room_id})
    return int(counter["value"]) if counter else 0


# Markup


def sidebar_rooms(page: Element) -> dict[str, Element]:
    """The entries of the sidebar's "Rooms" list, by room id."""
    rooms = page.one("ul", id="rooms")
    entries = rooms.find_all("li")
    return {str(li.attrs["id"]).removeprefix("room-"): li for li in entries}


def badge(page: Element, room_id: str) -> tuple[str | None, bool, str]:
    """The unread badge of a room's sidebar entry: its aria-label, whether hidden, its text."""
    entry = sidebar_rooms(page)[room_id]
    span = entry.one("span", class_="badge")
    return span.attrs.get("aria-label"), span.has("hidden"), span.text


def members_listed(page: Element) -> dict[str, Element]:
    """The "Members" list of a room's page, by username."""
    members = page.one("ul", id="members")
    return {str(li.attrs["data-username"]): li for li in members.find_all("li")}


def remove_buttons(element: Element) -> list[str]:
    return [
        str(b.attrs.get("aria-label"))
        for b in element.find_all("button")
        if "Remove" in (b.attrs.get("aria-label") or b.text)
    ]


@dataclass(frozen=True)
class Listed:
    """An open room as "Browse rooms" lists it."""

    name: str
    href: str
    topic: str
    count: str
    join: str | None  # the Join button's accessible name, when there is one
    joined: bool


def browse(someone: Person) -> dict[str, Listed]:
    response = someone.client.get("/rooms")
    assert response.status_code == 200, response.text
    page = parse(response.text)
    listing = page.find("ul", class_="open-rooms")
    rooms = {}
    for li in listing.find_all("li") if listing else []:
        link = li.one("a", class_="room-name")
        topic = li.find("span", class_="topic")
        button = li.find("button")
        href = str(link.attrs["href"])
        rooms[href.rsplit("/", 1)[1]] = Listed(
            name=link.text,
            href=href,
            topic=topic.text if topic else "",
            count=li.one("span", class_="count").text,
            join=(button.attrs.get("aria-label") or button.text) if button else None,
            joined=li.find("span", class_="joined") is not None,
        )
    return rooms


# Events


def about(event: SSEEvent, **attrs: str) -> bool:
    """Whether an event's fragment is the element these attributes say (tests/html.py)."""
    return fragment(event.data).is_(**attrs)


async def next_about(stream: EventStream, name: str, **attrs: str) -> SSEEvent:
    """The next `name` event whose fragment has these attributes (others are skipped)."""
    return (await stream.until(name, lambda e: about(e, **attrs), timeout=WAIT))[-1]


async def next_message(stream: EventStream, mid: str) -> SSEEvent:
    """The next event of the message of this id (its post, edit or deletion)."""
    return await next_about(stream, "message", id=f"msg-{mid}")


def of_room(events: list[SSEEvent], room_id: str, *names: str) -> list[SSEEvent]:
    return [e for e in events if e.event in names and about(e, data_conversation=room_id)]


async def assert_no_room_messages_before_marker(
    someone: Person, stream: EventStream, room_id: str
) -> list[SSEEvent]:
    """Posts a public message and waits for it on `stream`: no message of the room came first."""
    marker = someone.post_public(unique("marker"))
    assert marker.status_code == 201
    mid = message_id(marker.text)
    seen = await stream.until("message", lambda e: about(e, id=f"msg-{mid}"), timeout=WAIT)
    assert of_room(seen, room_id, "message") == [], "a message of the room reached the stream"
    return seen


async def assert_no_room_typing_before_marker(
    someone: Person, stream: EventStream, room_id: str
) -> None:
    """Types in the public room and waits for that notice: no typing of the room came first."""
    assert someone.send("POST", "/rooms/public/typing").status_code == 204
    seen = await stream.until(
        "typing",
        lambda e: about(e, data_conversation="public", data_username=someone.username),
        timeout=WAIT,
    )
    assert of_room(seen, room_id, "typing") == [], "a typing notice of the room reached the stream"


def read_room(event: SSEEvent) -> str:
    """The room a "read" event is about (its data: key, read position, unread, counted up to)."""
    return str(json.loads(event.data)["key"])


async def membership_marker(poster: Person, reader: Person, stream: EventStream) -> list[SSEEvent]:
    """A membership change of the reader's own (their read position in the public room moves):
    every event until its "read" event."""
    assert poster.post_public(unique("to read")).status_code == 201
    assert reader.send("POST", "/rooms/public/read").status_code == 204
    return await stream.until("read", lambda e: read_room(e) == "public", timeout=WAIT)


# Creating a room


def test_creating_a_room_answers_each_kind_of_client(make_person: MakePerson, db: Db) -> None:
    alice = make_person()
    alice_id = user_id(db, alice)
    # htmx: 201, Location and HX-Location.
    name = unique("Den")
    room_id = create_room(alice, f"  {name}   of\tcalm  ", topic="  Quiet   talk ")
    room = room_doc(db, room_id)
    assert (room["kind"], room["key"], room["name"], room["topic"]) == (
        "group",
        room_id,
        f"{name} of calm",
        "Quiet talk",
    )
    assert (room["open"], room["owner_id"], room["archived"]) == (False, alice_id, False)
    assert member_ids(db, room_id) == {alice_id}
    # A plain form: 303 to the room.
    response = plain_form(alice, "/rooms", {"name": unique("plain"), "open": "on"})
    assert response.status_code == 303, response.text
    plain_id = response.headers["location"].removeprefix("/rooms/")
    assert room_doc(db, plain_id)["open"] is True
    # A Bearer client: 201 and Location, no CSRF token, no HX-Location.
    with bearer_client(alice) as client:
        response = client.post("/rooms", data={"name": unique("api")})
    assert response.status_code == 201, response.text
    assert re.fullmatch(r"/rooms/[0-9a-f]{24}", response.headers["location"])
    assert "hx-location" not in response.headers
    # The page: its name as the heading, its topic, the creator as owner and only member,
    # with no Remove button beside himself; the room is in the sidebar.
    page = alice.page(f"/rooms/{room_id}")
    assert page.one("h1", id="conversation-title").text == f"{name} of calm"
    assert page.one("p", id="room-topic").text == "Quiet talk"
    members = members_listed(page)
    assert list(members) == [alice.username]
    assert "(owner)" in members[alice.username].text
    assert remove_buttons(page.one("ul", id="members")) == []
    assert page.find("form", class_="room-settings") is not None
    assert sidebar_rooms(page)[room_id].one("span", class_="name").text == f"{name} of calm"
    assert len(page.find_all(role="log")) == 1


async def test_room_names_and_topics_are_text_everywhere(make_person: MakePerson) -> None:
    alice, bob = make_person(), make_person()
    name = f"<img src=x onerror=alert(1)> {unique('r')}"
    topic = "<script>alert(2)</script> & <b>bold</b>"
    room_id = create_room(alice, name, topic=topic, open=True)
    async with open_stream(bob.base_url, cookie=bob.cookie) as bob_events:
        add_to_room(alice, room_id, bob)
        entry = fragment((await next_about(bob_events, "room", id=f"room-{room_id}")).data)
    assert entry.attrs["data-name"] == name and entry.one("span", class_="name").text == name
    assert entry.one("a").attrs["data-topic"] == topic
    page = bob.page(f"/rooms/{room_id}")
    assert page.one("h1", id="conversation-title").text == name
    assert page.one("p", id="room-topic").text == topic
    listed = browse(bob)[room_id]
    assert (listed.name, listed.topic) == (name, topic)
    for element in (entry, page, parse(bob.client.get("/rooms").text)):
        assert element.find_all("img") == [] and element.find_all("b") == []
        assert all(script.attrs.get("src") for script in element.find_all("script"))


# Who receives a room's events


async def test_room_events_reach_its_members_and_nobody_else(
    make_person: MakePerson, db: Db
) -> None:
    alice, bob, carol, dave = make_person(), make_person(), make_person(), make_person()
    room_id = create_room(alice)
    add_to_room(alice, room_id, bob)
    async with (
        open_stream(alice.base_url, cookie=alice.cookie) as alice_events,
        open_stream(bob.base_url, cookie=bob.cookie) as bob_events,
        open_stream(carol.base_url, cookie=carol.cookie) as carol_events,
    ):
        sent = bob.send("POST", f"/rooms/{room_id}/messages", {"body": "members only <b>hi</b>"})
        assert sent.status_code == 201
        mid = message_id(sent.text)
        assert fragment(sent.text).get("data-conversation") == room_id
        for stream in (alice_events, bob_events):
            event = await next_message(stream, mid)
            assert event.id  # a resume token: a cursor
            element = fragment(event.data)
            assert element.attrs["data-conversation"] == room_id
            assert "members only <b>hi</b>" in element.text  # escaped, shown as text
            assert element.find_all("b") == []
        # Typing: the other members, not the typist, and not carol.
        assert bob.send("POST", f"/rooms/{room_id}/typing").status_code == 204
        notice = fragment(
            (await next_about(alice_events, "typing", data_conversation=room_id)).data
        )
        assert (notice.attrs["data-conversation"], notice.attrs["data-username"]) == (
            room_id,
            bob.username,
        )
        # Membership: alice adds dave; alice and bob see him arrive, carol does not.
        add_to_room(alice, room_id, dave)
        dave_id = user_id(db, dave)
        for stream in (alice_events, bob_events):
            joined = await next_about(stream, "member", id=f"member-{room_id}-{dave_id}")
            assert not fragment(joined.data).has("data-left")
        # Carol got none of it: the markers on each of those change streams come first.
        await assert_no_room_messages_before_marker(alice, carol_events, room_id)
        await assert_no_room_typing_before_marker(dave, carol_events, room_id)
        # Nor is the typist told of his own typing.
        await assert_no_room_typing_before_marker(alice, bob_events, room_id)
        seen = await membership_marker(alice, carol, carol_events)
        assert [e for e in seen if room_id in e.data] == []
        assert [e for e in carol_events.events if room_id in e.data] == []


async def test_an_added_member_hears_of_the_room_at_once(make_person: MakePerson, db: Db) -> None:
    alice, bob, carol = make_person(), make_person(), make_person()
    name = unique("Attic")
    room_id = create_room(alice, name, topic="old boxes")
    add_to_room(alice, room_id, carol)
    bob_id = user_id(db, bob)
    async with (
        open_stream(alice.base_url, cookie=alice.cookie) as alice_events,
        open_stream(bob.base_url, cookie=bob.cookie) as bob_events,
        open_stream(carol.base_url, cookie=carol.cookie) as carol_events,
    ):
        before = post_in_room(alice, room_id, "before bob")
        await next_message(carol_events, before)
        response = carol.send("POST", f"/rooms/{room_id}/members", {"username": bob.username})
        assert response.status_code == 201, response.text  # any member adds
        # Bob's open stream: his sidebar entry for the room, then his own arrival.
        entry = fragment((await next_about(bob_events, "room", id=f"room-{room_id}")).data)
        assert entry.tag == "li" and entry.attrs["id"] == f"room-{room_id}"
        assert entry.attrs["data-name"] == name
        link = entry.one("a")
        assert (link.attrs["href"], link.attrs["data-conversation"]) == (
            f"/rooms/{room_id}",
            room_id,
        )
        assert link.attrs["data-topic"] == "old boxes"
        arrival = fragment(
            (await next_about(bob_events, "member", id=f"member-{room_id}-{bob_id}")).data
        )
        assert arrival.attrs["data-username"] == bob.username
        assert not arrival.has("data-left")
        assert remove_buttons(arrival) == []
        # The owner's copy has the Remove button; another member's has none.
        owners = fragment(
            (await next_about(alice_events, "member", id=f"member-{room_id}-{bob_id}")).data
        )
        assert remove_buttons(owners) == [f"Remove {bob.username}"]
        others = fragment(
            (await next_about(carol_events, "member", id=f"member-{room_id}-{bob_id}")).data
        )
        assert remove_buttons(others) == []
        # The next message of the room reaches him.
        mid = post_in_room(alice, room_id, "welcome bob")
        event = await next_message(bob_events, mid)
        assert "welcome bob" in fragment(event.data).text
        # Nothing from before he came was sent to him live.
        assert [e for e in bob_events.events if before in e.data] == []
    page = bob.page()
    assert room_id in sidebar_rooms(page)
    assert bob.username in members_listed(alice.page(f"/rooms/{room_id}"))


@pytest.mark.parametrize("how", ["removed", "removed by a plain form", "left"])
async def test_someone_gone_from_a_room_gets_nothing_more_of_it(
    make_person: MakePerson, db: Db, small_ring_server: AppServer, how: str
) -> None:
    alice, bob = make_person(), make_person()
    room_id = create_room(alice)
    add_to_room(alice, room_id, bob)
    bob_id = user_id(db, bob)
    own_room = create_room(bob)  # bob's own, for a marker on the room stream
    async with open_stream(bob.base_url, cookie=bob.cookie) as bob_events:
        first = post_in_room(alice, room_id, "while bob is in")
        cursor = (await next_message(bob_events, first)).id
        assert cursor
        if how == "removed":
            response = alice.send("DELETE", f"/rooms/{room_id}/members/{bob.username}")
            assert response.status_code == 200, response.text
            assert response.headers["location"] == f"/rooms/{room_id}"
        elif how == "removed by a plain form":
            response = plain_form(alice, f"/rooms/{room_id}/members/{bob.username}/remove")
            assert response.status_code == 303, response.text
            assert response.headers["location"] == f"/rooms/{room_id}"
        else:
            response = bob.send("POST", f"/rooms/{room_id}/leave")
            assert response.status_code == 200, response.text
            assert response.headers["location"] == "/"
        assert bob_id not in member_ids(db, room_id)
        # He is told he left (his page takes the room away), and that is the last of it.
        gone = fragment(
            (await next_about(bob_events, "member", id=f"member-{room_id}-{bob_id}")).data
        )
        assert gone.has("data-left")
        later = post_in_room(alice, room_id, "after bob went")
        edited = alice.send("PATCH", f"/messages/{first}", {"body": "edited after bob went"})
        assert edited.status_code == 200
        assert alice.send("POST", f"/rooms/{room_id}/typing").status_code == 204
        renamed = alice.send("POST", f"/rooms/{room_id}/settings", {"name": unique("renamed")})
        assert renamed.status_code == 200, renamed.text
        # His stream is still open: later events he does get come, and nothing of the room first.
        seen = await assert_no_room_messages_before_marker(alice, bob_events, room_id)
        assert [e for e in seen if later in e.data or first in e.data] == []
        marker = message_id(seen[-1].data)
        await assert_no_room_typing_before_marker(alice, bob_events, room_id)
        own_name = unique("mine")
        his = bob.send("POST", f"/rooms/{own_room}/settings", {"name": own_name})
        assert his.status_code == 200
        seen = await bob_events.until("room", lambda e: about(e, data_name=own_name))
        assert [e for e in seen if e.event == "room" and room_id in e.data] == []
    # Replays from before he went hold the public marker, and nothing of the room: from the
    # ring (Last-Event-ID, this process) and from the database (?after=, a one-change ring).
    replays = [
        (bob.base_url, {"last_event_id": cursor}),
        (small_ring_server.url, {"after": cursor}),
    ]
    for url, where in replays:
        async with open_stream(url, cookie=bob.cookie, **where) as replayed:
            seen = await replayed.until("message", lambda e: about(e, id=f"msg-{marker}"))
            assert of_room(seen, room_id, "message") == [], (url, where)
            assert [e for e in seen if later in e.data or first in e.data] == []
        # The control: alice, still in, is replayed the room's messages from the same cursor.
        async with open_stream(url, cookie=alice.cookie, **where) as replayed:
            seen = await replayed.until("message", lambda e: about(e, id=f"msg-{marker}"))
            replayed_ids = [message_id(e.data) for e in of_room(seen, room_id, "message")]
            assert replayed_ids == [later, first], (url, where)  # the post, then the edit
            assert (
                "edited after bob went" in fragment(of_room(seen, room_id, "message")[1].data).text
            )
    # Nor can he read it any more.
    response = bob.client.get(f"/rooms/{room_id}/messages", headers={"HX-Request": "true"})
    assert response.status_code == 404
    assert room_id not in sidebar_rooms(bob.page())


# Outsiders


def room_routes(
    room_id: str, outsider: Person, owner: Person
) -> list[tuple[str, str, dict[str, str]]]:
    base = f"/rooms/{room_id}"
    return [
        ("GET", base, {}),
        ("GET", f"{base}/messages", {}),
        ("POST", f"{base}/messages", {"body": "intruder's words"}),
        ("POST", f"{base}/read", {}),
        ("POST", f"{base}/typing", {}),
        ("POST", f"{base}/members", {"username": outsider.username}),
        ("POST", f"{base}/members", {"username": owner.username}),
        ("POST", f"{base}/members", {"username": "nobody_by_that_name"}),
        ("DELETE", f"{base}/members/{owner.username}", {}),
        ("DELETE", f"{base}/members/{outsider.username}", {}),
        ("POST", f"{base}/members/{owner.username}/remove", {}),
        ("POST", f"{base}/leave", {}),
        ("POST", f"{base}/join", {}),
        ("POST", f"{base}/settings", {"name": "hijacked", "topic": "mine now"}),
    ]


def ask(
    someone: Person,
    flavour: str,
    method: str,
    path: str,
    data: dict[str, str],
    client: httpx.Client,
) -> httpx.Response:
    """One request, as htmx, a plain browser form or page, or a Bearer client sends it."""
    body = data if method != "GET" else None
    if flavour == "htmx":
        headers = {"HX-Request": "true", "X-CSRF-Token": someone.csrf}
        return someone.client.request(method, path, data=body, headers=headers)
    if flavour == "plain":
        form = {"csrf_token": someone.csrf, **data} if method != "GET" else None
        return someone.client.request(method, path, data=form, headers={"Accept": "text/html"})
    return client.request(method, path, data=body)


def comparable(response: httpx.Response) -> tuple[int, str, Element | str]:
    """Status, type and body (a page parsed), the page without its CSRF token (a timed
    signature of the session, the same for every room)."""
    kind = response.headers.get("content-type", "")
    if not kind.startswith("text/html"):
        return response.status_code, kind, response.text
    page = parse(response.text)
    for element in page.find_all(hx_headers=True):
        headers = json.loads(element.get("hx-headers"))
        headers["X-CSRF-Token"] = ""
        element.attrs["hx-headers"] = json.dumps(headers)
    return response.status_code, kind, page


def test_a_room_you_may_not_see_is_a_room_that_does_not_exist(
    make_person: MakePerson, db: Db
) -> None:
    alice, mallory = make_person(), make_person()
    room_id = create_room(alice, topic="not for mallory")
    secret = post_in_room(alice, room_id, "secret words")
    assert alice.post_dm(mallory.username, "a DM makes a room").status_code == 201
    mallory_id = user_id(db, mallory)
    dm = db["room"].find_one({"kind": "dm", "members": mallory_id})
    public = db["room"].find_one({"key": "public"})
    assert dm is not None and public is not None
    # Not a room of this person's, not one at all, not an id, and rooms of the other kinds
    # (a DM of mallory's own included): all the same 404.
    targets = [
        room_id,
        str(ObjectId()),
        "zzz",
        str(public["_id"]),
        str(dm["_id"]),
        room_id.upper(),
    ]

    def snapshot() -> dict[str, object]:
        return {
            "room": room_doc(db, room_id),
            "members": memberships(db, room_id),
            "mallory": list(db["membership"].find({"user_id": mallory_id}, sort=[("_id", 1)])),
            "messages": db["message"].count_documents({}),
            "sequence": sequence(db, room_id),
            "rooms": db["room"].count_documents({}),
            "typing": db["typing"].count_documents({"user_id": mallory_id}),
        }

    before = snapshot()
    with bearer_client(mallory) as client:
        for flavour in ("htmx", "plain", "bearer"):
            # Every kind of target as htmx; the room, an unknown id and a non-id for Bearer; the
            # room and an unknown id for plain pages and forms.
            compared = {"htmx": targets, "bearer": targets[:3], "plain": targets[:2]}[flavour]
            for index, (method, path, data) in enumerate(room_routes(room_id, mallory, alice)):
                responses = [
                    ask(mallory, flavour, method, path.replace(room_id, target, 1), data, client)
                    for target in compared
                ]
                answers = [comparable(response) for response in responses]
                label = f"{flavour} {method} {path} #{index}"
                assert answers[0][0] == 404, (label, answers[0])
                for target, answer in zip(compared[1:], answers[1:], strict=True):
                    assert answer == answers[0], (label, target, answer, answers[0])
                kind, body = answers[0][1], responses[0].text
                assert "secret" not in body and "not for mallory" not in body, label
                if flavour == "htmx":
                    assert alert_of(body) == NO_SUCH_ROOM, (label, body)
                elif flavour == "bearer":
                    assert kind.startswith("application/json"), label
                    assert httpx.Response(404, content=body).json() == {"error": NO_SUCH_ROOM}
                else:
                    h1 = parse(body).one("h1")
                    assert h1.text == NO_SUCH_ROOM, label
    assert snapshot() == before
    assert before["typing"] == 0
    # Nor does the room show anywhere of hers.
    for path in ("/", "/rooms", f"/dm/{alice.username}"):
        text = mallory.client.get(path).text
        assert room_id not in text and "not for mallory" not in text, path
    assert secret not in mallory.client.get("/").text


# Owners and members


def test_the_owner_removes_and_members_only_leave(make_person: MakePerson, db: Db) -> None:
    alice, bob, carol = make_person(), make_person(), make_person()
    room_id = create_room(alice, unique("Owned"))
    bob_id, carol_id = user_id(db, bob), user_id(db, carol)
    add_to_room(alice, room_id, carol)  # carol first: she is the longest-standing after alice
    add_to_room(carol, room_id, bob)
    page = alice.page(f"/rooms/{room_id}")
    assert sorted(remove_buttons(page.one("ul", id="members"))) == sorted(
        [f"Remove {bob.username}", f"Remove {carol.username}"]
    )
    bobs_page = bob.page(f"/rooms/{room_id}")
    assert remove_buttons(bobs_page.one("ul", id="members")) == []
    assert bobs_page.find("form", class_="room-settings") is None  # the owner's alone
    # A member removes nobody but himself, and renames nothing.
    name = room_doc(db, room_id)["name"]
    for target in (carol, alice):
        for response in (
            bob.send("DELETE", f"/rooms/{room_id}/members/{target.username}"),
            plain_form(bob, f"/rooms/{room_id}/members/{target.username}/remove"),
        ):
            assert response.status_code == 403, response.text
            assert OWNER_REMOVES in parse(response.text).text
    response = bob.send("POST", f"/rooms/{room_id}/settings", {"name": "bob's now"})
    assert response.status_code == 403
    assert alert_of(response.text) == OWNER_RENAMES
    assert member_ids(db, room_id) == {user_id(db, alice), bob_id, carol_id}
    assert room_doc(db, room_id)["name"] == name
    assert carol.username in members_listed(bob.page(f"/rooms/{room_id}"))
    # Someone not in the room cannot be removed from it.
    outsider = make_person()
    response = alice.send("DELETE", f"/rooms/{room_id}/members/{outsider.username}")
    assert response.status_code == 404
    assert alert_of(response.text) == f"There is nobody called {outsider.username} in this room."
    # The owner removes anyone.
    response = alice.send("DELETE", f"/rooms/{room_id}/members/{bob.username}")
    assert response.status_code == 200, response.text
    assert member_ids(db, room_id) == {user_id(db, alice), carol_id}
    assert bob.client.get(f"/rooms/{room_id}").status_code == 404  # a private room: gone
    add_to_room(alice, room_id, bob)  # back, and now the newest member
    # The owner leaves: the longest-standing member owns the room, and can now do what owners do.
    response = alice.send("POST", f"/rooms/{room_id}/leave")
    assert response.status_code == 200, response.text
    assert room_doc(db, room_id)["owner_id"] == carol_id
    assert alice.client.get(f"/rooms/{room_id}").status_code == 404
    page = carol.page(f"/rooms/{room_id}")
    assert "(owner)" in members_listed(page)[carol.username].text
    assert remove_buttons(page.one("ul", id="members")) == [f"Remove {bob.username}"]
    assert page.find("form", class_="room-settings") is not None
    new_name = unique("Carols")
    response = carol.send("POST", f"/rooms/{room_id}/settings", {"name": new_name, "topic": "hers"})
    assert response.status_code == 200, response.text
    assert (room_doc(db, room_id)["name"], room_doc(db, room_id)["topic"]) == (new_name, "hers")
    response = carol.send("DELETE", f"/rooms/{room_id}/members/{bob.username}")
    assert response.status_code == 200, response.text
    assert member_ids(db, room_id) == {carol_id}
    assert room_doc(db, room_id)["archived"] is False


def test_the_last_to_leave_archives_the_room(make_person: MakePerson, db: Db) -> None:
    alice, bob, carol = make_person(), make_person(), make_person()
    name = unique("Fading")
    room_id = create_room(alice, name, topic="soon gone", open=True)
    mid = post_in_room(alice, room_id, "the last words")
    assert bob.send("POST", f"/rooms/{room_id}/join").status_code == 201
    assert browse(carol)[room_id].count == "2 members"
    assert alice.send("POST", f"/rooms/{room_id}/leave").status_code == 200
    assert room_doc(db, room_id)["owner_id"] == user_id(db, bob)
    assert browse(carol)[room_id].count == "1 member"
    assert bob.send("POST", f"/rooms/{room_id}/leave").status_code == 200
    room = room_doc(db, room_id)
    assert (room["archived"], room["owner_id"]) == (True, "")
    assert memberships(db, room_id) == []
    # Gone from "Browse rooms", and a 404 on every route for everyone, as if it never was.
    assert room_id not in browse(carol)
    unknown_id = str(ObjectId())
    for someone in (alice, carol):
        for path in (f"/rooms/{room_id}", f"/rooms/{room_id}/join"):
            method = "GET" if path.endswith(room_id) else "POST"
            archived, unknown = (
                someone.send(method, path.replace(room_id, target))
                for target in (room_id, unknown_id)
            )
            assert archived.status_code == 404, (someone.username, path)
            assert comparable(archived) == comparable(unknown), (someone.username, path)
    for method, path, data in room_routes(room_id, bob, alice):  # bob, the last to go
        archived = bob.send(method, path, data)
        unknown = bob.send(method, path.replace(room_id, unknown_id), data)
        assert archived.status_code == 404, (method, path, archived.text)
        assert comparable(archived) == comparable(unknown), (method, path)
    assert memberships(db, room_id) == []
    assert room_doc(db, room_id)["name"] == name
    # Its old messages are closed to their author too.
    assert alice.send("PATCH", f"/messages/{mid}", {"body": "rewritten"}).status_code == 404


async def test_the_last_two_leaving_at_once_archive_the_room(
    make_person: MakePerson, db: Db
) -> None:
    """The owner and the last other member leave at the same moment: the room is empty, so
    it must be archived, not kept with an owner who is gone."""
    alice, bob = make_person(), make_person()
    alice_id, bob_id = user_id(db, alice), user_id(db, bob)
    rooms = []
    for n in range(12):  # (bob makes half of them: ten a minute each is the limit)
        room_id = create_room(alice if n % 2 else bob)
        add_to_room(alice if n % 2 else bob, room_id, bob if n % 2 else alice)
        rooms.append(room_id)
    timeout = httpx.Timeout(10)
    async with (
        httpx.AsyncClient(
            base_url=alice.base_url,
            timeout=timeout,
            headers={"Authorization": f"Bearer {alice.token()}"},
        ) as alices,
        httpx.AsyncClient(
            base_url=bob.base_url,
            timeout=timeout,
            headers={"Authorization": f"Bearer {bob.token()}"},
        ) as bobs,
    ):
        answers = await asyncio.gather(
            *(
                client.post(f"/rooms/{room_id}/leave")
                for room_id in rooms
                for client in (alices, bobs)
            )
        )
    assert [answer.status_code for answer in answers] == [200] * len(answers)
    kept = []
    for room_id in rooms:
        assert memberships(db, room_id) == []
        room = room_doc(db, room_id)
        if not room["archived"] or room["owner_id"]:
            owner = {bob_id: "bob", alice_id: "alice"}.get(room["owner_id"], room["owner_id"])
            kept.append((room_id, f"archived={room['archived']!r}", f"owner={owner}"))
    assert kept == [], f"{len(kept)} of {len(rooms)} empty rooms kept, not archived"


# Open rooms


async def test_open_rooms_are_listed_seen_from_outside_and_joined(
    make_person: MakePerson, db: Db
) -> None:
    alice, bob = make_person(), make_person()
    name = unique("Plaza")
    room_id = create_room(alice, name, topic="everyone welcome", open=True)
    private_name = unique("Hideout")
    private_id = create_room(alice, private_name, topic="shh")
    said = post_in_room(alice, room_id, "inside talk")
    # Listed for everyone, with its topic and member count; the private one never.
    listed = browse(bob)
    assert listed[room_id] == Listed(
        name=name,
        href=f"/rooms/{room_id}",
        topic="everyone welcome",
        count="1 member",
        join=f"Join {name}",
        joined=False,
    )
    assert private_id not in listed
    assert browse(alice)[room_id].joined and browse(alice)[room_id].join is None
    for path in ("/rooms", "/"):
        text = bob.client.get(path).text
        assert private_id not in text and private_name not in text, path
    # An outsider sees the page: its name, a Join button, and none of its messages.
    response = bob.client.get(f"/rooms/{room_id}")
    assert response.status_code == 200
    page = parse(response.text)
    assert page.one("h1", id="conversation-title").text == name
    join = page.one("div", class_="join-room")
    assert join.one("form").attrs["action"] == f"/rooms/{room_id}/join"
    assert join.one("button").text == "Join"
    assert page.find_all(role="log") == [] and page.find("form", id="composer") is None
    assert "inside talk" not in response.text and said not in response.text
    assert room_id not in sidebar_rooms(page)
    # Until he joins, he reads and writes nothing there.
    count = db["message"].count_documents({"room_id": room_id})
    fetched = bob.client.get(f"/rooms/{room_id}/messages", headers={"HX-Request": "true"})
    assert fetched.status_code == 403 and "inside talk" not in fetched.text
    refused = bob.send("POST", f"/rooms/{room_id}/messages", {"body": "let me in"})
    assert refused.status_code == 403
    assert alert_of(refused.text) == "Join this room to read and write in it."
    assert bob.send("POST", f"/rooms/{room_id}/typing").status_code == 403
    assert bob.send("POST", f"/rooms/{room_id}/read").status_code == 403
    added = bob.send("POST", f"/rooms/{room_id}/members", {"username": bob.username})
    assert added.status_code == 403
    assert bob.send("POST", f"/rooms/{room_id}/settings", {"name": "mine"}).status_code == 403
    assert db["message"].count_documents({"room_id": room_id}) == count
    assert member_ids(db, room_id) == {user_id(db, alice)}
    # Joining: 201 and the room opens; his stream hears of it; then he posts.
    bob_id = user_id(db, bob)
    async with (
        open_stream(bob.base_url, cookie=bob.cookie) as bob_events,
        open_stream(alice.base_url, cookie=alice.cookie) as alice_events,
    ):
        joined = bob.send("POST", f"/rooms/{room_id}/join")
        assert joined.status_code == 201, joined.text
        assert joined.headers["location"] == joined.headers["hx-location"] == f"/rooms/{room_id}"
        await next_about(bob_events, "room", id=f"room-{room_id}")
        await next_about(alice_events, "member", id=f"member-{room_id}-{bob_id}")
        mid = post_in_room(bob, room_id, "hello plaza")
        assert "hello plaza" in fragment((await next_message(alice_events, mid)).data).text
    assert bob.send("POST", f"/rooms/{room_id}/join").status_code == 200  # in already
    assert member_ids(db, room_id) == {user_id(db, alice), bob_id}
    listed = browse(bob)
    assert (listed[room_id].count, listed[room_id].joined, listed[room_id].join) == (
        "2 members",
        True,
        None,
    )
    page = bob.page(f"/rooms/{room_id}")
    log = page.one(role="log")
    assert log.find("article", id=f"msg-{said}") is not None
    assert log.find("article", id=f"msg-{mid}") is not None
    # The private room still answers 404 to him, joining included.
    assert bob.send("POST", f"/rooms/{private_id}/join").status_code == 404
    assert bob_id not in member_ids(db, private_id)


def test_joining_and_leaving_by_plain_forms(make_person: MakePerson, db: Db) -> None:
    alice, bob = make_person(), make_person()
    room_id = create_room(alice, open=True)
    response = plain_form(bob, f"/rooms/{room_id}/join")
    assert (response.status_code, response.headers["location"]) == (303, f"/rooms/{room_id}")
    response = plain_form(bob, f"/rooms/{room_id}/leave")
    assert (response.status_code, response.headers["location"]) == (303, "/")
    response = plain_form(alice, f"/rooms/{room_id}/members", {"username": bob.username})
    assert (response.status_code, response.headers["location"]) == (303, f"/rooms/{room_id}")
    assert member_ids(db, room_id) == {user_id(db, alice), user_id(db, bob)}
    response = plain_form(alice, f"/rooms/{room_id}/settings", {"name": "Renamed plainly"})
    assert (response.status_code, response.headers["location"]) == (303, f"/rooms/{room_id}")
    response = plain_form(bob, f"/rooms/{room_id}/messages", {"body": "plain words"})
    assert response.status_code == 303
    assert response.headers["location"].startswith(f"/rooms/{room_id}#msg-")


# Bad input

# Names that show nothing: each is refused as a name of spaces is.
INVISIBLE_NAMES = {
    "zero-width spaces": "\u200b\u200b\u200b",
    "word joiner and BOM": "\u2060\ufeff",
    "soft hyphens": "\u00ad\u00ad",
    "joiners": "\u200c\u200d\u200c",
    "tag letters": "\U000e0041\U000e0042\U000e007f",
    "mixed with spaces": " \u200b \u2060 \u00a0 \u3000 ",
    "Hangul fillers": "\u3164\u115f",
    "variation selectors": "\ufe0f\ufe0e",
    "blank Braille": "\u2800\u2800",
}


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"name": ""}, NO_NAME),
        ({"name": " \t\n "}, NO_NAME),
        ({}, NO_NAME),
        ({"name": "x" * 65}, LONG_NAME),
        ({"name": "fine", "topic": "t" * 201}, LONG_TOPIC),
        ({"name": "x" * 65, "topic": "t" * 201}, LONG_NAME),
        *(({"name": name}, NO_NAME) for name in INVISIBLE_NAMES.values()),
    ],
    ids=["empty", "blank", "missing", "name 65", "topic 201", "both", *INVISIBLE_NAMES],
)
def test_a_bad_room_is_refused_and_nothing_is_made(
    regular: tuple[Person, str], db: Db, data: dict[str, str], message: str
) -> None:
    person, token = regular
    me = user_id(db, person)

    def counts() -> tuple[int, ...]:
        return (
            db["room"].count_documents({}),
            db["membership"].count_documents({}),
            db["membership"].count_documents({"user_id": me}),
            db["room"].count_documents({"owner_id": me}),
            db["room_sequences"].count_documents({}),
        )

    before = counts()
    response = person.send("POST", "/rooms", data)
    assert (response.status_code, alert_of(response.text)) == (400, message)
    assert "location" not in response.headers
    # A plain form is shown again, saying what is wrong and keeping what was typed.
    plain = plain_form(person, "/rooms", data)
    assert plain.status_code == 400
    page = parse(plain.text)
    assert [alert.text for alert in page.find_all(role="alert")] == [message]
    form = page.one("form", action="/rooms")
    assert form.one("input", name="name").attrs.get("value", "") == data.get("name", "")
    assert form.one("input", name="topic").attrs.get("value", "") == data.get("topic", "")
    with bearer_client(person, token) as client:
        response = client.post("/rooms", data=data)
    assert (response.status_code, response.json()) == (400, {"error": message})
    assert counts() == before


def test_the_longest_name_and_topic_are_taken(regular: tuple[Person, str], db: Db) -> None:
    person, _ = regular
    name, topic = "n" * 63 + "é", "t" * 199 + "é"
    room_id = create_room(person, f"  {name}  ", topic=f" {topic} ")
    room = room_doc(db, room_id)
    assert (room["name"], room["topic"]) == (name, topic)


def test_refused_changes_to_a_room_change_nothing(make_person: MakePerson, db: Db) -> None:
    alice, bob = make_person(), make_person()
    room_id = create_room(alice, unique("Steady"), topic="steady topic")
    add_to_room(alice, room_id, bob)
    room = room_doc(db, room_id)
    members = memberships(db, room_id)
    nobody = "nobody_here_ever"
    refusals = [
        (alice, "POST", "settings", {"name": ""}, 400, NO_NAME),
        (alice, "POST", "settings", {"name": "y" * 65}, 400, LONG_NAME),
        *((alice, "POST", "settings", {"name": n}, 400, NO_NAME) for n in INVISIBLE_NAMES.values()),
        (alice, "POST", "settings", {"name": "ok", "topic": "z" * 201}, 400, LONG_TOPIC),
        (bob, "POST", "settings", {"name": "bob's"}, 403, OWNER_RENAMES),
        (alice, "POST", "members", {"username": nobody}, 404, f"There is no user called {nobody}."),
        (
            alice,
            "POST",
            "members",
            {"username": "no such!"},
            404,
            "There is no user called by that name.",
        ),
        (alice, "POST", "members", {"username": ""}, 404, "There is no user called by that name."),
        (
            alice,
            "DELETE",
            f"members/{nobody}",
            {},
            404,
            f"There is nobody called {nobody} in this room.",
        ),
        (bob, "DELETE", f"members/{alice.username}", {}, 403, OWNER_REMOVES),
    ]
    for who, method, route, data, status, message in refusals:
        response = who.send(method, f"/rooms/{room_id}/{route}", data)
        assert (response.status_code, alert_of(response.text)) == (status, message), route
    # Adding someone who is in already: 200, and their membership is as it was.
    for name in (bob.username, bob.username.upper(), alice.username):
        response = alice.send("POST", f"/rooms/{room_id}/members", {"username": name})
        assert response.status_code == 200, (name, response.text)
    # Without the CSRF token (or with another session's), nothing at all, on every route.
    outsider = make_person()
    forged = [
        ("POST", "messages", {"body": "forged words"}),
        ("POST", "read", {}),
        ("POST", "typing", {}),
        ("POST", "settings", {"name": "forged"}),
        ("POST", "members", {"username": outsider.username}),
        ("DELETE", f"members/{bob.username}", {}),
        ("POST", f"members/{bob.username}/remove", {}),
        ("POST", "leave", {}),
        ("POST", "mute", {"muted": "on"}),
    ]
    messages = db["message"].count_documents({"room_id": room_id})
    for method, route, data in forged:
        for token in ({}, {"csrf_token": bob.csrf}, {"csrf_token": "forged"}):
            response = alice.client.request(
                method, f"/rooms/{room_id}/{route}", data={**data, **token}
            )
            assert response.status_code == 403, (route, token)
    joined = outsider.client.post(f"/rooms/{room_id}/join")  # a private room: the token first
    assert joined.status_code == 403
    response = alice.client.post("/rooms", data={"name": "forged room"})
    assert response.status_code == 403
    assert db["room"].count_documents({"name": "forged room"}) == 0
    assert room_doc(db, room_id) == room
    assert memberships(db, room_id) == members
    assert db["message"].count_documents({"room_id": room_id}) == messages
    assert db["typing"].count_documents({"room_id": room_id}) == 0
    assert db["room_mutes"].count_documents({"room_id": room_id}) == 0
    # Wrong methods: 405, and nothing changes either.
    for method, route in [
        ("PUT", ""),
        ("DELETE", ""),
        ("GET", "/leave"),
        ("GET", "/join"),
        ("PUT", "/members"),
        ("GET", f"/members/{bob.username}"),
        ("PATCH", "/settings"),
        ("DELETE", "/mute"),
    ]:
        response = alice.send(method, f"/rooms/{room_id}{route}")
        assert response.status_code == 405, (method, route)
    assert room_doc(db, room_id) == room
    assert memberships(db, room_id) == members


# Unread counts and read positions


async def test_unread_badges_count_room_messages_and_reading_clears_them(
    make_person: MakePerson, db: Db
) -> None:
    alice, bob = make_person(), make_person()
    room_id = create_room(alice)
    add_to_room(alice, room_id, bob)
    before = memberships(db, room_id)
    room = room_doc(db, room_id)
    assert badge(bob.page(), room_id) == ("0 unread", True, "")
    async with open_stream(bob.base_url, cookie=bob.cookie) as bob_events:
        first = post_in_room(alice, room_id, "one for bob")
        await next_message(bob_events, first)
        assert badge(bob.page(), room_id) == ("1 unread", False, "1")
        for n in range(2):
            post_in_room(alice, room_id, f"more {n}")
        post_in_room(bob, room_id, "bob's own")
        page = bob.page()
        assert badge(page, room_id) == ("3 unread", False, "3")  # his own never counts
        assert page.one("title").text.startswith("(3) ")
        assert badge(alice.page(), room_id) == ("1 unread", False, "1")
        # Posting wrote one message and moved the room's counter, nothing else.
        messages = list(db["message"].find({"room_id": room_id}, sort=[("seq", 1)]))
        assert [m["seq"] for m in messages] == [1, 2, 3, 4]
        assert sequence(db, room_id) == len(messages) == 4
        assert memberships(db, room_id) == before
        assert all(m["read_seq"] == 0 for m in before)
        assert room_doc(db, room_id) == room
        # Reading: 204, the read event for his other tabs, and the badge is gone.
        assert bob.send("POST", f"/rooms/{room_id}/read").status_code == 204
        read = await bob_events.until("read", lambda e: read_room(e) == room_id)
        state = json.loads(read[-1].data)  # read up to 4, none left
        assert state == {"key": room_id, "read_seq": 4, "unread": 0, "upto": 4, "mentions": 0}
    bobs = db["membership"].find_one({"_id": f"{room_id}:{user_id(db, bob)}"})
    assert bobs is not None and bobs["read_seq"] == 4
    assert badge(bob.page(), room_id) == ("0 unread", True, "")
    assert badge(alice.page(), room_id) == ("1 unread", False, "1")
    # Opening the room reads nothing by itself (its page says what was seen), reading does.
    alice.page(f"/rooms/{room_id}")
    assert badge(alice.page(), room_id) == ("1 unread", False, "1")
    assert alice.send("POST", f"/rooms/{room_id}/read").status_code == 204
    assert badge(alice.page(), room_id) == ("0 unread", True, "")
    # A deleted message is no longer unread.
    gone = post_in_room(alice, room_id, "soon deleted")
    assert badge(bob.page(), room_id) == ("1 unread", False, "1")
    assert alice.send("DELETE", f"/messages/{gone}").status_code == 200
    assert badge(bob.page(), room_id) == ("0 unread", True, "")


async def test_a_new_members_count_is_the_same_live_and_after_a_reload(
    make_person: MakePerson,
) -> None:
    """DESIGN, "Being told": reloading never loses or invents a count. Someone added to a room
    with history gets its sidebar entry live; a reload then shows the same badge."""
    alice, bob = make_person(), make_person()
    room_id = create_room(alice)
    for n in range(2):
        post_in_room(alice, room_id, f"history {n}")
    async with open_stream(bob.base_url, cookie=bob.cookie) as bob_events:
        add_to_room(alice, room_id, bob)
        live = fragment((await next_about(bob_events, "room", id=f"room-{room_id}")).data)
    span = live.one("span", class_="badge")
    live_badge = (span.attrs.get("aria-label"), span.has("hidden"), span.text)
    assert badge(bob.page(), room_id) == live_badge
    # What comes after he joined counts, and only that.
    post_in_room(alice, room_id, "the first he has not read")
    assert badge(bob.page(), room_id) == ("1 unread", False, "1")


# Messages: edits, deletes, pages


async def test_editing_and_deleting_in_a_room_and_not_after_leaving_it(
    make_person: MakePerson, db: Db
) -> None:
    alice, bob, carol = make_person(), make_person(), make_person()
    room_id = create_room(alice)
    add_to_room(alice, room_id, bob)
    async with (
        open_stream(alice.base_url, cookie=alice.cookie) as alice_events,
        open_stream(carol.base_url, cookie=carol.cookie) as carol_events,
    ):
        mid = post_in_room(bob, room_id, "first draft")
        await next_message(alice_events, mid)
        edited = bob.send("PATCH", f"/messages/{mid}", {"body": "second draft"})
        assert edited.status_code == 200, edited.text
        assert "second draft" in edited.text and "edited" in edited.text
        event = await alice_events.until(
            "message", lambda e: "second draft" in fragment(e.data).text
        )
        assert fragment(event[-1].data).attrs["data-conversation"] == room_id
        assert alice.send("PATCH", f"/messages/{mid}", {"body": "alice's"}).status_code == 403
        deleted = bob.send("DELETE", f"/messages/{mid}")
        assert deleted.status_code == 200 and "message deleted" in deleted.text
        event = await alice_events.until(
            "message", lambda e: "message deleted" in fragment(e.data).text
        )
        assert about(event[-1], id=f"msg-{mid}") and "second draft" not in event[-1].data
        await assert_no_room_messages_before_marker(alice, carol_events, room_id)
    # Once removed, his old message there is closed to him.
    kept = post_in_room(bob, room_id, "said while a member")
    assert alice.send("DELETE", f"/rooms/{room_id}/members/{bob.username}").status_code == 200
    for response in (
        bob.send("PATCH", f"/messages/{kept}", {"body": "rewritten"}),
        bob.send("DELETE", f"/messages/{kept}"),
        bob.client.get(f"/messages/{kept}/edit", headers={"HX-Request": "true"}),
        plain_form(bob, f"/messages/{kept}/edit", {"body": "rewritten"}),
        plain_form(bob, f"/messages/{kept}/delete"),
    ):
        assert response.status_code == 404, response.text
    message = db["message"].find_one({"_id": ObjectId(kept)})
    assert message is not None
    assert (message["body"], message["deleted"], message.get("edited_at")) == (
        "said while a member",
        False,
        None,
    )


def test_room_messages_page_like_the_public_room(make_person: MakePerson) -> None:
    alice, bob = make_person(), make_person()
    room_id = create_room(alice)
    other = create_room(alice)
    ids = [post_in_room(alice, room_id, f"page {n}") for n in range(3)]
    elsewhere = post_in_room(alice, other, "in another room")
    listed = alice.client.get(f"/rooms/{room_id}/messages", headers={"HX-Request": "true"})
    assert listed.status_code == 200
    found = [a.attrs["data-id"] for a in parse(listed.text).find_all("article")]
    assert found == ids
    older = alice.client.get(
        f"/rooms/{room_id}/messages", params={"before": ids[2]}, headers={"HX-Request": "true"}
    )
    assert [a.attrs["data-id"] for a in parse(older.text).find_all("article")] == ids[:2]
    wrong = alice.client.get(
        f"/rooms/{room_id}/messages", params={"before": elsewhere}, headers={"HX-Request": "true"}
    )
    assert wrong.status_code == 404
    outsider = bob.client.get(f"/rooms/{room_id}/messages", headers={"HX-Request": "true"})
    assert outsider.status_code == 404


# Renaming


async def test_a_rename_reaches_every_member_live_and_nobody_else(
    make_person: MakePerson, db: Db
) -> None:
    alice, bob, carol = make_person(), make_person(), make_person()
    room_id = create_room(alice, unique("Before"), topic="old topic")
    add_to_room(alice, room_id, bob)
    carols = create_room(carol)
    async with (
        open_stream(alice.base_url, cookie=alice.cookie) as alice_events,
        open_stream(bob.base_url, cookie=bob.cookie) as bob_events,
        open_stream(carol.base_url, cookie=carol.cookie) as carol_events,
    ):
        name = unique("After")
        response = alice.send(
            "POST", f"/rooms/{room_id}/settings", {"name": name, "topic": "new topic"}
        )
        assert response.status_code == 200, response.text
        assert response.headers["location"] == f"/rooms/{room_id}"
        for stream in (alice_events, bob_events):
            entry = fragment((await next_about(stream, "room", data_name=name)).data)
            assert (entry.attrs["id"], entry.attrs["data-name"]) == (f"room-{room_id}", name)
            assert entry.one("a").attrs["data-topic"] == "new topic"
            assert entry.one("span", class_="name").text == name
        carols_name = unique("Hers")
        hers = carol.send("POST", f"/rooms/{carols}/settings", {"name": carols_name})
        assert hers.status_code == 200
        seen = await carol_events.until("room", lambda e: about(e, data_name=carols_name))
        assert [e for e in seen if room_id in e.data] == []
    page = bob.page(f"/rooms/{room_id}")
    assert page.one("h1", id="conversation-title").text == name
    assert page.one("p", id="room-topic").text == "new topic"
    assert sidebar_rooms(page)[room_id].attrs["data-name"] == name


# Bearer clients


async def test_bearer_clients_use_every_room_route(make_person: MakePerson, db: Db) -> None:
    alice, bob = make_person(), make_person()
    bob_id = user_id(db, bob)
    bob_token = bob.token()
    with bearer_client(alice) as client:
        response = client.post(
            "/rooms", data={"name": unique("Api"), "topic": "by script", "open": "on"}
        )
        assert response.status_code == 201, response.text
        room_id = response.headers["location"].removeprefix("/rooms/")
        async with open_stream(bob.base_url, token=bob_token) as bob_events:
            added = client.post(f"/rooms/{room_id}/members", data={"username": bob.username})
            assert added.status_code == 201, added.text
            assert added.headers["location"] == f"/rooms/{room_id}"
            again = client.post(f"/rooms/{room_id}/members", data={"username": bob.username})
            assert again.status_code == 200  # in already: nothing changes
            await next_about(bob_events, "room", id=f"room-{room_id}")
            sent = client.post(f"/rooms/{room_id}/messages", data={"body": "from a script"})
            assert sent.status_code == 201, sent.text
            mid = message_id(sent.text)
            said = fragment((await next_message(bob_events, mid)).data)
            assert "from a script" in said.text
            assert client.post(f"/rooms/{room_id}/typing").status_code == 204
            await next_about(bob_events, "typing", data_conversation=room_id)
        page = client.get(f"/rooms/{room_id}")
        assert page.status_code == 200 and "from a script" in page.text
        listed = client.get(f"/rooms/{room_id}/messages", headers={"HX-Request": "true"})
        assert listed.status_code == 200 and mid in listed.text
        assert client.post(f"/rooms/{room_id}/read").status_code == 204
        renamed = client.post(f"/rooms/{room_id}/settings", data={"name": "Scripted"})
        assert renamed.status_code == 200
        assert room_doc(db, room_id)["name"] == "Scripted"
        assert room_id in client.get("/rooms").text
        # Its errors are JSON.
        missing = client.post(f"/rooms/{room_id}/members", data={"username": "nobody_at_all_x"})
        assert (missing.status_code, missing.json()) == (
            404,
            {"error": "There is no user called nobody_at_all_x."},
        )
        unknown = client.get(f"/rooms/{ObjectId()}")
        assert (unknown.status_code, unknown.json()) == (404, {"error": NO_SUCH_ROOM})
        removed = client.delete(f"/rooms/{room_id}/members/{bob.username}")
        assert removed.status_code == 200, removed.text
        assert member_ids(db, room_id) == {user_id(db, alice)}
        with bearer_client(bob, bob_token) as bobs:
            assert bobs.post(f"/rooms/{room_id}/join").status_code == 201
            said = bobs.post(f"/rooms/{room_id}/messages", data={"body": "bob by script"})
            assert said.status_code == 201
            assert bobs.post(f"/rooms/{room_id}/leave").status_code == 200
        assert bob_id not in member_ids(db, room_id)
        left = client.post(f"/rooms/{room_id}/leave")
        assert (left.status_code, left.headers["location"]) == (200, "/")
        gone = client.get(f"/rooms/{room_id}")
        assert (gone.status_code, gone.json()) == (404, {"error": NO_SUCH_ROOM})


# Many open rooms (last: the hub has a few hundred changes to catch up on after it)


def test_browse_lists_an_open_room_made_after_two_hundred_others(
    make_person: MakePerson, db: Db
) -> None:
    """However many open rooms there are, one made now that sorts first by name is listed."""
    crowd, alice = make_person(), make_person()
    crowd_id = user_id(db, crowd)
    crowds = create_room(crowd, open=True)
    template = room_doc(db, crowds)
    filler = [ObjectId() for _ in range(200)]
    # Two hundred open rooms of one member each, stored as the app stores them (made here
    # directly: two hundred POSTs would be slow for nothing).
    db["room"].insert_many(
        [
            {**template, "_id": oid, "key": str(oid), "name": f"zz filler {n:03}"}
            for n, oid in enumerate(filler)
        ]
    )
    joined = template["created_at"]
    db["membership"].insert_many(
        [
            {"_id": f"{oid}:{crowd_id}", "room_id": str(oid), "user_id": crowd_id}
            | {"read_seq": 0, "joined_at": joined}
            for oid in filler
        ]
    )
    name = f"Aaa first {unique('r')}"
    room_id = create_room(alice, name, open=True)
    try:
        listed = browse(alice)
        assert room_id in listed, f"not listed among {len(listed)}"
        assert listed[room_id].name == name
    finally:
        db["room"].delete_many({"_id": {"$in": filler}})
        db["membership"].delete_many({"room_id": {"$in": [str(oid) for oid in filler]}})
        assert crowd.send("POST", f"/rooms/{crowds}/leave").status_code == 200
        assert alice.send("POST", f"/rooms/{room_id}/leave").status_code == 200
