"""GET /events: one Server-Sent Events stream per signed-in tab, served on a lean path in
front of the middleware stack (the same sign-in check, revocations and headers, called as
plain functions), so that an open stream holds nothing but its small Stream object and
uvicorn's own task.

On connect the stream registers with the hub first (holding live events aside), then replays
what the tab missed (live/replay.py), then goes live. HEAD answers the same headers and no body.
In between, the hub writes each event's bytes straight to the connection's transport, which
the server lends the app (webapp/server.py), so that an event costs each stream one write and
no task; the server tells the stream when its connection is lost. One process-wide task sends
keep-alives and closes sockets that stall (live/registry.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import Awaitable
from dataclasses import dataclass

from pymongo.errors import PyMongoError
from starlette.requests import HTTPConnection
from starlette.types import ASGIApp, Receive, Scope, Send

from webapp.errors import DatabaseUnavailable, Unauthorized
from webapp.live import replay, wire
from webapp.live.hub import Hub
from webapp.live.streams import EVENTS_PATH, ON_LOST, TRANSPORT, Stream
from webapp.ops import logs, metrics, observe
from webapp.web import state
from webapp.web.auth import SessionBackend
from webapp.web.outage import RETRY_AFTER_SECS
from webapp.web.security import SECURITY_HEADERS
from webapp.web.session import SignedInUser

HEADERS = [
    (b"content-type", b"text/event-stream; charset=utf-8"),
    (b"cache-control", b"no-store"),
    (b"x-accel-buffering", b"no"),
    *SECURITY_HEADERS,
]
_backend = SessionBackend()


class EventsFirst:
    """`app`, with GET and HEAD /events answered before its middleware (and as `chat`, the
    Starlette app whose state holds the hub)."""

    def __init__(self, app: ASGIApp, chat: ASGIApp) -> None:
        self.app = app
        self.chat = chat

    def __call__(self, scope: Scope, receive: Receive, send: Send) -> Awaitable[None]:
        # (Not a coroutine of its own: each open stream then holds one frame less.)
        if (
            scope["type"] == "http"
            and scope["path"] == EVENTS_PATH
            and scope["method"] in ("GET", "HEAD")
        ):
            scope["app"] = self.chat
            scope[metrics.ROUTE] = metrics.EVENTS_ROUTE
            return serve(scope, receive, send)
        return self.app(scope, receive, send)


async def _start(send: Send, rid: str) -> None:
    """The stream's 200 and headers (HEAD's too)."""
    headers = [*HEADERS, (observe.HEADER, rid.encode())]
    await send({"type": "http.response.start", "status": 200, "headers": headers})


async def _refuse(send: Send, status: int, message: str, rid: bytes) -> int:
    body = json.dumps({"error": message}).encode()
    retry = [(b"retry-after", str(RETRY_AFTER_SECS).encode())] if status == 503 else []
    headers = [
        *retry,
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()),
        (b"cache-control", b"no-store"),
        *SECURITY_HEADERS,
        (observe.HEADER, rid),
    ]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
    return status


@dataclass(frozen=True)
class _Opened:
    """A stream registered with the hub, and the cursor it catches up from."""

    hub: Hub
    stream: Stream
    cursor: str


async def serve(scope: Scope, receive: Receive, send: Send) -> None:
    """The stream, with its request id and the one log line when it ends (observe.py's work,
    done here: a middleware would hold more for as long as the tab is open).

    This coroutine is the only one an open stream keeps: signing in and registering are
    awaited in `_open`, each write in `_write`, and neither outlives its call.
    """
    started = time.perf_counter()
    rid = observe.request_id_of(scope)
    logs.request_id.set(rid)
    received = scope["headers"]  # the server's own list (signing in may copy it to the scope)
    try:
        opened = await _open(scope, send, rid)
    except Exception:
        observe.log_request(scope, 500, time.perf_counter() - started, None)
        raise
    if not isinstance(opened, _Opened):
        status, user_id = opened
        observe.log_request(scope, status, time.perf_counter() - started, user_id)
        return
    hub, stream = opened.hub, opened.stream
    _let_go_of_headers(scope, received)
    listener = _listen(scope, receive, stream)
    try:
        await _start(send, rid)  # (its headers are not kept while the stream is open)
        await _write(send, stream, wire.CONNECTED)
        await replay.catch_up(hub, stream, opened.cursor)
        del opened
        while (chunk := stream.take()) is not None:
            if chunk:
                await _write(send, stream, chunk)
            else:
                await stream.offered()
        await _write(send, stream, b"", more=False)
    except asyncio.CancelledError:
        if not stream.stalled:
            raise
        # Cut off by the watchdog: the server closes the connection.
    except PyMongoError:  # catching up failed: the page reconnects and tries again
        with contextlib.suppress(RuntimeError, OSError):
            await _write(send, stream, b"", more=False)
    except (RuntimeError, OSError):
        if stream.transport is None or not stream.transport.is_closing():
            raise
        # The connection went while the stream was ending: nothing more to say to it.
    finally:
        if listener is not None:
            listener.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await listener
        hub.disconnect(stream)
        observe.log_request(scope, 200, time.perf_counter() - started, stream.user_id)


async def _open(scope: Scope, send: Send, rid: str) -> _Opened | tuple[int, str | None]:
    """Signs the request in and registers its stream with the hub (holding live events aside
    until it has caught up); or answers it (401, 503, or HEAD's headers) and says how."""
    conn = HTTPConnection(scope)
    try:
        signed = await _backend.authenticate(conn)
        if signed is None:
            return await _refuse(send, 401, Unauthorized.message, rid.encode()), None
        me = signed[1]
        assert isinstance(me, SignedInUser)
        if scope["method"] == "HEAD":  # the same headers, and no body (RFC 9110, 9.3.2)
            await _start(send, rid)
            await send({"type": "http.response.body", "body": b""})
            return 200, me.identity
        cursor = conn.headers.get("last-event-id") or conn.query_params.get("after", "")
        hub = state.hub(conn)
        stream = await hub.connect(me.identity, me.claims.jti)
    except PyMongoError:
        message = DatabaseUnavailable.message.format(seconds=RETRY_AFTER_SECS)
        return await _refuse(send, 503, message, rid.encode()), None
    return _Opened(hub, stream, cursor.strip())


def _let_go_of_headers(scope: Scope, received: object) -> None:
    """Signed in, a stream reads nothing more of its request's headers, which a browser's make
    a few kilobytes (cookies, user agent, client hints): they go for as long as it stays open.
    The server's list is emptied in place, since its protocol holds it too."""
    if isinstance(received, list):
        received.clear()
    scope["headers"] = []


def _listen(scope: Scope, receive: Receive, stream: Stream) -> asyncio.Future[None] | None:
    """Has the stream told when its connection goes: by the server (webapp/server.py lends the
    transport), or else by a task of its own that waits for the disconnect."""
    stream.task = asyncio.current_task()
    extensions = scope.get("extensions", {})
    stream.transport = extensions.get(TRANSPORT)
    if stream.transport is None:
        return asyncio.ensure_future(_until_disconnect(receive, stream))
    extensions[ON_LOST] = stream.close
    if stream.transport.is_closing():  # gone already
        stream.close()
    return None


async def _until_disconnect(receive: Receive, stream: Stream) -> None:
    while (await receive())["type"] != "http.disconnect":
        pass
    stream.close()


async def _write(send: Send, stream: Stream, chunk: bytes, more: bool = True) -> None:
    stream.sending_since = asyncio.get_running_loop().time()  # the watchdog closes a stuck one
    await send({"type": "http.response.body", "body": chunk, "more_body": more})
    stream.sending_since = None


async def stream_events(conn: HTTPConnection) -> None:
    """The route's endpoint, for url_for: EventsFirst answers GET and HEAD /events first."""
    raise AssertionError("GET /events is served by EventsFirst")  # pragma: no cover
