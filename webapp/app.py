"""The application: routes, middleware, error handling and the lifespan that opens the database
and starts the hub."""

from __future__ import annotations

import asyncio
import logging
import logging.config
import signal
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from types import FrameType
from typing import Any

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.middleware.authentication import AuthenticationMiddleware
from starlette.requests import Request
from starlette.responses import PlainTextResponse, RedirectResponse, Response
from starlette.routing import Match, Mount, Route
from starlette.staticfiles import StaticFiles

from webapp import settings
from webapp.data.connection import open_database
from webapp.data.migration import index_words, migrate_conversations
from webapp.errors import ChatError
from webapp.live import wire
from webapp.live.hub import Hub
from webapp.ops import logs, metrics, runtime
from webapp.ops.observe import Observed
from webapp.rules import formatting
from webapp.rules import search as search_rules
from webapp.web import (
    accounts,
    events,
    health,
    messages,
    pages,
    reading,
    respond,
    rooms,
    search,
)
from webapp.web.auth import SessionBackend
from webapp.web.events import EventsFirst
from webapp.web.outage import DatabaseOutage
from webapp.web.security import BodyLimitMiddleware, SecurityHeadersMiddleware
from webapp.web.state import AppState
from webapp.web.templating import templates, use_routes

NODE_MODULES = settings.ROOT / "node_modules"


def _words_of(text: str) -> tuple[str, list[str]]:
    plain = formatting.render(text).plain
    return plain, search_rules.words_of(plain)


async def handle_chat_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, ChatError)
    return respond.error(request, exc)


async def handle_not_found(request: Request, exc: Exception) -> Response:
    """404; or, for a path that is a route's but for a trailing slash, a redirect to the route.

    The redirect names the path alone (and the query): Starlette's own would build an absolute
    URL from the Host header, which the client writes.
    """
    assert isinstance(exc, HTTPException)
    path = request.scope["path"].rstrip("/")
    if path and path != request.scope["path"]:
        scope = {**request.scope, "path": path}
        candidates = [r for r in request.app.routes if isinstance(r, Route)]
        if any(route.matches(scope)[0] != Match.NONE for route in candidates):
            raw_path: bytes = request.scope.get("raw_path") or request.scope["path"].encode()
            location = raw_path.rstrip(b"/").decode("latin-1")
            if query := request.scope["query_string"]:
                location += "?" + query.decode("latin-1")
            return RedirectResponse(location, status_code=307)
    return PlainTextResponse(exc.detail, status_code=exc.status_code, headers=exc.headers)


def on_exit(callback: Callable[[], None]) -> None:
    """Calls `callback` in the event loop as soon as the server is told to stop (SIGINT or
    SIGTERM), before it waits for open requests to finish.

    Event streams never finish by themselves: told nothing, they would hold the graceful
    shutdown until its timeout, and then be cancelled mid-write. The server's own handlers
    (installed before the app starts) still run after the callback is scheduled.
    """
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        previous = signal.getsignal(sig)
        if not callable(previous):
            continue

        def handler(signum: int, frame: FrameType | None, previous: Any = previous) -> None:
            loop.call_soon_threadsafe(callback)
            previous(signum, frame)

        signal.signal(sig, handler)


@asynccontextmanager
async def lifespan(app: Starlette) -> AsyncIterator[None]:
    runtime.give_back_freed_memory()
    connection = await open_database()
    await migrate_conversations(connection.db)  # data of the shape before rooms
    await index_words(connection.db, words_of=_words_of)  # messages from before search
    hub = Hub(connection.db)
    await hub.start()
    app.state.chat = AppState(connection, hub)
    on_exit(hub.end_streams)
    runtime.tune_gc()
    metrics.STREAMS_OPEN.set_function(lambda: len(hub.streams))
    lag = asyncio.create_task(runtime.watch_loop_lag(), name="ops:loop-lag")
    try:
        yield
    finally:
        lag.cancel()
        await hub.stop()
        await connection.close()


