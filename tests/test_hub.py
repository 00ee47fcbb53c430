"""The hub: its events and feeds, routing, stream buffers and ring; the embedded-server
workarounds."""

from __future__ import annotations

import asyncio
import socket
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import pytest
from bson import ObjectId
from pymongo import AsyncMongoClient

import webapp.app  # noqa: F401 (binds the routes that templates link to)
from tests.html import Element, fragment
from tests.support import next_chunk, parse_events, unique_name
from webapp.actions.reading import ReadState
from webapp.data import messages as message_data
from webapp.data import nx_compat, rooms, users
from webapp.data import presence as presence_queries
from webapp.data.connection import open_database
from webapp.data.models import Membership, Message, Presence, RevokedToken, Room, Typing, User
from webapp.live import feeds, wire
from webapp.live import presence as live_presence
from webapp.live.events import (
    Audience,
    Event,
    MemberEvent,
    MessageEvent,
    PersonEvent,
    ReadEvent,
    RoomEvent,
    TypingEvent,
)
from webapp.live.registry import Registry
from webapp.live.ring import Ring
from webapp.live.streams import PENDING_LIMIT_BYTES, Stream
from webapp.rules import formatting

NOW = datetime(2026, 1, 1, tzinfo=UTC)
ALICE, BOB, CAROL = "a" * 24, "b" * 24, "c" * 24
PUBLIC = Room(kind="public", key="public", name="Public room", created_at=NOW)
DM = Room(kind="dm", key=f"dm:{ALICE}:{BOB}", members=[ALICE, BOB], created_at=NOW)
NOTES = Room(kind="dm", key=f"dm:{ALICE}:{ALICE}", members=[ALICE], created_at=NOW)
GROUP = Room(kind="group", key="g", name="Plans", owner_id=ALICE, created_at=NOW)


def message(room: Room = PUBLIC, body: str = "hi", sender: str = ALICE) -> Message:
    return Message(
        room_id=str(room.id),
        seq=1,
        sender_id=sender,
        sender_name="alice",
        body=body,
        created_at=NOW,
    )


def typing(room: Room) -> Typing:
    return Typing(
        id=f"{ALICE}:{room.id}", user_id=ALICE, username="alice", room_id=str(room.id), at=NOW
    )


USER = User(username="alice", username_key="alice", password_hash="x", created_at=NOW)
BOB_USER = User(
    id=ObjectId(BOB), username="bob", username_key="bob", password_hash="x", created_at=NOW
)
READ = ReadState(GROUP.key, 3, 1, 4)


@pytest.mark.parametrize(
    ("event", "members", "expected"),
    [
        (MessageEvent("nx:1", message(), PUBLIC), [], Audience(None)),
        (MessageEvent("nx:1", message(DM), DM), [ALICE, BOB], Audience(frozenset({ALICE, BOB}))),
        (MessageEvent("nx:1", message(NOTES), NOTES), [ALICE], Audience(frozenset({ALICE}))),
        # A group room's message reaches its members as they are now, whoever posted it.
        (
            MessageEvent("nx:1", message(GROUP), GROUP),
            [ALICE, CAROL],
            Audience(frozenset({ALICE, CAROL})),
        ),
        (MessageEvent("nx:1", message(GROUP), GROUP), [], Audience(frozenset())),
        (
            TypingEvent(typing(PUBLIC), PUBLIC),
            [],
            Audience(None, excluding=ALICE),
        ),  # never the typist
        (
            TypingEvent(typing(DM), DM),
            [ALICE, BOB],
            Audience(frozenset({ALICE, BOB}), excluding=ALICE),
        ),
        (
            TypingEvent(typing(GROUP), GROUP),
            [ALICE, BOB],
            Audience(frozenset({ALICE, BOB}), excluding=ALICE),
        ),
        (ReadEvent(BOB, READ), [ALICE, BOB], Audience(frozenset({BOB}))),  # the reader's own tabs
        (RoomEvent(GROUP), [ALICE, BOB], Audience(frozenset({ALICE, BOB}))),  # renamed
        (RoomEvent(GROUP, to=CAROL), [ALICE, CAROL], Audience(frozenset({CAROL}))),  # just added
        # Whoever joined or left hears of it, with the members.
        (
            MemberEvent(GROUP, CAROL, "carol", joined=False),
            [ALICE],
            Audience(frozenset({ALICE, CAROL})),
        ),
        (
            MemberEvent(GROUP, CAROL, "carol", joined=True),
            [ALICE, CAROL],
            Audience(frozenset({ALICE, CAROL})),
        ),
        (PersonEvent(USER, online=True), [], Audience(None)),
    ],
)
def test_audience(event: Event, members: list[str], expected: Audience) -> None:
    assert event.audience(members) == expected


