"""The connection to MongoDB: the embedded server when MONGODB_URI is unset, indexes, health."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass

from motor.motor_asyncio import AsyncIOMotorClient, AsyncIOMotorDatabase
from odmantic import AIOEngine
from pymongo.errors import PyMongoError

from webapp import nx_compat, settings
from webapp.embedded_db import EmbeddedDatabase
from webapp.models import LoginFailure, Message, Presence, ReadMarker, RevokedToken, Typing, User

log = logging.getLogger(__name__)
MODELS = (User, Message, RevokedToken, LoginFailure, Presence, Typing, ReadMarker)
HEALTH_TIMEOUT_SECS = 1.0


@dataclass
class Database:
    client: AsyncIOMotorClient  # type: ignore[type-arg]
    engine: AIOEngine
    embedded: EmbeddedDatabase | None

    @property
    def db(self) -> AsyncIOMotorDatabase:  # type: ignore[type-arg]
        return self.engine.database

    async def is_healthy(self) -> bool:
        """True when the server answers a ping within a second."""
        try:
            async with asyncio.timeout(HEALTH_TIMEOUT_SECS):
                await self.db.command("ping")
        except (PyMongoError, TimeoutError):
            return False
        return True

    async def close(self) -> None:
        self.client.close()
        if self.embedded is not None:
            await asyncio.to_thread(self.embedded.stop)


async def open_database(uri: str = "") -> Database:
    """Connect (starting the embedded server if there is no URI) and make the indexes."""
    uri = uri or settings.MONGODB_URI
    embedded = None
    if not uri:
        embedded = EmbeddedDatabase(settings.DATA_DIR)
        await asyncio.to_thread(embedded.start)
        uri = embedded.uri
        log.info("Embedded database listening at %s", uri)
    client: AsyncIOMotorClient = AsyncIOMotorClient(  # type: ignore[type-arg]
        uri,
        tz_aware=True,
        serverSelectionTimeoutMS=3000,
        connectTimeoutMS=3000,
        event_listeners=[nx_compat.wake_on_write, nx_compat.server_returns],
    )
    name = client.get_default_database("chat").name
    engine = AIOEngine(client=client, database=name)
    try:
        await engine.configure_database(MODELS)
    except BaseException:
        client.close()
        if embedded is not None:
            embedded.stop()
        raise
    return Database(client, engine, embedded)
