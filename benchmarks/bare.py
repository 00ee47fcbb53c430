"""The floor: a bare ASGI app, the least this architecture can cost to deliver a message.

    MONGODB_URI=mongodb://127.0.0.1:27017/chat_floor python -m benchmarks.bare --port 8001

uvicorn with httptools and uvloop, no framework and no middleware. It speaks just enough of the
app's HTTP for the benchmark's clients and readers (benchmarks/clients.py, readers.py):

- POST /register: 303 with a session cookie (any token; none is ever checked);
- POST /api/token: a bearer token of the same kind;
- GET /healthz: 200;
- POST /rooms/public/messages (form `body`): inserts {body, created_at} into the `message`
  collection of MONGODB_URI's database and answers 201 with `id="msg-<its ObjectId>"`;
- GET /events: a `text/event-stream` that opens with `: connected` and carries every message.

One task follows `db.message.watch()` for inserts, loads each inserted document by its key
(the app does the same: the embedded server encodes fullDocument its own way), encodes it once
into the bytes of one chunk of a chunked SSE response, and writes those same bytes to every
open stream's transport in one loop. On nx-27017 getMore answers at once when nothing is new,
so the task pauses EMPTY_BATCH_PAUSE_SECS after an empty batch: a plain poll (hence a busy
idle server). A stream costs what uvicorn spends on a connection and its request task, and a
place in a set. At shutdown the streams end first, so that uvicorn need not wait for them.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import html
import json
import logging
import os
import secrets
from datetime import UTC, datetime
from typing import Any, cast
from urllib.parse import parse_qs

import uvicorn
from pymongo import AsyncMongoClient
from pymongo.asynchronous.change_stream import AsyncChangeStream
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.errors import PyMongoError

Scope = dict[str, Any]
Message = dict[str, Any]
Receive = Any  # Callable[[], Awaitable[Message]]
Send = Any  # Callable[[Message], Awaitable[None]]

EMPTY_BATCH_PAUSE_SECS = 0.002
AWAIT_MS = 1000  # how long a real MongoDB may hold an empty getMore (nx-27017 does not wait)
RETRY_SECS = 1.0  # after a database error, before the change stream is opened again
MAX_FORM_BYTES = 64 * 1024
CONNECTED = b": connected\n\n"
EVENT_HEADERS = [(b"content-type", b"text/event-stream"), (b"cache-control", b"no-store")]
END_OF_BODY = b"0\r\n\r\n"  # the last chunk of a chunked response

log = logging.getLogger("benchmarks.bare")


class Floor:
    """The database, the open streams' transports, and the task that writes every message."""

    def __init__(self, uri: str) -> None:
        self.client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(uri)
        db = self.client.get_default_database()  # the one MONGODB_URI names
        self.messages: AsyncCollection[dict[str, Any]] = db["message"]
        self.streams: set[asyncio.WriteTransport] = set()
        self.task: asyncio.Task[None] | None = None
        self.position: dict[str, Any] | None = None  # the last change's resume token

    async def start(self) -> None:
        """Opens the change stream (so nothing inserted from now on is missed), then follows it."""
        changes = await self._watch()
        self.task = asyncio.create_task(self._follow(changes))

    async def stop(self) -> None:
        if self.task is not None:
            self.task.cancel()
            await asyncio.gather(self.task, return_exceptions=True)
        await self.client.close()

    def end_streams(self) -> None:
        """Ends every stream's response and closes its connection (at shutdown)."""
        for transport in list(self.streams):
            with contextlib.suppress(RuntimeError, OSError):
                transport.write(END_OF_BODY)
                transport.close()
        self.streams.clear()

    async def _watch(self) -> AsyncChangeStream[dict[str, Any]]:
        return await self.messages.watch(
            [{"$match": {"operationType": "insert"}}],
            resume_after=self.position,
            max_await_time_ms=AWAIT_MS,
        )

    async def _follow(self, changes: AsyncChangeStream[dict[str, Any]] | None) -> None:
        while True:
            try:
                if changes is None:
                    changes = await self._watch()
                async with changes:
                    while True:
                        change = await changes.try_next()
                        if change is None:
                            await asyncio.sleep(EMPTY_BATCH_PAUSE_SECS)
                            continue
                        await self._deliver(change)
                        self.position = change["_id"]
            except PyMongoError as exc:
                changes = None
                log.warning("change stream failed (%s); reopening in %gs", exc, RETRY_SECS)
                await asyncio.sleep(RETRY_SECS)

    async def _deliver(self, change: dict[str, Any]) -> None:
        doc = await self.messages.find_one({"_id": change["documentKey"]["_id"]})
        if doc is None:  # deleted since
            return
        event = b"id: %s\nevent: message\n%s\n" % (
            str(change["_id"]["_data"]).encode(),
            b"".join(b"data: %s\n" % line.encode() for line in fragment(doc).splitlines()),
        )
        chunk = b"%x\r\n%s\r\n" % (len(event), event)  # encoded once, written to every stream
        for transport in self.streams:
            if not transport.is_closing():
                with contextlib.suppress(RuntimeError, OSError):
                    transport.write(chunk)

    async def insert(self, body: str) -> dict[str, Any]:
        doc = {"body": body, "created_at": datetime.now(UTC)}
        await self.messages.insert_one(doc)  # sets doc["_id"]
        return doc


