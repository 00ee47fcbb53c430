"""GET /events: one Server-Sent Events stream per signed-in tab.

On connect the stream registers with the hub first (holding live events aside), then replays
from the client's cursor (Last-Event-ID, else ?after=) what that user missed: from the hub's
ring of recent message changes when the cursor is inside it, else from the messages change
stream itself; then it goes live. A message event's id is its change's resume token, so ids
follow commit order in every process; a live event at or before the last one replayed is
dropped. A cursor that cannot be replayed gets one `reload` event instead. Either way a `live`
event then says that the tab is caught up.

The response is a lean ASGI one. Its start (with the security headers) and its end pass
through the middleware as usual; in between, the hub writes each event's bytes straight to the
connection's transport, which the server lends the app (webapp/server.py), so that an event
costs each stream one write and no task. One process-wide task sends keep-alives and closes
sockets that stall (hub.Hub._watchdog).
"""

from __future__ import annotations

import asyncio
import contextlib
import re

from pymongo.errors import PyMongoError
from starlette.requests import Request
from starlette.types import Receive, Scope, Send

from webapp import access, feeds, nx_compat, store, wire
from webapp.auth import SignedInUser, signed_in
from webapp.feeds import MessageEvent
from webapp.hub import Hub, SortKey, Stream
from webapp.models import Message
from webapp.server import TRANSPORT

MAX_REPLAY = 5000  # changes; a cursor further behind gets `reload`
_CURSOR_RE = re.compile(r"nx:\d{1,18}|[0-9A-Fa-f]{2,4096}")
HEADERS = [
    (b"content-type", b"text/event-stream; charset=utf-8"),
    (b"cache-control", b"no-store"),
    (b"x-accel-buffering", b"no"),
]


class CannotReplay(Exception):
    pass


def may_see(event: MessageEvent, my_rooms: set[str]) -> bool:
    """Whether a reader who is a member of `my_rooms` (their room ids, now) may see it."""
    return access.can_read(event.room, event.message.room_id in my_rooms)


def _replayable(cursor: str, position: str) -> bool:
    """A cursor of this stream: well formed, and not one the embedded server would misread."""
    return bool(_CURSOR_RE.fullmatch(cursor)) and not nx_compat.cannot_replay(cursor, position)


async def replay_messages(hub: Hub, *, cursor: str, my_rooms: set[str]) -> list[MessageEvent]:
    """The message changes after `cursor` that a member of `my_rooms` may see, read from the
    change stream."""
    db = hub.db
    if not _replayable(cursor, hub.position):
        raise CannotReplay("not a cursor of this stream")
    limit = min(MAX_REPLAY, nx_compat.replay_limit(cursor))
    changes = []
    try:
        async with await db[Message.__collection__].watch(
            feeds.MESSAGES.pipeline, start_after={"_data": cursor}, max_await_time_ms=1
        ) as stream:
            while (change := await stream.try_next()) is not None:
                changes.append(change)
                if len(changes) >= limit:
                    raise CannotReplay("too far behind")
    except PyMongoError as exc:  # an unknown or expired token
        raise CannotReplay(str(exc)) from exc

    messages = await store.messages_by_id(
        db, message_ids=[c["documentKey"]["_id"] for c in changes]
    )
    events = []
    for change in changes:
        message = messages.get(change["documentKey"]["_id"])
        room = await hub.room(message.room_id) if message is not None else None
        if message is not None and room is not None:
            # The message as it is now: replaying its post and its edit shows the edit twice.
            event = MessageEvent(change["_id"]["_data"], message, room)
            if may_see(event, my_rooms):
                events.append(event)
    return events


def replay_from_ring(hub: Hub, *, cursor: str, my_rooms: set[str]) -> list[MessageEvent] | None:
    """The same as replay_messages, from memory; None when the ring does not reach back."""
    if not _replayable(cursor, hub.position):
        return None
    key = nx_compat.token_sort_key(cursor)
    if not hub.ring.covers(key):
        return None
    return [event for _, event in hub.ring.after(key) if may_see(event, my_rooms)]


async def _catch_up(request: Request, hub: Hub, stream: Stream, cursor: str) -> None:
    """Replays what the user missed after `cursor`, then lets the held live events through."""
    if not cursor:
        stream.release(None, first=[wire.LIVE])
        return
    user_id = stream.user_id
    try:
        # Their rooms as they are now: a room they have left replays nothing.
        my_rooms = await store.room_ids_of(hub.db, user_id=user_id)
        replayed = replay_from_ring(hub, cursor=cursor, my_rooms=my_rooms)
        if replayed is None:
            replayed = await replay_messages(hub, cursor=cursor, my_rooms=my_rooms)
    except CannotReplay:
        position = hub.position
        reload = wire.encode("reload", event="reload", id=position or None)
        after = nx_compat.token_sort_key(position) if position else None
        stream.release(after, first=[reload, wire.LIVE])
        return
    last: SortKey = nx_compat.token_sort_key(cursor)
    chunks = []
    for event in replayed:
        chunks.append(wire.message_bytes(event, viewer_id=user_id))
        last = nx_compat.token_sort_key(event.id)
    stream.release(last, first=[*chunks, wire.LIVE])


async def _until_disconnect(receive: Receive) -> None:
    while (await receive())["type"] != "http.disconnect":
        pass


class EventStreamResponse:
    """Writes one user's events to the socket as the hub offers them."""

    def __init__(self, request: Request, me: SignedInUser, cursor: str) -> None:
        self.request = request
        self.me = me
        self.cursor = cursor

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        hub: Hub = self.request.app.state.hub
        await send({"type": "http.response.start", "status": 200, "headers": HEADERS})
        if scope["method"] == "HEAD":  # the same headers, and no body (RFC 9110, 9.3.2)
            await send({"type": "http.response.body", "body": b""})
            return
        stream = await hub.connect(self.me.identity, self.me.claims.jti)
        stream.task = asyncio.current_task()
        stream.transport = scope.get("extensions", {}).get(TRANSPORT)
        listener = asyncio.ensure_future(_until_disconnect(receive))
        listener.add_done_callback(lambda _: stream.close())
        loop = asyncio.get_running_loop()

        async def write(chunk: bytes, more: bool = True) -> None:
            stream.sending_since = loop.time()  # the watchdog closes a socket stuck here
            await send({"type": "http.response.body", "body": chunk, "more_body": more})
            stream.sending_since = None

        try:
            await write(wire.CONNECTED)
            await _catch_up(self.request, hub, stream, self.cursor)
            while (chunk := await stream.next_chunk()) is not None:
                await write(chunk)
            await write(b"", more=False)
        except asyncio.CancelledError:
            if not stream.stalled:
                raise
            # Cut off by the watchdog: the server closes the connection.
        except (RuntimeError, OSError):
            if stream.transport is None or not stream.transport.is_closing():
                raise
            # The connection went while the stream was ending: nothing more to say to it.
        finally:
            listener.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await listener
            hub.disconnect(stream)


async def stream_events(request: Request) -> EventStreamResponse:
    me = signed_in(request)
    cursor = request.headers.get("last-event-id") or request.query_params.get("after", "")
    return EventStreamResponse(request, me, cursor.strip())
