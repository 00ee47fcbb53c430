"""Signed-out sessions, and the failed sign-ins that throttling counts."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Sequence
from datetime import datetime

from bson import ObjectId
from pymongo.errors import DuplicateKeyError

from webapp.data._query import find, find_one, insert, now
from webapp.data.connection import Db
from webapp.data.models import LoginFailure, RevokedToken
from webapp.rules.rates import LOGIN_WINDOW


async def revoke(db: Db, *, jti: str, expires_at: datetime) -> None:
    with contextlib.suppress(DuplicateKeyError):  # already signed out
        await insert(db, RevokedToken(jti=jti, expires_at=expires_at))  # type: ignore[call-arg]  # odmantic makes the id


async def revoked_since(db: Db, at: datetime) -> AsyncIterator[tuple[str, datetime]]:
    """(jti, expiry) of every session signed out that would not have expired by `at`."""
    cursor = db[RevokedToken.__collection__].find(
        {"expires_at": {"$gte": at}}, {"jti": 1, "expires_at": 1}
    )
    async for doc in cursor:
        yield doc["jti"], doc["expires_at"]


async def is_revoked(db: Db, *, jti: str) -> bool:
    return await find_one(db, RevokedToken, {"jti": jti}) is not None


async def reserve_login_failure(db: Db, *, keys: Sequence[str]) -> ObjectId:
    """Counts a sign-in as failed before its password is checked: forget_login_failure takes
    it back from an attempt refused unchecked, clear_failures from a right password."""
    failure = await insert(db, LoginFailure(keys=list(keys), at=now()))  # type: ignore[call-arg]  # odmantic makes the id
    return failure.id


async def forget_login_failure(db: Db, *, failure_id: ObjectId) -> None:
    await db[LoginFailure.__collection__].delete_one({"_id": failure_id})


async def recent_login_failures(db: Db, *, key: str) -> list[LoginFailure]:
    """The failures (reserved ones included) counted against key in the window, oldest first."""
    return await find(
        db, LoginFailure, {"keys": key, "at": {"$gte": now() - LOGIN_WINDOW}}, sort=[("at", 1)]
    )


async def clear_failures(db: Db, *, key: str) -> None:
    await db[LoginFailure.__collection__].delete_many({"keys": key})
