"""Messages over HTTP: posting in a conversation, changing or deleting one's own, reacting,
and finding one in its conversation."""

from __future__ import annotations

from urllib.parse import urlencode

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from webapp.actions import messages, posting
from webapp.data import messages as message_data
from webapp.data.connection import Db
from webapp.data.models import Message, Room
from webapp.web import auth, conversations, respond, state
from webapp.web.session import SignedInUser, signed_in
from webapp.web.templating import PALETTE

Fragment = tuple[str, dict[str, object]]


async def _fragment(
    db: Db,
    message: Message,
    room: Room,
    quoted: Message | None = None,
    outsiders: list[str] | None = None,
) -> Fragment:
    """The message's fragment, with the message it answers as it is now; for its author, who
    it mentioned who cannot read it (and, where they may add people, the offer to)."""
    if message.reply_to and quoted is None:
        quoted = await message_data.by_id(db, message_id=message.reply_to)
    context = {"message": message, "room_key": room.key, "quoted": quoted, "room": room}
    return "_written.html", {**context, "outsiders": outsiders or []}


async def post_message(request: Request) -> Response:
    """POST .../messages (`body`; `reply_to` to answer a message; `client_key`, the client's
    name for it, so that a retry posts nothing twice): 201 with the message (200 for a retry
    of one that was made), or 303 to it for a plain form."""
    me = signed_in(request)
    form = await auth.checked_form(request)
    conversation = await conversations.named_by(request, me)
    db = state.db(request)
    posted = await posting.post(
        db,
        conversation.seat,
        sender=me.user,
        body=str(form.get("body", "")),
        reply_to=str(form.get("reply_to", "")),
        client_key=str(form.get("client_key", "")),
    )
    location = f"{conversation.page_url}#msg-{posted.message.id}"
    fragment = await _fragment(db, posted.message, posted.room, posted.quoted, posted.outsiders)
    status = 200 if posted.again else 201  # (a retry: the message is there already)
    return respond.changed(request, location, status_code=status, fragment=fragment)


async def _own(request: Request, me: SignedInUser) -> tuple[Message, Room]:
    hub = state.hub(request)
    return await messages.own(
        hub.db, hub.directory, message_id=request.path_params["message_id"], actor_id=me.identity
    )


async def _changed(
    request: Request,
    me: SignedInUser,
    message: Message,
    room: Room,
    outsiders: list[str] | None = None,
) -> Response:
    conversation = await conversations.of_room(state.hub(request), me, room)
    location = f"{conversation.page_url}#msg-{message.id}"
    fragment = await _fragment(state.db(request), message, room, outsiders=outsiders)
    return respond.changed(request, location, fragment=fragment)


async def show_message(request: Request) -> Response:
    """GET /messages/{id}: its conversation, opened at it (?reply=1: to answer it)."""
    me = signed_in(request)
    hub = state.hub(request)
    message, room, _ = await messages.readable(
        hub.db, hub.directory, message_id=request.path_params["message_id"], reader_id=me.identity
    )
    conversation = await conversations.of_room(hub, me, room)
    if request.query_params.get("reply"):
        query, anchor = {"reply_to": str(message.id)}, "message-body"
    else:
        query, anchor = {"at": str(message.id)}, f"msg-{message.id}"
    return RedirectResponse(f"{conversation.page_url}?{urlencode(query)}#{anchor}", 303)


async def show_edit_form(request: Request) -> Response:
    """GET /messages/{id}/edit: the edit form (?cancel: the message again)."""
    me = signed_in(request)
    message, room = await _own(request, me)
    _, context = await _fragment(state.db(request), message, room)
    if "cancel" in request.query_params:
        return respond.render(request, "_message.html", context)
    conversation = await conversations.of_room(state.hub(request), me, room)
    context["back_url"] = conversation.page_url  # where Cancel goes without JavaScript
    edit = "_edit_form.html" if respond.wants_fragment(request) else "edit.html"
    return respond.render(request, edit, context)


async def edit_message(request: Request) -> Response:
    """PATCH /messages/{id} (POST .../edit for a plain form), field `body`."""
    me = signed_in(request)
    form = await auth.checked_form(request)
    message, room = await _own(request, me)
    body = str(form.get("body", ""))
    edited, outsiders = await messages.edit(state.db(request), room, message=message, body=body)
    return await _changed(request, me, edited, room, outsiders)


async def delete_message(request: Request) -> Response:
    """DELETE /messages/{id} (POST .../delete for a plain form)."""
    me = signed_in(request)
    await auth.checked_form(request)
    message, room = await _own(request, me)
    deleted = await messages.delete(state.db(request), message=message)
    return await _changed(request, me, deleted, room)


async def show_reaction_palette(request: Request) -> Response:
    """GET /messages/{id}/reactions: the emoji to react with, for a browser without script."""
    me = signed_in(request)
    hub = state.hub(request)
    message, room, _ = await messages.readable(
        hub.db, hub.directory, message_id=request.path_params["message_id"], reader_id=me.identity
    )
    conversation = await conversations.of_room(hub, me, room)
    context = {"message": message, "palette": PALETTE, "back_url": conversation.page_url}
    return respond.render(request, "react.html", context)


async def add_reaction(request: Request) -> Response:
    """POST /messages/{id}/reactions (`emoji`): one's reaction (again: no change)."""
    me = signed_in(request)
    form = await auth.checked_form(request)
    hub = state.hub(request)
    message, room = await messages.react(
        hub.db,
        hub.directory,
        message_id=request.path_params["message_id"],
        reactor=me.user,
        emoji=str(form.get("emoji", "")),
    )
    return await _changed(request, me, message, room)


async def remove_reaction(request: Request) -> Response:
    """DELETE /messages/{id}/reactions?emoji=... (POST .../reactions/remove, `emoji`, for a
    plain form): one's reaction taken back (none: no change)."""
    me = signed_in(request)
    form = await auth.checked_form(request)
    emoji = form.get("emoji") if request.method == "POST" else request.query_params.get("emoji")
    hub = state.hub(request)
    message, room = await messages.unreact(
        hub.db,
        hub.directory,
        message_id=request.path_params["message_id"],
        reactor=me.user,
        emoji=str(emoji or ""),
    )
    return await _changed(request, me, message, room)
