"""What the hub follows, as a table: one row per watched collection.

A row names the collection, the operations it cares about (sent to the server as a $match
stage, so that heartbeats and other changes nobody needs never travel), whether the changed
document is loaded (once per change per process, by its key: the embedded server encodes
fullDocument its own way), and what a change does: most make an event (events.py) and deliver
it; some change what the hub knows (who is online, who signed out, cached users and rooms).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from odmantic import Model

from webapp.actions.reading import state_of_member
from webapp.data import messages
from webapp.data.connection import Db
from webapp.data.models import Membership, Message, Presence, RevokedToken, Room, Typing, User
from webapp.data.nx_compat import token_sort_key
from webapp.live.cache import Directory, Revocations
from webapp.live.events import Event, MemberEvent, MessageEvent, ReadEvent, RoomEvent, TypingEvent
from webapp.live.people import People
from webapp.live.presence import Presence as PresenceKeeper
from webapp.live.registry import Registry
from webapp.live.ring import Ring
from webapp.rules import access
from webapp.rules.keys import member_of, presence_owner

Change = Mapping[str, Any]


class Live(Protocol):
    """What a row may use of the hub."""

    db: Db
    directory: Directory
    revocations: Revocations
    streams: Registry
    ring: Ring
    presence: PresenceKeeper
    people: People

    async def deliver(self, event: Event) -> None: ...


async def _message(live: Live, change: Change, doc: Model | None) -> None:
    assert doc is None or isinstance(doc, Message)
    room = await live.directory.room(doc.room_id) if doc else None
    if doc is not None and room is not None:
        quoted = await messages.by_id(live.db, message_id=doc.reply_to) if doc.reply_to else None
        posted = change["operationType"] == "insert"
        event = MessageEvent(change["_id"]["_data"], doc, room, quoted, posted)
        live.ring.add(token_sort_key(event.id), event)
        await live.deliver(event)


async def _presence(live: Live, change: Change, doc: Model | None) -> None:
    presence_id = str(change["documentKey"]["_id"])
    live.presence.changed(presence_id, opened=change["operationType"] == "insert")
    live.people.presence_changed(presence_owner(presence_id))


async def _user(live: Live, change: Change, doc: Model | None) -> None:
    assert doc is None or isinstance(doc, User)
    if doc is not None:
        live.directory.user_changed(doc)
        live.people.user_changed(doc)


async def _membership(live: Live, change: Change, doc: Model | None) -> None:
    """Its id says whose membership of which room: nothing needs loading. A membership made
    ("insert") or ended ("delete"), or a read position that moved ("update"; nx-27017 reports
    a replace as an update)."""
    room_id, user_id = member_of(str(change["documentKey"]["_id"]))
    operation = "update" if change["operationType"] == "replace" else change["operationType"]
    room = await live.directory.room(room_id)
    if room is None or (room.kind == access.DM and operation != "update"):
        return  # a DM's memberships are made with it, and its page shows them
    if operation == "update" or room.kind == access.PUBLIC:
        # A read position moved: counted once, and only in a process with a tab of theirs.
        if live.streams.has_user(user_id):
            state = await state_of_member(live.db, room, reader_id=user_id)
            if state is not None:
                await live.deliver(ReadEvent(user_id, state))
        return
    user = await live.directory.user(user_id)
    joined = operation == "insert"
    if joined:
        await live.deliver(RoomEvent(room, to=user_id))  # into their sidebar
    await live.deliver(MemberEvent(room, user_id, user.username if user else "", joined))


async def _room(live: Live, change: Change, doc: Model | None) -> None:
    assert doc is None or isinstance(doc, Room)
    if doc is not None:
        live.directory.room_changed(doc)
        if doc.kind == access.GROUP:
            await live.deliver(RoomEvent(doc))


async def _typing(live: Live, change: Change, doc: Model | None) -> None:
    assert doc is None or isinstance(doc, Typing)
    if doc is not None and (room := await live.directory.room(doc.room_id)):
        await live.deliver(TypingEvent(doc, room))


async def _revocation(live: Live, change: Change, doc: Model | None) -> None:
    assert doc is None or isinstance(doc, RevokedToken)
    if doc is not None:
        live.revocations.add(doc.jti, doc.expires_at)
        live.streams.signed_out(doc.jti)  # its open streams end, in every process


@dataclass(frozen=True)
class Feed:
    model: type[Model]
    operations: tuple[str, ...]
    load: bool  # load the changed document by its key first
    on_change: Callable[[Live, Change, Model | None], Awaitable[None]]

    @property
    def collection(self) -> str:
        return str(self.model.__collection__)

    @property
    def pipeline(self) -> list[dict[str, Any]]:
        return [{"$match": {"operationType": {"$in": list(self.operations)}}}]


WRITES = ("insert", "update", "replace")
FEEDS = (
    Feed(Message, WRITES, load=True, on_change=_message),
    Feed(Presence, ("insert", "delete"), load=False, on_change=_presence),  # not heartbeats
    Feed(User, WRITES, load=True, on_change=_user),
    Feed(Membership, (*WRITES, "delete"), load=False, on_change=_membership),
    Feed(Room, WRITES, load=True, on_change=_room),
    Feed(Typing, WRITES, load=True, on_change=_typing),
    Feed(RevokedToken, ("insert",), load=True, on_change=_revocation),
)
MESSAGES = FEEDS[0]
