"""Test helpers: app processes, signed-in people, rooms, the database as the app stores it, and
a small Server-Sent Events client. Markup is read with tests/html.py."""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import secrets
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
from bson import ObjectId
from prometheus_client.parser import text_string_to_metric_families
from pymongo.database import Database

from tests.html import Element, first_tag, fragment, parse
from webapp.data.embedded import free_port
from webapp.live.streams import Stream

ROOT = Path(__file__).resolve().parent.parent
READY_SECS = 30
STOP_SECS = 15
PORT_TRIES = 5  # a free port can be taken by another process before the app binds it
PASSWORD = "correct horse battery"
METRICS_TOKEN = "metrics-" + secrets.token_hex(8)  # every test server shows its metrics
MESSAGE_ID = re.compile(r"msg-([0-9a-f]{24})")

Db = Database[dict[str, Any]]


async def next_chunk(stream: Stream) -> bytes | None:
    """What a stream's task sends next (web/events.py): everything waiting once there is
    some, as one chunk; None once the stream is closed."""
    while (chunk := stream.take()) == b"":
        await stream.offered()
    return chunk


def unique_name(prefix: str = "user") -> str:
    return f"{prefix}_{secrets.token_hex(4)}"


def procfile_command() -> str:
    """The Procfile's `web:` command."""
    lines = (ROOT / "Procfile").read_text().splitlines()
    return next(line for line in lines if line.startswith("web:")).removeprefix("web:").strip()


class AppServer:
    """One app process (`python -m webapp`, as in production) on a free loopback port.

    With `procfile`, the process is the Procfile's `web:` command, told its port by $PORT. A
    port taken by someone else between choosing it and binding it makes the app exit at
    start-up: the first start tries again on another port (a restart keeps its port).
    """

    def __init__(
        self,
        mongo_uri: str,
        *,
        data_dir: Path,
        env: dict[str, str] | None = None,
        procfile: bool = False,
        port: int = 0,
    ):
        self.data_dir = data_dir
        self.procfile = procfile
        self.env = {
            **os.environ,
            "DATA_DIR": str(data_dir),
            "PYTHONUNBUFFERED": "1",
            "METRICS_TOKEN": METRICS_TOKEN,
            **({"MONGODB_URI": mongo_uri} if mongo_uri else {}),
            **(env or {}),
        }
        if not mongo_uri:
            self.env.pop("MONGODB_URI", None)
        if procfile:  # `python` is this interpreter
            self.env["PATH"] = f"{Path(sys.executable).parent}:{os.environ.get('PATH', '')}"
        self.process: subprocess.Popen[bytes] | None = None
        self._started = False
        self._use_port(port or free_port())

    def _use_port(self, port: int) -> None:
        self.port = port
        self.url = f"http://127.0.0.1:{port}"
        self.log_path = self.data_dir / f"uvicorn-{port}.log"

    def _command(self) -> list[str]:
        if self.procfile:
            self.env["PORT"] = str(self.port)
            return ["sh", "-c", "exec " + procfile_command()]
        return [sys.executable, "-m", "webapp", "--host", "127.0.0.1", "--port", str(self.port),
                "--workers", "1", "--timeout-graceful-shutdown", "3"]  # fmt: skip

    def start(self) -> AppServer:
        for attempt in range(PORT_TRIES):
            log = open(self.log_path, "wb")  # noqa: SIM115 (closed with the process)
            self.process = subprocess.Popen(
                self._command(), cwd=ROOT, env=self.env, stdout=log, stderr=subprocess.STDOUT
            )
            log.close()
            try:
                self.wait_until_ready()
            except PortTaken:
                self.process = None
                if self._started or attempt == PORT_TRIES - 1:
                    raise
                self._use_port(free_port())
                continue
            except BaseException:  # never left behind
                self.stop(signal.SIGKILL)
                raise
            self._started = True
            return self
        raise AssertionError("unreachable")

    def wait_until_ready(self) -> None:
        deadline = time.monotonic() + READY_SECS
        while time.monotonic() < deadline:
            assert self.process is not None
            if self.process.poll() is not None:
                log = self.log()
                if "address already in use" in log.lower() or "errno 98" in log.lower():
                    raise PortTaken(f"port {self.port} was taken:\n{log}")
                raise RuntimeError(f"app exited at start-up:\n{log}")
            try:
                if httpx.get(self.url + "/healthz", timeout=1).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.05)  # the process says nothing when it is ready: poll, to a deadline
        raise RuntimeError(f"app not ready in {READY_SECS}s:\n{self.log()}")

    def metrics(self) -> dict[str, float]:
        """Every sample of GET /metrics, by its name and labels as Prometheus writes them."""
        response = httpx.get(
            self.url + "/metrics", headers={"Authorization": f"Bearer {METRICS_TOKEN}"}
        )
        assert response.status_code == 200, response.text
        samples = {}
        for family in text_string_to_metric_families(response.text):
            for sample in family.samples:
                labels = ",".join(f'{k}="{v}"' for k, v in sorted(sample.labels.items()))
                samples[f"{sample.name}{{{labels}}}"] = sample.value
        return samples

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def stop(self, sig: int = signal.SIGTERM, *, within: float = STOP_SECS) -> int:
        """Signals the process and waits for it to end: its exit code. If it is still running
        `within` seconds later it is killed, and subprocess.TimeoutExpired raised."""
        process, self.process = self.process, None
        if process is None:
            return 0
        if process.poll() is None:
            process.send_signal(sig)
            try:
                return process.wait(within)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
                raise
        return process.returncode

    def __enter__(self) -> AppServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


