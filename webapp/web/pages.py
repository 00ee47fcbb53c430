"""The chat pages: a conversation with its sidebar (GET /, /rooms/public, /dm/{username},
/rooms/{room_id}), and its history a page at a time (GET .../messages)."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from webapp.data import memberships, messages, reads, users
from webapp.data._query import now, parse_id
from webapp.data.connection import Db
from webapp.data.models import Message
from webapp.errors import NotFound
from webapp.rules import timeline
from webapp.rules.text import USERNAME_RE
from webapp.rules.unread import first_unread
from webapp.web import conversations, respond, state
from webapp.web.conversations import Conversation
from webapp.web.session import SignedInUser, signed_in
from webapp.web.sidebar import build_sidebar


async def _message_here(db: Db, conversation: Conversation, message_id: str) -> Message:
    """A message of this conversation, by its id; else NotFound."""
    found = await messages.by_id(db, message_id=message_id)
    room = conversation.room
    if found is None or room is None or found.room_id != str(room.id):
        raise NotFound("No such message in this conversation.")
    return found


async def _history(
    db: Db, conversation: Conversation, before_id: str | None, at_id: str | None = None
) -> tuple[list[Message], bool]:
    """The latest page of the conversation (or the one before message `before_id`, or the one
    that ends with message `at_id`), and whether there is more before it."""
    before = await _message_here(db, conversation, before_id) if before_id is not None else None
    through = await _message_here(db, conversation, at_id) if at_id is not None else None
    if conversation.room is None:
        return [], False
    page = await messages.page(
        db,
        room_id=str(conversation.room.id),
        before=before,
        through=through,
        limit=timeline.PAGE_SIZE + 1,
    )
    return page[-timeline.PAGE_SIZE :], len(page) > timeline.PAGE_SIZE


async def _log(
    db: Db,
    me: SignedInUser,
    conversation: Conversation,
    before_id: str | None,
    at_id: str | None = None,
) -> dict[str, Any]:
    """What the message log shows: the messages laid out, the messages they answer, and where
    "New messages" goes."""
    history, has_older = await _history(db, conversation, before_id, at_id)
    read_seq = 0
    if conversation.room is not None and history:
        read_seq = await reads.position(db, room=conversation.room, user=me.user)
    unread = first_unread(history, read_seq, me.identity)
    answered = [oid for m in history if (oid := parse_id(m.reply_to))]
    originals = await messages.many_by_id(db, message_ids=answered)
    return {
        "conversation": conversation,
        "messages": history,
        "timeline": timeline.arrange(history, now=now()),
        "originals": {str(oid): message for oid, message in originals.items()},
        "has_older": has_older,
        "read_seq": read_seq,
        "first_unread_id": str(unread.id) if unread else "",
    }


async def _chat_page(request: Request, me: SignedInUser, conversation: Conversation) -> Response:
    """A conversation's page, with the sidebar. Opening it reads nothing: the page tells the
    server what its reader has seen (POST .../read)."""
    hub = state.hub(request)
    cursor = hub.position  # taken before reading, so the stream replays anything newer
    before_id = request.query_params.get("before")
    at_id = request.query_params.get("at")
    reply_to = request.query_params.get("reply_to")
    log: dict[str, Any] = {"messages": [], "timeline": [], "has_older": False, "read_seq": 0}
    log["originals"] = {}
    replying_to = None
    if conversation.readable:
        log = await _log(hub.db, me, conversation, before_id, at_id)
        if reply_to:  # the composer answers it (a browser without script chose Reply)
            replying_to = await _message_here(hub.db, conversation, reply_to)
    sidebar = await build_sidebar(hub.db, me=me.user, public=hub.public, online_ids=hub.online)
    muted, members = False, []
    if conversation.is_group and conversation.room:
        ids = await memberships.member_ids(hub.db, room_id=str(conversation.room.id))
        members = await users.many_by_id(hub.db, user_ids=ids)
        muted = any(e.muted for e in sidebar.rooms if e.room.key == conversation.key)
    context = {
        "first_unread_id": "",
        **log,
        "conversation": conversation,
        # A page opened at the end shows the end without script.
        "newest": before_id is None and at_id is None,
        "is_history": before_id is not None or at_id is not None,
        "replying_to": replying_to,
        "cursor": cursor,
        "sidebar": sidebar,
        "members": members,
        "muted": muted,
    }
    return respond.render(request, "chat.html", context, vary=True)


async def show_home(request: Request) -> Response:
    if not isinstance(request.user, SignedInUser):
        return RedirectResponse("/login", status_code=303)
    return await _chat_page(
        request, request.user, await conversations.named_by(request, request.user)
    )


async def show_conversation(request: Request) -> Response:
    """GET /rooms/public, /dm/{username} or /rooms/{room_id}."""
    me = signed_in(request)
    return await _chat_page(request, me, await conversations.named_by(request, me))


async def find_person(request: Request) -> Response:
    """GET /dm?username=NAME, the sidebar's "Find someone": opens the DM with NAME."""
    signed_in(request)
    username = request.query_params.get("username", "").strip()
    if not USERNAME_RE.fullmatch(username):
        raise NotFound("Usernames are 3 to 32 letters, digits or underscores.")
    return RedirectResponse(request.app.url_path_for("dm", username=username), status_code=303)


async def list_messages(request: Request) -> Response:
    """GET .../messages: the latest page (or the one before ?before=ID); the page itself for a
    browser, the log's fragment for htmx."""
    me = signed_in(request)
    conversation = await conversations.named_by(request, me)
    if not respond.wants_fragment(request):
        return await _chat_page(request, me, conversation)
    conversation.seat.must_read()
    log = await _log(state.db(request), me, conversation, request.query_params.get("before"))
    return respond.render(request, "_messages.html", log, vary=True)
