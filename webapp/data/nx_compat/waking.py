"""Ending a follower's pause when its collection is written: by this process (through the
driver) or by another app process on the same embedded server (a datagram on loopback)."""

from __future__ import annotations

import asyncio
import contextlib
import time
from typing import Any

from pymongo import monitoring
from pymongo.errors import PyMongoError

PEERS_COLLECTION = "nx_peers"
PEER_REFRESH_SECS = 5.0
PEER_LAPSE_SECS = 3 * PEER_REFRESH_SECS


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
            if _running_loop() is self._loop:
                # At once, in the driver's task. Where that task is not the writer's (writes
                # that go together, data/together.py, new messages among them), the follower's
                # turn comes before the writer is told of its write, so its getMore goes out
                # before the writer renders its answer. A turn later (call_soon_threadsafe),
                # it waited for the writer's whole request.
                self._wrote(collection)
            else:
                self._loop.call_soon_threadsafe(self._wrote, collection)

    def failed(self, event: monitoring.CommandFailedEvent) -> None:
        self._writing.pop(event.request_id, None)


wake_on_write = WakeOnWrite()


def _running_loop() -> asyncio.AbstractEventLoop | None:
    try:
        return asyncio.get_running_loop()
    except RuntimeError:
        return None


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
