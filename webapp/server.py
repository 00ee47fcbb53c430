"""The HTTP server: uvicorn with the app's options, and request headers kept within bounds.

`python -m webapp` (webapp/__main__.py) is the one way the app is served: the Procfile's `web:`
line, `make run` and the tests' app processes all start it so.

httptools, uvicorn's fast HTTP parser, has no limit of its own on request headers and no
timeout for them: it gathers a header of any size, however slowly it comes. The protocol
below counts what arrives before a request's headers are complete and refuses the request
(431, then closes) once that passes MAX_HEADER_BYTES, and closes a connection whose request
headers are not complete within HEADER_TIMEOUT_SECS (408 when part of a request came).
The request body has its own bounds, in webapp/security.py.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import contextlib
import errno
import logging
import socket
from typing import Any, Literal

import uvicorn
from uvicorn.protocols.http.httptools_impl import (
    STATUS_LINE,
    HttpToolsProtocol,
    RequestResponseCycle,
)

from webapp import settings
from webapp.data.embedded import EmbeddedDatabase
from webapp.live.streams import EVENTS_PATH, ON_LOST, TRANSPORT
from webapp.ops import logs

MAX_HEADER_BYTES = 16 * 1024  # the request line and every header, in all
# The kernel's send buffer per connection (left alone, it grows to megabytes for a client that
# reads nothing): what a stalled event stream can hold before its writes wait, and it is cut.
SEND_BUFFER_BYTES = 128 * 1024
HEADER_TIMEOUT_SECS = 10.0  # from the connection, or a request's first bytes, to its last header
# After a refusal the rest of what the client sends is read and dropped for this long, so that
# the refusal reaches it instead of being lost to a reset connection.
LINGER_SECS = 2.0
GRACEFUL_SHUTDOWN_SECS = 5
APP = "webapp.app:app"
PROTOCOL = "webapp.server:BoundedHttpToolsProtocol"

logger = logging.getLogger(__name__)
_NOBODY: collections.deque[asyncio.Future[bool]] = collections.deque()  # never added to


class LazyEvent(asyncio.Event):
    """asyncio.Event, less what it costs before anything waits on it.

    asyncio's makes its deque of waiters at once (about 620 bytes, a block of 64 slots), and
    uvicorn keeps two events a connection: whether its socket takes writes, and whether a
    request's body has come. An open event stream waits on neither. This one shares an empty
    deque until its first wait, which is the only place a waiter is added.
    """

    def __init__(self, value: bool = False) -> None:
        self._waiters = _NOBODY
        self._value = value

    async def wait(self) -> Literal[True]:
        if self._waiters is _NOBODY:
            self._waiters = collections.deque()
        return await super().wait()


class BoundedHttpToolsProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol, with a size limit and a deadline on request headers, and
    a lost connection told to the request being answered.

    Bytes are fed to the parser at most MAX_HEADER_BYTES at a time, so it never holds more of
    an unfinished header than the limit. Bytes of a piece in which a request's headers ended
    are not counted towards the next (pipelined) request's: that one may then reach up to
    twice the limit, never more.

    uvicorn tells a lost connection to its newest request only: with a request pipelined
    behind an event stream, that is the queued one, and the stream would never hear of it.
    Here the request being answered hears of it too, and an event stream is told directly
    (ON_LOST), so that it needs no task of its own waiting for the disconnect.

    The connection's flow control and each request get a LazyEvent for uvicorn's own.
    """

    # In slots: with these in the instance's dict beside uvicorn's 27 attributes, the dict
    # would outgrow Python's shared-key layout (at most 30 keys) and cost 1.3 KB more a
    # connection.
    __slots__ = (
        "_awaiting_headers",
        "_header_bytes",
        "_header_timer",
        "_headers_ended",
        "_refused",
        "_running",
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._header_bytes = 0  # of the current request's headers, so far
        self._awaiting_headers = True
        self._headers_ended = False  # in the piece being parsed
        self._refused = False
        self._header_timer: asyncio.TimerHandle | None = None
        self._running: RequestResponseCycle | None = None  # the request being answered

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self.flow._is_writable_event = LazyEvent(self.flow._is_writable_event.is_set())
        sock = transport.get_extra_info("socket")
        if sock is not None:  # a reader that stops reading is noticed before megabytes pile up
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, SEND_BUFFER_BYTES)
        self._header_timer = self.loop.call_later(HEADER_TIMEOUT_SECS, self._headers_too_slow)

    def connection_lost(self, exc: Exception | None) -> None:
        self._stop_header_timer()
        running, self._running = self._running, None
        if running is not None and running is not self.cycle and not running.response_complete:
            running.disconnected = True
            running.message_event.set()
        for cycle in (running, self.cycle):
            extensions: dict[str, Any] = cycle.scope.get("extensions", {}) if cycle else {}
            if (lost := extensions.get(ON_LOST)) is not None:
                lost()  # an event stream ends at once, with no task of its own to listen
        super().connection_lost(exc)

    def _start_asgi_task(self, cycle: RequestResponseCycle, app: Any) -> None:
        self._running = cycle
        super()._start_asgi_task(cycle, app)

    def data_received(self, data: bytes) -> None:
        while data and not self._refused and not self.transport.is_closing():
            room = MAX_HEADER_BYTES - self._header_bytes
            piece, data = (data, b"") if len(data) <= room else (data[:room], data[room:])
            self._headers_ended = False
            in_headers = self._awaiting_headers  # not in a body that may end in this piece
            HttpToolsProtocol.data_received(self, piece)
            if in_headers and self._awaiting_headers and not self._headers_ended:
                self._count_header_bytes(len(piece))

    def _count_header_bytes(self, count: int) -> None:
        self._header_bytes += count
        if self._header_bytes >= MAX_HEADER_BYTES:
            self._refuse(431, f"Request headers are limited to {MAX_HEADER_BYTES} bytes.")
        elif self._header_timer is None:  # part of a request came: its deadline
            self._header_timer = self.loop.call_later(HEADER_TIMEOUT_SECS, self._headers_too_slow)

    def on_headers_complete(self) -> None:
        self._awaiting_headers = False
        self._headers_ended = True
        self._header_bytes = 0
        if self._header_timer is not None:
            self._stop_header_timer()
        before = self.cycle
        HttpToolsProtocol.on_headers_complete(self)
        if self.cycle is not before:  # (an upgrade makes none)
            self.cycle.message_event = LazyEvent(self.cycle.message_event.is_set())
        # The app's event streams write their chunks to the transport themselves.
        extensions: dict[str, Any] = self.scope.setdefault("extensions", {})
        extensions[TRANSPORT] = self.transport
        running = self._running
        if running is not None and running is not self.cycle and _is_event_stream(running):
            # Pipelined behind an event stream, which never ends: nothing behind it would ever
            # be answered, and with reading paused its client's leaving would go unnoticed.
            self.transport.close()

    def on_message_complete(self) -> None:
        HttpToolsProtocol.on_message_complete(self)
        self._awaiting_headers = True

    def _stop_header_timer(self) -> None:
        if self._header_timer is not None:
            self._header_timer.cancel()
            self._header_timer = None

    def _headers_too_slow(self) -> None:
        self._header_timer = None
        if self._header_bytes:
            self._refuse(408, "The request headers took too long to arrive.")
        elif not self.transport.is_closing():
            self.transport.close()  # a connection that never asked anything

    def _refuse(self, status: int, message: str) -> None:
        """Answers `status` (unless a response is under way) and ends the connection."""
        self._refused = True
        self._stop_header_timer()
        client = "%s:%d" % self.client if self.client else "unknown"  # noqa: UP031
        logger.info("%s - refused with %d: %s", client, status, message)
        if self.transport.is_closing():
            return
        if self.cycle is not None and not self.cycle.response_complete:
            self.transport.close()  # mid-response: nothing can be added to it
            return
        body = message.encode()
        head = [STATUS_LINE[status]]
        for name, value in self.server_state.default_headers:
            head += [name, b": ", value, b"\r\n"]
        head += [
            b"content-type: text/plain; charset=utf-8\r\n",
            b"content-length: %d\r\n" % len(body),
            b"connection: close\r\n\r\n",
        ]
        self.transport.write(b"".join([*head, body]))
        if self.transport.can_write_eof():
            self.transport.write_eof()
            self.loop.call_later(LINGER_SECS, self.transport.close)
        else:
            self.transport.close()


