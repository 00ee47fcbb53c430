"""A change event's fullDocument, as nx-27017 encodes it, turned back into MongoDB's."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from bson import ObjectId


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
