"""The benchmark's HTTP side: a small keep-alive HTTP/1.1 client, accounts and timed posts.

A benchmark client should cost little beside the app it measures, so requests go over plain
asyncio streams rather than through a full HTTP library. It handles what the app answers to
these few requests: a status, headers and a body with a Content-Length (or chunked).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import secrets
import time
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from urllib.parse import urlencode

PASSWORD = "correct horse battery"  # noqa: S105 (the benchmark's throwaway accounts)
REQUEST_SECS = 30.0  # a request that takes longer fails
MAX_IDLE_SECS = 2.0  # a keep-alive connection idle longer than this is not reused
RETRY_ATTEMPTS = 6  # for answers that say "later" (429, 503)
MAX_RETRY_AFTER_SECS = 10.0
# Sign-ups and sign-ins are each limited per address (at least 300 a minute): every address
# registers at most this many accounts, so neither limit is reached however fast it goes.
ACCOUNTS_PER_ADDRESS = 250
SESSION_COOKIE = "session"
MESSAGE_ID = re.compile(rb'id="msg-([0-9a-f]{24})"')


class RequestFailed(Exception):
    pass


@dataclass(frozen=True)
class Answer:
    status: int
    headers: dict[str, str]  # names in lower case
    body: bytes
    cookies: dict[str, str] = field(default_factory=dict)  # set by the answer

    def retry_after(self) -> float:
        try:
            return min(MAX_RETRY_AFTER_SECS, max(0.1, float(self.headers["retry-after"])))
        except (KeyError, ValueError):
            return 1.0


class Connection:
    """One keep-alive HTTP/1.1 connection, carrying one request at a time."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._reader = reader
        self._writer = writer
        self.reusable = True

    @classmethod
    async def open(cls, host: str, port: int, *, source: str | None = None) -> Connection:
        reader, writer = await asyncio.open_connection(
            host, port, local_addr=(source, 0) if source else None
        )
        return cls(reader, writer)

    def send(
        self, method: str, path: str, *, headers: Mapping[str, str], form: Mapping[str, str]
    ) -> int:
        """Writes the request; returns time.time_ns() taken just before it was written."""
        body = urlencode(form).encode()
        lines = [f"{method} {path} HTTP/1.1", "Host: 127.0.0.1"]
        lines += [f"{name}: {value}" for name, value in headers.items()]
        if form:
            lines.append("Content-Type: application/x-www-form-urlencoded")
        lines.append(f"Content-Length: {len(body)}")
        request = ("\r\n".join(lines) + "\r\n\r\n").encode() + body
        sent_ns = time.time_ns()
        self._writer.write(request)
        return sent_ns

    async def answer(self) -> Answer:
        """Reads the answer to the request sent last."""
        head = await self._reader.readuntil(b"\r\n\r\n")
        status_line, *header_lines = head.decode("latin-1").split("\r\n")
        status = int(status_line.split(" ", 2)[1])
        headers, cookies = {}, {}
        for line in header_lines:
            name, colon, value = line.partition(":")
            if colon:
                headers[name.strip().lower()] = value.strip()
            if colon and name.strip().lower() == "set-cookie":
                cookie, _, cookie_value = value.strip().split(";", 1)[0].partition("=")
                cookies[cookie] = cookie_value
        if headers.get("connection", "").lower() == "close":
            self.reusable = False
        if "content-length" in headers:
            body = await self._reader.readexactly(int(headers["content-length"]))
        elif headers.get("transfer-encoding", "").lower() == "chunked":
            body = await self._read_chunked()
        else:
            self.reusable = False
            body = await self._reader.read()
        return Answer(status, headers, body, cookies)

    async def _read_chunked(self) -> bytes:
        parts = []
        while size := int((await self._reader.readuntil(b"\r\n")).split(b";")[0], 16):
            parts.append(await self._reader.readexactly(size))
            await self._reader.readexactly(2)
        await self._reader.readuntil(b"\r\n")  # no trailers are sent
        return b"".join(parts)

    @property
    def closed_by_server(self) -> bool:
        return self._reader.at_eof() or self._writer.is_closing()

    def close(self) -> None:
        self.reusable = False
        self._writer.close()


