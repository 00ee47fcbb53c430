"""The conversation a request is about: the room its URL names, as the signed-in person sees it.

/rooms/public is the public room, /dm/{username} the direct conversation with that person (a
room made when it is first written in), /rooms/{room_id} a group room. Whether the person may
see it, read it or write in it is access.py's to say; a room they may not see is reported
exactly as one that does not exist.
"""

from __future__ import annotations

from dataclasses import dataclass

from starlette.requests import Request

from webapp import access, chat, store
from webapp.auth import SignedInUser, signed_in
from webapp.database import Db
from webapp.errors import Forbidden, NotFound
from webapp.hub import Hub
from webapp.models import Room, User
from webapp.templating import url_for

NO_SUCH_ROOM = "There is no such room."


@dataclass(frozen=True)
class Conversation:
    key: str  # the room's key, by which pages and events name it
    title: str
    page_url: str  # .../messages, .../read and .../typing below it
    room: Room | None  # None: a direct conversation nobody has written in yet
    member: bool
    peer: User | None = None  # the other person of a direct conversation

    @property
    def messages_url(self) -> str:
        return f"{self.page_url}/messages"

    @property
    def kind(self) -> str:
        return self.room.kind if self.room else access.DM

    @property
    def is_group(self) -> bool:
        return self.kind == access.GROUP

    @property
    def readable(self) -> bool:
        return self.room is None or access.can_read(self.room, self.member)


def no_such_room() -> NotFound:
    return NotFound(NO_SUCH_ROOM)


def public(request: Request) -> Conversation:
    room = request.app.state.hub.public
    return Conversation(room.key, "Public room", url_for("public_room"), room, True)


async def with_person(
    db: Db, me: SignedInUser, username: str, hub: Hub | None = None
) -> Conversation:
    """The direct conversation with `username` (NotFound if there is nobody of that name).
    Its room, once made, never changes: the hub keeps it in memory when it is given."""
    peer = await store.get_user_by_name(db, username=username)
    if peer is None:
        named = username if chat.is_username(username) else "by that name"
        raise NotFound(f"There is no user called {named}.")
    key = chat.dm_key(me.identity, str(peer.id))
    room = await (hub.room_by_key(key) if hub else store.find_room(db, key=key))
    title = "Notes to self" if peer.id == me.user.id else peer.username
    return Conversation(key, title, url_for("dm", username=peer.username), room, True, peer)


def of_group(room: Room, member: bool) -> Conversation:
    return Conversation(
        room.key, room.name, url_for("group_room", room_id=str(room.id)), room, member
    )


async def group(db: Db, me: SignedInUser, room_id: str) -> Conversation:
    """A group room this person may see (a member's, or an open one); else NotFound."""
    room = await store.get_room(db, room_id=room_id)
    if room is None or room.kind != access.GROUP:
        raise no_such_room()
    member = await store.is_member(db, room=room, user_id=me.identity)
    if not access.can_see(room, member):
        raise no_such_room()
    return of_group(room, member)


async def of_request(request: Request) -> Conversation:
    me = signed_in(request)
    db = request.app.state.db
    if "room_id" in request.path_params:
        return await group(db, me, request.path_params["room_id"])
    if "username" in request.path_params:
        return await with_person(db, me, request.path_params["username"], request.app.state.hub)
    return public(request)


async def readable(request: Request) -> Conversation:
    """The conversation, if this person may read it: an open room's outsider must join first."""
    conversation = await of_request(request)
    if not conversation.readable:
        raise Forbidden("Join this room to read and write in it.")
    return conversation


async def room_to_write_in(request: Request, conversation: Conversation) -> Room:
    """The conversation's room (made now for a first direct message), if this person may
    write in it. Called once the request is known to be good: making a room is a change."""
    room = conversation.room
    if room is None:
        assert conversation.peer is not None
        me = signed_in(request)
        room = await store.dm_room(request.app.state.db, a=me.identity, b=str(conversation.peer.id))
    if not access.can_post(room, conversation.member):
        raise Forbidden("This room is closed.")
    return room


async def of_room(db: Db, room: Room, me: SignedInUser) -> Conversation:
    """The conversation of a room already found (a message's), as this person sees it."""
    if room.kind == access.PUBLIC:
        return Conversation(room.key, "Public room", url_for("public_room"), room, True)
    if room.kind == access.DM:
        peer_id = chat.dm_peer(room.key, me.identity) or ""
        peer = await store.get_user(db, user_id=peer_id)
        if peer is None:
            raise no_such_room()
        return await with_person(db, me, peer.username)
    member = await store.is_member(db, room=room, user_id=me.identity)
    return of_group(room, member)