class PortTaken(RuntimeError):
    """The app exited at start-up because another process had its port."""


class StartApp:
    """Starts app processes on one database, each with settings of its own, and stops them
    all at the end (the `start_app` fixture: one per module)."""

    def __init__(self, mongo_uri: str, data_dirs: Callable[[], Path]) -> None:
        self.mongo_uri = mongo_uri
        self.data_dirs = data_dirs
        self.started: list[AppServer] = []

    def __call__(self, **env: str) -> AppServer:
        """One process with these settings (`start_app(PRESENCE_TTL_SECS="2")`)."""
        return self.together(env)[0]

    def together(self, *envs: dict[str, str]) -> list[AppServer]:
        """A process for each of these settings, started at once."""
        servers = [AppServer(self.mongo_uri, data_dir=self.data_dirs(), env=env) for env in envs]
        self.started += servers
        with ThreadPoolExecutor(len(servers)) as pool:
            return list(pool.map(AppServer.start, servers))

    def stop_all(self) -> None:
        for server in self.started:
            server.stop()


@dataclass
class Person:
    """A registered user with a cookie session (and the page's CSRF token)."""

    base_url: str
    username: str
    password: str
    client: httpx.Client
    csrf: str = ""

    @classmethod
    def register(cls, base_url: str, username: str | None = None) -> Person:
        username = username or unique_name()
        client = httpx.Client(base_url=base_url, timeout=10)
        response = client.post("/register", data={"username": username, "password": PASSWORD})
        assert response.status_code == 303, response.text
        someone = cls(base_url, username, PASSWORD, client)
        someone.refresh_csrf()
        return someone

    def on(self, base_url: str) -> Person:
        """This person's session on another app process (same cookie, same CSRF token); the
        caller closes it."""
        client = httpx.Client(base_url=base_url, timeout=10, cookies={"session": self.cookie})
        return Person(base_url, self.username, self.password, client, csrf=self.csrf)

    def page(self, path: str = "/", **headers: str) -> Element:
        """A page of the app as this person's browser gets it (200), parsed."""
        response = self.client.get(path, headers=headers or None)
        assert response.status_code == 200, response.text[:500]
        return parse(response.text)

    def refresh_csrf(self) -> str:
        """The chat page's CSRF token, as its forms carry it (the first is enough)."""
        page = self.client.get("/")
        assert page.status_code == 200, page.text[:500]
        field = first_tag(page.text, "input", name="csrf_token")
        assert field is not None, "no CSRF token on the chat page"
        self.csrf = field.get("value")
        assert self.csrf, "an empty CSRF token on the chat page"
        return self.csrf

    @property
    def cookie(self) -> str:
        return self.client.cookies["session"]

    def token(self) -> str:
        response = httpx.post(
            self.base_url + "/api/token",
            data={"username": self.username, "password": self.password},
        )
        assert response.status_code == 200, response.text
        return str(response.json()["access_token"])

    def send(
        self, method: str, path: str, data: dict[str, str] | None = None, *, htmx: bool = True
    ) -> httpx.Response:
        """A state-changing request with the CSRF header, as htmx sends it."""
        headers = {"X-CSRF-Token": self.csrf}
        if htmx:
            headers["HX-Request"] = "true"
        return self.client.request(method, path, data=data, headers=headers)

    def post_public(self, body: str) -> httpx.Response:
        return self.send("POST", "/rooms/public/messages", {"body": body})

    def post_dm(self, username: str, body: str) -> httpx.Response:
        return self.send("POST", f"/dm/{username}/messages", {"body": body})

    def close(self) -> None:
        self.client.close()

    def __enter__(self) -> Person:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


