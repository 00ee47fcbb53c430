"""The move from conversation keys to rooms (data.migration.migrate_conversations, at start-up).

Each test seeds data of the shape before rooms straight into a database of its own, with people
registered through the app (their user documents copied over, so their passwords and sessions
work), then starts fresh app processes on it and looks over HTTP and in the database.

Old shape: messages named their conversation ("public" or "dm:<id>:<id>", the ids sorted) and
copied its participants; read markers ("<user id>:<conversation>") held a time, and for DMs a
counter of messages received since; typing notices named the conversation too.

A database of its own is a server of its own on the embedded nx-27017: its databases share one
namespace (a document written to one shows in all of them, and dropping one drops them all),
so another path on the session's server would be neither isolated nor safe to drop. On
MONGODB_URI it is a scratch database there.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, cast

import pytest
from bson import ObjectId
from pymongo import MongoClient
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.database import Database

from tests.html import Element
from tests.support import (
    AppServer,
    Person,
    badge_count,
    message_id,
    open_stream,
    unread_badge,
)
from tests.support import Db as SessionDb
from webapp.data import rooms as room_data
from webapp.data.connection import Db, open_database
from webapp.data.embedded import EmbeddedDatabase
from webapp.data.migration import migrate_conversations
from webapp.data.models import (
    Membership,
    Message,
    MessageWords,
    Room,
    RoomSequence,
    Typing,
    User,
)
from webapp.rules.search import words_of

Doc = dict[str, Any]
PUBLIC = "public"
MARKERS = "read_markers"
# What the migration touches, for before-and-after comparisons.
MIGRATED = (
    Message.__collection__,
    Room.__collection__,
    Membership.__collection__,
    RoomSequence.__collection__,
    MARKERS,
    Typing.__collection__,
)
# Old messages are a day old: before their readers signed up, so that only read markers say
# what is unread (a reader without one has read everything from before they joined).
START = datetime.now(UTC).replace(microsecond=0) - timedelta(days=1)


# A database of one's own, and the people in it


def _scratch_uri(external: str, name: str) -> str:
    address, _, query = external.partition("?")
    scheme, _, rest = address.partition("://")
    host = rest.split("/", 1)[0]
    return f"{scheme}://{host}/{name}" + (f"?{query}" if query else "")


def client_of(uri: str) -> MongoClient[Doc]:
    return MongoClient(uri, tz_aware=True)


@pytest.fixture
def fresh_uri(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    external = os.environ.get("MONGODB_URI")
    if external:
        name = f"chat_migration_{secrets.token_hex(4)}"
        uri = _scratch_uri(external, name)
        yield uri
        with client_of(uri) as client:
            client.drop_database(name)
        return
    server = EmbeddedDatabase(tmp_path_factory.mktemp("migration-db"))
    server.start()
    try:
        yield server.uri
    finally:
        server.stop()


@pytest.fixture
def old_db(fresh_uri: str) -> Iterator[Database[Doc]]:
    with client_of(fresh_uri) as client:
        yield client.get_default_database("chat")


@dataclass(frozen=True)
class Member:
    """Someone registered through the app, whose user document is in the scratch database."""

    person: Person  # signed in to the session's app; the session works on any app process
    id: str

    @property
    def name(self) -> str:
        return self.person.username


@pytest.fixture
def members(
    make_person: Callable[..., Person], db: SessionDb, old_db: Database[Doc]
) -> Callable[[int], list[Member]]:
    """Registers people through the session's app and copies their users to the scratch one."""

    def make(count: int) -> list[Member]:
        people = [make_person() for _ in range(count)]
        users = db[User.__collection__]
        docs = [users.find_one({"username_key": p.username.lower()}) for p in people]
        assert all(docs)
        old_db[User.__collection__].insert_many([doc for doc in docs if doc])
        return [Member(p, str(doc["_id"])) for p, doc in zip(people, docs, strict=True) if doc]

    return make


@pytest.fixture
def visit() -> Iterator[Callable[[AppServer, Member], Person]]:
    """The member, on another app process: same session cookie and CSRF token."""
    visitors: list[Person] = []

    def make(app: AppServer, member: Member) -> Person:
        visitors.append(member.person.on(app.url))
        return visitors[-1]

    yield make
    for visitor in visitors:
        visitor.close()


@pytest.fixture
def app_dir(tmp_path_factory: pytest.TempPathFactory) -> Callable[[], Path]:
    return lambda: tmp_path_factory.mktemp("migration-app")


# The old shape


