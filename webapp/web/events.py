"""GET /events: one Server-Sent Events stream per signed-in tab.

On connect the stream registers with the hub first (holding live events aside), then replays
what the tab missed (live/replay.py), then goes live. HEAD answers the same headers and no body.

The response is a lean ASGI one. Its start (with the security headers) and its end pass
through the middleware as usual; in between, the hub writes each event's bytes straight to the
connection's transport, which the server lends the app (webapp/server.py), so that an event
costs each stream one write and no task. One process-wide task sends keep-alives and closes
sockets that stall (live/registry.py).
"""

from __future__ import annotations

import asyncio
import contextlib

from starlette.requests import Request
from starlette.types import Receive, Scope, Send

from webapp.live import replay, wire
from webapp.live.hub import Hub
from webapp.live.streams import TRANSPORT
from webapp.web import state
from webapp.web.session import SignedInUser, signed_in

HEADERS = [
    (b"content-type", b"text/event-stream; charset=utf-8"),
    (b"cache-control", b"no-store"),
    (b"x-accel-buffering", b"no"),
]


async def _until_disconnect(receive: Receive) -> None:
    while (await receive())["type"] != "http.disconnect":
        pass


class EventStreamResponse:
    """Writes one user's events to the socket as the hub offers them."""

    def __init__(self, hub: Hub, me: SignedInUser, cursor: str) -> None:
        self.hub = hub
        self.me = me
        self.cursor = cursor

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": HEADERS})
        if scope["method"] == "HEAD":  # the same headers, and no body (RFC 9110, 9.3.2)
            await send({"type": "http.response.body", "body": b""})
            return
        hub = self.hub
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
            await replay.catch_up(hub, stream, self.cursor)
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
    return EventStreamResponse(state.hub(request), me, cursor.strip())
