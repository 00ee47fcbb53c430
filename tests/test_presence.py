"""Presence, away messages, typing notices and unread counts over real HTTP and SSE."""

from __future__ import annotations

import asyncio
import contextlib
import json
import signal
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from tests.html import Element, fragment
from tests.support import (
    AppServer,
    Db,
    Person,
    StartApp,
    dm_key,
    entry_of,
    message_id,
    open_stream,
    person_event,
    presence_count,
    unread_badge,
    user_id,
    wait_for,
)
from webapp.web.sidebar import OFFLINE_LIMIT

MakePerson = Callable[..., Person]


def people_entries(page: Element, which: str = "") -> list[Element]:
    """The people's entries in the sidebar (its online or offline list, or both)."""
    lists = page.find_all("ul", class_="people-list")
    return [
        li
        for ul in lists
        if not which or which in ul.classes
        for li in ul.find_all("li")
        if li.get("id").startswith("person-")
    ]


def names_in(page: Element, which: str) -> list[str]:
    """The usernames in the sidebar's online or offline list."""
    return [li.get("data-username") for li in people_entries(page, which)]


def entry_named(page: Element, username: str) -> Element:
    [entry] = [li for li in people_entries(page) if li.get("data-username") == username]
    return entry


def title(page: Element) -> str:
    return page.one("title").text


@pytest.fixture(scope="module")
def quick_expiry_servers(start_app: StartApp) -> tuple[AppServer, AppServer]:
    """Two processes whose presence lapses after 2 s without a heartbeat."""
    one, two = start_app.together(*[{"PRESENCE_TTL_SECS": "2"}] * 2)
    return one, two


async def test_signing_in_shows_online_once_across_tabs(make_person: MakePerson, db: Db) -> None:
    carol, bob, dave = make_person(), make_person(), make_person()
    async with open_stream(carol.base_url, token=carol.token()) as carol_events:
        bob_token = bob.token()
        async with open_stream(bob.base_url, token=bob_token):
            await person_event(carol_events, bob.username, status="online")
            assert names_in(carol.page(), "online").count(bob.username) == 1
            async with open_stream(bob.base_url, token=bob_token):
                wait_for(lambda: presence_count(db, bob) == 2, what="bob's second tab")
            # One tab closed: bob is still online, so nobody is told anything. Presence
            # changes are handled in order, so the next event about either is dave's.
            wait_for(lambda: presence_count(db, bob) == 1, what="bob's second tab gone")
            async with open_stream(dave.base_url, token=dave.token()):
                while True:  # (people of earlier tests may still be coming and going)
                    event = entry_of((await carol_events.next_named("person")).data)
                    assert event["username"] != bob.username, event
                    if (event["username"], event["status"]) == (dave.username, "online"):
                        break  # (dave's first entry, from when he registered, may come first)
                assert names_in(carol.page(), "online").count(bob.username) == 1
        # Last tab closed: bob goes offline, with a "last seen".
        await person_event(carol_events, bob.username, status="offline")
        page = carol.page()
        assert bob.username in names_in(page, "offline")
        assert bob.username not in names_in(page, "online")
        assert "last seen" in entry_named(page, bob.username).text


async def test_a_new_stream_learns_of_people_announced_just_before_it(
    make_person: MakePerson,
) -> None:
    """A page rendered just before a presence batch went out, whose stream opened just after
    it, still hears of it: a new stream starts with the batches of the last few seconds."""
    alice, bob, carol = make_person(), make_person(), make_person()
    async with (
        open_stream(alice.base_url, token=alice.token()) as alice_events,
        open_stream(bob.base_url, token=bob.token()),
    ):
        await person_event(alice_events, bob.username, status="online")  # it went out
        async with open_stream(carol.base_url, token=carol.token()) as carol_events:
            await person_event(carol_events, bob.username, status="online")


async def test_presence_crosses_processes(
    make_person: MakePerson, quick_expiry_servers: tuple[AppServer, AppServer]
) -> None:
    one, two = quick_expiry_servers
    carol = make_person(one.url)
    bob = make_person(two.url)
    async with open_stream(one.url, token=carol.token()) as carol_events:
        async with open_stream(two.url, token=bob.token()):
            await person_event(carol_events, bob.username, status="online")
        await person_event(carol_events, bob.username, status="offline")


