"""What an open event stream may not do: outlive its session, multiply, stall, or flood."""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
from collections.abc import Callable

import httpx
import pytest

from tests.html import fragment
from tests.support import (
    AppServer,
    Db,
    EventStream,
    Person,
    SSEEvent,
    StartApp,
    message_id,
    open_stream,
    person_event,
    presence_count,
    wait_for,
)

MakePerson = Callable[..., Person]


@pytest.fixture(scope="module")
def stall_server(start_app: StartApp) -> AppServer:
    """Another app process on the same database, quick to close streams that stall."""
    return start_app(STREAM_SEND_TIMEOUT_SECS="2")


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
    make_person: MakePerson, stall_server: AppServer, via: str
) -> None:
    alice, bob = make_person(), make_person()
    cookie = alice.cookie  # signing out takes it out of the client's jar
    credentials = {"cookie": cookie} if via == "cookie" else {"token": alice.token()}
    async with open_stream(stall_server.url, **credentials) as events:
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
        stall_server.url + "/events",
        headers={"Authorization": f"Bearer {credentials['token']}"} if via == "bearer" else {},
        cookies={"session": cookie} if via == "cookie" else {},
    )
    assert again.status_code == 401


async def test_the_21st_stream_closes_the_oldest(
    make_person: MakePerson, stall_server: AppServer, db: Db
) -> None:
    alice = make_person()
    token = alice.token()
    async with contextlib.AsyncExitStack() as stack:
        # The first one through the other process: the cap holds across processes.
        first = await stack.enter_async_context(open_stream(stall_server.url, token=token))
        for _ in range(19):
            await stack.enter_async_context(open_stream(alice.base_url, token=token))
        assert presence_count(db, alice) == 20
        newest = await stack.enter_async_context(open_stream(alice.base_url, token=token))
        await ended(first)
        posted = alice.post_public("the newest tab works")
        assert message_id((await newest.next_named("message")).data) == message_id(posted.text)
        assert presence_count(db, alice) == 20


def typist(event: SSEEvent) -> str:
    return fragment(event.data).get("data-username")


async def test_typing_notices_are_coalesced_on_the_server(make_person: MakePerson) -> None:
    """30 notices at once from one typist: one reaches anyone (TYPING_REPEAT_SECS)."""
    alice, bob, carol = make_person(), make_person(), make_person()
    async with open_stream(bob.base_url, token=bob.token()) as events:
        answers = [alice.send("POST", "/rooms/public/typing").status_code for _ in range(30)]
        assert answers == [204] * 30
        # Typing notices reach streams in the order they were stored: had any of alice's
        # repeats gone out, it would come before carol's.
        assert carol.send("POST", "/rooms/public/typing").status_code == 204
        seen = await events.until("typing", lambda e: typist(e) == carol.username)
        assert [typist(e) for e in seen if e.event == "typing"] == [alice.username, carol.username]


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
        assert set(state) == {"key", "read_seq", "unread", "upto", "mentions"}
        assert (state["key"], state["unread"]) == ("public", 0)
        # Read positions reach streams in the order they move: had alice's reached bob's tab,
        # it would come before his own.
        assert alice.post_public("for bob to read").status_code == 201
        assert bob.send("POST", "/rooms/public/read").status_code == 204
        seen = await bob_tab.until("read")
        assert [e.event for e in seen].count("read") == 1
        assert json.loads(seen[-1].data)["key"] == "public"


async def test_a_reader_that_stops_reading_is_closed_and_goes_offline(
    make_person: MakePerson, stall_server: AppServer
) -> None:
    """Its socket's buffers fill (the server bounds its own: webapp/server.py), it is closed
    within STREAM_SEND_TIMEOUT_SECS and its presence goes; everyone else gets everything."""
    alice, watcher = make_person(), make_person()
    stalled = socket.socket()
    stalled.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)  # a small window fills fast
    stalled.connect(("127.0.0.1", stall_server.port))
    request = (
        f"GET /events HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept: text/event-stream\r\n"
        f"Authorization: Bearer {alice.token()}\r\n\r\n"
    )
    try:
        async with open_stream(stall_server.url, token=watcher.token()) as events:
            stalled.sendall(request.encode())
            await person_event(events, alice.username, status="online")
            # Others' messages, while alice's tab reads nothing; the watcher gets every one.
            posters = [make_person(stall_server.url) for _ in range(4)]
            sent = [
                message_id(poster.post_public(f"{n} " + "x" * 3900).text)
                for n in range(20)
                for poster in posters
            ]
            got = [message_id((await events.next_named("message")).data) for _ in sent]
            assert got == sent
            # Alice's tab is closed, and she goes offline.
            await person_event(events, alice.username, status="offline", timeout=15)
        assert "Cut off a stream" in stall_server.log()
    finally:
        stalled.close()


def raw_request(method: str, path: str, port: int, token: str = "") -> bytes:
    lines = [f"{method} {path} HTTP/1.1", f"Host: 127.0.0.1:{port}"]
    if token:
        lines.append(f"Authorization: Bearer {token}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


@pytest.mark.parametrize("pipelined", ["with the stream", "once it is open"])
async def test_a_stream_with_a_request_pipelined_behind_it_is_dropped_alone(
    make_person: MakePerson, stall_server: AppServer, db: Db, pipelined: str
) -> None:
    """GET /events with another request pipelined behind it: the connection is dropped (the
    stream never ends, so nothing behind it would be answered), its user does not stay online,
    and everyone else's delivery and keep-alives go on."""
    mallory, alice, bob = (make_person(stall_server.url) for _ in range(3))
    port = stall_server.port
    async with open_stream(stall_server.url, token=bob.token()) as early:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        stream = raw_request("GET", "/events", port, mallory.token())
        behind = raw_request("GET", "/healthz", port)
        if pipelined == "once it is open":
            writer.write(stream)
            await asyncio.wait_for(reader.readuntil(b": connected"), 10)
            await person_event(early, mallory.username, status="online")
            writer.write(behind)
        else:
            writer.write(stream + behind)
        answered = b""
        async with asyncio.timeout(10):  # the server closes the connection
            while chunk := await reader.read(65536):
                answered += chunk
        assert answered.count(b"HTTP/1.1 ") <= 1  # the stream's own answer at most
        assert b"application/json" not in answered  # /healthz's was never written
        writer.close()
        async with open_stream(stall_server.url, token=bob.token()) as late:
            if pipelined == "once it is open":
                await person_event(early, mallory.username, status="offline")
            posted = alice.post_public("after the pipelined stream")
            for tab in (early, late):  # opened before and after mallory's
                got = await tab.next_named("message")
                assert message_id(got.data) == message_id(posted.text)
        wait_for(lambda: presence_count(db, mallory) == 0, what="mallory's presence gone")
    assert "RuntimeError" not in stall_server.log()


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
