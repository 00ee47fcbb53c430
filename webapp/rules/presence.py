"""How someone shows in the sidebar, from whether they have a stream open and what they said."""

from __future__ import annotations


def presence_status(online: bool, away_message: str) -> str:
    """What the sidebar shows: "online", "away" (online with an away message) or "offline"."""
    if not online:
        return "offline"
    return "away" if away_message else "online"
