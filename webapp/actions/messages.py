"""Posting, editing and deleting messages."""

from __future__ import annotations

from webapp.actions import limits
from webapp.actions.seat import Seat
from webapp.data import memberships, messages, rooms
from webapp.data.connection import Db
from webapp.data.models import Message, Room, User
from webapp.errors import Conflict, Forbidden, NotFound
from webapp.live.cache import Directory
from webapp.rules import access
from webapp.rules.text import clean_body

CLOSED = "This room is closed."


async def room_to_write_in(db: Db, seat: Seat, writer_id: str) -> Room:
    """The conversation's room (made now for a first direct message), if this person may
    write in it. Called once the request is known to be good: making a room is a change."""
    room = seat.room
    if room is None:
        room = await rooms.dm(db, a=writer_id, b=seat.peer_id)
    if not access.can_post(room, seat.member):
        raise Forbidden(CLOSED)
    return room


async def post(db: Db, seat: Seat, *, sender: User, body: str) -> tuple[Message, Room]:
    """A new message in the conversation, and its room."""
    seat.must_read()
    text = clean_body(body)
    await limits.count(db, "post", user_id=str(sender.id))
    room = await room_to_write_in(db, seat, str(sender.id))
    return await messages.create(db, room=room, sender=sender, body=text), room


async def own(
    db: Db, directory: Directory, *, message_id: str, actor_id: str
) -> tuple[Message, Room]:
    """A message its author may change, and its room: NotFound if they cannot read it (or it
    does not exist), Forbidden if it is someone else's, Conflict once it is deleted."""
    message = await messages.by_id(db, message_id=message_id)
    room = await directory.room(message.room_id) if message else None
    member = room is not None and await memberships.is_member(db, room=room, user_id=actor_id)
    if message is None or room is None or not access.can_read(room, member):
        raise NotFound("No such message.")
    if not access.can_change_message(room, member, message.sender_id, actor_id):
        raise Forbidden("You can only change your own messages.")
    if message.deleted:
        raise Conflict("That message was deleted.")
    return message, room


async def edit(db: Db, *, message: Message, body: str) -> Message:
    """New text for one's own message (an edit counts as a post against the limit)."""
    text = clean_body(body)
    await limits.count(db, "post", user_id=message.sender_id)
    return await messages.edit(db, message=message, body=text)


async def delete(db: Db, *, message: Message) -> Message:
    return await messages.delete(db, message=message)
