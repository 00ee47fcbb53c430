"""The chat pages and the message endpoints: full pages for plain requests, fragments for htmx."""

from __future__ import annotations

from dataclasses import dataclass

from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response

from webapp import chat, store
from webapp.auth import SignedInUser, checked_form, signed_in
from webapp.database import Db
from webapp.errors import BadRequest, Conflict, Forbidden, NotFound
from webapp.models import Message, User
from webapp.sidebar import build_sidebar
from webapp.templating import templates


@dataclass(frozen=True)
class Conversation:
    """The public room, or a direct conversation as one of its two people sees it."""

    key: str
    title: str
    page_url: str  # /rooms/public or /dm/<peer>; .../messages, .../read and .../typing below it
    participants: list[str]
    peer: User | None = None

    @property
    def messages_url(self) -> str:
        return f"{self.page_url}/messages"


PUBLIC_ROOM = Conversation(chat.PUBLIC, "Public room", "/rooms/public", [])


async def _conversation(db: Db, me: SignedInUser, username: str | None) -> Conversation:
    """The public room, or the direct conversation with `username` (NotFound if no such user)."""
    if username is None:
        return PUBLIC_ROOM
    peer = await store.get_user_by_name(db, username=username)
    if peer is None:
        named = username if chat.is_username(username) else "by that name"
        raise NotFound(f"There is no user called {named}.")
    ids = sorted({me.identity, str(peer.id)})
    return Conversation(
        chat.dm_conversation(str(me.user.id), str(peer.id)),
        "Notes to self" if peer.id == me.user.id else peer.username,
        f"/dm/{peer.username}",
        ids,
        peer,
    )


def _is_fragment_request(request: Request) -> bool:
    """An htmx request that wants a fragment (boosted navigation wants the page)."""
    return bool(request.headers.get("hx-request")) and not request.headers.get("hx-boosted")


def _is_plain_form_post(request: Request) -> bool:
    """A browser form without JavaScript: it is answered with a redirect to the page."""
    return not request.headers.get("hx-request") and "text/html" in request.headers.get(
        "accept", ""
    )


async def _page_of_messages(
    db: Db, conversation: Conversation, before_id: str | None
) -> tuple[list[Message], bool]:
    before = None
    if before_id is not None:
        before = await store.get_message(db, message_id=before_id)
        if before is None or before.conversation != conversation.key:
            raise NotFound("No such message in this conversation.")
    messages = await store.list_messages(
        db, conversation=conversation.key, before=before, limit=chat.PAGE_SIZE + 1
    )
    has_older = len(messages) > chat.PAGE_SIZE
    return messages[-chat.PAGE_SIZE :], has_older


async def _chat_page(request: Request, username: str | None) -> Response:
    me = signed_in(request)
    db = request.app.state.db
    conversation = await _conversation(db, me, username)
    hub = request.app.state.hub
    cursor = hub.position  # taken before reading, so the stream replays anything newer
    before_id = request.query_params.get("before")
    messages, has_older = await _page_of_messages(db, conversation, before_id)
    sidebar = await build_sidebar(db, me=me.user, online_ids=hub.online)
    if sidebar.unread(conversation.key):  # opening a conversation reads it
        await store.mark_read(db, user_id=me.identity, conversation=conversation.key)
        sidebar = sidebar.read(conversation.key)
    context = {
        "conversation": conversation,
        "messages": messages,
        "has_older": has_older,
        "is_history": before_id is not None,
        "cursor": cursor,
        "sidebar": sidebar,
    }
    response = templates.TemplateResponse(request, "chat.html", context)
    response.headers["Vary"] = "HX-Request"
    return response


async def show_home(request: Request) -> Response:
    if not isinstance(request.user, SignedInUser):
        return RedirectResponse("/login", status_code=303)
    return await _chat_page(request, None)


async def show_room(request: Request) -> Response:
    return await _chat_page(request, None)


async def find_person(request: Request) -> Response:
    """GET /dm?username=NAME, the sidebar's "Find someone": opens the DM with NAME."""
    signed_in(request)
    username = request.query_params.get("username", "").strip()
    if not chat.USERNAME_RE.fullmatch(username):
        raise NotFound("Usernames are 3 to 32 letters, digits or underscores.")
    return RedirectResponse(request.app.url_path_for("dm", username=username), status_code=303)


async def show_dm(request: Request) -> Response:
    return await _chat_page(request, request.path_params["username"])


