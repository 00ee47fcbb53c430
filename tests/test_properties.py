"""Property-based tests (hypothesis) over every form field and route parameter, over real HTTP.

Whatever a client sends, the app answers within TIMEOUT seconds and never with a 5xx; a refusal
(4xx) changes nothing; and an accepted input is stored as the app's own rules say. Those rules
are the pure functions of webapp.rules, webapp.data._query.parse_id and webapp.web.tokens:
the expected outcome of every example is computed with them, never restated here.

The app runs with its rate limits off (LIMIT_WINDOW_SCALE=0), so a 429 is never right, except
from sign-in throttling, which the sign-in tests allow. Every test counts its examples' outcomes
and must have seen both an accepted and a refused one (explicit @examples make sure of it; see
OUTCOMES): a property whose accepted branch never ran proves nothing about it.

The people the examples act as are created once per module (hypothesis runs a test function's
examples inside one call, so function-scoped fixtures would be shared by them anyway), with
names fixed when the module is imported, so that strategies and examples can use them. Every
sign-in attempt connects from a loopback address of its own (all of 127/8 is loopback on Linux)
so that failed ones throttle nobody.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import functools
import hashlib
import hmac
import itertools
import json
import os
import re
import secrets
import ssl
import time
import unicodedata
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import (
    parse_qsl,
    quote,
    quote_from_bytes,
    quote_plus,
    unquote,
    unquote_to_bytes,
    urlencode,
)

import httpx
import jwt
import pytest
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from bson import ObjectId
from hypothesis import Phase, example, given, note, settings
from hypothesis import strategies as st
from pymongo.database import Database
from starlette.requests import cookie_parser

from tests.conftest import CALL_REPORT
from tests.html import Element, parse
from tests.support import (
    PASSWORD,
    AppServer,
    Person,
    StartApp,
    message_id,
    message_ids,
    page_cursor,
    unique_name,
    user_id,
)
from webapp.data._query import parse_id
from webapp.errors import ChatError
from webapp.rules import keys
from webapp.rules import text as texts
from webapp.settings import CSRF_MAX_AGE_SECS
from webapp.web import tokens
from webapp.web.security import MAX_BODY_BYTES

SECRET_KEY = os.environ["SECRET_KEY"]  # conftest gives the server the same one
TIMEOUT = 10.0  # seconds: every request must be answered within this
# Every client here speaks plain HTTP, but each new one would load the CA bundle (0.1 s) again.
TLS = ssl.create_default_context()
Db = Database[dict[str, Any]]
Doc = dict[str, Any]
pytestmark = pytest.mark.slow  # `pytest -m "not slow"` leaves the properties out

# The people, named at import so that strategies and explicit examples can name them.
AUTHOR_NAMES = [unique_name("prop") for _ in range(6)]
# k and s have look-alikes that lower-case or case-fold to them (Kelvin sign, long s)
PEER_NAME = f"kKs{secrets.token_hex(2)}"
NEW_NAME = unique_name("new")  # registered by an explicit example
NOBODY = unique_name("nobody")  # a name nobody has


# Outcomes: what each test's examples came to

OUTCOMES: dict[str, Counter[str]] = defaultdict(Counter)  # test id -> outcome -> examples
BOTH = frozenset({"accepted", "refused"})
# The app refuses every multipart body (415: forms are URL-encoded), so those tests can only
# ever see refusals; every other test must see both.
EXPECTED_OUTCOMES = {
    "test_multipart_text_fields": frozenset({"refused"}),
    "test_multipart_file_in_place_of_a_field": frozenset({"refused"}),
}
_running: list[str] = [""]  # the id of the test running now


def outcome(what: str) -> None:
    """Counts an example's outcome ("accepted" or "refused") for the test running."""
    assert what in BOTH
    OUTCOMES[_running[0]][what] += 1


@pytest.fixture(autouse=True)
def outcomes_seen(request: pytest.FixtureRequest) -> Iterator[None]:
    """After a test that passed: its examples took each outcome it can have."""
    _running[0] = request.node.nodeid
    yield
    report = request.node.stash.get(CALL_REPORT, None)
    if report is None or not report.passed:
        return
    seen = OUTCOMES[request.node.nodeid]
    expected = EXPECTED_OUTCOMES.get(request.node.originalname, BOTH)
    assert set(seen) == expected, f"outcomes {dict(seen)}; every test must see {sorted(expected)}"


def examples(n: int) -> settings:
    # No explain phase: it re-runs a failure many times over HTTP only to annotate the report.
    return settings(max_examples=n, deadline=None, phases=[p for p in Phase if p != Phase.explain])


# The app, the people, and a request helper that enforces "no 5xx, no hang"


@dataclass(repr=False)
class World:
    server: AppServer
    db: Db
    authors: list[Person]  # posts rotate between them
    peer: Person  # everyone's DM partner; its name has letters with Unicode look-alikes
    owner: Person  # owns the messages the edit/delete examples aim at
    other: Person  # owns a public message the owner may not change
    away: Person  # sets away messages
    guard: Person  # tries CSRF tokens (and may be signed out and back in)
    anon: httpx.Client  # no cookies: for Bearer requests
    bearer: dict[str, str]  # username -> access token
    landmarks: dict[str, str]  # role -> message id (see the world fixture)
    _turn: Iterator[Person]
    passwords: dict[str, str] = field(default_factory=dict)  # username key -> password

    @property
    def url(self) -> str:
        return self.server.url

    def __repr__(self) -> str:
        return f"World({self.url})"

    def _repr_pretty_(self, printer: Any, cycle: bool) -> None:  # in hypothesis's reports
        printer.text(repr(self))

    def author(self) -> Person:
        return next(self._turn)

    def call(self, client: httpx.Client, method: str, url: str, **kwargs: Any) -> httpx.Response:
        """One request: answered within TIMEOUT, never 5xx, a 429 with its Retry-After."""
        mark = self.server.log_path.stat().st_size if self.server.log_path.exists() else 0
        try:
            response = client.request(method, url, timeout=TIMEOUT, **kwargs)
        except httpx.TimeoutException as exc:
            raise AssertionError(f"{method} {url}: no answer within {TIMEOUT} s") from exc
        except httpx.TransportError as exc:
            raise AssertionError(f"{method} {url}: {exc!r}\n{self.log_since(mark)}") from exc
        if response.status_code >= 500:
            raise AssertionError(
                f"{method} {url} -> {response.status_code} {response.text[:300]!r}\n"
                f"{self.log_since(mark)}"
            )
        if response.status_code == 429:
            assert response.headers.get("retry-after", "").isdigit(), response.headers
        return response

    def log_since(self, mark: int) -> str:
        for _ in range(10):  # the traceback is logged once the response has gone
            time.sleep(0.05)
            with open(self.server.log_path, "rb") as log:
                log.seek(mark)
                text = log.read().decode(errors="replace")
            if "Error" in text:
                break
        lines = [line for line in text.splitlines() if " HTTP/1.1" not in line]  # access log
        return "app log:\n" + "\n".join(lines[-40:])


def fresh_client(base_url: str) -> httpx.Client:
    """A client connecting from a loopback address of its own: sign-in throttling counts per
    address, so its failures throttle no one else."""
    address = (
        f"127.{secrets.randbelow(254) + 1}.{secrets.randbelow(256)}.{secrets.randbelow(253) + 2}"
    )
    transport = httpx.HTTPTransport(local_address=address, verify=TLS)
    return httpx.Client(base_url=base_url, timeout=TIMEOUT, transport=transport)


def send(
    world: World,
    someone: Person,
    method: str,
    url: str,
    data: dict[str, str] | None = None,
    *,
    via: str = "htmx",
    **kwargs: Any,
) -> httpx.Response:
    """A request as `someone`: "htmx" (cookie, CSRF header), "field" (cookie, CSRF in the form),
    "plain" (a browser form without JavaScript) or "bearer" (a script with a token)."""
    headers = dict(kwargs.pop("headers", {}))
    client = someone.client
    if via == "bearer":
        client = world.anon
        headers["Authorization"] = f"Bearer {world.bearer[someone.username]}"
    elif via == "field" and data is not None:
        data = {**data, "csrf_token": someone.csrf}
        headers["HX-Request"] = "true"
    else:
        headers["X-CSRF-Token"] = someone.csrf
        if via == "plain":
            headers["Accept"] = "text/html"
        else:
            headers["HX-Request"] = "true"
    return world.call(client, method, url, data=data, headers=headers, **kwargs)


