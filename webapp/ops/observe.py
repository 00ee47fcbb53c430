"""Every request, seen from outside the app: its id (X-Request-ID on every answer, in every log
line of it), one log line when it ends, and its metrics.

The id is the router's own when TRUSTED_PROXY_HOPS says a proxy is in front that sets it (and
it is short and printable), else a new one. The request line says the method, the path (never
the query string), the status, the time taken, the user id when signed in, and the id.
"""

from __future__ import annotations

import logging
import re
import time
import uuid

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from webapp import settings
from webapp.ops import metrics
from webapp.ops.logs import request_id

log = logging.getLogger("webapp.requests")

HEADER = b"x-request-id"
_GIVEN_ID = re.compile(rb"[A-Za-z0-9._:-]{1,64}")


def request_id_of(scope: Scope) -> str:
    if settings.TRUSTED_PROXY_HOPS > 0:
        for name, value in scope.get("headers", ()):
            if name == HEADER and _GIVEN_ID.fullmatch(value):
                return str(value.decode("ascii"))
    return uuid.uuid4().hex


class Observed:
    """The app, each request given an id, logged and measured."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        rid = request_id_of(scope)
        token = request_id.set(rid)
        commands = metrics.count_commands()
        status = 0

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message["headers"] = [*message.get("headers", []), (HEADER, rid.encode())]
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            took = time.perf_counter() - started
            route = scope.get(metrics.ROUTE, metrics.UNMATCHED)
            metrics.request_done(route, scope["method"], status or 500, took, commands[0])
            user = scope.get("user")
            log_request(scope, status, took, getattr(user, "identity", None))
            request_id.reset(token)


def log_request(scope: Scope, status: int, took: float, user_id: str | None) -> None:
    """The one line that says a request was answered (or an event stream ended)."""
    log.info(
        "%s %s %s",
        scope["method"],
        scope["path"],
        status or "-",
        extra={
            "method": scope["method"],
            "path": scope["path"],
            "status": status or None,
            "duration_ms": round(took * 1000, 1),
            "user_id": user_id,
        },
    )