async def test_killed_process_users_go_offline(
    make_person: MakePerson,
    start_app: StartApp,
    quick_expiry_servers: tuple[AppServer, AppServer],
) -> None:
    survivor, _ = quick_expiry_servers
    doomed = start_app(PRESENCE_TTL_SECS="2")
    carol = make_person(survivor.url)
    bob = make_person(doomed.url)
    bob_token = bob.token()

    async def bob_online_until_the_process_dies() -> None:
        with contextlib.suppress(httpx.HTTPError, ConnectionError):
            async with open_stream(doomed.url, token=bob_token) as stream:
                while True:
                    await stream.next(timeout=60)

    bob_tab = asyncio.create_task(bob_online_until_the_process_dies())
    try:
        async with open_stream(survivor.url, token=carol.token()) as carol_events:
            await person_event(carol_events, bob.username, status="online")
            doomed.stop(signal.SIGKILL)  # no goodbye
            await asyncio.wait_for(bob_tab, 10)
            await person_event(carol_events, bob.username, status="offline", timeout=15)
    finally:
        bob_tab.cancel()
        doomed.stop()


async def test_away_message_is_seen_live(make_person: MakePerson) -> None:
    carol, bob = make_person(), make_person()
    async with open_stream(carol.base_url, token=carol.token()) as carol_events:
        response = bob.send("POST", "/away", {"away_message": "At lunch, back at 2"})
        assert response.status_code == 200
        await person_event(carol_events, bob.username, away="At lunch, back at 2")
        # The DM page with bob shows it at the top.
        page = carol.page(f"/dm/{bob.username}")
        assert page.one(id="peer-away").text == "Away: At lunch, back at 2"
        # Clearing it is seen too.
        bob.send("POST", "/away", {"away_message": ""})
        await person_event(carol_events, bob.username, away="")


def test_away_message_over_200_characters_is_refused(person: Person) -> None:
    person.send("POST", "/away", {"away_message": "short and sweet"})
    response = person.send("POST", "/away", {"away_message": "x" * 201})
    assert response.status_code == 400
    assert "200 characters" in response.text
    away = person.page().one("input", name="away_message")
    assert away.get("value") == "short and sweet"


@pytest.mark.parametrize(
    "content",
    [{}, {"content": b"away_message=hi", "headers": {"Content-Type": "text/plain"}}],
    ids=["no field", "not a form"],
)
def test_away_without_an_away_message_changes_nothing(
    person: Person, content: dict[str, object]
) -> None:
    person.send("POST", "/away", {"away_message": "kept"})
    headers = {"X-CSRF-Token": person.csrf, "HX-Request": "true"}
    headers.update(content.pop("headers", {}))  # type: ignore[arg-type]
    response = person.client.post("/away", headers=headers, **content)  # type: ignore[arg-type]
    assert response.status_code in (400, 415)
    assert person.page().one("input", name="away_message").get("value") == "kept"


def test_away_without_csrf_is_refused(person: Person) -> None:
    response = person.client.post("/away", data={"away_message": "forged"})
    assert response.status_code == 403
    assert "forged" not in person.client.get("/").text


async def test_typing_reaches_the_conversation_only(make_person: MakePerson) -> None:
    alice, bob, carol = make_person(), make_person(), make_person()
    async with (
        open_stream(alice.base_url, token=alice.token()) as alice_events,
        open_stream(carol.base_url, token=carol.token()) as carol_events,
        open_stream(bob.base_url, token=bob.token()) as bob_events,
    ):
        assert bob.send("POST", f"/dm/{alice.username}/typing").status_code == 204
        notice = fragment((await alice_events.next_named("typing")).data)
        assert notice.text == f"{bob.username} is typing…"
        assert notice.get("data-conversation").startswith("dm:")
        # Carol's next typing notice is a later public one: the DM notice never reached her.
        assert bob.send("POST", "/rooms/public/typing").status_code == 204
        public = fragment((await carol_events.next_named("typing")).data)
        assert public.get("data-conversation") == "public"
        # The typist is not told about their own typing.
        alice.send("POST", "/rooms/public/typing")
        notice = fragment((await bob_events.next_named("typing")).data)
        assert notice.get("data-username") == alice.username