# Markup


def message_ids(html: str | bytes | Element) -> list[str]:
    """The ids of the messages in a page, fragment or event (their elements' msg-<id>), in
    order."""
    root = html if isinstance(html, Element) else parse(html)
    found = (MESSAGE_ID.fullmatch(element.get("id")) for element in [root, *root.iter()])
    return [match.group(1) for match in found if match]


def message_id(html: str | bytes | Element) -> str:
    """The id of the (first) message in a fragment, an event or a page."""
    ids = message_ids(html)
    assert ids, f"no message id in {str(html)[:200]!r}"
    return ids[0]


def message_element(html: str | Element, msg_id: str) -> Element:
    """The <article> of one message in a listing, fragment or event."""
    root = html if isinstance(html, Element) else parse(html)
    if root.is_("article", id=f"msg-{msg_id}"):
        return root
    return root.one("article", id=f"msg-{msg_id}")


def alert_of(html: str) -> str:
    """The message of the fragment an htmx request gets for a refusal: it is nothing but
    <p class="form-error" role="alert">message</p>."""
    alert = fragment(html)
    assert (alert.tag, alert.classes, alert.get("role")) == ("p", {"form-error"}, "alert"), html
    assert alert.elements() == [], html
    return alert.raw_text


def entry_of(html: str) -> dict[str, str]:
    """The data- attributes of a person's sidebar entry (a "person" event's data)."""
    entry = fragment(html)
    assert entry.tag == "li" and entry.get("id").startswith("person-"), html[:200]
    return entry.data


def page_cursor(page: Element) -> str:
    """The cursor a chat page's event stream starts from (its sse-connect URL's ?after=)."""
    url = urlsplit(page.one(sse_connect=True).get("sse-connect"))
    assert url.path == "/events", url
    [cursor] = parse_qs(url.query, keep_blank_values=True)["after"]
    return cursor


def sidebar_entry(page: Element, conversation: str) -> Element:
    """The sidebar's link to the conversation of this key (the public room, a DM, a room)."""
    return page.one("nav", id="people").one("a", data_conversation=conversation)


def unread_badge(page: Element, conversation: str) -> int:
    """The unread count on the sidebar's entry of this conversation key."""
    return badge_count(sidebar_entry(page, conversation))


def badge_count(entry: Element) -> int:
    """The unread count on a sidebar entry, as it shows: hidden when there is nothing unread,
    and saying so to screen readers."""
    badge = entry.one("span", class_="badge")
    count = int(badge.get("aria-label").removesuffix(" unread"))
    assert badge.has("hidden") == (count == 0), badge
    assert badge.text == (str(count) if count else ""), badge
    return count


