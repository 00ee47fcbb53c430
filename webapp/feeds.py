"""What the hub follows, as a table: one row per watched collection.

A row names the collection, the operations it cares about (sent to the server as a $match
stage, so that heartbeats and other changes nobody needs never travel), whether the changed
document is loaded (once per change per process, by its key: the embedded server encodes
fullDocument its own way), and a pure function from the change and that document to an event.
Who receives an event is another pure function, `audience`. Adding a kind of change is one row.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from odmantic import Model

from webapp import chat
from webapp.models import Message, Presence, ReadMarker, RevokedToken, Typing, User

Change = Mapping[str, Any]


# Events sent to browsers: one object per change, however many streams it reaches.


@dataclass(frozen=True)
class MessageEvent:
    """A message was posted, edited or deleted; `id` (a resume token's _data) orders it."""

    id: str
    message: Message
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
    """A reader has read a conversation: their other tabs clear its count."""

    user_id: str
    conversation: str
    id = None
    name = "read"


@dataclass(frozen=True)
class TypingEvent:
    """Someone is typing; ephemeral, so it has no id and is never replayed."""

    typing: Typing
    id = None
    name = "typing"


Event = MessageEvent | PersonEvent | ReadEvent | TypingEvent


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


Notice = Event | PresenceChange | UserChange | Revocation


@dataclass(frozen=True)
class Audience:
    """Who receives an event: these users (everyone when None), never `excluding`."""

    users: frozenset[str] | None
    excluding: str = ""


EVERYONE = Audience(None)
NOBODY = Audience(frozenset())


def conversation_audience(conversation: str, participants: list[str]) -> Audience:
    return EVERYONE if conversation == chat.PUBLIC else Audience(frozenset(participants))


def audience(event: Event) -> Audience:
    """Who may receive this event, by the rules of chat.may_read."""
    if isinstance(event, MessageEvent):
        message = event.message
        return conversation_audience(message.conversation, message.participants)
    if isinstance(event, TypingEvent):
        typing = event.typing
        everyone = conversation_audience(typing.conversation, typing.participants)
        return Audience(everyone.users, excluding=typing.user_id)
    if isinstance(event, ReadEvent):
        return Audience(frozenset({event.user_id}))
    return EVERYONE  # presence and away messages are everyone's to see


# The rows


def _message(change: Change, doc: Model | None) -> Notice | None:
    assert doc is None or isinstance(doc, Message)
    return MessageEvent(change["_id"]["_data"], doc) if doc else None


def _presence(change: Change, doc: Model | None) -> Notice | None:
    presence_id = str(change["documentKey"]["_id"])
    user_id = presence_id.split(":", 1)[0]
    return PresenceChange(presence_id, user_id, opened=change["operationType"] == "insert")


def _user(change: Change, doc: Model | None) -> Notice | None:
    assert doc is None or isinstance(doc, User)
    return UserChange(doc) if doc else None


def _read_marker(change: Change, doc: Model | None) -> Notice | None:
    """Only a marker set to "read"; one counting up is a DM arriving, which its message shows."""
    assert doc is None or isinstance(doc, ReadMarker)
    if doc is None or doc.unread:
        return None
    return ReadEvent(doc.user_id, doc.conversation)


def _typing(change: Change, doc: Model | None) -> Notice | None:
    assert doc is None or isinstance(doc, Typing)
    return TypingEvent(doc) if doc else None


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
    # Marking read replaces the marker, but nx-27017 reports a replace as an update.
    Feed(ReadMarker, WRITES, load=True, to_event=_read_marker),
    Feed(Typing, WRITES, load=True, to_event=_typing),
    Feed(RevokedToken, ("insert",), load=True, to_event=_revocation),
)
MESSAGES = FEEDS[0]
