"""GET /events over real HTTP: who receives what, catch-up after a disconnect, two processes."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import timedelta
from types import SimpleNamespace
from typing import Any

import httpx
import pytest

from tests.html import Element, fragment
from tests.support import AppServer, Person, message_id, open_stream, page_cursor, unique_name
from webapp import settings
from webapp.data import users
from webapp.data.connection import open_database
from webapp.live import wire
from webapp.live.hub import Hub
from webapp.web import events, tokens
from webapp.web.state import AppState

MakePerson = Callable[..., Person]


def controls(message: Element) -> list[str]:
    """The buttons of a message's own controls (Edit, Delete), by their text."""
    return [b.text for b in message.find_all("button") if b.text in ("Edit", "Delete")]


def test_events_need_a_session(base_url: str) -> None:
    response = httpx.get(base_url + "/events")
    assert response.status_code == 401
    assert response.json() == {"error": "Sign in first."}


async def test_dm_reaches_both_parties_and_nobody_else(make_person: MakePerson) -> None:
    alice, bob, carol = make_person(), make_person(), make_person()
    async with (
        open_stream(alice.base_url, token=alice.token()) as alice_events,
        open_stream(bob.base_url, cookie=bob.cookie) as bob_events,
        open_stream(carol.base_url, token=carol.token()) as carol_events,
    ):
        sent = alice.post_dm(bob.username, "just between us")
        assert sent.status_code == 201
        for stream in (alice_events, bob_events):
            event = await stream.next_named("message")
            assert message_id(event.data) == message_id(sent.text)
            assert "just between us" in event.data
            assert event.id
        # Carol gets the public message posted after the DM, and never the DM itself.
        marker = alice.post_public("public after the DM")
        event = await carol_events.next_named("message")
        assert message_id(event.data) == message_id(marker.text)
        assert "just between us" not in "".join(e.data for e in carol_events.events)


async def test_dm_history_is_private(make_person: MakePerson) -> None:
    alice, bob, carol = make_person(), make_person(), make_person()
    alice.post_dm(bob.username, "private words")
    # Carol asking for "her DM with bob" sees her own (empty) conversation, not alice's.
    page = carol.client.get(f"/dm/{bob.username}/messages", headers={"HX-Request": "true"})
    assert page.status_code == 200
    assert "private words" not in page.text
    # Bob sees it in his conversation with alice.
    page = bob.client.get(f"/dm/{alice.username}/messages", headers={"HX-Request": "true"})
    assert "private words" in page.text


async def test_edit_and_delete_propagate(make_person: MakePerson) -> None:
    alice, bob = make_person(), make_person()
    async with open_stream(bob.base_url, token=bob.token()) as events:
        sent = alice.post_public("first draft")
        mid = message_id(sent.text)
        assert message_id((await events.next_named("message")).data) == mid

        edited = alice.send("PATCH", f"/messages/{mid}", {"body": "final text"})
        assert edited.status_code == 200
        event = fragment((await events.next_named("message")).data)
        assert message_id(event) == mid
        assert event.one(class_="body").text == "final text"
        assert event.by_text("edited")

        deleted = alice.send("DELETE", f"/messages/{mid}")
        assert deleted.status_code == 200
        event = await events.next_named("message")
        assert message_id(event.data) == mid
        assert fragment(event.data).one(class_="body").text == "message deleted"
        assert "final text" not in event.data


async def test_catch_up_after_disconnect_with_last_event_id(make_person: MakePerson) -> None:
    alice, bob = make_person(), make_person()
    token = bob.token()
    async with open_stream(bob.base_url, token=token) as events:
        alice.post_dm(bob.username, "before the drop")
        last_id = (await events.next_named("message")).id
    assert last_id
    missed = [alice.post_dm(bob.username, f"while away {n}") for n in range(3)]
    async with open_stream(bob.base_url, token=token, last_event_id=last_id) as events:
        received = [await events.next_named("message") for _ in range(3)]
        assert [message_id(e.data) for e in received] == [message_id(r.text) for r in missed]
        # Nothing is sent twice: the next event is the next new message.
        after = alice.post_dm(bob.username, "back again")
        assert message_id((await events.next_named("message")).data) == message_id(after.text)


