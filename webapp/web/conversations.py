"""The conversation a request is about: the room its URL names, as the signed-in person sees it.

/rooms/public is the public room, /dm/{username} the direct conversation with that person (a
room made when it is first written in), /rooms/{room_id} a group room. Whether the person may
see it, read it or write in it is rules/access.py's; a room they may not see is reported
exactly as one that does not exist.
"""

from __future__ import annotations

from dataclasses import dataclass

from starlette.requests import Request

from webapp.actions.rooms import no_such_room
from webapp.actions.seat import Seat
from webapp.data import memberships, rooms, users
from webapp.data.models import Room, User
from webapp.errors import NotFound
from webapp.live.hub import Hub
from webapp.rules import access
from webapp.rules.keys import dm_key, dm_peer
from webapp.rules.text import is_username
from webapp.web import state
from webapp.web.session import SignedInUser
from webapp.web.templating import url_for


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
    def seat(self) -> Seat:
        """Where the person stands in it, for the actions."""
        return Seat(self.room, self.member, str(self.peer.id) if self.peer else "")

    @property
    def readable(self) -> bool:
        return self.seat.readable


def _public(hub: Hub) -> Conversation:
    return Conversation(hub.public.key, "Public room", url_for("public_room"), hub.public, True)


async def _with_person(hub: Hub, me: SignedInUser, username: str) -> Conversation:
    """The direct conversation with `username` (NotFound if there is nobody of that name).
    Its room, once made, never changes: the directory keeps it in memory."""
    peer = await users.by_name(hub.db, username=username)
    if peer is None:
        named = username if is_username(username) else "by that name"
        raise NotFound(f"There is no user called {named}.")
    room = await hub.directory.room_by_key(dm_key(me.identity, str(peer.id)))
    title = "Notes to self" if peer.id == me.user.id else peer.username
    key = dm_key(me.identity, str(peer.id))
    return Conversation(key, title, url_for("dm", username=peer.username), room, True, peer)


async def _group(hub: Hub, me: SignedInUser, room: Room | None) -> Conversation:
    """A group room this person may see (a member's, or an open one); else NotFound."""
    if room is None or room.kind != access.GROUP:
        raise no_such_room()
    member = await memberships.is_member(hub.db, room=room, user_id=me.identity)
    if not access.can_see(room, member):
        raise no_such_room()
    url = url_for("group_room", room_id=str(room.id))
    return Conversation(room.key, room.name, url, room, member)


async def named_by(request: Request, me: SignedInUser) -> Conversation:
    """The conversation the request's path names: its room id, its person, or the public room.
    A group room is read afresh (its members and name may just have changed)."""
    hub = state.hub(request)
    if "room_id" in request.path_params:
        room = await rooms.by_id(hub.db, room_id=request.path_params["room_id"])
        return await _group(hub, me, room)
    if "username" in request.path_params:
        return await _with_person(hub, me, request.path_params["username"])
    return _public(hub)


async def of_room(hub: Hub, me: SignedInUser, room: Room) -> Conversation:
    """The conversation of a room already found (a message's), as this person sees it."""
    if room.kind == access.PUBLIC:
        return _public(hub)
    if room.kind == access.DM:
        peer = await hub.directory.user(dm_peer(room.key, me.identity) or "")
        if peer is None:
            raise no_such_room()
        return await _with_person(hub, me, peer.username)
    return await _group(hub, me, room)
