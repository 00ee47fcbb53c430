"""The open streams of a process, found by user, by session and by presence (live/registry.py),
and what one open connection costs the server (webapp/server.py)."""

from __future__ import annotations

import asyncio
import socket
import sys

import pytest
from starlette.types import Receive, Scope, Send
from uvicorn.config import Config
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
from uvicorn.server import ServerState

from tests.support import next_chunk
from webapp import server
from webapp.live import wire
from webapp.live.registry import MAX_STREAMS_PER_USER, Registry
from webapp.live.streams import Stream
from webapp.server import BoundedHttpToolsProtocol, LazyEvent


def streams_of(registry: Registry, user_id: str) -> list[Stream]:
    return list(registry.of_user(user_id))


def test_streams_are_found_by_user_and_presence_and_forgotten_once() -> None:
    registry = Registry()
    ann_1, ann_2, bob = Stream("ann", "s1"), Stream("ann", "s2"), Stream("bob", "s3")
    for stream in (ann_1, ann_2, bob):
        registry.add(stream)
    assert streams_of(registry, "ann") == [ann_1, ann_2]  # oldest first
    assert registry.by_presence(bob.presence_id) is bob
    assert len(registry) == 3 and sorted(registry.users()) == ["ann", "bob"]
    assert registry.forget(ann_1) is True
    assert registry.forget(ann_1) is False  # out already
    assert streams_of(registry, "ann") == [ann_2]
    assert registry.by_presence(ann_1.presence_id) is None
    assert registry.forget(ann_2) and not registry.has_user("ann")
    assert list(registry) == [bob]


async def test_signing_out_tells_that_sessions_streams_only() -> None:
    """Two tabs of one session, a second session of the same person, and someone else."""
    registry = Registry()
    tab_1, tab_2 = Stream("ann", "session-a"), Stream("ann", "session-a")
    other_session, someone_else = Stream("ann", "session-b"), Stream("bob", "session-c")
    for stream in (tab_1, tab_2, other_session, someone_else):
        stream.release(None)  # live: offers wait for its task
        registry.add(stream)
    registry.forget(tab_1)  # one tab closed: the session still has the other
    registry.signed_out("session-a")
    assert [s.revoked for s in (tab_1, tab_2, other_session, someone_else)] == [
        False,
        True,
        False,
        False,
    ]
    assert await next_chunk(tab_2) == wire.SIGNED_OUT
    registry.signed_out("no-such-session")  # nothing open: nothing happens
    assert not other_session.revoked


async def test_a_session_forgotten_with_its_last_stream_is_not_found_again() -> None:
    registry = Registry()
    first = Stream("ann", "session-a")
    registry.add(first)
    registry.forget(first)
    later = Stream("ann", "session-b")
    registry.add(later)
    registry.signed_out("session-a")
    assert not later.revoked


def test_a_users_oldest_stream_beyond_the_most_is_closed() -> None:
    registry = Registry()
    streams = [Stream("ann", f"s{n}") for n in range(MAX_STREAMS_PER_USER + 1)]
    for stream in streams:
        registry.add(stream)
    assert [s.closed for s in streams] == [True] + [False] * MAX_STREAMS_PER_USER


@pytest.fixture
def config() -> Config:
    loaded = Config(app="webapp.app:app", interface="asgi3")
    loaded.load()
    return loaded


async def test_a_connection_costs_no_more_than_uvicorns_own(config: Config) -> None:
    """The server's protocol adds its state beside uvicorn's without growing each connection's
    attribute dict (Python shares a dict's keys between instances up to 30 of them)."""
    state = ServerState()
    ours = BoundedHttpToolsProtocol(config=config, server_state=state, app_state={})
    uvicorns = HttpToolsProtocol(config=config, server_state=state, app_state={})
    assert sys.getsizeof(ours.__dict__) <= sys.getsizeof(uvicorns.__dict__)
    assert sys.getsizeof(ours) + sys.getsizeof(ours.__dict__) < 500


async def test_a_lazy_event_is_an_event_that_makes_its_waiters_on_the_first_wait() -> None:
    event = LazyEvent()
    assert event._waiters is server._NOBODY and not event.is_set()
    waiting = [asyncio.ensure_future(event.wait()) for _ in range(2)]
    await asyncio.sleep(0)
    assert not any(w.done() for w in waiting) and len(event._waiters) == 2
    event.set()
    assert await asyncio.gather(*waiting) == [True, True]
    event.clear()
    later = asyncio.ensure_future(event.wait())
    await asyncio.sleep(0)
    assert not later.done()
    event.set()
    assert await later is True
    assert await LazyEvent(True).wait() is True  # set from the start: no waiting
    assert not server._NOBODY  # the shared one stays empty


async def test_a_connection_makes_no_waiters_until_its_request_waits_for_its_body(
    config: Config,
) -> None:
    """An open response (an event stream's) holds neither of uvicorn's two deques; a request
    that reads its body in pieces still gets all of it."""
    bodies: list[bytes] = []
    opened, done = asyncio.Event(), asyncio.Event()

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["method"] == "POST":
            body, more = b"", True
            while more:
                message = await receive()
                body, more = body + message.get("body", b""), message.get("more_body", False)
            bodies.append(body)
        await send({"type": "http.response.start", "status": 200, "headers": []})
        opened.set()
        await done.wait()
        await send({"type": "http.response.body", "body": b"ok"})

    async def answer() -> bytes:
        done.set()
        response = b""
        while not response.endswith(b"0\r\n\r\n"):  # the chunked body's end
            response += await loop.sock_recv(theirs, 4096)
        return response

    config.app = app
    config.loaded = False
    config.load()
    loop = asyncio.get_running_loop()
    ours, theirs = socket.socketpair()
    theirs.setblocking(False)
    protocol = BoundedHttpToolsProtocol(config=config, server_state=ServerState(), app_state={})
    transport, _ = await loop.connect_accepted_socket(lambda: protocol, ours)
    try:
        await loop.sock_sendall(theirs, b"GET /events HTTP/1.1\r\nhost: x\r\n\r\n")
        await opened.wait()
        assert protocol.cycle.message_event._waiters is server._NOBODY
        assert protocol.flow._is_writable_event._waiters is server._NOBODY
        assert (await answer()).endswith(b"2\r\nok\r\n0\r\n\r\n")

        opened.clear()
        done.clear()
        head = b"POST /form HTTP/1.1\r\nhost: x\r\ntransfer-encoding: chunked\r\n\r\n"
        await loop.sock_sendall(theirs, head + b"3\r\nabc\r\n")
        while not protocol.cycle.message_event._waiters:  # the app waits for the rest
            await asyncio.sleep(0)
        await loop.sock_sendall(theirs, b"3\r\ndef\r\n0\r\n\r\n")
        await opened.wait()
        assert (await answer()).endswith(b"2\r\nok\r\n0\r\n\r\n")
        assert bodies == [b"abcdef"]
    finally:
        transport.close()
        theirs.close()
