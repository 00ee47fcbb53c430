"""The hub: one change stream per watched collection per process, fanned out to open streams.

Every write goes to MongoDB; the change stream is the only way an event reaches a browser, in
this process or any other. The hub follows the feeds of feeds.py. For each change it loads the
document once, turns it into an event, works out who may see it (feeds.audience), renders and
encodes it once per audience (wire.py) and offers those same bytes to each of their open
streams, found through an index user -> streams. Nothing here waits on a socket: a stream that
falls too far behind, or whose socket stops taking bytes, is cut off, and its browser
reconnects and catches up.

A message event's id is its change's resume token, which follows commit order across every
process. Recent message changes stay in a ring, so that a reconnecting stream replays from
memory; an older cursor replays from the change stream itself (stream.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import socket
import struct
from collections import OrderedDict, deque
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

from pymongo.errors import OperationFailure, PyMongoError

from webapp import access, feeds, nx_compat, settings, store, wire
from webapp.database import Db
from webapp.feeds import (
    Audience,
    Event,
    Feed,
    MemberEvent,
    MembershipChange,
    MessageChange,
    MessageEvent,
    PersonEvent,
    PresenceChange,
    ReadEvent,
    Revocation,
    RoomChange,
    RoomEvent,
    TypingChange,
    TypingEvent,
    UserChange,
)
from webapp.models import Message, Room, User

log = logging.getLogger(__name__)

PENDING_LIMIT_BYTES = 512 * 1024  # waiting for one stream's socket before it is cut off
WATCHDOG_SECS = 1.0
MAX_STREAMS_PER_USER = 20  # the 21st closes that user's oldest
RING_SIZE = settings.REPLAY_RING_SIZE  # recent message changes kept for replay
USER_CACHE_SIZE = 10_000  # users kept in memory for the request path
ROOM_CACHE_SIZE = 10_000  # rooms kept in memory, kept current by the room feed
PEOPLE_BATCH_SECS = 0.5  # presence and away changes are announced together, this often
RECENT_PEOPLE_SECS = 10.0  # a new stream gets the entries announced this lately
SIGNED_OUT_GRACE_SECS = 2.0  # a signed-out stream is closed after the page had time to leave
AWAIT_SECS = 1.0  # how long the server may hold an empty getMore
BACKOFF_SECS = (0.2, 0.5, 1.0, 2.0, 5.0)
STOP_TIMEOUT_SECS = 3
HISTORY_LOST_CODES = (260, 280, 286)  # InvalidResumeToken, ChangeStreamFatalError, HistoryLost

SortKey = tuple[int, str]


class Stream:
    """One open GET /events: who it is for, and how bytes reach its socket.

    The hub offers bytes. When the server lends the connection's transport (webapp/server.py),
    an offer is written to it at once, as one chunk of the response: no task wakes for it.
    Otherwise the stream's own task (stream.py) takes what is pending in one piece and sends
    it. Offers with an id at or before `after` were replayed already and are dropped.
    """

    __slots__ = (
        "_held",
        "_pending",
        "_pending_bytes",
        "_wakeup",
        "after",
        "closed",
        "jti",
        "opened_at",
        "presence_id",
        "revoked",
        "sending_since",
        "stalled",
        "task",
        "transport",
        "user_id",
    )

    def __init__(self, user_id: str, jti: str = "") -> None:
        self.user_id = user_id
        self.jti = jti
        self.presence_id = f"{user_id}:{secrets.token_hex(8)}"
        self.opened_at = store.now()
        self.after: SortKey | None = None
        self.closed = False
        self.revoked = False
        self.stalled = False
        self.sending_since: float | None = None  # set while its socket is being written
        self.task: asyncio.Task[Any] | None = None
        self.transport: asyncio.WriteTransport | None = None
        self._pending: list[bytes] = []
        self._pending_bytes = 0
        # Live offers kept aside until the replay is written (see release).
        self._held: list[tuple[SortKey | None, bytes]] | None = []
        self._wakeup: asyncio.Future[None] | None = None

    def offer(self, data: bytes, key: SortKey | None = None) -> None:
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
            self._write(self.transport, data)
            return
        self._pending.append(data)
        self._pending_bytes += len(data)
        if self._pending_bytes > PENDING_LIMIT_BYTES:
            self.close()  # too far behind: it reconnects and catches up
        elif self._wakeup is not None and not self._wakeup.done():
            self._wakeup.set_result(None)

    def _write(self, transport: asyncio.WriteTransport, data: bytes) -> None:
        """One chunk of the response's chunked body, straight to the socket.

        A connection that is going or gone ends the stream instead (its task then finishes
        and the hub forgets it): a write to one stream never fails for anyone else.
        """
        if transport.is_closing():
            self.close()
        elif transport.get_write_buffer_size() > PENDING_LIMIT_BYTES:
            self.cut_off()  # too far behind: it reconnects and catches up
        else:
            try:
                transport.writelines((b"%x\r\n" % len(data), data, b"\r\n"))
            except (RuntimeError, OSError):  # closed under us
                self.close()

    def release(self, after: SortKey | None, first: Iterable[bytes] = ()) -> None:
        """Go live: `first` (a replay), then what was held that comes after `after`."""
        held, self._held = self._held or [], None
        for data in first:
            self.offer(data)
        self.after = after
        for key, data in held:
            self.offer(data, key)

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

        A stream's own task marks its sends; a transport's backlog is looked at here.
        """
        if self.transport is not None:
            if not self.transport.get_write_buffer_size():
                self.sending_since = None
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

    async def next_chunk(self) -> bytes | None:
        """Everything waiting, as one chunk; None once the stream is closed."""
        while not self._pending:
            if self.closed:
                return None
            self._wakeup = asyncio.get_running_loop().create_future()
            await self._wakeup
            self._wakeup = None
        if self.closed:
            return None
        chunk = self._pending[0] if len(self._pending) == 1 else b"".join(self._pending)
        self._pending.clear()
        self._pending_bytes = 0
        return chunk


