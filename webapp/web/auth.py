"""Who is asking: the session token from the cookie or a Bearer header, and CSRF.

A request is authenticated by a valid, unrevoked JWT of a user who still exists; anything else
(tampered, expired, revoked, wrong algorithm) leaves it anonymous. A cookie-authenticated
request that changes state must also carry the session's CSRF token; a Bearer one needs none,
since no browser sends that header on its own. The forms that authenticate by password
(password_form) ignore the session cookie, and so need no CSRF token either.
"""

from __future__ import annotations

from typing import Literal

from starlette.authentication import AuthCredentials, AuthenticationBackend, BaseUser
from starlette.datastructures import FormData
from starlette.requests import HTTPConnection, Request

from webapp import settings
from webapp.errors import CSRFFailed
from webapp.web import state, tokens
from webapp.web.forms import read_form
from webapp.web.session import SignedInUser


class SessionBackend(AuthenticationBackend):
    async def authenticate(self, conn: HTTPConnection) -> tuple[AuthCredentials, BaseUser] | None:
        if conn.url.path.startswith("/static/"):
            return None
        via: Literal["cookie", "bearer"]
        scheme, _, value = conn.headers.get("authorization", "").partition(" ")
        if scheme.lower() == "bearer" and value:
            token, via = value.strip(), "bearer"
        elif token := conn.cookies.get(settings.SESSION_COOKIE, ""):
            via = "cookie"
        else:
            return None
        try:
            claims = tokens.read_session_token(token, secret=str(settings.SECRET_KEY))
        except tokens.InvalidToken:
            return None
        if await state.hub(conn).revocations.is_revoked(claims.jti):  # signed out, anywhere
            return None
        user = await state.hub(conn).directory.user(claims.user_id)
        if user is None:
            return None
        return AuthCredentials(["authenticated"]), SignedInUser(user, claims, via)


def _same_origin(request: Request) -> bool:
    origin = request.headers.get("origin")
    if origin is None:
        return True  # scripts and older browsers send none; the CSRF token still protects
    return origin.partition("://")[2] == request.headers.get("host", "")


async def password_form(request: Request) -> FormData:
    """The form of a request that authenticates by password (/login, /register, /api/token),
    once its origin passes.

    It needs no CSRF token: a session cookie sent along proves nothing here and is ignored, and
    a browser signed in to another site's choice of account is what the Origin check refuses.
    """
    if not _same_origin(request):
        raise CSRFFailed()
    return await read_form(request)


def cookie_session(conn: HTTPConnection) -> tokens.SessionClaims | None:
    """The claims of the request's session cookie, when it is validly signed."""
    token = conn.cookies.get(settings.SESSION_COOKIE, "")
    try:
        return tokens.read_session_token(token, secret=str(settings.SECRET_KEY))
    except tokens.InvalidToken:
        return None


async def checked_form(request: Request) -> FormData:
    """The request's form, once its origin and (for cookie sessions) CSRF token pass.

    Its size is capped for every request by security.BodyLimitMiddleware.
    """
    if not _same_origin(request):
        raise CSRFFailed()
    form = await read_form(request)
    user = request.user
    if isinstance(user, SignedInUser) and user.via == "cookie":
        token = request.headers.get("x-csrf-token") or form.get("csrf_token") or ""
        if not isinstance(token, str) or not tokens.csrf_token_matches(
            token,
            user.claims.jti,
            secret=str(settings.SECRET_KEY),
            max_age=settings.CSRF_MAX_AGE_SECS,
        ):
            raise CSRFFailed()
    return form
