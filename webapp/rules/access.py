"""Who may do what in a room, as pure functions of the room and the person asking.

Handlers, replay, the hub's routing and anything added later ask here; nothing works out
access by how its URL was built. `member` says whether the person has a membership in the
room (in the public room everyone is a member, whatever the database holds).
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from typing import Protocol

PUBLIC, DM, GROUP = "public", "dm", "group"


class RoomLike(Protocol):
    @property
    def kind(self) -> str: ...
    @property
    def open(self) -> bool: ...
    @property
    def owner_id(self) -> str: ...
    @property
    def archived(self) -> bool: ...


class RoomWithMembers(RoomLike, Protocol):
    @property
    def members(self) -> list[str]: ...


def lists_members(room: RoomLike) -> bool:
    """Whether the room's members are its memberships (a group room's: asked of the database
    at every read, post, delivery and replay), rather than settled by its kind."""
    return room.kind == GROUP


def member_by_kind(room: RoomWithMembers, user_id: str) -> bool | None:
    """Whether `user_id` is a member, when the room's kind says so by itself: everyone is in
    the public room, and a DM's one or two people are fixed for ever. None when its
    memberships say (lists_members)."""
    if lists_members(room):
        return None
    return room.kind == PUBLIC or user_id in room.members


def is_member(room: RoomLike, member: bool) -> bool:
    return room.kind == PUBLIC or member


def can_see(room: RoomLike, member: bool) -> bool:
    """Whether the room exists for this person at all: anything else answers 404."""
    if is_member(room, member):
        return True
    return room.kind == GROUP and room.open and not room.archived


def can_read(room: RoomLike, member: bool) -> bool:
    """Its messages, live or replayed, its members and its typing notices."""
    return is_member(room, member)


def can_post(room: RoomLike, member: bool) -> bool:
    return can_read(room, member) and not room.archived


def can_join(room: RoomLike, member: bool) -> bool:
    return room.kind == GROUP and room.open and not room.archived and not member


def can_add(room: RoomLike, member: bool) -> bool:
    """Any member of a group room may add others."""
    return room.kind == GROUP and member and not room.archived


def can_remove(room: RoomLike, actor_id: str, member: bool, target_id: str) -> bool:
    """The owner removes anyone; a member removes only himself (leaving)."""
    return room.kind == GROUP and member and actor_id in (room.owner_id, target_id)


def can_change_room(room: RoomLike, actor_id: str, member: bool) -> bool:
    """Its name and topic: the owner's."""
    return room.kind == GROUP and member and actor_id == room.owner_id and not room.archived


def can_mute(room: RoomLike, member: bool) -> bool:
    """Whether its messages notify this person: a group room's members choose."""
    return room.kind == GROUP and member


def can_change_message(room: RoomLike, member: bool, sender_id: str, actor_id: str) -> bool:
    """Edit or delete: one's own messages, while one may still read the room."""
    return sender_id == actor_id and can_read(room, member)


def ownership(owner_id: str, members_by_seniority: Sequence[str]) -> tuple[str, bool]:
    """Who owns a group room with these members, and whether it is archived: its owner while
    they stay, else the longest-standing member; nobody once everyone has left, and then the
    room is archived (someone who joins brings it back)."""
    if owner_id in members_by_seniority:
        return owner_id, False
    if members_by_seniority:
        return members_by_seniority[0], False
    return "", True


def readers(room: RoomLike, member_ids: Collection[str]) -> frozenset[str] | None:
    """Who receives the room's events: its members, or everyone (None) in the public room."""
    return None if room.kind == PUBLIC else frozenset(member_ids)
