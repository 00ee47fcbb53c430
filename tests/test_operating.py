"""What an operator sees: request ids on every answer and in every log line, JSON logs that
never hold a secret or a message, and metrics of live delivery counted per event."""

from __future__ import annotations

import asyncio
import json
import re
import secrets
from typing import Any

import httpx
import pytest

from tests.support import (
    AppServer,
    Person,
    StartApp,
    message_id,
    open_stream,
    page_cursor,
    unique_name,
    wait_for,
)

MADE_ID = re.compile(r"[0-9a-f]{32}")


@pytest.fixture(scope="module")
def json_server(start_app: StartApp) -> AppServer:
    """JSON logs, and a router in front that the app trusts for X-Request-ID."""
    return start_app(LOG_FORMAT="json", TRUSTED_PROXY_HOPS="1")


def log_lines(server: AppServer) -> list[dict[str, Any]]:
    """Every line of the process's log, each one JSON object (or the test fails)."""
    lines = []
    for line in server.log().splitlines():
        if line.strip():
            try:
                lines.append(json.loads(line))
            except json.JSONDecodeError:
                raise AssertionError(f"not a JSON line: {line!r}") from None
    return lines


# Request ids


@pytest.mark.parametrize("path", ["/", "/login", "/healthz", "/no-such-page", "/events"])
def test_every_answer_has_a_request_id_of_its_own(app_server: AppServer, path: str) -> None:
    """Made here when no router is trusted: a client's own X-Request-ID is not taken."""
    response = httpx.get(app_server.url + path, headers={"X-Request-ID": "chosen-by-client"})
    given = response.headers["x-request-id"]
    assert MADE_ID.fullmatch(given), given
    again = httpx.get(app_server.url + path).headers["x-request-id"]
    assert again != given


async def test_an_open_event_stream_has_a_request_id(app_server: AppServer, person: Person) -> None:
    async with open_stream(app_server.url, cookie=person.cookie) as events:
        assert MADE_ID.fullmatch(events.response.headers["x-request-id"])


@pytest.mark.parametrize(
    ("given", "kept"),
    [
        ("router-1234.abc:5", True),
        ("a" * 64, True),
        ("a" * 65, False),  # too long
        ("two words", False),  # not one printable token
        ("", False),
        ('quote"here', False),
        ("tab\there", False),
    ],
)
def test_a_trusted_routers_id_is_kept_only_when_short_and_printable(
    json_server: AppServer, given: str, kept: bool
) -> None:
    response = httpx.get(json_server.url + "/healthz", headers={"X-Request-ID": given})
    answered = response.headers["x-request-id"]
    if kept:
        assert answered == given
    else:
        assert MADE_ID.fullmatch(answered), answered


# Logs


def test_logs_are_json_with_the_request_id_and_never_a_secret(json_server: AppServer) -> None:
    """One JSON object a line; a line per request naming its id, method, path, status, time and
    user; never the password, a token, the cookie, the CSRF token or what a message said."""
    password = "pw-" + secrets.token_hex(8)
    secret_text = "the secret text " + secrets.token_hex(8)
    username = unique_name("logged")
    with httpx.Client(base_url=json_server.url, timeout=10) as browser:
        registered = browser.post("/register", data={"username": username, "password": password})
        assert registered.status_code == 303
        cookie = browser.cookies["session"]
        someone = Person(json_server.url, username, password, browser)
        csrf = someone.refresh_csrf()
        posted = someone.post_public(secret_text)
        assert posted.status_code == 201
        token = httpx.post(
            json_server.url + "/api/token", data={"username": username, "password": password}
        ).json()["access_token"]
        by_script = httpx.post(
            json_server.url + "/rooms/public/messages?body=query-" + secret_text,
            data={"body": secret_text + " again"},
            headers={"Authorization": f"Bearer {token}", "Accept": "application/json"},
        )
        assert by_script.status_code == 201
        wrong = browser.post("/login", data={"username": username, "password": password + "x"})
        assert wrong.status_code == 401
    rid = posted.headers["x-request-id"]
    wait_for(lambda: rid in json_server.log(), what="the post's log line")
    lines = log_lines(json_server)
    text = json_server.log()
    for secret in (password, secret_text, token, cookie, csrf):
        assert secret not in text
    assert "query-" not in text  # no query string
    (line,) = [entry for entry in lines if entry.get("request_id") == rid]
    assert line["method"] == "POST"
    assert line["path"] == "/rooms/public/messages"
    assert line["status"] == 201
    assert line["duration_ms"] >= 0
    assert re.fullmatch(r"[0-9a-f]{24}", line["user_id"])
    assert {"time", "level", "logger", "message"} <= set(line)
    requests = [entry for entry in lines if entry.get("logger") == "webapp.requests"]
    assert len(requests) >= 6
    assert all(entry["request_id"] for entry in requests)
    assert len({entry["request_id"] for entry in requests}) == len(requests)