def rule(check: Callable[[str], Any], value: str) -> tuple[Any, int | None]:
    """What one of the app's rules makes of a value: (the result, None) or (None, its status)."""
    try:
        return check(value), None
    except ChatError as exc:
        return None, exc.status_code


def form(**fields: str | None) -> dict[str, str]:
    """The form fields that are there (None: the field is left out)."""
    return {name: value for name, value in fields.items() if value is not None}


def too_large(fields: dict[str, str]) -> bool:
    return len(urlencode(fields).encode()) > MAX_BODY_BYTES


def head_size(request: httpx.Request) -> int:
    """The bytes of a request's head: its request line and headers."""
    line = len(request.method) + len(request.url.raw_path) + 11
    return line + sum(len(k) + len(v) + 4 for k, v in request.headers.raw)


def refused(response: httpx.Response, expected: set[int], *, throttled: bool = False) -> None:
    """The request was refused with one of these statuses (or 429, where sign-ins may be
    throttled); counted as a refusal."""
    if head_size(response.request) > 8 * 1024:  # heads over 16 KiB may be refused as such
        expected = expected | {400, 414, 431}
    if throttled:
        expected = expected | {429}
    assert response.status_code in expected, (
        f"expected one of {sorted(expected)}, got {response.status_code}: {response.text[:300]!r}"
    )
    outcome("refused")


def refused_unchanged(response: httpx.Response) -> bool:
    """Whether a request whose refusal the test cannot foretell was refused: any 4xx but 429
    (the limits are off), counted as a refusal. The caller checks that nothing changed."""
    if response.status_code < 400:
        return False
    assert response.status_code != 429, response.text[:300]
    outcome("refused")
    return True


def session_cookies(response: httpx.Response) -> list[str]:
    return [h for h in response.headers.get_list("set-cookie") if h.startswith("session=")]


def sub_of(token: str) -> str:
    return str(tokens.read_session_token(token, secret=SECRET_KEY).user_id)


def seen_path(url: str) -> str:
    """The path of `url` as the server will decode it: httpx normalises it (dot segments,
    characters it must escape), uvicorn percent-decodes the result once."""
    return unquote(httpx.URL(url).raw_path.split(b"?")[0].decode("ascii"))


def listing(world: World, someone: Person, path: str) -> Element:
    """A conversation's latest messages as htmx fetches them, parsed (CSRF tokens, which carry
    a timestamp, left out)."""
    response = world.call(someone.client, "GET", path, headers={"HX-Request": "true"})
    assert response.status_code == 200, response.text[:300]
    shown = parse(response.text)
    for token in shown.find_all("input", name="csrf_token"):
        token.attrs["value"] = ""
    return shown


@dataclass(frozen=True)
class Where:
    path: str  # the conversation's page; .../messages below it
    key: str  # its conversation key

    @property
    def messages(self) -> str:
        return f"{self.path}/messages"


def conversation(world: World, someone: Person, where: str) -> Where:
    if where == "public":
        return Where("/rooms/public", keys.PUBLIC)
    peer = world.peer
    return Where(
        f"/dm/{peer.username}", keys.dm_key(user_id(world.db, someone), user_id(world.db, peer))
    )


def room_id(world: World, key: str) -> str | None:
    """The id of the room of this key, if it has been made."""
    room = world.db["room"].find_one({"key": key})
    return str(room["_id"]) if room else None


def key_of(world: World, message: Doc) -> str:
    """The key of a stored message's room."""
    room = world.db["room"].find_one({"_id": ObjectId(message["room_id"])})
    assert room is not None, "a message of no room"
    return str(room["key"])


def readable_by(world: World, message: Doc, user: str) -> bool:
    """Whether `user` may read this stored message: anyone in the public room, else members."""
    room = world.db["room"].find_one({"_id": ObjectId(message["room_id"])})
    assert room is not None, "a message of no room"
    if room["kind"] == "public":
        return True
    return world.db["membership"].find_one({"_id": f"{room['_id']}:{user}"}) is not None


def conversation_state(world: World, someone: Person, where: Where) -> tuple[Element, int, int]:
    count = world.db["message"].count_documents({"room_id": room_id(world, where.key)})
    return listing(world, someone, where.messages), count, world.db["room"].count_documents({})


def posted_id(response: httpx.Response) -> str:
    if response.status_code == 303:
        return response.headers["location"].rpartition("#msg-")[2]
    return message_id(response.text)


def post(world: World, someone: Person, path: str, text: str) -> str:
    """Posts a set-up message: its id."""
    response = send(world, someone, "POST", path, {"body": text})
    assert response.status_code == 201, response.text[:300]
    return message_id(response.text)


@pytest.fixture(scope="module")
def unlimited_server(start_app: StartApp) -> AppServer:
    """The app with its rate limits off: posting, rooms and adds are never refused for pace."""
    return start_app(LIMIT_WINDOW_SCALE="0")


@pytest.fixture(scope="module")
def world(unlimited_server: AppServer, db: Db) -> Iterator[World]:
    url = unlimited_server.url
    with contextlib.ExitStack() as stack:

        def person(name: str) -> Person:
            return stack.enter_context(Person.register(url, name))

        authors = [person(name) for name in AUTHOR_NAMES]
        peer = person(PEER_NAME)
        owner, other, away, guard = (
            person(unique_name(p)) for p in ("owner", "other", "away", "guard")
        )
        anon = stack.enter_context(httpx.Client(base_url=url, timeout=TIMEOUT, verify=TLS))
        everyone = [*authors, peer, owner, other, away, guard]

        def token(someone: Person) -> str:
            fields = {"username": someone.username, "password": someone.password}
            response = anon.post("/api/token", data=fields)
            assert response.status_code == 200, response.text
            return str(response.json()["access_token"])

        bearer = {someone.username: token(someone) for someone in everyone}
        made = World(
            unlimited_server, db, authors, peer, owner, other, away, guard, anon, bearer, {},
            itertools.cycle(authors),
        )  # fmt: skip
        dm_with_peer = f"/dm/{peer.username}/messages"
        made.landmarks = {
            "own public": post(made, owner, "/rooms/public/messages", "mine"),
            "own dm": post(made, owner, dm_with_peer, "mine, to the peer"),
            "own deleted": post(made, owner, "/rooms/public/messages", "gone"),
            "other's public": post(made, other, "/rooms/public/messages", "not"),
            "hidden dm": post(made, other, dm_with_peer, "between others"),
            "author's dm": post(made, authors[0], dm_with_peer, "to the peer"),
        }
        made.passwords = {texts.username_key(p.username): p.password for p in everyone}
        deleted = send(made, owner, "DELETE", f"/messages/{made.landmarks['own deleted']}")
        assert deleted.status_code == 200, deleted.text
        yield made


# Strategies

# Characters that break things: controls, bidi and invisible ones, separators, markup.
SPECIAL = (
    "\x00\x01\x08\t\n\r\x0b\x0c\x1b\x1c\x7f\x85\x9b\xa0\xad\u061c\u200b\u200d\u200e\u200f"
    "\u2028\u2029\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069\u3000\ufeff\ufffd"
    "\U0001f600\U000e0001 <>&\"'%+=;/\\#?"
)
CHARS = st.one_of(st.characters(codec="utf-8"), st.sampled_from(SPECIAL))
SHORT_TEXT = st.text(alphabet=CHARS, max_size=40)
WHITESPACE = st.text(alphabet=" \t\r\n\x0b\x0c\x1c\x85\xa0\u2028\u3000", max_size=8)


def repeated(lengths: list[int]) -> st.SearchStrategy[str]:
    """Long text, cheaply: a short unit repeated to one of these lengths."""
    return st.builds(
        lambda unit, n: (unit * n)[:n],
        st.text(alphabet=CHARS, min_size=1, max_size=3),
        st.sampled_from(lengths),
    )


def optional(strategy: st.SearchStrategy[str]) -> st.SearchStrategy[str | None]:
    return st.one_of(strategy, strategy, strategy, st.none())  # None: the field is left out


