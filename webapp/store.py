"""Every database query the app makes: async, keyword-only, returning models.

Reads go through the collection's find() with plain filters, not odmantic's aggregate-based
find: the embedded server does not match ObjectIds inside $match (README, "The embedded
database"), and find() is what MongoDB serves best from an index anyway.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

from odmantic import AIOEngine, Model, ObjectId
from pymongo import ReplaceOne
from pymongo.errors import DuplicateKeyError

from webapp.chat import LOGIN_WINDOW, PAGE_SIZE, POSTING, PUBLIC, Rate, is_username, username_key
from webapp.errors import NameTaken, PostingTooFast
from webapp.models import (
    LoginFailure,
    Message,
    Presence,
    RateLimit,
    ReadMarker,
    RevokedToken,
    Typing,
    User,
)

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


async def _update(engine: AIOEngine, instance: M, *, stamp: str = "", **changes: Any) -> M:
    """Sets these fields, and `stamp` to the server's time, in the database and on the instance.

    Times are only ever written whole (in a new document) or as the server's $currentDate:
    nx-27017 stores a date given to $set as a string (README, "The embedded database").
    """
    update: dict[str, Any] = {"$set": changes} if changes else {}
    if stamp:
        update["$currentDate"] = {stamp: True}
        changes[stamp] = now()  # the instance's copy; the database has the server's
    await engine.get_collection(type(instance)).update_one({"_id": instance.id}, update)
    for name, value in changes.items():
        setattr(instance, name, value)
    return instance


async def get_by_id(engine: AIOEngine, model: type[M], *, object_id: ObjectId) -> M | None:
    return await _find_one(engine, model, {"_id": object_id})


# Users


async def create_user(engine: AIOEngine, *, username: str, password_hash: str) -> User:
    joined = now()
    user = User(
        username=username,
        username_key=username_key(username),
        password_hash=password_hash,
        created_at=joined,
        last_seen_at=joined,  # registering is being seen: newcomers count as recent
    )
    try:
        return await _insert(engine, user)
    except DuplicateKeyError:
        raise NameTaken() from None


async def get_user_by_name(engine: AIOEngine, *, username: str) -> User | None:
    """The user of that name, ignoring ASCII case; None, without a query, for a name that
    nobody can have."""
    if not is_username(username):
        return None
    return await _find_one(engine, User, {"username_key": username_key(username)})


async def get_user(engine: AIOEngine, *, user_id: str) -> User | None:
    oid = parse_id(user_id)
    return await get_by_id(engine, User, object_id=oid) if oid else None


def _object_ids(user_ids: Iterable[str]) -> list[ObjectId]:
    return [oid for oid in map(parse_id, user_ids) if oid is not None]


async def users_by_id(engine: AIOEngine, *, user_ids: Iterable[str]) -> list[User]:
    """These users, by name."""
    ids = _object_ids(user_ids)
    if not ids:
        return []
    return await _find(engine, User, {"_id": {"$in": ids}}, sort=[("username_key", 1)])


async def recently_seen_users(
    engine: AIOEngine, *, excluding: Iterable[str], limit: int
) -> list[User]:
    """The people seen most recently, leaving out `excluding`."""
    return await _find(
        engine,
        User,
        {"_id": {"$nin": _object_ids(excluding)}},
        sort=[("last_seen_at", -1)],
        limit=limit,
    )


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
    await _insert(engine, message)
    for reader in participants:
        if reader != message.sender_id:
            await count_unread_dm(engine, user_id=reader, conversation=conversation)
    return message


async def get_message(engine: AIOEngine, *, message_id: str) -> Message | None:
    oid = parse_id(message_id)
    return await get_by_id(engine, Message, object_id=oid) if oid else None


async def messages_by_id(
    engine: AIOEngine, *, message_ids: Sequence[ObjectId]
) -> dict[ObjectId, Message]:
    if not message_ids:
        return {}
    found = await _find(engine, Message, {"_id": {"$in": list(set(message_ids))}})
    return {message.id: message for message in found}


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
    return await _update(engine, message, body=body, stamp="edited_at")


async def delete_message(engine: AIOEngine, *, message: Message) -> Message:
    return await _update(engine, message, body="", deleted=True)


async def set_last_seen(engine: AIOEngine, *, user_ids: Iterable[str]) -> None:
    """These users were here just now."""
    ids = _object_ids(user_ids)
    if ids:
        await engine.get_collection(User).update_many(
            {"_id": {"$in": ids}}, {"$currentDate": {"last_seen_at": True}}
        )


# Presence: one document per open stream


async def open_presence(engine: AIOEngine, *, presence_id: str, user_id: str, ttl: float) -> None:
    presence = Presence(id=presence_id, user_id=user_id, expires_at=now() + timedelta(seconds=ttl))
    await _insert(engine, presence)


async def close_presence(engine: AIOEngine, *, presence_id: str) -> None:
    await engine.get_collection(Presence).delete_one({"_id": presence_id})


async def refresh_presence(
    engine: AIOEngine, *, presences: Sequence[tuple[str, str]], ttl: float
) -> None:
    """Pushes back the expiry of these (presence id, user id) streams, in one round trip.

    Whole documents are replaced rather than $set: see _update. One that was swept or closed
    meanwhile stays gone.
    """
    expires_at = now() + timedelta(seconds=ttl)
    await engine.get_collection(Presence).bulk_write(
        [
            ReplaceOne(
                {"_id": presence_id},
                Presence(id=presence_id, user_id=user_id, expires_at=expires_at).model_dump_doc(),
            )
            for presence_id, user_id in presences
        ],
        ordered=False,
    )


async def stale_presence(engine: AIOEngine) -> list[Presence]:
    """The presence of streams whose process stopped vouching for them."""
    return await _find(engine, Presence, {"expires_at": {"$lt": now()}})


async def delete_stale_presence(engine: AIOEngine, *, presence_ids: list[str]) -> None:
    await engine.get_collection(Presence).delete_many(
        {"_id": {"$in": presence_ids}, "expires_at": {"$lt": now()}}
    )


async def online_user_ids(engine: AIOEngine) -> set[str]:
    present = await _find(engine, Presence, {"expires_at": {"$gte": now()}})
    return {p.user_id for p in present}


async def is_online(engine: AIOEngine, *, user_id: str) -> bool:
    filter = {"user_id": user_id, "expires_at": {"$gte": now()}}
    return await engine.get_collection(Presence).find_one(filter) is not None


# Typing notices


async def set_typing(
    engine: AIOEngine, *, user: User, conversation: str, participants: list[str]
) -> None:
    typing_id = f"{user.id}:{conversation}"
    doc = Typing(
        id=typing_id,
        user_id=str(user.id),
        username=user.username,
        conversation=conversation,
        participants=participants,
        at=now(),
    ).model_dump_doc()
    await engine.get_collection(Typing).replace_one({"_id": typing_id}, doc, upsert=True)


async def get_typing(engine: AIOEngine, *, typing_id: str) -> Typing | None:
    return await _find_one(engine, Typing, {"_id": typing_id})


# Read markers and unread counts


async def mark_read(engine: AIOEngine, *, user_id: str, conversation: str) -> None:
    marker = ReadMarker(
        id=f"{user_id}:{conversation}", user_id=user_id, conversation=conversation, read_at=now()
    ).model_dump_doc()
    await engine.get_collection(ReadMarker).replace_one({"_id": marker["_id"]}, marker, upsert=True)


async def get_read_marker(engine: AIOEngine, *, marker_id: str) -> ReadMarker | None:
    return await _find_one(engine, ReadMarker, {"_id": marker_id})


async def count_unread_dm(engine: AIOEngine, *, user_id: str, conversation: str) -> None:
    """One more direct message for user_id to read in conversation."""
    await engine.get_collection(ReadMarker).update_one(
        {"_id": f"{user_id}:{conversation}"},
        {
            "$inc": {"unread": 1},
            "$setOnInsert": {"user_id": user_id, "conversation": conversation},
            "$currentDate": {"read_at": True},  # a DM's own marker time is never read
        },
        upsert=True,
    )


async def unread_counts(engine: AIOEngine, *, user: User) -> dict[str, int]:
    """Unread messages per conversation: DM counters, and the public room counted by index."""
    markers = await _find(engine, ReadMarker, {"user_id": str(user.id)})
    counts = {m.conversation: m.unread for m in markers if m.unread > 0}
    public_read = next((m.read_at for m in markers if m.conversation == PUBLIC), user.created_at)
    counts[PUBLIC] = await engine.get_collection(Message).count_documents(
        {
            "conversation": PUBLIC,
            "created_at": {"$gt": public_read},
            "sender_id": {"$ne": str(user.id)},
            "deleted": False,
        }
    )
    return counts


# Limits: sign-in failures reserved before the check


async def reserve_login_failure(engine: AIOEngine, *, keys: Sequence[str]) -> ObjectId:
    """Counts a sign-in as failed before its password is checked: forget_login_failure takes
    it back from an attempt refused unchecked, clear_failures from a right password."""
    failure = await _insert(engine, LoginFailure(keys=list(keys), at=now()))
    return failure.id


async def forget_login_failure(engine: AIOEngine, *, failure_id: ObjectId) -> None:
    await engine.get_collection(LoginFailure).delete_one({"_id": failure_id})


async def recent_login_failures(engine: AIOEngine, *, key: str) -> list[LoginFailure]:
    """The failures (reserved ones included) counted against key in the window, oldest first."""
    return await _find(
        engine,
        LoginFailure,
        {"keys": key, "at": {"$gte": now() - LOGIN_WINDOW}},
        sort=[("at", 1)],
    )


# Limits: the posting rate


async def _count_event(engine: AIOEngine, *, key: str, rate: Rate) -> int | None:
    """Counts one event against key's rate, atomically in any number of processes: None when
    it is admitted, else the seconds to wait (and nothing is counted).

    The rule is chat.Rate.admit, written as conditional updates of the one number it keeps:
    after a pause (the common case, or the first time) the tat starts again from now, in one
    round trip; within a burst it moves on by one interval, in two, unless it is too far ahead.
    """
    collection = engine.get_collection(RateLimit)
    for _ in range(3):
        now = time.time()
        with contextlib.suppress(DuplicateKeyError):  # it is there, and ahead of now
            restart = {"$set": {"tat": now + rate.interval}}
            await collection.update_one({"_id": key, "tat": {"$lt": now}}, restart, upsert=True)
            return None
        within = {"$gte": now, "$lte": now + rate.tolerance}
        moved = await collection.update_one(
            {"_id": key, "tat": within}, {"$inc": {"tat": rate.interval}}
        )
        if moved.matched_count:
            return None
        doc = await collection.find_one({"_id": key})
        if doc is not None and rate.admit(doc["tat"], now) is None:
            return rate.retry_after(doc["tat"], now)
        # another request moved it in between: look again
    return 1  # still moving after three looks: come back in a second


async def count_post(engine: AIOEngine, *, user_id: str) -> None:
    """One more message from this user; PostingTooFast (and nothing counted) beyond POSTING."""
    wait = await _count_event(engine, key=f"post:{user_id}", rate=POSTING)
    if wait is not None:
        raise PostingTooFast(wait)
