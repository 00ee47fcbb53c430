"""Where someone stands in a conversation, as the actions need to know it."""

from __future__ import annotations

from dataclasses import dataclass

from webapp.data.models import Room
from webapp.errors import Forbidden
from webapp.rules import access

JOIN_FIRST = "Join this room to read and write in it."


@dataclass(frozen=True)
class Seat:
    """A conversation as one person sees it: its room (None for a direct conversation nobody
    has written in yet, with `peer_id`), and whether they are a member."""

    room: Room | None
    member: bool
    peer_id: str = ""

    @property
    def readable(self) -> bool:
        return self.room is None or access.can_read(self.room, self.member)

    def must_read(self) -> None:
        """Forbidden unless this person may read it: an open room's outsider must join first."""
        if not self.readable:
            raise Forbidden(JOIN_FIRST)
