"""Search at size: many messages in many group rooms, seeded straight into the app's database,
and two-word queries asked through the app by a member of some of the rooms.

The documents are made as the app makes them: the models of webapp/data/models.py, each
message's html and plain text from the same render (rules/formatting.py) and its
MessageWords from the same words_of (rules/search.py) as a post, references as strings,
dates as UTC datetimes, booleans as booleans. The rooms are group rooms, each with an owner
and a few other members (seeded users who never sign in), its sequence counter at its number
of messages, and its messages numbered 1, 2, ... in the order they were posted; the rooms'
messages interleave over the SPREAD_DAYS before the run.

A message is a few common words (FILLER, the first ones far more often) and a few words of
one or two THEMES; each room talks about three of the themes more than about the others. So
two words of one theme find some hundreds of the 10,000 messages of ten rooms, as a search
in a real chat does, and a word's start ("comp") finds several words. The same seed makes
the same messages on every run.

The documents go in before the app starts: inserted under a running app, each message would
be a change its hub follows and delivers. Only the searcher's memberships are added later,
once the app has registered them. The indexes are the app's own (connection.create_indexes),
made before the documents go in, as in a database the app has used all along.
"""

from __future__ import annotations

import random
import struct
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from itertools import accumulate
from typing import Any
from urllib.parse import urlencode

from bson import ObjectId
from pymongo import AsyncMongoClient
from pymongo.asynchronous.database import AsyncDatabase

from benchmarks.clients import Account, Pool, RequestFailed
from webapp.data.connection import create_indexes
from webapp.data.models import Membership, Message, MessageWords, Room, RoomSequence, User
from webapp.rules import formatting, search
from webapp.rules.access import GROUP
from webapp.rules.keys import member_key
from webapp.rules.text import username_key

SEED = 20240617  # the same messages on every run
BATCH = 1000  # documents an insert_many
SPREAD_DAYS = 60  # the messages were posted over this many days, up to an hour ago
FELLOWS = 40  # seeded users: the rooms' owners, other members and senders
MEMBERS_PER_ROOM = 5  # seeded members of each room (the owner first), besides the searcher
FAVOURITE_THEMES, FAVOURED = 3, 5.0  # a room's themes, and how much more often they come
RESULT = b'class="result"'  # one found message in templates/_search_results.html

_FILLER = """
    the to and a i it is that you of for on we in this have be with not do but are just so
    was can will if at what get me my all like think about know out up one there no they
    now then yes ok good need should would make time going see back today some been right
    from work thanks any still did when how also go more maybe look had way got new could
    why sure here which our other want because people let well much take first
"""
FILLER = tuple(_FILLER.split())  # most often first: word k comes with a weight of 1 / (k + 3)
THEMES = tuple(
    tuple(line.split())
    for line in """
    deploy deployed deployment server servers release build staging rollback pipeline
    test tests testing fix fixed bug bugs failing flaky coverage
    review reviewed change changes branch merge commit comment comments approve
    meeting meet tomorrow agenda notes call standup calendar moved minutes
    coffee lunch morning pizza kitchen cake tea break breakfast snacks
    computer compile compiler laptop screen keyboard update install restart slow
    company customer customers contract invoice budget report sales quarter complete
    database query queries index user users data account schema migration
    error errors logs crash timeout latency alert outage memory disk
    weekend holiday vacation travel flight hotel party birthday football movie
    rain snow sunny cold warm weather umbrella outside walk garden
    """.strip().splitlines()
)
MARKDOWN = (  # now and then a word is marked up, or a link
    (0.06, "**{}**"),
    (0.04, "_{}_"),
    (0.05, "`{}`"),
    (0.03, "see https://example.com/{}"),
    (0.02, "> {}\n"),
)
# Two words each, most of one theme, some only the start of a word as someone types it.
QUERIES = (
    "deploy serv",
    "comp update",
    "meeting tomorrow",
    "error logs",
    "review chan",
    "bug fix",
    "user data",
    "coffee morning",
)


@dataclass(frozen=True)
class Sizes:
    rooms: int
    per_room: int  # messages in each room
    member_of: int  # rooms the searcher is in
    queries: int  # measured, one at a time
    within_every: int  # every this-many-th query is narrowed to one room (?in=)


@dataclass
class Corpus:
    """What was seeded: the rooms (the searcher's first), and what each query finds."""

    rooms: list[str]
    searched: list[str]  # the rooms the searcher joins
    messages: int
    matches: dict[str, int] = field(default_factory=dict)  # query -> in the searcher's rooms
    matches_within: dict[str, int] = field(default_factory=dict)  # ... in searched[0]


def _object_id(when: datetime, rng: random.Random) -> ObjectId:
    """An id as if made at `when`: its first four bytes are its time, as ObjectId() makes."""
    return ObjectId(struct.pack(">I", int(when.timestamp())) + rng.randbytes(8))


