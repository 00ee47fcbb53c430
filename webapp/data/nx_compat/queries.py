"""Filters the embedded server serves from an index."""

from __future__ import annotations


def indexed_equal(value: str) -> dict[str, str]:
    """Equality to a string, as a one-value range: the same documents and the same index bounds
    on MongoDB, and the only way the embedded server uses an index for it."""
    return {"$gte": value, "$lte": value}
