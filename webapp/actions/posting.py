"""Posting a message: the count against the limit, the client's key, the number, the words
and the insert, in as few round trips as each post allows (actions/messages.py changes and
reacts to messages once they are there)."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from bson import ObjectId
from pymongo.errors import DuplicateKeyError

from webapp.actions import limits
from webapp.actions.messages import NO_SUCH_MESSAGE, write_up
from webapp.actions.seat import Seat
from webapp.data import messages, rooms
from webapp.data.connection import Db
from webapp.data.models import Message, Room, User
from webapp.errors import BadRequest, Conflict, Forbidden, NotFound
from webapp.ops import metrics
from webapp.rules import access
from webapp.rules.text import NO_SUCH_ORIGINAL, clean_body, clean_client_key, clean_reply_to

CLOSED = "This room is closed."
CLAIM_LOOKS, CLAIM_WAIT_SECS = 20, 0.1  # a retry racing its first try waits this long for it
HOLD_BACK_SECS = 10.0  # after a post went ahead of its count in vain, its poster's wait for it


async def room_to_write_in(db: Db, seat: Seat, writer_id: str) -> Room:
    """The conversation's room (made now for a first direct message), if this person may
    write in it. Called once the request is known to be good: making a room is a change."""
    room = seat.room
    if room is None:
        room = await rooms.dm(db, a=writer_id, b=seat.peer_id)
    if not access.can_post(room, seat.member):
        raise Forbidden(CLOSED)
    return room


async def _original(db: Db, seat: Seat, reply_to: str) -> Message | None:
    """The message a new one answers: one of this conversation's, else BadRequest."""
    if not reply_to:
        return None
    original = await messages.by_id(db, message_id=reply_to)
    if original is None or seat.room is None or original.room_id != str(seat.room.id):
        raise BadRequest(NO_SUCH_ORIGINAL)
    return original


@dataclass(frozen=True)
class _Ready:
    """A new post, numbered and about to be inserted."""

    room: Room
    written: messages.Written
    outsiders: list[str]
    numbered: messages.Numbered


@dataclass(frozen=True)
class Posted:
    message: Message
    room: Room
    quoted: Message | None  # the message it answers
    outsiders: list[str]  # names it mentions of people who cannot read it: nobody is told
    again: bool = False  # a retry: the message its key made before, not a new one


async def post(
    db: Db, seat: Seat, *, sender: User, body: str, reply_to: str = "", client_key: str = ""
) -> Posted:
    """A new message in the conversation (rendered once, here), with its room, the message it
    answers, and the names it mentions of people who cannot read it.

    A client that sends a key with each message (`client_key`) may send it again after a lost
    answer: the message that key made is the answer, and nothing is posted twice (nor counted
    against the limit twice). Keys are kept for a day. A key its first try could not let go
    of (the database was lost) is taken over by the next try, under the same message id.

    The post is counted against the limit (and its key claimed) before it is numbered, or,
    when this process foresees it admitted, at once with its numbering (`_ahead_of_count`).
    """
    seat.must_read()
    text = clean_body(body)
    original = await _original(db, seat, clean_reply_to(reply_to))
    key = clean_client_key(client_key)
    sender_id = str(sender.id)
    message_id, taken_over, ready = ObjectId(), False, None
    if seat.room is not None and limits.foreseen("post", user_id=sender_id):
        claimed, ready = await _ahead_of_count(db, seat, sender_id, text, key, message_id)
    else:
        claimed = await _claim_and_count(db, sender_id, key, message_id)
    if claimed:
        if made := await _claimed(db, sender_id, key):
            return await _posted_before(db, made, original)
        # Its first try never made the message, nor let go of the key (the database was
        # lost meanwhile): this one makes it, under the id the key names. Should the first
        # land after all, the two cannot both be stored.
        message_id, taken_over = ObjectId(claimed), True
    try:
        ready = ready or await _numbered(db, seat, sender_id, text, message_id)
        message = await messages.insert(
            db,
            ready.numbered,
            sender=sender,
            body=text,
            written=ready.written,
            reply_to=str(original.id) if original else "",
            client_key=key,
        )
    except BaseException as error:
        landed = taken_over and isinstance(error, DuplicateKeyError)  # the first try, now
        if landed and (made := await messages.by_id(db, message_id=str(message_id))):
            return await _posted_before(db, made, original)
        # The key goes with a message that was not made; one taken over stays with its id.
        if key and not taken_over:
            await messages.release_key(db, sender_id=sender_id, key=key)
        raise
    return Posted(message, ready.room, original, ready.outsiders)


