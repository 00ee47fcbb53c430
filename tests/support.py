"""Test helpers: app processes, signed-in people, and a small Server-Sent Events client."""

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
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
from prometheus_client.parser import text_string_to_metric_families

from webapp.data.embedded import free_port

ROOT = Path(__file__).resolve().parent.parent
READY_SECS = 30
PASSWORD = "correct horse battery"
METRICS_TOKEN = "metrics-" + secrets.token_hex(8)  # every test server shows its metrics


def unique_name(prefix: str = "user") -> str:
    return f"{prefix}_{secrets.token_hex(4)}"


class AppServer:
    """One app process (`python -m webapp`, as in production) on a free loopback port."""

    def __init__(self, mongo_uri: str, *, data_dir: Path, env: dict[str, str] | None = None):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
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
        self.log_path = data_dir / f"uvicorn-{self.port}.log"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> AppServer:
        log = open(self.log_path, "wb")  # noqa: SIM115 (closed with the process)
        self.process = subprocess.Popen(
            [sys.executable, "-m", "webapp", "--host", "127.0.0.1", "--port", str(self.port),
             "--workers", "1", "--timeout-graceful-shutdown", "3"],
            cwd=ROOT, env=self.env, stdout=log, stderr=subprocess.STDOUT,
        )  # fmt: skip
        log.close()
        self.wait_until_ready()
        return self

    def wait_until_ready(self) -> None:
        deadline = time.monotonic() + READY_SECS
        while time.monotonic() < deadline:
            assert self.process is not None
            if self.process.poll() is not None:
                raise RuntimeError(f"app exited at start-up:\n{self.log()}")
            try:
                if httpx.get(self.url + "/healthz", timeout=1).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.05)
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

    def stop(self, sig: int = signal.SIGTERM) -> int:
        process, self.process = self.process, None
        if process is None:
            return 0
        if process.poll() is None:
            process.send_signal(sig)
            try:
                return process.wait(15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
                raise
        return process.returncode

    def __enter__(self) -> AppServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


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

    def refresh_csrf(self) -> str:
        page = self.client.get("/")
        assert page.status_code == 200, page.text
        match = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
        assert match, "no CSRF token on the chat page"
        self.csrf = match.group(1)
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


def message_id(fragment: str) -> str:
    match = re.search(r'id="msg-([0-9a-f]{24})"', fragment)
    assert match, f"no message id in {fragment[:200]!r}"
    return match.group(1)


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

    async def expect_none(self, name: str, within: float) -> None:
        """Asserts no event called `name` arrives within `within` seconds."""
        with contextlib.suppress(TimeoutError):
            event = await self.next_named(name, timeout=within)
            raise AssertionError(f"unexpected {name} event: {event.data[:200]}")

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


def entry_of(html: str) -> dict[str, str]:
    """The data- attributes of a person's sidebar entry (a "person" event's data)."""
    match = re.match(r'\s*<li id="person-\w+"([^>]*)>', html)
    assert match, html[:200]
    return dict(re.findall(r'data-([\w-]+)="([^"]*)"', match.group(1)))


async def person_event(stream: EventStream, username: str, **expected: str) -> dict[str, str]:
    """The first "person" event about `username` that says what is expected.

    Others are skipped, and so is a newcomer's first entry ("offline", sent when they
    registered) when it is announced after the stream opened.
    """
    while True:
        entry = entry_of((await stream.next_named("person")).data)
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


def htmx_error(message: str) -> str:
    """The fragment an htmx request gets for a refusal."""
    return f'<p class="form-error" role="alert">{message}</p>'
