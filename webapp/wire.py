"""Events on the wire: each rendered and encoded once into the bytes that every stream writes.

A fragment sent to many streams is rendered outside any request, with a neutral context: no
viewer, no session, no CSRF token (htmx sends the page's own token with every request). A
message has two variants, everyone's and its author's own copy with the Edit and Delete
controls; both are made once per event. The encoding is sse-starlette's.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from sse_starlette import ServerSentEvent

from webapp.feeds import (
    Event,
    MemberEvent,
    MessageEvent,
    PersonEvent,
    ReadEvent,
    RoomEvent,
    TypingEvent,
)
from webapp.sidebar import neutral_person
from webapp.templating import render_shared

RETRY_MS = 2000  # how long a browser waits before it reconnects
CONNECTED = ServerSentEvent(comment="connected", retry=RETRY_MS).encode()
KEEPALIVE = ServerSentEvent(comment="keep-alive").encode()
SIGNED_OUT = ServerSentEvent(data="signed out", event="signed-out").encode()
# Written once a stream has replayed what its tab missed: the page is caught up, and live.
LIVE = ServerSentEvent(data="live", event="live").encode()


def encode(data: str, *, event: str, id: str | None = None) -> bytes:
    return ServerSentEvent(data=data, event=event, id=id).encode()


@dataclass(frozen=True)
class Encoded:
    """An event's bytes: everyone's, and its author's own copy when it has one."""

    shared: bytes
    own: bytes | None = None
    author_id: str = ""

    def for_user(self, user_id: str) -> bytes:
        if self.own is not None and user_id == self.author_id:
            return self.own
        return self.shared


def message_bytes(event: MessageEvent, *, viewer_id: str = "") -> bytes:
    """A message event as `viewer_id` gets it (their own copy when they wrote it)."""
    mine = viewer_id if viewer_id == event.message.sender_id else ""
    html = render_shared(
        "_message.html", viewer_id=mine, message=event.message, room_key=event.room.key
    )
    return encode(html, event=event.name, id=event.id)


def encode_event(event: Event) -> Encoded:
    if isinstance(event, MessageEvent):
        author = event.message.sender_id
        return Encoded(message_bytes(event), message_bytes(event, viewer_id=author), author)
    if isinstance(event, MemberEvent):  # the owner's copy has the Remove button
        owner = event.room.owner_id

        def member(viewer_id: str) -> bytes:
            html = render_shared("_member.html", viewer_id=viewer_id, room=event.room,
                                 member_id=event.user_id, username=event.username,
                                 left=not event.joined)  # fmt: skip
            return encode(html, event=event.name)

        return Encoded(member(""), member(owner), owner)
    if isinstance(event, PersonEvent):
        html = render_shared("_person.html", person=neutral_person(event), conversation=None)
    elif isinstance(event, TypingEvent):
        html = render_shared("_typing.html", typing=event.typing, room_key=event.room.key)
    elif isinstance(event, RoomEvent):
        html = render_shared(
            "_room_entry.html", room=event.room, unread=0, muted=False, conversation=None
        )
    else:
        assert isinstance(event, ReadEvent)
        html = json.dumps(event.state())
    return Encoded(encode(html, event=event.name))