def fragment(doc: dict[str, Any]) -> str:
    """The message as the event's data and as the POST's answer: an article with its id."""
    body = html.escape(str(doc.get("body", "")))
    return f'<article id="msg-{doc["_id"]}"><p>{body}</p></article>'


# HTTP


async def read_form(receive: Receive) -> dict[str, str]:
    body = bytearray()
    while True:
        message = await receive()
        if message["type"] != "http.request":
            break
        body += message.get("body", b"")
        if len(body) > MAX_FORM_BYTES or not message.get("more_body", False):
            break
    fields = parse_qs(body.decode("utf-8", "replace"), keep_blank_values=True)
    return {name: values[0] for name, values in fields.items()}


async def respond(
    send: Send,
    status: int,
    body: bytes = b"",
    content_type: bytes = b"text/plain; charset=utf-8",
    headers: list[tuple[bytes, bytes]] | None = None,
) -> None:
    head = [(b"content-type", content_type), (b"content-length", b"%d" % len(body))]
    await send({"type": "http.response.start", "status": status, "headers": head + (headers or [])})
    await send({"type": "http.response.body", "body": body})


def token() -> str:
    return secrets.token_urlsafe(16)


def transport_of(send: Send) -> asyncio.WriteTransport:
    """The connection's transport: uvicorn's `send` is a method of the request's cycle, which
    holds it (the app's own server lends it in the scope instead, webapp/server.py)."""
    transport = getattr(getattr(send, "__self__", None), "transport", None)
    if transport is None or not hasattr(transport, "is_closing"):  # uvloop's: no asyncio class
        raise RuntimeError("the floor runs on uvicorn's httptools protocol only")
    return cast(asyncio.WriteTransport, transport)


async def events(floor: Floor, receive: Receive, send: Send) -> None:
    """One stream: its head and `: connected` through uvicorn, then its transport joins the
    set that every message is written to, until the client goes."""
    await send({"type": "http.response.start", "status": 200, "headers": EVENT_HEADERS})
    await send({"type": "http.response.body", "body": CONNECTED, "more_body": True})
    transport = transport_of(send)
    floor.streams.add(transport)
    try:
        while (await receive())["type"] != "http.disconnect":
            pass
    finally:
        floor.streams.discard(transport)


class App:
    """The ASGI app: the lifespan starts and stops the floor; five routes, the rest 404."""

    def __init__(self, uri: str) -> None:
        self.uri = uri
        self.floor: Floor | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self.lifespan(receive, send)
            return
        floor = self.floor
        assert floor is not None
        route = (scope["method"], scope["path"])
        if route == ("GET", "/events"):
            await events(floor, receive, send)
        elif route == ("POST", "/rooms/public/messages"):
            form = await read_form(receive)
            doc = await floor.insert(form.get("body", ""))
            await respond(send, 201, fragment(doc).encode(), b"text/html; charset=utf-8")
        elif route == ("POST", "/register"):
            await read_form(receive)
            cookie = b"session=%s; Path=/; HttpOnly; SameSite=Lax" % token().encode()
            await respond(send, 303, headers=[(b"location", b"/"), (b"set-cookie", cookie)])
        elif route == ("POST", "/api/token"):
            await read_form(receive)
            answer = {"access_token": token(), "token_type": "bearer", "expires_in": 1}
            await respond(send, 200, json.dumps(answer).encode(), b"application/json")
        elif route == ("GET", "/healthz"):
            await respond(send, 200, b"ok")
        else:
            await respond(send, 404, b"not found")

    async def lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                self.floor = Floor(self.uri)
                await self.floor.start()
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                if self.floor is not None:
                    await self.floor.stop()
                await send({"type": "lifespan.shutdown.complete"})
                return


class Server(uvicorn.Server):
    """uvicorn's server, ending the streams as it shuts down (they would never end alone)."""

    def __init__(self, config: uvicorn.Config, app: App) -> None:
        super().__init__(config)
        self.bare = app

    async def shutdown(self, sockets: Any = None) -> None:
        if self.bare.floor is not None:
            self.bare.floor.end_streams()
        await super().shutdown(sockets)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.bare", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args(argv)
    uri = os.environ.get("MONGODB_URI", "")
    if not uri:
        parser.error("MONGODB_URI must name the database")
    app = App(uri)
    config = uvicorn.Config(  # what uvicorn.run(app, ...) would make
        app,
        host=args.host,
        port=args.port,
        http="httptools",
        loop="uvloop",
        ws="none",
        lifespan="on",
        access_log=False,
    )
    Server(config, app).run()


if __name__ == "__main__":
    main()
