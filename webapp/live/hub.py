"""The hub: this process's live parts, composed. One change stream per watched collection
(follower.py), each change handled by its feed's row (feeds.py) and fanned out (fanout.py) to
the open streams (registry.py) of those who may see it.

Every write goes to MongoDB; the change stream is the only way an event reaches a browser, in
this process or any other. Nothing here waits on a socket: a stream that falls too far behind,
or whose socket stops taking bytes, is cut off, and its browser reconnects and catches up.

A message event's id is its change's resume token, which follows commit order across every
process. Recent message changes stay in a ring, so that a reconnecting stream replays from
memory; an older cursor replays from the change stream itself (replay.py).
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from functools import partial
from typing import Any

from webapp.data import nx_compat
from webapp.data.connection import Db
from webapp.data.models import Room
from webapp.live.cache import Directory, Revocations
from webapp.live.events import Event
from webapp.live.fanout import Fanout
from webapp.live.feeds import FEEDS, MESSAGES, Feed
from webapp.live.follower import Follower
from webapp.live.people import People
from webapp.live.presence import Presence
from webapp.live.registry import Registry
from webapp.live.ring import Ring
from webapp.live.streams import Stream

STOP_TIMEOUT_SECS = 3


class Hub:
    def __init__(self, db: Db) -> None:
        self.db = db
        self.directory = Directory(db)
        self.revocations = Revocations(db)
        self.streams = Registry()
        self.ring = Ring()
        self.fanout = Fanout(db, self.streams)
        self.presence = Presence(db, self.streams)
        self.people = People(db, self.streams, self.directory)
        self.followers = {feed: self._follower(feed) for feed in FEEDS}
        self._tasks: list[asyncio.Task[None]] = []

    def _follower(self, feed: Feed) -> Follower:
        follower = Follower(
            self.db,
            feed.model,
            feed.pipeline,
            load=feed.load,
            handle=partial(feed.on_change, self),
            history_lost=partial(self._history_lost, feed),
        )
        if feed is MESSAGES:  # the ring's record begins where the stream first stands
            follower.caught_up = lambda token: self.ring.begin(nx_compat.token_sort_key(token))
        return follower

    @property
    def position(self) -> str:
        """The resume token of the newest message change seen: a cursor for a page just rendered."""
        return self.followers[MESSAGES].position

    @property
    def live(self) -> bool:
        """Whether every change stream is open: what is written now will be delivered."""
        return all(follower.live for follower in self.followers.values())

    @property
    def online(self) -> set[str]:
        """Users with an open stream in any process."""
        return self.people.online

    @property
    def public(self) -> Room:
        assert self.directory.public is not None, "the hub has not started"
        return self.directory.public

    async def start(self) -> None:
        """Opens the change streams; returns once each has a position."""
        await self.directory.start()
        for feed, follower in self.followers.items():
            self._run(follower.run(), f"hub:{feed.collection}")
        await asyncio.gather(*(follower.ready.wait() for follower in self.followers.values()))
        positions = [follower.position for follower in self.followers.values()]
        if any(map(nx_compat.is_nx_token, positions)):
            await nx_compat.join_peers(self.db)  # other processes on this embedded server
        # After the streams are open: no change falls between.
        await self.revocations.start()
        await self.people.start()
        await self.presence.start()
        self._run(self.presence.keep(), "hub:presence")
        self._run(self.streams.watch(), "hub:watchdog")

    def _run(self, work: Coroutine[Any, Any, None], name: str) -> None:
        self._tasks.append(asyncio.create_task(work, name=name))

    def end_streams(self) -> None:
        """Ends every open stream (the server is stopping): each finishes its response."""
        self.streams.end_all()

    async def stop(self) -> None:
        """Stops following the database and says goodbye for this process's streams."""
        for task in self._tasks:
            task.cancel()
        self.people.stop()
        if self._tasks:  # bounded, so that nothing can hold up the process's exit
            await asyncio.wait(self._tasks, timeout=STOP_TIMEOUT_SECS)
        self._tasks.clear()
        for stream in list(self.streams):
            self.disconnect(stream)
        # At once: with the database gone, each waits out the driver's server selection.
        await asyncio.gather(nx_compat.leave_peers(self.db), self.presence.goodbyes_said())

    async def connect(self, user_id: str, jti: str = "") -> Stream:
        """Registers an open stream: its place in the indexes, and its presence."""
        stream = Stream(user_id, jti)
        for data in self.people.recent():  # written first, once the stream goes live
            stream.offer(data)
        self.streams.add(stream)
        try:
            await self.presence.opened(stream)
        except BaseException:
            self.streams.forget(stream)
            raise
        return stream

    def disconnect(self, stream: Stream) -> None:
        """Forgets a closed stream at once; its presence is removed in the background."""
        stream.close()
        if self.streams.forget(stream):
            self.presence.closed(stream)

    async def deliver(self, event: Event) -> None:
        await self.fanout.deliver(event)

    def _history_lost(self, feed: Feed) -> None:
        """Down too long to resume: every page catches up afresh."""
        if feed is MESSAGES:
            self.ring.reset()
        for stream in list(self.streams):
            stream.close()
