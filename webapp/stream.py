"""GET /events: one Server-Sent Events stream per signed-in tab.

On connect the stream subscribes to the hub first, then replays from the client's cursor
(Last-Event-ID, else ?after=) what that user missed, read from the messages change stream
itself, and then goes live. A message event's id is its change's resume token, so ids follow
commit order in every process; a live event at or before the last one sent was replayed
already and is skipped. A cursor that cannot be replayed gets one `reload` event instead.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from weakref import WeakKeyDictionary

from pymongo.errors import PyMongoError
from sse_starlette import EventSourceResponse, ServerSentEvent
from starlette.requests import Request

from webapp import chat, nx_compat, settings, store
from webapp.auth import SignedInUser, signed_in
from webapp.database import Db
from webapp.hub import (
    CutOff,
    Event,
    MessageEvent,
    PersonEvent,
    SidebarEvent,
    Subscription,
    TypingEvent,
)
from webapp.models import Message
from webapp.sidebar import build_sidebar, neutral_person
from webapp.templating import render_fragment

RETRY_MS = 2000  # how long a browser waits before it reconnects
# Changes; a cursor further behind gets `reload`. At most what nx-27017 retains, so a replay
# that could have lost the oldest changes is never mistaken for a complete one.
REPLAY_LIMIT = nx_compat.RETAINED_CHANGES
_CURSOR_RE = re.compile(r"nx:\d{1,18}|[0-9A-Fa-f]{2,4096}")


class CannotReplay(Exception):
    pass


async def replay_messages(
    db: Db, *, cursor: str, position: str, user_id: str
) -> list[MessageEvent]:
    """The message changes after `cursor` that this user may see, in commit order."""
    if not _CURSOR_RE.fullmatch(cursor) or nx_compat.cannot_replay(cursor, position):
        raise CannotReplay("not a cursor of this stream")
    changes = []
    try:
        async with await db[Message.__collection__].watch(
            start_after={"_data": cursor}, max_await_time_ms=1
        ) as stream:
            while (change := await stream.try_next()) is not None:
                changes.append(change)
                if len(changes) >= REPLAY_LIMIT:
                    raise CannotReplay("too far behind")
    except PyMongoError as exc:  # an unknown or expired token
        raise CannotReplay(str(exc)) from exc

    changes = [c for c in changes if c.get("operationType") in ("insert", "update", "replace")]
    messages = await store.messages_by_id(
        db, message_ids=[c["documentKey"]["_id"] for c in changes]
    )
    events = []
    for change in changes:
        message = messages.get(change["documentKey"]["_id"])
        if message and chat.may_read(message.conversation, message.participants, user_id):
            # The message as it is now: replaying its post and its edit shows the edit twice.
            events.append(MessageEvent(change["_id"]["_data"], message))
    return events


# An event's fragment as everyone but its author sees it, rendered once for all the streams
# of this process that send it.
_shared_html: WeakKeyDictionary[Event, str] = WeakKeyDictionary()


def _render_shared(request: Request, event: MessageEvent | PersonEvent | TypingEvent) -> str:
    if isinstance(event, MessageEvent):
        return render_fragment(request, "_message.html", message=event.message)
    if isinstance(event, TypingEvent):
        return render_fragment(request, "_typing.html", typing=event.typing)
    return render_fragment(request, "_person.html", person=neutral_person(event))


async def _render(request: Request, me: SignedInUser, event: Event) -> ServerSentEvent:
    if isinstance(event, SidebarEvent):  # this reader's own counts
        db = request.app.state.db
        sidebar = await build_sidebar(db, me=me.user, online_ids=request.app.state.hub.online)
        html = render_fragment(request, "_sidebar.html", sidebar=sidebar, conversation=None)
    elif isinstance(event, MessageEvent) and event.message.sender_id == me.identity:
        html = render_fragment(request, "_message.html", message=event.message)  # with controls
    else:
        html = _shared_html.get(event) or _shared_html.setdefault(
            event, _render_shared(request, event)
        )
    return ServerSentEvent(data=html, event=event.name, id=event.id)


async def _events(
    request: Request, me: SignedInUser, cursor: str
) -> AsyncIterator[ServerSentEvent]:
    hub = request.app.state.hub
    subscription: Subscription = await hub.connect(me.identity)
    try:
        yield ServerSentEvent(comment="connected", retry=RETRY_MS)
        last_sent = nx_compat.token_sort_key(cursor) if cursor else None
        if cursor:
            try:
                replayed = await replay_messages(
                    request.app.state.db,
                    cursor=cursor,
                    position=hub.position,
                    user_id=me.identity,
                )
            except CannotReplay:
                position = hub.position
                last_sent = nx_compat.token_sort_key(position) if position else None
                yield ServerSentEvent(data="reload", event="reload", id=position or None)
            else:
                for missed in replayed:
                    yield await _render(request, me, missed)
                    last_sent = nx_compat.token_sort_key(missed.id)
        while True:
            try:
                event = await subscription.next()
            except CutOff:
                return  # the browser reconnects with Last-Event-ID and catches up
            if (
                event.id is not None
                and last_sent is not None
                and nx_compat.token_sort_key(event.id) <= last_sent
            ):
                continue  # replayed already
            yield await _render(request, me, event)
    finally:
        hub.disconnect(subscription)


async def stream_events(request: Request) -> EventSourceResponse:
    me = signed_in(request)
    cursor = request.headers.get("last-event-id") or request.query_params.get("after", "")
    return EventSourceResponse(
        _events(request, me, cursor.strip()),
        ping=settings.KEEPALIVE_SECS,
        headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
    )
