"""The copies the process keeps (live/cache.py) share their models' bookkeeping and still
behave as copies of their own."""

from __future__ import annotations

from datetime import UTC, datetime

from bson import ObjectId

from webapp.data.models import Room, User
from webapp.live.cache import share_bookkeeping

WHEN = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)


def loaded_user(name: str) -> User:
    """A user as a query gives it: parsed from a whole document."""
    doc = {
        "_id": ObjectId(),
        "username": name,
        "username_key": name.lower(),
        "password_hash": "!",
        "created_at": WHEN,
        "away_message": "",
        "last_seen_at": WHEN,
    }
    return User.model_validate_doc(doc)


def test_kept_copies_share_their_bookkeeping_and_keep_their_own_values() -> None:
    alice, bob = loaded_user("Alice"), loaded_user("Bob")
    alice_doc, bob_doc = alice.model_dump_doc(), bob.model_dump_doc()
    kept_alice, kept_bob = share_bookkeeping(alice), share_bookkeeping(bob)
    assert kept_alice is alice and kept_bob is bob
    assert alice.__pydantic_fields_set__ is bob.__pydantic_fields_set__
    assert alice.__fields_modified__ is bob.__fields_modified__
    assert alice.model_dump_doc() == alice_doc and bob.model_dump_doc() == bob_doc
    assert alice.model_fields_set == set(User.model_fields)
    # Setting a field changes that copy alone, and the shared sets stay every field.
    alice.away_message = "at lunch"
    assert (alice.away_message, bob.away_message) == ("at lunch", "")
    assert bob.model_dump_doc() == bob_doc
    assert alice.model_dump_doc() == {**alice_doc, "away_message": "at lunch"}
    assert bob.__pydantic_fields_set__ == set(User.model_fields)
    # A copy of a kept one has sets of its own.
    copied = alice.model_copy()
    assert copied.__pydantic_fields_set__ is not alice.__pydantic_fields_set__
    assert copied.model_dump_doc() == alice.model_dump_doc()


def test_a_copy_not_given_every_field_keeps_its_own_sets() -> None:
    partial = Room.model_construct(kind="public", key="public", created_at=WHEN)
    own = partial.__pydantic_fields_set__
    assert own != set(Room.model_fields)
    share_bookkeeping(partial)
    assert partial.__pydantic_fields_set__ is own
    whole = share_bookkeeping(
        Room.model_validate_doc(
            {"_id": ObjectId(), "kind": "public", "key": "public", "created_at": WHEN}
        )
    )
    assert whole.__pydantic_fields_set__ == set(Room.model_fields)
    assert whole.__pydantic_fields_set__ is not own
