"""The rate limits applied: one more of something by someone, or a refusal for now."""

from __future__ import annotations

from webapp import settings
from webapp.data import limits
from webapp.data.connection import Db
from webapp.errors import AddingTooFast, MakingRoomsTooFast, PostingTooFast, TooManyAttempts
from webapp.ops import metrics
from webapp.rules.rates import LIMITS, limit_key

REFUSALS: dict[str, type[TooManyAttempts]] = {
    "post": PostingTooFast,
    "room": MakingRoomsTooFast,
    "add": AddingTooFast,
}


async def count(db: Db, what: str, *, user_id: str) -> None:
    """One more of `what` (a key of rules.rates.LIMITS) by this user, in every process; its
    refusal (and nothing counted) past the limit. LIMIT_WINDOW_SCALE stretches every window."""
    rate = LIMITS[what].scaled(settings.LIMIT_WINDOW_SCALE)
    wait = await limits.count_event(db, key=limit_key(what, user_id), rate=rate)
    if wait is not None:
        metrics.REFUSED.labels(what).inc()
        raise REFUSALS[what](wait)


def foreseen(what: str, *, user_id: str) -> bool:
    """Whether one more `what` by this user is as good as admitted, by what this process knows
    (data/limits.foresee): work may then go ahead of its count."""
    rate = LIMITS[what].scaled(settings.LIMIT_WINDOW_SCALE)
    return limits.foresee(limit_key(what, user_id), rate)


def hold_back(what: str, *, user_id: str, seconds: float) -> None:
    """Nothing of `what` by this user foreseen for a while: what went ahead went in vain."""
    rate = LIMITS[what].scaled(settings.LIMIT_WINDOW_SCALE)
    limits.hold_back(limit_key(what, user_id), rate, seconds)


async def uncount(db: Db, what: str, *, user_id: str) -> None:
    """One `what` by this user taken back: counted, it turned out to be nothing new."""
    rate = LIMITS[what].scaled(settings.LIMIT_WINDOW_SCALE)
    await limits.uncount_event(db, key=limit_key(what, user_id), rate=rate)
