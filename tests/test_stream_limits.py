"""What an open event stream may not do: outlive its session, multiply, stall, or flood."""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
import time
from collections.abc import Callable, Iterator

import httpx
import pytest
from pymongo import MongoClient

from tests.support import AppServer, EventStream, Person, message_id, open_stream, person_event

MakePerson = Callable[..., Person]


@pytest.fixture(scope="module")
def second_server(mongo_uri: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[AppServer]:
    """Another app process on the same database, quick to close streams that stall."""
    env = {"STREAM_SEND_TIMEOUT_SECS": "2"}
    with AppServer(mongo_uri, data_dir=tmp_path_factory.mktemp("limits"), env=env) as server:
        yield server


async def ended(events: EventStream, within: float = 5.0) -> None:
    """Reads events until the stream ends; fails if it is still open after `within` seconds."""
    async with asyncio.timeout(within):
        while True:
            try:
                await events.next(timeout=within)
            except ConnectionError:
                return


@pytest.mark.parametrize("via", ["cookie", "bearer"])
async def test_signing_out_ends_open_streams_in_every_process(
    make_person: MakePerson, second_server: AppServer, via: str
) -> None:
    alice, bob = make_person(), make_person()
    cookie = alice.cookie  # signing out takes it out of the client's jar
    credentials = {"cookie": cookie} if via == "cookie" else {"token": alice.token()}
    async with open_stream(second_server.url, **credentials) as events:
        bob.post_dm(alice.username, "before")
        assert "before" in (await events.next_named("message")).data
        if via == "cookie":
            out = alice.send("POST", "/logout", htmx=False)
        else:
            out = httpx.post(
                alice.base_url + "/logout",
                headers={"Authorization": f"Bearer {credentials['token']}"},
            )
        assert out.status_code == 303
        told = await events.next_named("signed-out")  # its page goes to the sign-in page
        assert told.data == "signed out"
        await ended(events)  # in the other process too, within seconds
        bob.post_dm(alice.username, "after")
        assert not any("after" in e.data for e in events.events)
    again = httpx.get(
        second_server.url + "/events",
        headers={"Authorization": f"Bearer {credentials['token']}"} if via == "bearer" else {},
        cookies={"session": cookie} if via == "cookie" else {},
    )
    assert again.status_code == 401


async def test_the_21st_stream_closes_the_oldest(
    make_person: MakePerson, second_server: AppServer, mongo_uri: str
) -> None:
    alice = make_person()
    token = alice.token()
    async with contextlib.AsyncExitStack() as stack:
        # The first one through the other process: the cap holds across processes.
        first = await stack.enter_async_context(open_stream(second_server.url, token=token))
        for _ in range(19):
            await stack.enter_async_context(open_stream(alice.base_url, token=token))
        assert presence_count(mongo_uri, alice) == 20
        newest = await stack.enter_async_context(open_stream(alice.base_url, token=token))
        await ended(first)
        posted = alice.post_public("the newest tab works")
        assert message_id((await newest.next_named("message")).data) == message_id(posted.text)
        assert presence_count(mongo_uri, alice) == 20


def presence_count(mongo_uri: str, person: Person) -> int:
    client: MongoClient[dict[str, object]] = MongoClient(mongo_uri)
    try:
        db = client.get_default_database()
        user = db.user.find_one({"username": person.username})
        assert user is not None
        return db.presence.count_documents({"user_id": str(user["_id"])})
    finally:
        client.close()


async def test_typing_notices_are_coalesced_on_the_server(make_person: MakePerson) -> None:
    alice, bob = make_person(), make_person()
    async with open_stream(bob.base_url, token=bob.token()) as events:
        answers = [alice.send("POST", "/rooms/public/typing").status_code for _ in range(30)]
        assert answers == [204] * 30
        first = await events.next_named("typing")
        assert alice.username in first.data
        await events.expect_none("typing", within=1.0)  # 29 repeats within 3 s reach nobody


async def test_reading_sends_one_small_event_to_the_readers_own_tabs(
    make_person: MakePerson,
) -> None:
    alice, bob = make_person(), make_person()
    async with (
        open_stream(alice.base_url, token=alice.token()) as alice_tab,
        open_stream(bob.base_url, token=bob.token()) as bob_tab,
    ):
        bob.post_public("read me")
        await alice_tab.next_named("message")
        assert alice.send("POST", "/rooms/public/read").status_code == 204
        read = await alice_tab.next_named("read")
        state = json.loads(read.data)  # a conversation key and its count, not a sidebar
        assert set(state) == {"key", "read_seq", "unread", "upto"}
        assert (state["key"], state["unread"]) == ("public", 0)
        await bob_tab.expect_none("read", within=1.0)


async def test_a_reader_that_stops_reading_is_closed_and_goes_offline(
    make_person: MakePerson, second_server: AppServer
) -> None:
    """Its socket's buffers fill (the server bounds its own: webapp/server.py), it is closed
    within STREAM_SEND_TIMEOUT_SECS and its presence goes; everyone else gets everything."""
    alice, watcher = make_person(), make_person()
    stalled = socket.socket()
    stalled.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)  # a small window fills fast
    stalled.connect(("127.0.0.1", second_server.port))
    request = (
        f"GET /events HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept: text/event-stream\r\n"
        f"Authorization: Bearer {alice.token()}\r\n\r\n"
    )
    try:
        async with open_stream(second_server.url, token=watcher.token()) as events:
            stalled.sendall(request.encode())
            while 'data-status="online"' not in (entry := await events.next_named("person")).data \
                    or alice.username not in entry.data:  # fmt: skip
                pass
            # Others' messages, while alice's tab reads nothing; the watcher gets every one.
            posters = [make_person(second_server.url) for _ in range(4)]
            sent = [
                message_id(poster.post_public(f"{n} " + "x" * 3900).text)
                for n in range(20)
                for poster in posters
            ]
            got = [message_id((await events.next_named("message")).data) for _ in sent]
            assert got == sent
            started = time.monotonic()
            while True:  # alice's tab is closed, and she goes offline
                entry = await events.next_named("person", timeout=15)
                if alice.username in entry.data and 'data-status="offline"' in entry.data:
                    break
            assert time.monotonic() - started < 15
        assert "Closing a stream" in second_server.log()
    finally:
        stalled.close()