def dm(a: Member, b: Member) -> str:
    first, second = sorted((a.id, b.id))
    return f"dm:{first}:{second}"


def participants(conversation: str) -> list[str]:
    if conversation == PUBLIC:
        return []
    _, first, second = conversation.split(":")
    return sorted({first, second})


@dataclass
class OldShape:
    """Documents of the shape before rooms, written as they are made."""

    db: Database[Doc]
    messages: list[Doc] = field(default_factory=list)

    def message(
        self,
        conversation: str,
        sender: Member,
        body: str,
        at: float,
        *,
        deleted: bool = False,
        edited: bool = False,
    ) -> Doc:
        """A message posted `at` seconds after START (its _id is in the order of the calls)."""
        created = START + timedelta(seconds=at)
        doc = {
            "_id": ObjectId(),
            "conversation": conversation,
            "participants": participants(conversation),
            "sender_id": sender.id,
            "sender_name": sender.name,
            "body": "" if deleted else body,
            "created_at": created,
            "edited_at": created + timedelta(seconds=0.5) if edited else None,
            "deleted": deleted,
        }
        self.db[Message.__collection__].insert_one(doc)
        self.messages.append(doc)
        return doc

    def marker(self, reader: Member, conversation: str, read_at: float, unread: int = 0) -> None:
        self.db[MARKERS].insert_one(
            {
                "_id": f"{reader.id}:{conversation}",
                "user_id": reader.id,
                "conversation": conversation,
                "read_at": START + timedelta(seconds=read_at),
                "unread": unread,
            }
        )

    def typing(self, someone: Member, conversation: str) -> None:
        self.db[Typing.__collection__].insert_one(
            {
                "_id": f"{someone.id}:{conversation}",
                "user_id": someone.id,
                "username": someone.name,
                "conversation": conversation,
                "participants": participants(conversation),
                "at": datetime.now(UTC),
            }
        )

    def in_order(self, conversation: str) -> list[Doc]:
        """The conversation's messages in the order they were posted (time, then id)."""
        mine = [m for m in self.messages if m["conversation"] == conversation]
        return sorted(mine, key=lambda m: (m["created_at"], m["_id"]))

    def conversations(self) -> set[str]:
        return {m["conversation"] for m in self.messages}


@pytest.fixture
def old(old_db: Database[Doc]) -> OldShape:
    return OldShape(old_db)


def snapshot(db: Database[Doc]) -> dict[str, list[Doc]]:
    return {name: sorted(db[name].find({}), key=lambda doc: str(doc["_id"])) for name in MIGRATED}


# Pages


def shown_messages(page: Element) -> list[tuple[str, str]]:
    """The log's messages, in page order: (id, body, or "message deleted")."""
    articles = page.one(id="log").find_all("article", class_="message")
    return [(a.get("data-id"), a.one(class_="body").raw_text) for a in articles]


def expected_messages(messages: list[Doc]) -> list[tuple[str, str]]:
    return [(str(m["_id"]), "message deleted" if m["deleted"] else m["body"]) for m in messages]


def person_unread(page: Element, someone: Member) -> int:
    """The unread count on `someone`'s sidebar entry."""
    return badge_count(page.one("li", id=f"person-{someone.id}"))


def public_unread(page: Element) -> int:
    return unread_badge(page, PUBLIC)


# The migrated database


def rooms_by_key(db: Database[Doc]) -> dict[str, Doc]:
    rooms = list(db[Room.__collection__].find({}))
    keys = [room["key"] for room in rooms]
    assert len(keys) == len(set(keys)), f"rooms with one key: {sorted(keys)}"
    return {room["key"]: room for room in rooms}


