"""Losing the database and getting it back; stopping promptly with streams open."""

from __future__ import annotations

import asyncio
import contextlib
import json
import signal
import socket
import time
from collections.abc import Iterator

import httpx
import pytest
from bson import ObjectId
from pymongo import MongoClient

from tests.support import (
    READY_SECS,
    AppServer,
    Person,
    StartApp,
    message_id,
    open_stream,
    page_cursor,
    wait_for,
)
from webapp.data.embedded import EmbeddedDatabase
from webapp.data.models import Message
from webapp.errors import DatabaseUnavailable

PUBLIC = "/rooms/public/messages"


def health(url: str) -> int:
    try:
        return httpx.get(url + "/healthz", timeout=3).status_code
    except httpx.TransportError:
        return 0


def wait_for_health(url: str, status: int, within: float) -> None:
    """Until /healthz answers `status`: a state with no event to await, so polled."""
    wait_for(lambda: health(url) == status, within, what=f"/healthz answering {status}")


@pytest.fixture
def own_database(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedDatabase]:
    server = EmbeddedDatabase(tmp_path_factory.mktemp("flaky"), database="chat_flaky")
    server.start()
    yield server
    server.stop()


def post_once_accepted(someone: Person, body: str, within: float = 15) -> httpx.Response:
    """Posts until the app accepts it (201): 503 with Retry-After while the hub is not yet
    following the database again. (A state with no event to await: polled, to a deadline.)"""
    deadline = time.monotonic() + within
    while True:
        response = someone.post_public(body)
        if response.status_code != 503 or time.monotonic() > deadline:
            assert response.status_code == 201, response.text
            return response
        assert response.headers["retry-after"] == "5"
        time.sleep(0.1)