class Ring:
    """The recent message changes this process has seen, in commit order, for replay.

    Complete from `start` on: any cursor at or after it replays from here. Each entry replays
    the message as it is now (its post and its edit both show the edit), as a replay from the
    database does.
    """

    def __init__(self, size: int = RING_SIZE) -> None:
        self.start: SortKey | None = None
        self._size = size
        self._entries: deque[tuple[SortKey, str, Any]] = deque()  # key, token, message id
        self._latest: dict[Any, MessageEvent] = {}
        self._entries_of: dict[Any, int] = {}  # message id -> entries that name it

    def reset(self) -> None:
        self.start = None
        self._entries.clear()
        self._latest.clear()
        self._entries_of.clear()

    def begin(self, position: SortKey) -> None:
        """Nothing before `position` is kept: it is where the ring's record begins."""
        if self.start is None:
            self.start = position

    def add(self, key: SortKey, event: MessageEvent) -> None:
        message_id = event.message.id
        self.begin(key)
        self._entries.append((key, event.id, message_id))
        self._latest[message_id] = event
        self._entries_of[message_id] = self._entries_of.get(message_id, 0) + 1
        if len(self._entries) > self._size:
            self.start, _, old_id = self._entries.popleft()
            self._entries_of[old_id] -= 1
            if not self._entries_of[old_id]:
                del self._entries_of[old_id], self._latest[old_id]

    def covers(self, cursor: SortKey) -> bool:
        return self.start is not None and cursor >= self.start

    def after(self, cursor: SortKey) -> list[tuple[SortKey, MessageEvent]]:
        """The changes after `cursor`, oldest first (the ring must cover it)."""
        newer = []
        for entry in reversed(self._entries):
            if entry[0] <= cursor:
                break
            newer.append(entry)
        replayed = []
        for key, token, message_id in newer[::-1]:
            latest = self._latest[message_id]
            replayed.append((key, MessageEvent(token, latest.message, latest.room)))
        return replayed