MESSAGE_TEXT = st.one_of(
    SHORT_TEXT,
    WHITESPACE,
    st.tuples(WHITESPACE, SHORT_TEXT, WHITESPACE).map("".join),
    repeated([texts.BODY_MAX - 1, texts.BODY_MAX, texts.BODY_MAX + 1, 70_000]),
)
AWAY_TEXT = st.one_of(
    SHORT_TEXT,
    WHITESPACE,
    repeated([texts.AWAY_MAX - 1, texts.AWAY_MAX, texts.AWAY_MAX + 1, 70_000]),
)
PASSWORD_TEXT = st.one_of(
    SHORT_TEXT,
    st.text(alphabet=CHARS, min_size=texts.PASSWORD_MIN - 1, max_size=texts.PASSWORD_MIN + 1),
    repeated([texts.PASSWORD_MAX, texts.PASSWORD_MAX + 1, 70_000]),
)
VALID_NAME = st.from_regex(texts.USERNAME_RE, fullmatch=True)
VIA = st.sampled_from(["htmx", "field", "plain", "bearer"])


LOOK_ALIKE_KINDS = ("lower", "casefold", "nfkc")


@functools.cache
def look_alikes() -> dict[str, dict[str, list[str]]]:
    """For each character a username may have, the other characters that lower-case, else
    case-fold, else NFKC-normalise to it: the Kelvin sign for k, the long s for s, fullwidth
    and mathematical letters and digits..."""
    table: dict[str, dict[str, list[str]]] = defaultdict(lambda: defaultdict(list))
    for code in range(0x80, 0x20000):
        char = chr(code)
        forms = {"lower": char.lower, "casefold": char.casefold}
        if unicodedata.decomposition(char):  # else NFKC leaves it as it is
            forms["nfkc"] = lambda c=char: unicodedata.normalize("NFKC", c).lower()
        for kind, fold in forms.items():
            folded = fold()
            if len(folded) == 1 and texts.USERNAME_RE.fullmatch(folded * 3):
                table[folded][kind].append(char)
                break
    return table


@st.composite
def look_alike(draw: st.DrawFn, name: str) -> str:
    """`name` with a character or two swapped for the other case or a look-alike, and possibly
    padded: the names that might reach that account."""
    chars = list(name)
    for spot in draw(st.lists(st.integers(0, len(name) - 1), min_size=1, max_size=2, unique=True)):
        c = name[spot]
        kind = draw(st.sampled_from(["swapcase", *LOOK_ALIKE_KINDS]))
        options = look_alikes()[c.lower()].get(kind) if kind != "swapcase" else None
        chars[spot] = draw(st.sampled_from(options or [c.swapcase()]))
    pad = st.text(alphabet=" \t\x00\u200b\u3000", max_size=2)
    return draw(pad) + "".join(chars) + draw(pad)


def username_text(base: str | None = None) -> st.SearchStrategy[str]:
    near = look_alike(base) if base else VALID_NAME.flatmap(look_alike)
    return st.one_of(near, near, SHORT_TEXT, VALID_NAME, repeated([33, 200, 1000]))


# Registering and signing in


@examples(25)
@given(username=optional(username_text()), password=optional(PASSWORD_TEXT))
@example(username=NEW_NAME, password=PASSWORD)  # accepted
@example(username="", password=PASSWORD)  # refused
def test_register_any_username_and_password(
    world: World, username: str | None, password: str | None
) -> None:
    users = world.db["user"]
    fields = form(username=username, password=password)
    name, name_refusal = rule(texts.clean_username, username or "")
    _, password_refusal = rule(texts.check_password, password or "")
    taken = name is not None and users.find_one({"username_key": texts.username_key(name)})
    count = users.count_documents({})

    with fresh_client(world.url) as client:
        response = world.call(client, "POST", "/register", data=fields)

    refusals = {s for s in (name_refusal, password_refusal) if s} | ({409} if taken else set())
    if too_large(fields):
        refusals = {413}
    if refusals:
        refused(response, refusals)
        assert users.count_documents({}) == count, "a refused registration created a user"
        assert not session_cookies(response)
        return
    assert response.status_code == 303, response.text[:300]
    assert users.count_documents({}) == count + 1
    doc = users.find_one({"username_key": texts.username_key(name)})
    assert doc is not None
    assert doc["username"] == name
    assert PasswordHasher().verify(doc["password_hash"], password or "")
    world.passwords[doc["username_key"]] = password or ""
    [cookie] = session_cookies(response)
    assert sub_of(cookie.split(";")[0].removeprefix("session=")) == str(doc["_id"])
    outcome("accepted")


def password_matches(world: World, doc: Doc | None, password: str) -> bool:
    if doc is None:
        return False
    if doc["username_key"] in world.passwords:  # known, and cheaper than argon2
        return world.passwords[doc["username_key"]] == password
    with contextlib.suppress(VerificationError, InvalidHashError):
        return PasswordHasher().verify(doc["password_hash"], password)
    return False


def check_sign_in(world: World, route: str, username: str | None, password: str | None) -> None:
    """Only a name the app could have registered, naming an account, with its password, signs
    in; and then as that account. A refusal sets no session and changes no account."""
    note(f"username, escaped: {username!a}")  # look-alikes print like the letters they mimic
    fields = form(username=username, password=password)
    users = world.db["user"]
    name, _ = rule(texts.clean_username, username or "")
    account = users.find_one({"username_key": texts.username_key(name)}) if name else None
    touched = users.find_one({"username_key": texts.username_key(username or "")})

    with fresh_client(world.url) as client:
        response = world.call(client, "POST", route, data=fields)

    ok = password_matches(world, account, password or "")
    if too_large(fields) or not ok or response.status_code == 429:  # 429: sign-ins throttled
        refused(response, {413} if too_large(fields) else {401}, throttled=True)
        assert not session_cookies(response)
        if route == "/api/token":
            assert isinstance(response.json()["error"], str)
            assert "access_token" not in response.json()
        assert users.find_one({"username_key": texts.username_key(username or "")}) == touched
        return
    assert account is not None
    if route == "/login":
        assert response.status_code == 303, response.text[:300]
        [cookie] = session_cookies(response)
        token = cookie.split(";")[0].removeprefix("session=")
    else:
        assert response.status_code == 200, response.text[:300]
        answer = response.json()
        assert answer["token_type"] == "bearer"
        assert isinstance(answer["expires_in"], int)
        assert answer["expires_in"] > 0
        token = answer["access_token"]
    assert sub_of(token) == str(account["_id"])
    outcome("accepted")


RIGHT = st.just(PASSWORD)


@pytest.mark.parametrize("route", ["/login", "/api/token"])
@examples(20)
@given(
    username=optional(username_text(PEER_NAME)),
    password=optional(st.one_of(RIGHT, RIGHT, PASSWORD_TEXT)),
)
@example(username=PEER_NAME, password=PASSWORD)  # accepted
@example(username=PEER_NAME, password="not the password")  # refused
def test_sign_in_any_username_and_password(
    world: World, route: str, username: str | None, password: str | None
) -> None:
    check_sign_in(world, route, username, password)


@pytest.mark.parametrize("route", ["/login", "/api/token"])
@examples(25)
@given(username=look_alike(PEER_NAME))
@example(username=PEER_NAME.upper())  # accepted: names ignore case
@example(username="\u212a" + PEER_NAME[1:])  # refused: a Kelvin sign is no k
def test_sign_in_with_a_look_alike_of_a_name(world: World, route: str, username: str) -> None:
    """The right password under another spelling of the name: signs in only where the app's
    own rule for names makes it the same name."""
    check_sign_in(world, route, username, PASSWORD)


# Posting


@pytest.mark.parametrize("where", ["public", "dm"])
@examples(25)
@given(body=optional(MESSAGE_TEXT), via=VIA)
@example(body="said by an example", via="htmx")  # accepted
@example(body=" \n ", via="htmx")  # refused
def test_posting_any_body(world: World, where: str, body: str | None, via: str) -> None:
    author = world.author()
    place = conversation(world, author, where)
    before = conversation_state(world, author, place)
    fields = form(body=body)
    expected, refusal = rule(texts.clean_body, body or "")

    response = send(world, author, "POST", place.messages, fields, via=via)

    if too_large(fields) or refusal:
        refused(response, {413} if too_large(fields) else {refusal or 0})
        assert conversation_state(world, author, place) == before, "a refused post was stored"
        return
    assert response.status_code == (303 if via == "plain" else 201), response.text[:300]
    posted = posted_id(response)
    doc = world.db["message"].find_one({"_id": ObjectId(posted)})
    assert doc is not None
    assert doc["body"] == expected
    assert key_of(world, doc) == place.key
    assert doc["sender_id"] == user_id(world.db, author)
    assert posted in message_ids(listing(world, author, place.messages))
    outcome("accepted")


