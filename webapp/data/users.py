"""People: their accounts, away messages and when they were last seen."""

from __future__ import annotations

from collections.abc import Iterable

from pymongo.errors import DuplicateKeyError

from webapp.data._query import find, find_one, get_by_id, insert, now, object_ids, parse_id, update
from webapp.data.connection import Db
from webapp.data.models import User
from webapp.errors import NameTaken
from webapp.rules.text import is_username, username_key


async def create(db: Db, *, username: str, password_hash: str) -> User:
    """A new account; NameTaken when the name is someone's, whatever its case."""
    joined = now()
    user = User(  # type: ignore[call-arg]  # odmantic makes the id
        username=username,
        username_key=username_key(username),
        password_hash=password_hash,
        created_at=joined,
        last_seen_at=joined,  # registering is being seen: newcomers count as recent
    )
    try:
        return await insert(db, user)
    except DuplicateKeyError:
        raise NameTaken() from None


async def by_name(db: Db, *, username: str) -> User | None:
    """The user of that name, ignoring ASCII case; None, without a query, for a name that
    nobody can have."""
    if not is_username(username):
        return None
    return await find_one(db, User, {"username_key": username_key(username)})


async def by_id(db: Db, *, user_id: str) -> User | None:
    oid = parse_id(user_id)
    return await get_by_id(db, User, object_id=oid) if oid else None


async def many_by_id(db: Db, *, user_ids: Iterable[str]) -> list[User]:
    """These users, by name."""
    ids = object_ids(user_ids)
    if not ids:
        return []
    return await find(db, User, {"_id": {"$in": ids}}, sort=[("username_key", 1)])


async def many_by_name(db: Db, *, usernames: Iterable[str]) -> list[User]:
    """The users of these names (ignoring ASCII case); names nobody can have are skipped."""
    keys = [username_key(name) for name in usernames if is_username(name)]
    if not keys:
        return []
    return await find(db, User, {"username_key": {"$in": keys}})


async def recently_seen(db: Db, *, excluding: Iterable[str], limit: int) -> list[User]:
    """The people seen most recently, leaving out `excluding`."""
    return await find(
        db,
        User,
        {"_id": {"$nin": object_ids(excluding)}},
        sort=[("last_seen_at", -1)],
        limit=limit,
    )


async def set_password_hash(db: Db, *, user: User, password_hash: str) -> None:
    await update(db, user, password_hash=password_hash)


async def set_away(db: Db, *, user: User, away_message: str) -> None:
    await update(db, user, away_message=away_message)


async def set_last_seen(db: Db, *, user_ids: Iterable[str]) -> None:
    """These users were here just now."""
    ids = object_ids(user_ids)
    if ids:
        await db[User.__collection__].update_many(
            {"_id": {"$in": ids}}, {"$currentDate": {"last_seen_at": True}}
        )
