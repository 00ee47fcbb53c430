"""Registering, signing in and out, and API tokens."""

from __future__ import annotations

from datetime import timedelta

from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response

from webapp import auth, chat, settings, store, tokens
from webapp.errors import ChatError, NameTaken, TooManyAttempts, Unauthorized
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
        await store.revoke_token(
            request.app.state.db.engine, jti=old.jti, expires_at=old.expires_at
        )
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
    headers = {"Retry-After": str(exc.retry_after)} if isinstance(exc, TooManyAttempts) else None
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
    engine = request.app.state.db.engine
    try:
        name = chat.clean_username(username)
        password = chat.check_password(str(form.get("password", "")))
        if await store.get_user_by_name(engine, username=name) is not None:
            raise NameTaken()  # found before hashing; the unique index still settles a race
        password_hash = await auth.hash_password(password)
        user = await store.create_user(engine, username=name, password_hash=password_hash)
    except ChatError as exc:
        return _refused(request, "register", exc, username)
    return await _start_session(request, user)


async def _authenticate(request: Request, username: str, password: str) -> User:
    """The user these credentials name; Unauthorized or TooManyAttempts otherwise."""
    engine = request.app.state.db.engine
    keys = chat.throttle_keys(username, _client_address(request))
    limits = (chat.MAX_FAILURES_PER_NAME, chat.MAX_FAILURES_PER_ADDRESS)
    now = store.now()
    for key, limit in zip(keys, limits, strict=True):
        failures = await store.recent_failures(engine, key=key)
        if len(failures) >= limit:
            raise TooManyAttempts(chat.retry_after(failures[-limit], now))
    user = await store.get_user_by_name(engine, username=username)
    if not await auth.password_matches(user.password_hash if user else None, password):
        await store.record_login_failure(engine, keys=keys)
        raise Unauthorized(BAD_CREDENTIALS)
    assert user is not None
    await store.clear_failures(engine, key=keys[0])
    if auth.needs_rehash(user.password_hash):
        await store.set_password_hash(
            engine, user=user, password_hash=await auth.hash_password(password)
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
        await store.revoke_token(
            request.app.state.db.engine, jti=claims.jti, expires_at=claims.expires_at
        )
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
