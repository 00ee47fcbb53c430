"""Group rooms: making one, finding open ones, and who is in them.

Every check of who may do what is access.py's; a room someone may not see answers 404, the
same as a room that does not exist (conversations.group).
"""

from __future__ import annotations

from urllib.parse import urlencode

from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response

from webapp import access, chat, conversations, limits, store
from webapp.auth import checked_form, signed_in
from webapp.conversations import Conversation
from webapp.errors import ChatError, Forbidden, NotFound, retry_headers
from webapp.templating import templates, url_for
from webapp.views import is_plain_form_post


def _done(request: Request, location: str, status_code: int = 200, *, go: bool = False) -> Response:
    """A plain form goes on to `location`; htmx and script clients get the status, and htmx
    is sent there too when `go` (a room just made or joined opens)."""
    if is_plain_form_post(request):
        return RedirectResponse(location, status_code=303)
    headers = {"Location": location}
    if go and request.headers.get("hx-request"):
        headers["HX-Location"] = location
    return Response(status_code=status_code, headers=headers)


async def show_new_room(request: Request) -> Response:
    signed_in(request)
    return templates.TemplateResponse(request, "room_new.html", {})


async def create_room(request: Request) -> Response:
    """POST /rooms: the new room, its creator its owner and only member."""
    me = signed_in(request)
    form = await checked_form(request)
    is_open = form.get("open") == "on"
    db = request.app.state.db
    try:
        name = chat.clean_room_name(str(form.get("name", "")))
        topic = chat.clean_topic(str(form.get("topic", "")))
        await limits.count(db, "room", user_id=me.identity)
    except ChatError as exc:
        if not is_plain_form_post(request):
            raise
        again = {"error": exc.message, "name": form.get("name", ""), "topic": form.get("topic", "")}
        return templates.TemplateResponse(
            request,
            "room_new.html",
            {**again, "open": is_open},
            status_code=exc.status_code,
            headers=retry_headers(exc),
        )
    room = await store.create_group_room(db, name=name, topic=topic, open=is_open, owner=me.user)
    return _done(request, url_for("group_room", room_id=str(room.id)), 201, go=True)


async def browse_rooms(request: Request) -> Response:
    """GET /rooms: the open rooms by name, with their topics and numbers of members, a page
    at a time (?after=ROOM_ID), optionally those whose name holds ?q=."""
    me = signed_in(request)
    db = request.app.state.db
    name_part = chat.clean_room_filter(request.query_params.get("q", ""))
    after_id = request.query_params.get("after", "")
    after = await store.get_room(db, room_id=after_id) if after_id else None
    if after_id and (after is None or after.kind != access.GROUP):
        raise NotFound("That page of rooms is gone: start again from the first.")
    rooms = await store.open_rooms(db, name_part=name_part, after=after, limit=chat.BROWSE_PAGE + 1)
    mine = await store.room_ids_of(db, user_id=me.identity)
    listed = [(room, count, str(room.id) in mine) for room, count in rooms[: chat.BROWSE_PAGE]]
    following = ""
    if len(rooms) > chat.BROWSE_PAGE:
        last = str(rooms[chat.BROWSE_PAGE - 1][0].id)
        following = url_for("browse_rooms") + "?" + urlencode({"q": name_part, "after": last})
    context = {"rooms": listed, "q": name_part, "next_url": following, "paged": after is not None}
    return templates.TemplateResponse(request, "rooms.html", context)


async def _group(request: Request) -> Conversation:
    me = signed_in(request)
    return await conversations.group(request.app.state.db, me, request.path_params["room_id"])


async def add_member(request: Request) -> Response:
    """POST /rooms/{room_id}/members: any member adds someone by name."""
    form = await checked_form(request)
    conversation = await _group(request)
    assert conversation.room is not None
    if not access.can_add(conversation.room, conversation.member):
        raise Forbidden("Join this room to add people to it.")
    username = str(form.get("username", "")).strip()
    db = request.app.state.db
    user = await store.get_user_by_name(db, username=username)
    if user is None:
        named = username if chat.is_username(username) else "by that name"
        raise NotFound(f"There is no user called {named}.")
    await limits.count(db, "add", user_id=signed_in(request).identity)
    added, _ = await store.add_member(db, room=conversation.room, user_id=str(user.id))
    return _done(request, conversation.page_url, status_code=201 if added else 200)


async def _remove(request: Request, target_name: str) -> Response:
    me = signed_in(request)
    conversation = await _group(request)
    room = conversation.room
    assert room is not None
    db = request.app.state.db
    target = await store.get_user_by_name(db, username=target_name)
    if target is None or not await store.is_member(db, room=room, user_id=str(target.id)):
        named = target_name if chat.is_username(target_name) else "by that name"
        raise NotFound(f"There is nobody called {named} in this room.")
    if not access.can_remove(room, me.identity, conversation.member, str(target.id)):
        raise Forbidden("Only the room's owner can remove other people.")
    await store.remove_member(db, room=room, user_id=str(target.id))
    leaving = target.id == me.user.id
    return _done(request, url_for("home") if leaving else conversation.page_url)


async def remove_member(request: Request) -> Response:
    """DELETE /rooms/{room_id}/members/{username} (a plain form POSTs to .../remove)."""
    await checked_form(request)
    return await _remove(request, request.path_params["username"])


async def leave_room(request: Request) -> Response:
    await checked_form(request)
    return await _remove(request, signed_in(request).user.username)


async def join_room(request: Request) -> Response:
    """POST /rooms/{room_id}/join: into an open room, which then opens."""
    me = signed_in(request)
    await checked_form(request)
    conversation = await _group(request)
    assert conversation.room is not None
    if conversation.member:
        return _done(request, conversation.page_url)
    if not access.can_join(conversation.room, conversation.member):
        raise conversations.no_such_room()
    _, room = await store.add_member(
        request.app.state.db, room=conversation.room, user_id=me.identity
    )
    if room is None or room.archived:  # settled: a room someone joins is never archived
        raise conversations.no_such_room()
    return _done(request, conversation.page_url, 201, go=True)


async def change_room(request: Request) -> Response:
    """POST /rooms/{room_id}/settings: the owner renames the room or changes its topic."""
    me = signed_in(request)
    form = await checked_form(request)
    conversation = await _group(request)
    room = conversation.room
    assert room is not None
    if not access.can_change_room(room, me.identity, conversation.member):
        raise Forbidden("Only the room's owner can change its name and topic.")
    name = chat.clean_room_name(str(form.get("name", "")))
    topic = chat.clean_topic(str(form.get("topic", "")))
    await store.change_room(request.app.state.db, room=room, name=name, topic=topic)
    return _done(request, conversation.page_url)


async def mute_room(request: Request) -> Response:
    """POST /rooms/{room_id}/mute, muted=on|off: whether the room's messages notify me.

    htmx gets the toggle back in its new state, a script {"muted": ...}, a plain form the page.
    """
    me = signed_in(request)
    form = await checked_form(request)
    conversation = await _group(request)
    room = conversation.room
    assert room is not None
    if not access.can_mute(room, conversation.member):
        raise Forbidden("Join this room to mute it.")
    muted = chat.clean_muted(str(form.get("muted", "")))
    await store.set_muted(request.app.state.db, room=room, user_id=me.identity, muted=muted)
    if is_plain_form_post(request):
        return RedirectResponse(conversation.page_url, status_code=303)
    if request.headers.get("hx-request"):
        context = {"room": room, "muted": muted}
        return templates.TemplateResponse(request, "_mute_form.html", context)
    return JSONResponse({"muted": muted})
