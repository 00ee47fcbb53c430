"""Finding messages: what a query matches among the messages its asker may read now (the
public room, their direct conversations, the group rooms they are in), newest first."""

from __future__ import annotations

from dataclasses import dataclass

from markupsafe import Markup

from webapp.data import memberships, messages, rooms, users, words
from webapp.data.connection import Db
from webapp.data.models import Message, Room, User
from webapp.errors import NotFound
from webapp.rules import access, search
from webapp.rules.keys import dm_peer


@dataclass(frozen=True)
class Found:
    message: Message
    conversation: str  # its conversation's name, as the asker sees it
    text: Markup  # its plain text, the matched words in <mark>


@dataclass(frozen=True)
class Results:
    query: search.Query
    found: list[Found]
    older: str  # the id to ask for older results before ("": none)
    within: Room | None  # the conversation it was narrowed to


async def readable_rooms(db: Db, *, reader: User, public: Room) -> dict[str, Room]:
    """The rooms whose messages the reader may read now, by id (rules/access.py)."""
    mine = await memberships.room_ids_of(db, user_id=str(reader.id))
    found = {str(r.id): r for r in await rooms.many_by_id(db, room_ids=mine)}
    found[str(public.id)] = public
    return {
        room_id: room
        for room_id, room in found.items()
        if access.can_read(room, access.member_by_kind(room, str(reader.id)) is not False)
    }


async def find(
    db: Db,
    *,
    reader: User,
    public: Room,
    query: str,
    within: str = "",
    before: str = "",
) -> Results:
    """Messages matching `query` (search.clean_query: BadRequest for an empty or long one),
    PAGE at a time, older than message `before`, in the room `within` when given (NotFound
    for one the reader may not read)."""
    asked = search.clean_query(query)
    readable = await readable_rooms(db, reader=reader, public=public)
    if within and within not in readable:
        raise NotFound("There is no such conversation.")
    room_ids = [within] if within else list(readable)
    after = await messages.by_id(db, message_id=before) if before else None
    if before and (after is None or after.room_id not in readable):
        raise NotFound("Those results are gone: search again.")
    ids = await words.search(
        db, room_ids=room_ids, words=asked.words, before=after, limit=search.PAGE + 1
    )
    loaded = await messages.many_by_id(db, message_ids=ids)
    # (Words whose message is gone or deleted: what a failed post or deletion leaves.)
    page = [loaded[i] for i in ids if i in loaded and not loaded[i].deleted]
    shown = page[: search.PAGE]
    names = await _names(db, reader, [readable[m.room_id] for m in shown])
    found = [Found(m, names[m.room_id], search.marked(m.plain, asked.words)) for m in shown]
    older = str(shown[-1].id) if len(page) > search.PAGE else ""
    return Results(asked, found, older, readable.get(within))


async def _names(db: Db, reader: User, shown: list[Room]) -> dict[str, str]:
    """Each room's name as the reader sees it: a DM is named for the other person."""
    reader_id = str(reader.id)
    peers = {str(r.id): dm_peer(r.key, reader_id) or "" for r in shown if r.kind == access.DM}
    people = {str(u.id): u.username for u in await users.many_by_id(db, user_ids=peers.values())}
    names = {}
    for room in shown:
        if room.kind == access.PUBLIC:
            names[str(room.id)] = "Public room"
        elif room.kind == access.DM:
            peer = peers[str(room.id)]
            names[str(room.id)] = "Notes to self" if peer == reader_id else people.get(peer, "")
        else:
            names[str(room.id)] = room.name
    return names