async def test_catch_up_with_after_parameter(make_person: MakePerson) -> None:
    alice, bob = make_person(), make_person()
    token = bob.token()
    async with open_stream(bob.base_url, token=token) as events:
        alice.post_public("seen live")
        cursor = (await events.next_named("message")).id
    missed = alice.post_public("missed while closed")
    async with open_stream(bob.base_url, token=token, after=cursor or "") as events:
        event = await events.next_named("message")
        assert message_id(event.data) == message_id(missed.text)


async def test_a_stream_says_when_it_has_caught_up(make_person: MakePerson) -> None:
    """A `live` event follows the replay (or the `reload`), so a page knows it is caught up;
    it has no id, and the cursor stays the last message's."""
    alice, bob = make_person(), make_person()
    token = bob.token()
    async with open_stream(bob.base_url, token=token) as events:
        first = await events.next()
        assert (first.event, first.id) == ("live", None)  # nothing to replay
        alice.post_public("seen live")
        cursor = (await events.next_named("message")).id
    missed = [alice.post_public(f"missed {n}") for n in range(2)]
    async with open_stream(bob.base_url, token=token, after=cursor or "") as events:
        replayed = [await events.next() for _ in range(3)]
        assert [e.event for e in replayed] == ["message", "message", "live"]
        assert [message_id(e.data) for e in replayed[:2]] == [message_id(m.text) for m in missed]
        assert replayed[2].id is None
        live = alice.post_public("after the catch-up")
        assert message_id((await events.next_named("message")).data) == message_id(live.text)
    async with open_stream(bob.base_url, token=token, after="garbage!") as events:
        assert [(await events.next()).event for _ in range(2)] == ["reload", "live"]


@pytest.mark.parametrize("cursor", ["garbage!", "nx:999999999", "00"])
async def test_unusable_cursor_gets_reload(make_person: MakePerson, cursor: str) -> None:
    alice, bob = make_person(), make_person()
    alice.post_public("something to have a history")
    async with open_stream(bob.base_url, token=bob.token(), last_event_id=cursor) as events:
        event = await events.next()
        assert event.event == "reload"
        assert event.id  # a fresh, valid cursor
        live = alice.post_public("after the reload")
        assert message_id((await events.next_named("message")).data) == message_id(live.text)


async def test_page_cursor_replays_what_came_after_the_page(make_person: MakePerson) -> None:
    alice, bob = make_person(), make_person()
    cursor = page_cursor(bob.page())
    assert cursor
    posted = alice.post_public("posted after bob's page rendered")
    async with open_stream(bob.base_url, token=bob.token(), after=cursor) as events:
        event = await events.next_named("message")
        assert message_id(event.data) == message_id(posted.text)


async def test_two_processes_share_events(
    make_person: MakePerson, second_server: AppServer
) -> None:
    alice = make_person()
    bob = make_person(second_server.url)
    async with open_stream(second_server.url, token=bob.token()) as bob_events:
        dm = alice.post_dm(bob.username, "across processes")
        public = alice.post_public("public across processes")
        got = [message_id((await bob_events.next_named("message")).data) for _ in range(2)]
        assert got == [message_id(dm.text), message_id(public.text)]


