"""The events browsers receive, one class per kind: its name on the wire, who receives it (by
rules/access.py), and its data (the template it renders, once for everyone and once for the
viewer with a copy of their own). One object per change, however many streams it reaches.

Adding a kind of event: a class here, a row in feeds.py that makes it from a change, a
template, and a handler in the page's dispatch table (static/js/stream.js).
"""

from __future__ import annotations

import json
from collections.abc import Collection
from dataclasses import dataclass
from typing import ClassVar, Protocol

from webapp.actions.reading import ReadState
from webapp.data.models import Message, Room, Typing, User
from webapp.rules import access
from webapp.rules.presence import presence_status
from webapp.web.sidebar import Person
from webapp.web.templating import render_shared


@dataclass(frozen=True)
class Audience:
    """Who receives an event: these users (everyone when None), never `excluding`."""

    users: frozenset[str] | None
    excluding: str = ""


EVERYONE = Audience(None)


class Event(Protocol):
    name: ClassVar[str]  # the SSE event's name

    @property
    def id(self) -> str | None:
        """A resume token that orders it (messages), or None: never replayed."""

    @property
    def owner(self) -> str:
        """Who gets a copy of their own ("": nobody)."""

    def room_of_members(self) -> Room | None:
        """The room whose members `audience` needs, if any (asked for once per event)."""

    def audience(self, members: Collection[str]) -> Audience: ...

    def data(self, viewer_id: str = "") -> str:
        """What the event carries, as everyone gets it or as `viewer_id` (its owner) does."""


@dataclass(frozen=True)
class MessageEvent:
    """A message was posted, edited or deleted; `id` (a resume token's _data) orders it."""

    id: str
    message: Message
    room: Room
    quoted: Message | None = None  # the message it answers, as it was when this was made
    posted: bool = False  # this change posted it (else it was edited, deleted or reacted to)
    name: ClassVar[str] = "message"

    @property
    def owner(self) -> str:  # the author's copy has Edit and Delete
        return self.message.sender_id

    def room_of_members(self) -> Room | None:
        return self.room

    def audience(self, members: Collection[str]) -> Audience:
        return Audience(access.readers(self.room, members))

    def data(self, viewer_id: str = "") -> str:
        return render_shared(
            "_message.html",
            viewer_id=viewer_id,
            message=self.message,
            room_key=self.room.key,
            quoted=self.quoted,
            posted=self.posted,
        )


@dataclass(frozen=True)
class PersonEvent:
    """Someone came, went or set an away message: their sidebar entry, the same for everyone
    (the page adds its own conversation key and count)."""

    user: User
    online: bool
    name: ClassVar[str] = "person"
    id: ClassVar[None] = None
    owner: ClassVar[str] = ""

    def room_of_members(self) -> Room | None:
        return None

    def audience(self, members: Collection[str]) -> Audience:
        return EVERYONE  # presence and away messages are everyone's to see

    def data(self, viewer_id: str = "") -> str:
        status = presence_status(self.online, self.user.away_message)
        person = Person(self.user, "", status, 0)
        return render_shared("_person.html", person=person, conversation=None)


@dataclass(frozen=True)
class ReadEvent:
    """A reader's position in a room moved: their tabs set its count."""

    user_id: str
    state: ReadState
    name: ClassVar[str] = "read"
    id: ClassVar[None] = None
    owner: ClassVar[str] = ""

    def room_of_members(self) -> Room | None:
        return None

    def audience(self, members: Collection[str]) -> Audience:
        return Audience(frozenset({self.user_id}))

    def data(self, viewer_id: str = "") -> str:
        return json.dumps(self.state.as_json())


@dataclass(frozen=True)
class TypingEvent:
    """Someone is typing; ephemeral, so it has no id and is never replayed."""

    typing: Typing
    room: Room
    name: ClassVar[str] = "typing"
    id: ClassVar[None] = None
    owner: ClassVar[str] = ""

    def room_of_members(self) -> Room | None:
        return self.room

    def audience(self, members: Collection[str]) -> Audience:
        return Audience(access.readers(self.room, members), excluding=self.typing.user_id)

    def data(self, viewer_id: str = "") -> str:
        return render_shared("_typing.html", typing=self.typing, room_key=self.room.key)


@dataclass(frozen=True)
class RoomEvent:
    """A group room's sidebar entry, name and topic: to its members when it changes, or to
    `to` alone when they have just joined."""

    room: Room
    to: str = ""
    name: ClassVar[str] = "room"
    id: ClassVar[None] = None
    owner: ClassVar[str] = ""

    def room_of_members(self) -> Room | None:
        return None if self.to else self.room

    def audience(self, members: Collection[str]) -> Audience:
        if self.to:
            return Audience(frozenset({self.to}))
        return Audience(access.readers(self.room, members))

    def data(self, viewer_id: str = "") -> str:
        return render_shared(
            "_room_entry.html",
            room=self.room,
            unread=0,
            muted=False,
            mentioned=False,
            conversation=None,
        )


@dataclass(frozen=True)
class MemberEvent:
    """Someone joined or left a group room: its members' lists change, and so does the sidebar
    of whoever joined or left."""

    room: Room
    user_id: str
    username: str
    joined: bool
    name: ClassVar[str] = "member"
    id: ClassVar[None] = None

    @property
    def owner(self) -> str:  # the owner's copy has the Remove button
        return self.room.owner_id

    def room_of_members(self) -> Room | None:
        return self.room

    def audience(self, members: Collection[str]) -> Audience:
        readers = access.readers(self.room, members)
        return Audience(None if readers is None else readers | {self.user_id})

    def data(self, viewer_id: str = "") -> str:
        return render_shared(
            "_member.html",
            viewer_id=viewer_id,
            room=self.room,
            member_id=self.user_id,
            username=self.username,
            left=not self.joined,
        )


KINDS: tuple[type[Event], ...] = (
    MessageEvent,
    PersonEvent,
    ReadEvent,
    TypingEvent,
    RoomEvent,
    MemberEvent,
)
