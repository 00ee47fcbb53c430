"""The sidebar: everyone, online people first, with status, away message and unread counts."""

from __future__ import annotations

from dataclasses import dataclass

from odmantic import AIOEngine

from webapp import chat, store
from webapp.models import User


@dataclass(frozen=True)
class Person:
    """Someone in the sidebar, as one viewer sees them."""

    user: User
    conversation: str  # the viewer's conversation with them
    status: str  # online, away or offline
    unread: int


@dataclass(frozen=True)
class Sidebar:
    public_unread: int
    online: list[Person]
    offline: list[Person]


async def build_sidebar(engine: AIOEngine, *, me: User, online_ids: set[str]) -> Sidebar:
    """The sidebar for `me`, given who is online."""
    online_ids = online_ids | {str(me.id)}  # whoever looks at the sidebar is here
    unread = await store.unread_counts(engine, user=me)
    people = []
    for user in await store.list_users(engine):
        user_id = str(user.id)
        conversation = chat.dm_conversation(str(me.id), user_id)
        status = chat.presence_status(user_id in online_ids, user.away_message)
        people.append(Person(user, conversation, status, unread.get(conversation, 0)))
    return Sidebar(
        public_unread=unread.get(chat.PUBLIC, 0),
        online=[p for p in people if p.status != "offline"],
        offline=[p for p in people if p.status == "offline"],
    )
