"""Accounts: registering, signing in (throttled against guessing), signing out, away messages."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import datetime

from bson import ObjectId

from webapp.actions import passwords
from webapp.data import reads, sessions, users
from webapp.data._query import now
from webapp.data.connection import Db
from webapp.data.models import Room, User
from webapp.errors import BadRequest, NameTaken, TooManyAttempts, Unauthorized
from webapp.ops import metrics
from webapp.rules import rates
from webapp.rules.text import check_password, clean_away, clean_username

BAD_CREDENTIALS = "Wrong username or password."


async def register(db: Db, *, public: Room, username: str, password: str) -> User:
    """A new account, with its place in the `public` room (what the room had is history); a
    BadRequest for a bad name or password, NameTaken for a taken name."""
    name = clean_username(username)
    secret = check_password(password)
    if await users.by_name(db, username=name) is not None:
        raise NameTaken()  # found before hashing; the unique index still settles a race
    password_hash = await passwords.hash_password(secret)
    user = await users.create(db, username=name, password_hash=password_hash)
    await reads.start_reading(db, public=public, user=user)
    return user


async def _refuse_if_throttled(
    db: Db, keys: tuple[str, str], *, reservation: ObjectId | None = None
) -> None:
    """TooManyAttempts when a key has its limit of failures in the window already, not
    counting this attempt's own reservation."""
    at = now()
    limits = (rates.MAX_FAILURES_PER_NAME, rates.MAX_FAILURES_PER_ADDRESS)
    for key, limit in zip(keys, limits, strict=True):
        failures = await sessions.recent_login_failures(db, key=key)
        others = [failure.at for failure in failures if failure.id != reservation]
        if len(others) >= limit:
            metrics.REFUSED.labels("sign_in").inc()
            raise TooManyAttempts(rates.retry_after(others[-limit], at))


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


async def authenticate(db: Db, *, username: str, password: str, address: str) -> User:
    """The user these credentials name; Unauthorized, TooManyAttempts or Busy otherwise.

    A password is checked only once its attempt is counted as failed (a reservation, made in
    the hashing turn that checks it) and the count is within the limits; a right password
    takes the count back. However many guesses arrive at once, in however many processes, the
    k-th reservation sees at least k, so no more than the limit are ever checked.
    """
    keys = rates.throttle_keys(username, address)
    async with _one_at_a_time(keys[0]):
        await _refuse_if_throttled(db, keys)  # before queuing for a turn
        user = await users.by_name(db, username=username)
        async with passwords.hashing_turn():
            reservation = await sessions.reserve_login_failure(db, keys=keys)
            try:
                await _refuse_if_throttled(db, keys, reservation=reservation)
            except TooManyAttempts:
                await sessions.forget_login_failure(db, failure_id=reservation)
                raise
            if not await passwords.password_matches(user.password_hash if user else None, password):
                raise Unauthorized(BAD_CREDENTIALS)  # the reservation stays: it was a failure
            assert user is not None
            await sessions.clear_failures(db, key=keys[0])  # the reservation among them
    if passwords.needs_rehash(user.password_hash):
        new_hash = await passwords.hash_password(password)
        await users.set_password_hash(db, user=user, password_hash=new_hash)
    return user


async def sign_out(db: Db, *, jti: str, expires_at: datetime) -> None:
    """Ends a session everywhere, its open streams included (through the revocations' feed)."""
    await sessions.revoke(db, jti=jti, expires_at=expires_at)


async def set_away(db: Db, *, user: User, away_message: str | None) -> str:
    """Sets (an empty one clears) the away message; BadRequest when there is none at all."""
    if away_message is None:
        raise BadRequest("Send an away message (an empty one clears it).")
    away = clean_away(away_message)
    await users.set_away(db, user=user, away_message=away)
    return away