async def test_concurrent_writers_in_two_processes_lose_nothing(
    make_person: MakePerson, second_server: AppServer, base_url: str
) -> None:
    """Writes committed through two processes at once reach a reconnecting reader exactly once."""
    writer_a = make_person()
    writer_b = make_person(second_server.url)
    reader = make_person()
    token = reader.token()
    per_writer = 15

    async def write(who: Person, url: str) -> list[str]:
        async with httpx.AsyncClient(base_url=url, timeout=10) as client:
            client.cookies.set("session", who.cookie)
            ids = []
            for n in range(per_writer):
                response = await client.post(
                    "/rooms/public/messages",
                    data={"body": f"{who.username} {n}"},
                    headers={"X-CSRF-Token": who.csrf, "HX-Request": "true"},
                )
                assert response.status_code == 201
                ids.append(message_id(response.text))
            return ids

    received: list[str] = []
    async with open_stream(second_server.url, token=token) as events:
        writers = asyncio.gather(write(writer_a, base_url), write(writer_b, second_server.url))
        # Read a few live, then drop the connection in the middle of the burst.
        for _ in range(5):
            event = await events.next_named("message")
            received.append(message_id(event.data))
        cursor = event.id
    written_a, written_b = await writers
    async with open_stream(base_url, token=token, last_event_id=cursor or "") as events:
        while len(received) < 2 * per_writer:
            received.append(message_id((await events.next_named("message")).data))
        # Nothing twice: the next message is one posted after them all.
        marker = writer_a.post_public("after the burst")
        assert message_id((await events.next_named("message")).data) == message_id(marker.text)
    assert sorted(received) == sorted(written_a + written_b)
    assert len(set(received)) == len(received)
    # Each writer's messages arrive in the order that writer committed them.
    assert [m for m in received if m in written_a] == written_a
    assert [m for m in received if m in written_b] == written_b


async def test_only_the_author_gets_the_controls(make_person: MakePerson) -> None:
    """One event reaches every stream; the author's copy alone carries Edit and Delete."""
    alice, bob, carol = make_person(), make_person(), make_person()
    async with (
        open_stream(alice.base_url, token=alice.token()) as alice_events,
        open_stream(bob.base_url, token=bob.token()) as bob_events,
        open_stream(carol.base_url, token=carol.token()) as carol_events,
    ):
        sent = alice.post_public("who may edit this?")
        mine = await alice_events.next_named("message")
        theirs = [await s.next_named("message") for s in (bob_events, carol_events)]
    assert message_id(mine.data) == message_id(sent.text)
    assert controls(fragment(mine.data)) == ["Edit", "Delete"]
    for event in theirs:
        assert message_id(event.data) == message_id(sent.text)
        assert controls(fragment(event.data)) == []
        assert "csrf_token" not in event.data
    assert theirs[0].data == theirs[1].data


async def test_an_open_stream_keeps_none_of_its_requests_headers(mongo_uri: str) -> None:
    """Served in this process, so that what the stream holds can be seen: once it is open, the
    request's headers (the server's list, and the scope's) are gone, and it still delivers."""
    connection = await open_database(mongo_uri)
    hub = Hub(connection.db)
    await hub.start()
    try:
        user = await users.create(connection.db, username=unique_name(), password_hash="-")
        token, _ = tokens.issue_session_token(
            str(user.id), secret=str(settings.SECRET_KEY), lifetime=timedelta(minutes=5)
        )
        received = [
            (b"host", b"chat.example"),
            (b"authorization", b"Bearer " + token.encode()),
            (b"user-agent", b"Mozilla/5.0 " + b"x" * 200),
        ]
        chat = SimpleNamespace(state=SimpleNamespace(chat=AppState(connection, hub)))
        scope = {
            "type": "http",
            "method": "GET",
            "path": "/events",
            "query_string": b"",
            "headers": received,
            "app": chat,
        }
        sent: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        gone = asyncio.Event()

        async def receive() -> dict[str, Any]:
            await gone.wait()
            return {"type": "http.disconnect"}

        serving = asyncio.create_task(events.serve(scope, receive, sent.put))
        assert (await sent.get())["status"] == 200
        assert (await sent.get())["body"] == wire.CONNECTED
        assert received == [] and scope["headers"] == []
        [stream] = hub.streams.of_user(str(user.id))
        stream.offer(b"data: still here\n\n")
        while b"still here" not in (await sent.get())["body"]:
            pass
        gone.set()
        await serving
    finally:
        await hub.stop()
        await connection.close()
