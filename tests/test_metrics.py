"""GET /metrics: Prometheus text for METRICS_TOKEN only, requests counted by route template."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from tests.support import METRICS_TOKEN, AppServer, Person, message_id


@pytest.fixture(scope="module")
def tokenless_server(
    mongo_uri: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[AppServer]:
    env = {"METRICS_TOKEN": ""}
    with AppServer(mongo_uri, data_dir=tmp_path_factory.mktemp("nometrics"), env=env) as server:
        yield server


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
