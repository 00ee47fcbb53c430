"""Rate limits' counters, shared by every process: one number per person and limit."""

from __future__ import annotations

import time

from pymongo import ReturnDocument, UpdateOne
from pymongo.errors import BulkWriteError, DuplicateKeyError

from webapp.data.connection import Db
from webapp.data.models import RateLimit
from webapp.data.together import Together, refusals
from webapp.rules.rates import Rate

# The tat this process last set for each key: a guess at which of the two updates below will
# match, so that the usual case is one round trip. Any process may have moved it since; a
# wrong guess costs the other update, never a wrong answer.
_last_set: dict[str, float] = {}
# The tat this process foresees for each key, with the events it let go ahead of their count
# (`foresee`) and those it holds back (`hold_back`).
_foreseen: dict[str, float] = {}
_KEYS_KEPT = 100_000


async def _restart_all(db: Db, tries: list[tuple[str, float, float]]) -> list[bool | Exception]:
    """For each (key, now, tat): the key's tat set to `tat` where it is before `now` (or the key
    is new), all in one command. True where it was; False where the tat is ahead of now."""
    ops = [
        UpdateOne({"_id": key, "tat": {"$lt": now}}, {"$set": {"tat": tat}}, upsert=True)
        for key, now, tat in tries
    ]
    outcomes: list[bool | Exception] = [True] * len(tries)
    try:
        await db[RateLimit.__collection__].bulk_write(ops, ordered=False)
    except BulkWriteError as error:
        for index, refused in refusals(error).items():
            # A duplicate: the key is there, and its tat is not before now.
            outcomes[index] = False if isinstance(refused, DuplicateKeyError) else refused
    return outcomes


_RESTARTS: Together[Db, tuple[str, float, float], bool] = Together(_restart_all)


async def count_event(db: Db, *, key: str, rate: Rate) -> int | None:
    """Counts one event against key's rate, atomically in any number of processes: None when
    it is admitted, else the seconds to wait (and nothing is counted).

    The rule is rules.rates.Rate.admit, written as conditional updates of the one number it
    keeps: after a pause (or the first time) the tat starts again from now; within a burst it
    moves on by one interval, unless it is too far ahead. Each is one round trip; the one
    tried first is the one this process's last update says is likely. The usual case, a
    restart after a pause, goes in one command with the restarts of the same moment.
    """
    now = time.time()
    burst_known = False
    if _last_set.get(key, 0.0) < now:
        tat = now + rate.interval
        if await _RESTARTS(db, (key, now, tat)):
            _remember(key, tat)
            return None
        burst_known = True  # its tat is ahead of now: within a burst, or past it
    collection = db[RateLimit.__collection__]
    for _ in range(3):
        now = time.time()
        in_a_burst = burst_known or _last_set.get(key, 0.0) >= now
        for restart in (False, True) if in_a_burst else (True, False):
            if restart:
                try:
                    tat = now + rate.interval
                    await collection.update_one(
                        {"_id": key, "tat": {"$lt": now}}, {"$set": {"tat": tat}}, upsert=True
                    )
                except DuplicateKeyError:  # it is there, and ahead of now
                    continue
                _remember(key, tat)
                return None
            moved = await collection.find_one_and_update(
                {"_id": key, "tat": {"$gte": now, "$lte": now + rate.tolerance}},
                {"$inc": {"tat": rate.interval}},
                projection={"tat": 1},
                return_document=ReturnDocument.AFTER,
            )
            if moved is not None:
                _remember(key, float(moved["tat"]))
                return None
        doc = await collection.find_one({"_id": key})
        if doc is not None and rate.admit(doc["tat"], now) is None:
            _remember(key, float(doc["tat"]))
            return rate.retry_after(doc["tat"], now)
        # another request moved it in between: look again
    return 1  # still moving after three looks: come back in a second


async def uncount_event(db: Db, *, key: str, rate: Rate) -> None:
    """Takes back one event counted against key's rate: its tat moves back by one interval.
    Counting moved it to max(tat, now) + interval, so this leaves max(tat, now), which
    admits what the tat before it did, whatever was counted in between."""
    moved = await db[RateLimit.__collection__].find_one_and_update(
        {"_id": key},
        {"$inc": {"tat": -rate.interval}},
        projection={"tat": 1},
        return_document=ReturnDocument.AFTER,
    )
    if moved is not None:
        _remember(key, float(moved["tat"]))


def foresee(key: str, rate: Rate) -> bool:
    """Whether one more event is as good as admitted, by what this process knows: the tat it
    last set or saw, moved on by the events it foresaw since. None known, it is not. If yes,
    the event is foreseen: the next one foresees one more.

    A guess, for work that may go ahead of the count (the count still decides): another
    process may have counted events meanwhile."""
    known = _last_set.get(key)
    if known is None:
        return False
    tat = rate.admit(max(known, _foreseen.get(key, 0.0)), time.time())
    if tat is None:
        return False
    _keep(_foreseen, key, tat)
    return True


def hold_back(key: str, rate: Rate, seconds: float) -> None:
    """Nothing foreseen for this key for `seconds`: what went ahead of its count went in vain."""
    _keep(_foreseen, key, time.time() + seconds + rate.tolerance)


def _remember(key: str, tat: float) -> None:
    _keep(_last_set, key, tat)


def _keep(tats: dict[str, float], key: str, tat: float) -> None:
    if len(tats) >= _KEYS_KEPT:
        tats.clear()
    tats[key] = tat
