"""The chat pages and the message endpoints: full pages for plain requests, fragments for htmx."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response

from webapp import access, chat, conversations, limits, store, timeline
from webapp.auth import SignedInUser, checked_form, signed_in
from webapp.conversations import Conversation
from webapp.database import Db
from webapp.errors import BadRequest, Conflict, Forbidden, NotFound
from webapp.feeds import read_state
from webapp.models import Message, Room
from webapp.sidebar import build_sidebar
from webapp.templating import templates


def _is_fragment_request(request: Request) -> bool:
    """An htmx request that wants a fragment (boosted navigation wants the page)."""
    return bool(request.headers.get("hx-request")) and not request.headers.get("hx-boosted")


def is_plain_form_post(request: Request) -> bool:
    """A browser form without JavaScript: it is answered with a redirect to the page."""
    return not request.headers.get("hx-request") and "text/html" in request.headers.get(
        "accept", ""
    )


async def _page_of_messages(
    db: Db, conversation: Conversation, before_id: str | None
) -> tuple[list[Message], bool]:
    room = conversation.room
    before = None
    if before_id is not None:
        before = await store.get_message(db, message_id=before_id)
        if before is None or room is None or before.room_id != str(room.id):
            raise NotFound("No such message in this conversation.")
    if room is None:
        return [], False
    messages = await store.list_messages(
        db, room_id=str(room.id), before=before, limit=chat.PAGE_SIZE + 1
    )
    has_older = len(messages) > chat.PAGE_SIZE
    return messages[-chat.PAGE_SIZE :], has_older


def first_unread(messages: list[Message], read_seq: int, my_id: str) -> str:
    """The id of the first message here that its reader has not read ("": none), above which
    the page draws its "New messages" line: others' messages after the read position."""
    for message in messages:
        if message.seq > read_seq and message.sender_id != my_id and not message.deleted:
            return str(message.id)
    return ""


async def chat_page(
    request: Request, conversation: Conversation, status_code: int = 200
) -> Response:
    """A conversation's page, with the sidebar. Opening it reads nothing: the page tells the
    server what its reader has seen (POST .../read)."""
    me = signed_in(request)
    db = request.app.state.db
    hub = request.app.state.hub
    cursor = hub.position  # taken before reading, so the stream replays anything newer
    before_id = request.query_params.get("before")
    messages: list[Message] = []
    has_older = False
    read_seq = 0
    if conversation.readable:
        messages, has_older = await _page_of_messages(db, conversation, before_id)
        if conversation.room is not None:
            read_seq = await store.read_position(db, room=conversation.room, user=me.user)
    sidebar = await build_sidebar(db, me=me.user, public=hub.public, online_ids=hub.online)
    muted = False
    members = []
    if conversation.is_group and conversation.room:
        ids = await store.member_ids(db, room_id=str(conversation.room.id))
        members = await store.users_by_id(db, user_ids=ids)
        muted = any(e.muted for e in sidebar.rooms if e.room.key == conversation.key)
    context = {
        "conversation": conversation,
        "messages": messages,
        "timeline": timeline.arrange(messages, now=store.now()),
        "newest": before_id is None,  # a page opened at the end shows the end without script
        "has_older": has_older,
        "is_history": before_id is not None,
        "cursor": cursor,
        "sidebar": sidebar,
        "members": members,
        "read_seq": read_seq,
        "first_unread_id": first_unread(messages, read_seq, me.identity),
        "muted": muted,
    }
    response = templates.TemplateResponse(request, "chat.html", context, status_code=status_code)
    response.headers["Vary"] = "HX-Request"
    return response


async def show_home(request: Request) -> Response:
    if not isinstance(request.user, SignedInUser):
        return RedirectResponse("/login", status_code=303)
    return await chat_page(request, conversations.public(request))


async def show_conversation(request: Request) -> Response:
    """GET /rooms/public, /dm/{username} or /rooms/{room_id}."""
    return await chat_page(request, await conversations.of_request(request))


async def find_person(request: Request) -> Response:
    """GET /dm?username=NAME, the sidebar's "Find someone": opens the DM with NAME."""
    signed_in(request)
    username = request.query_params.get("username", "").strip()
    if not chat.USERNAME_RE.fullmatch(username):
        raise NotFound("Usernames are 3 to 32 letters, digits or underscores.")
    return RedirectResponse(request.app.url_path_for("dm", username=username), status_code=303)


async def list_messages(request: Request) -> Response:
    """GET .../messages: the latest page (or the one before ?before=ID)."""
    if not _is_fragment_request(request):
        return await show_conversation(request)
    me = signed_in(request)
    conversation = await conversations.readable(request)
    db = request.app.state.db
    messages, has_older = await _page_of_messages(
        db, conversation, request.query_params.get("before")
    )
    read_seq = 0
    if conversation.room is not None and messages:
        read_seq = await store.read_position(db, room=conversation.room, user=me.user)
    context = {
        "conversation": conversation,
        "messages": messages,
        "timeline": timeline.arrange(messages, now=store.now()),
        "has_older": has_older,
        "first_unread_id": first_unread(messages, read_seq, me.identity),
    }
    response = templates.TemplateResponse(request, "_messages.html", context)
    response.headers["Vary"] = "HX-Request"
    return response


