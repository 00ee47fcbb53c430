"""Group rooms: making one, joining, adding and removing people, renaming, muting.

Who may do what is rules/access.py's; who owns a room and whether it is archived follow who
is in it (access.ownership), settled after every change of its members.
"""

from __future__ import annotations

from webapp.actions import limits
from webapp.actions.seat import Seat
from webapp.data import memberships, reads, rooms, users
from webapp.data.connection import Db
from webapp.data.models import Room, User
from webapp.errors import Forbidden, NotFound
from webapp.rules import access
from webapp.rules.text import clean_muted, clean_room_name, clean_topic, is_username

SETTLE_TRIES = 5
NO_SUCH_ROOM = "There is no such room."


def no_such_room() -> NotFound:
    """What every room route answers for a room one may not see: as for no room at all."""
    return NotFound(NO_SUCH_ROOM)


def _nobody_called(username: str, where: str = "") -> NotFound:
    named = username if is_username(username) else "by that name"
    if where:
        return NotFound(f"There is nobody called {named} {where}.")
    return NotFound(f"There is no user called {named}.")


async def create(db: Db, *, owner: User, name: str, topic: str, open: bool) -> Room:
    """A new group room, its creator its owner and only member."""
    name, topic = clean_room_name(name), clean_topic(topic)
    await limits.count(db, "room", user_id=str(owner.id))
    return await rooms.create_group(db, name=name, topic=topic, open=open, owner_id=str(owner.id))


async def settle(db: Db, room: Room) -> Room | None:
    """Makes the room's owner and archived flag agree with its members (access.ownership),
    after anyone joins, is added or leaves.

    Several may join and leave at once: each looks, after its own change, at who is there and
    who owns the room; a change is made only if the room is still as seen (compare and set),
    and looked at again until it holds, so that whoever settles last leaves it right: a join
    racing the last leave either finds the room alive or brings it back with its new member.
    """
    current: Room | None = room
    for _ in range(SETTLE_TRIES):
        current = await rooms.by_id(db, room_id=str(room.id))
        if current is None or current.kind != access.GROUP:
            return current
        members = await memberships.member_ids(db, room_id=str(room.id))
        owner_id, archived = access.ownership(current.owner_id, members)
        if (owner_id, archived) == (current.owner_id, current.archived):
            return current
        await rooms.set_ownership_if(db, room=current, owner_id=owner_id, archived=archived)
    return current


async def _add(db: Db, room: Room, user_id: str) -> tuple[bool, Room | None]:
    """Makes `user_id` a member, caught up (what was said before is history to read, not
    unread); whether they were new, and the room as it then is."""
    count = await reads.room_count(db, room_id=str(room.id))
    added = await memberships.join(db, room_id=str(room.id), user_id=user_id, read_seq=count)
    return added, await settle(db, room)


async def join(db: Db, seat: Seat, *, joiner: User) -> bool:
    """Into an open room (already in: nothing changes); whether they joined now."""
    assert seat.room is not None
    if seat.member:
        return False
    if not access.can_join(seat.room, seat.member):
        raise no_such_room()
    _, room = await _add(db, seat.room, str(joiner.id))
    if room is None or room.archived:  # settled: a room someone joins is never archived
        raise no_such_room()
    return True


async def add(db: Db, seat: Seat, *, adder: User, username: str) -> bool:
    """Any member adds someone by name; whether they were new to the room."""
    assert seat.room is not None
    if not access.can_add(seat.room, seat.member):
        raise Forbidden("Join this room to add people to it.")
    user = await users.by_name(db, username=username.strip())
    if user is None:
        raise _nobody_called(username.strip())
    await limits.count(db, "add", user_id=str(adder.id))
    added, _ = await _add(db, seat.room, str(user.id))
    return added


async def remove(db: Db, seat: Seat, *, remover: User, username: str) -> User:
    """The owner removes anyone; a member removes only himself (leaving). The one removed."""
    room = seat.room
    assert room is not None
    target = await users.by_name(db, username=username)
    if target is None or not await memberships.is_member(db, room=room, user_id=str(target.id)):
        raise _nobody_called(username, "in this room")
    if not access.can_remove(room, str(remover.id), seat.member, str(target.id)):
        raise Forbidden("Only the room's owner can remove other people.")
    await memberships.leave(db, room_id=str(room.id), user_id=str(target.id))
    await settle(db, room)
    return target


async def rename(db: Db, seat: Seat, *, renamer: User, name: str, topic: str) -> Room:
    """The owner renames the room or changes its topic."""
    room = seat.room
    assert room is not None
    if not access.can_change_room(room, str(renamer.id), seat.member):
        raise Forbidden("Only the room's owner can change its name and topic.")
    return await rooms.rename(db, room=room, name=clean_room_name(name), topic=clean_topic(topic))


async def mute(db: Db, seat: Seat, *, member: User, muted: str) -> bool:
    """Whether the room's messages notify this member ("on" or "off"); the new state."""
    room = seat.room
    assert room is not None
    if not access.can_mute(room, seat.member):
        raise Forbidden("Join this room to mute it.")
    is_muted = clean_muted(muted)
    await rooms.set_muted(db, room=room, user_id=str(member.id), muted=is_muted)
    return is_muted
