"""Security headers on every response (private ones kept out of caches), and bounds on request
bodies."""

from __future__ import annotations

import asyncio
import logging

from starlette.requests import ClientDisconnect
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from webapp import settings
from webapp.errors import ChatError, PayloadTooLarge

MAX_BODY_BYTES = 64 * 1024  # forms only: the longest message is 4,000 characters
TOO_LARGE = f"That request is too large (the limit is {MAX_BODY_BYTES} bytes)."
BODY_TIMEOUT_SECS = 15  # from the first read of a body to its last byte

logger = logging.getLogger(__name__)

CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; form-action 'self'; base-uri 'none'; object-src 'none'; "
    "frame-ancestors 'none'"
)
HEADERS = [
    (b"content-security-policy", CSP.encode()),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"same-origin"),
    (b"x-frame-options", b"DENY"),
]
# Production is served over HTTPS only (the session cookie is Secure there): browsers are told
# to use nothing else for two years, subdomains included.
HSTS = (b"strict-transport-security", b"max-age=63072000; includeSubDomains")
NO_STORE = (b"cache-control", b"no-store")


SECURITY_HEADERS = [*HEADERS, HSTS] if settings.PRODUCTION else HEADERS


class SecurityHeadersMiddleware:
    """Adds HEADERS to every response (and HSTS in production).

    Every response but a static asset's is private (pages, fragments, history, tokens, errors)
    and gets `Cache-Control: no-store` unless it says otherwise, so that no cache keeps it and
    Back after signing out shows no conversation. Pure ASGI, so it never buffers the event
    stream.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.headers = SECURITY_HEADERS

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        static = scope["path"].startswith("/static/")

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = [*message.get("headers", []), *self.headers]
                if not static and all(name.lower() != b"cache-control" for name, _ in headers):
                    headers.append(NO_STORE)
                message["headers"] = headers
            await send(message)

        await self.app(scope, receive, send_with_headers)


class BodyTooSlow(ChatError):
    status_code = 408
    message = f"The request took too long to arrive (the limit is {BODY_TIMEOUT_SECS} seconds)."


def _who(scope: Scope) -> str:
    client = scope.get("client")
    where = f"{client[0]}:{client[1]}" if client else "unknown"
    return f"{where} - {scope['method']} {scope['path']}"


class BodyLimitMiddleware:
    """Bounds every request body, however it is sent (chunked included).

    Over MAX_BODY_BYTES it is refused (413); a declared Content-Length over the limit before
    any of the body is read. Not complete within BODY_TIMEOUT_SECS of its first read, it is
    refused too (408) and the connection closes, so a client that dribbles its body holds
    nothing for long. A client that goes away before its body is complete is logged in one
    line. Once the body is complete, reads pass straight through (an event stream waits on
    them for the client's disconnect).
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope["headers"]).get(b"content-length", b"0")
        received = 0
        deadline: float | None = None
        complete = timed_out = False

        async def limited_receive() -> Message:
            nonlocal received, deadline, complete, timed_out
            if complete:
                return await receive()
            if declared.isdigit() and int(declared) > MAX_BODY_BYTES:
                raise PayloadTooLarge(TOO_LARGE)
            if deadline is None:
                deadline = asyncio.get_running_loop().time() + BODY_TIMEOUT_SECS
            try:
                async with asyncio.timeout_at(deadline):
                    message = await receive()
            except TimeoutError:
                timed_out = True
                logger.info("%s: the body did not come within %d s", _who(scope), BODY_TIMEOUT_SECS)
                raise BodyTooSlow() from None
            received += len(message.get("body", b""))
            if received > MAX_BODY_BYTES:
                raise PayloadTooLarge(TOO_LARGE)
            complete = message["type"] != "http.request" or not message.get("more_body", False)
            return message

        async def closing_send(message: Message) -> None:
            if timed_out and message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []), (b"connection", b"close")]
            await send(message)

        try:
            await self.app(scope, limited_receive, closing_send)
        except ClientDisconnect:
            logger.info("%s: the client went away before its body was complete", _who(scope))
