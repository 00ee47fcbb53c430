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

from bson import ObjectId
from odmantic import Model
from pymongo import ReplaceOne
from pymongo.errors import DuplicateKeyError

from webapp.chat import (
    LOGIN_WINDOW,
    PAGE_SIZE,
    POSTING,
    PUBLIC,
    TYPING_REPEAT_SECS,
    Rate,
    is_username,
    username_key,
)
from webapp.database import Db
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
    db: Db, model: type[M], filter: Mapping[str, Any], *, sort: Sort = (), limit: int = 0
) -> list[M]:
    cursor = db[model.__collection__].find(filter, sort=list(sort) or None, limit=limit)
    return [model.model_validate_doc(doc) async for doc in cursor]


async def _find_one(db: Db, model: type[M], filter: Mapping[str, Any]) -> M | None:
    doc = await db[model.__collection__].find_one(filter)
    return model.model_validate_doc(doc) if doc is not None else None


async def _insert(db: Db, instance: M) -> M:
    await db[type(instance).__collection__].insert_one(instance.model_dump_doc())
    return instance


async def _update(db: Db, instance: M, *, stamp: str = "", **changes: Any) -> M:
    """Sets these fields, and `stamp` to the server's time, in the database and on the instance.

    Times are only ever written whole (in a new document) or as the server's $currentDate:
    nx-27017 stores a date given to $set as a string (README, "The embedded database").
    """
    update: dict[str, Any] = {"$set": changes} if changes else {}
    if stamp:
        update["$currentDate"] = {stamp: True}
        changes[stamp] = now()  # the instance's copy; the database has the server's
    await db[type(instance).__collection__].update_one({"_id": instance.id}, update)
    for name, value in changes.items():
        setattr(instance, name, value)
    return instance


async def get_by_id(db: Db, model: type[M], *, object_id: ObjectId) -> M | None:
    return await _find_one(db, model, {"_id": object_id})


# Users


async def create_user(db: Db, *, username: str, password_hash: str) -> User:
    joined = now()
    user = User(  # type: ignore[call-arg]  # odmantic makes the id
        username=username,
        username_key=username_key(username),
        password_hash=password_hash,
        created_at=joined,
        last_seen_at=joined,  # registering is being seen: newcomers count as recent
    )
    try:
        return await _insert(db, user)
    except DuplicateKeyError:
        raise NameTaken() from None


async def get_user_by_name(db: Db, *, username: str) -> User | None:
    """The user of that name, ignoring ASCII case; None, without a query, for a name that
    nobody can have."""
    if not is_username(username):
        return None
    return await _find_one(db, User, {"username_key": username_key(username)})


async def get_user(db: Db, *, user_id: str) -> User | None:
    oid = parse_id(user_id)
    return await get_by_id(db, User, object_id=oid) if oid else None


def _object_ids(user_ids: Iterable[str]) -> list[ObjectId]:
    return [oid for oid in map(parse_id, user_ids) if oid is not None]


async def users_by_id(db: Db, *, user_ids: Iterable[str]) -> list[User]:
    """These users, by name."""
    ids = _object_ids(user_ids)
    if not ids:
        return []
    return await _find(db, User, {"_id": {"$in": ids}}, sort=[("username_key", 1)])


async def recently_seen_users(db: Db, *, excluding: Iterable[str], limit: int) -> list[User]:
    """The people seen most recently, leaving out `excluding`."""
    return await _find(
        db,
        User,
        {"_id": {"$nin": _object_ids(excluding)}},
        sort=[("last_seen_at", -1)],
        limit=limit,
    )


async def set_password_hash(db: Db, *, user: User, password_hash: str) -> None:
    await _update(db, user, password_hash=password_hash)


async def set_away(db: Db, *, user: User, away_message: str) -> None:
    await _update(db, user, away_message=away_message)


# Sessions and sign-in throttling


async def revoke_token(db: Db, *, jti: str, expires_at: datetime) -> None:
    with contextlib.suppress(DuplicateKeyError):  # already signed out
        await _insert(db, RevokedToken(jti=jti, expires_at=expires_at))  # type: ignore[call-arg]  # odmantic makes the id


async def is_revoked(db: Db, *, jti: str) -> bool:
    return await _find_one(db, RevokedToken, {"jti": jti}) is not None


async def clear_failures(db: Db, *, key: str) -> None:
    await db[LoginFailure.__collection__].delete_many({"keys": key})


# Messages


