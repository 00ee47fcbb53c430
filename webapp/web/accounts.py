"""Registering, signing in and out, API tokens and away messages, over HTTP."""

from __future__ import annotations

from datetime import timedelta

from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response

from webapp import settings
from webapp.actions import accounts
from webapp.data.models import User
from webapp.errors import ChatError, TooManyAttempts, retry_headers
from webapp.web import auth, respond, state, tokens
from webapp.web.session import SignedInUser, signed_in


def client_address(request: Request) -> str:
    """The address sign-in throttling counts against: the peer, or what our own proxy saw."""
    hops = settings.TRUSTED_PROXY_HOPS
    forwarded = [h.strip() for h in request.headers.get("x-forwarded-for", "").split(",")]
    if hops > 0 and len(forwarded) >= hops and forwarded[-hops]:
        return forwarded[-hops]  # entries further left were written by the client
    return request.client.host if request.client else "unknown"


def _issue_token(user: User) -> str:
    token, _ = tokens.issue_session_token(
        str(user.id),
        secret=str(settings.SECRET_KEY),
        lifetime=timedelta(seconds=settings.TOKEN_LIFETIME_SECS),
    )
    return token


async def _sign_out(request: Request, claims: tokens.SessionClaims) -> None:
    """Ends a session everywhere; this process knows at once (the others from the feed)."""
    await accounts.sign_out(state.db(request), jti=claims.jti, expires_at=claims.expires_at)
    state.hub(request).revocations.add(claims.jti, claims.expires_at)


async def _start_session(request: Request, user: User) -> Response:
    """Signs the browser in as user; the session its cookie held before is revoked."""
    old = auth.cookie_session(request)
    if old is not None:
        await _sign_out(request, old)
    response = RedirectResponse("/", status_code=303)
    response.set_cookie(
        settings.SESSION_COOKIE,
        _issue_token(user),
        max_age=settings.TOKEN_LIFETIME_SECS,
        httponly=True,
        samesite="lax",
        secure=settings.PRODUCTION,
    )
    return response


def _account_form(
    request: Request, mode: str, *, username: str = "", refusal: ChatError | None = None
) -> Response:
    """The sign-in or registration form; again after a refusal, saying what was wrong (and,
    for a refusal for now, when to retry)."""
    context = {"mode": mode, "error": refusal.message if refusal else "", "username": username}
    if refusal is None:
        return respond.render(request, "account.html", context)
    return respond.render(
        request,
        "account.html",
        context,
        status_code=refusal.status_code,
        headers=retry_headers(refusal),
    )


async def show_register(request: Request) -> Response:
    return _account_form(request, "register")


async def show_login(request: Request) -> Response:
    return _account_form(request, "login")


async def register(request: Request) -> Response:
    form = await auth.password_form(request)
    username, password = str(form.get("username", "")), str(form.get("password", ""))
    try:
        user = await accounts.register(
            state.db(request),
            public=state.hub(request).public,
            username=username,
            password=password,
        )
    except ChatError as exc:
        return _account_form(request, "register", username=username, refusal=exc)
    return await _start_session(request, user)


async def _authenticate(request: Request, username: str, password: str) -> User:
    return await accounts.authenticate(
        state.db(request), username=username, password=password, address=client_address(request)
    )


async def login(request: Request) -> Response:
    form = await auth.password_form(request)
    username = str(form.get("username", ""))
    try:
        user = await _authenticate(request, username, str(form.get("password", "")))
    except ChatError as exc:
        return _account_form(request, "login", username=username, refusal=exc)
    return await _start_session(request, user)


async def logout(request: Request) -> Response:
    await auth.checked_form(request)
    if isinstance(request.user, SignedInUser):
        await _sign_out(request, request.user.claims)
    response = RedirectResponse("/login", status_code=303)
    response.delete_cookie(
        settings.SESSION_COOKIE, httponly=True, samesite="lax", secure=settings.PRODUCTION
    )
    if respond.is_htmx(request):
        response.headers["HX-Redirect"] = "/login"
    return response


async def create_api_token(request: Request) -> Response:
    """POST /api/token: a Bearer token for a username and password (any session cookie is
    ignored, and kept)."""
    form = await auth.password_form(request)
    try:
        user = await _authenticate(
            request, str(form.get("username", "")), str(form.get("password", ""))
        )
    except TooManyAttempts as exc:
        return respond.error(request, exc)
    except ChatError as exc:
        return JSONResponse({"error": exc.message}, status_code=401)
    return JSONResponse(
        {
            "access_token": _issue_token(user),
            "token_type": "bearer",
            "expires_in": settings.TOKEN_LIFETIME_SECS,
        }
    )


async def set_away(request: Request) -> Response:
    """POST /away: the away message (an empty one clears it)."""
    me = signed_in(request)
    form = await auth.checked_form(request)
    given = form.get("away_message")
    away = await accounts.set_away(
        state.db(request), user=me.user, away_message=None if given is None else str(given)
    )
    return respond.changed(request, "/", json={"away_message": away})
