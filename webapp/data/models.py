"""The documents the app stores (odmantic models); the queries live beside this module."""

from __future__ import annotations

from datetime import datetime

import pymongo
from bson import ObjectId
from odmantic import EmbeddedModel, Field, Index, Model


class User(Model):
    username: str
    username_key: str = Field(unique=True)  # lower-cased: names are unique ignoring case
    password_hash: str
    created_at: datetime
    away_message: str = ""
    last_seen_at: datetime | None = None

    model_config = {"indexes": lambda: [Index(User.last_seen_at)]}  # the recently seen


class Room(Model):
    """A conversation: the public room, a direct conversation or a group room (rules/access.py)."""

    kind: str  # "public", "dm" or "group"
    # What it is found by: "public", "dm:<user id>:<user id>" (the ids in a fixed order), or a
    # group room's own id. Pages and events name a conversation by this key.
    key: str = Field(unique=True)
    name: str = ""  # a group room's; the others are named for whoever looks at them
    name_key: str = (
        ""  # the name case-folded, to list rooms by (the embedded server has no collation)
    )
    topic: str = ""
    open: bool = False  # a group room anyone may join
    owner_id: str = ""  # a group room's owner (a member's role is derived from it)
    members: list[str] = []  # a DM's one or two people, fixed for ever; empty otherwise
    created_at: datetime
    archived: bool = False  # a group room everyone left

    model_config = {"indexes": lambda: [Index(Room.open, Room.archived, Room.name_key)]}


class Membership(Model):
    """One member of one room; its id, "<room id>:<user id>", makes it unique per room and user.

    The public room's members are implicit: a membership there only keeps a read position.
    """

    id: str = Field(primary_field=True)
    room_id: str
    user_id: str
    read_seq: int = 0  # the room's messages read, by their seq
    joined_at: datetime

    model_config = {
        "indexes": lambda: [
            Index(Membership.user_id),
            Index(Membership.room_id, Membership.joined_at),
        ]
    }


class RoomMute(Model):
    """Someone muted a group room: its messages send them no notification. Its id is
    "<room id>:<user id>"; unmuting deletes it. Apart from the membership, whose changes reach
    the member's tabs as read events."""

    id: str = Field(primary_field=True)
    room_id: str
    user_id: str
    muted_at: datetime

    model_config = {"collection": "room_mutes", "indexes": lambda: [Index(RoomMute.user_id)]}


class RoomSequence(Model):
    """A room's message counter, apart from the room so that posting never touches the room
    document, whose changes the hub follows. Its id is the room's."""

    id: str = Field(primary_field=True)
    value: int = 0

    model_config = {"collection": "room_sequences"}


class Reaction(EmbeddedModel):
    """One emoji's reactions to a message: how many, and who (by username, in order)."""

    n: int = 0
    by: dict[str, bool] = {}


class Message(Model):
    # References are ids as strings (see README, "The embedded database").
    room_id: str
    seq: int  # the room's count of messages when this one was posted: for unread counts
    sender_id: str
    sender_name: str
    body: str  # as typed ("" once deleted): what the edit box shows
    html: str = ""  # body rendered (rules/formatting.py), once per change; "": plain text
    plain: str = ""  # its words, as a reader sees them: quotes, search
    reply_to: str = ""  # the id of the message of the same room that this one answers
    client_key: str = ""  # what its sender's client called it (a retry names the same one)
    # Reactions by emoji, in the order they were first used; reaction_kinds counts them (so
    # that a 21st is refused in the same update that would add it).
    reactions: dict[str, Reaction] = {}
    reaction_kinds: int = 0
    mentions: list[str] = []  # the ids of those it mentions who can read it
    notified: list[str] = []  # everyone its mentions have ever notified
    notify: list[str] = []  # those the change that made this copy notifies (never twice)
    created_at: datetime
    edited_at: datetime | None = None
    deleted: bool = False

    model_config = {
        "indexes": lambda: [
            # Pages of a conversation, newest first. (MongoDB would take _id as a third key; the
            # embedded server cannot index _id inside a compound index.)
            Index(Message.room_id, Message.created_at),
            Index(Message.room_id, Message.seq),  # unread counts
        ]
    }


class MessageWords(Model):
    """What search finds a message by (rules/search.words_of its plain text), kept apart from
    the message so that a search reads a few small documents and not the messages' text. Its
    id is the message's; a deleted message, or one with no words, has none."""

    id: ObjectId = Field(primary_field=True)
    room_id: str
    created_at: datetime  # the message's: results are newest first
    words: list[str]

    model_config = {
        "collection": "message_words",
        "indexes": lambda: [
            Index(MessageWords.room_id, MessageWords.created_at),  # one room's, newest first
            Index(MessageWords.words),  # every word, by its start (on MongoDB)
        ],
    }


class RevokedToken(Model):
    """A signed-out token, kept until it would have expired anyway."""

    jti: str = Field(unique=True)
    expires_at: datetime

    model_config = {
        "collection": "revoked_tokens",
        "indexes": lambda: [pymongo.IndexModel("expires_at", expireAfterSeconds=0)],
    }


class LoginFailure(Model):
    """One failed sign-in; counted per name and address over the last minute."""

    keys: list[str]
    at: datetime

    model_config = {
        "collection": "login_failures",
        "indexes": lambda: [
            Index(LoginFailure.keys, LoginFailure.at),
            pymongo.IndexModel("at", expireAfterSeconds=60),
        ],
    }


class Presence(Model):
    """One open event stream; its id, "<user id>:<stream id>", says whose it is. It counts
    while the lease of the process that holds the stream (`process_id`) lasts."""

    id: str = Field(primary_field=True)
    user_id: str
    process_id: str = ""  # (none: a stream of a process from before leases, swept at once)
    opened_at: datetime | None = None  # the newest streams of a user are kept (hub.connect)

    model_config = {
        "collection": "presence",
        "indexes": lambda: [Index(Presence.user_id), Index(Presence.process_id)],
    }


class ProcessLease(Model):
    """An app process, vouching for every stream it holds at once: its streams' presence
    lapses with this (live/presence.py)."""

    id: str = Field(primary_field=True)
    expires_at: datetime

    model_config = {"collection": "process_leases"}


class Typing(Model):
    """Someone is typing in a room; its id is "<user id>:<room id>"."""

    id: str = Field(primary_field=True)
    user_id: str
    username: str
    room_id: str
    at: datetime

    model_config = {
        "collection": "typing",
        "indexes": lambda: [pymongo.IndexModel("at", expireAfterSeconds=60)],
    }


class PostKey(Model):
    """A key a client sent with a message, so that a retry after a lost answer finds the message
    it made instead of posting it again. Its id is "<sender id>:<key>"; kept for a day."""

    id: str = Field(primary_field=True)
    message_id: str
    at: datetime

    model_config = {
        "collection": "post_keys",
        "indexes": lambda: [pymongo.IndexModel("at", expireAfterSeconds=24 * 60 * 60)],
    }


class RateLimit(Model):
    """How fast someone is going (chat.Rate); id "<what>:<user id>", as "post:<user id>"."""

    id: str = Field(primary_field=True)
    # The theoretical arrival time, in seconds since the epoch: a number, not a date, since
    # it is written with $set and $inc (README, "The embedded database").
    tat: float

    model_config = {"collection": "rate_limits"}
