"""Losing the database and getting it back; stopping promptly with streams open."""

from __future__ import annotations

import asyncio
import contextlib
import signal
import socket
from collections.abc import Callable, Iterator

import httpx
import pytest

from tests.support import READY_SECS, AppServer, Person, message_id, open_stream, wait_for
from webapp.data.embedded import EmbeddedDatabase


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


def test_health_follows_the_database_and_streams_resume(
    own_database: EmbeddedDatabase, tmp_path_factory: pytest.TempPathFactory
) -> None:
    with AppServer(own_database.uri, data_dir=tmp_path_factory.mktemp("app")) as app:
        alice, bob = Person.register(app.url), Person.register(app.url)
        token = bob.token()

        async def scenario() -> None:
            async with open_stream(app.url, token=token) as events:
                own_database.stop()
                await asyncio.to_thread(wait_for_health, app.url, 503, 10)
                own_database.start()  # same port, same data file
                await asyncio.to_thread(wait_for_health, app.url, 200, 10)
                # The stream survived, and the hub followed the database back. (The embedded
                # server records changes only while someone watches, so a write that beats
                # the hub's return goes unseen: README. Hence a few tries, on it alone.)
                tries: list[str] = []
                for attempt in range(20):
                    sent = await asyncio.to_thread(alice.post_public, f"after the outage {attempt}")
                    assert sent.status_code == 201
                    tries.append(message_id(sent.text))
                    with contextlib.suppress(TimeoutError):  # a try seen late counts too
                        event = await events.next_named("message", timeout=1)
                        assert message_id(event.data) in tries
                        break
                else:
                    raise AssertionError("the stream never came back to life")

        asyncio.run(scenario())
        assert app.process is not None and app.process.poll() is None  # it survived
        alice.close()
        bob.close()


async def test_sigterm_stops_within_ten_seconds_with_streams_open(
    mongo_uri: str, tmp_path_factory: pytest.TempPathFactory, make_person: Callable[..., Person]
) -> None:
    app = AppServer(mongo_uri, data_dir=tmp_path_factory.mktemp("term")).start()
    try:
        someone = make_person(app.url)
        async with open_stream(app.url, token=someone.token()) as events:
            # Writes wake the hub's followers while they are being stopped.
            someone.post_public("just before the end")
            await events.next_named("message")
            # Stopped within ten seconds, or subprocess.TimeoutExpired (and killed).
            code = await asyncio.to_thread(app.stop, signal.SIGTERM, within=10)
        # uvicorn shuts down cleanly, then re-raises the signal it caught, as a process should.
        assert code in (0, -signal.SIGTERM)
        log = app.log()
        assert "Application shutdown complete" in log
        # The open stream was ended, not cut off by the graceful-shutdown timeout.
        assert "ERROR" not in log and "Traceback" not in log, log
    finally:
        app.stop(signal.SIGKILL)


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