async def test_a_stream_cut_off_is_logged_and_counted(json_server: AppServer) -> None:
    """Signing out ends that session's streams: said in the log, counted by why."""
    someone = Person.register(json_server.url)
    before = json_server.metrics().get('chat_stream_cutoffs_total{reason="signed_out"}', 0.0)
    async with open_stream(json_server.url, cookie=someone.cookie) as events:
        assert someone.send("POST", "/logout").status_code in (200, 303)
        await events.next_named("signed-out")
        wait_for(
            lambda: (
                json_server.metrics().get('chat_stream_cutoffs_total{reason="signed_out"}', 0)
                > before
            ),
            what="the cut-off counted",
        )
    cut = [e for e in log_lines(json_server) if "signed_out" in e["message"]]
    assert cut and cut[-1]["logger"] == "webapp.live.streams"
    someone.close()


# Metrics of live delivery


async def test_delivery_is_counted_per_event_with_its_recipients(
    start_app: StartApp,
) -> None:
    server = start_app()
    alice, bob = Person.register(server.url), Person.register(server.url)

    def sample(name: str) -> float:
        return server.metrics().get(name, 0.0)

    delivered = 'chat_events_delivered_total{kind="message"}'
    async with (
        open_stream(server.url, cookie=alice.cookie) as first,
        open_stream(server.url, cookie=bob.cookie) as second,
    ):
        assert sample("chat_streams_open{}") == 2
        before, fanouts = sample(delivered), sample("chat_fanout_seconds_count{}")
        posted = alice.post_public("counted once, for two")
        for events in (first, second):
            assert message_id((await events.next_named("message")).data) == message_id(posted.text)
        assert sample(delivered) - before == 2  # both streams
        assert sample("chat_fanout_seconds_count{}") - fanouts >= 1
        assert sample('chat_change_lag_seconds{collection="messages"}') >= 0
        await asyncio.to_thread(
            wait_for,
            lambda: sample("chat_presence_batch_size_count{}") >= 1,
            what="a presence batch (the two coming online)",
        )
    wait_for(lambda: sample("chat_streams_open{}") == 0, what="the streams forgotten")

    cursor = page_cursor(alice.page("/rooms/public"))
    ring = sample('chat_replays_total{source="ring"}')
    async with open_stream(server.url, cookie=alice.cookie, last_event_id=cursor) as events:
        await events.next_named("live")
    assert sample('chat_replays_total{source="ring"}') == ring + 1
    reloads = sample('chat_replays_total{source="reload"}')
    async with open_stream(server.url, cookie=alice.cookie, last_event_id="nope") as events:
        await events.next_named("reload")
    assert sample('chat_replays_total{source="reload"}') == reloads + 1
    alice.close()
    bob.close()


def test_refusals_by_a_limit_are_counted(start_app: StartApp) -> None:
    server = start_app()
    someone = Person.register(server.url)
    key = 'chat_limit_refusals_total{limit="sign_in"}'
    before = server.metrics().get(key, 0.0)
    statuses = [
        httpx.post(
            server.url + "/login", data={"username": someone.username, "password": "wrong!"}
        ).status_code
        for _ in range(7)
    ]
    assert statuses.count(429) == 2  # the sixth and seventh
    assert server.metrics()[key] - before == 2
    someone.close()