def dm_key(page: Element, username: str) -> str:
    """The conversation key of the sidebar's entry of a DM with `username`."""
    link = page.one("nav", id="people").one("a", class_="person", data_username=username)
    return link.get("data-conversation")


# The database, as the app stores it


def user_id(db: Db, someone: Person) -> str:
    user = db["user"].find_one({"username_key": someone.username.lower()})
    assert user is not None, someone.username
    return str(user["_id"])


def presence_count(db: Db, someone: Person) -> int:
    """How many open streams (tabs) the database counts for this person."""
    return db["presence"].count_documents({"user_id": user_id(db, someone)})


def room_doc(db: Db, room_id: str) -> dict[str, Any]:
    room = db["room"].find_one({"_id": ObjectId(room_id)})
    assert room is not None, room_id
    return room


def memberships(db: Db, room_id: str) -> list[dict[str, Any]]:
    return list(db["membership"].find({"room_id": room_id}, sort=[("_id", 1)]))


def member_ids(db: Db, room_id: str) -> set[str]:
    return {doc["user_id"] for doc in memberships(db, room_id)}


def wait_for(condition: Callable[[], bool], within: float = 10, what: str = "") -> None:
    """Polls a condition that has no event of its own to await (a database state, another
    process's end), until a deadline."""
    deadline = time.monotonic() + within
    while not condition():
        assert time.monotonic() < deadline, f"not within {within} s: {what or condition}"
        time.sleep(0.05)


# Event streams


@dataclass
class SSEEvent:
    event: str = "message"
    data: str = ""
    id: str | None = None


@dataclass
class EventStream:
    """Reads events from a live GET /events response.

    One task reads the response into a queue, so a wait that times out loses nothing and
    leaves the stream usable.
    """

    response: httpx.Response
    events: list[SSEEvent] = field(default_factory=list)
    _queue: asyncio.Queue[SSEEvent | None] = field(default_factory=asyncio.Queue)
    _reader: asyncio.Task[None] | None = None

    async def next(self, timeout: float = 10.0) -> SSEEvent:
        """The next event (comments and keep-alives skipped); TimeoutError if none comes."""
        async with asyncio.timeout(timeout):
            event = await self._queue.get()
        if event is None:
            self._queue.put_nowait(None)  # stays ended for later reads
            raise ConnectionError("the event stream ended")
        return event

    async def next_named(self, name: str, timeout: float = 10.0) -> SSEEvent:
        async with asyncio.timeout(timeout):
            while True:
                event = await self.next(timeout=timeout)
                if event.event == name:
                    return event

    async def until(
        self, name: str, matches: Callable[[SSEEvent], bool] = lambda _: True, timeout: float = 10.0
    ) -> list[SSEEvent]:
        """Every event up to and including the first `name` event that matches: what came
        before a marker."""
        seen = []
        async with asyncio.timeout(timeout):
            while True:
                event = await self.next(timeout=timeout)
                seen.append(event)
                if event.event == name and matches(event):
                    return seen

    async def start(self) -> None:
        """Reads up to the server's ": connected" comment (sent once the hub is listening),
        then keeps reading in the background."""
        lines = self.response.aiter_lines()
        async for line in lines:
            if line == ": connected":
                self._reader = asyncio.create_task(self._read(lines))
                return
        raise ConnectionError("the event stream ended before it was connected")

    async def close(self) -> None:
        if self._reader is not None:
            self._reader.cancel()
            with contextlib.suppress(asyncio.CancelledError, httpx.HTTPError):
                await self._reader

    async def _read(self, lines: AsyncIterator[str]) -> None:
        event, data = SSEEvent(), []
        try:
            async for line in lines:
                if line == "":
                    if data:  # as in browsers, an event without data is not dispatched
                        event.data = "\n".join(data)
                        self.events.append(event)
                        self._queue.put_nowait(event)
                    event, data = SSEEvent(), []
                    continue
                if line.startswith(":"):
                    continue
                name, _, value = line.partition(":")
                value = value[1:] if value.startswith(" ") else value
                if name == "data":
                    data.append(value)
                elif name == "event":
                    event.event = value
                elif name == "id":
                    event.id = value
        except httpx.HTTPError:
            pass
        finally:
            self._queue.put_nowait(None)