async def create_message(
    db: Db, *, conversation: str, participants: list[str], sender: User, body: str
) -> Message:
    message = Message(  # type: ignore[call-arg]  # odmantic makes the id
        conversation=conversation,
        participants=participants,
        sender_id=str(sender.id),
        sender_name=sender.username,
        body=body,
        created_at=now(),
    )
    await _insert(db, message)
    for reader in participants:
        if reader != message.sender_id:
            await count_unread_dm(db, user_id=reader, conversation=conversation)
    return message


async def get_message(db: Db, *, message_id: str) -> Message | None:
    oid = parse_id(message_id)
    return await get_by_id(db, Message, object_id=oid) if oid else None


async def messages_by_id(db: Db, *, message_ids: Sequence[ObjectId]) -> dict[ObjectId, Message]:
    if not message_ids:
        return {}
    found = await _find(db, Message, {"_id": {"$in": list(set(message_ids))}})
    return {message.id: message for message in found}


async def list_messages(
    db: Db, *, conversation: str, before: Message | None = None, limit: int = PAGE_SIZE
) -> list[Message]:
    """The latest `limit` messages of a conversation (or those before `before`), oldest first."""
    filter: dict[str, Any] = {"conversation": conversation}
    if before is not None:
        filter["$or"] = [
            {"created_at": {"$lt": before.created_at}},
            {"created_at": before.created_at, "_id": {"$lt": before.id}},
        ]
    newest_first = await _find(
        db, Message, filter, sort=[("created_at", -1), ("_id", -1)], limit=limit
    )
    return newest_first[::-1]


async def edit_message(db: Db, *, message: Message, body: str) -> Message:
    return await _update(db, message, body=body, stamp="edited_at")


async def delete_message(db: Db, *, message: Message) -> Message:
    return await _update(db, message, body="", deleted=True)


async def set_last_seen(db: Db, *, user_ids: Iterable[str]) -> None:
    """These users were here just now."""
    ids = _object_ids(user_ids)
    if ids:
        await db[User.__collection__].update_many(
            {"_id": {"$in": ids}}, {"$currentDate": {"last_seen_at": True}}
        )


# Presence: one document per open stream


async def open_presence(
    db: Db, *, presence_id: str, user_id: str, opened_at: datetime, ttl: float
) -> None:
    expires_at = now() + timedelta(seconds=ttl)
    presence = Presence(id=presence_id, user_id=user_id, expires_at=expires_at, opened_at=opened_at)
    await _insert(db, presence)


async def close_oldest_presence(db: Db, *, user_id: str, keep: int) -> None:
    """Closes this user's oldest streams beyond the newest `keep`, in whatever process."""
    cursor = db[Presence.__collection__].find(
        {"user_id": user_id}, {"_id": 1}, sort=[("opened_at", -1)], skip=keep
    )
    extra = [doc["_id"] async for doc in cursor]
    if extra:
        await db[Presence.__collection__].delete_many({"_id": {"$in": extra}})


async def close_presence(db: Db, *, presence_id: str) -> None:
    await db[Presence.__collection__].delete_one({"_id": presence_id})


async def refresh_presence(
    db: Db, *, presences: Sequence[tuple[str, str, datetime]], ttl: float
) -> None:
    """Pushes back the expiry of these (presence id, user id, opened at) streams, in one trip.

    Whole documents are replaced rather than $set: see _update. One that was swept or closed
    meanwhile stays gone.
    """
    expires_at = now() + timedelta(seconds=ttl)
    await db[Presence.__collection__].bulk_write(
        [
            ReplaceOne(
                {"_id": presence_id},
                Presence(
                    id=presence_id, user_id=user_id, expires_at=expires_at, opened_at=opened_at
                ).model_dump_doc(),
            )
            for presence_id, user_id, opened_at in presences
        ],
        ordered=False,
    )


async def stale_presence(db: Db) -> list[Presence]:
    """The presence of streams whose process stopped vouching for them."""
    return await _find(db, Presence, {"expires_at": {"$lt": now()}})


async def delete_stale_presence(db: Db, *, presence_ids: list[str]) -> None:
    await db[Presence.__collection__].delete_many(
        {"_id": {"$in": presence_ids}, "expires_at": {"$lt": now()}}
    )


async def online_user_ids(db: Db) -> set[str]:
    present = await _find(db, Presence, {"expires_at": {"$gte": now()}})
    return {p.user_id for p in present}


async def online_among(db: Db, *, user_ids: Iterable[str]) -> set[str]:
    """Those of these users with an open stream in any process."""
    ids = list(user_ids)
    if not ids:
        return set()
    filter = {"user_id": {"$in": ids}, "expires_at": {"$gte": now()}}
    cursor = db[Presence.__collection__].find(filter, {"user_id": 1})
    return {doc["user_id"] async for doc in cursor}