FILLER_WEIGHTS = list(accumulate(1 / (k + 3) for k in range(len(FILLER))))


def _text(rng: random.Random, themes: Sequence[float]) -> str:
    """One message as typed: common words and some of one or two themes (`themes`: the room's
    cumulative weights of THEMES), sometimes with Markdown, a sentence or two."""
    words = rng.choices(FILLER, cum_weights=FILLER_WEIGHTS, k=rng.randint(2, 14))
    words += rng.choices(rng.choices(THEMES, cum_weights=themes)[0], k=rng.randint(2, 5))
    if rng.random() < 0.4:
        words += rng.choices(rng.choices(THEMES, cum_weights=themes)[0], k=rng.randint(1, 2))
    rng.shuffle(words)
    for chance, shape in MARKDOWN:
        if rng.random() < chance:
            k = rng.randrange(len(words))
            words[k] = shape.format(words[k])
    if len(words) > 8 and rng.random() < 0.5:
        cut = rng.randint(3, len(words) - 3)
        words[cut - 1] += rng.choice(".!?")
        words[cut] = words[cut].capitalize()
    words[0] = words[0].capitalize()
    return " ".join(words) + rng.choice(("", "", ".", "?", "!"))


def finds(query_words: Sequence[str], words: frozenset[str]) -> bool:
    """Whether a message of these words is found by these, as data/words.search finds: each is
    a word of it or the start of one."""
    return all(any(word.startswith(asked) for word in words) for asked in query_words)


async def seed(uri: str, sizes: Sizes, *, now: datetime | None = None) -> Corpus:
    """Users, rooms, their counters, memberships and messages, BATCH documents an insert."""
    rng = random.Random(SEED)  # noqa: S311 (made-up messages, not a secret)
    now = (now or datetime.now(UTC)).replace(microsecond=0)
    first = now - timedelta(days=SPREAD_DAYS)
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(uri, tz_aware=True)
    try:
        db = client.get_default_database()
        await create_indexes(db)
        tag = rng.randbytes(3).hex()
        joined = first - timedelta(days=30)
        fellows = [
            User(
                id=_object_id(joined, rng),
                username=f"s{tag}_{n}",
                username_key=username_key(f"s{tag}_{n}"),
                password_hash="!",  # noqa: S106 (no password matches it: nobody signs in)
                created_at=joined,
                last_seen_at=first,
            )
            for n in range(FELLOWS)
        ]
        await db[User.__collection__].insert_many([u.model_dump_doc() for u in fellows])

        rooms: list[Room] = []
        members: list[list[User]] = []
        for n in range(sizes.rooms):
            made = first - timedelta(days=1, minutes=sizes.rooms - n)
            room_id = _object_id(made, rng)
            theirs = rng.sample(fellows, MEMBERS_PER_ROOM)
            name = f"{rng.choice(rng.choice(THEMES))} {n + 1}".capitalize()
            rooms.append(
                Room(
                    id=room_id,
                    kind=GROUP,
                    key=str(room_id),
                    name=name,
                    name_key=name.casefold(),
                    topic=" ".join(rng.choice(THEMES)[:4]),
                    open=n % 2 == 1,
                    owner_id=str(theirs[0].id),
                    created_at=made,
                )
            )
            members.append(theirs)
        await db[Room.__collection__].insert_many([r.model_dump_doc() for r in rooms])
        counters = [RoomSequence(id=str(r.id), value=sizes.per_room) for r in rooms]
        await db[RoomSequence.__collection__].insert_many([c.model_dump_doc() for c in counters])
        memberships = [
            Membership(
                id=member_key(str(room.id), str(user.id)),
                room_id=str(room.id),
                user_id=str(user.id),
                read_seq=sizes.per_room,
                joined_at=room.created_at,
            ).model_dump_doc()
            for room, theirs in zip(rooms, members, strict=True)
            for user in theirs
        ]
        await db[Membership.__collection__].insert_many(memberships)

        searched = [str(r.id) for r in rooms[: sizes.member_of]]
        corpus = Corpus([str(r.id) for r in rooms], searched, sizes.rooms * sizes.per_room)
        await _messages(db, rooms, members, sizes, rng, (first, now), corpus)
        return corpus
    finally:
        await client.close()


