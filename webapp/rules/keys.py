"""The composite keys documents and pages are found by, built and read in one place."""

from __future__ import annotations

PUBLIC = "public"  # the public room's key


def dm_key(a: str, b: str) -> str:
    """The key of the direct conversation between two user ids (the same both ways)."""
    first, second = sorted((a, b))
    return f"dm:{first}:{second}"


def dm_peer(key: str, user_id: str) -> str | None:
    """The other person of a DM's key (`user_id` for notes to self), else None."""
    kind, _, rest = key.partition(":")
    first, _, second = rest.partition(":")
    if kind != "dm" or user_id not in (first, second):
        return None
    return second if first == user_id else first


def member_key(room_id: str, user_id: str) -> str:
    """The id of one person's membership of a room, and of their mute of it."""
    return f"{room_id}:{user_id}"


def member_of(key: str) -> tuple[str, str]:
    """The (room id, user id) a member key names."""
    room_id, _, user_id = key.partition(":")
    return room_id, user_id


def typing_key(user_id: str, room_id: str) -> str:
    """The id of someone's typing notice in a room."""
    return f"{user_id}:{room_id}"


def presence_key(user_id: str, stream: str) -> str:
    """The id of one open stream's presence: whose it is, and which."""
    return f"{user_id}:{stream}"


def presence_owner(key: str) -> str:
    """The user whose presence a presence key names."""
    return key.partition(":")[0]


def rate_key(what: str, user_id: str) -> str:
    """The id of the counter of one person's rate of doing `what`."""
    return f"{what}:{user_id}"
