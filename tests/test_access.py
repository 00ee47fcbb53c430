"""The rules of who may do what in a room, as tables."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from webapp.rules import access

OWNER, MEMBER, OUTSIDER = "owner", "member", "outsider"


@dataclass(frozen=True)
class R:
    kind: str
    open: bool = False
    owner_id: str = ""
    archived: bool = False


PUBLIC = R(access.PUBLIC)
DM = R(access.DM)
PRIVATE = R(access.GROUP, owner_id=OWNER)
OPEN = R(access.GROUP, open=True, owner_id=OWNER)
ARCHIVED = R(access.GROUP, open=True, archived=True)

# room, member?: see, read, post, join, add
TABLE = [
    (PUBLIC, False, (True, True, True, False, False)),  # everyone is in the public room
    (PUBLIC, True, (True, True, True, False, False)),
    (DM, True, (True, True, True, False, False)),
    (DM, False, (False, False, False, False, False)),  # someone else's DM does not exist
    (PRIVATE, True, (True, True, True, False, True)),
    (PRIVATE, False, (False, False, False, False, False)),  # nor does a private room
    (OPEN, True, (True, True, True, False, True)),
    (OPEN, False, (True, False, False, True, False)),  # seen and joined, read once in
    (ARCHIVED, False, (False, False, False, False, False)),
    (ARCHIVED, True, (True, True, False, False, False)),
]


@pytest.mark.parametrize(("room", "member", "expected"), TABLE)
def test_what_a_person_may_do_in_a_room(room: R, member: bool, expected: tuple[bool, ...]) -> None:
    got = (
        access.can_see(room, member),
        access.can_read(room, member),
        access.can_post(room, member),
        access.can_join(room, member),
        access.can_add(room, member),
    )
    assert got == expected


@pytest.mark.parametrize(
    ("room", "actor", "member", "target", "allowed"),
    [
        (PRIVATE, OWNER, True, MEMBER, True),  # the owner removes anyone
        (PRIVATE, OWNER, True, OWNER, True),  # and may leave
        (PRIVATE, MEMBER, True, MEMBER, True),  # a member removes only himself
        (PRIVATE, MEMBER, True, "other", False),
        (PRIVATE, MEMBER, True, OWNER, False),
        (PRIVATE, OUTSIDER, False, MEMBER, False),
        (PRIVATE, OWNER, False, MEMBER, False),  # the owner no longer in it
        (OPEN, OUTSIDER, False, OUTSIDER, False),  # nothing to leave
        (DM, MEMBER, True, MEMBER, False),  # nobody leaves a DM
        (PUBLIC, MEMBER, True, MEMBER, False),
    ],
)
def test_who_may_remove_whom(room: R, actor: str, member: bool, target: str, allowed: bool) -> None:
    assert access.can_remove(room, actor, member, target) is allowed


@pytest.mark.parametrize(
    ("room", "actor", "member", "allowed"),
    [
        (PRIVATE, OWNER, True, True),
        (PRIVATE, MEMBER, True, False),
        (OPEN, OUTSIDER, False, False),
        (R(access.GROUP, owner_id=OWNER, archived=True), OWNER, True, False),
        (DM, MEMBER, True, False),
        (PUBLIC, OWNER, True, False),
    ],
)
def test_only_the_owner_renames_a_room(room: R, actor: str, member: bool, allowed: bool) -> None:
    assert access.can_change_room(room, actor, member) is allowed


@pytest.mark.parametrize(
    ("room", "member", "sender", "actor", "allowed"),
    [
        (PUBLIC, False, "me", "me", True),
        (PUBLIC, False, "you", "me", False),  # only one's own
        (PRIVATE, True, "me", "me", True),
        (PRIVATE, False, "me", "me", False),  # gone from the room: its messages are closed
        (DM, True, "you", "me", False),
    ],
)
def test_who_may_change_a_message(
    room: R, member: bool, sender: str, actor: str, allowed: bool
) -> None:
    assert access.can_change_message(room, member, sender, actor) is allowed


@pytest.mark.parametrize(
    ("owner", "members", "settled"),
    [
        ("owner", ["owner", "a"], ("owner", False)),  # the owner stays
        ("owner", ["a", "owner", "b"], ("owner", False)),
        ("owner", ["a", "b"], ("a", False)),  # gone: the longest-standing member owns it
        ("owner", ["b", "a"], ("b", False)),
        ("owner", [], ("", True)),  # nobody left: archived
        ("", [], ("", True)),
        ("", ["joiner"], ("joiner", False)),  # a join that raced the last leave revives it
    ],
)
def test_who_owns_a_room_and_whether_it_is_archived(
    owner: str, members: list[str], settled: tuple[str, bool]
) -> None:
    assert access.ownership(owner, members) == settled


@pytest.mark.parametrize(
    ("room", "members", "readers"),
    [
        (PUBLIC, [], None),  # everyone
        (PUBLIC, ["a"], None),
        (DM, ["a", "b"], frozenset({"a", "b"})),
        (PRIVATE, ["a", "c"], frozenset({"a", "c"})),
        (OPEN, [], frozenset()),
    ],
)
def test_readers(room: R, members: list[str], readers: frozenset[str] | None) -> None:
    assert access.readers(room, members) == readers