# Controls that must never reach a stored text: C0 and C1 controls other than tab, line feed and
# carriage return, and the bidi embeddings, overrides and isolates ("Trojan Source").
BIDI = "\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069"
NEVER_STORED = frozenset(
    [chr(c) for c in [*range(0x20), 0x7F, *range(0x80, 0xA0)] if chr(c) not in "\t\n\r"]
    + list(BIDI)
)
CONTROL_TEXT = st.text(
    alphabet=st.sampled_from(sorted(NEVER_STORED)) | st.characters(codec="ascii"),
    min_size=1,
    max_size=20,
)


@pytest.mark.parametrize("field", ["body", "away_message"])
@examples(20)
@given(text=CONTROL_TEXT)
@example(text="\x07" + "x" * 250)  # a message (accepted); too long an away message
@example(text="\x00\x01")  # nothing left of a message; an away message cleared
def test_no_control_characters_are_stored(world: World, field: str, text: str) -> None:
    if field == "body":
        author = world.author()
        response = send(world, author, "POST", "/rooms/public/messages", {"body": text})
        if refused_unchanged(response):
            return  # refusing is one way to keep them out (test_posting_any_body: unchanged)
        doc = world.db["message"].find_one({"_id": ObjectId(message_id(response.text))})
    else:
        response = send(world, world.away, "POST", "/away", {"away_message": text})
        if refused_unchanged(response):
            return
        doc = world.db["user"].find_one({"_id": ObjectId(user_id(world.db, world.away))})
    assert doc is not None
    stored = doc[field]
    found = sorted({f"U+{ord(c):04X}" for c in stored if c in NEVER_STORED})
    assert not found, f"stored {stored!r} with {found}"
    outcome("accepted")


# DM routes with any username in the path


DM_ROUTES = {
    "post": ("POST", "/messages"),
    "list": ("GET", "/messages"),
    "page": ("GET", ""),
    "typing": ("POST", "/typing"),
    "read": ("POST", "/read"),
}


def traces(world: World, someone: Person) -> tuple[int, dict[str, Any], list[Doc]]:
    """What a request by `someone` could leave behind: messages, typing notices, memberships
    (read positions, and the rooms a first direct message makes)."""
    me = user_id(world.db, someone)
    typing = {doc["_id"]: doc["at"] for doc in world.db["typing"].find({"user_id": me})}
    markers = list(world.db["membership"].find({"user_id": me}, sort=[("_id", 1)]))
    return world.db["message"].count_documents({"sender_id": me}), typing, markers


def assert_no_traces(world: World, someone: Person, before: tuple[Any, ...]) -> None:
    count, typing, markers = traces(world, someone)
    assert count == before[0], "a refused request stored a message"
    for key, at in typing.items():  # old notices may expire meanwhile; none may appear
        assert before[1].get(key) == at, "a refused request stored a typing notice"
    assert markers == before[2], "a refused request moved a read marker"


@st.composite
def dm_name(draw: st.DrawFn) -> tuple[int, str]:
    """(an author, by index; a name for a DM's path, near the peer's or that author's own)."""
    author = draw(st.integers(0, len(AUTHOR_NAMES) - 1), label="author")
    whose = draw(st.sampled_from(["peer", "peer", "self"]), label="whose name")
    base = PEER_NAME if whose == "peer" else AUTHOR_NAMES[author]
    near = look_alike(base)
    return author, draw(st.one_of(near, near, username_text(base)), label="username")


@pytest.mark.parametrize("action", list(DM_ROUTES))
@examples(15)
@given(target=dm_name(), twice=st.booleans())
@example(target=(0, PEER_NAME), twice=False)  # accepted
@example(target=(0, NOBODY), twice=False)  # refused
def test_dm_routes_any_username(
    world: World, action: str, target: tuple[int, str], twice: bool
) -> None:
    author, name = world.authors[target[0]], target[1]
    note(f"username, escaped: {name!a}")
    segment = quote(name, safe="")
    segment = quote(segment, safe="") if twice else segment
    method, suffix = DM_ROUTES[action]
    headers = {"Accept": "text/html"} if action == "page" else {"HX-Request": "true"}
    url = f"/dm/{segment}{suffix}"
    route = re.fullmatch(r"/dm/([^/]+)" + re.escape(suffix), seen_path(world.url + url))
    cleaned, _ = rule(texts.clean_username, route.group(1)) if route else (None, None)
    users = world.db["user"]
    user = users.find_one({"username_key": texts.username_key(cleaned)}) if cleaned else None
    before = traces(world, author)

    if method == "GET":
        response = world.call(author.client, "GET", url, headers=headers)
    else:
        text = f"to {name!r} {secrets.token_hex(4)}"
        response = send(world, author, "POST", url, {"body": text})

    if user is None:
        refused(response, {404} if route else {404, 405, 307, 308})
        assert_no_traces(world, author, before)
        return
    key = keys.dm_key(user_id(world.db, author), str(user["_id"]))
    if action == "post":
        assert response.status_code == 201, response.text[:300]
        doc = world.db["message"].find_one({"_id": ObjectId(message_id(response.text))})
        assert doc is not None
        assert (key_of(world, doc), doc["body"]) == (key, texts.clean_body(text))
    elif action in ("list", "page"):
        assert response.status_code == 200, response.text[:300]
    else:
        assert response.status_code == 204, response.text[:300]
        room = room_id(world, key)
        if action == "typing":  # typing makes the room, as a first message would
            assert world.db["typing"].find_one({"_id": f"{user_id(world.db, author)}:{room}"})
        elif room is not None:  # reading a conversation nobody wrote in records nothing
            membership = world.db["membership"].find_one(
                {"_id": f"{room}:{user_id(world.db, author)}"}
            )
            sequence = world.db["room_sequences"].find_one({"_id": room}) or {"value": 0}
            assert membership is not None and membership["read_seq"] == sequence["value"]
    outcome("accepted")


@examples(20)
@given(username=optional(username_text()))
@example(username=PEER_NAME)  # accepted
@example(username="no such!")  # refused
def test_find_person_any_username(world: World, username: str | None) -> None:
    """GET /dm?username= sends a valid name to its DM page, and anything else nowhere."""
    params = {"username": username} if username is not None else None
    someone = world.authors[0]
    response = world.call(someone.client, "GET", "/dm", params=params)
    cleaned, _ = rule(texts.clean_username, username or "")
    if cleaned is None:
        refused(response, {404})
        return
    assert response.status_code == 303, response.text[:300]
    assert response.headers["location"] == f"/dm/{cleaned}"
    page = world.call(someone.client, "GET", f"/dm/{cleaned}")
    exists = world.db["user"].find_one({"username_key": texts.username_key(cleaned)})
    assert page.status_code == (200 if exists else 404)
    outcome("accepted")


# Message ids: ?before=, and the edit and delete routes

ID_ROLES = ["own public", "own dm", "own deleted", "other's public", "hidden dm", "author's dm"]


@st.composite
def message_ref(draw: st.DrawFn) -> tuple[str, str]:
    """(a role from the world's landmarks, or "text"; a change to make to that id, or text)."""
    role = draw(st.sampled_from([*ID_ROLES, "text"]))
    if role == "text":
        return role, draw(st.one_of(SHORT_TEXT, st.integers().map(str), repeated([24, 1000])))
    change = draw(
        st.sampled_from(["none", "upper", "flip", "cut", "grow", "pad"]),
    )
    return role, change


def resolve(world: World, ref: tuple[str, str]) -> str:
    role, change = ref
    if role == "text":
        return change
    real = world.landmarks[role]
    return {
        "none": real,
        "upper": real.upper(),
        "flip": real[:-1] + ("0" if real[-1] != "0" else "1"),
        "cut": real[:-1],
        "grow": real + "0",
        "pad": f" {real}\n",
    }[change]