def assert_migrated(db: Database[Doc], old: OldShape) -> dict[str, Doc]:
    """Every old message in its room, numbered 1..n in the order posted, nothing else changed;
    one room per conversation, a DM's members with a membership each. Returns the rooms."""
    rooms = rooms_by_key(db)
    assert set(rooms) == old.conversations() | {PUBLIC}
    public = rooms[PUBLIC]
    assert public["kind"] == "public" and public["members"] == []
    assert db[Message.__collection__].count_documents({}) == len(old.messages)
    for key in old.conversations():
        room = rooms[key]
        room_id = str(room["_id"])
        if key != PUBLIC:
            assert room["kind"] == "dm"
            assert room["members"] == participants(key)
            memberships = list(db[Membership.__collection__].find({"room_id": room_id}))
            assert sorted(m["_id"] for m in memberships) == sorted(
                f"{room_id}:{user_id}" for user_id in participants(key)
            )
            assert sorted(m["user_id"] for m in memberships) == participants(key)
        before = old.in_order(key)
        after = list(db[Message.__collection__].find({"room_id": room_id}, sort=[("seq", 1)]))
        assert [m["_id"] for m in after] == [m["_id"] for m in before]
        assert [m["seq"] for m in after] == list(range(1, len(before) + 1))
        for was, now in zip(before, after, strict=True):
            assert "conversation" not in now and "participants" not in now
            kept = {k: v for k, v in was.items() if k not in ("conversation", "participants")}
            added = ("room_id", "seq", "plain")  # (plain: by an app's start-up, with its words)
            assert {k: v for k, v in now.items() if k not in added} == kept
            indexed = db[MessageWords.__collection__].find_one({"_id": now["_id"]})
            if "plain" in now and not now.get("deleted"):
                assert indexed is not None and indexed["room_id"] == room_id
                assert indexed["words"] == words_of(now["plain"])
            else:
                assert indexed is None
        sequence = db[RoomSequence.__collection__].find_one({"_id": room_id})
        assert sequence is not None and sequence["value"] == len(before)
    # No membership anywhere but in these rooms, and none twice.
    memberships = list(db[Membership.__collection__].find({}))
    room_ids = {str(room["_id"]) for room in rooms.values()}
    assert all(m["room_id"] in room_ids for m in memberships)
    assert all(m["_id"] == f"{m['room_id']}:{m['user_id']}" for m in memberships)
    assert db[MARKERS].count_documents({}) == 0
    assert db[Typing.__collection__].count_documents({"room_id": {"$exists": False}}) == 0
    return rooms


def read_seq(db: Database[Doc], room: Doc, reader: Member) -> int | None:
    membership = db[Membership.__collection__].find_one({"_id": f"{room['_id']}:{reader.id}"})
    return None if membership is None else int(membership["read_seq"])


# Seeds


def seed_conversations(old: OldShape, alice: Member, bob: Member, carol: Member) -> None:
    """A public room, two DMs and notes to self; posted out of order, with a tie, an edit and
    a deletion, and text that must come back exactly."""
    ab, bc, notes = dm(alice, bob), dm(bob, carol), dm(alice, alice)
    old.message(PUBLIC, bob, 'third <b>bold</b> & "quoted"', 30)
    old.message(PUBLIC, alice, "first, héllo 👋", 10)
    old.message(PUBLIC, carol, "fifth", 50, edited=True)
    old.message(PUBLIC, alice, "second", 20)
    old.message(PUBLIC, bob, "fourth (same time as the next, older id)", 40)
    old.message(PUBLIC, carol, "gone", 40, deleted=True)
    old.message(ab, bob, "dm two", 25)
    old.message(ab, alice, "dm one", 15)
    old.message(ab, alice, "dm three https://example.com/x?a=1&b=2", 35)
    old.message(bc, carol, "bc only", 60)
    old.message(notes, alice, "note to self", 5)
    old.message(notes, alice, "another note", 6)
    # Every DM read by whoever received in it (a marker came with the first message received).
    old.marker(alice, ab, read_at=40)
    old.marker(bob, ab, read_at=40)
    old.marker(bob, bc, read_at=60)
    old.typing(bob, ab)
    old.typing(carol, PUBLIC)


# (1), (2): messages move to rooms, in order and intact, with rooms and memberships


def test_old_messages_move_to_rooms_in_order_with_nothing_lost(
    old: OldShape,
    old_db: Database[Doc],
    fresh_uri: str,
    members: Callable[[int], list[Member]],
    visit: Callable[[AppServer, Member], Person],
    app_dir: Callable[[], Path],
) -> None:
    alice, bob, carol = members(3)
    seed_conversations(old, alice, bob, carol)

    with AppServer(fresh_uri, data_dir=app_dir()) as app:
        rooms = assert_migrated(old_db, old)
        assert rooms[dm(alice, alice)]["members"] == [alice.id]  # notes to self: one member
        as_alice, as_bob, as_carol = (visit(app, m) for m in (alice, bob, carol))
        public = expected_messages(old.in_order(PUBLIC))
        for visitor in (as_alice, as_bob, as_carol):
            assert shown_messages(visitor.page("/rooms/public")) == public
        both_ways = expected_messages(old.in_order(dm(alice, bob)))
        assert shown_messages(as_alice.page(f"/dm/{bob.name}")) == both_ways
        assert shown_messages(as_bob.page(f"/dm/{alice.name}")) == both_ways
        assert shown_messages(as_carol.page(f"/dm/{bob.name}")) == expected_messages(
            old.in_order(dm(bob, carol))
        )
        assert shown_messages(as_alice.page(f"/dm/{alice.name}")) == expected_messages(
            old.in_order(dm(alice, alice))
        )
        # Nobody else sees a DM: carol's page with alice is empty, and there is no such room.
        assert shown_messages(as_carol.page(f"/dm/{alice.name}")) == []
        assert dm(alice, carol) not in rooms_by_key(old_db)