@pytest.mark.parametrize(
    ("event", "room"),
    [
        (MessageEvent("nx:1", message(GROUP), GROUP), GROUP),
        (TypingEvent(typing(GROUP), GROUP), GROUP),
        (RoomEvent(GROUP), GROUP),
        (MemberEvent(GROUP, BOB, "bob", joined=True), GROUP),
        (RoomEvent(GROUP, to=BOB), None),  # to one person: nobody else is asked for
        (ReadEvent(BOB, READ), None),
        (PersonEvent(USER, online=True), None),
    ],
)
def test_members_are_asked_for_only_when_the_audience_needs_them(
    event: Event, room: Room | None
) -> None:
    assert event.room_of_members() is room


def change(operation: str, key: Any, resume: str = "nx:7") -> dict[str, Any]:
    return {"_id": {"_data": resume}, "operationType": operation, "documentKey": {"_id": key}}


REVOKED = RevokedToken(jti="j1", expires_at=NOW)
POSTED = message()
TYPING = typing(DM)
MEMBERSHIP = f"{GROUP.id}:{BOB}"
TAB = f"{BOB}:1f"  # a presence
SEVEN = ("nx:7", POSTED, PUBLIC)  # a message event's id, message and room


@dataclass
class Recorded:
    """What the feeds' rows did with a change: the hub's parts, standing in for the hub, with
    the rooms and users it has in memory."""

    delivered: list[Event] = field(default_factory=list)
    said: list[tuple[Any, ...]] = field(default_factory=list)
    ring: Ring = field(default_factory=Ring)

    def __post_init__(self) -> None:
        rooms = {str(r.id): r for r in (PUBLIC, DM, GROUP)}
        people = {BOB: BOB_USER}
        record = self.said.append

        class Directory:
            async def room(self, room_id: str) -> Room | None:
                return rooms.get(room_id)

            async def user(self, user_id: str) -> User | None:
                return people.get(user_id)

            def user_changed(self, user: User) -> None:
                record(("user cached", user))

            def room_changed(self, room: Room) -> None:
                record(("room cached", room))

        class Streams:
            def has_user(self, user_id: str) -> bool:
                return False

            def signed_out(self, jti: str) -> None:
                record(("signed out", jti))

        class Presence:
            def changed(self, presence_id: str, opened: bool) -> None:
                record(("presence", presence_id, opened))

        class People:
            def presence_changed(self, user_id: str) -> None:
                record(("came or went", user_id))

            def user_changed(self, user: User) -> None:
                record(("away", user))

        class Revocations:
            def add(self, jti: str, expires_at: datetime) -> None:
                record(("revoked", jti))

        self.directory, self.streams = Directory(), Streams()
        self.revocations = Revocations()
        self.presence, self.people = Presence(), People()

    async def deliver(self, event: Event) -> None:
        self.delivered.append(event)