# Typing notices


async def set_typing(db: Db, *, user: User, conversation: str, participants: list[str]) -> bool:
    """Records a typing notice; False (nothing written) when one went out just before.

    Repeats within TYPING_REPEAT_SECS of the last notice are dropped here, so that at most one
    reaches anyone in that time whatever a client sends.
    """
    typing_id = f"{user.id}:{conversation}"
    doc = Typing(
        id=typing_id,
        user_id=str(user.id),
        username=user.username,
        conversation=conversation,
        participants=participants,
        at=now(),
    ).model_dump_doc()
    try:
        await db[Typing.__collection__].insert_one(doc)
        return True
    except DuplicateKeyError:
        pass
    quiet_since = doc["at"] - timedelta(seconds=TYPING_REPEAT_SECS)
    result = await db[Typing.__collection__].replace_one(
        {"_id": typing_id, "at": {"$lt": quiet_since}}, doc
    )
    return result.matched_count == 1


async def get_typing(db: Db, *, typing_id: str) -> Typing | None:
    return await _find_one(db, Typing, {"_id": typing_id})


# Read markers and unread counts


async def mark_read(db: Db, *, user_id: str, conversation: str) -> None:
    marker = ReadMarker(
        id=f"{user_id}:{conversation}", user_id=user_id, conversation=conversation, read_at=now()
    ).model_dump_doc()
    await db[ReadMarker.__collection__].replace_one({"_id": marker["_id"]}, marker, upsert=True)


async def get_read_marker(db: Db, *, marker_id: str) -> ReadMarker | None:
    return await _find_one(db, ReadMarker, {"_id": marker_id})


async def count_unread_dm(db: Db, *, user_id: str, conversation: str) -> None:
    """One more direct message for user_id to read in conversation."""
    await db[ReadMarker.__collection__].update_one(
        {"_id": f"{user_id}:{conversation}"},
        {
            "$inc": {"unread": 1},
            "$setOnInsert": {"user_id": user_id, "conversation": conversation},
            "$currentDate": {"read_at": True},  # a DM's own marker time is never read
        },
        upsert=True,
    )


async def unread_counts(db: Db, *, user: User) -> dict[str, int]:
    """Unread messages per conversation: DM counters, and the public room counted by index."""
    markers = await _find(db, ReadMarker, {"user_id": str(user.id)})
    counts = {m.conversation: m.unread for m in markers if m.unread > 0}
    public_read = next((m.read_at for m in markers if m.conversation == PUBLIC), user.created_at)
    counts[PUBLIC] = await db[Message.__collection__].count_documents(
        {
            "conversation": PUBLIC,
            "created_at": {"$gt": public_read},
            "sender_id": {"$ne": str(user.id)},
            "deleted": False,
        }
    )
    return counts


# Limits: sign-in failures reserved before the check


async def reserve_login_failure(db: Db, *, keys: Sequence[str]) -> ObjectId:
    """Counts a sign-in as failed before its password is checked: forget_login_failure takes
    it back from an attempt refused unchecked, clear_failures from a right password."""
    failure = await _insert(db, LoginFailure(keys=list(keys), at=now()))  # type: ignore[call-arg]  # odmantic makes the id
    return failure.id


async def forget_login_failure(db: Db, *, failure_id: ObjectId) -> None:
    await db[LoginFailure.__collection__].delete_one({"_id": failure_id})


async def recent_login_failures(db: Db, *, key: str) -> list[LoginFailure]:
    """The failures (reserved ones included) counted against key in the window, oldest first."""
    return await _find(
        db,
        LoginFailure,
        {"keys": key, "at": {"$gte": now() - LOGIN_WINDOW}},
        sort=[("at", 1)],
    )


# Limits: the posting rate


async def _count_event(db: Db, *, key: str, rate: Rate) -> int | None:
    """Counts one event against key's rate, atomically in any number of processes: None when
    it is admitted, else the seconds to wait (and nothing is counted).

    The rule is chat.Rate.admit, written as conditional updates of the one number it keeps:
    after a pause (the common case, or the first time) the tat starts again from now, in one
    round trip; within a burst it moves on by one interval, in two, unless it is too far ahead.
    """
    collection = db[RateLimit.__collection__]
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


async def count_post(db: Db, *, user_id: str) -> None:
    """One more message from this user; PostingTooFast (and nothing counted) beyond POSTING."""
    wait = await _count_event(db, key=f"post:{user_id}", rate=POSTING)
    if wait is not None:
        raise PostingTooFast(wait)
