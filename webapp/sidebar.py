"""The sidebar: everyone, online people first, with status, away message and unread counts."""

from __future__ import annotations

from dataclasses import dataclass, replace

from webapp import chat, store
from webapp.database import Db
from webapp.feeds import PersonEvent
from webapp.models import User

OFFLINE_LIMIT = 30  # offline people listed, most recently seen first


@dataclass(frozen=True)
class Person:
    """Someone in the sidebar, as one viewer sees them."""

    user: User
    conversation: str  # the viewer's conversation with them ("" when the page fills it in)
    status: str  # online, away or offline
    unread: int


@dataclass(frozen=True)
class Sidebar:
    public_unread: int
    online: list[Person]
    offline: list[Person]

    def unread(self, conversation: str) -> int:
        if conversation == chat.PUBLIC:
            return self.public_unread
        people = (*self.online, *self.offline)
        return next((p.unread for p in people if p.conversation == conversation), 0)

    def read(self, conversation: str) -> Sidebar:
        """The same sidebar once `conversation` has been read."""

        def reading(people: list[Person]) -> list[Person]:
            return [replace(p, unread=0) if p.conversation == conversation else p for p in people]

        return Sidebar(
            0 if conversation == chat.PUBLIC else self.public_unread,
            reading(self.online),
            reading(self.offline),
        )


async def build_sidebar(db: Db, *, me: User, online_ids: set[str]) -> Sidebar:
    """The sidebar for `me`, given who is online.

    Everyone online is listed; of the others, those `me` has unread messages from and the
    OFFLINE_LIMIT seen most recently (anyone else is a /dm/<name> away: "Find someone").
    """
    my_id = str(me.id)
    online_ids = online_ids | {my_id}  # whoever looks at the sidebar is here
    unread = await store.unread_counts(db, user=me)
    with_unread = {
        peer for key, count in unread.items() if count and (peer := chat.dm_peer(key, my_id))
    }
    online = await store.users_by_id(db, user_ids=online_ids)
    waiting = await store.users_by_id(db, user_ids=with_unread - online_ids)
    recent = await store.recently_seen_users(
        db, excluding=online_ids | with_unread, limit=OFFLINE_LIMIT
    )
    offline = sorted([*waiting, *recent], key=lambda user: user.username_key)

    def person(user: User) -> Person:
        conversation = chat.dm_conversation(my_id, str(user.id))
        status = chat.presence_status(str(user.id) in online_ids, user.away_message)
        return Person(user, conversation, status, unread.get(conversation, 0))

    return Sidebar(
        public_unread=unread.get(chat.PUBLIC, 0),
        online=[person(user) for user in online],
        offline=[person(user) for user in offline],
    )


def neutral_person(event: PersonEvent) -> Person:
    """A person as every viewer sees them; the page adds its own conversation key and count."""
    return Person(event.user, "", chat.presence_status(event.online, event.user.away_message), 0)
