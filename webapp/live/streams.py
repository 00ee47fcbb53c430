"""One open event stream: who it is for, and how bytes reach its socket."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import socket
import struct
from collections.abc import Iterable
from datetime import datetime
from typing import Any

from webapp.data._query import now
from webapp.ops import metrics
from webapp.rules.keys import presence_key

log = logging.getLogger(__name__)

PENDING_LIMIT_BYTES = 512 * 1024  # waiting for one stream's socket before it is cut off
# A scope extension: the connection's transport, which the server lends the event stream's
# response (webapp/server.py) so that the hub writes each event straight to the socket.
TRANSPORT = "webapp.transport"
EVENTS_PATH = "/events"  # where the streams are served (webapp/web/events.py)
# A scope extension an event stream sets: what the server calls when the connection is lost.
ON_LOST = "webapp.on_lost"

SortKey = tuple[int, str]  # a resume token, in commit order (data/nx_compat.token_sort_key)


def framed(data: bytes) -> bytes:
    """Bytes as one chunk of a chunked HTTP/1.1 body."""
    return b"%x\r\n%s\r\n" % (len(data), data)


class Stream:
    """One open GET /events: who it is for, and how bytes reach its socket.

    The hub offers bytes. When the server lends the connection's transport (webapp/server.py),
    an offer is written to it at once, as one chunk of the response: no task wakes for it.
    Otherwise the stream's own task (web/events.py) takes what is pending in one piece and
    sends it. Offers with an id at or before `after` were replayed already and are dropped.
    """

    __slots__ = (
        "_held",
        "_pending",
        "_pending_bytes",
        "_taken",
        "_wakeup",
        "after",
        "closed",
        "jti",
        "limit",
        "opened_at",
        "presence_id",
        "revoked",
        "sending_since",
        "stalled",
        "task",
        "transport",
        "user_id",
        "written",
    )

    def __init__(self, user_id: str, jti: str = "") -> None:
        self.user_id = user_id
        self.jti = jti
        self.presence_id = presence_key(user_id, secrets.token_hex(8))
        self.opened_at: datetime = now()
        self.after: SortKey | None = None
        self.closed = False
        self.revoked = False
        self.stalled = False
        self.sending_since: float | None = None  # set while its socket is being written
        self.task: asyncio.Task[Any] | None = None
        self.transport: asyncio.WriteTransport | None = None
        self._pending: list[bytes] = []
        self._pending_bytes = 0
        self.limit = PENDING_LIMIT_BYTES  # bytes it may have waiting before it is cut off
        self.written = 0  # bytes given to the transport
        self._taken = 0  # of those, the bytes its socket had taken when last looked at
        # Live offers kept aside until the replay is written (see release).
        self._held: list[tuple[SortKey | None, bytes]] | None = []
        self._wakeup: asyncio.Future[None] | None = None

    def offer(self, data: bytes, key: SortKey | None = None, chunk: bytes | None = None) -> None:
        """Bytes for the socket (`chunk`: the same, framed as a chunk of the response, made
        once for every stream that gets them). With an id's sort `key`, those at or before
        the end of the replay are dropped."""
        if self.closed or self.revoked:
            return
        if key is not None and self.after is not None:
            if key <= self.after:
                return
            self.after = None  # live has overtaken the replay
        if self._held is not None:
            self._held.append((key, data))
            return
        if self.transport is not None:
            self._write(self.transport, chunk or framed(data))
            return
        self._pending.append(data)
        self._pending_bytes += len(data)
        if self._pending_bytes > self.limit:
            self.cut("behind")  # too far behind: it reconnects and catches up
        elif self._wakeup is not None and not self._wakeup.done():
            self._wakeup.set_result(None)

    def _write(self, transport: asyncio.WriteTransport, chunk: bytes) -> None:
        """One chunk of the response's chunked body, straight to the socket.

        A connection that is going or gone ends the stream instead (its task then finishes
        and the hub forgets it): a write to one stream never fails for anyone else.
        """
        if transport.is_closing():
            self.close()
        elif transport.get_write_buffer_size() > self.limit:
            self.cut("behind")  # too far behind: it reconnects and catches up
        else:
            try:
                transport.write(chunk)
            except (RuntimeError, OSError):  # closed under us
                self.close()
            self.written += len(chunk)
            if self.limit > PENDING_LIMIT_BYTES > transport.get_write_buffer_size():
                self.limit = PENDING_LIMIT_BYTES  # the replay is out

    def release(self, after: SortKey | None, first: Iterable[bytes] = ()) -> None:
        """Go live: `first` (a replay), then what was held that comes after `after`.

        The replay is written at once, however long (replay.py bounds it), so it raises the
        stream's limit by its size until it is out, and so does what was held meanwhile (the
        presence announced lately, live events): only what comes live on top of them can put
        a stream behind.
        """
        held, self._held = self._held or [], None
        replay = b"".join(first)
        self.limit += sum(len(data) + 20 for _, data in held)  # (20: a chunk's framing)
        if replay:
            self.limit += len(replay) + 20
            self.offer(replay)
        self.after = after
        for key, data in held:
            self.offer(data, key)

    def cut(self, reason: str) -> None:
        """Cut off by the server, for `reason` (a label of the metric, and said in the log)."""
        metrics.STREAM_CUTOFFS.labels(reason).inc()
        log.info("Cut off a stream of user %s: %s", self.user_id, reason)
        if reason == "behind":
            self.cut_off()
        else:
            self.close()

    def cut_off(self) -> None:
        """Drops the connection at once with a reset, whatever its socket still holds.

        (A close, or an abort that lingers, would wait for ever to flush to a socket that
        takes nothing, keeping it and its buffers.)
        """
        if self.transport is not None:
            sock = self.transport.get_extra_info("socket")
            if sock is not None:
                with contextlib.suppress(OSError):
                    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            self.transport.abort()
        self.close()

    def stuck_since(self, now: float) -> float | None:
        """Since when its socket has taken nothing it was given (None: it keeps up).

        A stream's own task marks its sends. A transport's backlog is looked at here: a slow
        reader that takes bytes, however far behind, is not stuck (the backlog's own limit
        cuts it off if it falls too far), one that takes none is.
        """
        if self.transport is not None:
            backlog = self.transport.get_write_buffer_size()
            taken = self.written - backlog
            if taken > self._taken or not backlog:
                self._taken = taken
                self.sending_since = now if backlog else None
            elif self.sending_since is None:
                self.sending_since = now
        return self.sending_since

    def close(self) -> None:
        """Ends the stream: nothing more is written, and its task finishes."""
        self.closed = True
        self._pending.clear()
        self._held = None
        if self._wakeup is not None and not self._wakeup.done():
            self._wakeup.set_result(None)

    def take(self) -> bytes | None:
        """Everything waiting, as one chunk (b"" while nothing is); None once it is closed."""
        if self.closed:
            return None
        if not self._pending:
            return b""
        chunk = self._pending[0] if len(self._pending) == 1 else b"".join(self._pending)
        self._pending.clear()
        self._pending_bytes = 0
        self.limit = PENDING_LIMIT_BYTES  # any replay is out
        return chunk

    def offered(self) -> asyncio.Future[None]:
        """Done once there is something to take, or the stream is closed. (A future, not a
        coroutine: a stream waiting on it keeps no frame of its own.)"""
        if self._wakeup is None or self._wakeup.done():
            self._wakeup = asyncio.get_running_loop().create_future()
            if self._pending or self.closed:
                self._wakeup.set_result(None)
        return self._wakeup
