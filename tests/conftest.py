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

# Settings are read at import: point them at a scratch folder before anything imports webapp.
os.environ.setdefault("DATA_DIR", tempfile.mkdtemp(prefix="chat-test-"))
os.environ.setdefault("SECRET_KEY", "test-secret-" + secrets.token_hex(16))

import pytest
from pymongo import MongoClient

from tests.support import AppServer, Person
from webapp.data.embedded import EmbeddedDatabase


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