async def post_message(request: Request) -> Response:
    me = signed_in(request)
    form = await checked_form(request)
    conversation = await conversations.readable(request)
    body = chat.clean_body(str(form.get("body", "")))
    db = request.app.state.db
    await limits.count(db, "post", user_id=me.identity)
    room = await conversations.room_to_write_in(request, conversation)
    message = await store.create_message(db, room=room, sender=me.user, body=body)
    if is_plain_form_post(request):
        return RedirectResponse(f"{conversation.page_url}#msg-{message.id}", status_code=303)
    return templates.TemplateResponse(
        request, "_message.html", {"message": message, "room_key": room.key}, status_code=201
    )


async def _own_message(request: Request) -> tuple[Message, Room]:
    """The message in the path and its room, if it is the signed-in user's and not deleted."""
    me = signed_in(request)
    db = request.app.state.db
    message = await store.get_message(db, message_id=request.path_params["message_id"])
    room = await request.app.state.hub.room(message.room_id) if message else None
    member = room is not None and await store.is_member(db, room=room, user_id=me.identity)
    if message is None or room is None or not access.can_read(room, member):
        raise NotFound("No such message.")
    if not access.can_change_message(room, member, message.sender_id, me.identity):
        raise Forbidden("You can only change your own messages.")
    if message.deleted:
        raise Conflict("That message was deleted.")
    return message, room


async def _after_change(request: Request, message: Message, room: Room) -> Response:
    if not is_plain_form_post(request):
        return templates.TemplateResponse(
            request, "_message.html", {"message": message, "room_key": room.key}
        )
    conversation = await conversations.of_room(request.app.state.db, room, signed_in(request))
    return RedirectResponse(f"{conversation.page_url}#msg-{message.id}", status_code=303)


async def show_edit_form(request: Request) -> Response:
    message, room = await _own_message(request)
    context: dict[str, object] = {"message": message, "room_key": room.key}
    if "cancel" in request.query_params:
        return templates.TemplateResponse(request, "_message.html", context)
    template = "_edit_form.html" if _is_fragment_request(request) else "edit.html"
    conversation = await conversations.of_room(request.app.state.db, room, signed_in(request))
    context["back_url"] = conversation.page_url  # where Cancel goes without JavaScript
    return templates.TemplateResponse(request, template, context)


async def edit_message(request: Request) -> Response:
    form = await checked_form(request)
    message, room = await _own_message(request)
    body = chat.clean_body(str(form.get("body", "")))
    db = request.app.state.db
    await limits.count(db, "post", user_id=message.sender_id)  # edits count as posts
    message = await store.edit_message(db, message=message, body=body)
    return await _after_change(request, message, room)


async def delete_message(request: Request) -> Response:
    await checked_form(request)
    message, room = await _own_message(request)
    message = await store.delete_message(request.app.state.db, message=message)
    return await _after_change(request, message, room)


async def mark_read(request: Request) -> Response:
    """POST .../read: the reader has seen this conversation up to the message numbered `seq`
    (everything so far, without it). 204; a client that accepts JSON is told where that leaves
    it: {"key", "read_seq", "unread", "upto"}, as a read event would (feeds.ReadEvent)."""
    me = signed_in(request)
    form = await checked_form(request)
    conversation = await conversations.readable(request)
    seqs = form.getlist("seq")
    if len(seqs) > 1:
        raise BadRequest("Send one seq: the number of the last message seen.")
    seq = chat.clean_seq(str(seqs[0])) if seqs else None
    db = request.app.state.db
    room = conversation.room
    if room is not None:
        await store.mark_read(db, room=room, user=me.user, seq=seq)
    if "application/json" not in request.headers.get("accept", ""):
        return Response(status_code=204)
    read_seq = unread = upto = 0
    if room is not None:
        upto = await store.room_count(db, room_id=str(room.id))
        read_seq = await store.read_position(db, room=room, user=me.user)
        unread = await store.count_unread(
            db, room_id=str(room.id), user_id=me.identity, after_seq=read_seq, upto=upto
        )
    return JSONResponse(read_state(conversation.key, read_seq, unread, upto))


async def post_typing(request: Request) -> Response:
    """POST .../typing: tell the others in this conversation that the user is typing."""
    me = signed_in(request)
    await checked_form(request)
    room = await conversations.room_to_write_in(request, await conversations.readable(request))
    await store.set_typing(request.app.state.db, user=me.user, room=room)
    return Response(status_code=204)


async def set_away(request: Request) -> Response:
    me = signed_in(request)
    form = await checked_form(request)
    if "away_message" not in form:  # an empty one clears it; none at all is a mistake
        raise BadRequest("Send an away message (an empty one clears it).")
    away = chat.clean_away(str(form.get("away_message", "")))
    await store.set_away(request.app.state.db, user=me.user, away_message=away)
    if is_plain_form_post(request):
        return RedirectResponse("/", status_code=303)
    return JSONResponse({"away_message": away})


async def show_health(request: Request) -> Response:
    healthy = await request.app.state.connection.is_healthy()
    return JSONResponse(
        {"status": "ok" if healthy else "database unavailable"}, status_code=200 if healthy else 503
    )