async def _messages(
    db: AsyncDatabase[dict[str, Any]],
    rooms: Sequence[Room],
    members: Sequence[Sequence[User]],
    sizes: Sizes,
    rng: random.Random,
    span: tuple[datetime, datetime],
    corpus: Corpus,
) -> None:
    """The rooms' messages, interleaved in time, each room's numbered from 1; meanwhile counts
    what each query finds in the searcher's rooms."""
    themes = []
    for _ in rooms:
        weights = [1.0] * len(THEMES)
        for k in rng.sample(range(len(THEMES)), FAVOURITE_THEMES):
            weights[k] = FAVOURED
        themes.append(list(accumulate(weights)))
    order = [n for n in range(len(rooms)) for _ in range(sizes.per_room)]
    rng.shuffle(order)
    first, now = span
    step = (now - timedelta(hours=1) - first) / max(1, len(order))
    rendered: dict[str, tuple[str, str, list[str]]] = {}  # text -> html, plain, words
    queries = {query: search.words_of(query) for query in QUERIES}
    corpus.matches = dict.fromkeys(QUERIES, 0)
    corpus.matches_within = dict.fromkeys(QUERIES, 0)
    seqs = [0] * len(rooms)
    batch: list[dict[str, Any]] = []
    indexed: list[dict[str, Any]] = []
    for k, n in enumerate(order):
        when = first + step * k
        when = when.replace(microsecond=when.microsecond // 1000 * 1000)  # BSON keeps ms
        seqs[n] += 1
        text = _text(rng, themes[n])
        if text not in rendered:
            made = formatting.render(text)
            rendered[text] = (made.html, made.plain, search.words_of(made.plain))
        html, plain, words = rendered[text]
        sender = rng.choice(members[n])
        message = Message(
            id=_object_id(when, rng),
            room_id=str(rooms[n].id),
            seq=seqs[n],
            sender_id=str(sender.id),
            sender_name=sender.username,
            body=text,
            html=html,
            plain=plain,
            created_at=when,
        )
        batch.append(message.model_dump_doc())
        indexed.append(
            MessageWords(
                id=message.id, room_id=message.room_id, created_at=when, words=words
            ).model_dump_doc()
        )
        if n < sizes.member_of:  # one of the searcher's rooms
            have = frozenset(words)
            for query, asked in queries.items():
                if finds(asked, have):
                    corpus.matches[query] += 1
                    corpus.matches_within[query] += n == 0
        if len(batch) >= BATCH:
            await _insert(db, batch, indexed)
            batch, indexed = [], []
    if batch:
        await _insert(db, batch, indexed)


async def _insert(
    db: AsyncDatabase[dict[str, Any]], messages: list[dict[str, Any]], words: list[dict[str, Any]]
) -> None:
    await db[Message.__collection__].insert_many(messages, ordered=False)
    await db[MessageWords.__collection__].insert_many(words, ordered=False)


async def join(uri: str, *, username: str, room_ids: Sequence[str]) -> str:
    """Makes the user of this name (registered through the app) a member of these rooms;
    returns their id."""
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(uri, tz_aware=True)
    try:
        db = client.get_default_database()
        user = await db[User.__collection__].find_one({"username_key": username_key(username)})
        if user is None:
            raise RuntimeError(f"the searcher {username} is not in the database")
        user_id = str(user["_id"])
        joined = datetime.now(UTC)
        memberships = [
            Membership(
                id=member_key(room_id, user_id),
                room_id=room_id,
                user_id=user_id,
                joined_at=joined,
            ).model_dump_doc()
            for room_id in room_ids
        ]
        await db[Membership.__collection__].insert_many(memberships)
        return user_id
    finally:
        await client.close()


# Asking


@dataclass(frozen=True)
class Asked:
    query: str
    within: bool  # narrowed to one room (?in=)
    ms: float
    status: int
    results: int  # found messages in the answer


def plan(sizes: Sizes) -> list[tuple[str, bool]]:
    """The queries in the order asked: QUERIES round and round, every within_every-th one
    narrowed to the searcher's first room."""
    every = sizes.within_every
    return [
        (QUERIES[k % len(QUERIES)], every > 0 and k % every == every - 1)
        for k in range(sizes.queries)
    ]


async def ask(pool: Pool, searcher: Account, corpus: Corpus, query: str, within: bool) -> Asked:
    """One search as the page's search box asks it (the fragment, for htmx), timed from just
    before the request is written to the end of its answer; status 0 when none came (within
    clients.REQUEST_SECS)."""
    params = {"q": query, **({"in": corpus.searched[0]} if within else {})}
    headers = {"Authorization": f"Bearer {searcher.token}", "HX-Request": "true"}
    started = time.perf_counter()
    try:
        answer = await pool.request("GET", "/search?" + urlencode(params), headers=headers)
    except RequestFailed:
        return Asked(query, within, (time.perf_counter() - started) * 1000, 0, 0)
    ms = (time.perf_counter() - started) * 1000
    return Asked(query, within, ms, answer.status, answer.body.count(RESULT))


def expected_results(corpus: Corpus, query: str, within: bool) -> int:
    """How many results the first page should show."""
    found = (corpus.matches_within if within else corpus.matches)[query]
    return min(found, search.PAGE)


def spread(values: Sequence[int]) -> str:
    """The smallest and the largest, as text."""
    if not values:
        return "-"
    low, high = min(values), max(values)
    return f"{low:,}" if low == high else f"{low:,} to {high:,}"