def test_typing_needs_a_real_conversation(person: Person) -> None:
    assert person.send("POST", "/dm/nobody_here_at_all/typing").status_code == 404
    assert person.client.post("/rooms/public/typing").status_code == 403  # no CSRF token


def test_unread_counts_persist_and_clear(make_person: MakePerson) -> None:
    alice, bob = make_person(), make_person()
    for n in range(2):
        assert bob.post_dm(alice.username, f"dm {n}").status_code == 201
    for n in range(3):
        assert bob.post_public(f"public {n}").status_code == 201
    page = alice.page(f"/dm/{alice.username}")  # somewhere else: notes to self
    assert unread_badge(page, dm_key(page, bob.username)) == 2
    assert unread_badge(page, "public") == 3
    assert title(page).startswith("(5) ")
    # Opening the DM reads nothing: its page counts them too, the DM's messages with it.
    assert title(alice.page(f"/dm/{bob.username}")).startswith("(5) ")
    # Reading it (the page posts .../read) clears its count, for every later page.
    assert alice.send("POST", f"/dm/{bob.username}/read").status_code == 204
    page = alice.page(f"/dm/{alice.username}")
    assert unread_badge(page, dm_key(page, bob.username)) == 0
    assert unread_badge(page, "public") == 3
    # So does reading the public room live (the page posts .../read).
    assert alice.send("POST", "/rooms/public/read").status_code == 204
    page = alice.page(f"/dm/{alice.username}")
    assert unread_badge(page, "public") == 0
    assert not title(page).startswith("(")
    # Your own messages never count as unread.
    alice.post_public("mine")
    page = alice.page(f"/dm/{alice.username}")
    assert unread_badge(page, "public") == 0


def test_sidebar_lists_a_bounded_offline_list_and_whoever_has_unread(
    make_person: MakePerson,
) -> None:
    alice, bob = make_person(), make_person()
    bob.post_dm(alice.username, "are you there?")
    # Enough people sign up after bob that he is no longer among the most recently seen.
    with ThreadPoolExecutor(4) as pool:  # as many at once as the app hashes passwords
        for someone in pool.map(Person.register, [alice.base_url] * (OFFLINE_LIMIT + 1)):
            someone.close()
    page = alice.page(f"/dm/{alice.username}")
    offline = names_in(page, "offline")
    assert len(offline) <= OFFLINE_LIMIT + 1  # the most recent, plus bob's unread DM
    assert bob.username in offline
    assert unread_badge(page, dm_key(page, bob.username)) == 1


def test_find_someone_opens_the_conversation(make_person: MakePerson) -> None:
    alice, bob = make_person(), make_person()
    found = alice.client.get("/dm", params={"username": bob.username})
    assert found.status_code == 303
    assert found.headers["location"] == f"/dm/{bob.username}"
    assert alice.client.get("/dm", params={"username": "no such!"}).status_code == 404
    missing = alice.client.get("/dm", params={"username": "nobody_by_that_name"})
    assert missing.status_code == 303
    assert alice.client.get(missing.headers["location"]).status_code == 404


async def test_reading_in_one_tab_clears_the_count_in_the_others(make_person: MakePerson) -> None:
    alice, bob = make_person(), make_person()
    async with open_stream(alice.base_url, token=alice.token()) as other_tab:
        bob.post_dm(alice.username, "knock knock")
        await other_tab.next_named("message")  # the tab counts it from the message itself
        page = alice.page(f"/dm/{alice.username}")
        assert unread_badge(page, dm_key(page, bob.username)) == 1
        assert alice.send("POST", f"/dm/{bob.username}/read").status_code == 204  # this tab
        read = await other_tab.next_named("read")
        state = json.loads(read.data)
        assert state["key"] == dm_key(page, bob.username)  # the other tab clears that count
        assert state == {"key": state["key"], "read_seq": 1, "unread": 0, "upto": 1, "mentions": 0}


