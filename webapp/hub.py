"""The hub: one change stream per watched collection per process, fanned out to open streams.

Every write goes to MongoDB; the change stream is the only way an event reaches a browser, in
this process or any other. For each change the hub loads the document once, works out which
signed-in users may see it, and pushes it onto the bounded queue of each of their open streams
(GET /events). A queue that fills up is cut off: its stream ends and the browser reconnects and
catches up from the database, so a slow reader costs bounded memory.

A message event's id is its change's resume token, which follows commit order across every
process; a stream replays from it after a reconnect (see stream.py).
"""

from __future__ import annotations

import asyncio
import logging
import secrets
from collections import deque
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from pymongo.errors import OperationFailure, PyMongoError

from webapp import chat, nx_compat, settings, store
from webapp.database import Db
from webapp.models import Message, Presence, ReadMarker, Typing, User

log = logging.getLogger(__name__)

QUEUE_LIMIT = 500  # events waiting for one stream before it is cut off
AWAIT_SECS = 1.0  # how long the server may hold an empty getMore
BACKOFF_SECS = (0.2, 0.5, 1.0, 2.0, 5.0)
STOP_TIMEOUT_SECS = 3
HISTORY_LOST_CODES = (260, 280, 286)  # InvalidResumeToken, ChangeStreamFatalError, HistoryLost


@dataclass(frozen=True, eq=False)  # one event, however many streams it reaches
class MessageEvent:
    """A message was posted, edited or deleted; `id` orders it (a resume token's _data)."""

    id: str
    message: Message
    name: str = "message"


@dataclass(frozen=True, eq=False)
class PersonEvent:
    """Someone came, went, or set an away message: their sidebar entry, the same for everyone."""

    user: User
    online: bool
    id: None = None
    name: str = "person"


@dataclass(frozen=True, eq=False)
class SidebarEvent:
    """One reader's unread counts changed: their own sidebar is out of date."""

    id: None = None
    name: str = "sidebar"


@dataclass(frozen=True, eq=False)
class TypingEvent:
    """Someone is typing; ephemeral, so it has no id and is never replayed."""

    typing: Typing
    id: None = None
    name: str = "typing"


Event = MessageEvent | PersonEvent | SidebarEvent | TypingEvent


def message_recipients(message: Message, connected: Iterable[str]) -> set[str]:
    """Of the users connected here, those who may see this message."""
    return {
        user_id
        for user_id in connected
        if chat.may_read(message.conversation, message.participants, user_id)
    }


def typing_recipients(typing: Typing, connected: Iterable[str]) -> set[str]:
    """Of the users connected here, those who may see this typing notice (never the typist)."""
    return {
        user_id
        for user_id in connected
        if user_id != typing.user_id
        and chat.may_read(typing.conversation, typing.participants, user_id)
    }


class CutOff(Exception):
    """The stream fell too far behind and must reconnect."""


@dataclass(eq=False)
class Subscription:
    """The queue of one open stream."""

    user_id: str
    presence_id: str = ""
    limit: int = QUEUE_LIMIT
    events: deque[Event] = field(default_factory=deque)
    cut_off: bool = False
    _ready: asyncio.Event = field(default_factory=asyncio.Event)

    def push(self, event: Event) -> None:
        if self.cut_off:
            return
        waiting = any(isinstance(e, SidebarEvent) for e in self.events)
        if isinstance(event, SidebarEvent) and waiting:
            return  # one refresh already waiting covers this change too
        if len(self.events) >= self.limit:
            self.cut_off = True
            self.events.clear()
        else:
            self.events.append(event)
        self._ready.set()

    def cut(self) -> None:
        self.cut_off = True
        self.events.clear()
        self._ready.set()

    async def next(self) -> Event:
        """The next event; CutOff once the queue has overflowed."""
        while not self.events:
            if self.cut_off:
                raise CutOff()
            self._ready.clear()
            await self._ready.wait()
        return self.events.popleft()


ChangeHandler = Callable[[Mapping[str, Any]], Awaitable[None]]


