"""What operators can measure: Prometheus metrics, served at GET /metrics to METRICS_TOKEN only.

Requests are counted by their route's template (never the path a client wrote, which would
make a series per message id), method and status, with a latency histogram and the number of
database commands each made (webapp/ops/observe.py); live delivery by event kind, stream
cut-offs, replays, change streams and presence (webapp/live/); the process's collector and
event loop (webapp/ops/runtime.py). Each process keeps its own figures: scrape every process as
a target of its own (README, "Operating it").
"""

from __future__ import annotations

import secrets
from contextvars import ContextVar

from prometheus_client import CONTENT_TYPE_LATEST, Counter, Gauge, Histogram, generate_latest
from pymongo import monitoring
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Receive, Scope, Send

from webapp import settings

ROUTE = "webapp.route"  # a scope key: the template of the route that answered
UNMATCHED = "unmatched"
EVENTS_ROUTE = "/events"

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

# Live delivery: counted once per event (the recipients added as one number), never per stream.
STREAMS_OPEN = Gauge("chat_streams_open", "Event streams open in this process")
EVENTS_DELIVERED = Counter(
    "chat_events_delivered", "Events written to streams (one per stream), by kind", ["kind"]
)
FANOUT_SECONDS = Histogram(
    "chat_fanout_seconds",
    "Time to encode one event and offer it to every stream that gets it",
    buckets=(0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1),
)
STREAM_CUTOFFS = Counter("chat_stream_cutoffs", "Streams cut off by the server, by why", ["reason"])
REPLAYS = Counter("chat_replays", "Reconnecting streams caught up, by how", ["source"])
CHANGE_STREAM_RESTARTS = Counter(
    "chat_change_stream_restarts", "Change streams reopened after a failure", ["collection"]
)
CHANGE_LAG_SECONDS = Gauge(
    "chat_change_lag_seconds",
    "How long ago the last change seen on each collection was made, when it was seen",
    ["collection"],
)
PRESENCE_BATCH = Histogram(
    "chat_presence_batch_size",
    "People announced together in one presence batch",
    buckets=(1, 2, 5, 10, 20, 50, 100, 200, 500, 1000),
)
REFUSED = Counter("chat_limit_refusals", "Actions refused by a rate limit, by which", ["limit"])
POSTS_AHEAD = Counter(
    "chat_posts_ahead",
    "Posts numbered at once with their count, by whether it admitted them (else: in vain)",
    ["outcome"],
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


def count_commands() -> list[int]:
    """Starts counting the database commands of the request being answered: the count."""
    counted = [0]
    _commands.set(counted)
    return counted


def request_done(route: str, method: str, status: int, seconds: float, commands: int) -> None:
    """One request answered (the event stream's, which lasts as long as a tab, is not timed)."""
    if route == EVENTS_ROUTE:
        return
    REQUESTS.labels(route, method, str(status)).inc()
    REQUEST_SECONDS.labels(route).observe(seconds)
    REQUEST_DB_COMMANDS.labels(route).observe(commands)


async def show_metrics(request: Request) -> Response:
    """GET /metrics: 404 unless the caller names METRICS_TOKEN, as if there were none."""
    token = str(settings.METRICS_TOKEN)
    scheme, _, given = request.headers.get("authorization", "").partition(" ")
    matches = secrets.compare_digest(given.encode("latin-1"), token.encode())
    if not token or scheme.lower() != "bearer" or not matches:
        return Response("Not Found", status_code=404, media_type="text/plain")
    return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)