ROOM = "/rooms/{room_id}"
REACTIONS = "/messages/{message_id}/reactions"
routes = [
    Route("/", pages.show_home, name="home"),
    Route("/register", accounts.show_register, name="register_page"),
    Route("/register", accounts.register, methods=["POST"], name="register"),
    Route("/login", accounts.show_login, name="login_page"),
    Route("/login", accounts.login, methods=["POST"], name="login"),
    Route("/logout", accounts.logout, methods=["POST"], name="logout"),
    Route("/api/token", accounts.create_api_token, methods=["POST"], name="api_token"),
    # The public room
    Route("/rooms/public", pages.show_conversation, name="public_room"),
    Route("/rooms/public/messages", pages.list_messages, name="public_messages"),
    Route("/rooms/public/messages", messages.post_message, methods=["POST"], name="post_public"),
    Route("/rooms/public/read", reading.mark_read, methods=["POST"], name="read_public"),
    Route("/rooms/public/typing", reading.post_typing, methods=["POST"], name="typing_public"),
    # Direct conversations
    Route("/dm", pages.find_person, name="find_person"),
    Route("/dm/{username}", pages.show_conversation, name="dm"),
    Route("/dm/{username}/messages", pages.list_messages, name="dm_messages"),
    Route("/dm/{username}/messages", messages.post_message, methods=["POST"], name="post_dm"),
    Route("/dm/{username}/read", reading.mark_read, methods=["POST"], name="read_dm"),
    Route("/dm/{username}/typing", reading.post_typing, methods=["POST"], name="typing_dm"),
    # Group rooms
    Route("/rooms", rooms.browse_rooms, name="browse_rooms"),
    Route("/rooms", rooms.create_room, methods=["POST"], name="create_room"),
    Route("/rooms/new", rooms.show_new_room, name="new_room"),
    Route(ROOM, pages.show_conversation, name="group_room"),
    Route(ROOM + "/messages", pages.list_messages, name="room_messages"),
    Route(ROOM + "/messages", messages.post_message, methods=["POST"], name="post_room"),
    Route(ROOM + "/read", reading.mark_read, methods=["POST"], name="read_room"),
    Route(ROOM + "/typing", reading.post_typing, methods=["POST"], name="typing_room"),
    Route(ROOM + "/members", rooms.add_member, methods=["POST"], name="add_member"),
    Route(
        ROOM + "/members/{username}", rooms.remove_member, methods=["DELETE"], name="remove_member"
    ),
    Route(
        ROOM + "/members/{username}/remove",
        rooms.remove_member,
        methods=["POST"],
        name="remove_member_form",
    ),
    Route(ROOM + "/leave", rooms.leave_room, methods=["POST"], name="leave_room"),
    Route(ROOM + "/join", rooms.join_room, methods=["POST"], name="join_room"),
    Route(ROOM + "/settings", rooms.change_room, methods=["POST"], name="change_room"),
    Route(ROOM + "/mute", rooms.mute_room, methods=["POST"], name="mute_room"),
    # Messages, wherever they are
    Route("/messages/{message_id}", messages.show_message, name="show_message"),
    Route("/messages/{message_id}", messages.edit_message, methods=["PATCH"], name="patch_message"),
    Route(
        "/messages/{message_id}", messages.delete_message, methods=["DELETE"], name="del_message"
    ),
    Route("/messages/{message_id}/edit", messages.show_edit_form, name="edit_form"),
    Route("/messages/{message_id}/edit", messages.edit_message, methods=["POST"], name="edit"),
    Route(
        "/messages/{message_id}/delete", messages.delete_message, methods=["POST"], name="delete"
    ),
    Route(REACTIONS, messages.show_reaction_palette, name="reaction_palette"),
    Route(REACTIONS, messages.add_reaction, methods=["POST"], name="add_reaction"),
    Route(REACTIONS, messages.remove_reaction, methods=["DELETE"], name="del_reaction"),
    Route(
        REACTIONS + "/remove", messages.remove_reaction, methods=["POST"], name="remove_reaction"
    ),
    Route("/away", accounts.set_away, methods=["POST"], name="set_away"),
    Route("/search", search.search_messages, name="search"),
    Route("/events", events.stream_events, name="events"),  # answered first: EventsFirst
    Route("/healthz", health.show_health, name="health"),
    Route("/metrics", metrics.show_metrics, name="metrics"),
    Mount(
        "/static/htmx",
        StaticFiles(directory=NODE_MODULES / "htmx.org/dist", check_dir=False),
        name="htmx",
    ),
    Mount(
        "/static/htmx-sse",
        StaticFiles(directory=NODE_MODULES / "htmx-ext-sse/dist", check_dir=False),
        name="htmx_sse",
    ),
    Mount("/static", StaticFiles(directory=settings.ROOT / "static"), name="static"),
]
for _route in routes:  # requests are measured by their route's template
    if isinstance(_route, Route | Mount):
        _route.app = metrics.tag_route(_route.app, _route.path)


def create_app() -> Starlette:
    logging.config.dictConfig(logs.config())
    app = Starlette(
        routes=routes,
        middleware=[
            Middleware(SecurityHeadersMiddleware),
            Middleware(DatabaseOutage),
            Middleware(BodyLimitMiddleware),
            Middleware(AuthenticationMiddleware, backend=SessionBackend()),
        ],
        exception_handlers={ChatError: handle_chat_error, 404: handle_not_found},
        lifespan=lifespan,
    )
    use_routes(app.router)
    templates.env.globals["stream_events"] = ",".join(wire.EVENT_NAMES)
    app.router.redirect_slashes = False  # handle_not_found redirects, without the Host header
    return app


chat = create_app()
app = EventsFirst(Observed(chat), chat)
