"""Passwords: argon2id hashes, worked out on threads that take turns, one per core."""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator, Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from contextvars import ContextVar
from typing import TypeVar

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerifyMismatchError

from webapp.errors import Busy

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
