"""Messages over HTTP: posting in a conversation, and changing or deleting one's own."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from webapp.actions import messages
from webapp.data.models import Message, Room
from webapp.web import auth, conversations, respond, state
from webapp.web.session import SignedInUser, signed_in


def _fragment(message: Message, room: Room) -> tuple[str, dict[str, object]]:
    return "_message.html", {"message": message, "room_key": room.key}


async def post_message(request: Request) -> Response:
    """POST .../messages (field `body`): 201 with the message, or 303 to it for a plain form."""
    me = signed_in(request)
    form = await auth.checked_form(request)
    conversation = await conversations.named_by(request, me)
    message, room = await messages.post(
        state.db(request), conversation.seat, sender=me.user, body=str(form.get("body", ""))
    )
    location = f"{conversation.page_url}#msg-{message.id}"
    return respond.changed(request, location, status_code=201, fragment=_fragment(message, room))


async def _own(request: Request, me: SignedInUser) -> tuple[Message, Room]:
    hub = state.hub(request)
    return await messages.own(
        hub.db, hub.directory, message_id=request.path_params["message_id"], actor_id=me.identity
    )


async def _changed(request: Request, me: SignedInUser, message: Message, room: Room) -> Response:
    conversation = await conversations.of_room(state.hub(request), me, room)
    location = f"{conversation.page_url}#msg-{message.id}"
    return respond.changed(request, location, fragment=_fragment(message, room))


async def show_edit_form(request: Request) -> Response:
    """GET /messages/{id}/edit: the edit form (?cancel: the message again)."""
    me = signed_in(request)
    message, room = await _own(request, me)
    template, context = _fragment(message, room)
    if "cancel" in request.query_params:
        return respond.render(request, template, context)
    conversation = await conversations.of_room(state.hub(request), me, room)
    context["back_url"] = conversation.page_url  # where Cancel goes without JavaScript
    edit = "_edit_form.html" if respond.wants_fragment(request) else "edit.html"
    return respond.render(request, edit, context)


async def edit_message(request: Request) -> Response:
    """PATCH /messages/{id} (POST .../edit for a plain form), field `body`."""
    me = signed_in(request)
    form = await auth.checked_form(request)
    message, room = await _own(request, me)
    edited = await messages.edit(state.db(request), message=message, body=str(form.get("body", "")))
    return await _changed(request, me, edited, room)


async def delete_message(request: Request) -> Response:
    """DELETE /messages/{id} (POST .../delete for a plain form)."""
    me = signed_in(request)
    await auth.checked_form(request)
    message, room = await _own(request, me)
    deleted = await messages.delete(state.db(request), message=message)
    return await _changed(request, me, deleted, room)