class Hub:
    def __init__(self, db: Db) -> None:
        self.db = db
        self._subscriptions: dict[str, set[Subscription]] = {}
        self._tasks: list[asyncio.Task[None]] = []
        self._positions: dict[str, str] = {}
        self._ready: dict[str, asyncio.Event] = {}
        self._cleanups: set[asyncio.Task[None]] = set()
        self.online: set[str] = set()  # users with an open stream in any process
        # Away messages seen since start: without updateDescription (nx-27017 has none), this
        # tells an away message from "last seen" among user changes. A user's first change
        # after start is always announced.
        self._away: dict[str, str] = {}

    # Streams come and go

    async def connect(self, user_id: str) -> Subscription:
        """Registers an open stream: its queue here, and its presence in the database."""
        subscription = Subscription(user_id, presence_id=f"{user_id}:{secrets.token_hex(8)}")
        self._subscriptions.setdefault(user_id, set()).add(subscription)
        try:
            await store.open_presence(
                self.db,
                presence_id=subscription.presence_id,
                user_id=user_id,
                ttl=settings.PRESENCE_TTL_SECS,
            )
        except BaseException:
            self._forget(subscription)
            raise
        return subscription

    def _forget(self, subscription: Subscription) -> None:
        streams = self._subscriptions.get(subscription.user_id, set())
        streams.discard(subscription)
        if not streams:
            self._subscriptions.pop(subscription.user_id, None)

    def disconnect(self, subscription: Subscription) -> None:
        """Forgets a closed stream at once; its presence is removed in the background."""
        self._forget(subscription)
        task = asyncio.create_task(self._close_presence(subscription))
        self._cleanups.add(task)
        task.add_done_callback(self._cleanups.discard)

    async def _close_presence(self, subscription: Subscription) -> None:
        try:
            # "Last seen" first: the delete is what makes every sidebar refresh.
            await store.set_last_seen(self.db, user_ids=[subscription.user_id])
            await store.close_presence(self.db, presence_id=subscription.presence_id)
        except PyMongoError as exc:  # it lapses by itself after PRESENCE_TTL_SECS
            log.warning("Could not remove presence %s: %s", subscription.presence_id, exc)

    @property
    def position(self) -> str:
        """The resume token of the newest message change seen: a cursor for a page just rendered."""
        return self._positions.get(Message.__collection__, "")

    # Following the database

    async def start(self) -> None:
        """Open the change streams; returns once each has a position."""
        self._follow(Message.__collection__, self._on_message_change)
        self._follow(Presence.__collection__, self._on_presence_change)
        self._follow(Typing.__collection__, self._on_typing_change)
        self._follow(User.__collection__, self._on_user_change)
        self._follow(ReadMarker.__collection__, self._on_read_marker_change)
        await asyncio.gather(*(ready.wait() for ready in self._ready.values()))
        # Read after the streams are open, so no change falls between the two.
        self.online = await store.online_user_ids(self.db)
        self._tasks.append(asyncio.create_task(self._keep_presence(), name="hub:presence"))

    async def stop(self) -> None:
        """Stops following the database and says goodbye for this process's streams."""
        for task in self._tasks:
            task.cancel()
        if self._tasks:  # bounded, so that nothing can hold up the process's exit
            await asyncio.wait(self._tasks, timeout=STOP_TIMEOUT_SECS)
        self._tasks.clear()
        for streams in list(self._subscriptions.values()):
            for subscription in list(streams):
                self.disconnect(subscription)
        if self._cleanups:
            await asyncio.wait(self._cleanups, timeout=STOP_TIMEOUT_SECS)
        self._cut_everyone()

    async def _keep_presence(self) -> None:
        """Vouch for this process's streams, and sweep those of processes that died."""
        interval = settings.PRESENCE_TTL_SECS / 3
        while True:
            await asyncio.sleep(interval)
            try:
                mine = [
                    (s.presence_id, s.user_id)
                    for streams in self._subscriptions.values()
                    for s in streams
                ]
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

    def _broadcast(self, event: Event, user_ids: Iterable[str] | None = None) -> None:
        for user_id in self._subscriptions if user_ids is None else user_ids:
            for subscription in self._subscriptions.get(user_id, ()):
                subscription.push(event)

    def _cut_everyone(self) -> None:
        for streams in self._subscriptions.values():
            for subscription in streams:
                subscription.cut()

    def _follow(self, collection: str, handler: ChangeHandler) -> None:
        self._ready[collection] = asyncio.Event()
        task = asyncio.create_task(self._watch(collection, handler), name=f"hub:{collection}")
        self._tasks.append(task)

    async def _watch(self, collection: str, handler: ChangeHandler) -> None:
        """Follow one collection for ever, resuming after the last change handled."""
        pacer = nx_compat.IdlePacer(AWAIT_SECS)
        loop = asyncio.get_running_loop()
        failures = 0
        while True:
            token = self._positions.get(collection)
            server_returns = nx_compat.server_returns.count
            try:
                async with await self.db[collection].watch(
                    start_after={"_data": token} if token else None,
                    max_await_time_ms=int(AWAIT_SECS * 1000),
                ) as stream:
                    while True:
                        asked_at = loop.time()
                        change = await stream.try_next()
                        failures = 0
                        if change is None:
                            if stream.resume_token is not None:
                                self._positions[collection] = stream.resume_token["_data"]
                            self._ready[collection].set()
                            if nx_compat.server_returns.count != server_returns:
                                break  # a restarted embedded server: reopen from our position
                            await pacer.pause_after_empty_batch(loop.time() - asked_at)
                            continue
                        pacer.busy()
                        try:
                            await handler(change)
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
                    self._cut_everyone()
                delay = BACKOFF_SECS[min(failures, len(BACKOFF_SECS) - 1)]
                failures += 1
                log.warning(
                    "Change stream on %s failed (%s); retrying in %ss", collection, exc, delay
                )
                await asyncio.sleep(delay)

    async def _on_message_change(self, change: Mapping[str, Any]) -> None:
        if change.get("operationType") not in ("insert", "update", "replace"):
            return
        # Load the document by its key rather than trusting fullDocument (README: nx-27017).
        message = await store.get_by_id(self.db, Message, object_id=change["documentKey"]["_id"])
        if message is None:
            return
        event = MessageEvent(change["_id"]["_data"], message)
        self._broadcast(event, message_recipients(message, self._subscriptions))

    async def _on_presence_change(self, change: Mapping[str, Any]) -> None:
        if change.get("operationType") not in ("insert", "delete"):
            return  # heartbeats change nobody's status
        user_id = str(change["documentKey"]["_id"]).split(":", 1)[0]
        online = await store.is_online(self.db, user_id=user_id)
        if online != (user_id in self.online):
            (self.online.add if online else self.online.discard)(user_id)
            user = await store.get_user(self.db, user_id=user_id)
            if user is not None:
                self._broadcast(PersonEvent(user, online))

    async def _on_user_change(self, change: Mapping[str, Any]) -> None:
        user = await store.get_by_id(self.db, User, object_id=change["documentKey"]["_id"])
        if user is None:
            return
        user_id = str(user.id)
        if self._away.get(user_id) != user.away_message:  # a new person, or a new away message
            self._away[user_id] = user.away_message
            self._broadcast(PersonEvent(user, user_id in self.online))

    async def _on_read_marker_change(self, change: Mapping[str, Any]) -> None:
        """Someone read a conversation: their other tabs' counts change.

        A marker counting up is a direct message arriving, which its own message event shows.
        """
        marker_id = str(change["documentKey"]["_id"])
        marker = await store.get_read_marker(self.db, marker_id=marker_id)
        if marker is None or marker.unread == 0:
            self._broadcast(SidebarEvent(), [marker_id.split(":", 1)[0]])

    async def _on_typing_change(self, change: Mapping[str, Any]) -> None:
        if change.get("operationType") not in ("insert", "update", "replace"):
            return
        typing = await store.get_typing(self.db, typing_id=str(change["documentKey"]["_id"]))
        if typing is not None:
            self._broadcast(TypingEvent(typing), typing_recipients(typing, self._subscriptions))