# (3): unread counts carry over


def test_unread_counts_carry_over(
    old: OldShape,
    old_db: Database[Doc],
    fresh_uri: str,
    members: Callable[[int], list[Member]],
    visit: Callable[[AppServer, Member], Person],
    app_dir: Callable[[], Path],
) -> None:
    alice, bob, carol = members(3)
    ab, ac = dm(alice, bob), dm(alice, carol)
    old.message(PUBLIC, bob, "p1", 1)
    old.message(PUBLIC, carol, "p2", 2)
    old.message(PUBLIC, alice, "p3", 3)
    old.marker(alice, PUBLIC, read_at=3.5)  # read up to p3
    old.message(PUBLIC, bob, "p4", 4)
    old.message(PUBLIC, alice, "p5", 5)  # hers: never unread
    old.message(PUBLIC, carol, "p6", 6)
    old.message(PUBLIC, bob, "p7", 7, deleted=True)  # deleted: not counted, as before
    old.marker(bob, PUBLIC, read_at=7)  # read everything, p7 included (read_at == its time)
    # bob wrote alice three times; she read the first. Her counter: 2.
    old.message(ab, bob, "d1", 10)
    old.message(ab, bob, "d2", 12)
    old.message(ab, bob, "d3", 13)
    old.marker(alice, ab, read_at=13, unread=2)
    # carol and alice: all read.
    old.message(ac, carol, "c1", 20)
    old.message(ac, alice, "c2", 21)
    old.marker(alice, ac, read_at=20.5, unread=0)
    old.marker(carol, ac, read_at=21, unread=0)

    with AppServer(fresh_uri, data_dir=app_dir()) as app:
        rooms = assert_migrated(old_db, old)
        assert read_seq(old_db, rooms[PUBLIC], alice) == 3
        assert read_seq(old_db, rooms[PUBLIC], bob) == 7
        assert read_seq(old_db, rooms[PUBLIC], carol) is None  # no marker: read up to joining
        assert read_seq(old_db, rooms[ab], alice) == 1
        assert read_seq(old_db, rooms[ac], alice) == 2
        as_alice, as_bob, as_carol = (visit(app, m) for m in (alice, bob, carol))

        # Her notes to self read nothing else.
        seen = as_alice.page(f"/dm/{alice.name}")
        assert public_unread(seen) == 2  # p4, p6
        assert person_unread(seen, bob) == 2
        assert person_unread(seen, carol) == 0
        title = seen.one("title").text
        assert title.startswith("(4) ")
        # Reading the DM (its page posts .../read) clears it; the public room is still unread.
        assert as_alice.send("POST", f"/dm/{bob.name}/read").status_code == 204
        seen = as_alice.page(f"/dm/{alice.name}")
        assert person_unread(seen, bob) == 0 and public_unread(seen) == 2

        seen = as_bob.page(f"/dm/{bob.name}")
        assert public_unread(seen) == 0
        assert person_unread(seen, alice) == 0  # he never had a counter: he only wrote
        seen = as_carol.page(f"/dm/{carol.name}")
        assert public_unread(seen) == 0  # all before she joined
        assert person_unread(seen, alice) == 0


def test_dm_unread_counts_what_was_received_when_the_reader_wrote_since(
    old: OldShape,
    old_db: Database[Doc],
    fresh_uri: str,
    members: Callable[[int], list[Member]],
    visit: Callable[[AppServer, Member], Person],
    app_dir: Callable[[], Path],
) -> None:
    """The old counter counted messages received since reading, not a place in the log:
    alice, who had two unread from bob, replied (posting never read a conversation, and the
    API posts without a page) — she still has those two to read, and bob has her reply."""
    alice, bob = members(2)
    ab = dm(alice, bob)
    old.message(ab, bob, "d1", 1)
    old.message(ab, bob, "d2", 2)
    old.message(ab, bob, "d3", 3)
    old.message(ab, alice, "reply, unread by bob", 4)
    old.marker(alice, ab, read_at=3, unread=2)  # read d1; d2 and d3 since
    old.marker(bob, ab, read_at=4, unread=1)  # the reply

    with AppServer(fresh_uri, data_dir=app_dir()) as app:
        assert_migrated(old_db, old)
        seen_by_bob = visit(app, bob).page(f"/dm/{bob.name}")
        seen_by_alice = visit(app, alice).page(f"/dm/{alice.name}")
        assert person_unread(seen_by_bob, alice) == 1
        assert person_unread(seen_by_alice, bob) == 2


