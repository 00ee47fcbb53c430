"""What the hub follows, as a table: one row per watched collection.

A row names the collection, the operations it cares about (sent to the server as a $match
stage, so that heartbeats and other changes nobody needs never travel), whether the changed
document is loaded (once per change per process, by its key: the embedded server encodes
fullDocument its own way), and a pure function from the change and that document to an event.
Who receives an event is another pure function, `audience`. Adding a kind of change is one row.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass
from typing import Any

from odmantic import Model

from webapp import access
from webapp.models import Membership, Message, Presence, RevokedToken, Room, Typing, User

Change = Mapping[str, Any]


# Events sent to browsers: one object per change, however many streams it reaches.


@dataclass(frozen=True)
class MessageEvent:
    """A message was posted, edited or deleted; `id` (a resume token's _data) orders it."""

    id: str
    message: Message
    room: Room
    name = "message"


@dataclass(frozen=True)
class PersonEvent:
    """Someone came, went or set an away message: their sidebar entry, the same for everyone."""

    user: User
    online: bool
    id = None
    name = "person"


@dataclass(frozen=True)
class ReadEvent:
    """A reader's position in a room moved: their tabs set its count. `unread` counts others'
    messages after `read_seq` up to `upto`, the room's count when it was counted; a tab adds
    those it has seen arrive since."""

    user_id: str
    room: Room
    read_seq: int = 0
    unread: int = 0
    upto: int = 0
    id = None
    name = "read"

    def state(self) -> dict[str, object]:
        """What the reader's tabs are told, as POST .../read tells a client that asks."""
        return read_state(self.room.key, self.read_seq, self.unread, self.upto)


def read_state(key: str, read_seq: int, unread: int, upto: int) -> dict[str, object]:
    return {"key": key, "read_seq": read_seq, "unread": unread, "upto": upto}


@dataclass(frozen=True)
class TypingEvent:
    """Someone is typing; ephemeral, so it has no id and is never replayed."""

    typing: Typing
    room: Room
    id = None
    name = "typing"


@dataclass(frozen=True)
class RoomEvent:
    """A group room's sidebar entry, name and topic: to its members when it changes, or to
    `to` alone when they have just joined."""

    room: Room
    to: str = ""
    id = None
    name = "room"


@dataclass(frozen=True)
class MemberEvent:
    """Someone joined or left a group room: its members' lists change, and so does the sidebar
    of whoever joined or left."""

    room: Room
    user_id: str
    username: str
    joined: bool
    id = None
    name = "member"


Event = MessageEvent | PersonEvent | ReadEvent | TypingEvent | RoomEvent | MemberEvent


# Changes the hub acts on itself: they change its state rather than reach a browser as such.


@dataclass(frozen=True)
class PresenceChange:
    """A stream opened or closed somewhere (or was swept, or was closed to make room)."""

    presence_id: str
    user_id: str
    opened: bool


@dataclass(frozen=True)
class UserChange:
    user: User


@dataclass(frozen=True)
class Revocation:
    """A session was signed out: its open streams end, in every process."""

    jti: str


@dataclass(frozen=True)
class MessageChange:
    """A message changed; the hub finds its room before it becomes a MessageEvent."""

    id: str
    message: Message


@dataclass(frozen=True)
class MembershipChange:
    """A membership was made ("insert"), moved its read position ("update") or ended ("delete")."""

    room_id: str
    user_id: str
    operation: str


@dataclass(frozen=True)
class RoomChange:
    room: Room


@dataclass(frozen=True)
class TypingChange:
    typing: Typing


Notice = (
    PresenceChange
    | UserChange
    | Revocation
    | MessageChange
    | MembershipChange
    | RoomChange
    | TypingChange
)


@dataclass(frozen=True)
class Audience:
    """Who receives an event: these users (everyone when None), never `excluding`."""

    users: frozenset[str] | None
    excluding: str = ""


EVERYONE = Audience(None)


def members_needed(event: Event) -> Room | None:
    """The room whose members `audience` needs for this event, if any."""
    if isinstance(event, MessageEvent | TypingEvent | MemberEvent):
        return event.room
    if isinstance(event, RoomEvent) and not event.to:
        return event.room
    return None


def audience(event: Event, member_ids: Collection[str] = ()) -> Audience:
    """Who may receive this event, by the rules of access.py, given the room's members."""
    if isinstance(event, MessageEvent):
        return Audience(access.readers(event.room, member_ids))
    if isinstance(event, TypingEvent):
        return Audience(access.readers(event.room, member_ids), excluding=event.typing.user_id)
    if isinstance(event, ReadEvent):
        return Audience(frozenset({event.user_id}))
    if isinstance(event, RoomEvent):
        if event.to:
            return Audience(frozenset({event.to}))
        return Audience(access.readers(event.room, member_ids))
    if isinstance(event, MemberEvent):
        readers = access.readers(event.room, member_ids)
        return Audience(None if readers is None else readers | {event.user_id})
    return EVERYONE  # presence and away messages are everyone's to see


# The rows


def _message(change: Change, doc: Model | None) -> Notice | None:
    assert doc is None or isinstance(doc, Message)
    return MessageChange(change["_id"]["_data"], doc) if doc else None


def _presence(change: Change, doc: Model | None) -> Notice | None:
    presence_id = str(change["documentKey"]["_id"])
    user_id = presence_id.split(":", 1)[0]
    return PresenceChange(presence_id, user_id, opened=change["operationType"] == "insert")


def _user(change: Change, doc: Model | None) -> Notice | None:
    assert doc is None or isinstance(doc, User)
    return UserChange(doc) if doc else None


def _membership(change: Change, doc: Model | None) -> Notice | None:
    """Its id says whose membership of which room: nothing needs loading."""
    room_id, _, user_id = str(change["documentKey"]["_id"]).partition(":")
    operation = "update" if change["operationType"] == "replace" else change["operationType"]
    return MembershipChange(room_id, user_id, operation)


def _room(change: Change, doc: Model | None) -> Notice | None:
    assert doc is None or isinstance(doc, Room)
    return RoomChange(doc) if doc else None


def _typing(change: Change, doc: Model | None) -> Notice | None:
    assert doc is None or isinstance(doc, Typing)
    return TypingChange(doc) if doc else None


def _revocation(change: Change, doc: Model | None) -> Notice | None:
    assert doc is None or isinstance(doc, RevokedToken)
    return Revocation(doc.jti) if doc else None


@dataclass(frozen=True)
class Feed:
    model: type[Model]
    operations: tuple[str, ...]
    load: bool  # load the changed document by its key before to_event
    to_event: Callable[[Change, Model | None], Notice | None]

    @property
    def collection(self) -> str:
        return str(self.model.__collection__)

    @property
    def pipeline(self) -> list[dict[str, Any]]:
        return [{"$match": {"operationType": {"$in": list(self.operations)}}}]


WRITES = ("insert", "update", "replace")
FEEDS = (
    Feed(Message, WRITES, load=True, to_event=_message),
    Feed(Presence, ("insert", "delete"), load=False, to_event=_presence),  # not heartbeats
    Feed(User, WRITES, load=True, to_event=_user),
    Feed(Membership, ("insert", "update", "replace", "delete"), load=False, to_event=_membership),
    Feed(Room, WRITES, load=True, to_event=_room),
    Feed(Typing, WRITES, load=True, to_event=_typing),
    Feed(RevokedToken, ("insert",), load=True, to_event=_revocation),
)
MESSAGES = FEEDS[0]
