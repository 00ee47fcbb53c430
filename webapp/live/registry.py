"""The open streams of this process, found by user, by session and by presence; and the one
task that sends them keep-alives and cuts off those whose sockets stall."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable, Iterator

from webapp import settings
from webapp.live import wire
from webapp.live.streams import SortKey, Stream, framed
from webapp.ops import metrics

log = logging.getLogger(__name__)

MAX_STREAMS_PER_USER = 20  # the 21st closes that user's oldest
WATCHDOG_SECS = 1.0
SIGNED_OUT_GRACE_SECS = 2.0  # a signed-out stream is closed after the page had time to leave


class Registry:
    # Most people have one stream: a tuple holds it in 48 bytes where a dict or set takes
    # 200 or more, and a person never has more than MAX_STREAMS_PER_USER here.
    def __init__(self) -> None:
        self._of_user: dict[str, tuple[Stream, ...]] = {}  # user id -> streams, oldest first
        self._of_session: dict[str, str] = {}  # jti -> its user's id
        self._of_presence: dict[str, Stream] = {}

    def add(self, stream: Stream) -> None:
        """Registers a stream; a user's oldest beyond MAX_STREAMS_PER_USER here are closed."""
        mine = (*self._of_user.get(stream.user_id, ()), stream)
        self._of_user[stream.user_id] = mine
        if stream.jti:
            self._of_session[stream.jti] = stream.user_id
        self._of_presence[stream.presence_id] = stream
        for oldest in mine[: max(0, len(mine) - MAX_STREAMS_PER_USER)]:
            oldest.cut("too_many")

    def forget(self, stream: Stream) -> bool:
        """Takes a stream out of every index; False if it was out already."""
        if self._of_presence.pop(stream.presence_id, None) is None:
            return False
        others = tuple(s for s in self._of_user.get(stream.user_id, ()) if s is not stream)
        if others:
            self._of_user[stream.user_id] = others
        else:
            self._of_user.pop(stream.user_id, None)
        if not any(other.jti == stream.jti for other in others):
            self._of_session.pop(stream.jti, None)
        return True

    def __len__(self) -> int:
        return len(self._of_presence)

    def __iter__(self) -> Iterator[Stream]:
        for streams in list(self._of_user.values()):
            yield from streams

    def users(self) -> Iterable[str]:
        """Everyone with a stream open here."""
        return self._of_user.keys()

    def has_user(self, user_id: str) -> bool:
        return user_id in self._of_user

    def of_user(self, user_id: str) -> Iterable[Stream]:
        return self._of_user.get(user_id, ())

    def by_presence(self, presence_id: str) -> Stream | None:
        return self._of_presence.get(presence_id)

    def by_user(self) -> Iterable[tuple[str, Iterable[Stream]]]:
        """(user id, their streams here) for everyone with a stream here."""
        return self._of_user.items()

    def offer_to(self, user_id: str, data: bytes, key: SortKey | None = None) -> None:
        for stream in self._of_user.get(user_id, ()):
            stream.offer(data, key)

    def offer_to_everyone(self, data: bytes) -> None:
        chunk = framed(data)  # once, for every stream
        for stream in self:
            stream.offer(data, None, chunk)

    def signed_out(self, jti: str) -> None:
        """A session was signed out: its pages are told, and its streams end soon after."""
        loop = asyncio.get_running_loop()
        user_id = self._of_session.get(jti, "")
        for stream in [s for s in self._of_user.get(user_id, ()) if s.jti == jti]:
            stream.offer(wire.SIGNED_OUT)  # the page goes to the sign-in page itself
            stream.revoked = True  # nothing more is written
            loop.call_later(SIGNED_OUT_GRACE_SECS, stream.cut, "signed_out")

    def end_all(self) -> None:
        """Ends every open stream (the server is stopping): each finishes its response."""
        for stream in self:
            stream.close()

    async def watch(self) -> None:
        """For ever: keep-alive comments, and cutting off sockets that take nothing. A problem
        with one stream never stops this for the others."""
        loop = asyncio.get_running_loop()
        since_keepalive = 0.0
        while True:
            await asyncio.sleep(WATCHDOG_SECS)
            since_keepalive += WATCHDOG_SECS
            keepalive = since_keepalive >= settings.KEEPALIVE_SECS
            if keepalive:
                since_keepalive = 0.0
            now = loop.time()
            for stream in self:
                try:
                    self._check(stream, now, keepalive)
                except Exception:  # a bug with one stream must not stop the rest
                    log.exception("Could not look after a stream of user %s", stream.user_id)
                    stream.close()

    def _check(self, stream: Stream, now: float, keepalive: bool) -> None:
        if stream.transport is not None and stream.transport.is_closing():
            stream.close()  # its connection went: its task finishes and forgets it
            return
        started = stream.stuck_since(now)
        if started is not None and started < now - settings.STREAM_SEND_TIMEOUT_SECS:
            metrics.STREAM_CUTOFFS.labels("stalled").inc()
            log.warning("Cut off a stream of user %s: its socket took nothing", stream.user_id)
            stream.stalled = True
            if stream.transport is not None:
                stream.cut_off()  # its task then finishes by itself
            elif stream.task is not None:
                stream.task.cancel()
        elif keepalive:
            stream.offer(wire.KEEPALIVE)
