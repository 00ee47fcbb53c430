"""Shared fixtures: a real database server, real app processes over HTTP, signed-in users.

The database is the embedded nx-27017 on a free loopback port, or MONGODB_URI when it is set
(each run then uses its own database, dropped at the end). The app runs as real uvicorn
processes, exactly as in production.
"""

from __future__ import annotations

import os
import secrets
import tempfile
from collections.abc import Callable, Iterator
from typing import Any

# Settings are read at import: point them at a scratch folder before anything imports webapp.
os.environ.setdefault("DATA_DIR", tempfile.mkdtemp(prefix="chat-test-"))
os.environ.setdefault("SECRET_KEY", "test-secret-" + secrets.token_hex(16))

import pytest
from pymongo import MongoClient

from tests.support import AppServer, Db, Person, StartApp
from webapp.data.embedded import EmbeddedDatabase

CALL_REPORT = pytest.StashKey[pytest.TestReport]()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item) -> Iterator[pytest.TestReport]:
    """Keeps each test's own report (its call, not its fixtures), for fixtures that check
    something after a test only when the test itself passed."""
    report: pytest.TestReport = yield
    if report.when == "call":
        item.stash[CALL_REPORT] = report
    return report


@pytest.fixture(scope="session")
def mongo_uri(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A MongoDB URI for this run: the embedded server, or MONGODB_URI with a fresh database."""
    name = f"chat_test_{secrets.token_hex(4)}"
    external = os.environ.get("MONGODB_URI")
    if external:
        client: MongoClient[dict[str, object]] = MongoClient(external)
        base = external.split("?")[0].rsplit("/", 1)[0] if external.count("/") > 2 else external
        yield f"{base.rstrip('/')}/{name}"
        client.drop_database(name)
        client.close()
        return
    server = EmbeddedDatabase(tmp_path_factory.mktemp("db"), database=name)
    server.start()
    try:
        yield server.uri
    finally:
        server.stop()


@pytest.fixture(scope="session")
def app_server(mongo_uri: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[AppServer]:
    """The app, served by uvicorn over real HTTP on a free loopback port."""
    with AppServer(mongo_uri, data_dir=tmp_path_factory.mktemp("app")) as server:
        yield server


@pytest.fixture(scope="module")
def second_server(mongo_uri: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[AppServer]:
    """Another app process on the same database, as behind a load balancer (one per module
    that asks: every process follows every change, so none is kept longer than it is used)."""
    with AppServer(mongo_uri, data_dir=tmp_path_factory.mktemp("second")) as server:
        yield server


@pytest.fixture(scope="module")
def start_app(mongo_uri: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[StartApp]:
    """Starts app processes on the session's database, each with settings of its own
    (`start_app(PRESENCE_TTL_SECS="2")`, or several at once with `start_app.together`); they
    stop at the end of the module."""
    apps = StartApp(mongo_uri, lambda: tmp_path_factory.mktemp("app"))
    yield apps
    apps.stop_all()


@pytest.fixture(scope="session")
def db(mongo_uri: str) -> Iterator[Db]:
    """The session's database, as the app stores it."""
    client: MongoClient[dict[str, Any]] = MongoClient(mongo_uri)
    yield client.get_default_database()
    client.close()


@pytest.fixture
def base_url(app_server: AppServer) -> str:
    return app_server.url


@pytest.fixture
def make_person(base_url: str) -> Iterator[Callable[..., Person]]:
    """Registers people (signed in with a cookie session); closes their clients afterwards."""
    people: list[Person] = []

    def make(url: str = "", username: str | None = None) -> Person:
        someone = Person.register(url or base_url, username)
        people.append(someone)
        return someone

    yield make
    for someone in people:
        someone.close()


@pytest.fixture
def person(make_person: Callable[..., Person]) -> Person:
    return make_person()