def test_away_message_shows_even_when_offline(make_person: MakePerson) -> None:
    alice, bob = make_person(), make_person()
    assert bob.send("POST", "/away", {"away_message": "On holiday"}).status_code == 200
    page = alice.page()
    assert bob.username in names_in(page, "offline")
    assert entry_named(page, bob.username).one("span", class_="away-note").text == "On holiday"


def test_opening_a_read_conversation_writes_nothing(make_person: MakePerson, db: Db) -> None:
    alice, bob = make_person(), make_person()
    bob.post_dm(alice.username, "one")
    assert alice.send("POST", f"/dm/{bob.username}/read").status_code == 204
    query = {"user_id": user_id(db, alice)}
    before = list(db["membership"].find(query))
    assert before
    alice.page(f"/dm/{bob.username}")  # opening it writes nothing
    # Reading it again, with nothing new: no write, no refresh for tabs.
    assert alice.send("POST", f"/dm/{bob.username}/read").status_code == 204
    assert list(db["membership"].find(query)) == before


def test_marking_read_is_refused_without_csrf_or_a_real_conversation(
    make_person: MakePerson,
) -> None:
    alice, bob = make_person(), make_person()
    bob.post_dm(alice.username, "unread until alice reads it")
    assert alice.client.post(f"/dm/{bob.username}/read").status_code == 403  # no CSRF token
    assert alice.send("POST", "/dm/nobody_by_that_name/read").status_code == 404
    page = alice.page(f"/dm/{alice.username}")
    assert unread_badge(page, dm_key(page, bob.username)) == 1  # nothing was marked
    assert alice.send("POST", f"/dm/{bob.username}/read").status_code == 204
    page = alice.page(f"/dm/{alice.username}")
    assert unread_badge(page, dm_key(page, bob.username)) == 0


def test_nobody_can_set_presence_for_someone_else(make_person: MakePerson) -> None:
    alice, mallory = make_person(), make_person()
    forged = {"away_message": "hijacked", "username": alice.username, "user_id": "x" * 24}
    assert mallory.send("POST", "/away", forged).status_code == 200
    entries = {li.get("data-username"): li.get("data-away") for li in people_entries(alice.page())}
    assert entries[alice.username] == ""
    assert entries[mallory.username] == "hijacked"


@pytest.fixture(scope="module")
def crowded_server(start_app: StartApp) -> AppServer:
    """A process that counts more than one person online as a crowd, and sends what it held
    back from the crowd every 4 s."""
    return start_app(LIVE_PRESENCE_LIMIT="1", PRESENCE_REFRESH_SECS="4")


async def test_in_a_crowd_presence_is_live_only_for_those_who_share_a_room(
    make_person: MakePerson, crowded_server: AppServer
) -> None:
    """Past LIVE_PRESENCE_LIMIT online, Bob coming online reaches Alice (they share a DM) at
    once, and Carol (who shares nothing with him) only with the next slow refresh: after a
    message posted once Alice had it."""
    url = crowded_server.url
    alice, bob, carol = make_person(url), make_person(url), make_person(url)
    assert alice.post_dm(bob.username, "hello").status_code == 201
    async with (
        open_stream(url, token=alice.token()) as alice_events,
        open_stream(url, token=carol.token()) as carol_events,
    ):
        # A crowd of two: carol's own entry reaches her at once (she shares a room with
        # herself), once the process counts both of them online.
        await person_event(carol_events, carol.username, status="online")
        async with open_stream(url, token=bob.token()):
            await person_event(alice_events, bob.username, status="online")
            seen_by_carol = [entry_of(e.data) for e in carol_events.events if e.event == "person"]
            online = {"username": bob.username, "status": "online"}
            assert not [e for e in seen_by_carol if online.items() <= e.items()]  # not live
            marker = alice.post_public("after bob came online")
            assert marker.status_code == 201
            # Messages are live for everyone: had bob's entry been sent to carol live, it
            # would have been on her stream before the message.
            mid = message_id(marker.text)
            before = await carol_events.until("message", lambda e: message_id(e.data) == mid)
            entries = [entry_of(e.data) for e in before if e.event == "person"]
            assert not [e for e in entries if online.items() <= e.items()]
            await person_event(carol_events, bob.username, status="online")  # the refresh
