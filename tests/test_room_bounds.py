"""Rooms at their bounds: floods of new rooms and of adds, a page's cost for someone in many
rooms with news, "Browse rooms" past its first page, and a join racing the last leave."""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from bson import ObjectId

from tests.html import Element, parse
from tests.support import (
    AppServer,
    Db,
    Person,
    StartApp,
    add_to_room,
    alert_of,
    bearer_client,
    create_room,
    member_ids,
    plain_form,
    post_in_room,
    room_doc,
    unique_name,
    user_id,
)

MakePerson = Callable[..., Person]

TOO_MANY_ROOMS = re.compile(r"You are making rooms too fast\. Try again in (\d+) seconds\.")
TOO_MANY_ADDS = re.compile(
    r"You are adding people to rooms too fast\. Try again in (\d+) seconds\."
)


@pytest.fixture(scope="module")
def strict_server(start_app: StartApp) -> AppServer:
    """Limits whose windows are a thousand times as long: what a burst admits is exact,
    however slowly the test runs."""
    return start_app(LIMIT_WINDOW_SCALE="1000")


@pytest.fixture(scope="module")
def unlimited_server(start_app: StartApp) -> AppServer:
    """Limits with windows of nothing: as many rooms and adds as a test needs."""
    return start_app(LIMIT_WINDOW_SCALE="0")


def retry_after(response: Any, pattern: re.Pattern[str], text: str) -> None:
    """A 429 saying `pattern`, whose Retry-After is the seconds the message names."""
    assert response.status_code == 429, response.text
    match = pattern.fullmatch(text)
    assert match, text
    assert response.headers["retry-after"] == match.group(1)
    assert int(match.group(1)) >= 1


# Floods


def test_ten_rooms_at_once_and_then_no_more(strict_server: AppServer, db: Db) -> None:
    alice, bob = Person.register(strict_server.url), Person.register(strict_server.url)
    with alice, bob:
        made = [create_room(alice) for _ in range(10)]
        assert len(set(made)) == 10
        owned = db["room"].count_documents({"owner_id": user_id(db, alice)})
        assert owned == 10
        refused = alice.send("POST", "/rooms", {"name": "one too many"})
        retry_after(refused, TOO_MANY_ROOMS, alert_of(refused.text))
        assert "location" not in refused.headers
        plain = plain_form(alice, "/rooms", {"name": "one too many"})
        assert plain.status_code == 429
        alerts = parse(plain.text).find_all(role="alert")
        assert [TOO_MANY_ROOMS.fullmatch(a.text) is not None for a in alerts] == [True]
        with bearer_client(alice) as script:
            answer = script.post("/rooms", data={"name": "one too many"})
        retry_after(answer, TOO_MANY_ROOMS, answer.json()["error"])
        assert db["room"].count_documents({"owner_id": user_id(db, alice)}) == 10
        assert db["room"].count_documents({"name": "one too many"}) == 0
        create_room(bob)  # a limit of each person's


def test_thirty_adds_and_then_no_more(strict_server: AppServer, db: Db) -> None:
    adder = Person.register(strict_server.url)
    people = [Person.register(strict_server.url) for _ in range(6)]
    rooms = [create_room(adder) for _ in range(6)]
    for room_id in rooms:
        for someone in people[:5]:  # 30 adds
            add_to_room(adder, room_id, someone)
    late = people[5]
    refused = adder.send("POST", f"/rooms/{rooms[0]}/members", {"username": late.username})
    retry_after(refused, TOO_MANY_ADDS, alert_of(refused.text))
    with bearer_client(adder) as script:
        answer = script.post(f"/rooms/{rooms[1]}/members", data={"username": late.username})
    retry_after(answer, TOO_MANY_ADDS, answer.json()["error"])
    assert all(user_id(db, late) not in member_ids(db, room_id) for room_id in rooms)
    # Another member has thirty adds of their own.
    add_to_room(people[0], rooms[0], late)
    assert user_id(db, late) in member_ids(db, rooms[0])
    for someone in [adder, *people]:
        someone.close()


# What a page costs


def db_commands_of_a_page(server: AppServer, someone: Person) -> float:
    """The database commands the app made for one GET / of this person's (from its metrics)."""
    key = 'chat_http_request_db_commands_sum{route="/"}'
    before = server.metrics().get(key, 0.0)
    assert someone.client.get("/").status_code == 200
    return server.metrics()[key] - before


def room_badges(page: Element) -> dict[str, str]:
    rooms = page.one("ul", id="rooms")
    return {
        str(li.attrs["id"]).removeprefix("room-"): li.one("span", class_="badge").text
        for li in rooms.find_all("li")
    }