@pytest.mark.parametrize(
    ("model", "operation", "key", "doc", "delivered", "said"),
    [
        (Presence, "insert", TAB, None, [], [("presence", TAB, True), ("came or went", BOB)]),
        (Presence, "delete", TAB, None, [], [("presence", TAB, False), ("came or went", BOB)]),
        (User, "update", ObjectId(), USER, [], [("user cached", USER), ("away", USER)]),
        (User, "update", ObjectId(), None, [], []),  # gone before it was loaded
        (
            Membership, "insert", MEMBERSHIP, None,
            [RoomEvent(GROUP, to=BOB), MemberEvent(GROUP, BOB, "bob", joined=True)], [],
        ),
        (Membership, "delete", MEMBERSHIP, None, [MemberEvent(GROUP, BOB, "bob", False)], []),
        # A read position moved: told only where the reader has a stream (here, none).
        (Membership, "update", MEMBERSHIP, None, [], []),
        (Membership, "replace", MEMBERSHIP, None, [], []),
        (Membership, "insert", f"{DM.id}:{BOB}", None, [], []),  # made with the DM
        (Room, "update", GROUP.id, GROUP, [RoomEvent(GROUP)], [("room cached", GROUP)]),
        (Room, "update", DM.id, DM, [], [("room cached", DM)]),
        (Room, "update", GROUP.id, None, [], []),
        (Typing, "update", TYPING.id, TYPING, [TypingEvent(TYPING, DM)], []),
        (RevokedToken, "insert", ObjectId(), REVOKED, [], [("revoked", "j1"), ("signed out", "j1")]),  # noqa: E501
        (Message, "insert", POSTED.id, POSTED, [MessageEvent(*SEVEN, posted=True)], []),
        (Message, "update", POSTED.id, POSTED, [MessageEvent(*SEVEN)], []),  # not posted now
        (Message, "insert", ObjectId(), None, [], []),  # deleted before it was loaded
    ],
)  # fmt: skip
async def test_feeds_turn_changes_into_events(
    model: type, operation: str, key: Any, doc: Any, delivered: list[Event], said: list[Any]
) -> None:
    feed = next(f for f in feeds.FEEDS if f.model is model)
    assert operation in feed.operations
    hub = Recorded()
    await feed.on_change(hub, change(operation, key), doc)  # type: ignore[arg-type]
    assert (hub.delivered, hub.said) == (delivered, said)
    if model is Message and doc is not None:  # kept for replay too
        assert [event for _, event in hub.ring.after((0, ""))] == delivered


def test_heartbeats_never_travel() -> None:
    presence = next(f for f in feeds.FEEDS if f.model is Presence)
    assert presence.pipeline == [{"$match": {"operationType": {"$in": ["insert", "delete"]}}}]


def key(n: int) -> tuple[int, str]:
    return nx_compat.token_sort_key(f"nx:{n}")


async def test_stream_writes_what_is_offered_in_order_as_one_chunk() -> None:
    stream = Stream(ALICE)
    stream.release(None)
    for n in range(3):
        stream.offer(f"e{n};".encode(), key(n))
    assert await next_chunk(stream) == b"e0;e1;e2;"


async def test_stream_waits_for_the_next_offer_and_ends_when_closed() -> None:
    stream = Stream(ALICE)
    stream.release(None)
    waiting = asyncio.create_task(next_chunk(stream))
    await asyncio.sleep(0)
    assert not waiting.done()
    stream.offer(b"one")
    assert await waiting == b"one"
    waiting = asyncio.create_task(next_chunk(stream))
    await asyncio.sleep(0)
    stream.close()
    assert await waiting is None
    stream.offer(b"late")
    assert await next_chunk(stream) is None


async def test_a_stream_is_waited_on_through_a_future_that_is_done_once_there_is_something() -> (
    None
):
    stream = Stream(ALICE)
    stream.release(None)
    waiting = stream.offered()
    assert isinstance(waiting, asyncio.Future) and not waiting.done()
    assert stream.offered() is waiting and stream.take() == b""
    stream.offer(b"one")
    assert waiting.done() and stream.offered().done()  # there is something: no waiting
    assert stream.take() == b"one" and not stream.offered().done()
    stream.close()
    assert stream.offered().done() and stream.take() is None


