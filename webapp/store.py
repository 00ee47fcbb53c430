"""Every database query the app makes: async, keyword-only, returning models.

Reads go through the collection's find() with plain filters, not odmantic's aggregate-based
find: the embedded server does not match ObjectIds inside $match (README, "The embedded
database"), and find() is what MongoDB serves best from an index anyway.
"""

from __future__ import annotations

import contextlib
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, TypeVar

from odmantic import AIOEngine, Model, ObjectId
from pymongo.errors import DuplicateKeyError

from webapp.chat import LOGIN_WINDOW, PAGE_SIZE, username_key
from webapp.errors import Conflict
from webapp.models import LoginFailure, Message, RevokedToken, User

M = TypeVar("M", bound=Model)
Sort = Sequence[tuple[str, int]]


def now() -> datetime:
    return datetime.now(UTC)


def parse_id(value: str) -> ObjectId | None:
    return ObjectId(value) if len(value) == 24 and ObjectId.is_valid(value) else None


async def _find(
    engine: AIOEngine, model: type[M], filter: Mapping[str, Any], *, sort: Sort = (), limit: int = 0
) -> list[M]:
    cursor = engine.get_collection(model).find(filter, sort=list(sort) or None, limit=limit)
    return [model.model_validate_doc(doc) async for doc in cursor]


async def _find_one(engine: AIOEngine, model: type[M], filter: Mapping[str, Any]) -> M | None:
    doc = await engine.get_collection(model).find_one(filter)
    return model.model_validate_doc(doc) if doc is not None else None


async def _insert(engine: AIOEngine, instance: M) -> M:
    await engine.get_collection(type(instance)).insert_one(instance.model_dump_doc())
    return instance


async def _update(engine: AIOEngine, instance: M, **changes: Any) -> M:
    """Sets these fields, in the database and on the instance."""
    await engine.get_collection(type(instance)).update_one({"_id": instance.id}, {"$set": changes})
    for name, value in changes.items():
        setattr(instance, name, value)
    return instance


async def get_by_id(engine: AIOEngine, model: type[M], *, object_id: ObjectId) -> M | None:
    return await _find_one(engine, model, {"_id": object_id})


# Users


async def create_user(engine: AIOEngine, *, username: str, password_hash: str) -> User:
    user = User(
        username=username,
        username_key=username_key(username),
        password_hash=password_hash,
        created_at=now(),
    )
    try:
        return await _insert(engine, user)
    except DuplicateKeyError:
        raise Conflict("That username is taken.") from None


async def get_user_by_name(engine: AIOEngine, *, username: str) -> User | None:
    return await _find_one(engine, User, {"username_key": username_key(username)})


async def get_user(engine: AIOEngine, *, user_id: str) -> User | None:
    oid = parse_id(user_id)
    return await get_by_id(engine, User, object_id=oid) if oid else None


async def list_users(engine: AIOEngine) -> list[User]:
    return await _find(engine, User, {}, sort=[("username_key", 1)])


async def set_password_hash(engine: AIOEngine, *, user: User, password_hash: str) -> None:
    await _update(engine, user, password_hash=password_hash)


async def set_away(engine: AIOEngine, *, user: User, away_message: str) -> None:
    await _update(engine, user, away_message=away_message)


# Sessions and sign-in throttling


async def revoke_token(engine: AIOEngine, *, jti: str, expires_at: datetime) -> None:
    with contextlib.suppress(DuplicateKeyError):  # already signed out
        await _insert(engine, RevokedToken(jti=jti, expires_at=expires_at))


async def is_revoked(engine: AIOEngine, *, jti: str) -> bool:
    return await _find_one(engine, RevokedToken, {"jti": jti}) is not None


async def record_login_failure(engine: AIOEngine, *, keys: Sequence[str]) -> None:
    await _insert(engine, LoginFailure(keys=list(keys), at=now()))


async def recent_failures(engine: AIOEngine, *, key: str) -> list[datetime]:
    """When the failures counted against key in the last minute happened, oldest first."""
    failures = await _find(
        engine,
        LoginFailure,
        {"keys": key, "at": {"$gte": now() - LOGIN_WINDOW}},
        sort=[("at", 1)],
    )
    return [failure.at for failure in failures]


async def clear_failures(engine: AIOEngine, *, key: str) -> None:
    await engine.get_collection(LoginFailure).delete_many({"keys": key})


# Messages


async def create_message(
    engine: AIOEngine, *, conversation: str, participants: list[str], sender: User, body: str
) -> Message:
    message = Message(
        conversation=conversation,
        participants=participants,
        sender_id=str(sender.id),
        sender_name=sender.username,
        body=body,
        created_at=now(),
    )
    return await _insert(engine, message)


async def get_message(engine: AIOEngine, *, message_id: str) -> Message | None:
    oid = parse_id(message_id)
    return await get_by_id(engine, Message, object_id=oid) if oid else None


async def list_messages(
    engine: AIOEngine, *, conversation: str, before: Message | None = None, limit: int = PAGE_SIZE
) -> list[Message]:
    """The latest `limit` messages of a conversation (or those before `before`), oldest first."""
    filter: dict[str, Any] = {"conversation": conversation}
    if before is not None:
        filter["$or"] = [
            {"created_at": {"$lt": before.created_at}},
            {"created_at": before.created_at, "_id": {"$lt": before.id}},
        ]
    newest_first = await _find(
        engine, Message, filter, sort=[("created_at", -1), ("_id", -1)], limit=limit
    )
    return newest_first[::-1]


async def edit_message(engine: AIOEngine, *, message: Message, body: str) -> Message:
    return await _update(engine, message, body=body, edited_at=now())


async def delete_message(engine: AIOEngine, *, message: Message) -> Message:
    return await _update(engine, message, body="", deleted=True)
