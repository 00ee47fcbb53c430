"""Bounds on requests, over raw sockets against a real app process: headers are limited in
size and in time (webapp/server.py), bodies in time (webapp/security.py), and a refused or
vanished client costs the others nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from urllib.parse import urlsplit

import httpx
import pytest

from tests.support import AppServer, EventStream, Person, message_id, open_stream
from webapp.server import HEADER_TIMEOUT_SECS, MAX_HEADER_BYTES
from webapp.web.security import BODY_TIMEOUT_SECS

MakePerson = Callable[..., Person]
PATIENCE_SECS = HEADER_TIMEOUT_SECS + 20  # how long a test waits for the server to act


def address(url: str) -> tuple[str, int]:
    parts = urlsplit(url)
    assert parts.hostname is not None and parts.port is not None
    return parts.hostname, parts.port


def request_with_headers(total: int, *, line: bytes = b"GET /healthz HTTP/1.1\r\n") -> bytes:
    """A request whose line and headers come to `total` bytes, the blank line included."""
    head = line + b"Host: 127.0.0.1\r\nConnection: close\r\n"
    filler = b"X-Filler: "
    padding = total - len(head) - len(filler) - len(b"\r\n\r\n")
    assert padding > 0
    request = head + filler + b"f" * padding + b"\r\n\r\n"
    assert len(request) == total
    return request


async def hang_up(writer: asyncio.StreamWriter) -> None:
    writer.close()
    with contextlib.suppress(ConnectionError):
        await writer.wait_closed()


async def exchange(url: str, data: bytes) -> bytes:
    """Sends `data` (while reading, so a refusal mid-way is seen) and reads until the server
    closes the connection."""
    reader, writer = await asyncio.open_connection(*address(url))

    async def send() -> None:
        writer.write(data)
        await writer.drain()

    sending = asyncio.create_task(send())
    try:
        async with asyncio.timeout(PATIENCE_SECS):
            return await reader.read()
    finally:
        sending.cancel()
        with contextlib.suppress(asyncio.CancelledError, ConnectionError):
            await sending
        await hang_up(writer)


async def read_response(reader: asyncio.StreamReader) -> bytes:
    """One response, by its Content-Length, however the connection ends after it."""
    head = await reader.readuntil(b"\r\n\r\n")
    length = next(
        int(line.split(b":", 1)[1])
        for line in head.lower().split(b"\r\n")
        if line.startswith(b"content-length:")
    )
    return head + await reader.readexactly(length)


def status(response: bytes) -> int:
    line = response.split(b"\r\n", 1)[0]
    assert line.startswith(b"HTTP/1.1 "), response[:200]
    return int(line.split()[1])


def assert_still_serving(server: AppServer) -> None:
    response = httpx.get(server.url + "/healthz", timeout=10)
    assert response.status_code == 200


# The clients that are too slow take the server's timeouts (10 and 15 s) to refuse. They start
# with the module's first test, all at once, and the two tests that judge them await them:
# their waits overlap each other's and the other tests'.


@dataclass
class SlowClients:
    someone: Person  # whose event stream is open all the while, and who dribbles a post
    events: EventStream
    slow: asyncio.Task[bytes]  # half a request's headers, then nothing
    silent: asyncio.Task[bytes]  # a connection that sends nothing
    dribbled: asyncio.Task[tuple[bytes, int]]  # a post's body a byte at a time: (answer, sent)
    dribbled_text: str
    dribbled_length: int


@pytest.fixture(scope="module", autouse=True)
async def slow_clients(app_server: AppServer) -> AsyncIterator[SlowClients]:
    with Person.register(app_server.url) as someone:
        async with open_stream(app_server.url, token=someone.token()) as events:
            text = "dribbled-" + secrets.token_hex(6)
            body = f"body={text}&padding=".encode() + b"p" * 200
            tasks = [
                asyncio.create_task(exchange(app_server.url, request_with_headers(2048)[:1024])),
                asyncio.create_task(exchange(app_server.url, b"")),
                asyncio.create_task(dribble(someone, "/rooms/public/messages", body)),
            ]
            try:
                yield SlowClients(someone, events, *tasks, text, len(body))  # type: ignore[arg-type]
            finally:
                for task in tasks:
                    task.cancel()
                    with contextlib.suppress(asyncio.CancelledError, ConnectionError):
                        await task


async def test_headers_up_to_the_limit_are_served(app_server: AppServer) -> None:
    for total in (15 * 1024, MAX_HEADER_BYTES):
        response = await exchange(app_server.url, request_with_headers(total))
        assert status(response) == 200, total
        assert response.endswith(b'{"status":"ok"}')


async def test_a_header_over_the_limit_is_refused(app_server: AppServer) -> None:
    response = await exchange(app_server.url, request_with_headers(17 * 1024))
    assert status(response) == 431
    assert b"16384 bytes" in response
    assert_still_serving(app_server)


async def test_many_small_headers_count_in_all(app_server: AppServer) -> None:
    headers = b"".join(b"X-Header-%d: %s\r\n" % (n, b"v" * 80) for n in range(200))
    request = b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n" + headers + b"\r\n"
    assert len(request) > MAX_HEADER_BYTES
    assert status(await exchange(app_server.url, request)) == 431
    assert_still_serving(app_server)


async def test_a_big_body_does_not_count_as_the_next_requests_headers(
    app_server: AppServer,
) -> None:
    """On a kept-alive connection, the bytes of a body are never counted as headers."""
    # Read in pieces of MAX_HEADER_BYTES: the first holds the head, the second is all body
    # and ends the request. Were that piece counted, the connection would be refused.
    head = (
        b"POST /login HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        b"Content-Type: application/x-www-form-urlencoded\r\nContent-Length: %05d\r\n\r\n"
    )
    length = 2 * MAX_HEADER_BYTES - len(head % 0)
    body = b"username=someone&password=" + b"p" * (length - 26)
    reader, writer = await asyncio.open_connection(*address(app_server.url))
    try:
        writer.write(head % length + body)
        writer.write(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        await writer.drain()
        async with asyncio.timeout(PATIENCE_SECS):
            assert status(await read_response(reader)) == 401  # no such account
            assert status(await read_response(reader)) == 200
    finally:
        await hang_up(writer)


async def test_a_refused_post_stores_nothing(person: Person) -> None:
    """Headers over the limit on a post that would otherwise be accepted: refused, not kept."""
    text = "oversized-headers-" + secrets.token_hex(6)
    body = f"body={text}".encode()
    cookie = f"session={person.cookie}".encode()
    line = (
        b"POST /rooms/public/messages HTTP/1.1\r\nHX-Request: true\r\n"
        b"X-CSRF-Token: " + person.csrf.encode() + b"\r\nCookie: " + cookie + b"\r\n"
        b"Content-Type: application/x-www-form-urlencoded\r\n"
        b"Content-Length: %d\r\n" % len(body)
    )
    response = await exchange(person.base_url, request_with_headers(17 * 1024, line=line) + body)
    assert status(response) == 431
    listed = person.client.get("/rooms/public/messages", headers={"HX-Request": "true"})
    assert listed.status_code == 200
    assert text not in listed.text


async def test_a_megabyte_header_is_refused_without_reading_it(app_server: AppServer) -> None:
    response = await exchange(app_server.url, request_with_headers(1024 * 1024))
    assert status(response) == 431
    assert_still_serving(app_server)
    assert "refused with 431" in app_server.log()


async def test_slow_and_silent_connections_are_closed_and_streams_are_not(
    slow_clients: SlowClients,
) -> None:
    """Half a request's headers, then nothing: 408 and closed once the headers are overdue. A
    connection that never sends anything is closed too. An event stream open all the while
    (its request complete) keeps going."""
    slow_response, silent_response = await asyncio.gather(slow_clients.slow, slow_clients.silent)
    assert status(slow_response) == 408
    assert silent_response == b""

    posted = slow_clients.someone.post_public("after the slow clients")
    assert posted.status_code == 201
    mid = message_id(posted.text)
    await slow_clients.events.until("message", lambda e: message_id(e.data) == mid)


# The request body (webapp/security.py)


def form_post(person: Person, path: str, length: int) -> bytes:
    """The head of a cookie-session htmx form post declaring `length` bytes of body."""
    return (
        f"POST {path} HTTP/1.1\r\nHost: {urlsplit(person.base_url).netloc}\r\n"
        f"Cookie: session={person.cookie}\r\nX-CSRF-Token: {person.csrf}\r\nHX-Request: true\r\n"
        "Content-Type: application/x-www-form-urlencoded\r\n"
        f"Content-Length: {length}\r\n\r\n"
    ).encode()


async def dribble(someone: Person, path: str, body: bytes) -> tuple[bytes, int]:
    """Posts `body` a byte every half second (the client's pace, not a wait for the server),
    until the server answers: its answer (the connection then closed), and the bytes sent."""
    reader, writer = await asyncio.open_connection(*address(someone.base_url))
    sent = 0

    async def send() -> None:
        nonlocal sent
        writer.write(form_post(someone, path, len(body)))
        for byte in body:
            writer.write(bytes([byte]))
            sent += 1
            await writer.drain()
            await asyncio.sleep(0.5)

    sending = asyncio.create_task(send())
    try:
        async with asyncio.timeout(BODY_TIMEOUT_SECS + 20):
            response = await read_response(reader)
            with contextlib.suppress(ConnectionResetError):  # bytes still coming, then reset
                assert await reader.read() == b""  # and the server closed the connection
    finally:
        sending.cancel()
        with contextlib.suppress(asyncio.CancelledError, ConnectionError):
            await sending
        await hang_up(writer)
    return response, sent


async def test_a_body_that_dribbles_is_cut_off(slow_clients: SlowClients) -> None:
    """A byte every half second: the whole body is overdue long before it could be complete,
    so the post is refused with 408, the connection closes, and nothing is stored."""
    response, sent = await slow_clients.dribbled
    assert status(response) == 408
    assert b"connection: close" in response.lower()
    assert sent < slow_clients.dribbled_length  # cut off mid-body, not at its end
    someone = slow_clients.someone
    listed = someone.client.get("/rooms/public/messages", headers={"HX-Request": "true"})
    assert listed.status_code == 200
    assert slow_clients.dribbled_text not in listed.text


async def test_a_client_gone_mid_body_is_one_line_in_the_log(app_server: AppServer) -> None:
    offset = len(app_server.log())
    _, writer = await asyncio.open_connection(*address(app_server.url))
    port = writer.get_extra_info("sockname")[1]
    writer.write(
        b"POST /login HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        b"Content-Type: application/x-www-form-urlencoded\r\nContent-Length: 1000\r\n\r\n"
        b"username=x"
    )
    await writer.drain()
    writer.close()
    await writer.wait_closed()

    line = f":{port} - POST /login: the client went away"
    async with asyncio.timeout(PATIENCE_SECS):
        while line not in (log := app_server.log()[offset:]):
            assert "Traceback" not in log, log
            await asyncio.sleep(0.05)  # the log is a file: nothing to await but its growth
    assert "Traceback" not in log, log
    assert "Exception in ASGI application" not in log, log