class Hub:
    def __init__(self, db: Db) -> None:
        self.db = db
        self._streams: dict[str, dict[Stream, None]] = {}  # user id -> streams, oldest first
        self._by_jti: dict[str, set[Stream]] = {}
        self._by_presence: dict[str, Stream] = {}
        self._tasks: list[asyncio.Task[None]] = []
        self._positions: dict[str, str] = {}
        self._ready: dict[str, asyncio.Event] = {}
        self._cleanups: set[asyncio.Task[None]] = set()
        self.ring = Ring()
        self.online: set[str] = set()  # users with an open stream in any process
        # Away messages seen since start: without updateDescription (nx-27017 has none), this
        # tells an away message from "last seen" among user changes. A user's first change
        # after start is always announced.
        self._away: dict[str, str] = {}
        self._users: OrderedDict[str, User] = OrderedDict()  # kept current by the user feed
        self._rooms: OrderedDict[str, Room] = OrderedDict()  # kept current by the room feed
        self._room_ids: dict[str, str] = {}  # key -> id, for the rooms found by their key
        self.public: Room | None = None  # the public room, once started
        # People whose entries are announced together, soon (see _announce_people).
        self._unsettled: set[str] = set()
        self._changed_people: dict[str, User] = {}
        self._settling: asyncio.Task[None] | None = None
        self._recent_people: deque[tuple[float, bytes]] = deque()
        # Past LIVE_PRESENCE_LIMIT online: entries not yet sent to everyone, by user.
        self._deferred_people: dict[str, PersonEvent] = {}
        self._refreshing: asyncio.Task[None] | None = None

    # Streams come and go

    async def connect(self, user_id: str, jti: str = "") -> Stream:
        """Registers an open stream: its place in the indexes, and its presence.

        A user holds at most MAX_STREAMS_PER_USER streams across every process: the newest
        closes the oldest (here at once; elsewhere through the presence change stream).
        """
        stream = Stream(user_id, jti)
        for data in self.recent_people():  # written first, once the stream goes live
            stream.offer(data)
        mine = self._streams.setdefault(user_id, {})
        mine[stream] = None
        self._by_jti.setdefault(jti, set()).add(stream)
        self._by_presence[stream.presence_id] = stream
        for oldest in list(mine)[: max(0, len(mine) - MAX_STREAMS_PER_USER)]:
            oldest.close()
        try:
            await store.open_presence(
                self.db,
                presence_id=stream.presence_id,
                user_id=user_id,
                opened_at=stream.opened_at,
                ttl=settings.PRESENCE_TTL_SECS,
            )
            await store.close_oldest_presence(self.db, user_id=user_id, keep=MAX_STREAMS_PER_USER)
        except BaseException:
            self._forget(stream)
            raise
        return stream

    def _forget(self, stream: Stream) -> None:
        streams = self._streams.get(stream.user_id, {})
        streams.pop(stream, None)
        if not streams:
            self._streams.pop(stream.user_id, None)
        same_session = self._by_jti.get(stream.jti, set())
        same_session.discard(stream)
        if not same_session:
            self._by_jti.pop(stream.jti, None)
        self._by_presence.pop(stream.presence_id, None)

    def disconnect(self, stream: Stream) -> None:
        """Forgets a closed stream at once; its presence is removed in the background."""
        stream.close()
        if stream.presence_id not in self._by_presence:
            return
        self._forget(stream)
        task = asyncio.create_task(self._close_presence(stream))
        self._cleanups.add(task)
        task.add_done_callback(self._cleanups.discard)

    async def _close_presence(self, stream: Stream) -> None:
        try:
            # "Last seen" first: the delete is what makes every sidebar refresh.
            await store.set_last_seen(self.db, user_ids=[stream.user_id])
            await store.close_presence(self.db, presence_id=stream.presence_id)
        except PyMongoError as exc:  # it lapses by itself after PRESENCE_TTL_SECS
            log.warning("Could not remove presence %s: %s", stream.presence_id, exc)

    def all_streams(self) -> Iterator[Stream]:
        for streams in list(self._streams.values()):
            yield from list(streams)

    @property
    def position(self) -> str:
        """The resume token of the newest message change seen: a cursor for a page just rendered."""
        return self._positions.get(Message.__collection__, "")

    async def user(self, user_id: str) -> User | None:
        """A user, from memory when seen lately: the user feed keeps these copies current."""
        user = self._users.get(user_id)
        if user is None:
            user = await store.get_user(self.db, user_id=user_id)
            if user is None:
                return None
            self._remember(user)
        else:
            self._users.move_to_end(user_id)
        return user

    async def room(self, room_id: str) -> Room | None:
        """A room, from memory when seen lately: the room feed keeps these copies current."""
        room = self._rooms.get(room_id)
        if room is None:
            room = await store.get_room(self.db, room_id=room_id)
            if room is None:
                return None
            self._remember_room(room)
        else:
            self._rooms.move_to_end(room_id)
        return room

    async def room_by_key(self, key: str) -> Room | None:
        """The public room or a DM by its key, from memory once found: their keys and members
        never change (a group room is found by its id)."""
        room_id = self._room_ids.get(key)
        room = self._rooms.get(room_id) if room_id else None
        if room is None:
            room = await store.find_room(self.db, key=key)
            if room is None:
                return None
            if len(self._room_ids) >= ROOM_CACHE_SIZE:
                self._room_ids.clear()
            self._room_ids[key] = str(room.id)
        self._remember_room(room)
        return room

    def _remember_room(self, room: Room) -> None:
        self._rooms[str(room.id)] = room
        self._rooms.move_to_end(str(room.id))
        if len(self._rooms) > ROOM_CACHE_SIZE:
            self._rooms.popitem(last=False)

    async def member_ids(self, room: Room) -> list[str]:
        """Who is in the room now: asked of the database once per event for a group room, so
        that a membership made or ended just before the event counts. A DM's two never
        change; the public room's are everyone."""
        if room.kind == access.GROUP:
            return await store.member_ids(self.db, room_id=str(room.id))
        return list(room.members)

    def _remember(self, user: User) -> None:
        self._users[str(user.id)] = user
        self._users.move_to_end(str(user.id))
        if len(self._users) > USER_CACHE_SIZE:
            self._users.popitem(last=False)

    # Following the database

    async def start(self) -> None:
        """Open the change streams; returns once each has a position."""
        self.public = await store.public_room(self.db)
        self._remember_room(self.public)
        for feed in feeds.FEEDS:
            self._ready[feed.collection] = asyncio.Event()
            self._tasks.append(
                asyncio.create_task(self._watch(feed), name=f"hub:{feed.collection}")
            )
        await asyncio.gather(*(ready.wait() for ready in self._ready.values()))
        if any(map(nx_compat.is_nx_token, self._positions.values())):
            await nx_compat.join_peers(self.db)  # other processes on this embedded server
        # Read after the streams are open, so no change falls between the two.
        self.online = await store.online_user_ids(self.db)
        self._tasks.append(asyncio.create_task(self._keep_presence(), name="hub:presence"))
        self._tasks.append(asyncio.create_task(self._watchdog(), name="hub:watchdog"))

    def end_streams(self) -> None:
        """Ends every open stream (the server is stopping): each finishes its response."""
        for stream in self.all_streams():
            stream.close()

    async def stop(self) -> None:
        """Stops following the database and says goodbye for this process's streams."""
        for task in self._tasks:
            task.cancel()
        for announcing in (self._settling, self._refreshing):
            if announcing is not None:
                announcing.cancel()
        if self._tasks:  # bounded, so that nothing can hold up the process's exit
            await asyncio.wait(self._tasks, timeout=STOP_TIMEOUT_SECS)
        self._tasks.clear()
        for stream in self.all_streams():
            self.disconnect(stream)
        await nx_compat.leave_peers(self.db)
        if self._cleanups:
            await asyncio.wait(self._cleanups, timeout=STOP_TIMEOUT_SECS)

    async def _keep_presence(self) -> None:
        """Vouch for this process's streams, and sweep those of processes that died."""
        interval = settings.PRESENCE_TTL_SECS / 3
        while True:
            await asyncio.sleep(interval)
            try:
                mine = [(s.presence_id, s.user_id, s.opened_at) for s in self.all_streams()]
                if mine:
                    await store.refresh_presence(
                        self.db, presences=mine, ttl=settings.PRESENCE_TTL_SECS
                    )
                stale = await store.stale_presence(self.db)
                if stale:
                    await store.set_last_seen(self.db, user_ids=[p.user_id for p in stale])
                    await store.delete_stale_presence(self.db, presence_ids=[p.id for p in stale])
            except PyMongoError as exc:
                log.warning("Presence upkeep failed: %s", exc)

    async def _watchdog(self) -> None:
        """One task for every stream: keep-alive comments, and closing sockets that stall."""
        loop = asyncio.get_running_loop()
        since_keepalive = 0.0
        while True:
            await asyncio.sleep(WATCHDOG_SECS)
            since_keepalive += WATCHDOG_SECS
            keepalive = since_keepalive >= settings.KEEPALIVE_SECS
            if keepalive:
                since_keepalive = 0.0
            now = loop.time()
            stalled_since = now - settings.STREAM_SEND_TIMEOUT_SECS
            for stream in self.all_streams():
                if stream.transport is not None and stream.transport.is_closing():
                    stream.close()  # its connection went: its task finishes and forgets it
                    continue
                started = stream.stuck_since(now)
                if started is not None and started < stalled_since:
                    self.cut_stalled(stream)
                elif keepalive:
                    stream.offer(wire.KEEPALIVE)

    def cut_stalled(self, stream: Stream) -> None:
        """A socket that takes nothing: its task is stopped, which closes the connection."""
        log.warning("Closing a stream of user %s: its socket took nothing", stream.user_id)
        stream.stalled = True
        self.disconnect(stream)
        if stream.transport is not None:
            stream.cut_off()  # its task then finishes by itself
        elif stream.task is not None:
            stream.task.cancel()

    async def _watch(self, feed: Feed) -> None:
        """Follow one collection for ever, resuming after the last change handled."""
        collection = feed.collection
        pacer = nx_compat.IdlePacer(AWAIT_SECS, collection=collection)
        loop = asyncio.get_running_loop()
        failures = 0
        while True:
            token = self._positions.get(collection)
            server_returns = nx_compat.server_returns.count
            try:
                async with await self.db[collection].watch(
                    feed.pipeline,
                    start_after={"_data": token} if token else None,
                    max_await_time_ms=int(AWAIT_SECS * 1000),
                ) as changes:
                    while True:
                        asked_at = loop.time()
                        change = await changes.try_next()
                        failures = 0
                        if change is None:
                            if changes.resume_token is not None:
                                self._positions[collection] = changes.resume_token["_data"]
                                if feed is feeds.MESSAGES:
                                    self.ring.begin(nx_compat.token_sort_key(self.position))
                            self._ready[collection].set()
                            if nx_compat.server_returns.count != server_returns:
                                break  # a restarted embedded server: reopen from our position
                            await pacer.pause_after_empty_batch(loop.time() - asked_at)
                            continue
                        pacer.busy()
                        try:
                            await self._handle(feed, change)
                        except PyMongoError:
                            raise
                        except Exception:  # a bug in one change must not stop the stream
                            log.exception("Could not handle a change on %s", collection)
                        self._positions[collection] = change["_id"]["_data"]
            except Exception as exc:  # the database, or a surprise: log it and carry on
                if not isinstance(exc, PyMongoError):
                    log.exception("Change stream on %s stopped unexpectedly", collection)
                if isinstance(exc, OperationFailure) and exc.code in HISTORY_LOST_CODES:
                    # Down too long to resume: start afresh and make every stream catch up.
                    log.warning("Change stream on %s cannot resume (%s)", collection, exc)
                    self._positions.pop(collection, None)
                    if feed is feeds.MESSAGES:
                        self.ring.reset()
                    for stream in self.all_streams():
                        stream.close()
                delay = BACKOFF_SECS[min(failures, len(BACKOFF_SECS) - 1)]
                failures += 1
                log.warning(
                    "Change stream on %s failed (%s); retrying in %ss", collection, exc, delay
                )
                await asyncio.sleep(delay)

    async def _handle(self, feed: Feed, change: Mapping[str, Any]) -> None:
        doc = None
        if feed.load:
            doc = await store.get_by_id(self.db, feed.model, object_id=change["documentKey"]["_id"])
        notice = feed.to_event(change, doc)
        if isinstance(notice, MessageChange):
            room = await self.room(notice.message.room_id)
            if room is not None:
                event = MessageEvent(notice.id, notice.message, room)
                self.ring.add(nx_compat.token_sort_key(event.id), event)
                await self.deliver(event)
        elif isinstance(notice, TypingChange):
            if room := await self.room(notice.typing.room_id):
                await self.deliver(TypingEvent(notice.typing, room))
        elif isinstance(notice, MembershipChange):
            await self._on_membership(notice)
        elif isinstance(notice, RoomChange):
            if str(notice.room.id) in self._rooms:
                self._remember_room(notice.room)
            if notice.room.kind == access.GROUP:
                await self.deliver(RoomEvent(notice.room))
        elif isinstance(notice, PresenceChange):
            self._on_presence(notice)
        elif isinstance(notice, UserChange):
            self._on_user(notice)
        elif isinstance(notice, Revocation):
            loop = asyncio.get_running_loop()
            for stream in list(self._by_jti.get(notice.jti, ())):
                stream.offer(wire.SIGNED_OUT)  # the page goes to the sign-in page itself
                stream.revoked = True  # nothing more is written
                loop.call_later(SIGNED_OUT_GRACE_SECS, stream.close)

    async def _on_membership(self, change: MembershipChange) -> None:
        room = await self.room(change.room_id)
        if room is None or (room.kind == access.DM and change.operation != "update"):
            return  # a DM's memberships are made with it, and its page shows them
        if change.operation == "update" or room.kind == access.PUBLIC:
            await self._on_read(change.user_id, room)  # a read position moved
            return
        joined = change.operation == "insert"
        user = await self.user(change.user_id)
        username = user.username if user else ""
        if joined:
            await self.deliver(RoomEvent(room, to=change.user_id))  # into their sidebar
        await self.deliver(MemberEvent(room, change.user_id, username, joined))

    async def _on_read(self, user_id: str, room: Room) -> None:
        """Tells the reader's tabs here how much is left unread in the room: counted once per
        change, and only in a process with a tab of theirs."""
        if user_id not in self._streams:
            return
        room_id = str(room.id)
        upto = await store.room_count(self.db, room_id=room_id)  # before the count: see ReadEvent
        membership = await store.get_membership(self.db, room_id=room_id, user_id=user_id)
        if membership is None:
            return
        read_seq = membership.read_seq
        unread = await store.count_unread(
            self.db, room_id=room_id, user_id=user_id, after_seq=read_seq, upto=upto
        )
        await self.deliver(ReadEvent(user_id, room, read_seq, unread, upto))

    async def deliver(self, event: Event) -> None:
        """Offers the event to every open stream here that may see it: encoded once per
        audience, the room's members asked for once."""
        room = feeds.members_needed(event)
        members = await self.member_ids(room) if room is not None else []
        self.offer(event, feeds.audience(event, members))

    def offer(self, event: Event, audience: Audience) -> None:
        users: Iterable[str] = self._streams.keys() if audience.users is None else audience.users
        targets = [u for u in users if u in self._streams and u != audience.excluding]
        if not targets:
            return
        encoded = wire.encode_event(event)
        key = nx_compat.token_sort_key(event.id) if event.id else None
        for user_id in targets:
            data = encoded.for_user(user_id)
            for stream in self._streams[user_id]:
                stream.offer(data, key)

    def _on_presence(self, change: PresenceChange) -> None:
        if not change.opened and (stream := self._by_presence.get(change.presence_id)):
            stream.close()  # closed to make room for a newer stream of the same user
        self._unsettled.add(change.user_id)
        self._settle_people()

    def _on_user(self, change: UserChange) -> None:
        user = change.user
        user_id = str(user.id)
        if user_id in self._users:
            self._remember(user)
        if self._away.get(user_id) != user.away_message:  # a new person, or a new away message
            self._away[user_id] = user.away_message
            self._changed_people[user_id] = user
            self._settle_people()

    def _settle_people(self) -> None:
        if self._settling is None or self._settling.done():
            self._settling = asyncio.create_task(self._announce_people())

    async def _announce_people(self) -> None:
        """Every short while, whoever came, went or changed their away message since then:
        one query for who of them is online, and one batch of entries for every stream.

        Streams open and close by the hundred when a deploy restarts or a crowd arrives; each
        change on its own would wake every stream.
        """
        while self._unsettled or self._changed_people:
            await asyncio.sleep(PEOPLE_BATCH_SECS)
            unsettled, self._unsettled = self._unsettled, set()
            changed, self._changed_people = self._changed_people, {}
            try:
                online = await store.online_among(self.db, user_ids=unsettled)
            except PyMongoError as exc:
                log.warning("Could not tell who is online: %s", exc)
                self._unsettled |= unsettled
                self._changed_people = changed | self._changed_people
                continue
            for user_id in unsettled:
                if (user_id in online) != (user_id in self.online):
                    (self.online.add if user_id in online else self.online.discard)(user_id)
                    if user_id not in changed and (user := await self.user(user_id)):
                        changed[user_id] = user
            if not changed:
                continue
            people = [PersonEvent(user, uid in self.online) for uid, user in changed.items()]
            if len(self.online) > settings.LIVE_PRESENCE_LIMIT:
                await self._announce_to_contacts(people)
            else:
                self._announce_to_everyone(people)

    def _announce_to_everyone(self, people: Iterable[PersonEvent]) -> None:
        data = b"".join(wire.encode_event(person).shared for person in people)
        for stream in self.all_streams():
            stream.offer(data)
        self._recent_people.append((asyncio.get_running_loop().time(), data))

    async def _announce_to_contacts(self, people: list[PersonEvent]) -> None:
        """With many people online: each entry goes live only to those who share a room with
        that person, and to everyone with the next slow refresh (_refresh_people)."""
        assert self.public is not None
        try:
            contacts = await store.contacts_of(
                self.db, user_ids=[str(p.user.id) for p in people], public_id=str(self.public.id)
            )
        except PyMongoError as exc:
            log.warning("Could not tell who shares a room: %s", exc)
            contacts = {}
        chunks: dict[str, list[bytes]] = {}
        for person in people:
            user_id = str(person.user.id)
            self._deferred_people[user_id] = person
            data = wire.encode_event(person).shared
            for contact in contacts.get(user_id, {user_id}) & self._streams.keys():
                chunks.setdefault(contact, []).append(data)
        for contact, parts in chunks.items():
            data = b"".join(parts)
            for stream in list(self._streams.get(contact, ())):
                stream.offer(data)
        if self._refreshing is None or self._refreshing.done():
            self._refreshing = asyncio.create_task(self._refresh_people())

    async def _refresh_people(self) -> None:
        """Every PRESENCE_REFRESH_SECS while there is any, the entries held back from those
        who share no room with the person: one chunk for every stream."""
        while self._deferred_people:
            await asyncio.sleep(settings.PRESENCE_REFRESH_SECS)
            deferred, self._deferred_people = self._deferred_people, {}
            self._announce_to_everyone(deferred.values())

    def recent_people(self) -> list[bytes]:
        """The batches of entries announced lately: a page rendered just before one of them
        went out, and whose stream opened just after, learns of it from these."""
        now = asyncio.get_running_loop().time()
        while self._recent_people and self._recent_people[0][0] < now - RECENT_PEOPLE_SECS:
            self._recent_people.popleft()
        return [data for _, data in self._recent_people]
