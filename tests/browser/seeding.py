"""Setting the scene over HTTP for the browser tests: rooms, many messages at once, replies
and reactions."""

from __future__ import annotations

import time

from tests.support import Person


def post(someone: Person, path: str, body: str, *, reply_to: str = "") -> str:
    """Posts to the conversation at `path` (e.g. /rooms/public), answering the message
    `reply_to` if given, waiting out the posting limit (10 a second, bursts of 30) when a long
    run of posts meets it; the message fragment."""
    data = {"body": body} | ({"reply_to": reply_to} if reply_to else {})
    for _ in range(20):
        response = someone.send("POST", f"{path}/messages", data)
        if response.status_code != 429:
            assert response.status_code == 201, response.text
            return response.text
        time.sleep(float(response.headers.get("retry-after", "1")))
    raise AssertionError("the posting limit never let the message through")


def make_room(owner: Person, name: str, *members: Person, topic: str = "") -> str:
    """A private group room of `owner` with `members` added; its path."""
    response = owner.send("POST", "/rooms", {"name": name, "topic": topic})
    assert response.status_code == 201, response.text
    room = response.headers["location"]
    for member in members:
        added = owner.send("POST", f"{room}/members", {"username": member.username})
        assert added.status_code == 201, added.text
    return room


def react(someone: Person, message_id: str, emoji: str) -> str:
    """`someone` reacts to the message with `emoji`; the message fragment."""
    response = someone.send("POST", f"/messages/{message_id}/reactions", {"emoji": emoji})
    assert response.status_code == 200, response.text
    return response.text
