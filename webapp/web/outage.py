"""When the database does not answer: 503 with Retry-After, never a 500.

Whatever a request was doing (signing in, reading a page, posting), a database error that
reaches here answers as a refusal for now, negotiated like any other (webapp/web/respond.py).
An answer already begun cannot be taken back: the error then goes on to the server.

A request that writes is refused the same way, before it starts, while the hub's change
streams are not open (an outage, until they reopen): what it wrote might never be delivered.
"""

from __future__ import annotations

import logging

from pymongo.errors import PyMongoError
from starlette.authentication import AuthCredentials, UnauthenticatedUser
from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from webapp.errors import DatabaseUnavailable
from webapp.web import respond

log = logging.getLogger(__name__)

RETRY_AFTER_SECS = 5
SAFE_METHODS = ("GET", "HEAD", "OPTIONS")


class DatabaseOutage:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if scope["method"] not in SAFE_METHODS and not scope["app"].state.chat.hub.live:
            log.warning("No write while the change streams reopen: %s refused", scope["path"])
            await self._refuse(scope, receive, send)
            return
        started = False

        async def send_noting_start(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, receive, send_noting_start)
        except PyMongoError as exc:
            if started:
                raise
            log.warning("No answer from the database for %s: %s", scope["path"], exc)
            await self._refuse(scope, receive, send)

    async def _refuse(self, scope: Scope, receive: Receive, send: Send) -> None:
        scope.setdefault("user", UnauthenticatedUser())  # if it failed before sign-in
        scope.setdefault("auth", AuthCredentials())
        response = respond.error(Request(scope), DatabaseUnavailable(RETRY_AFTER_SECS))
        await response(scope, receive, send)
