"""Big bursts a stream must take at once: a slow presence refresh goes out in slices
(live/people.py), and what a stream was sent while it was being caught up counts like its
replay, not against its backlog limit (live/streams.py)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from bson import ObjectId

import webapp.app  # noqa: F401 (binds the routes that templates link to)
from tests.support import next_chunk, parse_events
from webapp import settings
from webapp.data.models import User
from webapp.live import people as people_module
from webapp.live import wire
from webapp.live.events import PersonEvent
from webapp.live.people import People, _slices
from webapp.live.registry import Registry
from webapp.live.streams import PENDING_LIMIT_BYTES, Stream


@pytest.mark.parametrize(
    ("sizes", "limit", "expected"),
    [
        ([], 10, [[]]),
        ([3, 3, 3], 10, [[3, 3, 3]]),
        ([4, 4, 4], 10, [[4, 4], [4]]),
        ([10, 1], 10, [[10], [1]]),
        ([12, 1, 1], 10, [[12], [1, 1]]),  # an entry bigger than a slice goes alone
        ([1, 12, 1], 10, [[1], [12], [1]]),
    ],
)
def test_slices_keep_the_order_and_the_size(
    monkeypatch: pytest.MonkeyPatch, sizes: list[int], limit: int, expected: list[list[int]]
) -> None:
    monkeypatch.setattr(people_module, "REFRESH_SLICE_BYTES", limit)
    entries = [bytes([65 + n]) * size for n, size in enumerate(sizes)]
    slices = _slices(entries)
    assert [[len(entry) for entry in run] for run in slices] == expected
    assert [entry for run in slices for entry in run] == entries


def user(n: int) -> User:
    name = f"person{n:04d}"
    return User(
        id=ObjectId(),
        username=name,
        username_key=name,
        password_hash="x",
        created_at=datetime.now(UTC),
    )


async def test_a_big_refresh_reaches_every_stream_in_slices(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Two thousand people held back (past LIVE_PRESENCE_LIMIT, after a restart): a stream gets
    them all, once and in order, in pieces no bigger than a slice, and is never cut off."""
    monkeypatch.setattr(settings, "PRESENCE_REFRESH_SECS", 0.0)
    monkeypatch.setattr(people_module, "BATCH_SECS", 0.0)
    streams = Registry()
    stream = Stream("reader", "session")
    sink = Socket()
    stream.transport = sink  # type: ignore[assignment]
    stream.release(None)
    streams.add(stream)
    people = People(db=None, streams=streams, directory=None)  # type: ignore[arg-type]
    crowd = [user(n) for n in range(2000)]
    people._deferred = {str(u.id): PersonEvent(u, online=True) for u in crowd}
    await people._refresh()
    entry = len(wire.encode_event(PersonEvent(crowd[0], online=True)).shared)
    assert len(sink.chunks) > 1
    assert max(map(len, sink.chunks)) <= people_module.REFRESH_SLICE_BYTES + entry + 20
    names = [
        event.data.split('data-username="')[1].split('"')[0]
        for event in parse_events(b"".join(map(unframed, sink.chunks)))
    ]
    assert names == [u.username for u in crowd]
    assert not stream.closed
    assert len(people.recent()) == len(sink.chunks)  # a stream opened now gets them too


class Socket:
    """A connection's transport that takes every byte at once, as a quick reader's does."""

    def __init__(self) -> None:
        self.chunks: list[bytes] = []

    def is_closing(self) -> bool:
        return False

    def get_write_buffer_size(self) -> int:
        return 0

    def write(self, chunk: bytes) -> None:
        self.chunks.append(chunk)


def unframed(chunk: bytes) -> bytes:
    """A chunk of a chunked body's data."""
    size, _, rest = chunk.partition(b"\r\n")
    assert rest.endswith(b"\r\n") and len(rest) == int(size, 16) + 2
    return rest[:-2]


async def test_what_was_held_while_catching_up_does_not_put_a_stream_behind() -> None:
    """More than a stream's whole backlog arrived while it was being caught up (a refresh
    announced lately, live events): it goes out after the replay, and the stream stays."""
    stream = Stream("reader", "session")
    held = [b"x" * 100_000 for _ in range(PENDING_LIMIT_BYTES // 100_000 + 2)]
    for data in held:
        stream.offer(data)
    stream.release(None, first=[wire.LIVE])
    assert not stream.closed
    assert await next_chunk(stream) == b"".join([wire.LIVE, *held])
    # Once it is out, the limit is the usual one again: live offers beyond it cut it off.
    stream.offer(b"y" * (PENDING_LIMIT_BYTES + 1))
    assert stream.closed
