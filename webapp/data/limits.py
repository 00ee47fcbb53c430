"""Rate limits' counters, shared by every process: one number per person and limit."""

from __future__ import annotations

import contextlib
import time

from pymongo.errors import DuplicateKeyError

from webapp.data.connection import Db
from webapp.data.models import RateLimit
from webapp.rules.rates import Rate


async def count_event(db: Db, *, key: str, rate: Rate) -> int | None:
    """Counts one event against key's rate, atomically in any number of processes: None when
    it is admitted, else the seconds to wait (and nothing is counted).

    The rule is rules.rates.Rate.admit, written as conditional updates of the one number it keeps:
    after a pause (the common case, or the first time) the tat starts again from now, in one
    round trip; within a burst it moves on by one interval, in two, unless it is too far ahead.
    """
    collection = db[RateLimit.__collection__]
    for _ in range(3):
        now = time.time()
        with contextlib.suppress(DuplicateKeyError):  # it is there, and ahead of now
            restart = {"$set": {"tat": now + rate.interval}}
            await collection.update_one({"_id": key, "tat": {"$lt": now}}, restart, upsert=True)
            return None
        within = {"$gte": now, "$lte": now + rate.tolerance}
        moved = await collection.update_one(
            {"_id": key, "tat": within}, {"$inc": {"tat": rate.interval}}
        )
        if moved.matched_count:
            return None
        doc = await collection.find_one({"_id": key})
        if doc is not None and rate.admit(doc["tat"], now) is None:
            return rate.retry_after(doc["tat"], now)
        # another request moved it in between: look again
    return 1  # still moving after three looks: come back in a second