# (4): idempotent


async def test_a_second_start_and_a_second_run_change_nothing(
    old: OldShape,
    old_db: Database[Doc],
    fresh_uri: str,
    members: Callable[[int], list[Member]],
    app_dir: Callable[[], Path],
) -> None:
    alice, bob, carol = members(3)
    seed_conversations(old, alice, bob, carol)
    old.marker(alice, PUBLIC, read_at=25)
    old.marker(carol, PUBLIC, read_at=40)  # at a tie: both read

    with AppServer(fresh_uri, data_dir=app_dir()):
        assert_migrated(old_db, old)
    first = snapshot(old_db)
    with AppServer(fresh_uri, data_dir=app_dir()):
        assert snapshot(old_db) == first
    connection = await open_database(fresh_uri)
    try:
        assert await migrate_conversations(connection.db) == 0
        assert await migrate_conversations(connection.db) == 0
    finally:
        await connection.close()
    assert snapshot(old_db) == first
    assert_migrated(old_db, old)


# (5): several processes at once


def seed_many(old: OldShape, people: list[Member]) -> None:
    """A busy public room and a DM between every two (and notes to self), interleaved."""
    at = 0.0
    for n in range(150):
        old.message(PUBLIC, people[n % len(people)], f"public {n}", at := at + 1)
    for i, a in enumerate(people):
        for b in people[i:]:
            for n in range(12):
                old.message(dm(a, b), (a, b)[n % 2], f"{a.name} {b.name} {n}", at - n * 7)
            for reader in {a.id: a, b.id: b}.values():
                old.marker(reader, dm(a, b), read_at=at)
        old.marker(a, PUBLIC, read_at=75.5)
        old.typing(a, PUBLIC)


def test_two_processes_starting_at_once_migrate_once(
    old: OldShape,
    old_db: Database[Doc],
    fresh_uri: str,
    members: Callable[[int], list[Member]],
    visit: Callable[[AppServer, Member], Person],
    app_dir: Callable[[], Path],
) -> None:
    people = members(4)
    seed_many(old, people)
    apps = [AppServer(fresh_uri, data_dir=app_dir()) for _ in range(2)]
    with contextlib.ExitStack() as stack, ThreadPoolExecutor(len(apps)) as pool:
        for app in apps:
            stack.callback(app.stop)
        list(pool.map(AppServer.start, apps))  # both spawned at once, then both ready

        rooms = assert_migrated(old_db, old)
        assert len(rooms) == 1 + len(people) * (len(people) + 1) // 2
        for someone in people:
            assert read_seq(old_db, rooms[PUBLIC], someone) == 75
        # Both serve the same rooms.
        first, second = people[0], people[1]
        expected = expected_messages(old.in_order(dm(first, second))[-50:])
        for app in apps:
            assert shown_messages(visit(app, first).page(f"/dm/{second.name}")) == expected


async def test_concurrent_runs_number_each_message_once(
    old: OldShape,
    old_db: Database[Doc],
    fresh_uri: str,
    members: Callable[[int], list[Member]],
) -> None:
    """Three runs interleaved at every await, as several processes' start-ups would be."""
    people = members(3)
    seed_many(old, people)
    connections = [await open_database(fresh_uri) for _ in range(3)]
    try:
        moved = await asyncio.gather(*(migrate_conversations(c.db) for c in connections))
    finally:
        for connection in connections:
            await connection.close()
    assert sum(moved) == len(old.messages)  # each message numbered by exactly one of them
    rooms = assert_migrated(old_db, old)
    for someone in people:
        assert read_seq(old_db, rooms[PUBLIC], someone) == 75
        for other in people:
            assert read_seq(old_db, rooms[dm(someone, other)], someone) == 12


class _Paused:
    """A database whose room counters wait at a gate before they are written: a process
    stopped between numbering a room's messages and counting them."""

    def __init__(self, db: Db, reached: asyncio.Event, gate: asyncio.Event) -> None:
        self._db, self._reached, self._gate = db, reached, gate

    def __getitem__(self, name: str) -> object:
        collection = self._db[name]
        return (
            _PausedCounters(collection, self._reached, self._gate)
            if name == RoomSequence.__collection__
            else collection
        )


