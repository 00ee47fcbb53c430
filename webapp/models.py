"""The documents the app stores (odmantic models); queries live in store.py."""

from __future__ import annotations

from datetime import datetime

import pymongo
from odmantic import Field, Index, Model


class User(Model):
    username: str
    username_key: str = Field(unique=True)  # lower-cased: names are unique ignoring case
    password_hash: str
    created_at: datetime
    away_message: str = ""
    last_seen_at: datetime | None = None

    model_config = {"indexes": lambda: [Index(User.last_seen_at)]}  # the recently seen


class Message(Model):
    conversation: str  # "public", or "dm:<user id>:<user id>" with the ids in a fixed order
    # References are user ids as strings (see README, "The embedded database").
    participants: list[str]  # the two people of a DM (one, for notes to self); empty if public
    sender_id: str
    sender_name: str
    body: str  # "" once deleted
    created_at: datetime
    edited_at: datetime | None = None
    deleted: bool = False

    model_config = {
        "indexes": lambda: [
            # Pages of a conversation, newest first. (MongoDB would take _id as a third key; the
            # embedded server cannot index _id inside a compound index.)
            Index(Message.conversation, Message.created_at),
        ]
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
    """One open event stream; its id, "<user id>:<stream id>", says whose it is."""

    id: str = Field(primary_field=True)
    user_id: str
    expires_at: datetime  # pushed forward by the stream's process while it stays open
    opened_at: datetime | None = None  # the newest streams of a user are kept (hub.connect)

    model_config = {
        "collection": "presence",
        "indexes": lambda: [
            Index(Presence.user_id, Presence.expires_at),
            pymongo.IndexModel("expires_at", expireAfterSeconds=0),
        ],
    }


class Typing(Model):
    """Someone is typing in a conversation; its id is "<user id>:<conversation>"."""

    id: str = Field(primary_field=True)
    user_id: str
    username: str
    conversation: str
    participants: list[str]
    at: datetime

    model_config = {
        "collection": "typing",
        "indexes": lambda: [pymongo.IndexModel("at", expireAfterSeconds=60)],
    }


class ReadMarker(Model):
    """How far one user has read one conversation; id "<user id>:<conversation>"."""

    id: str = Field(primary_field=True)
    user_id: str
    conversation: str
    read_at: datetime
    unread: int = 0  # direct messages received since read_at

    model_config = {
        "collection": "read_markers",
        "indexes": lambda: [Index(ReadMarker.user_id, ReadMarker.unread)],
    }


class RateLimit(Model):
    """How fast someone is going (chat.Rate); id "<what>:<user id>", as "post:<user id>"."""

    id: str = Field(primary_field=True)
    # The theoretical arrival time, in seconds since the epoch: a number, not a date, since
    # it is written with $set and $inc (README, "The embedded database").
    tat: float

    model_config = {"collection": "rate_limits"}
