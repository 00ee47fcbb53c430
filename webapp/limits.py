"""The rate limits on what people do, counted in the database so that every process shares
them: posting (edits included), making rooms, adding people to rooms."""

from __future__ import annotations

from webapp import settings, store
from webapp.chat import POSTING, ROOM_ADDING, ROOM_MAKING, Rate
from webapp.database import Db
from webapp.errors import AddingTooFast, MakingRoomsTooFast, PostingTooFast, TooManyAttempts

LIMITS: dict[str, tuple[Rate, type[TooManyAttempts]]] = {
    "post": (POSTING, PostingTooFast),
    "room": (ROOM_MAKING, MakingRoomsTooFast),
    "add": (ROOM_ADDING, AddingTooFast),
}


async def count(db: Db, what: str, *, user_id: str) -> None:
    """One more of `what` by this user; its TooManyAttempts (nothing counted) past the limit."""
    rate, refusal = LIMITS[what]
    wait = await store.count_event(
        db, key=f"{what}:{user_id}", rate=rate.scaled(settings.LIMIT_WINDOW_SCALE)
    )
    if wait is not None:
        raise refusal(wait)
