"""Registering, signing in and out, and API tokens."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta

from bson import ObjectId
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response

from webapp import auth, chat, settings, store, tokens
from webapp.database import Db
from webapp.errors import ChatError, NameTaken, TooManyAttempts, Unauthorized, retry_headers
from webapp.models import User
from webapp.templating import templates

BAD_CREDENTIALS = "Wrong username or password."


def _client_address(request: Request) -> str:
    """The address sign-in throttling counts against: the peer, or what our own proxy saw."""
    hops = settings.TRUSTED_PROXY_HOPS
    forwarded = [h.strip() for h in request.headers.get("x-forwarded-for", "").split(",")]
    if hops > 0 and len(forwarded) >= hops and forwarded[-hops]:
        return forwarded[-hops]  # entries further left were written by the client
    return request.client.host if request.client else "unknown"


def _issue_token(user: User) -> tuple[str, tokens.SessionClaims]:
    return tokens.issue_session_token(
        str(user.id),
        secret=str(settings.SECRET_KEY),
        lifetime=timedelta(seconds=settings.TOKEN_LIFETIME_SECS),
    )


async def _start_session(request: Request, user: User) -> Response:
    """Signs the browser in as user; the session its cookie held before is revoked."""
    old = auth.cookie_session(request)
    if old is not None:
        await store.revoke_token(request.app.state.db, jti=old.jti, expires_at=old.expires_at)
    token, _ = _issue_token(user)
    response = RedirectResponse("/", status_code=303)
    response.set_cookie(
        settings.SESSION_COOKIE,
        token,
        max_age=settings.TOKEN_LIFETIME_SECS,
        httponly=True,
        samesite="lax",
        secure=settings.PRODUCTION,
    )
    return response


def _account_form(
    request: Request,
    mode: str,
    *,
    error: str = "",
    username: str = "",
    status_code: int = 200,
    headers: dict[str, str] | None = None,
) -> Response:
    return templates.TemplateResponse(
        request,
        "account.html",
        {"mode": mode, "error": error, "username": username},
        status_code=status_code,
        headers=headers,
    )


def _refused(request: Request, mode: str, exc: ChatError, username: str) -> Response:
    """The form again, saying what was wrong (and, for a refusal for now, when to retry)."""
    headers = retry_headers(exc)
    return _account_form(
        request,
        mode,
        error=exc.message,
        username=username,
        status_code=exc.status_code,
        headers=headers,
    )


async def show_register(request: Request) -> Response:
    return _account_form(request, "register")


async def show_login(request: Request) -> Response:
    return _account_form(request, "login")


async def register(request: Request) -> Response:
    form = await auth.password_form(request)
    username = str(form.get("username", ""))
    db = request.app.state.db
    try:
        name = chat.clean_username(username)
        password = chat.check_password(str(form.get("password", "")))
        if await store.get_user_by_name(db, username=name) is not None:
            raise NameTaken()  # found before hashing; the unique index still settles a race
        password_hash = await auth.hash_password(password)
        user = await store.create_user(db, username=name, password_hash=password_hash)
    except ChatError as exc:
        return _refused(request, "register", exc, username)
    return await _start_session(request, user)


async def _refuse_if_throttled(
    db: Db, keys: tuple[str, str], *, reservation: ObjectId | None = None
) -> None:
    """TooManyAttempts when a key has its limit of failures in the window already, not
    counting this attempt's own reservation."""
    now = store.now()
    limits = (chat.MAX_FAILURES_PER_NAME, chat.MAX_FAILURES_PER_ADDRESS)
    for key, limit in zip(keys, limits, strict=True):
        failures = await store.recent_login_failures(db, key=key)
        others = [failure.at for failure in failures if failure.id != reservation]
        if len(others) >= limit:
            raise TooManyAttempts(chat.retry_after(others[-limit], now))


_in_line: dict[str, asyncio.Lock] = {}
_waiting: Counter[str] = Counter()


@asynccontextmanager
async def _one_at_a_time(key: str) -> AsyncIterator[None]:
    """Sign-ins with one throttle key take turns in this process, so that two at once cannot
    count each other's reservation and both be refused. (Across processes the count alone
    keeps the limit.) The lock lives while anyone holds or awaits it."""
    lock = _in_line.setdefault(key, asyncio.Lock())
    _waiting[key] += 1
    try:
        async with lock:
            yield
    finally:
        _waiting[key] -= 1
        if not _waiting[key]:
            del _waiting[key], _in_line[key]


async def _authenticate(request: Request, username: str, password: str) -> User:
    """The user these credentials name; Unauthorized, TooManyAttempts or Busy otherwise.

    A password is checked only once its attempt is counted as failed (a reservation, made in
    the hashing turn that checks it) and the count is within the limits; a right password
    takes the count back. However many guesses arrive at once, in however many processes, the
    k-th reservation sees at least k, so no more than the limit are ever checked.
    """
    db = request.app.state.db
    keys = chat.throttle_keys(username, _client_address(request))
    async with _one_at_a_time(keys[0]):
        await _refuse_if_throttled(db, keys)  # before queuing for a turn
        user = await store.get_user_by_name(db, username=username)
        async with auth.hashing_turn():
            reservation = await store.reserve_login_failure(db, keys=keys)
            try:
                await _refuse_if_throttled(db, keys, reservation=reservation)
            except TooManyAttempts:
                await store.forget_login_failure(db, failure_id=reservation)
                raise
            if not await auth.password_matches(user.password_hash if user else None, password):
                raise Unauthorized(BAD_CREDENTIALS)  # the reservation stays: it was a failure
            assert user is not None
            await store.clear_failures(db, key=keys[0])  # the reservation among them
    if auth.needs_rehash(user.password_hash):
        await store.set_password_hash(
            db, user=user, password_hash=await auth.hash_password(password)
        )
    return user


async def login(request: Request) -> Response:
    form = await auth.password_form(request)
    username = str(form.get("username", ""))
    try:
        user = await _authenticate(request, username, str(form.get("password", "")))
    except ChatError as exc:
        return _refused(request, "login", exc, username)
    return await _start_session(request, user)


async def logout(request: Request) -> Response:
    await auth.checked_form(request)
    if isinstance(request.user, auth.SignedInUser):
        claims = request.user.claims
        await store.revoke_token(request.app.state.db, jti=claims.jti, expires_at=claims.expires_at)
    response = RedirectResponse("/login", status_code=303)
    response.delete_cookie(
        settings.SESSION_COOKIE, httponly=True, samesite="lax", secure=settings.PRODUCTION
    )
    if request.headers.get("hx-request"):
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
        return JSONResponse(
            {"error": exc.message},
            status_code=exc.status_code,
            headers={"Retry-After": str(exc.retry_after)},
        )
    except ChatError as exc:
        return JSONResponse({"error": exc.message}, status_code=401)
    token, _ = _issue_token(user)
    return JSONResponse(
        {"access_token": token, "token_type": "bearer", "expires_in": settings.TOKEN_LIFETIME_SECS}
    )
