"""The connection to MongoDB: the embedded server when MONGODB_URI is unset, indexes, health.

Every query goes through PyMongo's native async client; the odmantic models in models.py
declare the documents and their indexes, and the query modules beside this one are the only
ones that query.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from typing import Any

from odmantic import Model
from odmantic.index import ODMBaseIndex
from pymongo import AsyncMongoClient
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import PyMongoError

from webapp import settings
from webapp.data import nx_compat
from webapp.data.embedded import EmbeddedDatabase
from webapp.data.models import (
    LoginFailure,
    Membership,
    Message,
    MessageWords,
    PostKey,
    Presence,
    ProcessLease,
    RevokedToken,
    Room,
    RoomMute,
    RoomSequence,
    Typing,
    User,
)
from webapp.ops.metrics import command_counter

log = logging.getLogger(__name__)
MODELS: tuple[type[Model], ...] = (
    User,
    Message,
    MessageWords,
    RevokedToken,
    LoginFailure,
    Presence,
    ProcessLease,
    Typing,
    Room,
    Membership,
    RoomSequence,
    RoomMute,
    PostKey,
)
HEALTH_TIMEOUT_SECS = 1.0

Document = dict[str, Any]
Db = AsyncDatabase[Document]


@dataclass
class Connection:
    """The client, its database, and the embedded server behind them when there is one."""

    client: AsyncMongoClient[Document]
    db: Db
    embedded: EmbeddedDatabase | None

    async def is_healthy(self) -> bool:
        """True when the server answers a ping within a second."""
        try:
            async with asyncio.timeout(HEALTH_TIMEOUT_SECS):
                await self.db.command("ping")
        except (PyMongoError, TimeoutError):
            return False
        return True

    async def close(self) -> None:
        await self.client.close()
        if self.embedded is not None:
            await asyncio.to_thread(self.embedded.stop)
            log.info("Embedded database stopped")


async def create_indexes(db: Db, models: tuple[type[Model], ...] = MODELS) -> None:
    """The indexes each model declares (unique fields and its model_config indexes)."""
    for model in models:
        indexes = [
            index.get_pymongo_index() if isinstance(index, ODMBaseIndex) else index
            for index in model.__indexes__()
        ]
        if indexes:
            await db[model.__collection__].create_indexes(indexes)


async def open_database(uri: str = "") -> Connection:
    """Connect (starting the embedded server if there is no URI) and make the indexes."""
    uri = uri or settings.MONGODB_URI
    embedded = None
    if not uri:
        embedded = EmbeddedDatabase(settings.DATA_DIR)
        await asyncio.to_thread(embedded.start)
        uri = embedded.uri
        log.info("Embedded database listening at %s", uri)
    client: AsyncMongoClient[Document] = AsyncMongoClient(
        uri,
        tz_aware=True,
        serverSelectionTimeoutMS=3000,
        connectTimeoutMS=3000,
        event_listeners=[
            nx_compat.wake_on_write,
            nx_compat.outages,
            command_counter,
        ],
    )
    db = client.get_default_database("chat")
    try:
        await create_indexes(db)
    except BaseException:
        await client.close()
        if embedded is not None:
            embedded.stop()
        raise
    return Connection(client, db, embedded)
