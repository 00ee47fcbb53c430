"""The sidebar: the public room, your group rooms, then everyone, online people first, with
status, away message and unread counts."""

from __future__ import annotations

from dataclasses import dataclass

from webapp.data import memberships, reads, rooms, users
from webapp.data.connection import Db
from webapp.data.models import Room, User
from webapp.data.reads import Unread
from webapp.rules import access
from webapp.rules.keys import dm_key, dm_peer
from webapp.rules.presence import presence_status

OFFLINE_LIMIT = 30  # offline people listed, most recently seen first


@dataclass(frozen=True)
class Person:
    """Someone in the sidebar, as one viewer sees them."""

    user: User
    conversation: str  # the key of the viewer's conversation with them ("": the page fills it)
    status: str  # online, away or offline
    unread: int
    mentioned: bool = False  # an unread message of the conversation mentions the viewer


@dataclass(frozen=True)
class RoomEntry:
    room: Room
    unread: int
    muted: bool = False  # its messages notify nobody here (mentions aside)
    mentioned: bool = False


@dataclass(frozen=True)
class Sidebar:
    public_unread: int
    public_mentioned: bool
    rooms: list[RoomEntry]
    online: list[Person]
    offline: list[Person]

    @property
    def total_unread(self) -> int:
        people = sum(p.unread for p in (*self.online, *self.offline))
        return self.public_unread + sum(e.unread for e in self.rooms) + people


async def build_sidebar(db: Db, *, me: User, public: Room, online_ids: set[str]) -> Sidebar:
    """The sidebar for `me`, given who is online.

    Everyone online is listed; of the others, those `me` has unread messages from and the
    OFFLINE_LIMIT seen most recently (anyone else is a /dm/<name> away: "Find someone").
    """
    my_id = str(me.id)
    online_ids = online_ids | {my_id}  # whoever looks at the sidebar is here
    mine = await memberships.of_user(db, user_id=my_id)
    unread = await reads.unread_counts(db, user=me, public=public, memberships=mine)
    muted = await rooms.muted_ids(db, user_id=my_id)
    theirs = await rooms.many_by_id(
        db, room_ids=[m.room_id for m in mine if m.room_id != str(public.id)]
    )
    groups = sorted(
        (r for r in theirs if r.kind == access.GROUP), key=lambda r: (r.name.casefold(), r.key)
    )
    dm_unread = {  # by the peer's id
        peer: unread[str(room.id)]
        for room in theirs
        if room.kind == access.DM
        and unread.get(str(room.id), Unread()).messages
        and (peer := dm_peer(room.key, my_id))
    }
    online = await users.many_by_id(db, user_ids=online_ids)
    waiting = await users.many_by_id(db, user_ids=set(dm_unread) - online_ids)
    recent = await users.recently_seen(
        db, excluding=online_ids | set(dm_unread), limit=OFFLINE_LIMIT
    )
    offline = sorted([*waiting, *recent], key=lambda user: user.username_key)

    def person(user: User) -> Person:
        status = presence_status(str(user.id) in online_ids, user.away_message)
        key = dm_key(my_id, str(user.id))
        waiting = dm_unread.get(str(user.id), Unread())
        return Person(user, key, status, waiting.messages, waiting.mentions > 0)

    def entry(room: Room) -> RoomEntry:
        news = unread.get(str(room.id), Unread())
        return RoomEntry(room, news.messages, str(room.id) in muted, news.mentions > 0)

    public_news = unread.get(str(public.id), Unread())
    return Sidebar(
        public_unread=public_news.messages,
        public_mentioned=public_news.mentions > 0,
        rooms=[entry(room) for room in groups],
        online=[person(user) for user in online],
        offline=[person(user) for user in offline],
    )