def test_a_page_costs_the_same_however_many_rooms_have_news(
    unlimited_server: AppServer,
) -> None:
    alice, bob = Person.register(unlimited_server.url), Person.register(unlimited_server.url)
    with alice, bob:
        rooms = [create_room(bob) for _ in range(40)]
        for room_id in rooms:
            add_to_room(bob, room_id, alice)
        post_in_room(bob, rooms[0], "news in one room")
        db_commands_of_a_page(unlimited_server, alice)  # what is kept in memory is there
        with_one = db_commands_of_a_page(unlimited_server, alice)
        for room_id in rooms[1:]:
            post_in_room(bob, room_id, "news in every room")
        with_forty = db_commands_of_a_page(unlimited_server, alice)
        assert with_forty == with_one
        badges = room_badges(parse(alice.client.get("/").text))
        assert {badges[room_id] for room_id in rooms} == {"1"}


# Browsing


def browse_page(someone: Person, url: str) -> tuple[list[tuple[str, str]], str | None]:
    """The (room id, name) of a page of "Browse rooms", and the link to the next page."""
    response = someone.client.get(url)
    assert response.status_code == 200, response.text
    page = parse(response.text)
    listing = page.find("ul", class_="open-rooms")
    rooms = [
        (str(link.attrs["href"]).rsplit("/", 1)[1], link.text)
        for link in (listing.find_all("a", class_="room-name") if listing else [])
    ]
    following = page.find("a", rel="next")
    return rooms, str(following.attrs["href"]) if following else None


def test_browse_reaches_every_open_room_a_page_at_a_time(make_person: MakePerson, db: Db) -> None:
    """A hundred and twenty rooms named to sort first hide nobody: every page lists fifty,
    in order, and the last pages reach a room that sorts last."""
    alice = make_person()
    template = room_doc(db, create_room(alice, "!!! template", open=True))
    filler = [ObjectId() for _ in range(120)]
    db["room"].insert_many(
        [
            {
                **template,
                "_id": oid,
                "key": str(oid),
                "name": f"!!! {n:03}",
                "name_key": f"!!! {n:03}",
            }
            for n, oid in enumerate(filler)
        ]
    )
    last_name = f"zzzz last {unique_name('r')}"
    last = create_room(alice, last_name, open=True)
    try:
        listed: list[tuple[str, str]] = []
        url: str | None = "/rooms"
        pages = 0
        while url is not None:
            rooms, url = browse_page(alice, url)
            assert len(rooms) == 50 or url is None
            listed += rooms
            pages += 1
        ids = [room_id for room_id, _ in listed]
        assert len(ids) == len(set(ids))  # nothing twice
        names = [name.casefold() for _, name in listed]
        assert names == sorted(names)
        assert {str(oid) for oid in filler} <= set(ids)
        assert (last, last_name) in listed
        assert pages >= 3
        # A filter by part of the name finds it on the first page.
        part = last_name.split()[-1].upper()
        found, following = browse_page(alice, f"/rooms?q={part}")
        assert (found, following) == ([(last, last_name)], None)
    finally:
        db["room"].delete_many({"_id": {"$in": filler}})


@pytest.mark.parametrize(
    ("query", "status"),
    [
        ("?after=000000000000000000000000", 404),  # no such room
        ("?after=not-an-id", 404),
        ("?q=" + "x" * 65, 400),
    ],
)
def test_bad_browse_pages_are_refused(person: Person, query: str, status: int) -> None:
    response = person.client.get("/rooms" + query, headers={"Accept": "text/html"})
    assert response.status_code == status


def test_a_filter_that_matches_nothing_says_so_and_is_text(person: Person) -> None:
    response = person.client.get("/rooms", params={"q": "<b>.*[nothing"})
    assert response.status_code == 200
    page = parse(response.text)
    assert page.find("ul", class_="open-rooms") is None
    assert "No open room's name holds “<b>.*[nothing”." in page.text
    assert page.find("b") is None


# A join racing the last leave


def test_a_join_racing_the_last_leave_gets_a_living_room_or_none(
    unlimited_server: AppServer, db: Db
) -> None:
    owner, joiner = Person.register(unlimited_server.url), Person.register(unlimited_server.url)
    joiner_id = user_id(db, joiner)
    outcomes: Counter[int] = Counter()
    with owner, joiner, ThreadPoolExecutor(2) as pool:
        for _ in range(40):
            room_id = create_room(owner, open=True)
            joined = pool.submit(joiner.send, "POST", f"/rooms/{room_id}/join")
            left = pool.submit(owner.send, "POST", f"/rooms/{room_id}/leave")
            assert left.result().status_code == 200
            status = joined.result().status_code
            room = room_doc(db, room_id)
            if status == 201:  # a living room, the joiner its owner, in which they post
                assert (room["archived"], room["owner_id"]) in ((False, joiner_id), (0, joiner_id))
                assert member_ids(db, room_id) == {joiner_id}
                post_in_room(joiner, room_id, "still here")
            else:  # as for an archived room
                assert status == 404
                assert room["archived"] and room["owner_id"] == ""
                assert member_ids(db, room_id) == set()
            outcomes[status] += 1
    assert sum(outcomes.values()) == 40
