"""The floor: how long the database alone takes from insert_one to a change stream seeing it.

No delivery through the app can beat this hop, so it is measured on the same database with
nothing else running: one client inserts documents one at a time, a collection change stream
in the same process receives them, and each hop is timed with time.time_ns() on both sides.
On nx-27017 getMore answers at once when nothing is new, so the watcher sleeps briefly
between empty batches, as the app's hub does; on MongoDB the server waits instead.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from bson import ObjectId
from pymongo import AsyncMongoClient
from pymongo.asynchronous.collection import AsyncCollection

COLLECTION = "bench_floor"
EMPTY_BATCH_PAUSE_SECS = 0.0015
GAP_SECS = 0.005  # between one hop's arrival and the next insert
HOP_TIMEOUT_SECS = 5.0


async def _watch(
    collection: AsyncCollection[dict[str, Any]],
    arrived: dict[ObjectId, int],
    woken: asyncio.Event,
    ready: asyncio.Event,
) -> None:
    async with await collection.watch(max_await_time_ms=1000) as stream:
        ready.set()
        while True:
            change = await stream.try_next()
            if change is None:
                await asyncio.sleep(EMPTY_BATCH_PAUSE_SECS)
                continue
            arrived[change["documentKey"]["_id"]] = time.time_ns()
            woken.set()


async def insert_to_watch_ms(uri: str, hops: int) -> list[float]:
    """`hops` insert -> change stream times in ms (a hop that never arrives is left out)."""
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(uri)
    collection = client.get_default_database()[COLLECTION]
    arrived: dict[ObjectId, int] = {}
    woken, ready = asyncio.Event(), asyncio.Event()
    watcher = asyncio.create_task(_watch(collection, arrived, woken, ready))
    values = []
    try:
        await asyncio.wait_for(ready.wait(), HOP_TIMEOUT_SECS)
        for n in range(hops):
            key = ObjectId()
            woken.clear()
            sent_ns = time.time_ns()
            await collection.insert_one({"_id": key, "n": n})
            async with asyncio.timeout(HOP_TIMEOUT_SECS):
                while key not in arrived:
                    await woken.wait()
                    woken.clear()
            values.append((arrived[key] - sent_ns) / 1e6)
            await asyncio.sleep(GAP_SECS)
    except TimeoutError:
        pass  # the database stopped answering: report the hops measured so far
    finally:
        watcher.cancel()
        await asyncio.gather(watcher, return_exceptions=True)
        await collection.drop()
        await client.close()
    return values