@pytest.mark.parametrize("where", ["public", "dm"])
@examples(20)
@given(
    typed=st.one_of(
        st.none(), st.text(alphabet=st.characters(min_codepoint=0x21, max_codepoint=0x7E))
    ),
    ref=message_ref(),
    htmx=st.booleans(),
)
@example(typed=None, ref=("own public", "none"), htmx=True)  # accepted in the public room
@example(typed=None, ref=("own dm", "none"), htmx=True)  # accepted in the DM
@example(typed="nothing", ref=("text", ""), htmx=False)  # refused
def test_listing_before_any_cursor(
    world: World, where: str, typed: str | None, ref: tuple[str, str], htmx: bool
) -> None:
    """A cursor as typed into the address bar (stray %, +, & and the like included), or a
    message's id, or one a little off."""
    viewer = world.owner
    place = conversation(world, viewer, where)
    if typed is not None:
        url = f"{place.messages}?before={typed}"
    else:
        url = f"{place.messages}?{urlencode({'before': resolve(world, ref)})}"
    headers = {"HX-Request": "true"} if htmx else {"Accept": "text/html"}
    response = world.call(viewer.client, "GET", url, headers=headers)

    sent = response.request.url.query.decode("ascii")
    before = dict(parse_qsl(sent, keep_blank_values=True)).get("before")  # the last one wins
    oid = parse_id(before) if before is not None else None
    cursor = world.db["message"].find_one({"_id": oid}) if oid else None
    if before is not None and (cursor is None or key_of(world, cursor) != place.key):
        refused(response, {404})
        return
    assert response.status_code == 200, response.text[:300]
    shown = message_ids(response.text)
    docs = list(world.db["message"].find({"_id": {"$in": [ObjectId(i) for i in shown]}}))
    assert {key_of(world, doc) for doc in docs} <= {place.key}
    if cursor is not None:
        assert str(cursor["_id"]) not in shown
        assert all(doc["created_at"] <= cursor["created_at"] for doc in docs)
    outcome("accepted")


MESSAGE_ROUTES = {
    "PATCH": ("PATCH", ""),
    "DELETE": ("DELETE", ""),
    "POST edit": ("POST", "/edit"),
    "POST delete": ("POST", "/delete"),
    "GET edit": ("GET", "/edit"),
}


def restock(world: World) -> None:
    """Puts back the owner's live messages that an earlier example deleted."""
    for role, path in [("own public", "/rooms/public/messages"), ("own dm", "")]:
        doc = world.db["message"].find_one({"_id": ObjectId(world.landmarks[role])})
        if doc is None or doc["deleted"]:
            path = path or f"/dm/{world.peer.username}/messages"
            world.landmarks[role] = post(world, world.owner, path, "mine again")


def landmark_docs(world: World) -> dict[str, Doc]:
    ids = [ObjectId(i) for i in world.landmarks.values()]
    return {str(doc["_id"]): doc for doc in world.db["message"].find({"_id": {"$in": ids}})}


@examples(35)
@given(
    route=st.sampled_from(list(MESSAGE_ROUTES)),
    ref=message_ref(),
    twice=st.booleans(),
    body=optional(MESSAGE_TEXT),
    via=VIA,
    cancel=st.booleans(),
)
@example(  # accepted
    route="PATCH", ref=("own public", "none"), twice=False, body="edited", via="htmx", cancel=False
)
@example(  # refused
    route="DELETE", ref=("other's public", "none"), twice=False, body=None, via="htmx", cancel=False
)
def test_message_routes_any_id_and_body(
    world: World,
    route: str,
    ref: tuple[str, str],
    twice: bool,
    body: str | None,
    via: str,
    cancel: bool,
) -> None:
    restock(world)
    owner, me = world.owner, user_id(world.db, world.owner)
    segment = quote(resolve(world, ref), safe="")
    segment = quote(segment, safe="") if twice else segment
    method, suffix = MESSAGE_ROUTES[route]
    url = f"/messages/{segment}{suffix}"
    matched = re.fullmatch(r"/messages/([^/]+)" + re.escape(suffix), seen_path(world.url + url))
    oid = parse_id(matched.group(1)) if matched else None
    target = world.db["message"].find_one({"_id": oid}) if oid else None
    before, count = landmark_docs(world), world.db["message"].count_documents({})
    fields = form(body=body)
    if method == "GET":
        headers = {"Accept": "text/html"} if via == "plain" else {"HX-Request": "true"}
        params = {"cancel": ""} if cancel else None  # the edit form's Cancel
        response = world.call(owner.client, "GET", url, headers=headers, params=params)
    else:
        response = send(world, owner, method, url, fields, via=via)

    refusals: set[int] = set()
    if not matched:
        refusals |= {404, 405}
    elif target is None or not readable_by(world, target, me):
        refusals |= {404}
    elif target["sender_id"] != me:
        refusals |= {403, 404}
    elif target["deleted"]:
        refusals |= {404, 409, 410}
    edits = route in ("PATCH", "POST edit")
    expected, body_refusal = rule(texts.clean_body, body or "")
    if edits and body_refusal:
        refusals.add(body_refusal)
    if method != "GET" and too_large(fields):
        refusals.add(413)
    if refusals:
        refused(response, refusals)
        assert landmark_docs(world) == before, "a refused request changed a message"
        assert world.db["message"].count_documents({}) == count
        return

    assert target is not None
    plain = via == "plain" and method != "GET"
    assert response.status_code == (303 if plain else 200), response.text[:300]
    after = landmark_docs(world)
    changed = str(target["_id"])
    assert {k: v for k, v in after.items() if k != changed} == {
        k: v for k, v in before.items() if k != changed
    }, "a request changed a message other than its own"
    doc = after[changed]
    if edits:
        assert (doc["body"], doc["deleted"]) == (expected, False)
        assert doc["edited_at"] is not None
    elif method != "GET":
        assert (doc["body"], doc["deleted"]) == ("", True)
    else:
        assert doc == before[changed]
    outcome("accepted")


# Away messages


@examples(25)
@given(away=optional(AWAY_TEXT), via=VIA)
@example(away="back at three", via="htmx")  # accepted
@example(away="x" * (texts.AWAY_MAX + 1), via="htmx")  # refused
def test_away_any_text(world: World, away: str | None, via: str) -> None:
    users = world.db["user"]
    me = {"_id": ObjectId(user_id(world.db, world.away))}
    before = users.find_one(me)
    assert before is not None
    fields = form(away_message=away)
    expected, refusal = rule(texts.clean_away, away or "")
    if away is None:
        refusal = 400  # no field at all is a mistake; an empty one clears the message

    response = send(world, world.away, "POST", "/away", fields, via=via)

    if too_large(fields) or refusal:
        refused(response, {413} if too_large(fields) else {refusal or 0})
        assert users.find_one(me) == before, "a refused away message was stored"
        return
    if via == "plain":
        assert response.status_code == 303, response.text[:300]
    else:
        assert response.status_code == 200, response.text[:300]
        assert response.json() == {"away_message": expected}
    after = users.find_one(me)
    assert after is not None
    assert after["away_message"] == expected
    outcome("accepted")


# Raw bodies: any bytes, any content type


# Route -> (its field, the app's rule for it). Messages go to the author's notes to self: the
# same form handling as any conversation's, with a short list to compare.
FORM_ROUTES: dict[str, tuple[str, Callable[[str], str]]] = {
    "message": ("body", texts.clean_body),
    "away": ("away_message", texts.clean_away),
}


def notes(world: World, someone: Person) -> Where:
    me = user_id(world.db, someone)
    return Where(f"/dm/{someone.username}", keys.dm_key(me, me))


def form_target(world: World, route: str) -> tuple[Person, str]:
    """Who sends a form to this route, and where."""
    if route == "message":
        someone = world.author()
        return someone, notes(world, someone).messages
    return world.away, "/away"


def form_pairs(body: bytes) -> list[tuple[str | None, str | None]]:
    """An urlencoded body's fields, read as the URL standard reads them (percent-decoded to
    bytes, then UTF-8); a name or value that is not UTF-8 comes back as None."""

    def text(raw: bytes) -> str | None:
        try:
            return unquote_to_bytes(raw.replace(b"+", b" ")).decode()
        except UnicodeDecodeError:
            return None

    pairs = []
    for part in body.split(b"&"):
        if part:
            key, _, value = part.partition(b"=")
            pairs.append((text(key), text(value)))
    return pairs


def stored_value(world: World, route: str, response: httpx.Response) -> str:
    if route == "message":
        doc = world.db["message"].find_one({"_id": ObjectId(message_id(response.text))})
        assert doc is not None
        return str(doc["body"])
    doc = world.db["user"].find_one(
        {"_id": ObjectId(user_id(world.db, world.away))}
    )  # form_target's
    assert doc is not None
    return str(doc["away_message"])


def route_state(world: World, route: str, someone: Person) -> Any:
    if route == "message":
        return conversation_state(world, someone, notes(world, someone))
    return world.db["user"].find_one({"_id": ObjectId(user_id(world.db, someone))})


