"""Reading: a reader's position moves, and what that leaves unread is worked out once."""

from __future__ import annotations

from dataclasses import dataclass

from webapp.actions.seat import Seat
from webapp.data import memberships, reads
from webapp.data.connection import Db
from webapp.data.models import Room, User


@dataclass(frozen=True)
class ReadState:
    """Where a reader stands in a conversation: read up to `read_seq`, with `unread` others'
    messages after it up to `upto`, the room's count when it was counted (a tab adds those it
    saw arrive since). Sent alike as a read event and as POST .../read's JSON answer."""

    key: str
    read_seq: int = 0
    unread: int = 0
    upto: int = 0
    mentions: int = 0  # of the unread, those that mention the reader

    def as_json(self) -> dict[str, object]:
        return {
            "key": self.key,
            "read_seq": self.read_seq,
            "unread": self.unread,
            "upto": self.upto,
            "mentions": self.mentions,
        }


async def mark_read(db: Db, seat: Seat, *, reader: User, seq: int | None) -> None:
    """The reader has seen the conversation up to message `seq` (None: everything so far)."""
    seat.must_read()
    if seat.room is not None:
        await reads.mark_read(db, room=seat.room, user=reader, seq=seq)


async def state(db: Db, room: Room | None, *, key: str, reader: User) -> ReadState:
    """Where the reader stands in the room (a conversation with no room yet: nowhere)."""
    if room is None:
        return ReadState(key)
    upto = await reads.room_count(db, room_id=str(room.id))  # first: see ReadState
    read_seq = await reads.position(db, room=room, user=reader)
    return await _counted(db, room, str(reader.id), read_seq, upto)


async def state_of_member(db: Db, room: Room, *, reader_id: str) -> ReadState | None:
    """As `state`, for a member whose position just moved: None once they are not one."""
    upto = await reads.room_count(db, room_id=str(room.id))
    membership = await memberships.get(db, room_id=str(room.id), user_id=reader_id)
    if membership is None:
        return None
    return await _counted(db, room, reader_id, membership.read_seq, upto)


async def _counted(db: Db, room: Room, reader_id: str, read_seq: int, upto: int) -> ReadState:
    unread = await reads.count_unread(
        db, room_id=str(room.id), user_id=reader_id, after_seq=read_seq, upto=upto
    )
    return ReadState(room.key, read_seq, unread.messages, upto, unread.mentions)
