"""Events on the wire: each encoded once into the Server-Sent Events bytes that every stream
writes as they are (sse-starlette's encoding).

A fragment sent to many streams is rendered outside any request, with a neutral context: no
viewer, no session, no CSRF token (htmx sends the page's own token with every request). An
event with an owner (a message's author, a room's owner) has a second variant, theirs; both
are made once per event.
"""

from __future__ import annotations

from dataclasses import dataclass

from sse_starlette import ServerSentEvent

from webapp.live.events import KINDS, Event
from webapp.live.streams import framed

RETRY_MS = 2000  # how long a browser waits before it reconnects
CONNECTED = ServerSentEvent(comment="connected", retry=RETRY_MS).encode()
KEEPALIVE = ServerSentEvent(comment="keep-alive").encode()
SIGNED_OUT = ServerSentEvent(data="signed out", event="signed-out").encode()
# Written once a stream has replayed what its tab missed: the page is caught up, and live.
LIVE = ServerSentEvent(data="live", event="live").encode()
# Every event name a page listens for: the kinds', and the stream's own.
EVENT_NAMES = (*(kind.name for kind in KINDS), "reload", "signed-out", "live")


def encode(data: str, *, event: str, id: str | None = None) -> bytes:
    return ServerSentEvent(data=data, event=event, id=id).encode()


def reload(position: str) -> bytes:
    """Tells a page that cannot be caught up to load afresh; its id is where it then stands."""
    return encode("reload", event="reload", id=position or None)


@dataclass(frozen=True)
class Encoded:
    """An event's bytes: everyone's, and its owner's own copy when it has one; each also
    framed once as a chunk of a streamed response (streams.framed)."""

    shared: bytes
    own: bytes | None = None
    owner: str = ""
    shared_chunk: bytes = b""
    own_chunk: bytes = b""

    def for_user(self, user_id: str) -> tuple[bytes, bytes]:
        """The bytes `user_id` gets, and the same as a chunk."""
        if self.own is not None and user_id == self.owner:
            return self.own, self.own_chunk
        return self.shared, self.shared_chunk


def encode_event(event: Event) -> Encoded:
    """The event's bytes, each variant rendered and framed once."""
    shared = encode(event.data(), event=event.name, id=event.id)
    if not event.owner:
        return Encoded(shared, shared_chunk=framed(shared))
    own = encode(event.data(event.owner), event=event.name, id=event.id)
    return Encoded(shared, own, event.owner, framed(shared), framed(own))


def as_seen_by(event: Event, viewer_id: str) -> bytes:
    """The event as one viewer gets it (a replay, for one stream)."""
    data = event.data(viewer_id if viewer_id == event.owner else "")
    return encode(data, event=event.name, id=event.id)