async def _numbered(db: Db, seat: Seat, sender_id: str, text: str, message_id: ObjectId) -> _Ready:
    """A post's room (made now for a first direct message), what it stores beside its text,
    and its number."""
    room = await room_to_write_in(db, seat, sender_id)
    written, outsiders = await write_up(db, room, text, notified=[sender_id])
    numbered = await messages.number(db, room=room, message_id=message_id, written=written)
    return _Ready(room, written, outsiders, numbered)


async def _ahead_of_count(
    db: Db, seat: Seat, sender_id: str, text: str, key: str, message_id: ObjectId
) -> tuple[str | None, _Ready | None]:
    """A post numbered at once with its count and its key's claim (`_claim_and_count`'s
    outcome, first): one round trip fewer, for a post this process foresees admitted in a room
    that is there. Gone ahead in vain (refused, a retry, a failure), its words go, its number
    stays unused, and its poster's next posts wait for their count for HOLD_BACK_SECS: a gap
    in a room's numbers, which no count of messages sees, at most one a while per poster and
    process."""
    outcome, numbered = await asyncio.gather(
        _claim_and_count(db, sender_id, key, message_id),
        _numbered(db, seat, sender_id, text, message_id),
        return_exceptions=True,
    )
    if outcome is None and not isinstance(numbered, BaseException):
        metrics.POSTS_AHEAD.labels("admitted").inc()
        return None, numbered
    metrics.POSTS_AHEAD.labels("in_vain").inc()
    limits.hold_back("post", user_id=sender_id, seconds=HOLD_BACK_SECS)
    if not isinstance(numbered, BaseException):
        await messages.unnumber(db, numbered.numbered)
    if isinstance(outcome, BaseException):
        raise outcome
    if outcome is None:  # counted and claimed, but not numbered
        if key:
            await messages.release_key(db, sender_id=sender_id, key=key)
        assert isinstance(numbered, BaseException)
        raise numbered
    return outcome, None


async def _claim_and_count(db: Db, sender_id: str, key: str, message_id: ObjectId) -> str | None:
    """The post counted against the limit and its key (if any) claimed, at once: None when it
    is claimed now, else the id of the message its first try claimed it for. A try that is
    not new (its key claimed before, or in dispute) gets its count back: it was counted with
    its first try. A refused new one lets go of its key."""
    claimed, refusal = await asyncio.gather(
        _claim(db, sender_id, key, message_id),
        limits.count(db, "post", user_id=sender_id),
        return_exceptions=True,
    )
    if isinstance(claimed, BaseException) or claimed:
        if refusal is None:
            await limits.uncount(db, "post", user_id=sender_id)
        if isinstance(claimed, BaseException):
            raise claimed
        return claimed
    if refusal is not None:
        if key:
            await messages.release_key(db, sender_id=sender_id, key=key)
        raise refusal
    return None


async def _claim(db: Db, sender_id: str, key: str, message_id: ObjectId) -> str | None:
    if not key:
        return None
    try:
        return await messages.claim_key(db, sender_id=sender_id, key=key, message_id=message_id)
    except DuplicateKeyError:  # claimed and let go, again and again, by tries at once
        raise Conflict("That message is being sent already: try again in a moment.") from None


async def _claimed(db: Db, sender_id: str, key: str) -> Message | None:
    """The message another request (the same, retried) made under this key, once it is there;
    None if it is not there after a while."""
    for _ in range(CLAIM_LOOKS):
        if found := await messages.by_key(db, sender_id=sender_id, key=key):
            return found
        await asyncio.sleep(CLAIM_WAIT_SECS)
    return None


async def _posted_before(db: Db, message: Message, original: Message | None) -> Posted:
    room = await rooms.by_id(db, room_id=message.room_id)
    if room is None:
        raise NotFound(NO_SUCH_MESSAGE)
    if original is None and message.reply_to:
        original = await messages.by_id(db, message_id=message.reply_to)
    return Posted(message, room, original, [], again=True)