class _PausedCounters:
    def __init__(
        self, collection: AsyncCollection[Doc], reached: asyncio.Event, gate: asyncio.Event
    ) -> None:
        self._collection, self._reached, self._gate = collection, reached, gate

    async def update_one(self, *args: Any, **kwargs: Any) -> object:
        self._reached.set()
        await self._gate.wait()
        return await self._collection.update_one(*args, **kwargs)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._collection, name)


async def test_a_process_starting_while_another_numbers_keeps_dm_unread_counts(
    old: OldShape,
    old_db: Database[Doc],
    fresh_uri: str,
    members: Callable[[int], list[Member]],
) -> None:
    """Process A has numbered a DM's messages but not yet written the room's counter when
    process B starts: B finds no old message left, and goes on to the read markers."""
    alice, bob = members(2)
    ab = dm(alice, bob)
    for n in range(3):
        old.message(ab, bob, f"d{n}", n)
    old.marker(alice, ab, read_at=2, unread=2)  # read the first of three

    a_db, b_db = await open_database(fresh_uri), await open_database(fresh_uri)
    reached, gate = asyncio.Event(), asyncio.Event()
    try:
        await room_data.public(b_db.db)  # as a hub makes it; the DM is the only room to move
        paused = cast(Db, _Paused(a_db.db, reached, gate))
        a = asyncio.create_task(migrate_conversations(paused))
        try:
            await asyncio.wait_for(reached.wait(), 10)
            await migrate_conversations(b_db.db)
        finally:
            gate.set()
            await a
    finally:
        await a_db.close()
        await b_db.close()
    rooms = assert_migrated(old_db, old)
    assert read_seq(old_db, rooms[ab], alice) == 1  # two of three still unread


# (6): carrying on after the migration


async def test_posting_after_migration_continues_the_numbering_live(
    old: OldShape,
    old_db: Database[Doc],
    fresh_uri: str,
    members: Callable[[int], list[Member]],
    visit: Callable[[AppServer, Member], Person],
    app_dir: Callable[[], Path],
) -> None:
    alice, bob, carol = members(3)
    seed_conversations(old, alice, bob, carol)
    public_count = len(old.in_order(PUBLIC))
    dm_count = len(old.in_order(dm(alice, bob)))

    with AppServer(fresh_uri, data_dir=app_dir()) as app:
        rooms = assert_migrated(old_db, old)
        as_alice, as_bob = visit(app, alice), visit(app, bob)
        token = await asyncio.to_thread(as_bob.token)
        async with open_stream(app.url, token=token) as events:
            sent = await asyncio.to_thread(as_alice.post_public, "after the move")
            assert sent.status_code == 201, sent.text
            public_id = message_id(sent.text)
            event = await events.next_named("message")
            assert message_id(event.data) == public_id

            sent = await asyncio.to_thread(as_alice.post_dm, bob.name, "a DM after the move")
            assert sent.status_code == 201, sent.text
            dm_id = message_id(sent.text)
            event = await events.next_named("message")
            assert message_id(event.data) == dm_id

        posted = {
            doc["_id"]: doc
            for doc in old_db[Message.__collection__].find(
                {"_id": {"$in": [ObjectId(public_id), ObjectId(dm_id)]}}
            )
        }
        assert posted[ObjectId(public_id)]["room_id"] == str(rooms[PUBLIC]["_id"])
        assert posted[ObjectId(public_id)]["seq"] == public_count + 1
        assert posted[ObjectId(dm_id)]["room_id"] == str(rooms[dm(alice, bob)]["_id"])
        assert posted[ObjectId(dm_id)]["seq"] == dm_count + 1
        assert rooms_by_key(old_db).keys() == rooms.keys()  # no second room for either

        # Both show last on their pages, after the old ones; bob has one of each unread.
        seen = as_bob.page(f"/dm/{bob.name}")
        assert public_unread(seen) == 1 and person_unread(seen, alice) == 1
        public = shown_messages(as_bob.page("/rooms/public"))
        assert public == [*expected_messages(old.in_order(PUBLIC)), (public_id, "after the move")]
        direct = shown_messages(as_bob.page(f"/dm/{alice.name}"))
        assert direct[-1] == (dm_id, "a DM after the move")
        assert len(direct) == dm_count + 1