def raw_request(method: str, path: str, port: int, token: str = "") -> bytes:
    lines = [f"{method} {path} HTTP/1.1", f"Host: 127.0.0.1:{port}"]
    if token:
        lines.append(f"Authorization: Bearer {token}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


async def test_a_stream_with_a_request_pipelined_behind_it_is_dropped_alone(
    make_person: MakePerson, second_server: AppServer
) -> None:
    """A GET /events with another request pipelined behind it, then the connection closed:
    the stream goes (and its user offline), and everyone else's delivery goes on."""
    mallory, alice, bob = (make_person(second_server.url) for _ in range(3))
    port = second_server.port
    async with open_stream(second_server.url, token=bob.token()) as early:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(
            raw_request("GET", "/events", port, mallory.token())
            + raw_request("GET", "/healthz", port)
        )
        await writer.drain()
        await asyncio.wait_for(reader.readuntil(b": connected"), 10)
        await person_event(early, mallory.username, status="online")
        async with open_stream(second_server.url, token=bob.token()) as late:
            writer.close()  # the disconnect reaches the queued /healthz
            await writer.wait_closed()
            await person_event(early, mallory.username, status="offline")
            posted = alice.post_public("after the pipelined stream")
            for tab in (early, late):  # opened before and after mallory's
                got = await tab.next_named("message")
                assert message_id(got.data) == message_id(posted.text)
    assert "RuntimeError" not in second_server.log()


async def test_head_events_answers_the_headers_and_no_body(
    person: Person, app_server: AppServer
) -> None:
    """HEAD /events: the stream's headers, no event bytes; the connection's next request is
    answered next."""
    port = app_server.port
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(
            raw_request("HEAD", "/events", port, person.token())
            + raw_request("GET", "/healthz", port)
        )
        await writer.drain()
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)
        status, *header_lines = head.decode("latin-1").split("\r\n")
        headers = dict(line.lower().split(": ", 1) for line in header_lines if line)
        assert status == "HTTP/1.1 200 OK"
        assert headers["content-type"] == "text/event-stream; charset=utf-8"
        assert headers["cache-control"] == "no-store"
        following = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)
        assert following.startswith(b"HTTP/1.1 200 OK\r\n"), following[:200]
        assert b"content-type: application/json" in following
    finally:
        writer.close()
        await writer.wait_closed()
    anonymous = httpx.head(app_server.url + "/events")
    assert (anonymous.status_code, anonymous.content) == (401, b"")
