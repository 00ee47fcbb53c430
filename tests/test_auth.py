"""webapp/actions/passwords.py on its own: passwords hash in turns, one per core, no server."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

import pytest

from webapp.actions import passwords as auth
from webapp.errors import Busy

PASSWORD = "correct horse battery"


@contextlib.asynccontextmanager
async def turns_taken(count: int = auth.HASHERS) -> AsyncIterator[None]:
    """Holds `count` hashing turns (all of them, unless told) from other tasks, until the
    block ends."""
    taken, release = asyncio.Semaphore(0), asyncio.Event()

    async def hold() -> None:
        async with auth.hashing_turn():
            taken.release()
            await release.wait()

    holders = [asyncio.create_task(hold()) for _ in range(count)]
    for _ in holders:
        await taken.acquire()
    try:
        yield
    finally:
        release.set()
        await asyncio.gather(*holders)


async def test_a_queued_hash_gets_a_turn_when_one_frees() -> None:
    async with turns_taken():
        queued = [asyncio.create_task(auth.hash_password(PASSWORD)) for _ in range(3)]
        await asyncio.sleep(0)  # they are in the queue
    for hashed in await asyncio.gather(*queued):
        assert await auth.password_matches(hashed, PASSWORD)


async def test_waiting_too_long_for_a_turn_is_busy() -> None:
    async with turns_taken():
        with pytest.raises(Busy) as caught:
            async with auth.hashing_turn(wait=0.01):
                raise AssertionError("got a turn that was taken")
    assert caught.value.status_code == 503
    assert 1 <= caught.value.retry_after <= 60
    assert "busy" in caught.value.message
    hashed = await auth.hash_password(PASSWORD)  # and the turns are free again
    assert await auth.password_matches(hashed, PASSWORD)


async def test_within_a_turn_hashing_uses_it() -> None:
    """A caller holding a turn (sign-in throttling does) hashes in it rather than queue behind
    itself, even while every other turn is taken."""
    hashed = await auth.hash_password(PASSWORD)
    async with auth.hashing_turn(), turns_taken(auth.HASHERS - 1):
        assert await auth.password_matches(hashed, PASSWORD)
        assert not await auth.password_matches(hashed, "wrong password")
        assert not await auth.password_matches(None, PASSWORD)
        with pytest.raises(Busy):  # another task still queues, and gives up
            await asyncio.create_task(_hash_without_waiting())


async def _hash_without_waiting() -> str:
    async with auth.hashing_turn(wait=0.01):
        return await auth.hash_password(PASSWORD)
