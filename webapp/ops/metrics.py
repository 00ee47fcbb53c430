"""What operators can measure: Prometheus metrics, served at GET /metrics to METRICS_TOKEN only.

Requests are counted by their route's template (never the path a client wrote, which would
make a series per message id), method and status, with a latency histogram and the number of
database commands each made. Each process keeps its own figures: scrape every process as a
target of its own (README, "Operating it").
"""

from __future__ import annotations

import secrets
import time
from contextvars import ContextVar

from prometheus_client import CONTENT_TYPE_LATEST, Counter, Histogram, generate_latest
from pymongo import monitoring
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from webapp import settings

ROUTE = "webapp.route"  # a scope key: the template of the route that answered
UNMATCHED = "unmatched"

REQUESTS = Counter("chat_http_requests", "HTTP requests answered", ["route", "method", "status"])
REQUEST_SECONDS = Histogram(
    "chat_http_request_duration_seconds",
    "Time from a request's arrival to the end of its answer",
    ["route"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
)
REQUEST_DB_COMMANDS = Histogram(
    "chat_http_request_db_commands",
    "Database commands a request made",
    ["route"],
    buckets=(0, 1, 2, 3, 5, 8, 13, 21, 34, 55, 89),
)

GC_PAUSE_SECONDS = Histogram(
    "chat_gc_pause_seconds",
    "Garbage collections, by generation, and how long each held the process",
    ["generation"],
    buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25),
)
LOOP_LAG_SECONDS = Histogram(
    "chat_event_loop_lag_seconds",
    "How late the event loop woke from a short sleep",
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0),
)

_commands: ContextVar[list[int] | None] = ContextVar("db_commands", default=None)


class CommandCounter(monitoring.CommandListener):
    """Counts the database commands of the request being answered (none outside requests)."""

    def started(self, event: monitoring.CommandStartedEvent) -> None:
        counted = _commands.get()
        if counted is not None:
            counted[0] += 1

    def succeeded(self, event: monitoring.CommandSucceededEvent) -> None:
        pass

    def failed(self, event: monitoring.CommandFailedEvent) -> None:
        pass


command_counter = CommandCounter()


def tag_route(app: ASGIApp, template: str) -> ASGIApp:
    """`app`, noting in the scope the template of the route it answers for."""

    async def tagged(scope: Scope, receive: Receive, send: Send) -> None:
        scope[ROUTE] = template
        await app(scope, receive, send)

    return tagged


class RequestMetricsMiddleware:
    """Counts and times every request but the event stream's (which lasts as long as a tab)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        counted = [0]
        _commands.set(counted)
        status = 500

        async def send_noting_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_noting_status)
        finally:
            route = scope.get(ROUTE, UNMATCHED)
            if route != "/events":
                REQUESTS.labels(route, scope["method"], str(status)).inc()
                REQUEST_SECONDS.labels(route).observe(time.perf_counter() - started)
                REQUEST_DB_COMMANDS.labels(route).observe(counted[0])


async def show_metrics(request: Request) -> Response:
    """GET /metrics: 404 unless the caller names METRICS_TOKEN, as if there were none."""
    token = str(settings.METRICS_TOKEN)
    scheme, _, given = request.headers.get("authorization", "").partition(" ")
    matches = secrets.compare_digest(given.encode("latin-1"), token.encode())
    if not token or scheme.lower() != "bearer" or not matches:
        return Response("Not Found", status_code=404, media_type="text/plain")
    return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)