def check_form_outcome(
    world: World,
    route: str,
    someone: Person,
    response: httpx.Response,
    before: Any,
    candidates: list[str],
) -> None:
    """Refused: nothing changed. Accepted: what was stored is what the route's rule makes of
    one of the candidate values the sender could have meant."""
    _, clean = FORM_ROUTES[route]
    if refused_unchanged(response):
        assert route_state(world, route, someone) == before, "a refused request changed something"
        return
    assert response.status_code == (201 if route == "message" else 200), response.text[:300]
    allowed = [value for value, refusal in (rule(clean, c) for c in candidates) if not refusal]
    stored = stored_value(world, route, response)
    assert stored in allowed, f"stored {stored!r}; the form meant one of {allowed!r}"
    outcome("accepted")


URLENCODED = "application/x-www-form-urlencoded"
HEADER_TEXT = st.text(alphabet=st.characters(min_codepoint=0x20, max_codepoint=0x7E), max_size=40)


def header_bytes(text: str) -> bytes:
    """Text as a header value may carry it (no controls, no outer blanks)."""
    raw = bytes(b for b in text.encode() if b >= 0x20 and b != 0x7F)
    return raw.strip(b" \t")


# Any header value, as the server reads it (bytes as Latin-1): ASCII, or UTF-8 bytes of any text.
HEADER_VALUE = st.one_of(
    HEADER_TEXT.map(str.strip), SHORT_TEXT.map(lambda t: header_bytes(t).decode("latin-1"))
)
PAIR_VALUE = st.one_of(
    st.binary(max_size=20),  # raw bytes, UTF-8 or not
    st.binary(max_size=20).map(lambda b: quote_from_bytes(b).encode()),  # percent-encoded
    SHORT_TEXT.map(lambda s: s.encode()),  # UTF-8, not percent-encoded
    SHORT_TEXT.map(lambda s: quote_plus(s).encode()),  # as browsers send it
)
PAIR = st.tuples(
    st.one_of(
        st.sampled_from([b"body", b"away_message", b"bod%79", b"away%5Fmessage", b"csrf_token"]),
        st.binary(max_size=8),
    ),
    PAIR_VALUE,
)


# An urlencoded body as browsers send it: name=value pairs joined by &, in unreserved ASCII and
# well-formed percent escapes.
_PART = rb"(?:[A-Za-z0-9*\-._+]|%[0-9A-Fa-f]{2})"
AS_BROWSERS_SEND = re.compile(rb"%s+=%s*(?:&%s+=%s*)*" % (_PART, _PART, _PART, _PART))


FIELD = b"\x00the field\x00"  # stands for the route's own field, until the body is sent


def raw_body() -> st.SearchStrategy[bytes]:
    """Bytes for an urlencoded form, most of them with the route's FIELD in it."""
    own = st.tuples(st.just(FIELD), PAIR_VALUE)
    pairs = st.lists(own | own | PAIR, min_size=1, max_size=3)
    joined = pairs.map(lambda pairs: b"&".join(k + b"=" + v for k, v in pairs))
    return st.one_of(joined, joined, st.binary(max_size=40))


@pytest.mark.parametrize("route", list(FORM_ROUTES))
@examples(30)
@given(body=raw_body())
@example(body=FIELD + b"=hello")  # accepted
@example(body=FIELD + b"=")  # an empty message (refused); no away message (accepted)
@example(body=FIELD + b"=" + b"x" * (texts.AWAY_MAX + 1))  # a message; too long an away one
def test_raw_form_bodies(world: World, route: str, body: bytes) -> None:
    """Any bytes as an urlencoded form: a value is its percent-decoded bytes read as UTF-8."""
    name, clean = FORM_ROUTES[route]
    body = body.replace(FIELD, name.encode())
    someone, path = form_target(world, route)
    headers = {"X-CSRF-Token": someone.csrf, "HX-Request": "true", "Content-Type": URLENCODED}
    before = route_state(world, route, someone)

    response = world.call(someone.client, "POST", path, content=body, headers=headers)

    pairs = form_pairs(body)
    values = [value for key, value in pairs if key == name]
    # What the sender could have meant: a value that is text (a missing field is an empty one).
    candidates = [value for value in values if value is not None] if values else [""]
    check_form_outcome(world, route, someone, response, before, candidates)
    # The field once, in a body shaped as browsers send one: then it must be read, and judged.
    text = all(key is not None and value is not None for key, value in pairs)
    if len(values) == 1 and text and AS_BROWSERS_SEND.fullmatch(body):
        _, refusal = rule(clean, candidates[0])
        assert (response.status_code >= 400) == bool(refusal), response.text[:300]


CONTENT_TYPES = st.one_of(
    st.none(),
    st.sampled_from(
        [
            URLENCODED,
            f"{URLENCODED}; charset=utf-8",
            f"{URLENCODED}; charset=latin-1",
            URLENCODED.upper(),
            "text/plain",
            "application/json",
            "application/octet-stream",
            "",
        ]
    ),
    HEADER_TEXT.map(str.strip),
).filter(lambda t: t is None or not t.lower().lstrip(" \t").startswith("multipart/"))


@pytest.mark.parametrize("route", list(FORM_ROUTES))
@examples(20)
@given(content_type=CONTENT_TYPES)
@example(content_type=URLENCODED)  # accepted
@example(content_type="text/plain")  # refused
def test_any_content_type(world: World, route: str, content_type: str | None) -> None:
    """A good form under any content type: read as the form it is when the type says so (media
    types ignore case); refused when the type says it is something else, never read as an
    empty form that then clears a field. (Multipart has tests of its own.)"""
    name, _ = FORM_ROUTES[route]
    someone, path = form_target(world, route)
    text = f"typed {secrets.token_hex(4)}"
    headers = {"X-CSRF-Token": someone.csrf, "HX-Request": "true"}
    if content_type is not None:
        headers["Content-Type"] = content_type
    before = route_state(world, route, someone)

    body = urlencode({name: text}).encode()
    response = world.call(someone.client, "POST", path, content=body, headers=headers)

    main_type, _, params = (content_type or "").partition(";")
    main_type = main_type.strip(" \t").lower()
    is_form = main_type == URLENCODED
    check_form_outcome(world, route, someone, response, before, [text] if is_form else [""])
    plain = params.strip(" \t").lower() in ("", "charset=utf-8")  # a foreign charset may be refused
    if is_form and plain:
        assert response.status_code < 400, response.text[:300]
    if main_type and not is_form:  # a body declared as something else is not an empty form
        assert response.status_code >= 400, (
            f"{content_type!r} was read as a form: {response.text[:300]!r}"
        )


Part = tuple[str, str | None, bytes]  # name, file name (None: not a file), content
PART_NAME = st.sampled_from(["body", "away_message", "csrf_token", "other"])
FILE_NAME = st.text(alphabet=st.characters(codec="utf-8", exclude_characters='"\r\n\\'))
TEXT_BYTES = SHORT_TEXT.map(str.encode)


def post_multipart(world: World, route: str, parts: list[Part]) -> None:
    """Posts these parts as multipart/form-data and checks the outcome: a text part's value is
    its content read as UTF-8; a file is no value for a text field."""
    name, _ = FORM_ROUTES[route]
    someone, path = form_target(world, route)
    boundary = secrets.token_hex(16)
    chunks = []
    for part_name, filename, content in parts:
        disposition = f'form-data; name="{part_name}"'
        if filename is not None:
            disposition += f'; filename="{filename}"'
        head = f"--{boundary}\r\nContent-Disposition: {disposition}\r\n"
        if filename is not None:
            head += "Content-Type: application/octet-stream\r\n"
        chunks.append(head.encode() + b"\r\n" + content + b"\r\n")
    body = b"".join(chunks) + f"--{boundary}--\r\n".encode()
    headers = {
        "X-CSRF-Token": someone.csrf,
        "HX-Request": "true",
        "Content-Type": f"multipart/form-data; boundary={boundary}",
    }
    before = route_state(world, route, someone)

    response = world.call(someone.client, "POST", path, content=body, headers=headers)

    candidates = []
    for part_name, filename, content in parts:
        if part_name == name and filename is None:
            with contextlib.suppress(UnicodeDecodeError):
                candidates.append(content.decode())
    if not any(part_name == name for part_name, _, _ in parts):
        candidates = [""]
    check_form_outcome(world, route, someone, response, before, candidates)
    # Forms are URL-encoded (README, "Limits"): whatever its parts, a multipart body is refused
    # as such, so that none of them is read as a value.
    assert response.status_code == 415, response.text[:300]


