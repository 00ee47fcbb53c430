"""Catching a reconnecting stream up: what its user missed after their cursor (Last-Event-ID,
else ?after=), from the hub's ring of recent message changes when the cursor is inside it, else
from the messages change stream itself; then live. A cursor that cannot be replayed gets one
`reload` event instead. Either way a `live` event then says the tab is caught up.

Who may see a replayed message is decided as for a live one (its event's audience, by
rules/access.py), with the reader's rooms as they are now: a room they left replays nothing.
"""

from __future__ import annotations

import logging
import re

from pymongo.errors import PyMongoError

from webapp.data import memberships, messages, nx_compat
from webapp.data._query import parse_id
from webapp.data.models import Message
from webapp.live import wire
from webapp.live.events import MessageEvent
from webapp.live.feeds import MESSAGES
from webapp.live.hub import Hub
from webapp.live.streams import SortKey, Stream
from webapp.ops import metrics
from webapp.rules import access

log = logging.getLogger(__name__)

MAX_REPLAY = 5000  # changes; a cursor further behind gets `reload`
_CURSOR_RE = re.compile(r"nx:\d{1,18}|[0-9A-Fa-f]{2,4096}")


class CannotReplay(Exception):
    pass


def may_see(event: MessageEvent, reader_id: str, my_rooms: set[str]) -> bool:
    """Whether the reader, a member of `my_rooms` (their room ids, now), is in the event's
    audience: the same rule as for live delivery (fanout.py)."""
    member = access.member_by_kind(event.room, reader_id)
    if member is None:
        member = str(event.room.id) in my_rooms
    users = event.audience([reader_id] if member else []).users
    return users is None or reader_id in users


def _replayable(cursor: str, position: str) -> bool:
    """A cursor of this stream: well formed, and not one the embedded server would misread."""
    return bool(_CURSOR_RE.fullmatch(cursor)) and not nx_compat.cannot_replay(cursor, position)


async def from_database(
    hub: Hub, *, cursor: str, reader_id: str, my_rooms: set[str]
) -> list[MessageEvent]:
    """The message changes after `cursor` that the reader may see, read from the change stream."""
    if not _replayable(cursor, hub.position):
        raise CannotReplay("not a cursor of this stream")
    limit = min(MAX_REPLAY, nx_compat.replay_limit(cursor))
    changes = []
    try:
        async with await hub.db[Message.__collection__].watch(
            MESSAGES.pipeline, start_after={"_data": cursor}, max_await_time_ms=1
        ) as stream:
            while (change := await stream.try_next()) is not None:
                changes.append(change)
                if len(changes) >= limit:
                    raise CannotReplay("too far behind")
    except PyMongoError as exc:  # an unknown or expired token
        raise CannotReplay(str(exc)) from exc
    found = await messages.many_by_id(
        hub.db, message_ids=[c["documentKey"]["_id"] for c in changes]
    )
    originals = await messages.many_by_id(
        hub.db, message_ids=[oid for m in found.values() if (oid := parse_id(m.reply_to))]
    )
    events = []
    for change in changes:
        message = found.get(change["documentKey"]["_id"])
        room = await hub.directory.room(message.room_id) if message is not None else None
        if message is not None and room is not None:
            # The message as it is now: replaying its post and its edit shows the edit twice.
            original = parse_id(message.reply_to)
            quoted = originals.get(original) if original else None
            posted = change["operationType"] == "insert"
            event = MessageEvent(change["_id"]["_data"], message, room, quoted, posted)
            if may_see(event, reader_id, my_rooms):
                events.append(event)
    return events


def from_ring(
    hub: Hub, *, cursor: str, reader_id: str, my_rooms: set[str]
) -> list[MessageEvent] | None:
    """The same as from_database, from memory; None when the ring does not reach back."""
    if not _replayable(cursor, hub.position):
        return None
    key = nx_compat.token_sort_key(cursor)
    if not hub.ring.covers(key):
        return None
    return [event for _, event in hub.ring.after(key) if may_see(event, reader_id, my_rooms)]


async def catch_up(hub: Hub, stream: Stream, cursor: str) -> None:
    """Replays what the user missed after `cursor`, then lets the held live events through."""
    if not cursor:
        stream.release(None, first=[wire.LIVE])
        return
    reader_id = stream.user_id
    try:
        my_rooms = await memberships.room_ids_of(hub.db, user_id=reader_id)
        replayed = from_ring(hub, cursor=cursor, reader_id=reader_id, my_rooms=my_rooms)
        source = "ring"
        if replayed is None:
            source = "database"
            replayed = await from_database(
                hub, cursor=cursor, reader_id=reader_id, my_rooms=my_rooms
            )
    except CannotReplay as exc:
        metrics.REPLAYS.labels("reload").inc()
        log.info("A stream of user %s cannot be caught up (%s): told to reload", reader_id, exc)
        position = hub.position
        after = nx_compat.token_sort_key(position) if position else None
        stream.release(after, first=[wire.reload(position), wire.LIVE])
        return
    metrics.REPLAYS.labels(source).inc()
    last: SortKey = nx_compat.token_sort_key(cursor)
    chunks = []
    for event in replayed:
        chunks.append(wire.as_seen_by(event, reader_id))
        last = nx_compat.token_sort_key(event.id)
    stream.release(last, first=[*chunks, wire.LIVE])
