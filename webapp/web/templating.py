"""The Jinja2 environment: templates/ plus the filters that turn message text into safe HTML."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import jinja2
from markupsafe import Markup, escape
from starlette.requests import Request
from starlette.routing import Mount, Route, Router
from starlette.templating import Jinja2Templates

from webapp import settings
from webapp.data.models import Message
from webapp.rules import formatting
from webapp.web.session import SignedInUser

URL_RE = re.compile(r"https?://[^\s<>\"']+[^\s<>\"'.,;:!?)\]]")


PALETTE = ("👍", "❤️", "😂", "🎉", "😮", "😢")  # the reactions offered first


def render_text(text: str) -> Markup:
    """Message text from before formatting, as HTML: escaped, line breaks kept, http(s) links
    clickable, nothing else."""
    parts: list[str] = []
    last = 0
    for match in URL_RE.finditer(text):
        parts.append(escape(text[last : match.start()]))
        url = escape(match.group(0))
        parts.append(f'<a href="{url}" rel="noopener nofollow" target="_blank">{url}</a>')
        last = match.end()
    parts.append(escape(text[last:]))
    return Markup("".join(parts).replace("\n", "<br>\n"))  # noqa: S704 (every part escaped)


def iso_time(value: datetime) -> str:
    return value.astimezone(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def short_time(value: datetime) -> str:
    """A short label: the time today, else the date and time (UTC; the page may localise it)."""
    value = value.astimezone(UTC)
    if value.date() == datetime.now(UTC).date():
        return value.strftime("%H:%M")
    return value.strftime("%d %b %H:%M")


def order_key(message: Message) -> str:
    """Sorts messages as the server pages them: by time, then id (zero-padded, as text)."""
    return f"{int(message.created_at.timestamp() * 1000):015d}-{message.id}"


def _globals(request: Request) -> dict[str, Any]:
    user = request.user if isinstance(request.user, SignedInUser) else None
    return {
        "me": user.user if user else None,
        "viewer_id": user.identity if user else "",
        "csrf_token": user.csrf_token if user else "",
    }


_routes: dict[str, Route | Mount] = {}  # by name


def use_routes(router: Router) -> None:
    """The app's routes, for url_for in templates rendered with or without a request."""
    _routes.clear()
    for route in router.routes:
        if isinstance(route, Route | Mount) and route.name:
            _routes[route.name] = route


def url_for(name: str, /, **path_params: Any) -> str:
    """A path, not an absolute URL: right behind any proxy, whatever scheme it speaks.

    The route is found by its name at once: a message alone links to three, and asking the
    router would try every route in turn.
    """
    return str(_routes[name].url_path_for(name, **path_params))


class CompactLoader(jinja2.FileSystemLoader):
    """templates/ without the indentation and line breaks of their source: whitespace that
    HTML reads as one space, here sent as one. A message's event is a fifth smaller (each line
    of an event's data costs a "data: " prefix too), and so is every page. What templates
    insert (a message's HTML, a textarea's text) is left as it is; the templates hold no
    <pre> or inline script of their own."""

    def get_source(
        self, environment: jinja2.Environment, template: str
    ) -> tuple[str, str, Callable[[], bool]]:
        source, filename, uptodate = super().get_source(environment, template)
        lines = (line.strip() for line in source.splitlines())
        return " ".join(line for line in lines if line), filename, uptodate


templates = Jinja2Templates(
    env=jinja2.Environment(
        loader=CompactLoader(settings.ROOT / "templates"), autoescape=jinja2.select_autoescape()
    ),
    context_processors=[_globals],
)
templates.env.filters.update(
    text=render_text,
    iso_time=iso_time,
    short_time=short_time,
    order_key=order_key,
    excerpt=formatting.excerpt,
)
templates.env.globals["palette"] = PALETTE
templates.env.globals["url_for"] = url_for


def render_shared(name: str, *, viewer_id: str = "", **context: Any) -> str:
    """A partial rendered outside any request, for many streams: nobody's session is in it.

    `viewer_id` picks a viewer's own variant (a message's author gets its controls); the
    context never carries a CSRF token or anything else of a session.
    """
    return templates.get_template(name).render(
        me=None, viewer_id=viewer_id, csrf_token="", **context
    )