def _is_event_stream(cycle: RequestResponseCycle) -> bool:
    scope = cycle.scope
    return scope["method"] == "GET" and scope["path"] == EVENTS_PATH and not cycle.response_complete


def _cannot_serve(host: str, port: int) -> str:
    """Why the app could not start here (one sentence), or "": the port taken, or the data
    folder's embedded database in use by another process. (Asked before starting, for a clear
    line; the server and the database still settle a race of their own.)"""
    with socket.socket() as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as exc:
            reason = "address already in use" if exc.errno == errno.EADDRINUSE else exc.strerror
            return f"Cannot serve on {host}:{port}: {reason}. Set PORT to another port."
    if not settings.MONGODB_URI:
        return EmbeddedDatabase(settings.DATA_DIR).in_use()
    return ""


def main(argv: list[str] | None = None) -> None:
    """Serves the app with uvicorn until SIGINT or SIGTERM."""
    parser = argparse.ArgumentParser(prog="python -m webapp", description="Serve the chat.")
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (127.0.0.1)")
    parser.add_argument("--port", type=int, default=settings.PORT, help="port ($PORT, 8000)")
    parser.add_argument(
        "--workers",
        type=int,
        default=settings.WEB_CONCURRENCY,
        help="app processes ($WEB_CONCURRENCY, 1); the embedded database serves only one",
    )
    parser.add_argument(
        "--timeout-graceful-shutdown",
        type=int,
        default=GRACEFUL_SHUTDOWN_SECS,
        help=f"seconds open requests get to finish at shutdown ({GRACEFUL_SHUTDOWN_SECS})",
    )
    args = parser.parse_args(argv)
    if problem := _cannot_serve(args.host, args.port):
        raise SystemExit(problem)  # one line, no traceback
    workers = max(1, args.workers)
    if workers > 1 and not settings.MONGODB_URI:
        print(f"The embedded database serves one app process: running 1, not {workers}.")
        workers = 1
    uvicorn.run(
        APP,
        host=args.host,
        port=args.port,
        workers=workers,
        http=PROTOCOL,
        interface="asgi3",  # (webapp.app:app answers /events before calling the app proper)
        log_config=logs.config(),
        access_log=False,  # one line per request, with its id: webapp/ops/observe.py
        ws="none",
        lifespan="on",
        proxy_headers=False,
        timeout_graceful_shutdown=args.timeout_graceful_shutdown,
    )
