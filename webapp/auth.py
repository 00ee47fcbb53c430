"""Who is asking: the session token from the cookie or a Bearer header, passwords and CSRF.

A request is authenticated by a valid, unrevoked JWT of a user who still exists; anything else
(tampered, expired, revoked, wrong algorithm) leaves it anonymous. A cookie-authenticated
request that changes state must also carry the session's CSRF token; a Bearer one needs none,
since no browser sends that header on its own. The forms that authenticate by password
(password_form) ignore the session cookie, and so need no CSRF token either.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator, Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from functools import cached_property
from typing import Literal, TypeVar

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerifyMismatchError
from starlette.authentication import AuthCredentials, AuthenticationBackend, BaseUser
from starlette.datastructures import FormData
from starlette.requests import HTTPConnection, Request

from webapp import settings, store, tokens
from webapp.errors import Busy, CSRFFailed, Unauthorized
from webapp.forms import read_form
from webapp.models import User

# argon2id with OWASP's recommended floor (19 MiB, 2 passes, 1 lane): about 40 ms a hash here,
# so hundreds of sign-ins a minute fit on two cores. Older hashes are redone at sign-in.
_hasher = PasswordHasher(time_cost=2, memory_cost=19 * 1024, parallelism=1)
_DUMMY_HASH = _hasher.hash("not a real password")

# Hashes take turns, one per core, on threads of their own: a burst of dozens at once would
# take memory by the gigabyte and finish no sooner. A request that has queued for QUEUE_SECS
# is answered Busy.
HASHERS = os.cpu_count() or 1
QUEUE_SECS = 10.0
BUSY_RETRY_SECS = 5
_hashing_threads = ThreadPoolExecutor(max_workers=HASHERS, thread_name_prefix="argon2")
_turns = asyncio.Semaphore(HASHERS)
_turn_holder: ContextVar[asyncio.Task[object] | None] = ContextVar("turn_holder", default=None)

T = TypeVar("T")


@dataclass
class SignedInUser(BaseUser):
    user: User
    claims: tokens.SessionClaims
    via: Literal["cookie", "bearer"]

    @property
    def is_authenticated(self) -> bool:
        return True

    @property
    def display_name(self) -> str:
        return self.user.username

    @property
    def identity(self) -> str:
        return str(self.user.id)

    @cached_property
    def csrf_token(self) -> str:
        return tokens.issue_csrf_token(self.claims.jti, secret=str(settings.SECRET_KEY))


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
        if await store.is_revoked(conn.app.state.db, jti=claims.jti):  # exact, in every process
            return None
        user = await conn.app.state.hub.user(claims.user_id)
        if user is None:
            return None
        return AuthCredentials(["authenticated"]), SignedInUser(user, claims, via)


def signed_in(request: HTTPConnection) -> SignedInUser:
    """The signed-in user, or Unauthorized."""
    if not isinstance(request.user, SignedInUser):
        raise Unauthorized()
    return request.user


@asynccontextmanager
async def hashing_turn(wait: float = QUEUE_SECS) -> AsyncIterator[None]:
    """A turn at hashing, after those queued before it; Busy once `wait` seconds have passed.

    Inside a turn, hash_password and password_matches use it rather than queue again, so a
    caller can hold one across the steps that must not outnumber the cores (sign-in throttling).
    The turn is the task's: another task started meanwhile queues for its own.
    """
    task = asyncio.current_task()
    if task is not None and _turn_holder.get() is task:
        yield
        return
    try:
        async with asyncio.timeout(wait):
            await _turns.acquire()
    except TimeoutError:
        raise Busy(BUSY_RETRY_SECS) from None
    marker = _turn_holder.set(task)
    try:
        yield
    finally:
        _turn_holder.reset(marker)
        _turns.release()


async def _in_a_turn(work: Callable[[], T]) -> T:
    async with hashing_turn():
        return await asyncio.get_running_loop().run_in_executor(_hashing_threads, work)


async def hash_password(password: str) -> str:
    return await _in_a_turn(lambda: _hasher.hash(password))


async def password_matches(password_hash: str | None, password: str) -> bool:
    """Checks the password; with no user, checks a dummy hash so both take as long."""

    def verify() -> bool:
        try:
            return _hasher.verify(password_hash or _DUMMY_HASH, password) and bool(password_hash)
        except (VerifyMismatchError, InvalidHashError):
            return False

    return await _in_a_turn(verify)


def needs_rehash(password_hash: str) -> bool:
    return _hasher.check_needs_rehash(password_hash)


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
