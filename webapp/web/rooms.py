"""Group rooms over HTTP: making one, browsing open ones, joining, adding, removing, leaving,
renaming and muting. The rules are the actions' (actions/rooms.py); a room someone may not see
answers 404, the same as a room that does not exist (conversations.py)."""

from __future__ import annotations

from urllib.parse import urlencode

from starlette.requests import Request
from starlette.responses import Response

from webapp.actions import rooms
from webapp.data import memberships
from webapp.data import rooms as room_data
from webapp.errors import ChatError, NotFound, retry_headers
from webapp.rules import access
from webapp.rules.text import clean_room_filter
from webapp.web import auth, conversations, respond, state
from webapp.web.conversations import Conversation
from webapp.web.session import signed_in
from webapp.web.templating import url_for

BROWSE_PAGE = 50  # open rooms a page of "Browse rooms" lists


async def show_new_room(request: Request) -> Response:
    signed_in(request)
    return respond.render(request, "room_new.html", {})


async def create_room(request: Request) -> Response:
    """POST /rooms: the new room, which opens (a plain form that is refused is shown again,
    saying why and keeping what was typed)."""
    me = signed_in(request)
    form = await auth.checked_form(request)
    name, topic, is_open = (
        str(form.get("name", "")),
        str(form.get("topic", "")),
        form.get("open") == "on",
    )
    try:
        room = await rooms.create(
            state.db(request), owner=me.user, name=name, topic=topic, open=is_open
        )
    except ChatError as exc:
        if not respond.is_plain_form(request):
            raise
        again = {"error": exc.message, "name": name, "topic": topic, "open": is_open}
        return respond.render(
            request, "room_new.html", again, status_code=exc.status_code, headers=retry_headers(exc)
        )
    return respond.changed(
        request, url_for("group_room", room_id=str(room.id)), status_code=201, go=True
    )


async def browse_rooms(request: Request) -> Response:
    """GET /rooms: the open rooms by name, with their topics and numbers of members, a page
    at a time (?after=ROOM_ID), optionally those whose name holds ?q=."""
    me = signed_in(request)
    db = state.db(request)
    name_part = clean_room_filter(request.query_params.get("q", ""))
    after_id = request.query_params.get("after", "")
    after = await room_data.by_id(db, room_id=after_id) if after_id else None
    if after_id and (after is None or after.kind != access.GROUP):
        raise NotFound("That page of rooms is gone: start again from the first.")
    found = await room_data.open_rooms(db, name_part=name_part, after=after, limit=BROWSE_PAGE + 1)
    page = found[:BROWSE_PAGE]
    counts = await memberships.counts(db, room_ids=[str(room.id) for room in page])
    mine = await memberships.room_ids_of(db, user_id=me.identity)
    listed = [(room, counts.get(str(room.id), 0), str(room.id) in mine) for room in page]
    following = ""
    if len(found) > BROWSE_PAGE:
        query = urlencode({"q": name_part, "after": str(page[-1].id)})
        following = f"{url_for('browse_rooms')}?{query}"
    context = {"rooms": listed, "q": name_part, "next_url": following, "paged": after is not None}
    return respond.render(request, "rooms.html", context)


async def _group(request: Request) -> Conversation:
    return await conversations.named_by(request, signed_in(request))


async def add_member(request: Request) -> Response:
    """POST /rooms/{room_id}/members (username): any member adds someone."""
    me = signed_in(request)
    form = await auth.checked_form(request)
    conversation = await _group(request)
    added = await rooms.add(
        state.db(request), conversation.seat, adder=me.user, username=str(form.get("username", ""))
    )
    return respond.changed(request, conversation.page_url, status_code=201 if added else 200)


async def _remove(request: Request, username: str) -> Response:
    me = signed_in(request)
    conversation = await _group(request)
    gone = await rooms.remove(
        state.db(request), conversation.seat, remover=me.user, username=username
    )
    leaving = gone.id == me.user.id
    return respond.changed(
        request, url_for("home") if leaving else conversation.page_url, go=leaving
    )


async def remove_member(request: Request) -> Response:
    """DELETE /rooms/{room_id}/members/{username} (a plain form POSTs to .../remove)."""
    await auth.checked_form(request)
    return await _remove(request, request.path_params["username"])


async def leave_room(request: Request) -> Response:
    await auth.checked_form(request)
    return await _remove(request, signed_in(request).user.username)


async def join_room(request: Request) -> Response:
    """POST /rooms/{room_id}/join: into an open room, which then opens."""
    me = signed_in(request)
    await auth.checked_form(request)
    conversation = await _group(request)
    if not await rooms.join(state.db(request), conversation.seat, joiner=me.user):
        return respond.changed(request, conversation.page_url)  # in already
    return respond.changed(request, conversation.page_url, status_code=201, go=True)


async def change_room(request: Request) -> Response:
    """POST /rooms/{room_id}/settings: the owner renames the room or changes its topic."""
    me = signed_in(request)
    form = await auth.checked_form(request)
    conversation = await _group(request)
    await rooms.rename(
        state.db(request),
        conversation.seat,
        renamer=me.user,
        name=str(form.get("name", "")),
        topic=str(form.get("topic", "")),
    )
    return respond.changed(request, conversation.page_url)


async def mute_room(request: Request) -> Response:
    """POST /rooms/{room_id}/mute, muted=on|off: whether the room's messages notify me.

    htmx gets the toggle back in its new state, a script {"muted": ...}, a plain form the page.
    """
    me = signed_in(request)
    form = await auth.checked_form(request)
    conversation = await _group(request)
    muted = await rooms.mute(
        state.db(request), conversation.seat, member=me.user, muted=str(form.get("muted", ""))
    )
    return respond.changed(
        request,
        conversation.page_url,
        fragment=("_mute_form.html", {"room": conversation.room, "muted": muted}),
        json={"muted": muted},
    )