@dataclass
class Pool:
    """Keep-alive connections to one app from one local address, shared by concurrent tasks.

    A connection idle for a while is not reused: the server may be closing it just then
    (uvicorn closes idle keep-alive connections after 5 s), and a POST sent on it would fail
    without having been read.
    """

    host: str
    port: int
    source: str | None = None
    _idle: list[tuple[float, Connection]] = field(default_factory=list)  # (idle since, conn)

    def _reusable(self) -> Connection | None:
        while self._idle:
            since, conn = self._idle.pop()
            if time.monotonic() - since < MAX_IDLE_SECS and not conn.closed_by_server:
                return conn
            conn.close()
        return None

    @contextlib.asynccontextmanager
    async def connection(self) -> AsyncIterator[Connection]:
        conn = self._reusable()
        if conn is None:
            conn = await Connection.open(self.host, self.port, source=self.source)
        try:
            yield conn
        except BaseException:
            conn.close()  # it may be half-way through an answer
            raise
        if conn.reusable:
            self._idle.append((time.monotonic(), conn))
        else:
            conn.close()

    async def request(
        self,
        method: str,
        path: str,
        *,
        headers: Mapping[str, str] | None = None,
        form: Mapping[str, str] | None = None,
    ) -> Answer:
        try:
            async with asyncio.timeout(REQUEST_SECS), self.connection() as conn:
                conn.send(method, path, headers=headers or {}, form=form or {})
                return await conn.answer()
        except (OSError, asyncio.IncompleteReadError, TimeoutError, ValueError) as exc:
            raise RequestFailed(f"{method} {path}: {type(exc).__name__}: {exc}") from exc

    def close(self) -> None:
        for _, conn in self._idle:
            conn.close()
        self._idle.clear()


# Accounts


@dataclass(frozen=True)
class Account:
    index: int
    username: str
    token: str


def source_address(index: int) -> str:
    """The local address account `index` registers from: 127.0.0.2, .3, ... (all loopback)."""
    return f"127.0.0.{2 + index // ACCOUNTS_PER_ADDRESS}"


async def _request_until_answered(
    pool: Pool, path: str, form: Mapping[str, str], expected: tuple[int, ...]
) -> Answer:
    """POSTs the form, waiting as told while the app answers 429 or 503."""
    for _ in range(RETRY_ATTEMPTS):
        answer = await pool.request("POST", path, form=form)
        if answer.status in expected:
            return answer
        if answer.status not in (429, 503):
            break
        await asyncio.sleep(answer.retry_after())
    raise RequestFailed(f"POST {path}: {answer.status} {answer.body[:200]!r}")


async def register_account(pool: Pool, index: int, username: str, *, sign_in: bool) -> Account:
    """POST /register, which signs the new account in: its session token is a JWT that the
    app takes as a Bearer token as well. With `sign_in`, the token comes from POST /api/token
    instead (a second password check: twice the set-up time)."""
    form = {"username": username, "password": PASSWORD}
    answer = await _request_until_answered(pool, "/register", form, (303, 409))
    token = answer.cookies.get(SESSION_COOKIE, "")
    if sign_in or not token:  # 409: it exists already, from a retried attempt
        answer = await _request_until_answered(pool, "/api/token", form, (200,))
        token = str(json.loads(answer.body)["access_token"])
    return Account(index, username, token)


async def register_accounts(
    host: str, port: int, count: int, *, prefix: str, concurrency: int, sign_in: bool
) -> list[Account]:
    """`count` new accounts, `concurrency` registrations in flight at a time."""
    run = secrets.token_hex(3)
    pools: dict[str, Pool] = {}
    gate = asyncio.Semaphore(concurrency)

    async def one(index: int) -> Account:
        source = source_address(index)
        pool = pools.setdefault(source, Pool(host, port, source))
        async with gate:
            return await register_account(pool, index, f"{prefix}{run}_{index}", sign_in=sign_in)

    try:
        return list(await asyncio.gather(*(one(index) for index in range(count))))
    finally:
        for pool in pools.values():
            pool.close()


# Posting


@dataclass(frozen=True)
class Post:
    status: int
    sent_ns: int  # time.time_ns() just before the request was written
    answered_ns: int
    message_id: str | None  # from the fragment of a 201
    error: str = ""

    @property
    def ms(self) -> float:
        return (self.answered_ns - self.sent_ns) / 1e6


def public_path() -> str:
    return "/rooms/public/messages"


def dm_path(username: str) -> str:
    return f"/dm/{username}/messages"


async def post_message(pool: Pool, path: str, token: str, body: str) -> Post:
    """One message, as a Bearer client posts it, timed from just before the request is written."""
    headers = {"Authorization": f"Bearer {token}"}
    sent_ns = time.time_ns()
    try:
        async with asyncio.timeout(REQUEST_SECS), pool.connection() as conn:
            sent_ns = conn.send("POST", path, headers=headers, form={"body": body})
            answer = await conn.answer()
    except (OSError, asyncio.IncompleteReadError, TimeoutError, ValueError) as exc:
        return Post(0, sent_ns, time.time_ns(), None, f"{type(exc).__name__}: {exc}"[:200])
    answered_ns = time.time_ns()
    found = MESSAGE_ID.search(answer.body) if answer.status == 201 else None
    error = "" if found else f"{answer.status} {answer.body[:120]!r}"
    return Post(
        answer.status, sent_ns, answered_ns, found.group(1).decode() if found else None, error
    )