@pytest.mark.parametrize("route", list(FORM_ROUTES))
@examples(20)
@given(
    parts=st.lists(
        st.tuples(PART_NAME, st.none(), st.binary(max_size=20) | TEXT_BYTES),
        min_size=1,
        max_size=3,
    )
)
def test_multipart_text_fields(world: World, route: str, parts: list[Part]) -> None:
    post_multipart(world, route, parts)


@pytest.mark.parametrize("route", list(FORM_ROUTES))
@examples(15)
@given(
    file=st.tuples(FILE_NAME, TEXT_BYTES),
    others=st.lists(st.tuples(PART_NAME, st.none(), TEXT_BYTES), max_size=2),
    first=st.booleans(),
)
def test_multipart_file_in_place_of_a_field(
    world: World, route: str, file: tuple[str, bytes], others: list[Part], first: bool
) -> None:
    """A file where the form's text field belongs is no text: refused, or another part used."""
    upload: Part = (FORM_ROUTES[route][0], *file)
    post_multipart(world, route, [upload, *others] if first else [*others, upload])


# CSRF tokens: any X-CSRF-Token header, any csrf_token field


@dataclass(frozen=True)
class CsrfToken:
    """A token to present, made from the session's own when the request is sent: that one, one
    a character away from it, another session's, or any text."""

    kind: str  # "real", "changed", "another" or "any"
    spot: int = 0  # "changed": where (modulo its length)
    char: str = "A"  # "changed": to what
    text: str = ""  # "any": the token

    def of(self, real: str, another: str) -> str:
        if self.kind == "real":
            return real
        if self.kind == "changed":
            spot = self.spot % len(real)
            return real[:spot] + self.char + real[spot + 1 :]
        return another if self.kind == "another" else self.text


CSRF_TOKENS = st.builds(
    CsrfToken,
    kind=st.sampled_from(["real", "changed", "another", "any"]),
    spot=st.integers(0, 1000),
    char=st.sampled_from("AaZz09-_."),
    text=HEADER_VALUE,
)
CSRF_ROUTES = ["message", "away", "typing", "logout"]


@pytest.mark.parametrize("where", ["header", "field"])
@examples(20)
@given(route=st.sampled_from(CSRF_ROUTES), presented=CSRF_TOKENS)
@example(route="away", presented=CsrfToken("real"))  # accepted
@example(route="message", presented=CsrfToken("another"))  # refused
def test_any_csrf_token(world: World, where: str, route: str, presented: CsrfToken) -> None:
    """A cookie request that changes something goes through with a token the app's own check
    accepts for this session, and otherwise is refused (403) having changed nothing."""
    someone = world.guard
    token = presented.of(someone.csrf, world.authors[0].csrf)
    note(f"token, escaped: {token!a}")
    jti = str(jwt.decode(someone.cookie, options={"verify_signature": False})["jti"])
    good = tokens.csrf_token_matches(token, jti, secret=SECRET_KEY, max_age=CSRF_MAX_AGE_SECS)
    mine = notes(world, someone)
    path, fields, before, accepted = {
        "message": (
            "/dm/{}/messages",
            {"body": "with a token"},
            lambda: conversation_state(world, someone, mine),
            201,
        ),
        "away": (
            "/away",
            {"away_message": "with a token"},
            lambda: world.db["user"].find_one({"_id": ObjectId(user_id(world.db, someone))}),
            200,
        ),
        "typing": ("/rooms/public/typing", {}, lambda: traces(world, someone), 204),
        "logout": ("/logout", {}, lambda: world.call(someone.client, "GET", "/").status_code, 303),
    }[route]
    state = before()
    headers: dict[str, Any] = {"HX-Request": "true"}
    if where == "header":
        headers["X-CSRF-Token"] = token.encode("latin-1")
    else:
        fields = {**fields, "csrf_token": token}

    url = path.format(someone.username)
    response = world.call(someone.client, "POST", url, data=fields, headers=headers)

    if not good:
        refused(response, {403})
        assert before() == state, "a request refused for its CSRF token changed something"
        return
    assert response.status_code == accepted, response.text[:300]
    outcome("accepted")
    if route == "logout":  # sign back in, for the examples still to come
        again = someone.client.post(
            "/login", data={"username": someone.username, "password": PASSWORD}
        )
        assert again.status_code == 303
        someone.refresh_csrf()


@pytest.mark.parametrize("path", ["/rooms/public/typing", "/rooms/public/read"])
@examples(15)
@given(body=st.binary(max_size=40), content_type=CONTENT_TYPES)
@example(body=b"", content_type=URLENCODED)  # accepted
@example(body=b"{}", content_type="application/json")  # refused
def test_public_typing_and_read_any_body(
    world: World, path: str, body: bytes, content_type: str | None
) -> None:
    """These take no fields: whatever the body, 204 (or a 4xx that changed nothing)."""
    someone = world.authors[2]
    headers = {"X-CSRF-Token": someone.csrf, "HX-Request": "true"}
    if content_type is not None:
        headers["Content-Type"] = content_type
    before = traces(world, someone)
    response = world.call(someone.client, "POST", path, content=body, headers=headers)
    if refused_unchanged(response):
        assert_no_traces(world, someone, before)
        return
    assert response.status_code == 204, response.text[:300]
    public = room_id(world, keys.PUBLIC)
    me = user_id(world.db, someone)
    if path.endswith("typing"):
        assert world.db["typing"].find_one({"_id": f"{me}:{public}"})
    else:
        assert world.db["membership"].find_one({"_id": f"{public}:{me}"})
    outcome("accepted")


# Session tokens: any Authorization header, any cookie


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def sign(payload: Any, *, alg: str = "HS256", key: str = SECRET_KEY) -> str:
    """A JWT of any payload (pyjwt's encoder would refuse some), signed as `alg` says."""
    header = b64(json.dumps({"alg": alg, "typ": "JWT"}).encode())
    body = b64(json.dumps(payload).encode())  # NaN and Infinity included, as Python writes them
    digest = {"HS256": hashlib.sha256, "HS512": hashlib.sha512}.get(alg)
    if digest is None:  # "none": unsigned
        return f"{header}.{body}."
    signature = hmac.new(key.encode(), f"{header}.{body}".encode(), digest).digest()
    return f"{header}.{body}.{b64(signature)}"


JSON_VALUE = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=10),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner),
    max_leaves=5,
)
HUGE_TIME = st.sampled_from([0, -1, 10**10, 10**12, 10**18, 10**30, -(10**30), 2**63, 2**64])
CLAIM_TIME = st.one_of(
    st.integers(-(10**6), 10**6).map(lambda d: int(time.time()) + d),
    HUGE_TIME,
    HUGE_TIME,
    st.integers().map(str),
    st.integers(0, 10**6).map(lambda d: str(int(time.time()) + d)),
    st.floats(),
    JSON_VALUE,
)
DELETE = object()
IMPORTED_AT = int(time.time())


@dataclass(frozen=True)
class OfUser:
    """The user's id, as it is or changed (a claim drawn before the user is known)."""

    change: str  # "same", "upper" or "cut"

    def of(self, user: str) -> str:
        return {"same": user, "upper": user.upper(), "cut": user[:-1]}[self.change]


@dataclass(frozen=True)
class TokenRecipe:
    """A session token for a user who is known only when the request is sent: valid, or with
    its claims, signature or text changed."""

    kind: str = "claims"  # "claims", "mangled" or "text"
    changes: tuple[tuple[str, Any], ...] = ()  # claim -> value (OfUser: the user's; DELETE)
    alg: str = "HS256"  # or "HS512", "none", "wrong key"
    spot: int = 0  # "mangled": where (modulo its length)
    char: str = "A"  # "mangled": to what
    text: str = ""  # "text": the token

    def make(self, user: str) -> str:
        if self.kind == "text":
            return self.text
        now = int(time.time())
        claims: dict[str, Any] = {
            "sub": user,
            "jti": secrets.token_urlsafe(16),
            "iat": now,
            "exp": now + 3600,
            "aud": tokens.SESSION_AUDIENCE,
        }
        for key, value in self.changes:
            if value is DELETE:
                claims.pop(key, None)
            else:
                claims[key] = value.of(user) if isinstance(value, OfUser) else value
        alg = self.alg
        token = (
            sign(claims, key="not the key " * 4) if alg == "wrong key" else sign(claims, alg=alg)
        )
        note(f"token claims: {claims!r}, signed: {alg}, {self.kind}")
        if self.kind == "mangled":
            spot = self.spot % len(token)
            token = token[:spot] + self.char + token[spot + 1 :]
        return token.strip()