async def list_messages(request: Request) -> Response:
    """GET .../messages: the latest page (or the one before ?before=ID)."""
    if not _is_fragment_request(request):
        return await _chat_page(request, request.path_params.get("username"))
    me = signed_in(request)
    db = request.app.state.db
    conversation = await _conversation(db, me, request.path_params.get("username"))
    messages, has_older = await _page_of_messages(
        db, conversation, request.query_params.get("before")
    )
    response = templates.TemplateResponse(
        request,
        "_messages.html",
        {"conversation": conversation, "messages": messages, "has_older": has_older},
    )
    response.headers["Vary"] = "HX-Request"
    return response


async def post_message(request: Request) -> Response:
    me = signed_in(request)
    form = await checked_form(request)
    db = request.app.state.db
    conversation = await _conversation(db, me, request.path_params.get("username"))
    body = chat.clean_body(str(form.get("body", "")))
    await store.count_post(db, user_id=me.identity)  # PostingTooFast past chat.POSTING
    message = await store.create_message(
        db,
        conversation=conversation.key,
        participants=conversation.participants,
        sender=me.user,
        body=body,
    )
    if _is_plain_form_post(request):
        return RedirectResponse(f"{conversation.page_url}#msg-{message.id}", status_code=303)
    return templates.TemplateResponse(
        request, "_message.html", {"message": message}, status_code=201
    )


async def _own_message(request: Request) -> Message:
    """The message in the path, if it is the signed-in user's and not deleted."""
    me = signed_in(request)
    message = await store.get_message(
        request.app.state.db, message_id=request.path_params["message_id"]
    )
    if message is None or not chat.may_read(
        message.conversation, message.participants, me.identity
    ):
        raise NotFound("No such message.")
    if message.sender_id != me.identity:
        raise Forbidden("You can only change your own messages.")
    if message.deleted:
        raise Conflict("That message was deleted.")
    return message


async def _after_change(request: Request, message: Message) -> Response:
    if not _is_plain_form_post(request):
        return templates.TemplateResponse(request, "_message.html", {"message": message})
    page_url = PUBLIC_ROOM.page_url
    if message.conversation != chat.PUBLIC:
        peer_id = chat.dm_peer(message.conversation, signed_in(request).identity) or ""
        peer = await store.get_user(request.app.state.db, user_id=peer_id)
        page_url = f"/dm/{peer.username}" if peer else "/"
    return RedirectResponse(f"{page_url}#msg-{message.id}", status_code=303)


async def show_edit_form(request: Request) -> Response:
    message = await _own_message(request)
    template = "_edit_form.html" if _is_fragment_request(request) else "edit.html"
    if "cancel" in request.query_params:
        template = "_message.html"
    return templates.TemplateResponse(request, template, {"message": message})


async def edit_message(request: Request) -> Response:
    form = await checked_form(request)
    message = await _own_message(request)
    body = chat.clean_body(str(form.get("body", "")))
    db = request.app.state.db
    await store.count_post(db, user_id=message.sender_id)  # edits count as posts
    message = await store.edit_message(db, message=message, body=body)
    return await _after_change(request, message)


async def delete_message(request: Request) -> Response:
    await checked_form(request)
    message = await _own_message(request)
    message = await store.delete_message(request.app.state.db, message=message)
    return await _after_change(request, message)


async def mark_read(request: Request) -> Response:
    """POST .../read: the reader has seen everything in this conversation so far."""
    me = signed_in(request)
    await checked_form(request)
    db = request.app.state.db
    conversation = await _conversation(db, me, request.path_params.get("username"))
    await store.mark_read(db, user_id=me.identity, conversation=conversation.key)
    return Response(status_code=204)


async def post_typing(request: Request) -> Response:
    """POST .../typing: tell the others in this conversation that the user is typing."""
    me = signed_in(request)
    await checked_form(request)
    db = request.app.state.db
    conversation = await _conversation(db, me, request.path_params.get("username"))
    await store.set_typing(
        db, user=me.user, conversation=conversation.key, participants=conversation.participants
    )
    return Response(status_code=204)


async def set_away(request: Request) -> Response:
    me = signed_in(request)
    form = await checked_form(request)
    if "away_message" not in form:  # an empty one clears it; none at all is a mistake
        raise BadRequest("Send an away message (an empty one clears it).")
    away = chat.clean_away(str(form.get("away_message", "")))
    await store.set_away(request.app.state.db, user=me.user, away_message=away)
    if _is_plain_form_post(request):
        return RedirectResponse("/", status_code=303)
    return JSONResponse({"away_message": away})


async def show_health(request: Request) -> Response:
    healthy = await request.app.state.connection.is_healthy()
    return JSONResponse(
        {"status": "ok" if healthy else "database unavailable"}, status_code=200 if healthy else 503
    )
