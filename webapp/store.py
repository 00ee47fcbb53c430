"""Every database query the app makes: async, keyword-only, returning models.

Reads go through the collection's find() with plain filters, not odmantic's aggregate-based
find: the embedded server does not match ObjectIds inside $match (README, "The embedded
database"), and find() is what MongoDB serves best from an index anyway.
"""

from __future__ import annotations

import contextlib
import re
import time
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

from bson import ObjectId
from odmantic import Model
from pymongo import ReplaceOne, ReturnDocument, UpdateOne
from pymongo.errors import DuplicateKeyError

from webapp import access
from webapp.chat import (
    LOGIN_WINDOW,
    PAGE_SIZE,
    PUBLIC,
    TYPING_REPEAT_SECS,
    UNREAD_CAP,
    UNREAD_WINDOW,
    Rate,
    dm_key,
    is_username,
    username_key,
)
from webapp.database import Db, Document
from webapp.errors import NameTaken
from webapp.models import (
    LoginFailure,
    Membership,
    Message,
    Presence,
    RateLimit,
    RevokedToken,
    Room,
    RoomMute,
    RoomSequence,
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


# Rooms and memberships


async def _room_by_key(db: Db, *, key: str, new: Room) -> Room:
    """The room of this key, made as `new` if there is none (by any number of processes)."""
    found = await _find_one(db, Room, {"key": key})
    if found is not None:
        return found
    try:
        return await _insert(db, new)
    except DuplicateKeyError:  # another request or process made it first
        found = await _find_one(db, Room, {"key": key})
        assert found is not None
        return found


async def public_room(db: Db) -> Room:
    new = Room(kind=access.PUBLIC, key=PUBLIC, name="Public room", created_at=now())  # type: ignore[call-arg]  # odmantic makes the id
    return await _room_by_key(db, key=PUBLIC, new=new)


async def find_room(db: Db, *, key: str) -> Room | None:
    return await _find_one(db, Room, {"key": key})


async def get_room(db: Db, *, room_id: str) -> Room | None:
    oid = parse_id(room_id)
    return await get_by_id(db, Room, object_id=oid) if oid else None


async def rooms_by_id(db: Db, *, room_ids: Iterable[str]) -> list[Room]:
    ids = [oid for oid in map(parse_id, room_ids) if oid is not None]
    return await _find(db, Room, {"_id": {"$in": ids}}) if ids else []


def _membership(room_id: str, user_id: str, joined_at: datetime, read_seq: int = 0) -> Membership:
    return Membership(
        id=f"{room_id}:{user_id}",
        room_id=room_id,
        user_id=user_id,
        read_seq=read_seq,
        joined_at=joined_at,
    )


async def _join(db: Db, *, room_id: str, user_id: str, read_seq: int = 0) -> bool:
    """Makes `user_id` a member; False when they were one already."""
    membership = _membership(room_id, user_id, now(), read_seq).model_dump_doc()
    try:
        await db[Membership.__collection__].insert_one(membership)
    except DuplicateKeyError:
        return False
    return True


async def dm_room(db: Db, *, a: str, b: str) -> Room:
    """The direct conversation between two users (one, for notes to self), made on first use."""
    key = dm_key(a, b)
    members = sorted({a, b})
    new = Room(kind=access.DM, key=key, members=members, created_at=now())  # type: ignore[call-arg]  # odmantic makes the id
    found = await _find_one(db, Room, {"key": key})
    if found is not None:
        return found
    for user_id in members:  # first, so that the room never exists without its members
        await _join(db, room_id=str(new.id), user_id=user_id)
    room = await _room_by_key(db, key=key, new=new)
    if room.id != new.id:  # another request made it first: these memberships are of nothing
        await db[Membership.__collection__].delete_many({"room_id": str(new.id)})
    return room


async def create_group_room(db: Db, *, name: str, topic: str, open: bool, owner: User) -> Room:
    room_id = ObjectId()
    room = Room(
        id=room_id,
        kind=access.GROUP,
        key=str(room_id),
        name=name,
        name_key=name.casefold(),
        topic=topic,
        open=open,
        owner_id=str(owner.id),
        created_at=now(),
    )
    await _join(db, room_id=str(room_id), user_id=str(owner.id))
    return await _insert(db, room)


async def change_room(db: Db, *, room: Room, name: str, topic: str) -> Room:
    return await _update(db, room, name=name, name_key=name.casefold(), topic=topic)


async def get_membership(db: Db, *, room_id: str, user_id: str) -> Membership | None:
    return await _find_one(db, Membership, {"_id": f"{room_id}:{user_id}"})


async def is_member(db: Db, *, room: Room, user_id: str) -> bool:
    """Whether `user_id` belongs to the room (everyone belongs to the public room)."""
    if room.kind == access.PUBLIC:
        return True
    if room.kind == access.DM:  # its two are fixed for ever
        return user_id in room.members
    return await get_membership(db, room_id=str(room.id), user_id=user_id) is not None


async def member_ids(db: Db, *, room_id: str) -> list[str]:
    """The room's members, longest-standing first."""
    cursor = db[Membership.__collection__].find(
        {"room_id": room_id}, {"user_id": 1}, sort=[("joined_at", 1), ("_id", 1)]
    )
    return [doc["user_id"] async for doc in cursor]


async def memberships_of(db: Db, *, user_id: str) -> list[Membership]:
    return await _find(db, Membership, {"user_id": user_id})


async def room_ids_of(db: Db, *, user_id: str) -> set[str]:
    cursor = db[Membership.__collection__].find({"user_id": user_id}, {"room_id": 1})
    return {doc["room_id"] async for doc in cursor}


async def contacts_of(db: Db, *, user_ids: Iterable[str], public_id: str) -> dict[str, set[str]]:
    """For each of these users, everyone who shares a DM or a group room with them (and
    themselves): two queries, however many users and rooms."""
    ids = list(user_ids)
    memberships = db[Membership.__collection__]
    theirs = memberships.find({"user_id": {"$in": ids}}, {"room_id": 1, "user_id": 1})
    rooms_of: dict[str, set[str]] = {user_id: set() for user_id in ids}
    async for doc in theirs:
        if doc["room_id"] != public_id:  # everyone's: memberships there only hold positions
            rooms_of[doc["user_id"]].add(doc["room_id"])
    room_ids = set().union(*rooms_of.values())
    members: dict[str, set[str]] = {}
    if room_ids:
        cursor = memberships.find(
            {"room_id": {"$in": list(room_ids)}}, {"room_id": 1, "user_id": 1}
        )
        async for doc in cursor:
            members.setdefault(doc["room_id"], set()).add(doc["user_id"])
    return {
        user_id: {user_id}.union(*(members.get(room, set()) for room in rooms))
        for user_id, rooms in rooms_of.items()
    }


async def add_member(db: Db, *, room: Room, user_id: str) -> tuple[bool, Room | None]:
    """Adds a member (False if they were in already), and the room as it then is (settled:
    see settle_room). They start caught up: what was said before is history to read, not
    unread messages."""
    counter = await db[RoomSequence.__collection__].find_one({"_id": str(room.id)})
    read_seq = counter["value"] if counter else 0
    added = await _join(db, room_id=str(room.id), user_id=user_id, read_seq=read_seq)
    return added, await settle_room(db, room_id=room.id)


async def remove_member(db: Db, *, room: Room, user_id: str) -> Room | None:
    """Takes someone out of a group room (and forgets whether they had muted it); the room
    then settles who owns it (settle_room)."""
    room_id = str(room.id)
    await db[Membership.__collection__].delete_one({"_id": f"{room_id}:{user_id}"})
    await db[RoomMute.__collection__].delete_one({"_id": f"{room_id}:{user_id}"})
    return await settle_room(db, room_id=room.id)


async def settle_room(db: Db, *, room_id: ObjectId) -> Room | None:
    """Makes the room's owner and archived flag agree with its members, as access.ownership
    says: after anyone joins, is added or leaves.

    Several may join and leave at once: each looks, after its own change, at who is there and
    who owns the room; a change is made only if the room is still as seen (compare and set),
    and looked at again until it holds, so that whoever settles last leaves it right: a join
    racing the last leave either finds the room alive or brings it back with its new member.
    """
    rooms = db[Room.__collection__]
    current = None
    for _ in range(5):
        current = await get_by_id(db, Room, object_id=room_id)
        if current is None or current.kind != access.GROUP:
            return current
        members = await member_ids(db, room_id=str(room_id))
        owner_id, archived = access.ownership(current.owner_id, members)
        if (owner_id, archived) == (current.owner_id, current.archived):
            return current
        seen = {"_id": room_id, "owner_id": current.owner_id, "archived": current.archived}
        change: dict[str, Any] = {"owner_id": owner_id}
        if archived != current.archived:
            change["archived"] = archived
        await rooms.update_one(seen, {"$set": change})
    return current


async def set_muted(db: Db, *, room: Room, user_id: str, muted: bool) -> None:
    """Mutes or unmutes the room for this member (a document each mute, deleted to unmute)."""
    mute_id = f"{room.id}:{user_id}"
    if not muted:
        await db[RoomMute.__collection__].delete_one({"_id": mute_id})
        return
    mute = RoomMute(id=mute_id, room_id=str(room.id), user_id=user_id, muted_at=now())
    with contextlib.suppress(DuplicateKeyError):  # muted already
        await _insert(db, mute)


async def muted_room_ids(db: Db, *, user_id: str) -> set[str]:
    """The rooms this person has muted."""
    cursor = db[RoomMute.__collection__].find({"user_id": user_id}, {"room_id": 1})
    return {doc["room_id"] async for doc in cursor}


async def open_rooms(
    db: Db, *, name_part: str = "", after: Room | None = None, limit: int
) -> list[tuple[Room, int]]:
    """Up to `limit` open group rooms by name (those after `after`; those whose name holds
    `name_part`, ignoring case), each with its number of members."""
    conditions: list[dict[str, Any]] = [{"open": True, "archived": False, "kind": access.GROUP}]
    if name_part:
        conditions.append({"name_key": {"$regex": re.escape(name_part.casefold())}})
    if after is not None:
        conditions.append(
            {
                "$or": [
                    {"name_key": {"$gt": after.name_key}},
                    {"name_key": after.name_key, "_id": {"$gt": after.id}},
                ]
            }
        )
    rooms = await _find(
        db, Room, {"$and": conditions}, sort=[("name_key", 1), ("_id", 1)], limit=limit
    )
    counts = await db[Membership.__collection__].aggregate(
        [
            {"$match": {"room_id": {"$in": [str(room.id) for room in rooms]}}},
            {"$group": {"_id": "$room_id", "members": {"$sum": 1}}},
        ]
    )
    members = {doc["_id"]: doc["members"] async for doc in counts}
    return [(room, members.get(str(room.id), 0)) for room in rooms]


# Messages


async def create_message(db: Db, *, room: Room, sender: User, body: str) -> Message:
    """One insert and one counter update, however many members the room has."""
    room_id = str(room.id)
    counter = await db[RoomSequence.__collection__].find_one_and_update(
        {"_id": room_id},
        {"$inc": {"value": 1}},
        upsert=True,
        return_document=ReturnDocument.AFTER,
    )
    assert counter is not None  # an upsert returning the document after it
    message = Message(  # type: ignore[call-arg]  # odmantic makes the id
        room_id=room_id,
        seq=counter["value"],
        sender_id=str(sender.id),
        sender_name=sender.username,
        body=body,
        created_at=now(),
    )
    return await _insert(db, message)


async def get_message(db: Db, *, message_id: str) -> Message | None:
    oid = parse_id(message_id)
    return await get_by_id(db, Message, object_id=oid) if oid else None


async def messages_by_id(db: Db, *, message_ids: Sequence[ObjectId]) -> dict[ObjectId, Message]:
    if not message_ids:
        return {}
    found = await _find(db, Message, {"_id": {"$in": list(set(message_ids))}})
    return {message.id: message for message in found}


async def list_messages(
    db: Db, *, room_id: str, before: Message | None = None, limit: int = PAGE_SIZE
) -> list[Message]:
    """The latest `limit` messages of a room (or those before `before`), oldest first."""
    filter: dict[str, Any] = {"room_id": room_id}
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


async def set_typing(db: Db, *, user: User, room: Room) -> bool:
    """Records a typing notice; False (nothing written) when one went out just before.

    Repeats within TYPING_REPEAT_SECS of the last notice are dropped here, so that at most one
    reaches anyone in that time whatever a client sends.
    """
    typing_id = f"{user.id}:{room.id}"
    doc = Typing(
        id=typing_id, user_id=str(user.id), username=user.username, room_id=str(room.id), at=now()
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


# Read positions and unread counts


async def room_count(db: Db, *, room_id: str) -> int:
    """How many messages the room has had (its sequence number so far)."""
    counter = await db[RoomSequence.__collection__].find_one({"_id": room_id})
    return int(counter["value"]) if counter else 0


async def _starting_position(db: Db, *, room: Room, user: User) -> int:
    """Where someone who never read the public room stands: what was posted before they
    registered is history, not unread (as unread_counts counts). Counted, as a seq would be:
    nx-27017's find() compares dates to the second (README, "The embedded database")."""
    return await db[Message.__collection__].count_documents(
        {"room_id": str(room.id), "created_at": {"$lte": user.created_at}}
    )


async def read_position(db: Db, *, room: Room, user: User) -> int:
    """The seq up to which `user` has read the room."""
    membership = await get_membership(db, room_id=str(room.id), user_id=str(user.id))
    if membership is not None:
        return membership.read_seq
    if room.kind == access.PUBLIC:
        return await _starting_position(db, room=room, user=user)
    return 0


async def mark_read(db: Db, *, room: Room, user: User, seq: int | None = None) -> None:
    """The reader has read the room up to message `seq` (None: everything posted so far): their
    read position moves up to it, never past the room's count and never back. Nothing is
    written when it would not move. In the public room the membership holds only this."""
    room_id, user_id = str(room.id), str(user.id)
    count = await room_count(db, room_id=room_id)
    target = count if seq is None else min(seq, count)
    membership = await get_membership(db, room_id=room_id, user_id=user_id)
    if membership is not None:
        if target <= membership.read_seq:
            return
    elif room.kind == access.PUBLIC:  # never read before: from where they started
        if target <= await _starting_position(db, room=room, user=user):
            return
    else:
        return  # elsewhere a membership is never made by reading
    update: dict[str, Any] = {"$max": {"read_seq": target}}
    if room.kind == access.PUBLIC:
        update["$setOnInsert"] = {"room_id": room_id, "user_id": user_id, "joined_at": now()}
    await db[Membership.__collection__].update_one(
        {"_id": f"{room_id}:{user_id}"}, update, upsert=room.kind == access.PUBLIC
    )


async def get_membership_by_id(db: Db, *, membership_id: str) -> Membership | None:
    return await _find_one(db, Membership, {"_id": membership_id})


async def room_sequences(db: Db, *, room_ids: Iterable[str]) -> dict[str, int]:
    cursor = db[RoomSequence.__collection__].find({"_id": {"$in": list(room_ids)}})
    return {doc["_id"]: doc["value"] async for doc in cursor}


async def count_unread(
    db: Db, *, room_id: str, user_id: str, after_seq: int, upto: int | None = None
) -> int:
    """Others' messages in the room after `after_seq` (and up to `upto`, when given; deleted
    ones aside), up to UNREAD_CAP."""
    seq: dict[str, int] = {"$gt": after_seq}
    if upto is not None:
        seq["$lte"] = upto
    return await db[Message.__collection__].count_documents(
        {"room_id": room_id, "seq": seq, "sender_id": {"$ne": user_id}, "deleted": False},
        limit=UNREAD_CAP,
    )


async def unread_counts(
    db: Db, *, user: User, public: Room, memberships: Sequence[Membership]
) -> dict[str, int]:
    """Unread messages per room id, for the public room and the rooms of these memberships.

    Two queries however many rooms there are and however many have news (three for someone
    who never read the public room): the counters, then one count of others' messages after
    the reader's position in every room whose counter moved past it (at most UNREAD_WINDOW
    messages back in each, so that a room nobody read for years costs no more than one read
    last week).
    """
    user_id = str(user.id)
    positions = {m.room_id: m.read_seq for m in memberships}
    public_id = str(public.id)
    sequences = await room_sequences(db, room_ids=[*positions, public_id])
    others = {"sender_id": {"$ne": user_id}, "deleted": False}
    # Each branch carries every condition: nx-27017's aggregate drops fields beside an $or.
    branches: list[dict[str, Any]] = []
    if public_id in sequences and public_id not in positions:  # never read: since joining
        positions[public_id] = await _starting_position(db, room=public, user=user)
    for room_id, seq in sequences.items():
        read = positions.get(room_id)
        if read is not None and seq > read:
            since = {"$gt": max(read, seq - UNREAD_WINDOW), "$lte": seq}
            branches.append({"room_id": room_id, "seq": since, **others})
    if not branches:
        return {}
    counted = await db[Message.__collection__].aggregate(
        [{"$match": {"$or": branches}}, {"$group": {"_id": "$room_id", "unread": {"$sum": 1}}}]
    )
    return {doc["_id"]: min(int(doc["unread"]), UNREAD_CAP) async for doc in counted}


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


async def count_event(db: Db, *, key: str, rate: Rate) -> int | None:
    """Counts one event against key's rate in every process: None when it is admitted, else
    the seconds to wait (and nothing is counted)."""
    return await _count_event(db, key=key, rate=rate)


# Migration from conversation keys (messages that named "public" or "dm:<a>:<b>" and copied
# their participants, read markers with DM counters) to rooms and memberships


async def migrate_conversations(db: Db) -> int:
    """Moves data of the old shape to rooms; returns the messages moved.

    Idempotent, and safe in several processes at once: each step either finds its work done or
    does the same as any other process would (rooms by their unique key, memberships by their
    id, sequence numbers by the messages' order, positions by $max).
    """
    messages = db[Message.__collection__]
    old = {"room_id": {"$exists": False}, "conversation": {"$exists": True}}
    moved = 0
    for key in await messages.distinct("conversation", old):
        room = await _migrated_room(db, key)
        if room is None:
            continue
        moved += await _number_messages(db, room, key)
    await _migrate_read_markers(db)
    typing = db[Typing.__collection__]
    await typing.delete_many({"room_id": {"$exists": False}})  # lapse within seconds anyway
    return moved


async def _migrated_room(db: Db, key: str) -> Room | None:
    if key == PUBLIC:
        return await public_room(db)
    kind, _, pair = key.partition(":")
    first, _, second = pair.partition(":")
    if kind != "dm" or not first or not second:
        return None
    return await dm_room(db, a=first, b=second)


async def _number_messages(db: Db, room: Room, key: str) -> int:
    """Gives the room's old messages its id and their seq, in the order they were posted."""
    messages = db[Message.__collection__]
    room_id = str(room.id)
    cursor = messages.find({"conversation": key}, {"_id": 1}, sort=[("created_at", 1), ("_id", 1)])
    ids = [doc["_id"] async for doc in cursor]
    numbered = [
        UpdateOne(
            {"_id": oid, "room_id": {"$exists": False}},
            {"$set": {"room_id": room_id, "seq": seq}, "$unset": {"participants": ""}},
        )
        for seq, oid in enumerate(ids, start=1)
    ]
    if not numbered:
        return 0
    result = await messages.bulk_write(numbered, ordered=False)
    await db[RoomSequence.__collection__].update_one(
        {"_id": room_id}, {"$max": {"value": len(ids)}}, upsert=True
    )
    await messages.update_many({"room_id": room_id}, {"$unset": {"conversation": ""}})
    return result.modified_count


async def _migrate_read_markers(db: Db) -> None:
    """A marker's time (public room) or counter (DMs) becomes a read position.

    Positions are worked out from the messages' order, whichever shape each message is in yet,
    so that a process still numbering them elsewhere changes nothing here.
    """
    markers = db["read_markers"]
    async for marker in markers.find({}):
        key = marker.get("conversation", "")
        room = await find_room(db, key=key)
        user_id = marker.get("user_id", "")
        if room is not None and user_id:
            room_id = str(room.id)
            read_seq = await _position_of(db, room, key, marker, user_id)
            await db[Membership.__collection__].update_one(
                {"_id": f"{room_id}:{user_id}"},
                {
                    "$max": {"read_seq": read_seq},
                    "$setOnInsert": {"room_id": room_id, "user_id": user_id, "joined_at": now()},
                },
                upsert=room.kind == access.PUBLIC,
            )
        await markers.delete_one({"_id": marker["_id"]})


async def _position_of(db: Db, room: Room, key: str, marker: Document, user_id: str) -> int:
    """How many of the room's messages, in posting order, a marker says were read."""
    messages = db[Message.__collection__]
    of_room = {"$or": [{"conversation": key}, {"room_id": str(room.id)}]}
    if room.kind == access.PUBLIC:
        return await messages.count_documents(
            {**of_room, "created_at": {"$lte": marker["read_at"]}}
        )
    unread = int(marker.get("unread", 0))
    if unread <= 0:
        return await messages.count_documents(of_room)
    # The oldest unread one: the unread-th newest from someone else. Everything before it is read.
    oldest_unread = await messages.find_one(
        {**of_room, "sender_id": {"$ne": user_id}},
        sort=[("created_at", -1), ("_id", -1)],
        skip=unread - 1,
    )
    if oldest_unread is None:
        return 0
    at = oldest_unread["created_at"]
    earlier = [
        {"created_at": {"$lt": at}},
        {"created_at": at, "_id": {"$lt": oldest_unread["_id"]}},
    ]
    return await messages.count_documents({"$and": [of_room, {"$or": earlier}]})
