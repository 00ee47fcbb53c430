"""A change event's document, as the embedded server encodes it, read as MongoDB's: the feeds
take it from the change instead of loading it again (webapp/data/nx_compat.decoded)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from bson import ObjectId

from webapp.data.models import Message, Room
from webapp.data.nx_compat import decoded

OID = ObjectId("6b162018d9b31f4a26aeed8f")
NEW_YEAR = datetime(2026, 1, 1, tzinfo=UTC)
NOT_AN_ID = {"__neosqlite_objectid__": False, "id": "x"}


@pytest.mark.parametrize(
    ("encoded", "expected"),
    [
        ({"__neosqlite_objectid__": True, "id": str(OID)}, OID),
        ({"$date": "2026-12-07T02:55:20.795000"}, datetime(2026, 12, 7, 2, 55, 20, 795000, UTC)),
        ({"$date": "2026-12-07T02:55:20.802Z"}, datetime(2026, 12, 7, 2, 55, 20, 802000, UTC)),
        (
            {"a": [{"$date": "2026-01-01T00:00:00Z"}, 1]},
            {"a": [datetime(2026, 1, 1, tzinfo=UTC), 1]},
        ),
        # MongoDB's own documents pass as they are; look-alikes that are not markers too.
        (OID, OID),
        ({"$date": 5}, {"$date": 5}),
        (
            {"__neosqlite_objectid__": False, "id": "x"},
            {"__neosqlite_objectid__": False, "id": "x"},
        ),
        ({"$date": "2026-01-01", "other": 1}, {"$date": "2026-01-01", "other": 1}),
        ("text", "text"),
        (None, None),
    ],
)
def test_decoded(encoded: Any, expected: Any) -> None:
    assert decoded(encoded) == expected


def test_an_updated_message_reads_as_its_model() -> None:
    """As the embedded server sends an edited, deleted message (a boolean set as 1)."""
    full = {
        "_id": {"__neosqlite_objectid__": True, "id": str(OID)},
        "room_id": "r1",
        "seq": 3,
        "sender_id": "u1",
        "sender_name": "alice",
        "body": "",
        "deleted": 1,
        "created_at": {"$date": "2026-12-07T02:55:20.795000"},
        "edited_at": {"$date": "2026-12-07T02:55:20.802Z"},
    }
    message = Message.model_validate_doc(decoded(full))
    assert (message.id, message.deleted, message.body) == (OID, True, "")
    assert message.created_at == datetime(2026, 12, 7, 2, 55, 20, 795000, UTC)
    assert message.edited_at == datetime(2026, 12, 7, 2, 55, 20, 802000, UTC)


def test_a_room_reads_as_its_model() -> None:
    full = {
        "_id": {"__neosqlite_objectid__": True, "id": str(OID)},
        "kind": "group",
        "key": str(OID),
        "name": "Plans",
        "members": [],
        "archived": 0,
        "open": 1,
        "created_at": {"$date": "2026-12-07T02:55:20Z"},
    }
    room = Room.model_validate_doc(decoded(full))
    assert (room.id, room.archived, room.open) == (OID, False, True)
