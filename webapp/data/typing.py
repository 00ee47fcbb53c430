"""Typing notices: one document per person and room, rewritten at most so often."""

from __future__ import annotations

from datetime import datetime

from pymongo.errors import DuplicateKeyError

from webapp.data.connection import Db
from webapp.data.models import Typing


async def record(db: Db, *, typing: Typing, quiet_since: datetime) -> bool:
    """Records a typing notice, unless the last one was at or after `quiet_since`; whether it
    was recorded (and so goes out)."""
    doc = typing.model_dump_doc()
    try:
        await db[Typing.__collection__].insert_one(doc)
        return True
    except DuplicateKeyError:
        pass
    result = await db[Typing.__collection__].replace_one(
        {"_id": typing.id, "at": {"$lt": quiet_since}}, doc
    )
    return result.matched_count == 1
