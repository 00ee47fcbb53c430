"""Workarounds for the embedded nx-27017 server, in one place.

Where nx-27017 differs from MongoDB's documented behaviour (see README, "The embedded
database"), the difference is handled here and nowhere else:

- getMore on a change stream answers at once when nothing is new (it ignores maxAwaitTimeMS),
  so a follower must pause between empty batches or it spins; and each getMore sweeps the
  server's change table, so it pauses as well once it has handed over a whole batch, rather
  than ask again for the empty one that would most likely follow (`IdlePacer.drained`). On
  MongoDB the server waits and `pause_after_empty_batch` never sleeps. The pause ends early
  when this process writes to the collection (`WakeOnWrite`), or when another app process on
  the same server says it did (`Peers`: a datagram on loopback, since nx-27017 is only ever on
  this machine).
- After a restart it serves empty batches for cursors it no longer knows, and records changes
  only once someone watches again: followers reopen after the driver loses the server (`Outages`).
- Resume tokens look like {"_data": "nx:<n>"}, n counting the server's changes; a made-up
  cursor is not refused, so `cannot_replay` checks it. Only the last RETAINED_CHANGES changes
  of a collection are kept: a replay that reaches that many may have lost older ones.
- A filter with a top-level `$and`, `$or` or `$not`, or a range on `_id`, is read row by row
  in Python (every document of the collection, decoded); equality and `$in` on a field use no
  index, while a range does. So `indexed_equal` writes equality as a one-value range (MongoDB
  plans it like equality), and search asks one room at a time with one word in the filter
  (data/words.py). A sort by that room too, then time, lets SQLite walk the room's
  (room_id, created_at) index newest first and stop at the limit; by time alone it sorts every
  match of the room first.
- A change event's fullDocument encodes ObjectIds as {"__neosqlite_objectid__": true, "id":
  ...} and dates as {"$date": "..."} (and booleans set by $set as 0 or 1, which the models read
  as MongoDB's): `decoded` turns it back into the document MongoDB would give.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import sys
import time
from datetime import UTC, datetime
from typing import Any

from bson import ObjectId
from pymongo import monitoring
from pymongo.errors import PyMongoError

_NX_TOKEN = re.compile(r"nx:(\d+)")
RETAINED_CHANGES = 1000  # per collection
# After 1, 2, 3... quick empty batches. Writes end a pause at once (WakeOnWrite, Peers), so
# the longest one only bounds how late a change nobody announced is seen.
IDLE_PAUSES_SECS = (0.02, 0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 4.0, 8.0)
PEERS_COLLECTION = "nx_peers"
PEER_REFRESH_SECS = 5.0
PEER_LAPSE_SECS = 3 * PEER_REFRESH_SECS


def decoded(value: Any) -> Any:
    """A change event's fullDocument as MongoDB would give it (the same, for MongoDB's own)."""
    if isinstance(value, dict):
        if value.get("__neosqlite_objectid__") is True and isinstance(value.get("id"), str):
            return ObjectId(value["id"])
        if len(value) == 1 and isinstance(value.get("$date"), str):
            when = datetime.fromisoformat(value["$date"])
            return when if when.tzinfo else when.replace(tzinfo=UTC)
        return {key: decoded(item) for key, item in value.items()}
    if isinstance(value, list):
        return [decoded(item) for item in value]
    return value


def token_sort_key(data: str) -> tuple[int, str]:
    """Orders resume tokens of one collection's stream by commit order.

    MongoDB's `_data` is a hex string whose byte order is the event order; nx tokens need
    their counter compared as a number.
    """
    match = _NX_TOKEN.fullmatch(data)
    return (int(match.group(1)), "") if match else (0, data)


def is_nx_token(data: str) -> bool:
    return _NX_TOKEN.fullmatch(data) is not None


def replay_limit(cursor: str) -> int:
    """How many changes after `cursor` can be replayed for sure: nx-27017 keeps the last
    RETAINED_CHANGES, and a replay that reaches that many may have lost older ones."""
    return RETAINED_CHANGES if is_nx_token(cursor) else sys.maxsize


def cannot_replay(cursor: str, position: str) -> bool:
    """True when nx-27017 would silently replay the wrong thing from `cursor`.

    `position` is a recent token of the same stream. A token of another kind, or one ahead of
    the stream (from before the database was reset), is not refused by nx-27017 but replays
    nothing. MongoDB refuses unusable tokens itself, so for its tokens this is always False.
    """
    head = _NX_TOKEN.fullmatch(position)
    if head is None:
        return False
    start = _NX_TOKEN.fullmatch(cursor)
    return start is None or int(start.group(1)) > int(head.group(1))


class WakeOnWrite(monitoring.CommandListener):
    """Hears writes, so that a pausing follower of the written collection asks again at once.

    This process's writes are heard through the driver; other app processes on the same
    embedded server tell this one of theirs with a datagram (`Peers`). The pause only delays
    the question: the change itself still arrives through the change stream.
    """

    WRITES = frozenset({"insert", "update", "delete", "findAndModify"})

    def __init__(self) -> None:
        self._loop: asyncio.AbstractEventLoop | None = None
        self._events: dict[str, set[asyncio.Event]] = {}
        self._writing: dict[int, str] = {}  # request id -> the collection it writes
        self.peers: Peers | None = None

    def new_event(self, collection: str) -> asyncio.Event:
        self._loop = asyncio.get_running_loop()
        event = asyncio.Event()
        self._events.setdefault(collection, set()).add(event)
        return event

    def wake(self, collection: str) -> None:
        for event in self._events.get(collection, ()):
            event.set()

    def wake_everyone(self) -> None:
        """Ends every pause (from any thread): the server came back, and followers reopen."""
        if self._loop is not None:
            with contextlib.suppress(RuntimeError):  # the loop has closed: nobody waits
                for collection in list(self._events):
                    self._loop.call_soon_threadsafe(self.wake, collection)

    def _wrote(self, collection: str) -> None:
        self.wake(collection)
        if self.peers is not None:
            self.peers.tell(collection)

    def started(self, event: monitoring.CommandStartedEvent) -> None:
        if event.command_name in self.WRITES:
            self._writing[event.request_id] = str(event.command.get(event.command_name, ""))

    def succeeded(self, event: monitoring.CommandSucceededEvent) -> None:
        collection = self._writing.pop(event.request_id, None)
        if collection and self._loop is not None:
            self._loop.call_soon_threadsafe(self._wrote, collection)

    def failed(self, event: monitoring.CommandFailedEvent) -> None:
        self._writing.pop(event.request_id, None)


wake_on_write = WakeOnWrite()


class Peers(asyncio.DatagramProtocol):
    """The other app processes on this embedded server, each told of every write.

    nx-27017 listens on loopback only, so whoever shares it is on this machine. Each process
    binds a UDP port on 127.0.0.1 and lists it in PEERS_COLLECTION (refreshed every few
    seconds); a write sends each listed peer one datagram naming the collection, and the peer's
    follower of that collection asks again at once, as for its own writes. A real MongoDB
    waits in getMore itself and needs none of this.
    """

    def __init__(self) -> None:
        self._transport: asyncio.DatagramTransport | None = None
        self._others: list[tuple[str, int]] = []
        self._id = ""
        self._task: asyncio.Task[None] | None = None

    async def join(self, db: Any) -> None:
        loop = asyncio.get_running_loop()
        transport, _ = await loop.create_datagram_endpoint(
            lambda: self, local_addr=("127.0.0.1", 0)
        )
        self._transport = transport
        host, port = transport.get_extra_info("sockname")[:2]
        self._id = f"{host}:{port}"
        await self._list(db, port)
        self._task = asyncio.create_task(self._keep_listed(db, port), name="nx:peers")

    async def _list(self, db: Any, port: int) -> None:
        peers = db[PEERS_COLLECTION]
        now = time.time()  # a number, not a date: see _update in store.py
        listing = {"_id": self._id, "port": port, "seen": now}  # _id too: nx-27017 needs it
        await peers.replace_one({"_id": self._id}, listing, upsert=True)
        cursor = peers.find({"seen": {"$gt": now - PEER_LAPSE_SECS}})
        self._others = [
            ("127.0.0.1", doc["port"]) async for doc in cursor if doc["_id"] != self._id
        ]

    async def _keep_listed(self, db: Any, port: int) -> None:
        while True:
            await asyncio.sleep(PEER_REFRESH_SECS)
            # A failed round is tried again at the next; meanwhile the pauses bound the delay.
            with contextlib.suppress(PyMongoError):
                await self._list(db, port)

    def tell(self, collection: str) -> None:
        if self._transport is not None:
            for address in self._others:
                self._transport.sendto(collection.encode(), address)

    def datagram_received(self, data: bytes, addr: tuple[str | Any, int]) -> None:
        wake_on_write.wake(data.decode("ascii", "replace"))

    async def leave(self, db: Any) -> None:
        if self._task is not None:
            self._task.cancel()
        if self._transport is not None:
            self._transport.close()
        with contextlib.suppress(PyMongoError):
            await db[PEERS_COLLECTION].delete_one({"_id": self._id})


async def join_peers(db: Any) -> None:
    """Start telling (and hearing from) the other processes on this embedded server."""
    if wake_on_write.peers is None:
        wake_on_write.peers = Peers()
        await wake_on_write.peers.join(db)


async def leave_peers(db: Any) -> None:
    peers, wake_on_write.peers = wake_on_write.peers, None
    if peers is not None:
        await peers.leave(db)


class Outages(monitoring.ConnectionPoolListener):
    """Counts the times the driver lost the server (it clears its pool of connections then:
    told at once, unlike server-description events, which the driver publishes later).

    Restarted, nx-27017 answers getMore on a change-stream cursor it no longer knows with empty
    batches instead of an error, so a follower would wait on a dead cursor for ever; and it
    drops its change triggers when it stops, so a change made before a follower reopens is
    not recorded at all. So followers reopen when this count moves, and a change stream opened
    before the latest outage does not count as live (follower.py).
    """

    def __init__(self) -> None:
        self.count = 0

    def pool_cleared(self, event: monitoring.PoolClearedEvent) -> None:
        self.count += 1
        wake_on_write.wake_everyone()  # no follower waits out its pause on a dead cursor

    def pool_created(self, event: monitoring.PoolCreatedEvent) -> None:
        pass

    def pool_ready(self, event: monitoring.PoolReadyEvent) -> None:
        pass

    def pool_closed(self, event: monitoring.PoolClosedEvent) -> None:
        pass

    def connection_created(self, event: monitoring.ConnectionCreatedEvent) -> None:
        pass

    def connection_ready(self, event: monitoring.ConnectionReadyEvent) -> None:
        pass

    def connection_closed(self, event: monitoring.ConnectionClosedEvent) -> None:
        pass

    def connection_check_out_started(
        self, event: monitoring.ConnectionCheckOutStartedEvent
    ) -> None:
        pass

    def connection_check_out_failed(self, event: monitoring.ConnectionCheckOutFailedEvent) -> None:
        pass

    def connection_checked_out(self, event: monitoring.ConnectionCheckedOutEvent) -> None:
        pass

    def connection_checked_in(self, event: monitoring.ConnectionCheckedInEvent) -> None:
        pass


outages = Outages()


class IdlePacer:
    """Pauses after a change-stream batch that came back empty sooner than it should.

    The pause grows while nothing happens (so an idle server costs next to nothing) and ends
    early when this process, or a peer on the same server, writes to the collection. Only a
    change makes the pauses short again (`busy`): a write the stream does not carry (a
    presence heartbeat, filtered out by the feed) ends one pause and no more.
    """

    def __init__(self, await_secs: float, *, collection: str) -> None:
        self.await_secs = await_secs
        self._pauses = IDLE_PAUSES_SECS
        self._quick_empties = 0
        self._server_waits: bool | None = None  # known after the first empty batch
        self._woken = wake_on_write.new_event(collection)

    def busy(self) -> None:
        self._quick_empties = 0

    def drained(self, changes: Any) -> bool:
        """Whether the change stream has handed over the whole batch it was sent, on a server
        that answers a getMore at once: the next one would most likely come back empty, and
        each costs the embedded server a sweep of its change table. So the follower pauses as
        after an empty batch (a write ends the pause at once). On MongoDB, whose getMore waits
        for the next change, never."""
        if self._server_waits is not False:
            return False
        local = getattr(getattr(changes, "_cursor", None), "_data", None)  # pymongo's own batch
        return local is not None and len(local) == 0

    async def pause_if_drained(self, changes: Any) -> None:
        """After a change: pauses as after an empty batch when `drained`."""
        if self.drained(changes):
            await self._pause()

    async def pause_after_empty_batch(self, waited_secs: float) -> None:
        self._server_waits = waited_secs >= self.await_secs / 2
        if self._server_waits:  # the server did wait: a real MongoDB
            self._quick_empties = 0
            return
        await self._pause()

    async def _pause(self) -> None:
        """The next pause of the schedule, ended early by a write."""
        pause = self._pauses[min(self._quick_empties, len(self._pauses) - 1)]
        self._quick_empties += 1
        # asyncio.timeout, not wait_for: on Python 3.11 wait_for can swallow a cancellation
        # that lands as the wait ends, and a write wakes this wait often.
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(pause):
                await self._woken.wait()
        self._woken.clear()


def indexed_equal(value: str) -> dict[str, str]:
    """Equality to a string, as a one-value range: the same documents and the same index bounds
    on MongoDB, and the only way the embedded server uses an index for it."""
    return {"$gte": value, "$lte": value}
