"""Changing messages once they are there: editing and deleting one's own, reacting; and what
a post or an edit stores beside its text (posting itself: actions/posting.py)."""

from __future__ import annotations

from collections.abc import Collection

from webapp.actions import limits
from webapp.data import memberships, messages, users
from webapp.data.connection import Db
from webapp.data.models import Message, Room, User
from webapp.errors import Conflict, Forbidden, NotFound
from webapp.live.cache import Directory
from webapp.rules import access, formatting, search
from webapp.rules.text import REACTION_KINDS_MAX, clean_body, clean_emoji

NO_SUCH_MESSAGE = "No such message."


async def write_up(
    db: Db, room: Room, text: str, *, notified: Collection[str] = ()
) -> tuple[messages.Written, list[str]]:
    """Everything a post or an edit stores beside its text, worked out once: its HTML and
    words, whom it mentions (those named who can read the room; the others are outsiders, and
    reach no one), and whom this change notifies (never anyone twice: not `notified`)."""
    named = await users.many_by_name(db, usernames=formatting.mention_candidates(text))
    readers = await memberships.members_among(db, room=room, user_ids=[str(u.id) for u in named])
    mentioned = [u for u in named if str(u.id) in readers]
    outsiders = sorted(u.username for u in named if str(u.id) not in readers)
    rendered = formatting.render(text, [u.username for u in mentioned])
    ids = [str(u.id) for u in mentioned]
    written = messages.Written(
        html=rendered.html,
        plain=rendered.plain,
        words=search.words_of(rendered.plain),
        mentions=ids,
        notify=[user_id for user_id in ids if user_id not in notified],
    )
    return written, outsiders


async def readable(
    db: Db, directory: Directory, *, message_id: str, reader_id: str
) -> tuple[Message, Room, bool]:
    """A message and its room, if this person may read it (and whether they are a member);
    NotFound, the same as for a message that does not exist, otherwise."""
    message = await messages.by_id(db, message_id=message_id)
    room = await directory.room(message.room_id) if message else None
    member = room is not None and await memberships.is_member(db, room=room, user_id=reader_id)
    if message is None or room is None or not access.can_read(room, member):
        raise NotFound(NO_SUCH_MESSAGE)
    return message, room, member


async def own(
    db: Db, directory: Directory, *, message_id: str, actor_id: str
) -> tuple[Message, Room]:
    """A message its author may change, and its room: NotFound if they cannot read it (or it
    does not exist), Forbidden if it is someone else's, Conflict once it is deleted."""
    message, room, member = await readable(db, directory, message_id=message_id, reader_id=actor_id)
    if not access.can_change_message(room, member, message.sender_id, actor_id):
        raise Forbidden("You can only change your own messages.")
    if message.deleted:
        raise Conflict("That message was deleted.")
    return message, room


async def edit(db: Db, room: Room, *, message: Message, body: str) -> tuple[Message, list[str]]:
    """New text for one's own message (an edit counts as a post against the limit); the names
    it mentions of people who cannot read it. A mention it adds notifies, once."""
    text = clean_body(body)
    await limits.count(db, "post", user_id=message.sender_id)
    already = [message.sender_id, *message.notified]
    written, outsiders = await write_up(db, room, text, notified=already)
    return await messages.edit(db, message=message, body=text, written=written), outsiders


async def delete(db: Db, *, message: Message) -> Message:
    return await messages.delete(db, message=message)


async def react(
    db: Db, directory: Directory, *, message_id: str, reactor: User, emoji: str
) -> tuple[Message, Room]:
    """Adds the reactor's emoji to a message they can read (again: no change); the message as
    it then is. Conflict for a 21st different emoji or a deleted message."""
    message, room, _ = await readable(
        db, directory, message_id=message_id, reader_id=str(reactor.id)
    )
    chosen = clean_emoji(emoji)
    outcome = await messages.react(
        db,
        message_id=message.id,
        emoji=chosen,
        username=reactor.username,
        kinds_max=REACTION_KINDS_MAX,
    )
    if outcome == "full":
        raise Conflict(f"A message takes at most {REACTION_KINDS_MAX} different reactions.")
    if outcome == "gone":
        raise Conflict("That message was deleted.")
    return await _again(db, message), room


async def unreact(
    db: Db, directory: Directory, *, message_id: str, reactor: User, emoji: str
) -> tuple[Message, Room]:
    """Takes the reactor's emoji away (none: no change); the message as it then is."""
    message, room, _ = await readable(
        db, directory, message_id=message_id, reader_id=str(reactor.id)
    )
    chosen = clean_emoji(emoji)
    await messages.unreact(db, message_id=message.id, emoji=chosen, username=reactor.username)
    return await _again(db, message), room


async def _again(db: Db, message: Message) -> Message:
    return await messages.by_id(db, message_id=str(message.id)) or message