def parse_events(raw: bytes) -> list[SSEEvent]:
    """The events in bytes of an event stream (as the app writes them for every stream)."""
    events = []
    for block in raw.decode().replace("\r\n", "\n").split("\n\n"):
        event, data = SSEEvent(), []
        for line in block.split("\n"):
            if not line or line.startswith(":"):
                continue
            name, _, value = line.partition(":")
            value = value[1:] if value.startswith(" ") else value
            if name == "data":
                data.append(value)
            elif name == "event":
                event.event = value
            elif name == "id":
                event.id = value
        if data:
            event.data = "\n".join(data)
            events.append(event)
    return events


@contextlib.asynccontextmanager
async def open_stream(
    base_url: str, *, token: str = "", cookie: str = "", after: str = "", last_event_id: str = ""
) -> AsyncIterator[EventStream]:
    """GET /events as a Bearer (or cookie) client; the stream is open when this yields."""
    headers = {"Accept": "text/event-stream"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    if last_event_id:
        headers["Last-Event-ID"] = last_event_id
    cookies = {"session": cookie} if cookie else None
    params = {"after": after} if after else None
    async with (
        httpx.AsyncClient(base_url=base_url, timeout=httpx.Timeout(10, read=60)) as client,
        client.stream("GET", "/events", headers=headers, cookies=cookies, params=params) as resp,
    ):
        assert resp.status_code == 200, await resp.aread()
        stream = EventStream(resp)
        await asyncio.wait_for(stream.start(), 10)
        try:
            yield stream
        finally:
            await stream.close()


async def person_event(
    stream: EventStream, username: str, *, timeout: float = 10.0, **expected: str
) -> dict[str, str]:
    """The first "person" event about `username` that says what is expected (its entry's
    data- attributes), within `timeout` seconds.

    Others are skipped, and so is a newcomer's first entry ("offline", sent when they
    registered) when it is announced after the stream opened.
    """
    async with asyncio.timeout(timeout):
        while True:
            entry = entry_of((await stream.next_named("person", timeout=timeout)).data)
            if entry["username"] == username and all(entry[k] == v for k, v in expected.items()):
                return entry


# Rooms


def create_room(someone: Person, name: str = "", *, topic: str = "", open: bool = False) -> str:
    """A new room (htmx), its id from the Location header."""
    data = {"name": name or unique_name("room"), "topic": topic}
    if open:
        data["open"] = "on"
    response = someone.send("POST", "/rooms", data)
    assert response.status_code == 201, response.text
    location = response.headers["location"]
    assert re.fullmatch(r"/rooms/[0-9a-f]{24}", location), location
    assert response.headers["hx-location"] == location
    return location.rsplit("/", 1)[1]


def add_to_room(someone: Person, room_id: str, other: Person) -> None:
    response = someone.send("POST", f"/rooms/{room_id}/members", {"username": other.username})
    assert response.status_code == 201, response.text


def post_in_room(someone: Person, room_id: str, body: str) -> str:
    """Posts in a group room (htmx); the new message's id."""
    response = someone.send("POST", f"/rooms/{room_id}/messages", {"body": body})
    assert response.status_code == 201, response.text
    return message_id(response.text)


def plain_form(
    someone: Person, path: str, data: dict[str, str] | None = None, method: str = "POST"
) -> httpx.Response:
    """A browser form without JavaScript: the token in the form, HTML accepted."""
    return someone.client.request(
        method,
        path,
        data={"csrf_token": someone.csrf, **(data or {})},
        headers={"Accept": "text/html"},
    )


def bearer_client(someone: Person, token: str = "") -> httpx.Client:
    """A script's client for someone: a Bearer token and no cookie."""
    return httpx.Client(
        base_url=someone.base_url,
        timeout=10,
        headers={"Authorization": f"Bearer {token or someone.token()}"},
    )