async def test_a_stream_that_falls_behind_is_cut_off_and_its_memory_released() -> None:
    stream = Stream(ALICE)
    stream.release(None)
    chunk = b"x" * 1024
    for _ in range(PENDING_LIMIT_BYTES // len(chunk) + 1):
        stream.offer(chunk)
    assert stream.closed
    assert await next_chunk(stream) is None
    assert not stream._pending


async def test_live_events_wait_for_the_replay_and_are_never_doubled() -> None:
    stream = Stream(ALICE)  # holds live events until the replay is written
    for n in (4, 5, 6):
        stream.offer(f"live{n};".encode(), key(n))
    stream.release(key(5), first=[b"replay4;", b"replay5;"])  # live4 and live5 replayed already
    stream.offer(b"live7;", key(7))
    assert await next_chunk(stream) == b"replay4;replay5;live6;live7;"


def test_ring_replays_after_a_cursor_it_covers() -> None:
    ring = Ring(size=3)
    ring.begin(key(10))
    first, second = message(body="one"), message(body="two")
    ring.add(key(11), MessageEvent("nx:11", first, PUBLIC))
    ring.add(key(12), MessageEvent("nx:12", second, PUBLIC))
    edited = first.model_copy(update={"body": "one, edited"})
    ring.add(key(13), MessageEvent("nx:13", edited, PUBLIC))
    assert not ring.covers(key(9))
    replayed = ring.after(key(10))
    assert [event.id for _, event in replayed] == ["nx:11", "nx:12", "nx:13"]
    # Each replays the message as it is now, as a replay from the database does.
    assert [event.message.body for _, event in replayed] == ["one, edited", "two", "one, edited"]
    assert ring.after(key(13)) == []
    ring.add(key(14), MessageEvent("nx:14", message(body="three"), PUBLIC))
    assert ring.start == key(11)  # the oldest fell out: cursors before it replay elsewhere
    assert not ring.covers(key(10)) and ring.covers(key(11))


def the_fragment(raw: bytes, name: str) -> Element:
    """The markup of the one event in these bytes of an event stream, parsed."""
    [event] = parse_events(raw)
    assert event.event == name
    return fragment(event.data)


def remove_buttons(entry: Element) -> list[str]:
    return [b.get("aria-label") for b in entry.find_all("button") if "Remove" in b.text]


def test_a_message_event_is_compact_and_its_code_block_keeps_its_lines() -> None:
    """The templates' own indentation and line breaks are not sent (each line of an event
    costs a "data: " prefix); what the message says is sent as it is."""
    body = "see:\n\n```\ndef f():\n    return 1\n```"
    rendered = formatting.render(body)
    posted = message(PUBLIC, body).model_copy(
        update={"html": rendered.html, "plain": rendered.plain}
    )
    event = parse_events(wire.encode_event(MessageEvent("nx:5", posted, PUBLIC)).shared)[0]
    lines = event.data.splitlines()
    assert [line for line in lines if line != line.lstrip()] == ["    return 1"]
    assert len(lines) == rendered.html.count("\n") + 1  # the message's line breaks, no more
    assert "<pre><code>def f():\n    return 1\n</code></pre>" in event.data


def test_a_message_is_encoded_once_per_audience() -> None:
    posted = message(DM, "<b>hello</b>")
    encoded = wire.encode_event(MessageEvent("nx:5", posted, DM))
    assert encoded.for_user(BOB) == (encoded.shared, encoded.shared_chunk)
    assert encoded.for_user(BOB)[1] is encoded.for_user(CAROL)[1]  # framed once, for both
    assert encoded.for_user(ALICE) == (encoded.own, encoded.own_chunk)
    assert b"id: nx:5\r\nevent: message\r\n" in encoded.shared
    own, shared = (the_fragment(variant, "message") for variant in (encoded.own, encoded.shared))
    for article in (own, shared):
        assert article.one(class_="body").raw_text == "<b>hello</b>"  # text, not markup
        assert article.find_all("b") == []
    assert own.by_text("Edit", "button") and not shared.by_text("Edit", "button")
    for variant in (encoded.own, encoded.shared):
        assert b"csrf_token" not in variant  # shared fragments carry no session


def test_a_member_entry_has_remove_buttons_in_the_owners_copy_only() -> None:
    encoded = wire.encode_event(MemberEvent(GROUP, BOB, "bob", joined=True))
    assert encoded.for_user(ALICE)[0] is encoded.own  # Alice owns the room
    assert encoded.for_user(BOB)[0] is encoded.shared
    own, shared = (the_fragment(variant, "member") for variant in (encoded.own, encoded.shared))
    assert remove_buttons(own) == ["Remove bob"] and remove_buttons(shared) == []
    assert not shared.has("data-left")
    left = wire.encode_event(MemberEvent(GROUP, BOB, "bob", joined=False))
    assert the_fragment(left.shared, "member").has("data-left")
    assert remove_buttons(the_fragment(left.own, "member")) == []
    for variant in (encoded.own, encoded.shared):
        assert b"csrf_token" not in variant


@pytest.mark.parametrize(
    ("earlier", "later"),
    [("nx:9", "nx:10"), ("nx:99", "nx:1000"), ("8200000001", "8200000002"), ("82AB", "82AC")],
)
def test_tokens_sort_in_commit_order(earlier: str, later: str) -> None:
    assert nx_compat.token_sort_key(earlier) < nx_compat.token_sort_key(later)


@pytest.mark.parametrize(
    ("cursor", "position", "unusable"),
    [
        ("nx:5", "nx:10", False),
        ("nx:10", "nx:10", False),
        ("nx:11", "nx:10", True),  # from a database that was reset
        ("82AB", "nx:10", True),  # not a token of this server
        ("82AB", "82FF", False),  # MongoDB judges its own tokens
        ("nx:3", "", False),
    ],
)
def test_cannot_replay(cursor: str, position: str, unusable: bool) -> None:
    assert nx_compat.cannot_replay(cursor, position) is unusable


async def settle() -> None:
    """Lets every task that is ready run (a woken wait ends within a few turns of the loop)."""
    for _ in range(10):
        await asyncio.sleep(0)


async def test_idle_pacer_pauses_longer_while_idle_and_wakes_on_write() -> None:
    """Counted in pauses, not timed: the schedule's pauses are made so short or so long that
    only whether a pause happened, and which one, can show."""
    pacer = nx_compat.IdlePacer(await_secs=1.0, collection="message")
    pauses = nx_compat.IDLE_PAUSES_SECS
    assert pacer._pauses == pauses
    assert list(pauses) == sorted(set(pauses))  # longer and longer while nothing happens
    pacer._pauses = (0.0, 3600.0)  # the first quick empty batch: none; later ones: an hour
    await asyncio.wait_for(pacer.pause_after_empty_batch(waited_secs=0.0), timeout=10)
    pause = asyncio.create_task(pacer.pause_after_empty_batch(waited_secs=0.0))
    await settle()
    assert not pause.done()  # the second pauses (for the hour)
    # A write to its collection ends the pause at once, however long it would have been;
    # a write to another collection does not.
    nx_compat.wake_on_write.wake("presence")
    await settle()
    assert not pause.done()
    nx_compat.wake_on_write.wake("message")
    await asyncio.wait_for(pause, timeout=10)
    # A write that brought no change (the next batch is empty again) does not shorten the
    # pauses: the next is the hour again, and only another write ends it.
    pause = asyncio.create_task(pacer.pause_after_empty_batch(waited_secs=0.0))
    await settle()
    assert not pause.done()
    nx_compat.wake_on_write.wake("message")
    await asyncio.wait_for(pause, timeout=10)
    # A change starts the schedule again from the shortest pause.
    pacer.busy()
    await asyncio.wait_for(pacer.pause_after_empty_batch(waited_secs=0.0), timeout=10)
    # A real MongoDB that held the getMore for the await time is never paused (the next
    # pause would be the hour).
    await asyncio.wait_for(pacer.pause_after_empty_batch(waited_secs=1.0), timeout=10)
    assert pacer._quick_empties == 0


async def test_a_follower_woken_by_a_new_message_asks_before_its_poster_goes_on(
    mongo_uri: str,
) -> None:
    """The order of turns, not a timing: when a new message is stored, the follower pausing on
    its collection is woken and asks for it before the post goes on to render its answer."""
    connection = await open_database(mongo_uri)  # its driver tells WakeOnWrite of writes
    db = connection.db
    pacer = nx_compat.IdlePacer(await_secs=1.0, collection=Message.__collection__)
    pacer._pauses = (3600.0,)  # a pause that only a write ends
    order: list[str] = []

    async def follower() -> None:
        await pacer.pause_after_empty_batch(waited_secs=0.0)
        order.append("the follower asks")

    asking = asyncio.create_task(follower())
    try:
        await settle()
        assert not asking.done()
        sender = await users.create(db, username=unique_name(), password_hash="-")
        room = await rooms.public(db)
        written = message_data.Written(html="", plain="hi", words=["hi"], mentions=[], notify=[])
        numbered = await message_data.number(db, room=room, message_id=ObjectId(), written=written)
        await message_data.insert(db, numbered, sender=sender, body="hi", written=written)
        order.append("the poster goes on")
        await asyncio.wait_for(asking, timeout=10)
        assert order == ["the follower asks", "the poster goes on"]
    finally:
        asking.cancel()
        await connection.close()


async def test_a_follower_pauses_after_a_whole_batch_only_on_a_server_that_answers_at_once(
    mongo_uri: str,
) -> None:
    """With a real change stream: once the server is known to answer an empty getMore at once,
    a batch handed over whole means pause (the next getMore would sweep for nothing), and a
    batch with changes still in hand does not; before that is known, or on a server that
    waits, never."""
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(mongo_uri)
    collection = client.get_default_database()[unique_name("paced")]
    pacer = nx_compat.IdlePacer(await_secs=1.0, collection=collection.name)
    try:
        async with await collection.watch(max_await_time_ms=1000) as changes:
            assert await changes.try_next() is None  # (opens the cursor)
            await collection.insert_many([{"n": 1}, {"n": 2}])
            first = await changes.try_next()
            assert first is not None and first["fullDocument"]["n"] == 1
            assert not pacer.drained(changes)  # not known yet whether the server waits
            await pacer.pause_after_empty_batch(waited_secs=0.0)  # it answered at once
            assert not pacer.drained(changes)  # the second change is still in hand
            second = await changes.try_next()
            assert second is not None and second["fullDocument"]["n"] == 2
            assert pacer.drained(changes)
            await pacer.pause_after_empty_batch(waited_secs=1.0)  # a server that waited
            assert not pacer.drained(changes)
    finally:
        await collection.drop()
        await client.close()


async def test_peers_on_one_embedded_server_hear_each_others_writes(mongo_uri: str) -> None:
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(mongo_uri)
    db = client.get_default_database()
    one, two = nx_compat.Peers(), nx_compat.Peers()
    try:
        await one.join(db)
        await two.join(db)  # two finds one listed; one learns of two at its next round
        woken = nx_compat.wake_on_write.new_event("typing")
        two.tell("typing")
        await asyncio.wait_for(woken.wait(), timeout=5)
        listed = {doc["_id"] async for doc in db[nx_compat.PEERS_COLLECTION].find()}
        assert {one._id, two._id} <= listed
    finally:
        await one.leave(db)
        await two.leave(db)
        listed = {doc["_id"] async for doc in db[nx_compat.PEERS_COLLECTION].find()}
        assert not {one._id, two._id} & listed
        await client.close()


async def test_a_long_replay_does_not_put_a_stream_behind() -> None:
    stream = Stream(ALICE)
    replay = [b"r" * 1024 for _ in range(PENDING_LIMIT_BYTES // 1024 * 2)]  # twice the limit
    stream.release(None, first=replay)
    assert not stream.closed
    stream.offer(b"live")  # what comes live on top of it still counts
    assert await next_chunk(stream) == b"".join(replay) + b"live"
    for _ in range(PENDING_LIMIT_BYTES // 1024 + 1):
        stream.offer(b"x" * 1024)
    assert stream.closed


async def test_a_long_replay_to_a_socket_that_reads_slowly_is_not_cut_off() -> None:
    """Through a real socket: the replay waits in the transport's buffer without putting the
    stream behind; once the reader has taken it, the usual limit holds again."""
    ours, theirs = socket.socketpair()
    loop = asyncio.get_running_loop()
    transport, _ = await loop.create_connection(asyncio.Protocol, sock=ours)
    stream = Stream(ALICE)
    stream.transport = transport
    replay = [b"r" * 1024 for _ in range(PENDING_LIMIT_BYTES // 1024 * 4)]  # not read yet
    stream.release(None, first=replay)
    stream.offer(b"live")
    assert transport.get_write_buffer_size() > PENDING_LIMIT_BYTES
    assert not stream.closed
    theirs.setblocking(False)
    received = 0
    while transport.get_write_buffer_size():
        try:
            received += len(theirs.recv(1 << 20))
        except BlockingIOError:
            await asyncio.sleep(0)  # the loop writes more once there is room
    stream.offer(b"more")
    assert stream.limit == PENDING_LIMIT_BYTES
    transport.close()
    theirs.close()


async def test_a_process_vouches_for_its_streams_with_one_lease(mongo_uri: str) -> None:
    """Each process's streams are present while its lease lasts, one write extending it for
    all of them; a lapsed lease's streams are swept ("last seen" stamped), then the lease; a
    process that starts sweeps the presence no lease covers; one that stops ends its lease."""
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(mongo_uri)
    db = client.get_default_database()
    user_docs = db[User.__collection__]
    here, dead, gone = Registry(), Registry(), Registry()
    keeper = live_presence.Presence(db, here, ttl=30)
    lapsed = live_presence.Presence(db, dead, ttl=-1)  # its lease lapses as it is written
    stopping = live_presence.Presence(db, gone, ttl=30)
    groups = ((keeper, here), (lapsed, dead), (stopping, gone))
    streams = {registry: [Stream(str(ObjectId())) for _ in range(3)] for _, registry in groups}
    everyone = [stream for group in streams.values() for stream in group]
    user_ids = [stream.user_id for stream in everyone]
    orphan = Presence(id=f"{ALICE}:orphan", user_id=ALICE, process_id="no lease")
    old = {"_id": f"{BOB}:old", "user_id": BOB, "expires_at": datetime.now(UTC)}  # before leases
    ids = [s.presence_id for s in everyone] + [orphan.id, old["_id"]]

    async def present() -> set[str]:
        return {doc["_id"] async for doc in db["presence"].find({"_id": {"$in": ids}})}

    def of(*registries: Registry) -> set[str]:
        return {s.presence_id for registry in registries for s in streams[registry]}

    def users_of(*registries: Registry) -> set[str]:
        return {s.user_id for registry in registries for s in streams[registry]}

    try:
        await user_docs.insert_many([{"_id": ObjectId(uid), "username": uid} for uid in user_ids])
        for group_keeper, registry in groups:
            await group_keeper.vouch()
            for stream in streams[registry]:
                registry.add(stream)
                await group_keeper.opened(stream)
        await db["presence"].insert_many([orphan.model_dump_doc(), old])
        online = await presence_queries.online_among(db, user_ids=[*user_ids, ALICE, BOB])
        assert online == users_of(here, gone)
        assert await presence_queries.online_ids(db) >= online

        await keeper.start()  # a process starting: what no lease covers goes
        assert await present() == of(here, dead, gone)

        await keeper.sweep_lapsed()
        assert await present() == of(here, gone)
        assert await db["process_leases"].find_one({"_id": lapsed.process_id}) is None
        seen = {
            str(doc["_id"]) async for doc in user_docs.find({"last_seen_at": {"$exists": True}})
        }
        assert seen & set(user_ids) == users_of(dead)

        # A lease extended since it was seen lapsed is not ended.
        await presence_queries.end_lapsed_leases(db, process_ids=[keeper.process_id])
        before = await db["process_leases"].find_one({"_id": keeper.process_id})
        await keeper.vouch()
        after = await db["process_leases"].find_one({"_id": keeper.process_id})
        assert before is not None and after is not None
        assert after["expires_at"] > before["expires_at"]

        await stopping.goodbyes_said()  # (its streams' goodbyes did not come)
        assert await presence_queries.online_among(db, user_ids=user_ids) == users_of(here)
        await keeper.sweep_lapsed()
        assert await present() == of(here)
    finally:
        await db["presence"].delete_many({"_id": {"$in": ids}})
        leases = [keeper.process_id, lapsed.process_id, stopping.process_id]
        await db["process_leases"].delete_many({"_id": {"$in": leases}})
        await user_docs.delete_many({"_id": {"$in": [ObjectId(uid) for uid in user_ids]}})
        await client.close()
