"""Saying that someone is typing: at most one notice every few seconds reaches anyone."""

from __future__ import annotations

from webapp.actions.posting import room_to_write_in
from webapp.actions.seat import Seat
from webapp.data import typing
from webapp.data._query import now
from webapp.data.connection import Db
from webapp.data.models import Typing, User
from webapp.rules.keys import typing_key
from webapp.rules.rates import typing_quiet_since


async def notice(db: Db, seat: Seat, *, typist: User) -> bool:
    """Records that `typist` is typing here; False (nothing written) when a notice went out
    just before (rules/rates.TYPING_REPEAT_SECS), whatever a client sends."""
    seat.must_read()
    room = await room_to_write_in(db, seat, str(typist.id))
    at = now()
    doc = Typing(
        id=typing_key(str(typist.id), str(room.id)),
        user_id=str(typist.id),
        username=typist.username,
        room_id=str(room.id),
        at=at,
    )
    return await typing.record(db, typing=doc, quiet_since=typing_quiet_since(at))