@st.composite
def token_recipe(draw: st.DrawFn) -> TokenRecipe:
    """How to make a token for the user: valid, or with its claims, signature or text changed."""
    kind = draw(st.sampled_from(["claims", "claims", "claims", "mangled", "text"]))
    if kind == "text":
        return TokenRecipe(kind, text=draw(HEADER_VALUE))
    values = {
        "sub": st.sampled_from([OfUser("same"), OfUser("upper"), OfUser("cut")]) | JSON_VALUE,
        "jti": st.text(max_size=10) | JSON_VALUE,
        "iat": CLAIM_TIME,
        "exp": CLAIM_TIME,
        "nbf": CLAIM_TIME,
        "aud": st.sampled_from([tokens.SESSION_AUDIENCE, [tokens.SESSION_AUDIENCE]]) | JSON_VALUE,
        "iss": JSON_VALUE,
    }
    changes = st.sampled_from(["exp", "exp", "exp", "iat", "nbf", "sub", "jti", "aud", "iss"])
    changed = tuple(
        (key, draw(st.one_of(values[key], values[key], st.just(DELETE))))
        for key in draw(st.lists(changes, max_size=2, unique=True))
    )
    alg = draw(st.sampled_from(["HS256"] * 4 + ["HS512", "none", "wrong key"]))
    if kind != "mangled":
        return TokenRecipe(kind, changed, alg)
    spot, char = draw(st.integers(0, 10_000)), draw(st.sampled_from("Aa0_-.= "))
    return TokenRecipe(kind, changed, alg, spot, char)


def token_is_good(world: World, token: str) -> bool:
    """A valid, unrevoked token of a user who exists, by the app's own reading of tokens."""
    try:
        claims = tokens.read_session_token(token, secret=SECRET_KEY)
    except Exception:  # whatever goes wrong reading a token, it is no session
        return False
    oid = parse_id(claims.user_id)
    return bool(
        oid
        and world.db["user"].find_one({"_id": oid})
        and not world.db["revoked_tokens"].find_one({"jti": claims.jti})
    )


def check_token(world: World, presented: str, headers: dict[str, Any]) -> None:
    """The request with these headers is signed in if the token it presents is good, else it
    is anonymous (401). Judged both before and after it, for a token that expires meanwhile."""
    good = {bool(presented) and token_is_good(world, presented)}
    response = world.call(world.anon, "GET", "/rooms/public/messages", headers=headers)
    good.add(bool(presented) and token_is_good(world, presented))
    assert response.status_code in {200 if g else 401 for g in good}, response.text[:300]
    outcome("accepted" if response.status_code == 200 else "refused")


@pytest.mark.parametrize("via", ["bearer", "cookie"])
@examples(30)
@given(
    recipe=token_recipe(), scheme=st.sampled_from(["Bearer", "bearer", "BEARER", "Basic", "Token"])
)
@example(recipe=TokenRecipe(), scheme="Bearer")  # accepted
@example(recipe=TokenRecipe("text", text="not a token"), scheme="Bearer")  # refused
def test_any_session_token(world: World, via: str, recipe: TokenRecipe, scheme: str) -> None:
    """A token the app's rules accept signs in; anything else is anonymous (401), never 500."""
    token = recipe.make(user_id(world.db, world.authors[0]))
    headers: dict[str, Any] = {"HX-Request": "true"}
    if via == "bearer":  # (the scheme only matters here)
        headers["Authorization"] = f"{scheme} {token}".strip().encode("latin-1")
        presented = token if scheme.lower() == "bearer" else ""
    else:
        headers["Cookie"] = f"session={token}".encode("latin-1")
        presented = cookie_parser(f"session={token}").get("session", "")

    check_token(world, presented, headers)


@examples(40)
@given(claim=st.sampled_from(["exp", "iat", "nbf"]), value=CLAIM_TIME)
@example(claim="exp", value=IMPORTED_AT + 24 * 3600)  # accepted
@example(claim="exp", value=IMPORTED_AT - 3600)  # refused: expired
def test_any_time_claim_in_a_signed_token(world: World, claim: str, value: Any) -> None:
    """A token signed with the right key, right but for one time claim: it signs in when the
    app's reading of tokens accepts it, and is anonymous (401) otherwise, never a 500."""
    now = int(time.time())
    claims = {
        "sub": user_id(world.db, world.authors[0]),
        "jti": secrets.token_urlsafe(16),
        "iat": now,
        "exp": now + 3600,
        "aud": tokens.SESSION_AUDIENCE,
        claim: value,
    }
    token = sign(claims)
    check_token(world, token, {"HX-Request": "true", "Authorization": f"Bearer {token}"})


# The event stream: any ?after= and Last-Event-ID


async def first_event(url: str, headers: dict[str, Any], params: dict[str, str] | None) -> str:
    """The stream's status, then how it begins: "reload" (its cursor was of no use) or "live"
    (caught up: every stream says so once it has replayed what it had to), or "ended"."""
    timeout = httpx.Timeout(TIMEOUT)
    async with (
        httpx.AsyncClient(timeout=timeout, verify=TLS) as client,
        client.stream("GET", url, headers=headers, params=params) as response,
    ):
        if response.status_code != 200:
            return f"status {response.status_code}"
        assert response.headers["content-type"].startswith("text/event-stream")
        lines = response.aiter_lines()
        async with asyncio.timeout(TIMEOUT):
            async for line in lines:
                if line == ": connected":
                    break
            else:
                return "ended before it was connected"
            name, fields = "message", 0
            async for line in lines:
                if line == "":
                    if fields and name in ("live", "reload"):
                        return name
                    name, fields = "message", 0
                elif line.startswith("event:"):
                    name = line.partition(":")[2].strip()
                if line and not line.startswith(":"):
                    fields += 1
        return "ended"


CURSOR_TEXT = st.one_of(
    SHORT_TEXT,
    st.from_regex(r"nx:[0-9]{1,22}", fullmatch=True),
    st.from_regex(r"[0-9A-Fa-f]{2,64}", fullmatch=True),
    st.just("current"),
)


@examples(15)
@given(
    after=optional(CURSOR_TEXT),
    last_event_id=optional(CURSOR_TEXT),
    via=st.sampled_from(["bearer", "cookie"]),
)
@example(after="current", last_event_id=None, via="bearer")  # accepted: it replays from there
@example(after="garbage!", last_event_id=None, via="cookie")  # refused: told to reload
def test_events_any_cursor(
    world: World, after: str | None, last_event_id: str | None, via: str
) -> None:
    """Any cursor: 200 and a stream that stays open (caught up, live or told to reload), or a
    4xx; never a 5xx, a hang or a stream that breaks off. A cursor refused is one that ends in
    a 4xx or a "reload" event."""
    someone = world.authors[1]
    current = ""
    if "current" in (after, last_event_id):
        page = world.call(someone.client, "GET", "/")
        current = page_cursor(parse(page.text))
    headers: dict[str, Any] = {"Accept": "text/event-stream"}
    if via == "bearer":
        headers["Authorization"] = f"Bearer {world.bearer[someone.username]}"
    else:
        headers["Cookie"] = f"session={someone.cookie}"
    if last_event_id is not None:
        headers["Last-Event-ID"] = header_bytes(
            current if last_event_id == "current" else last_event_id
        )
    params = None if after is None else {"after": current if after == "current" else after}

    mark = world.server.log_path.stat().st_size
    try:
        result = asyncio.run(first_event(world.url + "/events", headers, params))
    except (TimeoutError, httpx.TimeoutException) as exc:
        raise AssertionError(f"no answer within {TIMEOUT} s") from exc
    except httpx.HTTPError as exc:
        raise AssertionError(f"{exc!r}\n{world.log_since(mark)}") from exc
    if result.startswith("status "):
        status = int(result.split()[1])
        assert 400 <= status < 500, f"{result}\n{world.log_since(mark)}"
        outcome("refused")
        return
    assert not result.startswith("ended"), f"the stream {result}\n{world.log_since(mark)}"
    outcome("refused" if result == "reload" else "accepted")
