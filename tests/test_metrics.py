"""GET /metrics: Prometheus text for METRICS_TOKEN only, requests counted by route template."""

from __future__ import annotations

import time

import httpx
import pytest

from tests.support import METRICS_TOKEN, AppServer, Person, StartApp, message_id


@pytest.fixture(scope="module")
def tokenless_server(start_app: StartApp) -> AppServer:
    return start_app(METRICS_TOKEN="")


@pytest.mark.parametrize(
    "authorization",
    [None, "", "Bearer", "Bearer wrong", f"Basic {METRICS_TOKEN}", "Bearer é".encode()],
)
def test_metrics_are_not_found_without_the_token(
    app_server: AppServer, authorization: str | bytes | None
) -> None:
    headers = {} if authorization is None else {"Authorization": authorization}
    response = httpx.get(app_server.url + "/metrics", headers=headers)
    assert response.status_code == 404
    assert "chat_" not in response.text


def test_metrics_are_not_found_when_no_token_is_configured(tokenless_server: AppServer) -> None:
    for authorization in ("Bearer", f"Bearer {METRICS_TOKEN}"):
        response = httpx.get(
            tokenless_server.url + "/metrics", headers={"Authorization": authorization}
        )
        assert response.status_code == 404


def test_requests_are_counted_by_route_template(app_server: AppServer, person: Person) -> None:
    posted = person.post_public("counted")
    path = f"/messages/{message_id(posted.text)}"
    key = 'chat_http_requests_total{method="PATCH",route="/messages/{message_id}",status="200"}'
    before = app_server.metrics().get(key, 0.0)
    for n in range(3):
        assert person.send("PATCH", path, {"body": f"edit {n}"}).status_code == 200
    samples = app_server.metrics()
    assert samples[key] - before == 3
    assert not any(message_id(posted.text) in name for name in samples)  # never the raw path
    assert samples['chat_http_request_duration_seconds_count{route="/messages/{message_id}"}'] >= 3
    response = httpx.get(app_server.url + "/metrics", headers={"Authorization": "Bearer x"})
    assert response.headers["cache-control"] == "no-store"


def test_the_loop_and_the_collector_are_measured(app_server: AppServer) -> None:
    """How late the event loop wakes, and the garbage collector's pauses by generation."""
    deadline = time.monotonic() + 10  # the first look is a second after start-up
    while (samples := app_server.metrics())["chat_event_loop_lag_seconds_count{}"] < 1:
        assert time.monotonic() < deadline, "the loop's lag was never taken"
        time.sleep(0.1)
    collections = [
        value
        for name, value in samples.items()
        if name.startswith("chat_gc_pause_seconds_count{generation=")
    ]
    assert sum(collections) >= 1  # at least the one that freezes the start-up heap