def test_an_outage_refuses_writes_and_loses_nothing_accepted(
    own_database: EmbeddedDatabase, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """While the database is away /healthz says 503, and posts (by script or by page), pages
    and new streams answer 503 with Retry-After, storing nothing. Once it is back the change
    streams resume by themselves, and every message accepted arrives exactly once on a stream
    that was open all along."""
    env = {"LOG_FORMAT": "json"}
    with AppServer(own_database.uri, data_dir=tmp_path_factory.mktemp("app"), env=env) as app:
        alice, bob = Person.register(app.url), Person.register(app.url)
        token, script_token = bob.token(), alice.token()
        bearer = {"Authorization": f"Bearer {script_token}", "Accept": "application/json"}

        async def scenario() -> list[httpx.Response]:
            refusals = []
            async with open_stream(app.url, token=token) as events:
                own_database.stop()
                await asyncio.to_thread(wait_for_health, app.url, 503, 10)
                async with httpx.AsyncClient(base_url=app.url, timeout=20) as script:
                    refusals.append(
                        await script.post(
                            "/rooms/public/messages", data={"body": "during 1"}, headers=bearer
                        )
                    )
                    refusals.append(await script.get("/events", headers=bearer))
                refusals.append(await asyncio.to_thread(alice.post_public, "during 2"))
                refusals.append(await asyncio.to_thread(alice.client.get, "/rooms/public"))
                own_database.start()  # same port, same data file
                await asyncio.to_thread(wait_for_health, app.url, 200, 10)
                accepted = []
                for n in range(10):
                    sent = await asyncio.to_thread(post_once_accepted, alice, f"after {n}")
                    accepted.append(message_id(sent.text))
                seen = [message_id((await events.next_named("message")).data) for _ in accepted]
                assert seen == accepted  # each once, in order
                marker = await asyncio.to_thread(alice.post_public, "nothing more before this")
                assert message_id((await events.next_named("message")).data) == message_id(
                    marker.text
                )
            return refusals

        refusals = asyncio.run(scenario())
        for refused in refusals:
            assert refused.status_code == 503, refused.text
            assert refused.headers["retry-after"] == "5"
            assert refused.headers["x-request-id"]
        assert refusals[0].json() == {"error": DatabaseUnavailable.message.format(seconds=5)}
        assert refusals[1].json() == refusals[0].json()
        assert "cannot reach its database" in refusals[2].text  # the page's own words
        assert "cannot reach its database" in refusals[3].text
        with MongoClient(own_database.uri) as client:
            stored = client.get_default_database()[Message.__collection__]
            assert stored.count_documents({"body": {"$regex": "^during"}}) == 0
            assert stored.count_documents({"body": {"$regex": "^after"}}) == 10  # the query works
        warned = [
            json.loads(line)
            for line in app.log().splitlines()
            if "No answer from the database" in line or "No write while" in line
        ]
        ids = {line["request_id"] for line in warned}
        assert refusals[0].headers["x-request-id"] in ids  # the request's id on its own lines
        assert app.process is not None and app.process.poll() is None  # it survived
        alice.close()
        bob.close()


async def test_sigterm_with_streams_open_and_posts_in_flight_stops_cleanly(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    """A dyno restart: streams end, each post in flight either finishes (and is stored) or
    fails cleanly, the embedded database stops last, and the process exits within ten seconds
    with no error line."""
    data_dir = tmp_path_factory.mktemp("term")
    env = {"LOG_FORMAT": "json", "LIMIT_WINDOW_SCALE": "0"}
    app = AppServer("", data_dir=data_dir, env=env).start()
    accepted: list[str] = []
    try:
        someone = Person.register(app.url)
        first = asyncio.Event()

        async def keep_posting() -> None:
            headers = {"X-CSRF-Token": someone.csrf, "HX-Request": "true"}
            cookies = {"session": someone.cookie}
            async with httpx.AsyncClient(base_url=app.url, cookies=cookies, timeout=10) as client:
                for n in range(10_000):
                    try:
                        response = await client.post(
                            "/rooms/public/messages",
                            data={"body": f"in flight {n}"},
                            headers=headers,
                        )
                    except httpx.TransportError:
                        return  # refused or cut: the server has gone
                    assert response.status_code in (201, 503), response.text
                    if response.status_code == 201:
                        accepted.append(message_id(response.text))
                        first.set()

        async with open_stream(app.url, token=someone.token()) as events:
            posting = asyncio.create_task(keep_posting())
            await first.wait()
            await events.next_named("message")
            # Stopped within ten seconds, or subprocess.TimeoutExpired (and killed).
            code = await asyncio.to_thread(app.stop, signal.SIGTERM, within=10)
            await posting
            with pytest.raises(ConnectionError):  # the stream was ended
                while True:
                    await events.next(timeout=5)
        # uvicorn shuts down cleanly, then re-raises the signal it caught, as a process should.
        assert code in (0, -signal.SIGTERM)
        lines = [json.loads(line) for line in app.log().splitlines() if line.strip()]
        assert not [line for line in lines if line["level"] in ("ERROR", "CRITICAL")], lines
        said = [line["message"] for line in lines]
        stopping = said.index("Waiting for application shutdown.")
        assert said.index("Embedded database stopped") > stopping
        assert said.index("Application shutdown complete.") > said.index(
            "Embedded database stopped"
        )
        someone.close()
    finally:
        app.stop(signal.SIGKILL)
    database = EmbeddedDatabase(data_dir, database="chat")
    database.start()
    try:
        with MongoClient(database.uri) as client:
            stored = client.get_default_database()[Message.__collection__]
            ids = [ObjectId(i) for i in accepted]
            found = stored.find({"_id": {"$in": ids}}, {"_id": 1})  # (count_documents: no)
            assert len(list(found)) == len(accepted) > 0
    finally:
        database.stop()


async def test_a_killed_process_loses_no_accepted_message(start_app: StartApp) -> None:
    """SIGKILL of one of two processes while messages flow through the other: its readers
    reconnect to the survivor with their cursor, and every message that got 201 arrives
    exactly once, in order."""
    unlimited = {"LIMIT_WINDOW_SCALE": "0"}
    survivor, doomed = start_app.together(unlimited, unlimited)
    writer = Person.register(survivor.url)
    readers = [Person.register(doomed.url) for _ in range(3)]
    tokens = [reader.token() for reader in readers]
    accepted: list[str] = []
    halfway = asyncio.Event()

    async def write() -> None:
        headers = {"X-CSRF-Token": writer.csrf, "HX-Request": "true"}
        cookies = {"session": writer.cookie}
        async with httpx.AsyncClient(base_url=survivor.url, cookies=cookies, timeout=10) as c:
            for n in range(40):
                body = "the end" if n == 39 else f"flowing {n}"
                response = await c.post(
                    "/rooms/public/messages", data={"body": body}, headers=headers
                )
                assert response.status_code == 201, response.text
                accepted.append(message_id(response.text))
                if n == 15:
                    halfway.set()

    async def read(token: str, cursor: str, connected: asyncio.Event) -> list[str]:
        got, last = [], cursor
        async with open_stream(doomed.url, token=token) as events:
            connected.set()
            with contextlib.suppress(ConnectionError):
                while True:
                    event = await events.next_named("message", timeout=20)
                    got.append(message_id(event.data))
                    last = event.id or last
        async with open_stream(survivor.url, token=token, last_event_id=last) as events:
            while True:
                event = await events.next_named("message", timeout=20)
                got.append(message_id(event.data))
                if "the end" in event.data:
                    break
        return got

    async def kill() -> None:
        await halfway.wait()
        await asyncio.to_thread(doomed.stop, signal.SIGKILL)

    cursor = page_cursor(writer.page("/rooms/public"))  # where every reader starts
    connected = [asyncio.Event() for _ in tokens]
    reading = [
        asyncio.create_task(read(token, cursor, ready))
        for token, ready in zip(tokens, connected, strict=True)
    ]
    for ready in connected:
        await ready.wait()
    await asyncio.gather(write(), kill())
    for got in await asyncio.gather(*reading):
        assert got == accepted  # every one, once, in order
    for someone in (writer, *readers):
        someone.close()


def test_ready_quickly(mongo_uri: str, tmp_path_factory: pytest.TempPathFactory) -> None:
    """Serving within 30 s of starting: AppServer.start waits READY_SECS at most, or raises."""
    assert READY_SECS <= 30
    with AppServer(mongo_uri, data_dir=tmp_path_factory.mktemp("ready")) as app:
        assert health(app.url) == 200


def test_a_port_taken_before_the_app_binds_it_is_given_up_for_another(
    mongo_uri: str, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """The harness's own guard against a race: the port chosen for an app is taken by the time
    it binds it. The app exits, saying so, and AppServer starts it again on another port."""
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        app = AppServer(mongo_uri, data_dir=tmp_path_factory.mktemp("taken"), port=port)
        with app:
            assert app.port != port
            assert health(app.url) == 200
    refused = (app.data_dir / f"uvicorn-{port}.log").read_text()
    assert "address already in use" in refused.lower(), refused
